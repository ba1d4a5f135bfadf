"""Tests of training (single agent and population) and of the training hyperparameters.

Spec: the docstring of :mod:`policyledger_core.sim.environment`. What is checked here is what
a user of ``train`` / ``train_population`` relies on: the per-episode records, reproducibility,
cooperative stopping, population/single-agent equivalence, the separation of training
and evaluation episodes, validated hyperparameters and that learning actually works.
Expected values are recomputed in the tests from the yielded records, never read back
from the code under test.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pytest

from policyledger_core.learn import single as training
from policyledger_core.learn.hyper import (
    DEFAULT_HYPER,
    HYPER_PRESETS,
    MAX_SEED,
    Hyperparameters,
    hyper_preset,
)
from policyledger_core.learn.population import train_population
from policyledger_core.learn.single import EpisodeRecord, TrainingResult, run_to_end, train
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import PRESETS, ConfigError, EnvConfig
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.verify import suite as verification
from tests.helpers.training import collect

STANDARD = PRESETS["standard"]
SHORT = PRESETS["short-burst"]
ALGORITHMS = ("q", "double-q")
R = TypeVar("R")
CRITICAL_OBS = sorted(o for o in range(108) if dyn.decode_observation(o)[2] == 2)


def stop_after(n: int) -> tuple[Callable[[], bool], list[int]]:
    """A should_stop that answers True from its n-th call on; also returns its call log."""
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= n

    return should_stop, calls


def hyper(**changes: object) -> Hyperparameters:
    return Hyperparameters().replace(**changes)


# --- the per-episode records ------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_train_yields_one_consistent_record_per_episode(algorithm: str) -> None:
    hp = hyper(episodes=1600, seed=11)  # seed-defaults: epsilon reaches its floor at ~1497
    records, result = collect(train(STANDARD, hp, algorithm))
    assert len(records) == 1600
    assert all(isinstance(r, EpisodeRecord) for r in records)
    assert [r.episode for r in records] == list(range(1600))

    returns = [r.ret for r in records]
    for i, rec in enumerate(records):
        # epsilon of Hyperparameters.epsilon: start * decay**i, floored at epsilon_end
        assert rec.epsilon == hp.epsilon(i)
        assert rec.epsilon == pytest.approx(max(0.05, 1.0 * 0.998**i), rel=1e-12)
        assert 1 <= rec.steps <= STANDARD.horizon
        assert len(rec.action_counts) == 5
        assert all(c >= 0 for c in rec.action_counts)
        assert sum(rec.action_counts) == rec.steps
        # Returns are whole tenths and within the task's bounds (spec 4.4: at most 24*9+5).
        assert round(rec.ret * 10) == pytest.approx(rec.ret * 10, abs=1e-9)
        assert -10.0 * STANDARD.horizon - 10.0 <= rec.ret <= 221.0
        window = returns[max(0, i - 99): i + 1]
        assert rec.rolling_mean == pytest.approx(sum(window) / len(window), rel=1e-12, abs=1e-12)
    epsilons = [r.epsilon for r in records]
    assert all(a >= b for a, b in itertools.pairwise(epsilons))
    assert epsilons[0] == 1.0 and epsilons[-1] == 0.05

    assert isinstance(result, TrainingResult)
    assert result.episodes == 1600
    assert result.stopped is False
    assert result.algorithm == algorithm
    assert result.agents == 1
    assert result.q.shape == (1, 108, 5) and result.visits.shape == (1, 108, 5)
    assert result.env_steps == sum(r.steps for r in records)
    # One update per environment step (for Double Q: of one of the two tables).
    assert int(result.visits.sum()) == result.env_steps
    # CRITICAL observations are terminal: never acted on, never updated.
    assert not result.visits[0, CRITICAL_OBS].any()
    assert np.all(result.q[0, CRITICAL_OBS] == 0.0)
    # The per-action visit totals are the actions the records report.
    by_action = np.sum([r.action_counts for r in records], axis=0)
    np.testing.assert_array_equal(result.visits[0].sum(axis=0), by_action)


def test_run_to_end_returns_the_generators_result() -> None:
    hp = hyper(episodes=150, seed=4)
    result = run_to_end(train(SHORT, hp))
    records, again = collect(train(SHORT, hp))
    assert result.episodes == again.episodes == 150
    np.testing.assert_array_equal(result.q, again.q)
    assert result.env_steps == sum(r.steps for r in records)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_training_reward_is_mean_of_last_100_training_returns(algorithm: str) -> None:
    records, result = collect(train(STANDARD, hyper(episodes=437, seed=2), algorithm))
    returns = [r.ret for r in records]
    assert result.training_reward.shape == (1,)
    assert result.training_reward[0] == pytest.approx(float(np.mean(returns[-100:])), abs=1e-9)
    # It is the training figure, exploration included, not the verified reward.
    verified = verification.verify(result.policy(), 200).mean
    assert result.training_reward[0] != pytest.approx(verified, abs=1e-6)
    # Fewer than 100 episodes: the mean of all of them.
    records, result = collect(train(STANDARD, hyper(episodes=37, seed=2), algorithm))
    assert result.training_reward[0] == pytest.approx(float(np.mean([r.ret for r in records])), abs=1e-9)


def test_unknown_algorithm_is_rejected() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        train(STANDARD, hyper(episodes=5), "sarsa")  # type: ignore[arg-type]


# --- reproducibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_configuration_and_seed_reproduce_bit_for_bit(algorithm: str) -> None:
    hp = hyper(episodes=300, seed=1234)
    rec_a, a = collect(train(STANDARD, hp, algorithm))
    rec_b, b = collect(train(STANDARD, hp, algorithm))
    assert np.array_equal(a.q, b.q)
    assert np.array_equal(a.visits, b.visits)
    assert rec_a == rec_b
    assert a.policy().hash == b.policy().hash
    assert a.policy().canonical_bytes() == b.policy().canonical_bytes()

    _, c = collect(train(STANDARD, hp.replace(seed=1235), algorithm))
    assert not np.array_equal(a.q, c.q)
    assert not np.array_equal(a.visits, c.visits)


def test_q_and_double_q_differ() -> None:
    hp = hyper(episodes=200, seed=5)
    a = run_to_end(train(STANDARD, hp, "q"))
    b = run_to_end(train(STANDARD, hp, "double-q"))
    assert not np.array_equal(a.q, b.q)


# --- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_should_stop_ends_the_run_after_exactly_n_episodes(algorithm: str) -> None:
    should_stop, calls = stop_after(37)
    records, result = collect(train(STANDARD, hyper(episodes=1000, seed=3), algorithm, should_stop))
    assert len(records) == 37
    assert len(calls) == 37
    assert result.episodes == 37
    assert result.stopped is True
    assert result.env_steps == sum(r.steps for r in records)
    policy = result.policy()
    assert isinstance(policy, Policy)
    assert len(policy.actions) == 108
    assert len(policy.hash) == 64

    # A run stopped after N episodes learned exactly what an N-episode run learns.
    full = run_to_end(train(STANDARD, hyper(episodes=37, seed=3), algorithm))
    assert np.array_equal(result.q, full.q)
    assert full.stopped is False


def test_until_stopped_runs_as_long_as_asked() -> None:
    should_stop, _ = stop_after(1234)
    hp = hyper(episodes=None, seed=8)
    records, result = collect(train(SHORT, hp, "q", should_stop))
    assert len(records) == 1234
    assert result.episodes == 1234 and result.stopped is True
    assert [r.episode for r in records] == list(range(1234))
    result.policy()
    # Unbounded training is the same run as a bounded one (chunking does not matter).
    bounded = run_to_end(train(SHORT, hp.replace(episodes=1234), "q"))
    assert np.array_equal(result.q, bounded.q)


def test_population_should_stop() -> None:
    should_stop, _ = stop_after(20)
    records, result = collect(train_population(SHORT, hyper(episodes=None, seed=1), 3, "q", should_stop))
    assert len(records) == 20
    assert result.episodes == 20 and result.stopped is True and result.agents == 3
    for k in range(3):
        result.policy(k)


# --- population -------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_population_agent_0_equals_single_agent_bit_for_bit(algorithm: str) -> None:
    hp = hyper(episodes=250, seed=77)
    single_records, single = collect(train(STANDARD, hp, algorithm))
    pop_records, pop = collect(train_population(STANDARD, hp, 4, algorithm))
    assert pop.agents == 4
    assert np.array_equal(pop.q[0], single.q[0])
    assert np.array_equal(pop.visits[0], single.visits[0])
    assert len(pop_records) == len(single_records) == 250
    for prec, srec in zip(pop_records, single_records, strict=True):
        assert prec.returns[0] == srec.ret
        assert prec.agent(0) == srec
    assert pop.training_reward[0] == single.training_reward[0]
    assert pop.policy(0).hash == single.policy().hash


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_population_agents_do_not_depend_on_population_size(algorithm: str) -> None:
    hp = hyper(episodes=150, seed=9)
    rec3, pop3 = collect(train_population(SHORT, hp, 3, algorithm))
    rec5, pop5 = collect(train_population(SHORT, hp, 5, algorithm))
    assert np.array_equal(pop3.q, pop5.q[:3])
    assert np.array_equal(pop3.visits, pop5.visits[:3])
    for r3, r5 in zip(rec3, rec5, strict=True):
        assert np.array_equal(r3.returns, r5.returns[:3])
        for k in range(3):
            assert r3.agent(k) == r5.agent(k)
    # The agents are not copies of each other.
    assert not np.array_equal(pop5.q[0], pop5.q[1])

    # Reproducible for the same (config, seed, K).
    rec5b, pop5b = collect(train_population(SHORT, hp, 5, algorithm))
    assert np.array_equal(pop5.q, pop5b.q)
    assert np.array_equal(pop5.visits, pop5b.visits)
    assert all(np.array_equal(a.returns, b.returns) for a, b in zip(rec5, rec5b, strict=True))
    _, other = collect(train_population(SHORT, hp.replace(seed=10), 5, algorithm))
    assert not np.array_equal(pop5.q, other.q)


def test_population_records_and_totals() -> None:
    hp = hyper(episodes=230, seed=21)
    records, result = collect(train_population(STANDARD, hp, 3, "q"))
    assert [r.episode for r in records] == list(range(230))
    per_agent = np.array([r.returns for r in records])  # (episodes, K)
    for i, rec in enumerate(records):
        assert rec.epsilon == hp.epsilon(i)
        assert np.array_equal(rec.action_counts.sum(axis=1), rec.steps)
        for k in range(3):
            ep = rec.agent(k)
            assert ep.episode == i
            assert ep.ret == rec.returns[k]
            assert ep.steps == rec.steps[k]
            assert ep.epsilon == rec.epsilon
            assert ep.rolling_mean == rec.rolling_mean[k]
            assert ep.action_counts == tuple(int(c) for c in rec.action_counts[k])
            window = per_agent[max(0, i - 99): i + 1, k]
            assert rec.rolling_mean[k] == pytest.approx(window.mean(), rel=1e-12, abs=1e-12)
    assert result.env_steps == sum(int(r.steps.sum()) for r in records)
    assert int(result.visits.sum()) == result.env_steps
    np.testing.assert_allclose(result.training_reward, per_agent[-100:].mean(axis=0), atol=1e-9)
    assert result.best_agent == int(np.argmax(result.training_reward))
    assert result.policy() == result.policy(result.best_agent)


@pytest.mark.parametrize("agents", [0, -1, True, 2.0])
def test_population_size_is_validated(agents: object) -> None:
    with pytest.raises(ValueError, match="agents"):
        train_population(STANDARD, hyper(episodes=5), agents)  # type: ignore[arg-type]


# --- training never sees evaluation episodes ----------------------------------------------------


def test_training_streams_are_spawned_seed_sequences() -> None:
    for seed in (0, 1, 2**40 + 3):
        for kind in (training.ENV_STREAM, training.EXPLORE_STREAM):
            for agent in (0, 1, 7):
                expected = np.random.Generator(
                    np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(kind, agent))))
                got = training.stream(seed, kind, agent)
                assert got.bit_generator.state == expected.bit_generator.state
        # ... and not the generator a plain reset seed builds.
        plain = np.random.default_rng(seed).bit_generator.state
        assert training.stream(seed, training.ENV_STREAM, 0).bit_generator.state != plain
    assert training.ENV_STREAM != training.EXPLORE_STREAM


def test_first_training_episode_is_not_an_evaluation_episode() -> None:
    suite = verification.suite_uniforms(STANDARD, 1000)
    flat_suite = suite.reshape(1000, -1)
    for seed in (0, 1, 12345, MAX_SEED):
        for agent in (0, 1):
            first = dyn.draw_episode_uniforms(training.stream(seed, training.ENV_STREAM, agent), STANDARD)
            assert first.shape == suite.shape[1:]
            assert not (flat_suite == first.reshape(-1)).all(axis=1).any()
            # Not even one step's draws coincide.
            assert not np.isin(first.reshape(-1), suite.reshape(-1)).any()


def test_train_plays_the_env_stream_episodes() -> None:
    """The first training episode is the one drawn from stream(seed, ENV_STREAM, 0).

    With epsilon 1 every action is the exploration stream's random action
    (uniforms per step: explore?, random action, which table).
    """
    seed = 99
    hp = hyper(episodes=1, seed=seed, epsilon_start=1.0, epsilon_end=1.0)
    (record,), _ = collect(train(STANDARD, hp))
    env_u = dyn.draw_episode_uniforms(training.stream(seed, training.ENV_STREAM, 0), STANDARD, 1)[0]
    explore = training.stream(seed, training.EXPLORE_STREAM, 0).random(
        (1, STANDARD.horizon, training.EXPLORE_UNIFORMS))[0]
    env = CyberDefenseEnv(STANDARD)
    env.load_episode(env_u)
    total, steps, counts = 0, 0, [0] * 5
    done = False
    while not done:
        action = int(explore[steps, 1] * 5.0)
        _, _, done, _, info = env.step(action)
        total += info["reward_tenths"]
        counts[action] += 1
        steps += 1
    assert record.steps == steps
    assert record.ret == total / 10.0
    assert record.action_counts == tuple(counts)


def test_training_seed_can_never_be_an_evaluation_seed() -> None:
    assert verification.EVAL_SEED_BASE == 2**63
    assert MAX_SEED < verification.EVAL_SEED_BASE
    assert min(verification.suite_seeds(1000)) >= 2**63
    Hyperparameters(seed=2**63 - 1)
    for bad in (2**63, 2**63 + 5, 2**64):
        with pytest.raises(ConfigError, match=r"^seed"):
            Hyperparameters(seed=bad)


# --- hyperparameters ---------------------------------------------------------------------------

FLOAT_FIELDS = ("learning_rate", "lr_exponent", "lr_min", "discount", "epsilon_start",
                "epsilon_end", "epsilon_decay", "initial_q")


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.5", None, True])
def test_non_numeric_or_non_finite_hyperparameters_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        Hyperparameters(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": 1.5}, "learning_rate"),
        ({"discount": 1.01}, "discount"),
        ({"discount": -0.5}, "discount"),
        ({"epsilon_start": 0.5, "epsilon_end": 0.6}, "epsilon_end"),
        ({"epsilon_start": 1.2}, "epsilon_start"),
        ({"epsilon_decay": 0.0}, "epsilon_decay"),
        ({"epsilon_decay": 1.1}, "epsilon_decay"),
        ({"lr_exponent": 0.0}, "lr_exponent"),
        ({"lr_min": 0.5, "learning_rate": 0.3}, "lr_min"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"initial_q": 1e7}, "initial_q"),
        ({"episodes": 0}, "episodes"),
        ({"episodes": -3}, "episodes"),
        ({"episodes": 10.0}, "episodes"),
        ({"episodes": True}, "episodes"),
        ({"episodes": "100"}, "episodes"),
        ({"seed": True}, "seed"),
        ({"seed": False}, "seed"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"seed": "7"}, "seed"),
    ],
)
def test_invalid_hyperparameters_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}"):
        Hyperparameters(**changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=f"^{field}"):
        Hyperparameters.from_dict({**Hyperparameters().to_dict(), **changes})


def test_replace_validates_again() -> None:
    with pytest.raises(ConfigError, match=r"^discount"):
        Hyperparameters().replace(discount=2.0)


def test_from_dict_rejects_unknown_fields_and_non_objects() -> None:
    with pytest.raises(ConfigError, match="'learning_rte'"):
        Hyperparameters.from_dict({"learning_rte": 0.1})
    with pytest.raises(ConfigError, match="'extra'"):
        Hyperparameters.from_dict({**Hyperparameters().to_dict(), "extra": 1})
    for bad in ([], "x", None, 3):
        with pytest.raises(ConfigError):
            Hyperparameters.from_dict(bad)


@pytest.mark.parametrize(
    "hp",
    [*HYPER_PRESETS.values(),
     Hyperparameters(learning_rate=0.7, lr_schedule="count", lr_exponent=0.8, lr_min=0.01,
                     discount=0.9, epsilon_start=0.9, epsilon_end=0.1, epsilon_decay=0.99,
                     initial_q=-3.5, episodes=None, seed=MAX_SEED)],
)
def test_to_dict_from_dict_round_trip(hp: Hyperparameters) -> None:
    data = hp.to_dict()
    assert set(data) == {"learning_rate", "lr_schedule", "lr_exponent", "lr_min", "discount",
                         "epsilon_start", "epsilon_end", "epsilon_decay", "initial_q", "episodes",
                         "seed"}
    assert Hyperparameters.from_dict(data) == hp
    # JSON-ready: survives a trip through JSON text.
    assert Hyperparameters.from_dict(json.loads(json.dumps(data, allow_nan=False))) == hp


def test_presets() -> None:
    assert set(HYPER_PRESETS) >= {"seed-defaults", "recommended"}
    assert DEFAULT_HYPER == "recommended"
    seed_defaults = hyper_preset("seed-defaults")
    assert seed_defaults.learning_rate == 0.3
    assert seed_defaults.lr_schedule == "constant"
    assert seed_defaults.discount == 0.95
    assert seed_defaults.epsilon_start == 1.0
    assert seed_defaults.epsilon_end == 0.05
    assert seed_defaults.epsilon_decay == 0.998
    assert seed_defaults.initial_q == 0.0
    assert hyper_preset(DEFAULT_HYPER) == HYPER_PRESETS["recommended"]
    assert hyper_preset("recommended") != seed_defaults
    with pytest.raises(ConfigError, match="nonexistent"):
        hyper_preset("nonexistent")


def test_count_based_alpha_table_decreases_like_c_over_n_to_the_w() -> None:
    hp = Hyperparameters(learning_rate=0.8, lr_schedule="count", lr_exponent=0.6)
    table = hp.alpha_table()
    n = np.arange(1, 5001, dtype=np.float64)
    np.testing.assert_allclose(table[:5000], 0.8 / n**0.6, rtol=1e-13)
    assert np.all(np.diff(table[:5000]) < 0)
    assert table[0] == 0.8

    floored = Hyperparameters(learning_rate=1.0, lr_schedule="count", lr_exponent=0.7, lr_min=0.05)
    ft = floored.alpha_table()
    assert np.all(ft >= 0.05)
    assert ft[-1] == 0.05  # counts past the end use the last value: the floor
    k = np.arange(1, len(ft) + 1, dtype=np.float64)
    np.testing.assert_allclose(ft, np.maximum(1.0 / k**0.7, 0.05), rtol=1e-13)

    constant = Hyperparameters(learning_rate=0.3).alpha_table()
    assert constant.tolist() == [0.3]


def test_training_uses_the_count_based_step_size() -> None:
    """With horizon 1 every episode is one update whose target is the episode's return;
    with alpha = 1/n each Q entry is then the plain mean of its targets."""
    cfg = EnvConfig(horizon=1)
    hp = Hyperparameters(learning_rate=1.0, lr_schedule="count", lr_exponent=1.0, episodes=400, seed=6)
    records, result = collect(train(cfg, hp))
    q, visits = result.q[0], result.visits[0]
    for action in range(5):
        targets = [r.ret for r in records if r.action_counts[action] == 1]
        assert int(visits[:, action].sum()) == len(targets)
        assert float((visits[:, action] * q[:, action]).sum()) == pytest.approx(sum(targets), abs=1e-9)
    # The constant schedule does not average.
    _, const = collect(train(cfg, hp.replace(lr_schedule="constant", learning_rate=0.3)))
    assert not np.allclose(const.q, result.q)


# --- learning ----------------------------------------------------------------------------------


def test_recommended_hyperparameters_learn_short_burst() -> None:
    hp = hyper_preset(DEFAULT_HYPER).replace(episodes=20_000, seed=0)
    result = run_to_end(train(SHORT, hp, "q"))
    policy = result.policy()
    report = verification.verify(policy)
    assert report.fraction_of_optimum >= 0.9
    # On short-burst the myopic rule alone reaches ~0.98 of the optimum, so 0.9 by itself
    # would also pass for an agent that learned nothing (unvisited observations fall back
    # to the myopic action). The learned policy must beat that rule and act on what it learned.
    assert report.mean > report.baselines["myopic"]
    reachable = [o for o in range(108) if o not in TERMINAL_OBSERVATIONS]
    assert (result.visits[0, reachable].sum(axis=1) > 0).sum() >= 60
    assert any(policy.actions[o] != MYOPIC_ACTIONS[o] for o in reachable)
