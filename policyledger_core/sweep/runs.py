"""One run of a sweep (train, then verify by replay) and what it gives back.

A run of a toy-text task trains a table with the tabular kernel over the task's exact model
and values it exactly (its expected return within the horizon, and the fraction of the exact
optimum it reaches): cheap, and with no sampling error. Only the policies a sweep chains are
replayed in Gymnasium (by :func:`~policyledger_core.workspace.publish.save_policy`).

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
from policyledger_core.learn.single import ROLLING, TrainingResult
from policyledger_core.policy import TaskPolicy
from policyledger_core.sim.config import preset
from policyledger_core.sweep.plan import RunSpec
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.spec import task_info
from policyledger_core.verify.suite import verify

CURVE_POINTS = 200


@dataclass(frozen=True)
class TaskTable:
    """What a toy-text task's run learned, kept while it may be chained: the greedy table and
    what its ledger entry records of the training."""

    task_id: str
    actions: tuple[int, ...]
    episodes: int
    training_reward: float
    """The mean of the last 100 training returns (exploration included)."""

    def policy(self) -> TaskPolicy:
        return TaskPolicy(task_info(self.task_id), self.actions)


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its verified figures, and (while it may still be chained) what it learned.

    A toy-text task's run is valued exactly, not replayed: its ``verified_reward`` is the
    table's exact value (``exact_value``), its ``ci95`` 0, and ``optimum_expected`` the task's
    exact optimum.
    """

    spec: RunSpec
    policy_hash: str
    verified_reward: float
    ci95: float
    fraction_of_optimum: float
    env_steps: int
    train_seconds: float
    result: TrainingResult | TaskTable | None = None
    curve: tuple[tuple[int, ...], tuple[float, ...]] = ((), ())
    """The mean of the last 100 training returns (over the agents) at up to 200 episodes."""
    exact_value: float | None = None
    """A task's run: the table's exact expected return within the horizon."""
    optimum_expected: float | None = None
    """A task's run: the exact optimum (the best time-dependent policy's expected return)."""

    @property
    def lower(self) -> float:
        """The lower bound of the verified reward's 95% interval: what the marketplace ranks by
        (a task's run: its exact value)."""
        return self.verified_reward - self.ci95

    @property
    def score(self) -> float:
        """What a seed group summarises: the verified reward, or a task's fraction of the optimum
        (comparable across tasks and horizons)."""
        return self.fraction_of_optimum if self.spec.task is not None else self.verified_reward

    def without_result(self) -> RunOutcome:
        """The figures only (a run that will not be chained need not keep its tables)."""
        return replace(self, result=None)

    def row(self) -> dict[str, Any]:
        """The run as ``sweep --json`` prints it."""
        hyper = self.spec.hyper.to_dict()
        common = {
            "algorithm": self.spec.algorithm,
            "seed": self.spec.seed,
            "agents": self.spec.agents,
            "episodes": hyper.pop("episodes"),
            "hyperparameters": {k: v for k, v in hyper.items() if k != "seed"},
            "policy_hash": self.policy_hash,
            "fraction_of_optimum": self.fraction_of_optimum,
            "env_steps": self.env_steps,
            "train_seconds": self.train_seconds,
        }
        if self.spec.task is not None:
            return {"task": self.spec.task, "horizon": task_info(self.spec.task).spec.horizon, **common,
                    "exact_value": self.exact_value, "optimum_expected": self.optimum_expected}
        return {"preset": self.spec.preset, **common, "verified_reward": self.verified_reward,
                "ci95": self.ci95}


def curve_points(episodes: int | None, points: int = CURVE_POINTS) -> npt.NDArray[np.int64]:
    """The episodes a run's curve keeps: evenly spread, first and last included."""
    if not episodes:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, episodes - 1, min(points, episodes)).round().astype(np.int64))


def run_one(spec: RunSpec) -> RunOutcome:
    """Train ``spec``'s agent(s) on one core, verify the best policy by replay (a task's table:
    value it exactly)."""
    if spec.task is not None:
        return _run_task(spec)
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


def rolling_means(returns: npt.NDArray[np.float64], at: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The mean of the last 100 returns (fewer at the start) up to each episode of ``at``."""
    sums = np.concatenate([[0.0], np.cumsum(returns, dtype=np.float64)])
    end = at + 1
    start = np.maximum(end - ROLLING, 0)
    out: npt.NDArray[np.float64] = (sums[end] - sums[start]) / (end - start)
    return out


def _run_task(spec: RunSpec) -> RunOutcome:
    """Train a toy-text task's table with the tabular kernel and value it exactly."""
    from policyledger_core.learn.tabular import train_tabular, warm  # numba and Gymnasium: only for a task
    from policyledger_core.tasks.toytext import toy_text_task

    assert spec.task is not None
    task = toy_text_task(spec.task)
    model = task.model()  # built once per process, the kernel loaded once: not training time
    warm()
    start = time.perf_counter()
    training = train_tabular(model, task.horizon, spec.hyper, spec.algorithm)
    seconds = time.perf_counter() - start
    table = TaskTable(task.task_id, tuple(int(a) for a in training.actions), training.episodes,
                      float(training.returns[-ROLLING:].mean()))
    exact, optimum = task.expected_return(training.actions), task.optimum()
    kept = curve_points(training.episodes)
    curve = (tuple(kept.tolist()), tuple(rolling_means(training.returns, kept).tolist()))
    return RunOutcome(spec, table.policy().hash, exact, 0.0, fraction_of_optimum(exact, optimum),
                      training.env_steps, seconds, table, curve, exact, optimum)
