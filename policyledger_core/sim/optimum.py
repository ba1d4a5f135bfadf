"""Exact reference values: the optimal expected return and exact baseline returns
(spec section 8), by backward induction over the finite-horizon MDP. "spec" means the
specification in the docstring of :mod:`policyledger_core.sim.environment`.

The state at decision time t is (alert code of step t, health HEALTHY/DEGRADED,
attack counter 0..3). The counter is carried because an observation policy sees
it (duration LONG once it reaches 3), although rewards and transitions ignore it.
Transition probabilities are written out from the spec's rules and the
constants in :mod:`policyledger_core.sim.dynamics`, independently of the simulator's
uniform-comparison code, so agreement with replay is a real cross-check.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig
from policyledger_core.sim.replay import Decide

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

N_HEALTH = dyn.N_LIVE_HEALTH  # HEALTHY, DEGRADED: the non-terminal health values
N_COUNTER = dyn.LONG_AFTER + 1
TIE_TOLERANCE = 1e-9
"""Action values this close count as tied, so float noise cannot break a true tie."""

_SEVERITY = dyn.ALERT_SEVERITY
_CRITICAL_PENALTY = dyn.CRITICAL_PENALTY_TENTHS / 10.0
_END_BONUS = np.array(dyn.END_BONUS_TENTHS[:N_HEALTH], dtype=np.float64) / 10.0


@dataclass(frozen=True, eq=False)
class OptimalSolution:
    """Value iteration's result for one configuration (arrays are read-only)."""

    config: EnvConfig
    value: float
    """Optimal expected return from reset (HEALTHY, counter 0, first alert drawn)."""
    actions: IntArray
    """(H, 18, 2, 4) optimal action by step, alert code, health, counter; lowest on ties."""
    q: FloatArray
    """(H, 18, 2, 4, 5) optimal action values."""


@dataclass(frozen=True)
class _Model:
    """The MDP's one-step ingredients for one configuration."""

    health: FloatArray
    """(18, 2, 5, 3) P(next health | alert code, health, action)."""
    next_alert: FloatArray
    """(3, 18) P(next alert code | current severity)."""
    first_alert: FloatArray
    """(18,) P(alert code at step 0)."""


def _health_by_severity() -> FloatArray:
    """(3, 2, 5, 3) P(next health | severity, health, action): spec 4.2."""
    p = np.zeros((3, N_HEALTH, dyn.N_ACTIONS, 3))
    for action in range(dyn.N_ACTIONS):
        holds = dyn.DEFENCE_HOLDS if action >= dyn.BLOCK_IP else 0.0
        # HIGH: a failed or absent defence hits; a hit degrades, or on DEGRADED may kill.
        p[dyn.HIGH, dyn.HEALTHY, action, dyn.HEALTHY] = holds
        p[dyn.HIGH, dyn.HEALTHY, action, dyn.DEGRADED] = 1.0 - holds
        critical = (1.0 - holds) * dyn.HIGH_TO_CRITICAL
        p[dyn.HIGH, dyn.DEGRADED, action, dyn.CRITICAL] = critical
        p[dyn.HIGH, dyn.DEGRADED, action, dyn.DEGRADED] = 1.0 - critical
        if action == dyn.IGNORE:
            degrade = dyn.MEDIUM_IGNORED_DEGRADES
            p[dyn.MEDIUM, dyn.HEALTHY, action, dyn.DEGRADED] = degrade
            p[dyn.MEDIUM, dyn.HEALTHY, action, dyn.HEALTHY] = 1.0 - degrade
            p[dyn.MEDIUM, dyn.DEGRADED, action, dyn.DEGRADED] = 1.0
        else:
            p[dyn.MEDIUM, dyn.HEALTHY, action, dyn.HEALTHY] = 1.0
            p[dyn.MEDIUM, dyn.DEGRADED, action, dyn.HEALTHY] = dyn.MEDIUM_RECOVERY
            p[dyn.MEDIUM, dyn.DEGRADED, action, dyn.DEGRADED] = 1.0 - dyn.MEDIUM_RECOVERY
        p[dyn.LOW, dyn.HEALTHY, action, dyn.HEALTHY] = 1.0
        p[dyn.LOW, dyn.DEGRADED, action, dyn.HEALTHY] = dyn.LOW_RECOVERY
        p[dyn.LOW, dyn.DEGRADED, action, dyn.DEGRADED] = 1.0 - dyn.LOW_RECOVERY
    return p


_HEALTH_BY_CODE = _health_by_severity()[_SEVERITY]
# The counter moves deterministically with the current severity (spec 4.3), so
# the continuation of state (code, counter) is read at counter _NEXT_COUNTER[code, counter].
_NEXT_COUNTER = np.array(
    [[dyn.next_counter(k, int(s)) for k in range(N_COUNTER)] for s in _SEVERITY], dtype=np.int64
)
# (code, health, counter) -> observation index.
_OBS_INDEX = (dyn.ALERT_OBS_BASE[:, None, None] + dyn.HEALTH_STRIDE * np.arange(N_HEALTH)[None, :, None]
              + (np.arange(N_COUNTER) >= dyn.LONG_AFTER)[None, None, :])


def _alert_given_severity(config: EnvConfig) -> FloatArray:
    """(3, 18) P(alert code | its severity): type and confidence are drawn independently."""
    conf_high = np.asarray(config.high_confidence_probs)
    out = np.zeros((3, dyn.N_ALERTS))
    for code in range(dyn.N_ALERTS):
        severity, attack, confidence = dyn.decode_alert(code)
        p_conf = conf_high[severity] if confidence == dyn.CONF_HIGH else 1.0 - conf_high[severity]
        out[severity, code] = config.type_probs[attack] * p_conf
    return out


def _model(config: EnvConfig) -> _Model:
    fresh = np.asarray(config.severity_probs)
    esc = config.escalation_prob
    # Escalation only follows a HIGH step; the fresh draw applies when it does not fire.
    severity_next = np.tile(fresh, (3, 1))
    severity_next[dyn.HIGH] = (1.0 - esc) * fresh
    severity_next[dyn.HIGH, dyn.HIGH] += esc
    by_severity = _alert_given_severity(config)
    return _Model(_HEALTH_BY_CODE, severity_next @ by_severity, fresh @ by_severity)


def _backward(config: EnvConfig, select: Callable[[int, FloatArray], FloatArray]) -> float:
    """Backward induction; ``select(t, q)`` turns q (18, 2, 4, 5) into values (18, 2, 4)."""
    model = _model(config)
    reward = dyn.REWARD[:, None, None, :]
    sev_index = _SEVERITY[:, None, None]
    health_index = np.arange(3)[None, :, None]
    counter_index = _NEXT_COUNTER[:, None, :]
    # after[s, h', k']: value after a step of severity s ended in health h', counter k'.
    after = np.empty((3, 3, N_COUNTER))
    after[:, dyn.CRITICAL] = _CRITICAL_PENALTY  # terminal: penalty, no future
    after[:, :N_HEALTH] = _END_BONUS[None, :, None]  # the last step: bonus, no bootstrap
    values = np.zeros((dyn.N_ALERTS, N_HEALTH, N_COUNTER))
    for t in range(config.horizon - 1, -1, -1):
        if t < config.horizon - 1:
            after[:, :N_HEALTH] = np.einsum("sc,chk->shk", model.next_alert, values)
        cont = after[sev_index, health_index, counter_index]  # (18, 3, 4)
        q = reward + np.einsum("chaj,cjk->chka", model.health, cont)
        values = select(t, q)
    return float(model.first_alert @ values[:, dyn.HEALTHY, 0])


def _read_only(array: npt.NDArray[np.generic]) -> None:
    array.flags.writeable = False


@functools.lru_cache(maxsize=32)
def solve(config: EnvConfig) -> OptimalSolution:
    """Value iteration over the configuration's MDP; cached per (equal) configuration."""
    shape = (config.horizon, dyn.N_ALERTS, N_HEALTH, N_COUNTER)
    q_all = np.empty((*shape, dyn.N_ACTIONS))
    actions = np.empty(shape, dtype=np.int64)

    def best(t: int, q: FloatArray) -> FloatArray:
        top: FloatArray = q.max(axis=-1)
        q_all[t] = q
        actions[t] = np.argmax(q >= top[..., None] - TIE_TOLERANCE, axis=-1)
        return top

    value = _backward(config, best)
    # The solution is shared through the cache, so nobody may change it in place.
    _read_only(q_all)
    _read_only(actions)
    return OptimalSolution(config, value, actions, q_all)


def optimal_decider(solution: OptimalSolution) -> Decide:
    """A ``replay.replay`` decision rule that plays ``solution.actions``."""
    actions = solution.actions

    def decide(t: int, codes: IntArray, health: IntArray, counter: IntArray) -> IntArray:
        # Replay still asks about episodes that ended CRITICAL; their action is
        # never used, so any in-range health index will do.
        chosen: IntArray = actions[t, codes, np.minimum(health, dyn.DEGRADED), counter]
        return chosen

    return decide


def _check_table(actions_by_obs: IntArray) -> IntArray:
    table = np.asarray(actions_by_obs)
    if table.shape != (dyn.N_OBS,):
        raise ValueError(f"actions_by_obs: expected shape ({dyn.N_OBS},), got {table.shape}")
    if not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"actions_by_obs: expected integers, got dtype {table.dtype}")
    if table.min() < 0 or table.max() >= dyn.N_ACTIONS:
        raise ValueError(f"actions_by_obs: actions must be 0..{dyn.N_ACTIONS - 1}")
    return table.astype(np.int64)


def expected_return(config: EnvConfig, actions_by_obs: IntArray) -> float:
    """Exact expected return of a stationary observation policy (an action for each of 108)."""
    chosen = _check_table(actions_by_obs)[_OBS_INDEX]  # (18, 2, 4)

    def follow(t: int, q: FloatArray) -> FloatArray:
        picked: FloatArray = np.take_along_axis(q, chosen[..., None], axis=-1)[..., 0]
        return picked

    return _backward(config, follow)


def expected_return_random(config: EnvConfig) -> float:
    """Exact expected return of the policy choosing each action with probability 1/5."""

    def average(t: int, q: FloatArray) -> FloatArray:
        mean: FloatArray = q.mean(axis=-1)
        return mean

    return _backward(config, average)
