"""Tests of verification by replay.

Spec: the docstring of :mod:`policyledger_core.sim.environment`, sections 5, 7 and 8: a
policy's reward is recomputed by playing it on evaluation episodes never used in training (reset seeds
from 2**63 on), next to the optimum and the baselines of section 8. The reference
returns here come from playing the suite through the Gymnasium environment itself,
episode by episode, independently of the vectorised replay under test.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding

from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import PRESETS, EnvConfig
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.sim.optimum import expected_return_random, solve
from policyledger_core.verify import suite as verification
from policyledger_core.verify.suite import BASELINES, suite_seeds, suite_uniforms, verify

STANDARD = PRESETS["standard"]
N = 200  # suite size for the episode-by-episode Gymnasium checks
Z = statistics.NormalDist().inv_cdf(0.975)  # 1.96 to full precision
CONSTANT_NAMES = ("ignore", "monitor", "rate_limit", "block_ip", "isolate_service")
HIGH, DOS, CONF_HIGH = 2, 2, 1


def obs_index(severity: int, attack: int, health: int, confidence: int, duration: int) -> int:
    return (((severity * 3 + attack) * 3 + health) * 2 + confidence) * 2 + duration


def stationary_optimal_policy(config: EnvConfig) -> Policy:
    """An observation policy from value iteration: the optimal action at step 0
    (counter 0 for duration SHORT, 3 for LONG)."""
    solution = solve(config)
    actions = []
    for obs in range(108):
        sev, att, health, conf, dur = dyn.decode_observation(obs)
        if health == 2:
            actions.append(0)  # terminal; replaced by the myopic action anyway
            continue
        actions.append(int(solution.actions[0, dyn.alert_code(sev, att, conf), health, 3 if dur else 0]))
    return Policy(config, tuple(actions))


def gym_play(policy: Policy, seeds: range) -> tuple[list[int], list[int], list[int]]:
    """Returns (tenths) and step counts per episode, and action counts, via the Gymnasium env."""
    env = CyberDefenseEnv(policy.config)
    returns, steps, counts = [], [], [0] * 5
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total = t = 0
        done = False
        while not done:
            action = policy.actions[obs]
            obs, reward, terminated, truncated, info = env.step(action)
            assert not truncated
            assert info["reward_tenths"] == round(float(reward) * 10)
            total += info["reward_tenths"]
            counts[action] += 1
            t += 1
            done = terminated
        returns.append(total)
        steps.append(t)
    return returns, steps, counts


def random_table_policy(seed: int, config: EnvConfig = STANDARD) -> Policy:
    rng = np.random.default_rng(seed)
    return Policy(config, tuple(int(a) for a in rng.integers(0, 5, size=108)))


POLICIES: dict[str, Callable[[], Policy]] = {
    "myopic": lambda: Policy(STANDARD, MYOPIC_ACTIONS),
    "optimal-ish": lambda: stationary_optimal_policy(STANDARD),
    "random-table": lambda: random_table_policy(1),
    "block_ip": lambda: Policy(STANDARD, (3,) * 108),
    "short-burst optimal-ish": lambda: stationary_optimal_policy(PRESETS["short-burst"]),
}


# --- the report ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_report_matches_playing_the_suite_through_gymnasium(name: str) -> None:
    policy = POLICIES[name]()
    report = verify(policy, N)
    tenths, steps, counts = gym_play(policy, suite_seeds(N))
    returns = [r / 10.0 for r in tenths]

    assert report.episodes == N
    assert report.suite == verification.suite_id(N)
    assert report.mean == pytest.approx(sum(tenths) / N / 10.0, abs=1e-9)
    assert report.std == pytest.approx(statistics.stdev(returns), abs=1e-9)
    assert report.min == min(returns)
    assert report.max == max(returns)
    assert report.ci95 == pytest.approx(Z * statistics.stdev(returns) / math.sqrt(N), abs=1e-9)
    assert abs(report.ci95 - Z * report.std / math.sqrt(N)) <= 1e-9
    assert report.interval.low == pytest.approx(report.mean - report.ci95)
    assert report.interval.high == pytest.approx(report.mean + report.ci95)

    assert len(report.action_share) == 5
    assert sum(report.action_share) == pytest.approx(1.0, abs=1e-12)
    assert all(share >= 0 for share in report.action_share)
    total_steps = sum(steps)
    assert sum(counts) == total_steps
    for got, count in zip(report.action_share, counts, strict=True):
        assert got == pytest.approx(count / total_steps, abs=1e-12)

    assert set(report.baselines) == set(BASELINES)
    assert all(math.isfinite(v) for v in report.baselines.values())
    assert report.fraction_of_optimum == report.mean / report.optimum
    assert isinstance(report.replay_digest, str) and len(report.replay_digest) == 64
    assert isinstance(report.to_dict(), dict)


def test_replay_digest_is_stable_within_a_process() -> None:
    policy = stationary_optimal_policy(STANDARD)
    first = verify(policy, N).replay_digest
    assert verify(policy, N).replay_digest == first
    # The same policy read back from its file replays to the same digest.
    assert verify(Policy.from_json(policy.canonical_bytes()), N).replay_digest == first
    # A differently sized suite is a different suite.
    assert verify(policy, N + 1).replay_digest != first


def test_replay_digest_is_the_same_in_a_fresh_process() -> None:
    policy = stationary_optimal_policy(STANDARD)
    digest = verify(policy, N).replay_digest
    code = (
        "import json, sys\n"
        "from policyledger_core.policy import Policy\n"
        "from policyledger_core.verify.suite import verify\n"
        "policy = Policy.from_json(sys.stdin.buffer.read())\n"
        f"print(verify(policy, {N}).replay_digest)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", code], input=policy.canonical_bytes(),
                          capture_output=True, check=True, timeout=120, env=env,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.stdout.decode().strip() == digest


def test_changing_one_action_that_matters_changes_the_digest() -> None:
    base = Policy(STANDARD, MYOPIC_ACTIONS)
    # HIGH-severity DOS, healthy, confident, short: ISOLATE_SERVICE is worth 9, IGNORE -10.
    obs = obs_index(HIGH, DOS, 0, CONF_HIGH, 0)
    assert base.actions[obs] == 4
    changed_actions = list(MYOPIC_ACTIONS)
    changed_actions[obs] = 0
    changed = Policy(STANDARD, tuple(changed_actions))

    # The observation does occur in the suite, so the change is played.
    env = CyberDefenseEnv(STANDARD)
    seen = False
    for seed in suite_seeds(N):
        o, _ = env.reset(seed=seed)
        seen = seen or o == obs
    assert seen

    a, b = verify(base, N), verify(changed, N)
    assert a.replay_digest != b.replay_digest
    assert b.mean < a.mean


# --- against the reference values -----------------------------------------------------------------


def test_optimal_ish_policy_is_close_to_the_optimum() -> None:
    for cfg in PRESETS.values():
        report = verify(stationary_optimal_policy(cfg))
        assert report.fraction_of_optimum == report.mean / report.optimum
        assert report.fraction_of_optimum >= 0.98
        assert abs(report.mean - report.optimum) <= report.ci95
        # The optimum uses the full state; an observation policy cannot beat it in expectation.
        assert report.expected <= report.optimum_expected + 1e-9
        assert report.expected >= 0.99 * report.optimum_expected
        assert report.optimum_expected == pytest.approx(solve(cfg).value)
        # The optimum's suite mean and its exact expectation agree within the noise.
        assert abs(report.optimum - report.optimum_expected) <= 4 * report.std / math.sqrt(report.episodes)
        # And it beats every baseline.
        assert report.mean > max(report.baselines.values())


def test_myopic_policy_scores_the_myopic_baseline() -> None:
    for cfg in PRESETS.values():
        report = verify(Policy(cfg, MYOPIC_ACTIONS))
        assert report.mean == report.baselines["myopic"]


@pytest.mark.parametrize("action", range(5))
def test_constant_action_policies_score_their_baselines(action: int) -> None:
    for cfg in PRESETS.values():
        report = verify(Policy(cfg, (action,) * 108))
        assert report.mean == report.baselines[CONSTANT_NAMES[action]]
        assert report.action_share[action] == 1.0


def test_constant_baselines_match_gymnasium() -> None:
    report = verify(Policy(STANDARD, MYOPIC_ACTIONS), N)
    for action, name in enumerate(CONSTANT_NAMES):
        tenths, _, _ = gym_play(Policy(STANDARD, (action,) * 108), suite_seeds(N))
        assert report.baselines[name] == pytest.approx(sum(tenths) / N / 10.0, abs=1e-9)
    tenths, _, _ = gym_play(Policy(STANDARD, MYOPIC_ACTIONS), suite_seeds(N))
    assert report.baselines["myopic"] == pytest.approx(sum(tenths) / N / 10.0, abs=1e-9)
    # The random baseline lies between the worst and the best constant action.
    constants = [report.baselines[n] for n in CONSTANT_NAMES]
    assert min(constants) < report.baselines["random"] < max(constants)


def test_reference_values_do_not_depend_on_the_policy() -> None:
    a = verify(Policy(STANDARD, MYOPIC_ACTIONS))
    b = verify(random_table_policy(5))
    assert a.optimum == b.optimum
    assert a.optimum_expected == b.optimum_expected
    assert a.baselines == b.baselines


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_exact_expected_return_is_within_four_standard_errors(name: str) -> None:
    policy = POLICIES[name]()
    report = verify(policy)
    standard_error = report.std / math.sqrt(report.episodes)
    assert standard_error > 0
    assert abs(report.expected - report.mean) <= 4 * standard_error


def test_every_baseline_and_the_optimum_are_reported_on_every_preset() -> None:
    for cfg in PRESETS.values():
        report = verify(Policy(cfg, MYOPIC_ACTIONS), N)
        assert tuple(report.baselines) == BASELINES
        assert report.optimum > max(report.baselines.values())


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_exact_baselines_are_the_baseline_policies_expected_returns(name: str) -> None:
    cfg = PRESETS[name]
    exact = verification.exact_baselines(cfg)
    assert tuple(exact) == BASELINES
    # Through verify(): the exact return of the baseline played as a stored policy.
    for action, constant in enumerate(CONSTANT_NAMES):
        assert exact[constant] == verify(Policy(cfg, (action,) * 108), N).expected
    assert exact["myopic"] == verify(Policy(cfg, MYOPIC_ACTIONS), N).expected
    assert exact["random"] == expected_return_random(cfg)
    assert min(exact[c] for c in CONSTANT_NAMES) < exact["random"] < max(exact[c] for c in CONSTANT_NAMES)
    assert solve(cfg).value > max(exact.values())


# --- confidence intervals ---------------------------------------------------------------------


def test_interval_of_a_mean_is_the_recorded_ci95_formula() -> None:
    interval = verification.Interval.of(12.5, 3.0, 400)
    assert interval.center == 12.5
    assert interval.half_width == verification.Z95 * 3.0 / math.sqrt(400)  # bit for bit
    assert (interval.low, interval.high) == (12.5 - interval.half_width, 12.5 + interval.half_width)
    assert abs(verification.Z95 - Z) <= 1e-15


def test_a_report_carries_its_interval() -> None:
    report = verify(random_table_policy(7), N)
    assert report.interval == verification.Interval(report.mean, report.ci95)
    assert report.interval == verification.Interval.of(report.mean, report.std, N)


# --- evaluation seeds -------------------------------------------------------------------------


def test_suite_seeds_lie_at_or_above_two_to_the_63() -> None:
    seeds = suite_seeds(1000)
    assert len(seeds) == 1000
    assert len(set(seeds)) == 1000
    assert min(seeds) == verification.EVAL_SEED_BASE == 2**63
    assert all(s >= 2**63 for s in seeds)
    assert list(suite_seeds(10)) == list(seeds)[:10]


@pytest.mark.parametrize("preset", ["standard", "short-burst", "high-pressure"])
def test_suite_uniforms_are_what_gymnasium_draws_at_reset(preset: str) -> None:
    cfg = PRESETS[preset]
    uniforms = suite_uniforms(cfg, N)
    assert uniforms.shape == (N, cfg.horizon, 6)
    env = CyberDefenseEnv(cfg)
    replica = CyberDefenseEnv(cfg)
    rng = np.random.default_rng(0)
    for i, seed in enumerate(suite_seeds(N)):
        # The generator Gymnasium builds for reset(seed=...), drawn as the env does at reset.
        gen, _ = seeding.np_random(seed)
        drawn = gen.random((cfg.horizon, 6))
        assert np.array_equal(uniforms[i], drawn)
        obs, info = env.reset(seed=seed)
        # The env drew exactly those numbers from that generator, and nothing else.
        assert env.np_random.bit_generator.state == gen.bit_generator.state
        # Playing the reset episode and the suite's episode gives the same trajectory.
        obs2, info2 = replica.load_episode(np.array(uniforms[i]))
        assert (obs, info) == (obs2, info2)
        done = False
        while not done:
            action = int(rng.integers(0, 5))
            a = env.step(action)
            b = replica.step(action)
            assert a == b
            done = a[2]
    # The suite of N episodes is the start of any longer suite.
    assert np.array_equal(suite_uniforms(cfg, 1000)[:N], uniforms)


def test_suite_uniforms_are_read_only_and_validated() -> None:
    uniforms = suite_uniforms(STANDARD, N)
    with pytest.raises(ValueError):
        uniforms[0, 0, 0] = 0.5
    for bad in (0, -1, True, 1.5, verification.MAX_EPISODES + 1):
        with pytest.raises(ValueError, match="episodes"):
            suite_uniforms(STANDARD, bad)  # type: ignore[arg-type]
