"""One toy-text episode played by play_task_episode: Gymnasium's own episode, step by step."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from policyledger_core.tasks.spec import task_info
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.episode import evaluation_seed, play_task_episode

TASK_IDS = ("FrozenLake-v1", "FrozenLake8x8-v1", "Taxi-v4", "CliffWalking-v1")


Step = tuple[int, int, float, int, bool, bool]


def gym_play(task_id: str, actions: tuple[int, ...], seed: int) -> list[Step]:
    """(observation, action, reward, next observation, terminated, truncated) of each step, played with
    gymnasium.make directly (the task's arguments and its time limit)."""
    spec = task_info(task_id).spec
    kwargs: dict[str, Any] = spec.kwargs_dict()
    if gym.spec(task_id).max_episode_steps is None:
        kwargs["max_episode_steps"] = spec.horizon
    env = gym.make(task_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    out, done = [], False
    while not done:
        action = actions[int(obs)]
        nxt, reward, terminated, truncated, _ = env.step(action)
        out.append((int(obs), action, float(reward), int(nxt), bool(terminated), bool(truncated)))
        obs, done = nxt, terminated or truncated
    env.close()
    return out


@pytest.mark.parametrize("task_id", TASK_IDS)
@pytest.mark.parametrize("offset", [0, 1, 17])
def test_an_episode_is_gymnasiums_with_the_same_seed(task_id: str, offset: int) -> None:
    task = toy_text_task(task_id)
    actions = tuple(int(a) for a in task.best_stationary().actions)
    seed = evaluation_seed(offset)
    episode = play_task_episode(task_id, actions, seed)
    expected = gym_play(task_id, actions, seed)
    assert [(s.observation, s.action, s.reward, s.next_observation, s.terminated, s.truncated)
            for s in episode.steps] == expected
    assert [s.step for s in episode.steps] == list(range(1, len(expected) + 1))
    assert episode.start == expected[0][0] and episode.seed == seed and episode.env_id == task_id
    assert episode.total == sum(e[2] for e in expected)
    assert episode.steps[-1].cumulative == episode.total
    assert episode.observations(len(expected)) == [expected[0][0], *(e[3] for e in expected)]
    assert episode.observations(0) == [expected[0][0]]
    assert episode.ending == ("truncated" if expected[-1][5] and not expected[-1][4] else "terminated")
    replayed = task.replay(actions, [seed])  # what the verification replays
    assert (float(replayed.returns[0]), int(replayed.steps[0])) == (episode.total, len(episode.steps))


def test_a_long_frozenlake_episode_is_cut_at_the_horizon() -> None:
    task = toy_text_task("FrozenLake8x8-v1")
    actions = tuple(int(a) for a in task.best_stationary().actions)
    episodes = (play_task_episode(task.task_id, actions, evaluation_seed(k)) for k in range(40))
    truncated = next(e for e in episodes if e.ending == "truncated")
    assert len(truncated.steps) == task.horizon and truncated.total == 0.0


def test_bad_tables_and_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 16 actions"):
        play_task_episode("FrozenLake-v1", (0,) * 15, 0)
    with pytest.raises(ValueError, match="seed"):
        play_task_episode("FrozenLake-v1", (0,) * 16, -1)
