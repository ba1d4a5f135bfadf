"""Seed groups of a sweep: the mean verified reward over seeds, its 95% interval, the worst seed.

A toy-text task's group summarises the fraction of the exact optimum its tables reach (each
exact): its mean over the seeds, the 95% interval of that mean, the worst seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from policyledger_core.sweep.runs import RunOutcome

_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)
"""Student's t quantile 0.975 for 1 to 30 degrees of freedom (a few seeds: the normal 1.96 is too narrow)."""
_Z = 1.959964


def t95(df: int) -> float:
    """Student's t quantile 0.975 with ``df`` degrees of freedom (a Cornish-Fisher expansion past 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom: must be at least 1, got {df}")
    if df <= len(_T95):
        return _T95[df - 1]
    z = _Z
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Group:
    """Runs with the same settings and different seeds."""

    runs: tuple[RunOutcome, ...]

    @property
    def mean(self) -> float:
        """The mean score over the seeds: verified reward, or a task's fraction of the optimum."""
        return statistics.fmean(r.score for r in self.runs)

    @property
    def half_width(self) -> float | None:
        """Half the 95% interval of the mean across seeds (None with one seed)."""
        n = len(self.runs)
        if n < 2:
            return None
        return t95(n - 1) * statistics.stdev(r.score for r in self.runs) / math.sqrt(n)

    @property
    def worst(self) -> RunOutcome:
        return min(self.runs, key=lambda r: (r.score, r.spec.seed))

    def curve(self) -> tuple[list[int], list[float], list[float] | None]:
        """The seeds' mean training curve (mean of the last 100 returns), with half its 95%
        interval across seeds at each point (None with one seed)."""
        episodes = list(self.runs[0].curve[0])
        values = np.array([r.curve[1] for r in self.runs if list(r.curve[0]) == episodes], dtype=np.float64)
        n = values.shape[0]
        means = values.mean(axis=0).tolist() if n else []
        if n < 2:
            return episodes, means, None
        return episodes, means, (t95(n - 1) * values.std(axis=0, ddof=1) / math.sqrt(n)).tolist()

    def row(self) -> dict[str, Any]:
        """The group as ``sweep --json`` prints it."""
        first = self.runs[0].row()
        half = self.half_width
        worst = self.worst
        if self.runs[0].spec.task is not None:
            return {
                "task": first["task"],
                "horizon": first["horizon"],
                "algorithm": first["algorithm"],
                "agents": first["agents"],
                "episodes": first["episodes"],
                "hyperparameters": first["hyperparameters"],
                "seeds": sorted(r.spec.seed for r in self.runs),
                "mean_fraction_of_optimum": self.mean,
                "ci95": half,
                "ci95_low": None if half is None else self.mean - half,
                "ci95_high": None if half is None else self.mean + half,
                "mean_exact_value": statistics.fmean(r.verified_reward for r in self.runs),
                "optimum_expected": first["optimum_expected"],
                "worst_seed": worst.spec.seed,
                "worst_fraction_of_optimum": worst.fraction_of_optimum,
                "worst_exact_value": worst.verified_reward,
            }
        return {
            "preset": first["preset"],
            "algorithm": first["algorithm"],
            "agents": first["agents"],
            "episodes": first["episodes"],
            "hyperparameters": first["hyperparameters"],
            "seeds": sorted(r.spec.seed for r in self.runs),
            "mean": self.mean,
            "ci95": half,
            "ci95_low": None if half is None else self.mean - half,
            "ci95_high": None if half is None else self.mean + half,
            "mean_fraction_of_optimum": statistics.fmean(r.fraction_of_optimum for r in self.runs),
            "worst_seed": worst.spec.seed,
            "worst_reward": worst.verified_reward,
        }


def groups(runs: Sequence[RunOutcome]) -> list[Group]:
    """The seed groups of ``runs``, in the order of their first run."""
    by_key: dict[tuple[Any, ...], list[RunOutcome]] = {}
    for run in runs:
        by_key.setdefault(run.spec.group, []).append(run)
    return [Group(tuple(members)) for members in by_key.values()]
