"""What a sweep trains: every combination of presets (or toy-text tasks), algorithms,
hyperparameter values and seeds.

A sweep is over one kind: the cyber-defense task's presets (:func:`plan`), or Gymnasium's
toy-text tasks (:func:`plan_tasks`, each trained by the tabular kernel from its own
``recommended`` hyperparameters per algorithm).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from policyledger_core.learn.hyper import ALGORITHMS, Algorithm, Hyperparameters, hyper_preset
from policyledger_core.sim.config import PRESETS, ConfigError
from policyledger_core.tasks.spec import task_info

SWEPT = tuple(f.name for f in dataclasses.fields(Hyperparameters) if f.name not in ("seed", "episodes"))
"""The hyperparameters ``--set`` may vary (episodes and seeds have options of their own)."""
MAX_RUNS = 100_000
TASK_HYPER = "recommended"
"""A task's only base: its measured hyperparameters per algorithm (``learn.tabular``)."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a whole description, so that any machine trains the same policy.

    A run of the cyber-defense task names its ``preset``; a run of a toy-text task names its
    Gymnasium id as ``task`` (and its ``preset`` is empty).
    """

    preset: str
    algorithm: Algorithm
    hyper: Hyperparameters
    agents: int = 1
    task: str | None = None

    @property
    def seed(self) -> int:
        return self.hyper.seed

    @property
    def subject(self) -> str:
        """What the run trains on: its task's id, or its preset's name (``--chain best`` keeps
        the best run of each)."""
        return self.task if self.task is not None else self.preset

    @property
    def kind(self) -> str:
        """``task`` or ``preset``: the key naming the run's subject in rows and JSON."""
        return "task" if self.task is not None else "preset"

    @functools.cached_property
    def group(self) -> tuple[Any, ...]:
        """Runs that differ only by their seed share a group."""
        settings = self.hyper.to_dict()
        settings.pop("seed")
        return (self.subject, self.algorithm, self.agents, tuple(sorted(settings.items())))

    def describe(self) -> str:
        """One line naming the run (for errors and progress)."""
        return f"{self.subject} {self.algorithm} seed {self.seed}"


def parse_setting(text: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,...`` -> (name, values), each value checked as the field's type."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ConfigError(f"--set: expected NAME=V1,V2,..., got {text!r:.60}")
    if name not in SWEPT:
        raise ConfigError(f"--set: unknown hyperparameter {name!r}; one of {', '.join(SWEPT)}")
    parts = [v.strip() for v in values.split(",")]
    if not parts or any(not v for v in parts):
        raise ConfigError(f"--set {name}: expected values separated by commas, got {values!r:.60}")
    if name == "lr_schedule":
        return name, parts
    out: list[Any] = []
    for part in parts:
        try:
            out.append(float(part))
        except ValueError:
            raise ConfigError(f"--set {name}: expected numbers, got {part!r:.30}") from None
    return name, out


def plan(presets: Sequence[str], algorithms: Sequence[str], settings: Sequence[tuple[str, list[Any]]],
         seeds: int, episodes: int | None, agents: int = 1, base: str = "recommended") -> list[RunSpec]:
    """Every run of the sweep, in a fixed order (presets, algorithms, settings, then seeds).

    Invalid combinations (say an ``epsilon_end`` above ``epsilon_start``) are refused here, with
    the run named, before anything trains.
    """
    for name in presets:
        if name not in PRESETS:
            raise ConfigError(f"--preset: unknown preset {name!r}; one of {', '.join(PRESETS)}")
    combos = _combinations(algorithms, settings, seeds, len(presets))
    start = hyper_preset(base)
    if episodes is not None:
        start = start.replace(episodes=episodes)
    runs: list[RunSpec] = []
    for preset_name, algorithm, combo in itertools.product(presets, algorithms, combos):
        hyper = _setting(start, settings, combo)
        for seed in range(seeds):
            runs.append(RunSpec(preset_name, cast(Algorithm, algorithm), hyper.replace(seed=seed), agents))
    return runs


def plan_tasks(tasks: Sequence[str], algorithms: Sequence[str], settings: Sequence[tuple[str, list[Any]]],
               seeds: int, episodes: int | None, base: str = TASK_HYPER) -> list[RunSpec]:
    """Every run of a sweep over toy-text tasks (by Gymnasium id), in a fixed order (tasks,
    algorithms, settings, then seeds); one agent per run.

    What is not swept comes from each task's ``recommended`` hyperparameters for each algorithm
    (their episodes too, unless ``episodes`` is given). Invalid combinations are refused here,
    with the run named, before anything trains.
    """
    for name in tasks:
        task_info(name)  # an unknown task is named with the known ones
    if base != TASK_HYPER:
        raise ConfigError(f"--hyper: a task has only the {TASK_HYPER!r} preset (measured per task "
                          f"and algorithm), got {base!r}")
    combos = _combinations(algorithms, settings, seeds, len(tasks))
    from policyledger_core.learn.tabular import recommended  # numba: loaded when tasks are swept

    runs: list[RunSpec] = []
    for task_id, algorithm, combo in itertools.product(tasks, algorithms, combos):
        start = recommended(task_id, cast(Algorithm, algorithm))
        if episodes is not None:
            start = start.replace(episodes=episodes)
        hyper = _setting(start, settings, combo)
        for seed in range(seeds):
            runs.append(RunSpec("", cast(Algorithm, algorithm), hyper.replace(seed=seed), 1, task_id))
    return runs


def _combinations(algorithms: Sequence[str], settings: Sequence[tuple[str, list[Any]]], seeds: int,
                  subjects: int) -> list[tuple[Any, ...]]:
    """The combinations of swept values, once the algorithms, seeds, settings and the size of
    the sweep are checked."""
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ConfigError(f"--algorithm: must be one of {', '.join(ALGORITHMS)}, got {name!r}")
    if seeds < 1:
        raise ConfigError(f"--seeds: must be at least 1, got {seeds}")
    names = [name for name, _ in settings]
    if len(set(names)) != len(names):
        raise ConfigError("--set: each hyperparameter at most once")
    combos = list(itertools.product(*(values for _, values in settings)))
    total = subjects * len(algorithms) * len(combos) * seeds
    if total > MAX_RUNS:
        raise ConfigError(f"sweep: {total:,} runs is more than {MAX_RUNS:,}; narrow it")
    return combos


def _setting(start: Hyperparameters, settings: Sequence[tuple[str, list[Any]]],
             combo: tuple[Any, ...]) -> Hyperparameters:
    """``start`` with one combination of swept values, or the combination named as invalid."""
    changes = dict(zip((name for name, _ in settings), combo, strict=True))
    try:
        return start.replace(**changes)
    except ConfigError as exc:
        shown = ", ".join(f"{k}={v}" for k, v in changes.items())
        raise ConfigError(f"sweep: the setting {shown} is invalid: {exc}") from None
