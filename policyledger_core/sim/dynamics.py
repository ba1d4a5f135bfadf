"""The cyber-defense dynamics shared by the Gymnasium environment, the trainers,
the replay verifier and value iteration. "spec" in this package means the specification in
the docstring of :mod:`policyledger_core.sim.environment` ("spec 4.2" is its section 4.2).

Randomness layout: an episode of horizon H is fully determined by an (H, 6)
array of uniform doubles drawn at reset with ``Generator.random``:

=====  =======================================================
col    use at step t
=====  =======================================================
0      fresh severity draw (compared with ``severity_probs``)
1      escalation draw (step t forced HIGH if t-1 was HIGH)
2      attack type draw
3      confidence draw
4      defence-holds draw (HIGH severity, BLOCK_IP / ISOLATE)
5      health-change draw (degrade, recover or go critical)
=====  =======================================================

Every column is drawn for every step whether used or not, so the stream stays
aligned and chunked draws equal one-at-a-time draws. Rewards are kept in
integer tenths so returns add up exactly on every machine.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

from policyledger_core.sim.config import EnvConfig

Code = TypeVar("Code", int, npt.NDArray[np.int64])

LOW, MEDIUM, HIGH = 0, 1, 2
SCAN, BRUTE_FORCE, DOS = 0, 1, 2
HEALTHY, DEGRADED, CRITICAL = 0, 1, 2
CONF_LOW, CONF_HIGH = 0, 1
SHORT, LONG = 0, 1
IGNORE, MONITOR, RATE_LIMIT, BLOCK_IP, ISOLATE_SERVICE = 0, 1, 2, 3, 4

SEVERITY_NAMES = ("LOW", "MEDIUM", "HIGH")
ATTACK_NAMES = ("SCAN", "BRUTE_FORCE", "DOS")
HEALTH_NAMES = ("HEALTHY", "DEGRADED", "CRITICAL")
CONFIDENCE_NAMES = ("LOW", "HIGH")
DURATION_NAMES = ("SHORT", "LONG")
ACTION_NAMES = ("IGNORE", "MONITOR", "RATE_LIMIT", "BLOCK_IP", "ISOLATE_SERVICE")

N_OBS = 108
N_ACTIONS = 5
N_ALERTS = 18
N_LIVE_HEALTH = 2
"""Health values an episode goes on in (HEALTHY, DEGRADED); CRITICAL ends it."""
UNIFORMS_PER_STEP = 6
U_SEVERITY, U_ESCALATION, U_ATTACK, U_CONFIDENCE, U_DEFENCE, U_CHANGE = range(UNIFORMS_PER_STEP)
"""Column of each draw in an episode's uniforms (see the table above)."""
LONG_AFTER = 3  # consecutive steps of severity >= MEDIUM that make duration LONG

DEFENCE_HOLDS = 0.7
HIGH_TO_CRITICAL = 0.4
MEDIUM_RECOVERY = 0.3
MEDIUM_IGNORED_DEGRADES = 0.2
LOW_RECOVERY = 0.4

CRITICAL_PENALTY_TENTHS = -100
END_BONUS_TENTHS = (50, 20, 0)  # by final health: HEALTHY, DEGRADED, (CRITICAL)


def observation_index(severity: int, attack: int, health: int, confidence: int,
                      duration: int) -> int:
    """The spec's index of an observation in ``Discrete(108)``."""
    return (((severity * 3 + attack) * 3 + health) * 2 + confidence) * 2 + duration


HEALTH_STRIDE = observation_index(LOW, SCAN, DEGRADED, CONF_LOW, SHORT)
"""How far one step of health moves an observation index (the other factors kept)."""


def decode_observation(index: int) -> tuple[int, int, int, int, int]:
    """(severity, attack_type, health, confidence, duration) of an observation index."""
    index, duration = divmod(index, 2)
    index, confidence = divmod(index, 2)
    index, health = divmod(index, 3)
    severity, attack = divmod(index, 3)
    return severity, attack, health, confidence, duration


def alert_code(severity: Code, attack: Code, confidence: Code) -> Code:
    """Index 0..17 of an alert (severity, attack type, confidence); element by element on arrays."""
    return (severity * 3 + attack) * 2 + confidence


def decode_alert(code: int) -> tuple[int, int, int]:
    """(severity, attack_type, confidence) of an alert code: the inverse of :func:`alert_code`."""
    rest, confidence = divmod(code, 2)
    severity, attack = divmod(rest, 3)
    return severity, attack, confidence


def step_reward_tenths(severity: int, attack: int, confidence: int, action: int) -> int:
    """Base cost plus adjustment of spec section 4.1, in tenths."""
    if action == IGNORE:
        if severity == HIGH:
            return -100
        if severity == MEDIUM:
            return -40
        return 20 if confidence == CONF_LOW else -10
    if action == MONITOR:
        return -2 + (30, 10, -30)[severity]
    if action == RATE_LIMIT:
        if attack == SCAN:
            return -10 - 5
        return -10 + (80 if severity >= MEDIUM else 30)
    if action == BLOCK_IP:
        if severity == HIGH and confidence == CONF_HIGH:
            return -15 + 100
        return -15 + (50 if severity >= MEDIUM else -20)
    if action == ISOLATE_SERVICE:
        if severity == HIGH:
            return -30 + (120 if attack == DOS else 80)
        return -30 - 40
    raise ValueError(f"action: must be 0..4, got {action!r}")


def _reward_table() -> npt.NDArray[np.int64]:
    table = np.zeros((N_ALERTS, N_ACTIONS), dtype=np.int64)
    for code in range(N_ALERTS):
        for act in range(N_ACTIONS):
            table[code, act] = step_reward_tenths(*decode_alert(code), act)
    return table


REWARD_TENTHS = _reward_table()
"""Step reward in tenths by (alert code, action)."""
REWARD = REWARD_TENTHS / 10.0
"""Step reward as float by (alert code, action)."""
ALERT_SEVERITY = np.array([decode_alert(code)[0] for code in range(N_ALERTS)], dtype=np.int64)
"""Severity by alert code (:func:`decode_alert` for arrays of codes)."""
ALERT_OBS_BASE = np.array(
    [observation_index(severity, attack, HEALTHY, confidence, SHORT)
     for severity, attack, confidence in map(decode_alert, range(N_ALERTS))],
    dtype=np.int64,
)
"""Observation index of an alert at health HEALTHY and duration SHORT; add
health * HEALTH_STRIDE + duration."""


def next_health(severity: int, action: int, health: int, u_defence: float, u_change: float) -> int:
    """Health after a step (spec 4.2), from the step's two pre-drawn uniforms."""
    if severity == HIGH:
        if action >= BLOCK_IP and u_defence < DEFENCE_HOLDS:
            return health
        if health == HEALTHY:
            return DEGRADED
        return CRITICAL if u_change < HIGH_TO_CRITICAL else health
    if severity == MEDIUM:
        if action != IGNORE:
            return HEALTHY if health == DEGRADED and u_change < MEDIUM_RECOVERY else health
        return DEGRADED if health == HEALTHY and u_change < MEDIUM_IGNORED_DEGRADES else health
    return HEALTHY if health == DEGRADED and u_change < LOW_RECOVERY else health


def next_health_array(severity: npt.NDArray[np.int64], action: npt.NDArray[np.int64],
                      health: npt.NDArray[np.int64], u_defence: npt.NDArray[np.float64],
                      u_change: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Vectorised :func:`next_health` (arguments broadcast); identical element by element."""
    high = severity == HIGH
    medium = severity == MEDIUM
    holds = high & (action >= BLOCK_IP) & (u_defence < DEFENCE_HOLDS)
    hit = high & ~holds
    healthy = health == HEALTHY
    degraded = health == DEGRADED
    worse = (hit & healthy) | (medium & (action == IGNORE) & healthy & (u_change < MEDIUM_IGNORED_DEGRADES))
    critical = hit & degraded & (u_change < HIGH_TO_CRITICAL)
    recover_p = np.where(medium, MEDIUM_RECOVERY, LOW_RECOVERY)
    better = degraded & ~high & ~(medium & (action == IGNORE)) & (u_change < recover_p)
    # The three changes exclude each other; everything else keeps its health.
    out: npt.NDArray[np.int64] = np.where(
        better, HEALTHY, np.where(critical, CRITICAL, np.where(worse, DEGRADED, health)))
    return out


def next_counter(counter: int, severity: int) -> int:
    """Consecutive-attack counter after a step (spec 4.3), capped at LONG_AFTER."""
    return 0 if severity == LOW else min(counter + 1, LONG_AFTER)


def long_duration(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether the duration is LONG at each step of alert codes (..., H).

    The counter of spec 4.3 has reached LONG_AFTER at step t exactly when the
    LONG_AFTER steps before t were all MEDIUM or HIGH, so no step-by-step loop is needed.
    """
    attack = ALERT_SEVERITY[codes] != LOW
    horizon, n = codes.shape[-1], LONG_AFTER
    out = np.zeros(codes.shape, dtype=bool)
    if horizon > n:
        out[..., n:] = attack[..., n - 1:-1]
        for back in range(2, n + 1):
            out[..., n:] &= attack[..., n - back:horizon - back]
    return out


def observation_bases(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Observation index at health HEALTHY of each step of alert codes (..., H), duration
    included; add ``health * HEALTH_STRIDE``. An agent's actions change only the health."""
    bases: npt.NDArray[np.int64] = ALERT_OBS_BASE[codes] + long_duration(codes)
    return bases


def category(uniforms: npt.NDArray[np.float64], cuts: tuple[float, ...]) -> npt.NDArray[np.int64]:
    """Number of ``cuts`` <= each uniform (the drawn category); cuts ascend.

    Plain comparisons: several times faster than ``searchsorted`` for a few cuts.
    """
    out = np.zeros(uniforms.shape, dtype=np.int64)
    for cut in cuts:
        out += uniforms >= cut
    return out


def schedule_codes(config: EnvConfig, uniforms: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Alert codes (..., H) from uniforms (..., H, 6): spec section 3."""
    conf_p = np.asarray(config.high_confidence_probs)
    fresh = category(uniforms[..., U_SEVERITY], config.severity_thresholds)
    severity = np.empty_like(fresh)
    severity[..., 0] = fresh[..., 0]
    escalates = uniforms[..., U_ESCALATION] < config.escalation_prob
    for t in range(1, uniforms.shape[-2]):
        forced = (severity[..., t - 1] == HIGH) & escalates[..., t]
        severity[..., t] = np.where(forced, HIGH, fresh[..., t])
    attack = category(uniforms[..., U_ATTACK], config.type_thresholds)
    confidence = (uniforms[..., U_CONFIDENCE] < conf_p[severity]).astype(np.int64)
    return alert_code(severity, attack, confidence).astype(np.int64)


def draw_episode_uniforms(rng: np.random.Generator, config: EnvConfig,
                          episodes: int | None = None) -> npt.NDArray[np.float64]:
    """Uniforms for one episode (H, 6), or for ``episodes`` consecutive ones (E, H, 6)."""
    shape = (config.horizon, UNIFORMS_PER_STEP)
    if episodes is None:
        return rng.random(shape)
    return rng.random((episodes, *shape))


def myopic_actions() -> npt.NDArray[np.int64]:
    """Best immediate-reward action for each alert code (lowest index on ties)."""
    best: npt.NDArray[np.int64] = np.argmax(REWARD_TENTHS, axis=1).astype(np.int64)
    return best


# Step outcomes by key: a step's alert code, whether the defence would hold and
# which band the health-change uniform falls in decide, for every (action,
# health) pair, the next health and the reward. Kernels that step many agents
# precompute the key in bulk and then only look up.
_CHANGE_CUTS = tuple(sorted({HIGH_TO_CRITICAL, MEDIUM_RECOVERY, MEDIUM_IGNORED_DEGRADES,
                             LOW_RECOVERY}))
_CHANGE_REPS = (0.0, *_CHANGE_CUTS)  # a uniform inside each band
_DEFENCE_REPS = (0.0, DEFENCE_HOLDS)  # holds, fails
N_OUTCOME_KEYS = N_ALERTS * len(_DEFENCE_REPS) * len(_CHANGE_REPS)
PAIRS = N_ACTIONS * N_LIVE_HEALTH
"""(action, health HEALTHY/DEGRADED) pairs, indexed action * N_LIVE_HEALTH + health."""


def outcome_keys(codes: npt.NDArray[np.int64], uniforms: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Outcome key (..., H) of each step from its alert codes and uniforms (..., H, 6)."""
    fails = (uniforms[..., U_DEFENCE] >= DEFENCE_HOLDS).astype(np.int64)
    band = category(uniforms[..., U_CHANGE], _CHANGE_CUTS)
    keys: npt.NDArray[np.int64] = ((codes * len(_DEFENCE_REPS) + fails) * len(_CHANGE_REPS)
                                   + band).astype(np.int64)
    return keys


def _outcome_tables() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    health_out = np.zeros((N_OUTCOME_KEYS, PAIRS), dtype=np.int64)
    tenths_mid = np.zeros_like(health_out)
    tenths_last = np.zeros_like(health_out)
    for key in range(N_OUTCOME_KEYS):
        rest, band = divmod(key, len(_CHANGE_REPS))
        code, fails = divmod(rest, len(_DEFENCE_REPS))
        severity = decode_alert(code)[0]
        for action in range(N_ACTIONS):
            for health in range(N_LIVE_HEALTH):
                pair = action * N_LIVE_HEALTH + health
                new = next_health(severity, action, health, _DEFENCE_REPS[fails], _CHANGE_REPS[band])
                base = int(REWARD_TENTHS[code, action])
                health_out[key, pair] = new
                if new == CRITICAL:
                    tenths_mid[key, pair] = tenths_last[key, pair] = base + CRITICAL_PENALTY_TENTHS
                else:
                    tenths_mid[key, pair] = base
                    tenths_last[key, pair] = base + END_BONUS_TENTHS[new]
    return health_out.ravel(), tenths_mid.ravel(), tenths_last.ravel()


OUTCOME_HEALTH, OUTCOME_TENTHS, OUTCOME_TENTHS_LAST = _outcome_tables()
"""Flat tables indexed ``key * PAIRS + action * 2 + health``: next health, reward in tenths
of a step before the last, and of the last step (end bonus included)."""
