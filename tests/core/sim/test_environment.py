"""Tests of the cyber-defense environment against its specification.

Spec: the docstring of :mod:`policyledger_core.sim.environment` (cited below as "spec 4.1" etc.).
Every expected value here is written out from the spec text, not computed with
the code under test. The only thing taken from the code's documentation is the
layout of the per-step uniforms (module docstring of ``dynamics``): column 0
fresh severity, 1 escalation, 2 attack type, 3 confidence, 4 defence holds,
5 health change. Categories are drawn by comparing a uniform with cumulative
probabilities (spec 5), and an event "with probability p" happens when u < p.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import policyledger_core  # noqa: F401  (importing the package registers the environment)
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import ENV_ID, PRESETS, ConfigError, EnvConfig
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.sim.replay import observation_decider, replay

# --- factor values of spec section 1 and actions of section 2 -----------------------------
LOW, MEDIUM, HIGH = 0, 1, 2
SCAN, BRUTE_FORCE, DOS = 0, 1, 2
HEALTHY, DEGRADED, CRITICAL = 0, 1, 2
CONF_LOW, CONF_HIGH = 0, 1
SHORT, LONG = 0, 1
IGNORE, MONITOR, RATE_LIMIT, BLOCK_IP, ISOLATE = 0, 1, 2, 3, 4
SEVERITIES = (LOW, MEDIUM, HIGH)
ATTACKS = (SCAN, BRUTE_FORCE, DOS)
CONFIDENCES = (CONF_LOW, CONF_HIGH)
ACTIONS = (IGNORE, MONITOR, RATE_LIMIT, BLOCK_IP, ISOLATE)
ALERTS = [(s, a, c) for s in SEVERITIES for a in ATTACKS for c in CONFIDENCES]

# --- spec section 6 (severity_probs, escalation_prob, H) and section 3 defaults ----------
SPEC_TYPE_PROBS = (0.4, 0.4, 0.2)
SPEC_HIGH_CONF_PROBS = (0.3, 0.5, 0.8)
SPEC_PRESETS: dict[str, tuple[int, tuple[float, float, float], float]] = {
    "standard": (24, (0.5, 0.3, 0.2), 0.6),
    "short-burst": (12, (0.5, 0.3, 0.2), 0.6),
    "extended": (48, (0.5, 0.3, 0.2), 0.6),
    "high-pressure": (24, (0.3, 0.3, 0.4), 0.75),
    "sparse-attacks": (24, (0.7, 0.2, 0.1), 0.4),
}


def spec_index(severity: int, attack: int, health: int, confidence: int, duration: int) -> int:
    """Spec section 1, verbatim."""
    return (((severity * 3 + attack) * 3 + health) * 2 + confidence) * 2 + duration


# --- spec 4.1, written out by hand: base, adjustment, and the "total" column ---------------
SPEC_BASE = {IGNORE: Decimal("0"), MONITOR: Decimal("-0.2"), RATE_LIMIT: Decimal("-1"),
             BLOCK_IP: Decimal("-1.5"), ISOLATE: Decimal("-3")}


def spec_adjustment(severity: int, attack: int, confidence: int, action: int) -> Decimal:
    if action == IGNORE:
        if severity == HIGH:
            return Decimal("-10")
        if severity == MEDIUM:
            return Decimal("-4")
        return Decimal("2") if confidence == CONF_LOW else Decimal("-1")
    if action == MONITOR:
        return {LOW: Decimal("3"), MEDIUM: Decimal("1"), HIGH: Decimal("-3")}[severity]
    if action == RATE_LIMIT:
        if attack in (BRUTE_FORCE, DOS):
            return Decimal("8") if severity >= MEDIUM else Decimal("3")
        return Decimal("-0.5")
    if action == BLOCK_IP:
        if severity == HIGH and confidence == CONF_HIGH:
            return Decimal("10")
        return Decimal("5") if severity >= MEDIUM else Decimal("-2")
    assert action == ISOLATE
    if severity == HIGH:
        return Decimal("12") if attack == DOS else Decimal("8")
    return Decimal("-4")


# The spec's "total" column, per action.
SPEC_TOTALS = {
    IGNORE: {Decimal("-10"), Decimal("-4"), Decimal("2"), Decimal("-1")},
    MONITOR: {Decimal("2.8"), Decimal("0.8"), Decimal("-3.2")},
    RATE_LIMIT: {Decimal("7"), Decimal("2"), Decimal("-1.5")},
    BLOCK_IP: {Decimal("8.5"), Decimal("3.5"), Decimal("-3.5")},
    ISOLATE: {Decimal("9"), Decimal("5"), Decimal("-7")},
}

EXPECTED_REWARD: dict[tuple[int, int, int, int], Decimal] = {
    (s, a, c, act): SPEC_BASE[act] + spec_adjustment(s, a, c, act)
    for (s, a, c) in ALERTS for act in ACTIONS
}


# --- forcing a schedule through the uniforms (standard thresholds, spec 3) -----------------
# severity: LOW [0, .5), MEDIUM [.5, .8), HIGH [.8, 1); type: SCAN [0, .4), BF [.4, .8), DOS [.8, 1)
SEV_U = {LOW: 0.25, MEDIUM: 0.65, HIGH: 0.9}
TYPE_U = {SCAN: 0.2, BRUTE_FORCE: 0.6, DOS: 0.9}
CONF_U = {CONF_HIGH: 0.0, CONF_LOW: 0.999}  # HIGH with probability p > 0 <=> u < p
NEVER = 0.999  # a uniform that makes no event of probability <= .8 happen (no escalation...)
ALWAYS = 0.0  # a uniform that makes every event of probability > 0 happen
EPS = 1e-9


def schedule(alerts: list[tuple[int, int, int]], horizon: int = 24,
             u_defence: float | list[float] = NEVER,
             u_change: float | list[float] = NEVER) -> np.ndarray:
    """Uniforms (horizon, 6) whose schedule starts with ``alerts`` (then LOW SCAN LOW alerts),
    never escalates, and uses the given defence / health-change uniforms per step."""
    rows = list(alerts) + [(LOW, SCAN, CONF_LOW)] * (horizon - len(alerts))
    u = np.empty((horizon, 6))
    for t, (s, a, c) in enumerate(rows):
        u[t, :4] = (SEV_U[s], NEVER, TYPE_U[a], CONF_U[c])
    u[:, 4] = u_defence if np.isscalar(u_defence) else list(u_defence) + [NEVER] * (
        horizon - len(u_defence))
    u[:, 5] = u_change if np.isscalar(u_change) else list(u_change) + [NEVER] * (
        horizon - len(u_change))
    return u


def assert_alert(info: dict[str, Any], alert: tuple[int, int, int]) -> None:
    """The forced schedule really shows the intended alert (guards the helper itself)."""
    assert (info["severity"], info["attack_type"], info["confidence"]) == alert


def binomial_tolerance(p: float, n: int, z: float = 5.0) -> float:
    """z standard errors of a binomial proportion with success probability p over n trials."""
    return z * math.sqrt(p * (1.0 - p) / n)


# ================================================================ 4.1 reward table


def test_spec_reward_table_is_consistent_with_its_total_column() -> None:
    # base + adjustment, over all alerts, gives exactly the totals the spec lists per action
    for act in ACTIONS:
        totals = {v for (_, _, _, a), v in EXPECTED_REWARD.items() if a == act}
        assert totals == SPEC_TOTALS[act], act
    assert len(EXPECTED_REWARD) == 18 * 5
    # spec 4.4: the largest step reward (9) is what makes 24*9 + 5 = 221 the largest return
    assert max(EXPECTED_REWARD.values()) == Decimal("9")


def test_reward_table_in_dynamics_matches_spec_cell_by_cell() -> None:
    assert dyn.REWARD.shape == (18, 5)
    mismatches = []
    for (s, a, c, act), expected in EXPECTED_REWARD.items():
        code = (s * 3 + a) * 2 + c  # alert code as documented in dynamics
        assert dyn.alert_code(s, a, c) == code
        got = dyn.REWARD[code, act]
        if got != float(expected) or dyn.REWARD_TENTHS[code, act] != int(expected * 10):
            mismatches.append(((s, a, c, act), float(got), float(expected)))
    assert mismatches == []


def test_step_reward_matches_spec_cell_by_cell() -> None:
    env = CyberDefenseEnv()
    mismatches = []
    for alert in ALERTS:
        for act in ACTIONS:
            obs, info = env.load_episode(schedule([alert]))
            assert_alert(info, alert)
            assert obs == spec_index(alert[0], alert[1], HEALTHY, alert[2], SHORT)
            _, reward, terminated, truncated, _ = env.step(act)
            assert not terminated and not truncated  # step 0 of 24 never ends the episode
            if reward != float(EXPECTED_REWARD[(*alert, act)]):
                mismatches.append(((*alert, act), reward, float(EXPECTED_REWARD[(*alert, act)])))
    assert mismatches == []


def test_myopic_actions_pick_the_best_spec_reward() -> None:
    for (s, a, c) in ALERTS:
        best = max(EXPECTED_REWARD[(s, a, c, act)] for act in ACTIONS)
        first_best = min(act for act in ACTIONS if EXPECTED_REWARD[(s, a, c, act)] == best)
        assert dyn.myopic_actions()[(s * 3 + a) * 2 + c] == first_best


# ================================================================ 4.2 health transitions

# (severity, action, health, u_defence, u_change, expected next health)
BOUNDARY_CASES = [
    # HIGH with a strong action: the defence holds with probability .7 (health unchanged)
    *[(HIGH, act, h, 0.7 - EPS, ALWAYS, h) for act in (BLOCK_IP, ISOLATE)
      for h in (HEALTHY, DEGRADED)],
    # ... and when it fails: HEALTHY -> DEGRADED; DEGRADED -> CRITICAL with probability .4
    *[(HIGH, act, HEALTHY, 0.7 + EPS, u, DEGRADED) for act in (BLOCK_IP, ISOLATE)
      for u in (ALWAYS, NEVER)],
    *[(HIGH, act, DEGRADED, 0.7 + EPS, 0.4 - EPS, CRITICAL) for act in (BLOCK_IP, ISOLATE)],
    *[(HIGH, act, DEGRADED, 0.7 + EPS, 0.4 + EPS, DEGRADED) for act in (BLOCK_IP, ISOLATE)],
    # HIGH with a weak action: no defence at all, whatever the defence uniform
    *[(HIGH, act, HEALTHY, ud, u, DEGRADED) for act in (IGNORE, MONITOR, RATE_LIMIT)
      for ud in (ALWAYS, NEVER) for u in (ALWAYS, NEVER)],
    *[(HIGH, act, DEGRADED, ALWAYS, 0.4 - EPS, CRITICAL) for act in (IGNORE, MONITOR, RATE_LIMIT)],
    *[(HIGH, act, DEGRADED, ALWAYS, 0.4 + EPS, DEGRADED) for act in (IGNORE, MONITOR, RATE_LIMIT)],
    # MEDIUM, a != IGNORE: DEGRADED -> HEALTHY with probability .3; HEALTHY stays
    *[(MEDIUM, act, DEGRADED, ud, 0.3 - EPS, HEALTHY) for act in ACTIONS[1:]
      for ud in (ALWAYS, NEVER)],
    *[(MEDIUM, act, DEGRADED, ud, 0.3 + EPS, DEGRADED) for act in ACTIONS[1:]
      for ud in (ALWAYS, NEVER)],
    *[(MEDIUM, act, HEALTHY, ud, ALWAYS, HEALTHY) for act in ACTIONS[1:] for ud in (ALWAYS, NEVER)],
    # MEDIUM, a == IGNORE: HEALTHY -> DEGRADED with probability .2; DEGRADED does not recover
    (MEDIUM, IGNORE, HEALTHY, NEVER, 0.2 - EPS, DEGRADED),
    (MEDIUM, IGNORE, HEALTHY, NEVER, 0.2 + EPS, HEALTHY),
    (MEDIUM, IGNORE, DEGRADED, ALWAYS, ALWAYS, DEGRADED),
    (MEDIUM, IGNORE, DEGRADED, NEVER, ALWAYS, DEGRADED),
    # LOW, any action: DEGRADED -> HEALTHY with probability .4; HEALTHY stays
    *[(LOW, act, DEGRADED, ud, 0.4 - EPS, HEALTHY) for act in ACTIONS for ud in (ALWAYS, NEVER)],
    *[(LOW, act, DEGRADED, ud, 0.4 + EPS, DEGRADED) for act in ACTIONS for ud in (ALWAYS, NEVER)],
    *[(LOW, act, HEALTHY, ud, u, HEALTHY) for act in ACTIONS for ud in (ALWAYS, NEVER)
      for u in (ALWAYS, NEVER)],
]


@pytest.mark.parametrize(("severity", "action", "health", "u_defence", "u_change", "expected"),
                         BOUNDARY_CASES)
def test_next_health_at_thresholds(severity: int, action: int, health: int, u_defence: float,
                                   u_change: float, expected: int) -> None:
    assert dyn.next_health(severity, action, health, u_defence, u_change) == expected
    got = dyn.next_health_array(np.array([severity]), np.array([action]), np.array([health]),
                                np.array([u_defence]), np.array([u_change]))
    assert got.tolist() == [expected]


def spec_transition(severity: int, action: int, health: int) -> dict[int, Fraction]:
    """P(next health) of spec 4.2 for a non-terminal health, written out by hand."""
    p = Fraction
    if severity == HIGH:
        hold = p(7, 10) if action in (BLOCK_IP, ISOLATE) else p(0)
        fail = 1 - hold
        if health == HEALTHY:
            return {HEALTHY: hold, DEGRADED: fail}
        return {DEGRADED: hold + fail * p(6, 10), CRITICAL: fail * p(4, 10)}
    if severity == MEDIUM and action != IGNORE:
        return {HEALTHY: p(1)} if health == HEALTHY else {HEALTHY: p(3, 10), DEGRADED: p(7, 10)}
    if severity == MEDIUM:
        return {HEALTHY: p(8, 10), DEGRADED: p(2, 10)} if health == HEALTHY else {DEGRADED: p(1)}
    return {HEALTHY: p(1)} if health == HEALTHY else {HEALTHY: p(4, 10), DEGRADED: p(6, 10)}


def test_transition_probabilities_are_exactly_the_spec() -> None:
    # Midpoints of a 50 x 50 grid over (u_defence, u_change): every spec probability
    # (.7, .4, .3, .2) is a multiple of 1/50, so the fraction of grid points leading to each
    # next health is exactly the spec's probability (u uniform on [0, 1), independent columns).
    n = 50
    mids = (np.arange(n) + 0.5) / n
    ud, uc = (g.ravel() for g in np.meshgrid(mids, mids, indexing="ij"))
    for severity in SEVERITIES:
        for action in ACTIONS:
            for health in (HEALTHY, DEGRADED):
                expected = {k: v for k, v in spec_transition(severity, action, health).items() if v}
                ones = np.ones(n * n, dtype=np.int64)
                arr = dyn.next_health_array(ones * severity, ones * action, ones * health, ud, uc)
                got = {int(k): Fraction(int(c), n * n)
                       for k, c in zip(*np.unique(arr, return_counts=True), strict=True)}
                assert got == expected, (severity, action, health)
                scalar = [dyn.next_health(severity, action, health, float(d), float(c))
                          for d, c in zip(ud, uc, strict=True)]
                assert scalar == arr.tolist(), (severity, action, health)


def test_next_health_array_equals_next_health_element_wise() -> None:
    # every threshold, a hair either side of it, the extremes, and random uniforms
    special = [0.0, 1.0 - 2.0**-53]
    for p in (0.2, 0.3, 0.4, 0.7):
        special += [p, np.nextafter(p, 0.0), np.nextafter(p, 1.0), p - 1e-12, p + 1e-12]
    us = np.concatenate([special, np.random.default_rng(1234).random(40)])
    grid = np.array(np.meshgrid(SEVERITIES, ACTIONS, (HEALTHY, DEGRADED, CRITICAL),
                                np.arange(len(us)), np.arange(len(us)), indexing="ij"))
    sev, act, health, i, j = (g.ravel() for g in grid)
    ud, uc = us[i], us[j]
    got = dyn.next_health_array(sev, act, health, ud, uc)
    expected = [dyn.next_health(int(s), int(a), int(h), float(d), float(c))
                for s, a, h, d, c in zip(sev, act, health, ud, uc, strict=True)]
    assert got.tolist() == expected


# Through env.step: (alerts, actions, u_defence per step, u_change per step, healths after steps)
ENV_TRANSITIONS = {
    "high-block-holds": ([(HIGH, SCAN, CONF_HIGH)], [BLOCK_IP], [0.69], [ALWAYS], [HEALTHY]),
    "high-block-fails": ([(HIGH, SCAN, CONF_HIGH)], [BLOCK_IP], [0.71], [ALWAYS], [DEGRADED]),
    "high-isolate-holds": ([(HIGH, DOS, CONF_LOW)], [ISOLATE], [0.69], [ALWAYS], [HEALTHY]),
    "high-ignore-degrades": ([(HIGH, DOS, CONF_LOW)], [IGNORE], [ALWAYS], [NEVER], [DEGRADED]),
    "high-degraded-critical": ([(HIGH, DOS, CONF_LOW)] * 2, [IGNORE, MONITOR], [ALWAYS] * 2,
                               [NEVER, 0.39], [DEGRADED, CRITICAL]),
    "high-degraded-survives": ([(HIGH, DOS, CONF_LOW)] * 2, [IGNORE, MONITOR], [ALWAYS] * 2,
                               [NEVER, 0.41], [DEGRADED, DEGRADED]),
    "high-degraded-defence-holds": ([(HIGH, DOS, CONF_LOW)] * 2, [IGNORE, ISOLATE],
                                    [ALWAYS, 0.69], [NEVER, ALWAYS], [DEGRADED, DEGRADED]),
    "medium-act-recovers": ([(HIGH, SCAN, CONF_LOW), (MEDIUM, SCAN, CONF_LOW)],
                            [IGNORE, MONITOR], [NEVER] * 2, [NEVER, 0.29], [DEGRADED, HEALTHY]),
    "medium-act-no-recovery": ([(HIGH, SCAN, CONF_LOW), (MEDIUM, SCAN, CONF_LOW)],
                               [IGNORE, RATE_LIMIT], [NEVER] * 2, [NEVER, 0.31],
                               [DEGRADED, DEGRADED]),
    "medium-ignore-degrades": ([(MEDIUM, BRUTE_FORCE, CONF_LOW)], [IGNORE], [NEVER], [0.19],
                               [DEGRADED]),
    "medium-ignore-holds": ([(MEDIUM, BRUTE_FORCE, CONF_LOW)], [IGNORE], [NEVER], [0.21],
                            [HEALTHY]),
    "low-recovers": ([(HIGH, SCAN, CONF_LOW), (LOW, SCAN, CONF_HIGH)], [IGNORE, ISOLATE],
                     [NEVER] * 2, [NEVER, 0.39], [DEGRADED, HEALTHY]),
    "low-no-recovery": ([(HIGH, SCAN, CONF_LOW), (LOW, SCAN, CONF_HIGH)], [IGNORE, IGNORE],
                        [NEVER] * 2, [NEVER, 0.41], [DEGRADED, DEGRADED]),
}


@pytest.mark.parametrize("name", sorted(ENV_TRANSITIONS))
def test_health_transitions_through_step(name: str) -> None:
    alerts, actions, u_def, u_chg, healths = ENV_TRANSITIONS[name]
    env = CyberDefenseEnv()
    _, info = env.load_episode(schedule(alerts, u_defence=u_def, u_change=u_chg))
    assert info["health"] == HEALTHY
    for alert, action, health in zip(alerts, actions, healths, strict=True):
        assert_alert(info, alert)
        _, reward, terminated, truncated, info = env.step(action)
        assert info["health"] == health
        assert terminated == (health == CRITICAL)
        assert truncated is False
        extra = Decimal("-10") if health == CRITICAL else Decimal("0")
        assert reward == float(EXPECTED_REWARD[(*alert, action)] + extra)


# ================================================================ 1 + 4.3 observation, duration


def test_observation_index_formula_is_a_bijection_onto_discrete_108() -> None:
    seen = set()
    for s in SEVERITIES:
        for a in ATTACKS:
            for h in (HEALTHY, DEGRADED, CRITICAL):
                for c in CONFIDENCES:
                    for d in (SHORT, LONG):
                        index = spec_index(s, a, h, c, d)
                        assert dyn.observation_index(s, a, h, c, d) == index
                        assert dyn.decode_observation(index) == (s, a, h, c, d)
                        seen.add(index)
    assert seen == set(range(108))
    env = CyberDefenseEnv()
    assert env.observation_space == gym.spaces.Discrete(108)
    assert env.action_space == gym.spaces.Discrete(5)


def test_duration_counts_consecutive_attack_steps_and_low_resets_it() -> None:
    sevs = [MEDIUM, HIGH, MEDIUM, MEDIUM, LOW, MEDIUM, MEDIUM, MEDIUM, LOW, HIGH, HIGH, HIGH, HIGH]
    alerts = [(s, BRUTE_FORCE, CONF_HIGH) for s in sevs]
    # Counter after each step: 1 2 3 4 0 1 2 3 0 1 2 3 4 0 0 ...; LONG once it reaches 3.
    # The duration seen in the observation before step t is the one after step t-1.
    after = [SHORT, SHORT, LONG, LONG, SHORT, SHORT, SHORT, LONG, SHORT, SHORT, SHORT, LONG, LONG]
    after += [SHORT] * (24 - len(after))
    env = CyberDefenseEnv()
    # BLOCK_IP with a defence that always holds: health stays HEALTHY throughout
    obs, info = env.load_episode(schedule(alerts, u_defence=ALWAYS))
    assert info["duration"] == SHORT and obs == spec_index(MEDIUM, BRUTE_FORCE, 0, CONF_HIGH, 0)
    rows = alerts + [(LOW, SCAN, CONF_LOW)] * (24 - len(alerts))
    for t in range(24):
        assert_alert(info, rows[t])
        obs, _, terminated, _, info = env.step(BLOCK_IP)
        assert info["health"] == HEALTHY
        assert info["duration"] == after[t], t
        if t + 1 < 24:
            s, a, c = rows[t + 1]
            assert obs == spec_index(s, a, HEALTHY, c, after[t]), t
        assert terminated == (t == 23)


def test_observation_factors_in_info_match_the_index() -> None:
    env = CyberDefenseEnv()
    names = ("severity", "attack_type", "health", "confidence", "duration")
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        done = False
        while True:
            assert obs == spec_index(*(info[k] for k in names))
            if done:
                break
            obs, _, done, _, info = env.step(seed % 5)


def test_terminal_observation_at_horizon_zeroes_the_alert() -> None:
    # the last three alerts are HIGH DOS HIGH-confidence: nothing of them may leak into the end
    alerts = [(LOW, SCAN, CONF_LOW)] * 21 + [(HIGH, DOS, CONF_HIGH)] * 3
    env = CyberDefenseEnv()
    env.load_episode(schedule(alerts, u_defence=ALWAYS))
    for _ in range(24):
        obs, reward, terminated, truncated, info = env.step(ISOLATE)
    assert terminated is True and truncated is False
    assert (info["severity"], info["attack_type"], info["confidence"]) == (0, 0, 0)
    assert info["health"] == HEALTHY and info["duration"] == LONG
    assert obs == spec_index(0, 0, HEALTHY, 0, LONG)
    assert reward == 9 + 5


def test_critical_terminates_early_with_minus_ten() -> None:
    # step 0: HIGH ignored -> DEGRADED (-10); step 1: HIGH, RATE_LIMIT on DOS (+7), goes CRITICAL
    alerts = [(HIGH, SCAN, CONF_LOW), (HIGH, DOS, CONF_HIGH)]
    env = CyberDefenseEnv()
    env.load_episode(schedule(alerts, u_change=[NEVER, ALWAYS]))
    _, r0, term0, trunc0, info = env.step(IGNORE)
    assert (r0, term0, trunc0, info["health"]) == (-10.0, False, False, DEGRADED)
    obs, r1, term1, trunc1, info = env.step(RATE_LIMIT)
    assert r1 == 7 - 10
    assert term1 is True and trunc1 is False
    assert info["health"] == CRITICAL
    assert (info["severity"], info["attack_type"], info["confidence"]) == (0, 0, 0)
    assert obs == spec_index(0, 0, CRITICAL, 0, SHORT)
    with pytest.raises(RuntimeError):
        env.step(MONITOR)


def test_critical_on_the_last_step_gets_no_end_bonus() -> None:
    alerts = [(LOW, SCAN, CONF_LOW)] * 22 + [(HIGH, SCAN, CONF_LOW)] * 2
    env = CyberDefenseEnv()
    env.load_episode(schedule(alerts, u_change=ALWAYS))
    rewards = [env.step(MONITOR if t < 22 else IGNORE)[1] for t in range(24)]
    assert rewards[22] == -10.0  # HEALTHY -> DEGRADED
    assert rewards[23] == -10.0 - 10.0  # -> CRITICAL: penalty, no +5 / +2


@pytest.mark.parametrize("name", sorted(SPEC_PRESETS))
def test_horizon_end_bonus_healthy(name: str) -> None:
    horizon = SPEC_PRESETS[name][0]
    env = CyberDefenseEnv(preset_name=name)
    _, info = env.load_episode(schedule([], horizon=horizon))
    for t in range(horizon):
        assert_alert(info, (LOW, SCAN, CONF_LOW))
        _, reward, terminated, truncated, info = env.step(MONITOR)
        assert truncated is False
        assert terminated == (t == horizon - 1)
        assert info["health"] == HEALTHY
        assert reward == (7.8 if t == horizon - 1 else 2.8)  # 2.8, plus 5 at the end
    with pytest.raises(RuntimeError):
        env.step(MONITOR)


def test_horizon_end_bonus_degraded() -> None:
    # the last step is a HIGH alert that is ignored: HEALTHY -> DEGRADED, -10 + 2
    alerts = [(LOW, SCAN, CONF_LOW)] * 23 + [(HIGH, BRUTE_FORCE, CONF_HIGH)]
    env = CyberDefenseEnv()
    env.load_episode(schedule(alerts))
    rewards = [env.step(IGNORE if t == 23 else MONITOR)[1] for t in range(24)]
    assert rewards[23] == -10.0 + 2.0
    # and a degraded system whose defence holds on the last step also gets +2
    alerts = [(HIGH, SCAN, CONF_LOW)] + [(LOW, SCAN, CONF_LOW)] * 22 + [(HIGH, DOS, CONF_LOW)]
    env.load_episode(schedule(alerts, u_defence=[NEVER] + [ALWAYS] * 23))
    for t in range(24):
        _, reward, terminated, _, info = env.step(IGNORE if t == 0 else ISOLATE if t == 23
                                                  else MONITOR)
        if t == 0:
            assert info["health"] == DEGRADED
    assert terminated and info["health"] == DEGRADED  # LOW steps never recover (u_change NEVER)
    assert reward == 9.0 + 2.0


def test_horizon_of_one_step() -> None:
    env = CyberDefenseEnv(EnvConfig(horizon=1))
    env.load_episode(schedule([(MEDIUM, DOS, CONF_HIGH)], horizon=1))
    _, reward, terminated, truncated, info = env.step(RATE_LIMIT)
    assert (reward, terminated, truncated, info["health"]) == (7.0 + 5.0, True, False, HEALTHY)


def test_largest_possible_return_is_221() -> None:
    env = CyberDefenseEnv()
    env.load_episode(schedule([(HIGH, DOS, CONF_HIGH)] * 24, u_defence=ALWAYS))
    total = 0.0
    for _ in range(24):
        _, reward, terminated, truncated, _ = env.step(ISOLATE)
        total += float(reward)
    assert terminated and not truncated
    assert total == 221.0


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError):
        CyberDefenseEnv().step(MONITOR)


def test_load_episode_rejects_wrong_shape() -> None:
    env = CyberDefenseEnv()
    with pytest.raises(ValueError, match="uniforms"):
        env.load_episode(np.zeros((23, 6)))
    with pytest.raises(ValueError, match="uniforms"):
        env.load_episode(np.zeros((24, 5)))


# ================================================================ 2 invalid actions


@pytest.mark.parametrize("action", [5, -1, 2.0, True, False, "1", None, 1.5, np.float64(1.0),
                                    np.bool_(True), [1], 10**20])
def test_invalid_actions_are_rejected(action: object) -> None:
    env = CyberDefenseEnv()
    env.load_episode(schedule([(MEDIUM, DOS, CONF_HIGH)]))
    with pytest.raises(ValueError, match="action"):
        env.step(action)  # type: ignore[arg-type]
    # the rejected action did not advance the episode
    _, reward, _, _, info = env.step(RATE_LIMIT)
    assert info["step"] == 1 and reward == 7.0


@pytest.mark.parametrize("action", [np.int64(2), np.int32(2), np.uint8(2), 2])
def test_integer_actions_are_accepted(action: object) -> None:
    env = CyberDefenseEnv()
    env.load_episode(schedule([(MEDIUM, DOS, CONF_HIGH)]))
    _, reward, _, _, _ = env.step(action)  # type: ignore[arg-type]
    assert reward == 7.0


def test_sampled_actions_are_accepted() -> None:
    env = CyberDefenseEnv()
    env.action_space.seed(3)
    env.reset(seed=3)
    env.step(env.action_space.sample())


# ================================================================ 3 schedule generation


def test_category_thresholds_follow_cumulative_probabilities() -> None:
    cfg = EnvConfig()
    base = schedule([(LOW, SCAN, CONF_LOW)], horizon=24)

    def first_alert(col: int, value: float) -> tuple[int, int, int]:
        u = base.copy()
        u[0, col] = value
        return dyn.decode_alert(int(dyn.schedule_codes(cfg, u)[0]))

    assert first_alert(0, 0.5 - EPS)[0] == LOW
    assert first_alert(0, 0.5 + EPS)[0] == MEDIUM
    assert first_alert(0, 0.8 - EPS)[0] == MEDIUM
    assert first_alert(0, 0.8 + EPS)[0] == HIGH
    assert first_alert(2, 0.4 - EPS)[1] == SCAN
    assert first_alert(2, 0.4 + EPS)[1] == BRUTE_FORCE
    assert first_alert(2, 0.8 - EPS)[1] == BRUTE_FORCE
    assert first_alert(2, 0.8 + EPS)[1] == DOS
    assert first_alert(3, 0.3 - EPS)[2] == CONF_HIGH  # LOW severity: HIGH with p .3
    assert first_alert(3, 0.3 + EPS)[2] == CONF_LOW


def test_escalation_cascades_on_the_updated_previous_severity() -> None:
    # step 0 HIGH; steps 1..3 draw a fresh LOW but escalate (u < .6); step 4 does not
    u = schedule([(HIGH, SCAN, CONF_LOW)] + [(LOW, SCAN, CONF_LOW)] * 4)
    u[1:4, 1] = 0.6 - EPS
    u[4, 1] = 0.6 + EPS
    u[5, 1] = ALWAYS  # step 5: previous (step 4) is LOW, so no escalation whatever the draw
    sev = [dyn.decode_alert(int(c))[0] for c in dyn.schedule_codes(EnvConfig(), u)][:6]
    assert sev == [HIGH, HIGH, HIGH, HIGH, LOW, LOW]
    # the confidence of an escalated step is drawn for the final severity (HIGH: p .8)
    u[1, 3] = 0.7
    assert dyn.decode_alert(int(dyn.schedule_codes(EnvConfig(), u)[1]))[2] == CONF_HIGH
    env = CyberDefenseEnv()
    _, info = env.load_episode(u)
    seen = []
    for _ in range(6):
        seen.append(info["severity"])
        _, _, _, _, info = env.step(ISOLATE)
    assert seen == [HIGH, HIGH, HIGH, HIGH, LOW, LOW]


@pytest.mark.parametrize("name", sorted(SPEC_PRESETS))
def test_schedule_statistics_match_the_spec(name: str) -> None:
    horizon, sev_p, esc = SPEC_PRESETS[name]
    cfg = PRESETS[name]
    episodes = 20_000
    # one generator per episode seed, as reset(seed=...) does (checked in the determinism tests)
    u = np.stack([np.random.default_rng(seed).random((horizon, 6)) for seed in range(episodes)])
    codes = dyn.schedule_codes(cfg, u)
    assert codes.shape == (episodes, horizon)
    factors = np.array([dyn.decode_alert(code) for code in range(dyn.N_ALERTS)])
    sev, att, conf = np.moveaxis(factors[codes], -1, 0)

    # Each check: |observed - p| <= 5 binomial standard errors (sqrt(p(1-p)/n)). Pooled
    # counts over steps are sums of Bernoulli draws that are independent given the
    # conditioning event, so the binomial standard error applies.
    def check(what: str, hits: np.ndarray, n_mask: np.ndarray, p: float) -> None:
        n = int(n_mask.sum())
        assert n >= 1000, (what, n)
        observed = float((hits & n_mask).sum()) / n
        tol = binomial_tolerance(p, n)
        assert abs(observed - p) <= tol, f"{name} {what}: {observed:.4f} vs {p} (n={n}, tol={tol:.4f})"

    everywhere = np.ones_like(sev, dtype=bool)
    for k in SEVERITIES:
        check(f"P(sev={k}) at step 0", sev[:, 0] == k, everywhere[:, 0], sev_p[k])
    prev_high = sev[:, :-1] == HIGH
    now = sev[:, 1:]
    p_high_after_high = esc + (1 - esc) * sev_p[HIGH]
    if name == "standard":
        assert p_high_after_high == pytest.approx(0.68)  # the spec's worked example
    check("P(HIGH | prev HIGH)", now == HIGH, prev_high, p_high_after_high)
    for k in (LOW, MEDIUM):
        check(f"P(sev={k} | prev HIGH)", now == k, prev_high, (1 - esc) * sev_p[k])
        check(f"P(sev={k} | prev not HIGH)", now == k, ~prev_high, sev_p[k])
    for k in ATTACKS:
        check(f"P(type={k})", att == k, everywhere, SPEC_TYPE_PROBS[k])
        check(f"P(type={k} | HIGH)", att == k, sev == HIGH, SPEC_TYPE_PROBS[k])
    for k in SEVERITIES:
        check(f"P(conf HIGH | sev={k})", conf == CONF_HIGH, sev == k, SPEC_HIGH_CONF_PROBS[k])


# ================================================================ 5 determinism, registration


def rollout(env: gym.Env[int, int], seed: int, actions: list[int]) -> list[Any]:
    obs, info = env.reset(seed=seed)
    out: list[Any] = [(obs, info)]
    for action in actions:
        step = env.step(action)
        out.append(step)
        if step[2] or step[3]:
            break
    return out


ACTION_SEQUENCE = [int(a) for a in np.random.default_rng(99).integers(0, 5, size=48)]


def test_same_seed_same_actions_same_episode() -> None:
    for seed in (0, 1, 7, 2**40):
        first = rollout(CyberDefenseEnv(), seed, ACTION_SEQUENCE)
        second = rollout(CyberDefenseEnv(), seed, ACTION_SEQUENCE)
        assert first == second
        env = CyberDefenseEnv()
        rollout(env, seed + 1, ACTION_SEQUENCE)  # a used env, reset with the seed again
        assert rollout(env, seed, ACTION_SEQUENCE) == first


def test_different_seeds_give_different_episodes() -> None:
    schedules = set()
    for seed in range(10):
        env = CyberDefenseEnv()
        # the alert schedule (all H steps) seen with a defence that keeps the episode alive
        steps = rollout(env, seed, [ISOLATE] * 24)
        schedules.add(tuple((s[0], s[1]) for s in steps[1:]))
    assert len(schedules) == 10


def test_unseeded_resets_continue_the_seeded_stream() -> None:
    a, b = CyberDefenseEnv(), CyberDefenseEnv()
    a.reset(seed=5)
    b.reset(seed=5)
    episodes = set()
    for _ in range(3):
        assert a.reset() == b.reset()
        steps = [a.step(ISOLATE) for _ in range(3)]
        assert steps == [b.step(ISOLATE) for _ in range(3)]
        episodes.add(tuple(s[0] for s in steps))
    # each unseeded reset draws a new episode from the continuing stream
    assert len(episodes) == 3


@pytest.mark.parametrize("name", ["standard", "extended"])
def test_reset_draws_uniform_doubles_from_a_pcg64_generator_of_the_seed(name: str) -> None:
    # spec 5: all randomness from numpy.random.Generator(PCG64) built from the seed, drawn
    # with Generator.random; the episode of reset(seed) is that of those uniforms.
    cfg = PRESETS[name]
    for seed in (0, 3, 12345):
        u = np.random.Generator(np.random.PCG64(seed)).random((cfg.horizon, 6))
        env_a, env_b = CyberDefenseEnv(cfg), CyberDefenseEnv(cfg)
        first = env_a.reset(seed=seed)
        assert env_b.load_episode(u) == first
        for action in ACTION_SEQUENCE[: cfg.horizon]:
            step = env_a.step(action)
            assert env_b.step(action) == step
            if step[2]:
                break


def test_episodes_do_not_use_global_random_state() -> None:
    # spec 5: nothing uses Python's random or numpy's global state
    outcomes = []
    saved_py, saved_np = random.getstate(), np.random.get_state()
    try:
        for global_seed in (1, 2):
            random.seed(global_seed)
            np.random.seed(global_seed)  # global state, on purpose
            py_state, np_state = random.getstate(), np.random.get_state()
            outcomes.append(rollout(CyberDefenseEnv(), 42, ACTION_SEQUENCE))
            assert random.getstate() == py_state
            after = np.random.get_state()
            assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
            assert after[2:] == np_state[2:]
    finally:
        random.setstate(saved_py)
        np.random.set_state(saved_np)
    assert outcomes[0] == outcomes[1]


def test_chunked_uniform_draws_equal_one_episode_at_a_time() -> None:
    cfg = PRESETS["short-burst"]
    chunk = dyn.draw_episode_uniforms(np.random.default_rng(8), cfg, episodes=4)
    rng = np.random.default_rng(8)
    single = np.stack([dyn.draw_episode_uniforms(rng, cfg) for _ in range(4)])
    assert chunk.shape == (4, 12, 6)
    assert np.array_equal(chunk, single)


def test_environment_is_registered() -> None:
    assert ENV_ID == "PolicyLedger/CyberDefense-v1"
    assert ENV_ID in gym.registry
    # the horizon is part of the task, not a time limit: no TimeLimit wrapper
    assert gym.spec(ENV_ID).max_episode_steps is None


@pytest.mark.parametrize("name", sorted(SPEC_PRESETS))
def test_gym_make_with_preset(name: str) -> None:
    env = gym.make(ENV_ID, preset_name=name)
    try:
        assert env.unwrapped.config == PRESETS[name]  # type: ignore[attr-defined]
        assert env.observation_space == gym.spaces.Discrete(108)
        assert env.action_space == gym.spaces.Discrete(5)
        horizon = SPEC_PRESETS[name][0]
        env.reset(seed=0)
        # force a calm schedule, then step through the wrappers to the horizon
        env.unwrapped.load_episode(schedule([], horizon=horizon))  # type: ignore[attr-defined]
        for t in range(horizon):
            _, reward, terminated, truncated, _ = env.step(MONITOR)
            assert truncated is False
            assert terminated == (t == horizon - 1)
        assert reward == 7.8  # MONITOR on LOW (2.8) + 5 for HEALTHY
    finally:
        env.close()


def test_gym_make_rejects_unknown_preset_and_ambiguous_arguments() -> None:
    with pytest.raises(ConfigError, match="nope"):
        CyberDefenseEnv(preset_name="nope")
    with pytest.raises(ValueError):
        CyberDefenseEnv(config=EnvConfig(), preset_name="standard")


@pytest.mark.parametrize("name", ["standard", "short-burst"])
def test_gymnasium_env_checker_passes(name: str) -> None:
    env = gym.make(ENV_ID, preset_name=name)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


# ================================================================ env, replay and invariants


def test_random_rollouts_keep_the_observation_invariants_and_agree_with_replay() -> None:
    cfg = EnvConfig()
    table = np.random.default_rng(5).integers(0, 5, size=108)
    seeds = range(300)
    env = CyberDefenseEnv(cfg)
    returns, lengths, pre_terminal = [], [], set()
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        total = Decimal(0)
        steps = 0
        while True:
            pre_terminal.add(obs)
            obs, reward, terminated, truncated, info = env.step(int(table[obs]))
            total += Decimal(str(reward))
            steps += 1
            assert truncated is False
            if terminated:
                break
            assert info["health"] != CRITICAL  # CRITICAL is only seen at the end
        assert steps == cfg.horizon or info["health"] == CRITICAL
        assert total <= 221
        returns.append(total)
        lengths.append(steps)
    # at most 72 indices (health HEALTHY or DEGRADED) occur before the end
    assert all(dyn.decode_observation(o)[2] != CRITICAL for o in pre_terminal)
    assert len(pre_terminal) <= 72
    u = np.stack([np.random.default_rng(seed).random((cfg.horizon, 6)) for seed in seeds])
    outcome = replay(cfg, u, observation_decider(table))
    assert outcome.steps.tolist() == lengths
    assert [Decimal(int(r)) / 10 for r in outcome.returns_tenths] == returns


def test_the_module_docstring_carries_the_spec_and_matches_the_code() -> None:
    # The spec lives in the docstring of policyledger_core.sim.environment; a preset or an action
    # added to the code without its documentation fails here.
    import policyledger_core.sim.environment as environment

    doc = environment.__doc__ or ""
    for heading in ("## Description", "## 1. Observation Space", "## 2. Action Space",
                    "## 3. Starting State", "## 4. Step", "### 4.1 Rewards", "### 4.2 Health transition",
                    "### 4.3 Duration", "### 4.4 Episode End", "## 5. Randomness", "## 6. Presets",
                    "## 7. ", "## 8. Reference values", "## Arguments"):
        assert heading in doc, heading
    assert "index = (((severity*3 + attack_type)*3 + health)*2 + confidence)*2 + duration" in doc
    assert f"Discrete({dyn.N_OBS})" in doc and f"Discrete({dyn.N_ACTIONS})" in doc
    lines = [line.strip() for line in doc.splitlines()]
    for number, name in enumerate(dyn.ACTION_NAMES):
        assert f"- {number}: {name}" in lines, name
    for factor_names in (dyn.SEVERITY_NAMES, dyn.ATTACK_NAMES, dyn.HEALTH_NAMES):
        assert ", ".join(f"{i} {name}" for i, name in enumerate(factor_names)) in doc
    presets_section = doc.split("## 6. Presets")[1].split("## 7. ")[0]
    rows = {row.split()[0]: row.split() for row in presets_section.splitlines()
            if row.strip() and row.split()[0] in PRESETS}
    assert sorted(rows) == sorted(PRESETS)
    for name, cfg in PRESETS.items():
        row = rows[name]
        assert int(row[1]) == cfg.horizon, name
        assert tuple(float(p) for p in row[2:5]) == cfg.severity_probs, name
        assert float(row[5]) == cfg.escalation_prob, name
        assert cfg.type_probs == EnvConfig().type_probs, name  # the docs say every preset keeps these
        assert cfg.high_confidence_probs == EnvConfig().high_confidence_probs, name
