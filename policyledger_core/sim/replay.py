"""Vectorised replay: run a decision rule on many pre-drawn episodes at once.

Used by verification (policies, baselines and the optimum on one suite) and by
tests; element by element it does exactly what the Gymnasium environment does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig

IntArray = npt.NDArray[np.int64]
Decide = Callable[[int, IntArray, IntArray, IntArray], IntArray]
"""decide(t, alert_codes, health, counter) -> actions, each array over episodes."""


@dataclass(frozen=True, eq=False)
class ReplayOutcome:
    """Per-episode results of a replay."""

    returns_tenths: IntArray
    """(N,) exact returns in tenths."""
    steps: IntArray
    """(N,) steps taken before the episode ended."""
    action_counts: IntArray
    """(5,) actions taken over all episodes."""

    @property
    def returns(self) -> npt.NDArray[np.float64]:
        return self.returns_tenths / 10.0


def observation_decider(actions: IntArray) -> Decide:
    """Decide by an observation-indexed action table (108,)."""
    table = np.asarray(actions, dtype=np.int64)

    def decide(t: int, codes: IntArray, health: IntArray, counter: IntArray) -> IntArray:
        obs = dyn.ALERT_OBS_BASE[codes] + health * dyn.HEALTH_STRIDE + (counter >= dyn.LONG_AFTER)
        chosen: IntArray = table[obs]
        return chosen

    return decide


def random_decider(uniforms: npt.NDArray[np.float64]) -> Decide:
    """Uniformly random actions from pre-drawn uniforms (N, H)."""

    def decide(t: int, codes: IntArray, health: IntArray, counter: IntArray) -> IntArray:
        return (uniforms[:, t] * dyn.N_ACTIONS).astype(np.int64)

    return decide


def replay(config: EnvConfig, uniforms: npt.NDArray[np.float64], decide: Decide) -> ReplayOutcome:
    """Play every episode of ``uniforms`` (N, H, 6) with ``decide``."""
    n, horizon = uniforms.shape[0], config.horizon
    codes = dyn.schedule_codes(config, uniforms)
    health = np.zeros(n, dtype=np.int64)
    counter = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    ret = np.zeros(n, dtype=np.int64)
    steps = np.zeros(n, dtype=np.int64)
    counts = np.zeros(dyn.N_ACTIONS, dtype=np.int64)
    end_bonus = np.array(dyn.END_BONUS_TENTHS, dtype=np.int64)
    for t in range(horizon):
        code = codes[:, t]
        action = decide(t, code, health, counter)
        counts += np.bincount(action[alive], minlength=dyn.N_ACTIONS)
        severity = dyn.ALERT_SEVERITY[code]
        reward = dyn.REWARD_TENTHS[code, action]
        health = dyn.next_health_array(severity, action, health, uniforms[:, t, dyn.U_DEFENCE],
                                       uniforms[:, t, dyn.U_CHANGE])
        counter = np.where(severity == dyn.LOW, 0, np.minimum(counter + 1, dyn.LONG_AFTER))
        critical = health == dyn.CRITICAL
        reward = reward + np.where(critical, dyn.CRITICAL_PENALTY_TENTHS, 0)
        if t == horizon - 1:
            reward = reward + np.where(critical, 0, end_bonus[health])
        ret += np.where(alive, reward, 0)
        steps += alive
        alive &= ~critical
        if not alive.any():
            break
    return ReplayOutcome(ret, steps, counts)
