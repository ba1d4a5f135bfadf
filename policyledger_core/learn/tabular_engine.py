"""A toy-text task trained in batches, as a live view streams it (the desktop app's training process).

:func:`train_task` runs :class:`~policyledger_core.learn.tabular.TabularRun` on the task's exact
model (read from Gymnasium's environment) and yields an
:class:`~policyledger_core.learn.engine.EpisodeBatch` per chunk of episodes, as
:func:`~policyledger_core.learn.engine.train_agents` does for the cyber-defense task: the same
relays, plots and "until stopped" serve both. Each batch is about
:data:`~policyledger_core.learn.engine.BATCH_SECONDS` of work, and a stop request is heard between
two of them. Memory stays bounded however long the run: the episodes travel in the batches,
only the last 100 returns are kept (for the means of the last 100).

The result is that of :func:`~policyledger_core.learn.tabular.train_tabular` for the episodes
run: neither epsilon nor the step size depends on where a run is cut into batches or stopped.
Gymnasium and numba are loaded when a run starts, not on import.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from policyledger_core.learn import engine
from policyledger_core.learn.engine import BATCH_SECONDS, EpisodeBatch, resolve
from policyledger_core.learn.hyper import ALGORITHMS, Algorithm, Hyperparameters
from policyledger_core.learn.single import ROLLING, StopCheck
from policyledger_core.policy import TaskPolicy
from policyledger_core.tasks.spec import task_info

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

FIRST_EPISODES = 64
"""Episodes of the first batch (it comes at once); the next ones grow towards BATCH_SECONDS."""
CHUNK_STEPS = 1 << 20
"""Environment steps one batch may take at most (episodes times the horizon): a stop is heard
within about 0.1 s of work."""


@dataclass(frozen=True, eq=False)
class TaskTrainingResult:
    """What a toy-text run learned: its greedy table, and how its training went."""

    task_id: str
    hyper: Hyperparameters
    algorithm: Algorithm
    actions: tuple[int, ...]
    """The greedy table (of Q, or of QA + QB for Double Q; the lowest action on ties)."""
    episodes: int
    env_steps: int
    training_reward: float
    """Mean return of the last 100 training episodes (fewer in a shorter run), exploring."""
    stopped: bool

    agents = 1
    """Always one agent: a population is the cyber-defense engine's."""

    def policy(self) -> TaskPolicy:
        """The greedy table as the task's policy."""
        return TaskPolicy(task_info(self.task_id), self.actions)

    def training_fields(self) -> dict[str, Any]:
        """What a ledger entry records of the training (as for a cyber-defense run)."""
        return {"algorithm": self.algorithm, "hyperparameters": self.hyper.to_dict(),
                "episodes": self.episodes, "seed": self.hyper.seed,
                "training_reward": self.training_reward, "agents": 1}


TaskTraining = Generator[EpisodeBatch, None, TaskTrainingResult]


def prepare(should_stop: StopCheck | None = None) -> Generator[str, None, float]:
    """Get both training engines ready: the cyber-defense kernel (see
    :func:`~policyledger_core.learn.engine.prepare`) and the tabular kernels. Yields "compiling"
    first when either has to compile (once after install); returns the seconds taken."""
    if resolve("auto") != "compiled":
        return 0.0
    from policyledger_core.learn import kernels, tabular

    if engine.needs_compiling() or (not tabular.compiled() and not tabular.cached_on_disk()):
        yield "compiling"
    return kernels.warm() + tabular.warm()


def train_task(task_id: str, hyper: Hyperparameters, algorithm: Algorithm = "q",
               should_stop: StopCheck | None = None) -> TaskTraining:
    """Train one agent on the toy-text task ``task_id`` (its Gymnasium id) for ``hyper.episodes``
    episodes, or until ``should_stop()`` (``episodes`` None: only then); yields :class:`EpisodeBatch`
    es (one agent; no action counts) and returns a :class:`TaskTrainingResult`."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: must be 'q' or 'double-q', got {algorithm!r}")
    info = task_info(task_id)  # an unknown id is refused before anything loads
    return _run(info.spec.env_id, hyper, algorithm, should_stop)


def _run(task_id: str, hyper: Hyperparameters, algorithm: Algorithm, should_stop: StopCheck | None
         ) -> TaskTraining:
    from policyledger_core.learn.tabular import TabularRun, epsilons
    from policyledger_core.tasks.toytext import toy_text_task

    task = toy_text_task(task_id)
    run = TabularRun(task.model(), task.horizon, hyper, algorithm, keep_episodes=False)
    most = max(1, CHUNK_STEPS // task.horizon)
    size = min(FIRST_EPISODES, most)
    history = np.zeros(0)  # the last ROLLING returns
    steps_total = 0
    stopped = False
    while not stopped and (hyper.episodes is None or run.episodes < hyper.episodes):
        n = size if hyper.episodes is None else min(size, hyper.episodes - run.episodes)
        first = run.episodes
        started = time.perf_counter()
        returns, steps = run.advance(n)
        took = time.perf_counter() - started
        # Batches of about BATCH_SECONDS of work: a live view gets a steady stream, a stop is heard
        # soon; the size never changes a result.
        if took < BATCH_SECONDS / 2:
            size = min(2 * size, most)
        elif took > BATCH_SECONDS:
            size = max(size // 2, 1)
        rolling, history = _rolling(history, returns)
        steps_total += int(steps.sum())
        yield EpisodeBatch(first, returns.reshape(-1, 1), epsilons(hyper, first, n), steps.reshape(-1, 1),
                           rolling.reshape(-1, 1), np.zeros((n, 1, 0), dtype=np.int64))
        if should_stop is not None and should_stop():
            stopped = True
    reward = math.fsum(history.tolist()) / len(history) if len(history) else 0.0
    actions = tuple(int(a) for a in run.greedy())
    return TaskTrainingResult(task_id, hyper, algorithm, actions, run.episodes, steps_total, reward, stopped)


def _rolling(history: Floats, returns: Floats) -> tuple[Floats, Floats]:
    """Each episode's mean of the last :data:`ROLLING` returns (fewer at the start), and the new
    history. The toy-text tasks' returns are whole numbers: the running sums are exact."""
    m, n = len(history), len(returns)
    joined = np.concatenate([history, returns])
    sums = np.zeros(len(joined) + 1)
    np.cumsum(joined, out=sums[1:])
    end = np.arange(m + 1, m + n + 1)
    start = np.maximum(end - ROLLING, 0)
    rolling: Floats = (sums[end] - sums[start]) / (end - start)
    return rolling, joined[-ROLLING:].copy()
