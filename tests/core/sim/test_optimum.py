"""Value iteration and exact policy evaluation, checked against Monte Carlo replay,
an independent brute-force recursion and a hand computation."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim import optimum
from policyledger_core.sim.config import PRESETS, EnvConfig
from policyledger_core.sim.replay import Decide, observation_decider, random_decider, replay

EPISODES = 20_000
PRESET_NAMES = list(PRESETS)
IntArray = npt.NDArray[np.int64]


def _uniforms(name: str, stream: int = 0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng([20_240_601, PRESET_NAMES.index(name), stream])
    return dyn.draw_episode_uniforms(rng, PRESETS[name], EPISODES)


def _assert_mc_agrees(name: str, decide: Decide, expected: float) -> None:
    returns = replay(PRESETS[name], _uniforms(name), decide).returns
    stderr = returns.std(ddof=1) / np.sqrt(len(returns))
    assert stderr > 0
    assert abs(returns.mean() - expected) < 4 * stderr, (returns.mean(), expected, stderr)


def _myopic_table() -> IntArray:
    myopic = dyn.myopic_actions()
    return np.array([myopic[dyn.alert_code(s, a, c)]
                     for s, a, _h, c, _d in map(dyn.decode_observation, range(dyn.N_OBS))],
                    dtype=np.int64)


POLICIES: dict[str, IntArray] = {
    "myopic": _myopic_table(),
    **{f"always-{dyn.ACTION_NAMES[a]}": np.full(dyn.N_OBS, a, dtype=np.int64)
       for a in range(dyn.N_ACTIONS)},
    "random-table": np.random.default_rng(7).integers(0, dyn.N_ACTIONS, dyn.N_OBS),
}


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_value_matches_monte_carlo_of_optimal_policy(name: str) -> None:
    solution = optimum.solve(PRESETS[name])
    _assert_mc_agrees(name, optimum.optimal_decider(solution), solution.value)


@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_expected_return_matches_monte_carlo(name: str, policy: str) -> None:
    table = POLICIES[policy]
    expected = optimum.expected_return(PRESETS[name], table)
    _assert_mc_agrees(name, observation_decider(table), expected)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_expected_return_random_matches_monte_carlo(name: str) -> None:
    config = PRESETS[name]
    rng = np.random.default_rng([99, PRESET_NAMES.index(name)])
    choices = rng.random((EPISODES, config.horizon))
    _assert_mc_agrees(name, random_decider(choices), optimum.expected_return_random(config))


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_optimum_bounds_every_baseline(name: str) -> None:
    config = PRESETS[name]
    value = optimum.solve(config).value
    for table in POLICIES.values():
        assert value >= optimum.expected_return(config, table)
    assert value > optimum.expected_return_random(config)
    # Full-state value iteration should beat the myopic rule strictly: it protects health.
    assert value > optimum.expected_return(config, POLICIES["myopic"]) + 0.5


def test_solve_is_cached_and_read_only() -> None:
    first = optimum.solve(EnvConfig(horizon=17))
    again = optimum.solve(EnvConfig(horizon=17, severity_probs=(0.5, 0.3, 0.2)))
    assert first is again
    assert optimum.solve(EnvConfig(horizon=18)) is not first
    with pytest.raises(ValueError):
        first.actions[0, 0, 0, 0] = 0
    with pytest.raises(ValueError):
        first.q[0, 0, 0, 0, 0] = 0.0


def test_shapes_and_greedy_lowest_index() -> None:
    solution = optimum.solve(PRESETS["standard"])
    assert solution.actions.shape == (24, 18, 2, 4)
    assert solution.actions.dtype == np.int64
    assert solution.q.shape == (24, 18, 2, 4, 5)
    best = solution.q.max(axis=-1, keepdims=True)
    tied = solution.q >= best - optimum.TIE_TOLERANCE
    # The chosen action is tied for best and no lower index is.
    assert np.take_along_axis(tied, solution.actions[..., None], axis=-1).all()
    lower = np.arange(5) < solution.actions[..., None]
    assert not (tied & lower).any()


# Best immediate reward plus expected end bonus for each alert at horizon 1, from
# HEALTHY, worked out by hand from the spec (4.1, 4.2, 4.4). HIGH: BLOCK_IP or
# ISOLATE keep HEALTHY with p .7, bonus .7*5 + .3*2 = 4.1; any other action
# degrades, bonus 2. MEDIUM: IGNORE bonus .8*5 + .2*2 = 4.4, else 5. LOW: 5.
_HAND_BEST = {
    # (severity, attack, confidence): best reward + bonus
    **{(dyn.LOW, a, c): 2.8 + 5 for a in range(3) for c in range(2)},  # MONITOR
    **{(dyn.MEDIUM, dyn.SCAN, c): 3.5 + 5 for c in range(2)},  # BLOCK_IP
    **{(dyn.MEDIUM, a, c): 7 + 5  # RATE_LIMIT
       for a in (dyn.BRUTE_FORCE, dyn.DOS) for c in range(2)},
    **{(dyn.HIGH, a, dyn.CONF_LOW): 5 + 4.1 for a in (dyn.SCAN, dyn.BRUTE_FORCE)},  # ISOLATE
    **{(dyn.HIGH, a, dyn.CONF_HIGH): 8.5 + 4.1 for a in (dyn.SCAN, dyn.BRUTE_FORCE)},  # BLOCK_IP
    **{(dyn.HIGH, dyn.DOS, c): 9 + 4.1 for c in range(2)},  # ISOLATE
}


@pytest.mark.parametrize("name", ["standard", "high-pressure", "sparse-attacks"])
def test_horizon_one_by_hand(name: str) -> None:
    base = PRESETS[name]
    config = EnvConfig(horizon=1, severity_probs=base.severity_probs,
                       escalation_prob=base.escalation_prob)
    expected = 0.0
    for (sev, att, conf), best in _HAND_BEST.items():
        p_conf = config.high_confidence_probs[sev]
        p = config.severity_probs[sev] * config.type_probs[att] * (p_conf if conf else 1 - p_conf)
        expected += p * best
    if name == "standard":
        assert expected == pytest.approx(9.508, abs=1e-12)
    solution = optimum.solve(config)
    assert solution.value == pytest.approx(expected, abs=1e-12)
    # DEGRADED under a HIGH DOS alert: ISOLATE gives 9 + .7*2 + .3*(.4*-10 + .6*2).
    code = dyn.alert_code(dyn.HIGH, dyn.DOS, dyn.CONF_LOW)
    isolate = solution.q[0, code, dyn.DEGRADED, 0, dyn.ISOLATE_SERVICE]
    assert isolate == pytest.approx(9.56, abs=1e-12)
    assert solution.actions[0, code, dyn.DEGRADED, 0] == dyn.ISOLATE_SERVICE
    # At horizon 1 the optimum depends on the observation only, so it is an observation policy.
    table = np.zeros(dyn.N_OBS, dtype=np.int64)
    for obs in range(dyn.N_OBS):
        sev, att, health, conf, _dur = dyn.decode_observation(obs)
        table[obs] = solution.actions[0, dyn.alert_code(sev, att, conf), min(health, 1), 0]
    assert optimum.expected_return(config, table) == pytest.approx(solution.value, abs=1e-12)


def _cells(cuts: list[float]) -> list[tuple[float, float]]:
    """(midpoint, width) of the cells [0, 1] is cut into."""
    edges = [0.0, *sorted(set(cuts)), 1.0]
    return [((lo + hi) / 2, hi - lo) for lo, hi in itertools.pairwise(edges) if hi > lo]


def _brute_force(config: EnvConfig, policy: Callable[[int, int, int], int] | None) -> float:
    """Expectimax (policy None) or policy evaluation by plain recursion, with every
    probability integrated from the simulator's own functions over cells of [0, 1]."""
    change_cells = _cells([dyn.MEDIUM_IGNORED_DEGRADES, dyn.MEDIUM_RECOVERY, dyn.LOW_RECOVERY,
                           dyn.HIGH_TO_CRITICAL])
    defence_cells = _cells([dyn.DEFENCE_HOLDS])
    # Two-step schedules over cells of the columns schedule_codes reads give P(code0, code1).
    step_cells = [_cells(list(config.severity_thresholds)), _cells([config.escalation_prob]),
                  _cells(list(config.type_thresholds)), _cells(list(config.high_confidence_probs))]
    combos = list(itertools.product(*step_cells, *step_cells))
    uniforms = np.zeros((len(combos), 2, 6))
    weights = np.ones(len(combos))
    for i, combo in enumerate(combos):
        for j, (mid, width) in enumerate(combo):
            uniforms[i, j // 4, j % 4] = mid
            weights[i] *= width
    codes = dyn.schedule_codes(config, uniforms)
    joint = np.zeros((18, 18))
    np.add.at(joint, (codes[:, 0], codes[:, 1]), weights)
    first = joint.sum(axis=1)
    following = joint / first[:, None]

    @functools.cache
    def value(t: int, code: int, health: int, counter: int) -> float:
        sev, _, _ = dyn.decode_alert(code)
        actions = range(5) if policy is None else [policy(code, health, counter)]
        best = -np.inf
        for action in actions:
            total = float(dyn.REWARD[code, action])
            for (ud, wd), (uc, wc) in itertools.product(defence_cells, change_cells):
                after = dyn.next_health(sev, action, health, ud, uc)
                if after == dyn.CRITICAL:
                    future = -10.0
                elif t == config.horizon - 1:
                    future = (5.0, 2.0)[after]
                else:
                    k = dyn.next_counter(counter, sev)
                    future = sum(following[code, c] * value(t + 1, c, after, k) for c in range(18))
                total += wd * wc * future
            best = max(best, total)
        return best

    return float(sum(first[c] * value(0, c, dyn.HEALTHY, 0) for c in range(18)))


def test_agrees_with_brute_force_recursion() -> None:
    config = EnvConfig(horizon=3, severity_probs=(0.3, 0.3, 0.4), escalation_prob=0.75,
                       type_probs=(0.5, 0.2, 0.3), high_confidence_probs=(0.1, 0.6, 0.9))
    assert optimum.solve(config).value == pytest.approx(_brute_force(config, None), abs=1e-9)
    table = POLICIES["random-table"]

    def by_table(code: int, health: int, counter: int) -> int:
        return int(table[dyn.ALERT_OBS_BASE[code] + 4 * health + (counter >= dyn.LONG_AFTER)])

    assert optimum.expected_return(config, table) == pytest.approx(
        _brute_force(config, by_table), abs=1e-9)


@pytest.mark.parametrize("bad", [
    np.zeros(107, dtype=np.int64),
    np.zeros((108, 1), dtype=np.int64),
    np.full(108, 5, dtype=np.int64),
    np.full(108, -1, dtype=np.int64),
    np.zeros(108, dtype=np.float64),
])
def test_expected_return_rejects_bad_tables(bad: IntArray) -> None:
    with pytest.raises(ValueError, match="actions_by_obs"):
        optimum.expected_return(PRESETS["standard"], bad)
