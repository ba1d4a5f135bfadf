"""An independent reference for the task tests: plain-dict finite-horizon dynamic programming
written straight from a Gymnasium environment's ``env.unwrapped.P``, sharing no code with
:mod:`policyledger_core.tasks.model`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from policyledger_core.tasks.base import ReplayResult
from policyledger_core.tasks.toytext import toy_text_task

Transitions = dict[int, dict[int, list[tuple[float, int, float, bool]]]]


ENVIRONMENTS: dict[str, tuple[dict[str, Any], int]] = {
    "FrozenLake-v1": ({"map_name": "4x4", "is_slippery": True}, 100),
    "FrozenLake8x8-v1": ({"map_name": "8x8", "is_slippery": True}, 200),
    "Taxi-v4": ({}, 200),
    "CliffWalking-v1": ({"max_episode_steps": 200}, 200),  # no limit in the registry
}
"""How each task's environment is made, and its time limit, written out here on their own."""


@functools.cache
def environment(task_id: str) -> tuple[Transitions, dict[int, float], int]:
    """(P, initial distribution, time limit) of the task's environment, made here directly."""
    kwargs, horizon = ENVIRONMENTS[task_id]
    env = gym.make(task_id, **kwargs)
    core: Any = env.unwrapped
    transitions: Transitions = {
        int(s): {int(a): [(float(p), int(s2), float(r), bool(d)) for p, s2, r, d in outs]
                 for a, outs in acts.items()}
        for s, acts in core.P.items()}
    if task_id.startswith("CliffWalking"):
        initial = {int(core.start_state_index): 1.0}  # its source: every episode starts at the start cell
    else:
        initial = {s: float(p) for s, p in enumerate(core.initial_state_distrib) if p > 0}
    assert env.spec is not None and env.spec.max_episode_steps == horizon
    env.close()
    return transitions, initial, horizon


def _action_value(outcomes: list[tuple[float, int, float, bool]], later: dict[int, float]) -> float:
    return sum(p * (r + (0.0 if done else later[s2])) for p, s2, r, done in outcomes)


def optimum(task_id: str) -> float:
    """Backward induction with max over actions, V_H = 0, from the initial distribution."""
    transitions, initial, horizon = environment(task_id)
    value = {s: 0.0 for s in transitions}
    for _ in range(horizon):
        value = {s: max(_action_value(outs, value) for outs in acts.values())
                 for s, acts in transitions.items()}
    return sum(p * value[s] for s, p in initial.items())


def policy_value(task_id: str, policy: Callable[[int], dict[int, float]]) -> float:
    """Expected return of a stationary policy ``policy(state) -> {action: probability}``."""
    transitions, initial, horizon = environment(task_id)
    value = {s: 0.0 for s in transitions}
    for _ in range(horizon):
        value = {s: sum(q * _action_value(acts[a], value) for a, q in policy(s).items())
                 for s, acts in transitions.items()}
    return sum(p * value[s] for s, p in initial.items())


REPLAY_EPISODES = {"FrozenLake-v1": 2000, "FrozenLake8x8-v1": 1500, "Taxi-v4": 2000, "CliffWalking-v1": 50}
REPLAY_SEEDS_FROM = 2**63  # as large as evaluation seeds get


@functools.cache
def best_table_replay(task_id: str) -> ReplayResult:
    """Gymnasium's replay of the task's best stationary table on fixed seeds (shared by the tests)."""
    task = toy_text_task(task_id)
    n = REPLAY_EPISODES[task_id]
    return task.replay(task.best_stationary().actions, range(REPLAY_SEEDS_FROM, REPLAY_SEEDS_FROM + n))


def chi_square_bound(df: int, z: float = 4.75) -> float:
    """The chi-square quantile of about 1 - 1e-6 (z standard deviations; Wilson-Hilferty)."""
    h = 2.0 / (9.0 * df)
    return float(df * (1.0 - h + z * h**0.5) ** 3)


def chi_square(counts: npt.ArrayLike, probs: npt.ArrayLike) -> tuple[float, int]:
    """Pearson's statistic of counts against probabilities, and its degrees of freedom."""
    counts, probs = np.asarray(counts, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    expected = counts.sum() * probs
    keep = expected > 0
    assert counts[~keep].sum() == 0, "a count where the probability is 0"
    return float((((counts - expected) ** 2)[keep] / expected[keep]).sum()), int(keep.sum()) - 1
