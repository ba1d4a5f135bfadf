"""One run of a sweep (train, then verify by replay) and what it gives back.

:func:`run_one` is what every backend executes, in a worker process of this machine or on
a Ray node: it depends only on its :class:`~policyledger_core.sweep.plan.RunSpec`, so the same
sweep gives the same policies wherever it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.single import TrainingResult
from policyledger_core.sim.config import preset
from policyledger_core.sweep.plan import RunSpec
from policyledger_core.verify.suite import verify

CURVE_POINTS = 200


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its verified figures, and (while it may still be chained) what it learned."""

    spec: RunSpec
    policy_hash: str
    verified_reward: float
    ci95: float
    fraction_of_optimum: float
    env_steps: int
    train_seconds: float
    result: TrainingResult | None = None
    curve: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
    """The mean of the last 100 training returns (over the agents) at up to 200 episodes."""

    @property
    def lower(self) -> float:
        """The lower bound of the verified reward's 95% interval: what the marketplace ranks by."""
        return self.verified_reward - self.ci95

    def without_result(self) -> RunOutcome:
        """The figures only (a run that will not be chained need not keep its tables)."""
        return replace(self, result=None)

    def row(self) -> dict[str, Any]:
        """The run as ``sweep --json`` prints it."""
        hyper = self.spec.hyper.to_dict()
        return {
            "preset": self.spec.preset,
            "algorithm": self.spec.algorithm,
            "seed": self.spec.seed,
            "agents": self.spec.agents,
            "episodes": hyper.pop("episodes"),
            "hyperparameters": {k: v for k, v in hyper.items() if k != "seed"},
            "policy_hash": self.policy_hash,
            "verified_reward": self.verified_reward,
            "ci95": self.ci95,
            "fraction_of_optimum": self.fraction_of_optimum,
            "env_steps": self.env_steps,
            "train_seconds": self.train_seconds,
        }


def curve_points(episodes: int | None, points: int = CURVE_POINTS) -> npt.NDArray[np.int64]:
    """The episodes a run's curve keeps: evenly spread, first and last included."""
    if not episodes:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, episodes - 1, min(points, episodes)).round().astype(np.int64))


def run_one(spec: RunSpec) -> RunOutcome:
    """Train ``spec``'s agent(s) on one core, verify the best policy by replay."""
    start = time.perf_counter()
    kept = curve_points(spec.hyper.episodes)
    values = np.zeros(len(kept))
    training = train_agents(preset(spec.preset), spec.hyper, spec.algorithm, spec.agents, workers=1)
    while True:
        try:
            batch = next(training)
        except StopIteration as done:
            result: TrainingResult = done.value
            break
        inside = (kept >= batch.first) & (kept < batch.first + len(batch))
        values[inside] = batch.rolling[kept[inside] - batch.first].mean(axis=1)
    seconds = time.perf_counter() - start
    policy = result.policy()
    report = verify(policy)
    return RunOutcome(spec, policy.hash, report.mean, report.ci95, report.fraction_of_optimum,
                      result.env_steps, seconds, result, (tuple(kept.tolist()), tuple(values.tolist())))
