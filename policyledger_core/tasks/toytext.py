"""Gymnasium's toy-text tasks as PolicyLedger tasks: FrozenLake 4x4 and 8x8, Taxi, CliffWalking.

Each task is identified by its :class:`TaskSpec`: the Gymnasium id, the keyword arguments
given to ``gymnasium.make`` and the horizon (the time limit: the registry's where it has
one, else the task's own, passed as ``max_episode_steps``). Its exact model is read from the
environment Gymnasium builds (``env.unwrapped.P``), so the optimum and every table's value
are those of Gymnasium's own dynamics, and :meth:`ToyTextTask.replay` plays tables in that
same environment.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from policyledger_core.sim.config import ConfigError
from policyledger_core.tasks.base import Baseline, GridMap, ReplayResult, Task, returns_digest
from policyledger_core.tasks.model import (
    StationarySearch,
    TabularModel,
    best_stationary,
    check_table,
    evaluate,
    evaluate_stochastic,
    optimum,
)
from policyledger_core.tasks.spec import (
    CATALOGUE,
    Family,
    TaskSpec,
    info_for_spec,
    task_info,
)


@dataclass(frozen=True)
class ToyTextTask:
    """One toy-text task (implements :class:`policyledger_core.tasks.base.Task`)."""

    spec: TaskSpec
    title: str
    family: Family
    n_observations: int
    n_actions: int
    action_names: tuple[str, ...]

    @property
    def task_id(self) -> str:
        return self.spec.env_id

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    def spec_dict(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def make(self, **extra: Any) -> gym.Env[Any, Any]:
        """The environment as ``gymnasium.make`` builds it, with the task's time limit
        (``extra``: further ``make`` arguments such as ``render_mode``)."""
        kwargs: dict[str, Any] = {**self.spec.kwargs_dict(), **extra}
        if gym.spec(self.spec.env_id).max_episode_steps is None:
            kwargs["max_episode_steps"] = self.horizon
        env = gym.make(self.spec.env_id, **kwargs)
        limit = env.spec.max_episode_steps if env.spec is not None else None
        if limit != self.horizon:  # the registry's limit is the horizon: never two different ones
            env.close()
            raise ConfigError(f"{self.task_id}: time limit {limit} differs from the horizon {self.horizon}")
        return env

    def model(self) -> TabularModel:
        """The exact model, read from the environment (built once per task)."""
        return _model(self)

    def optimum(self) -> float:
        """Exact expected return of the optimal time-dependent policy (computed once)."""
        return _optimum(self)

    def expected_return(self, actions: npt.ArrayLike) -> float:
        return evaluate(self.model(), self.horizon, actions)

    def best_stationary(self) -> StationarySearch:
        """The local search's best stationary table (computed once per task)."""
        return _best_stationary(self)

    def best_stationary_value(self) -> float:
        return self.best_stationary().value

    def baselines(self) -> dict[str, Baseline]:
        """``random`` (uniform actions) and ``constant`` (the best single action everywhere)."""
        return dict(_baselines(self))

    def replay(self, actions: npt.ArrayLike, seeds: Iterable[int]) -> ReplayResult:
        """Play the table in ``gymnasium.make``'s environment, one episode per seed (each reset
        with ``seed=``), to termination or truncation. The digest covers the returns only."""
        table = [int(a) for a in check_table(self.model(), actions)]
        env = self.make()
        returns: list[float] = []
        steps: list[int] = []
        try:
            for seed in seeds:
                if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
                    raise ValueError(f"seeds: expected whole numbers >= 0, got {seed!r}")
                obs, _ = env.reset(seed=int(seed))
                total, n, done = 0.0, 0, False
                while not done:
                    obs, reward, terminated, truncated, _ = env.step(table[obs])
                    total += float(reward)
                    n += 1
                    done = terminated or truncated
                returns.append(total)
                steps.append(n)
        finally:
            env.close()
        out = np.array(returns, dtype=np.float64)
        return ReplayResult(out, np.array(steps, dtype=np.int64), returns_digest(out))

    def grid(self) -> GridMap:
        return _grid(self)

    def observation_label(self, observation: int) -> str:
        if not 0 <= observation < self.n_observations:
            raise ValueError(f"observation: expected 0..{self.n_observations - 1}, got {observation!r}")
        grid = self.grid()
        row, col = grid.positions[observation]
        if self.family != "taxi":
            return f"row {row}, column {col} ({grid.kind(row, col)})"
        _, _, passenger, destination = _taxi_decode(observation)
        pads = _taxi_pads(grid)
        where = "in the taxi" if passenger == len(pads) else f"at {pads[passenger]}"
        return f"taxi at row {row}, column {col}; passenger {where}; destination {pads[destination]}"


TASKS: dict[str, ToyTextTask] = {
    info.spec.env_id: ToyTextTask(info.spec, info.title, info.family, info.n_observations, info.n_actions,
                                  info.action_names)
    for info in CATALOGUE.values()
}
"""The toy-text tasks, by Gymnasium id."""

if TYPE_CHECKING:
    _conforms: Task = TASKS["Taxi-v4"]  # mypy holds ToyTextTask to the Task protocol


def toy_text_task(task_id: str) -> ToyTextTask:
    """The task of a Gymnasium id; a clear error for an unknown one."""
    return TASKS[task_info(task_id).spec.env_id]


def task_for_spec(data: object) -> ToyTextTask:
    """The known task whose spec is ``data`` (a spec's dict form); only those have checked models."""
    return TASKS[info_for_spec(data).spec.env_id]


@functools.cache
def _model(task: ToyTextTask) -> TabularModel:
    env = task.make()
    try:
        model = TabularModel.from_env(env)
    finally:
        env.close()
    if (model.n_states, model.n_actions) != (task.n_observations, task.n_actions):
        raise ConfigError(f"{task.task_id}: the environment has {model.n_states} observations and "
                          f"{model.n_actions} actions, not {task.n_observations} and {task.n_actions}")
    return model


@functools.cache
def _optimum(task: ToyTextTask) -> float:
    return optimum(task.model(), task.horizon)


@functools.cache
def _best_stationary(task: ToyTextTask) -> StationarySearch:
    return best_stationary(task.model(), task.horizon, ceiling=task.optimum())


@functools.cache
def _baselines(task: ToyTextTask) -> tuple[tuple[str, Baseline], ...]:
    model, horizon = task.model(), task.horizon
    uniform = np.full((model.n_states, model.n_actions), 1.0 / model.n_actions)
    constant = [evaluate(model, horizon, np.full(model.n_states, a)) for a in range(model.n_actions)]
    best = int(np.argmax(constant))  # the first of equal values
    return (
        ("random", Baseline("random", "each action with equal probability",
                            evaluate_stochastic(model, horizon, uniform), None)),
        ("constant", Baseline("constant", f"always {task.action_names[best]} (the best single action)",
                              constant[best], (best,) * model.n_states)),
    )


def _taxi_decode(observation: int) -> tuple[int, int, int, int]:
    """(row, column, passenger location, destination) of a Taxi observation, as Taxi encodes it."""
    rest, destination = divmod(observation, 4)
    rest, passenger = divmod(rest, 5)
    row, col = divmod(rest, 5)
    return row, col, passenger, destination


def _taxi_pads(grid: GridMap) -> list[str]:
    """The pads' letters in Taxi's location order (R, G, Y, B)."""
    return [grid.label(r, c) for r, c in grid.pads]


@functools.cache
def _grid(task: ToyTextTask) -> GridMap:
    env = task.make()
    core: Any = env.unwrapped
    env.close()
    if task.family == "frozenlake":
        desc = np.asarray(core.desc).astype(str)
        kinds = {"S": "start", "F": "frozen", "H": "hole", "G": "goal"}
        rows, cols = desc.shape
        letters = tuple(str(c) for c in desc.ravel())
        return GridMap(rows, cols, tuple(kinds[c] for c in letters), letters, frozenset(),
                       tuple(divmod(s, cols) for s in range(task.n_observations)))
    if task.family == "cliffwalking":
        rows, cols = (int(n) for n in core.shape)
        cliff = np.asarray(core._cliff, dtype=bool)
        start = divmod(int(core.start_state_index), cols)
        model = task.model()
        goals = {divmod(int(s), cols) for s in model.next_states[model.terminated]}
        cells, labels = [], []
        for r in range(rows):
            for c in range(cols):
                kind = ("cliff" if cliff[r, c] else "start" if (r, c) == start
                        else "goal" if (r, c) in goals else "floor")
                cells.append(kind)
                labels.append({"start": "S", "goal": "G", "cliff": "C"}.get(kind, ""))
        return GridMap(rows, cols, tuple(cells), tuple(labels), frozenset(),
                       tuple(divmod(s, cols) for s in range(task.n_observations)))
    # Taxi: the map's cell (r, c) is desc[r + 1, 2c + 1]; a "|" just east of it is a wall.
    desc = np.asarray(core.desc).astype(str)
    rows, cols = desc.shape[0] - 2, (desc.shape[1] - 1) // 2
    pads = [(int(r), int(c)) for r, c in core.locs]
    cells, labels = [], []
    walls = set()
    for r in range(rows):
        for c in range(cols):
            pad = (r, c) in pads
            cells.append("pad" if pad else "floor")
            labels.append(str(desc[r + 1, 2 * c + 1]) if pad else "")
            if c + 1 < cols and desc[r + 1, 2 * c + 2] == "|":
                walls.add((r, c))
    return GridMap(rows, cols, tuple(cells), tuple(labels), frozenset(walls),
                   tuple(_taxi_decode(s)[:2] for s in range(task.n_observations)), tuple(pads))
