"""What a sweep trains: every combination of presets, algorithms, hyperparameter values and seeds."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from policyledger_core.learn.hyper import ALGORITHMS, Algorithm, Hyperparameters, hyper_preset
from policyledger_core.sim.config import PRESETS, ConfigError

SWEPT = tuple(f.name for f in dataclasses.fields(Hyperparameters) if f.name not in ("seed", "episodes"))
"""The hyperparameters ``--set`` may vary (episodes and seeds have options of their own)."""
MAX_RUNS = 100_000


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a whole description, so that any machine trains the same policy."""

    preset: str
    algorithm: Algorithm
    hyper: Hyperparameters
    agents: int = 1

    @property
    def seed(self) -> int:
        return self.hyper.seed

    @functools.cached_property
    def group(self) -> tuple[Any, ...]:
        """Runs that differ only by their seed share a group."""
        settings = self.hyper.to_dict()
        settings.pop("seed")
        return (self.preset, self.algorithm, self.agents, tuple(sorted(settings.items())))

    def describe(self) -> str:
        """One line naming the run (for errors and progress)."""
        return f"{self.preset} {self.algorithm} seed {self.seed}"


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
    for name in algorithms:
        if name not in ALGORITHMS:
            raise ConfigError(f"--algorithm: must be one of {', '.join(ALGORITHMS)}, got {name!r}")
    if seeds < 1:
        raise ConfigError(f"--seeds: must be at least 1, got {seeds}")
    names = [name for name, _ in settings]
    if len(set(names)) != len(names):
        raise ConfigError("--set: each hyperparameter at most once")
    start = hyper_preset(base)
    if episodes is not None:
        start = start.replace(episodes=episodes)
    combos = list(itertools.product(*(values for _, values in settings)))
    total = len(presets) * len(algorithms) * len(combos) * seeds
    if total > MAX_RUNS:
        raise ConfigError(f"sweep: {total:,} runs is more than {MAX_RUNS:,}; narrow it")
    runs: list[RunSpec] = []
    for preset_name, algorithm, combo in itertools.product(presets, algorithms, combos):
        changes = dict(zip(names, combo, strict=True))
        try:
            hyper = start.replace(**changes)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in changes.items())
            raise ConfigError(f"sweep: the setting {shown} is invalid: {exc}") from None
        for seed in range(seeds):
            runs.append(RunSpec(preset_name, cast(Algorithm, algorithm), hyper.replace(seed=seed), agents))
    return runs
