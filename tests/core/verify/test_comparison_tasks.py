"""Comparing toy-text task tables: where they act, where they differ, paired on Gymnasium's episodes.

References are computed here from Gymnasium directly (its map, its environment played episode by
episode), not through the functions under test.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from policyledger_core.policy import MYOPIC_ACTIONS, Policy, TaskPolicy
from policyledger_core.sim.config import PRESETS
from policyledger_core.tasks.spec import task_info
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.comparison import (
    NON_TERMINAL_OBSERVATIONS,
    acting_observations,
    differing_among,
    differing_elsewhere,
    differing_observations,
    paired_evaluation,
    task_acting_observations,
    task_returns_tenths,
)
from policyledger_core.verify.suite import suite_seeds
from policyledger_core.verify.tasks import verify_task

EPISODES = 60


def table(task_id: str, changes: dict[int, int] | None = None) -> TaskPolicy:
    """The task's best stationary table, with some observations' actions replaced."""
    actions = [int(a) for a in toy_text_task(task_id).best_stationary().actions]
    for obs, action in (changes or {}).items():
        actions[obs] = action
    return TaskPolicy(task_info(task_id), tuple(actions))


def gym_returns(policy: TaskPolicy, episodes: int) -> list[float]:
    env = toy_text_task(policy.env_id).make()
    out = []
    for seed in suite_seeds(episodes):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.actions[obs])
            total += float(reward)
            done = terminated or truncated
        out.append(total)
    env.close()
    return out


@pytest.mark.parametrize(("task_id", "map_name"), [("FrozenLake-v1", "4x4"), ("FrozenLake8x8-v1", "8x8")])
def test_a_frozenlake_table_acts_everywhere_but_on_holes_and_the_goal(task_id: str, map_name: str) -> None:
    env = gym.make(task_id, map_name=map_name)
    desc = np.asarray(env.unwrapped.desc).astype(str).ravel()  # type: ignore[attr-defined]
    env.close()
    assert task_acting_observations(task_id) == tuple(i for i, c in enumerate(desc) if c in "SF")


def test_cliffwalking_and_taxi_act_where_an_episode_can_be() -> None:
    # CliffWalking: 4 x 12, the cliff is row 3 between the start (3, 0) and the goal (3, 11).
    assert task_acting_observations("CliffWalking-v1") == tuple(range(37))
    # Taxi: every taxi cell, but never with the passenger already at its destination.
    expected = [obs for obs in range(500) if (obs // 4) % 5 != obs % 4]
    assert list(task_acting_observations("Taxi-v4")) == expected and len(expected) == 400


def test_the_cyber_defense_policies_act_where_they_always_did() -> None:
    assert acting_observations(Policy(PRESETS["standard"], MYOPIC_ACTIONS)) == NON_TERMINAL_OBSERVATIONS
    assert len(NON_TERMINAL_OBSERVATIONS) == 72


def test_differing_observations_are_the_acted_ones_and_the_rest_is_said_apart() -> None:
    base = table("FrozenLake-v1")
    other = table("FrozenLake-v1", {0: (base.actions[0] + 1) % 4, 9: (base.actions[9] + 2) % 4,
                                    5: (base.actions[5] + 1) % 4, 15: (base.actions[15] + 3) % 4})
    assert differing_observations(base, other) == [0, 9]
    assert differing_observations(base, base) == []
    assert differing_elsewhere([base, other]) == [5, 15]  # a hole and the goal: never acted on
    third = table("FrozenLake-v1", {14: (base.actions[14] + 1) % 4})
    assert differing_among([base, other, third]) == [0, 9, 14]
    assert differing_elsewhere([base, third]) == []


def test_tables_of_different_tasks_are_not_compared_decision_by_decision() -> None:
    with pytest.raises(ValueError, match="different tasks"):
        differing_observations(table("FrozenLake-v1"), table("FrozenLake8x8-v1"))
    with pytest.raises(ValueError, match="different tasks"):
        differing_among([Policy(PRESETS["standard"], MYOPIC_ACTIONS), table("Taxi-v4")])


@pytest.mark.parametrize("task_id", ["FrozenLake-v1", "Taxi-v4", "CliffWalking-v1"])
def test_task_returns_are_gymnasiums_episode_by_episode(task_id: str) -> None:
    policy = table(task_id)
    tenths = task_returns_tenths(policy, EPISODES)
    assert tenths.dtype == np.int64
    assert list(tenths / 10) == gym_returns(policy, EPISODES)


def test_paired_evaluation_pairs_tables_of_one_task_on_the_same_episodes() -> None:
    base = table("FrozenLake-v1")
    worse = table("FrozenLake-v1", {0: 2, 4: 2})  # right at the start: towards the holes
    taxi = table("Taxi-v4")
    cyber = Policy(PRESETS["standard"], MYOPIC_ACTIONS)
    paired = paired_evaluation([base, worse, taxi, cyber], EPISODES)
    a, b = gym_returns(base, EPISODES), gym_returns(worse, EPISODES)
    assert paired.means[:2] == [pytest.approx(np.mean(a)), pytest.approx(np.mean(b))]
    assert paired.means[2] == pytest.approx(verify_task(taxi, EPISODES).mean)
    first = paired.pairs[0]
    assert (first.first, first.second) == (0, 1) and first.result is not None
    diff = np.array(a) - np.array(b)
    assert first.result.mean_diff == pytest.approx(diff.mean())
    assert first.result.ci95 == pytest.approx(1.959963984540054 * diff.std(ddof=1) / np.sqrt(EPISODES))
    assert [p.result is None for p in paired.pairs[1:]] == [True] * 5  # other tasks: never paired
