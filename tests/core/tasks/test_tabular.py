"""Tabular Q-learning's kernel: it samples the model as Gymnasium does (checked in distribution
against Gymnasium's own episodes and the model's probabilities), is deterministic for a seed,
and with each task's ``recommended`` preset reaches the quality asked of it."""

from __future__ import annotations

import numpy as np
import pytest

from policyledger_core.learn.hyper import Algorithm, Hyperparameters
from policyledger_core.learn.tabular import (
    TABULAR_PRESETS,
    TabularRun,
    recommended,
    simulate,
    train_tabular,
)
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.toytext import TASKS, toy_text_task
from tests.core.tasks import reference

TASK_IDS = list(TASKS)
KERNEL_EPISODES = 200_000
TARGETS = {"FrozenLake-v1": 0.985, "FrozenLake8x8-v1": 0.965, "Taxi-v4": 0.995, "CliffWalking-v1": 1.0}


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_kernel_episodes_agree_with_gymnasium_and_the_exact_value(task_id: str) -> None:
    task = toy_text_task(task_id)
    table = task.best_stationary().actions
    kernel = simulate(task.model(), task.horizon, table, KERNEL_EPISODES, seed=11)
    gym = reference.best_table_replay(task_id)
    exact = task.expected_return(table)
    for ours, theirs in ((kernel.returns, gym.returns), (kernel.steps, gym.steps)):
        se_ours = ours.std(ddof=1) / np.sqrt(ours.size)
        se_both = np.hypot(se_ours, theirs.std(ddof=1) / np.sqrt(theirs.size))
        if se_both == 0:  # CliffWalking: one deterministic path
            assert ours.tolist() == [theirs[0]] * ours.size
        else:
            assert abs(ours.mean() - theirs.mean()) < 4.5 * se_both, (ours.mean(), theirs.mean(), se_both)
    se = kernel.returns.std(ddof=1) / np.sqrt(KERNEL_EPISODES)
    assert abs(kernel.returns.mean() - exact) <= max(4.5 * se, 1e-12), (kernel.returns.mean(), exact, se)


@pytest.mark.parametrize(("task_id", "episodes"), [("FrozenLake-v1", 200_000), ("FrozenLake8x8-v1", 100_000),
                                                  ("Taxi-v4", 20_000), ("CliffWalking-v1", 20_000)])
def test_training_episodes_with_random_actions_have_the_random_value(task_id: str, episodes: int) -> None:
    # Epsilon 1 throughout: the training kernel's own episodes are those of uniformly random actions.
    task = toy_text_task(task_id)
    hyper = Hyperparameters(epsilon_start=1.0, epsilon_end=1.0, epsilon_decay=1.0, episodes=episodes, seed=9)
    returns = train_tabular(task.model(), task.horizon, hyper).returns
    se = returns.std(ddof=1) / np.sqrt(episodes)
    expected = task.baselines()["random"].value
    assert abs(returns.mean() - expected) < 4.5 * se, (returns.mean(), expected, se)


@pytest.mark.parametrize("task_id", ["FrozenLake-v1", "FrozenLake8x8-v1"])
def test_kernel_next_states_follow_the_model(task_id: str) -> None:
    task = toy_text_task(task_id)
    model = task.model()
    # The best table visits almost every state that is not a hole or the goal, many times.
    table = task.best_stationary().actions
    kernel = simulate(model, task.horizon, table, 40_000, seed=5)
    transitions, _, _ = reference.environment(task_id)
    checked = 0
    for s in range(task.n_observations):
        where = model.outcomes(s, int(table[s]))
        counts = kernel.outcome_counts[where]
        if counts.sum() < 1_000 or where.stop - where.start < 2:
            continue
        # Outcomes as Gymnasium lists them, next state by next state (some lead to the same state).
        probs: dict[int, float] = {}
        for p, s2, _r, _d in transitions[s][int(table[s])]:
            probs[s2] = probs.get(s2, 0.0) + p
        seen: dict[int, int] = {}
        for s2, n in zip(model.next_states[where].tolist(), counts.tolist(), strict=True):
            seen[s2] = seen.get(s2, 0) + n
        states = sorted(probs)
        statistic, df = reference.chi_square([seen.get(x, 0) for x in states], [probs[x] for x in states])
        if df:
            assert statistic < reference.chi_square_bound(df), (s, statistic, df)
            checked += 1
    assert checked >= (9 if task_id == "FrozenLake-v1" else 30)


def test_kernel_initial_states_follow_the_model() -> None:
    task = toy_text_task("Taxi-v4")
    kernel = simulate(task.model(), task.horizon, task.best_stationary().actions, 60_000, seed=2)
    _, initial, _ = reference.environment("Taxi-v4")
    probs = np.zeros(task.n_observations)
    probs[list(initial)] = list(initial.values())
    statistic, df = reference.chi_square(kernel.initial_counts, probs)
    assert df == 299 and statistic < reference.chi_square_bound(df)


def test_training_is_deterministic_and_does_not_depend_on_chunks() -> None:
    task = toy_text_task("FrozenLake-v1")
    hyper = Hyperparameters(learning_rate=1.0, lr_schedule="count", discount=0.99, episodes=3_000, seed=4)
    for algorithm in ("q", "double-q"):
        one = train_tabular(task.model(), task.horizon, hyper, algorithm)  # type: ignore[arg-type]
        again = train_tabular(task.model(), task.horizon, hyper, algorithm)  # type: ignore[arg-type]
        assert np.array_equal(one.q, again.q) and np.array_equal(one.returns, again.returns)
        run = TabularRun(task.model(), task.horizon, hyper, algorithm)  # type: ignore[arg-type]
        for part in (1, 999, 2_000):
            run.advance(part)
        pieces = run.result()
        assert np.array_equal(one.q, pieces.q) and np.array_equal(one.returns, pieces.returns)
        assert one.episodes == 3_000 and one.env_steps == int(one.steps.sum()) > 3_000
        assert one.visits.sum() == one.env_steps
    other = train_tabular(task.model(), task.horizon, hyper.replace(seed=5))
    assert not np.array_equal(one.returns, other.returns)


def test_training_stops_when_asked_and_rejects_bad_input() -> None:
    task = toy_text_task("CliffWalking-v1")
    stopped = train_tabular(task.model(), task.horizon, Hyperparameters(episodes=10),
                            should_stop=lambda: True)
    assert stopped.stopped and stopped.episodes == 0
    with pytest.raises(ValueError, match="episodes"):
        train_tabular(task.model(), task.horizon, Hyperparameters(episodes=None))
    with pytest.raises(ValueError, match="algorithm"):
        train_tabular(task.model(), task.horizon, Hyperparameters(), "sarsa")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no recommended"):
        recommended("Blackjack-v1")
    with pytest.raises(ValueError, match="algorithm"):
        recommended("Taxi-v4", "sarsa")  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["q", "double-q"])
@pytest.mark.parametrize("task_id", TASK_IDS)
def test_recommended_preset_reaches_the_target(task_id: str, algorithm: Algorithm) -> None:
    task = toy_text_task(task_id)
    assert set(TABULAR_PRESETS) == set(TASKS)
    for seed in (0, 1):
        result = train_tabular(task.model(), task.horizon, recommended(task_id, algorithm).replace(seed=seed),
                               algorithm)
        fraction = fraction_of_optimum(task.expected_return(result.actions), task.optimum())
        assert fraction >= TARGETS[task_id] - 1e-9, (seed, fraction)
