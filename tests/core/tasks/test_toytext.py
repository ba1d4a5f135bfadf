"""The toy-text tasks: their specifications, maps and baselines, and replay in Gymnasium's own
environment, whose mean return must agree with the exact value of the table replayed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.toy_text import cliffwalking, frozen_lake

from policyledger_core.sim.config import ConfigError
from policyledger_core.tasks.base import fraction_of_optimum, returns_digest
from policyledger_core.tasks.toytext import TASKS, TaskSpec, task_for_spec, toy_text_task
from tests.core.tasks import reference

TASK_IDS = list(TASKS)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_replay_mean_agrees_with_the_exact_value(task_id: str) -> None:
    task = toy_text_task(task_id)
    replay = reference.best_table_replay(task_id)
    exact = task.expected_return(task.best_stationary().actions)
    n = replay.returns.size
    stderr = replay.returns.std(ddof=1) / np.sqrt(n)
    if task_id == "CliffWalking-v1":  # deterministic: every episode is the same 13 steps
        assert replay.returns.tolist() == [exact] * n
    else:
        assert stderr > 0
        assert abs(replay.mean - exact) < 4.5 * stderr, (replay.mean, exact, stderr)
    assert replay.steps.max() <= task.horizon


@pytest.mark.parametrize("task_id", ["Taxi-v4", "CliffWalking-v1"])
def test_replay_truncates_at_the_horizon_as_the_exact_value_counts(task_id: str) -> None:
    # A table that loops (every action the same, never finishing) is cut at the horizon.
    task = toy_text_task(task_id)
    table = np.zeros(task.n_observations, dtype=np.int64)  # south / up: walks into a wall
    replay = task.replay(table, range(40))
    assert replay.steps.tolist() == [task.horizon] * 40
    assert replay.returns.mean() == pytest.approx(task.expected_return(table), abs=1e-9)


def test_replay_is_deterministic_and_its_digest_covers_the_returns() -> None:
    task = toy_text_task("FrozenLake-v1")
    table = task.best_stationary().actions
    first, again = task.replay(table, range(200)), task.replay(table, range(200))
    assert first.digest == again.digest
    assert first.returns.tolist() == again.returns.tolist() and first.steps.tolist() == again.steps.tolist()
    assert first.digest == returns_digest(first.returns)
    assert task.replay(table, range(1, 201)).digest != first.digest
    with pytest.raises(ValueError, match="seeds"):
        task.replay(table, [-1])
    with pytest.raises(ValueError, match="shape"):
        task.replay(table[:-1], [0])


def test_digest_is_sha256_of_little_endian_float64() -> None:
    import hashlib

    returns = np.array([1.0, 0.0, -13.0])
    assert returns_digest(returns) == hashlib.sha256(returns.astype("<f8").tobytes()).hexdigest()
    assert returns_digest([1, 0, -13]) == returns_digest(returns)


def test_specs_are_canonical_and_round_trip() -> None:
    assert toy_text_task("FrozenLake-v1").spec_dict() == {
        "env_id": "FrozenLake-v1", "kwargs": {"is_slippery": True, "map_name": "4x4"}, "horizon": 100}
    assert toy_text_task("CliffWalking-v1").spec_dict() == {
        "env_id": "CliffWalking-v1", "kwargs": {"is_slippery": False}, "horizon": 200}
    for task in TASKS.values():
        assert task_for_spec(task.spec_dict()) is task
        assert hash(TaskSpec.from_dict(task.spec_dict())) == hash(task.spec)
    with pytest.raises(ConfigError, match="no known task"):
        task_for_spec({"env_id": "FrozenLake-v1", "kwargs": {"map_name": "4x4"}, "horizon": 100})
    with pytest.raises(ConfigError, match="exactly"):
        TaskSpec.from_dict({"env_id": "Taxi-v4", "horizon": 200})
    with pytest.raises(ConfigError, match="horizon"):
        TaskSpec.of("Taxi-v4", 0)
    with pytest.raises(ConfigError, match="unknown task"):
        toy_text_task("Taxi-v3")


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_environment_has_the_task_time_limit(task_id: str) -> None:
    task = toy_text_task(task_id)
    env = task.make()
    assert env.spec is not None and env.spec.max_episode_steps == task.horizon
    assert (env.observation_space.n, env.action_space.n) == (task.n_observations, task.n_actions)  # type: ignore[attr-defined]
    env.close()
    assert gym.spec(task_id).max_episode_steps in (None, task.horizon)


def test_action_names_follow_the_environments() -> None:
    names = toy_text_task("FrozenLake-v1").action_names
    assert [names[frozen_lake.LEFT], names[frozen_lake.DOWN], names[frozen_lake.RIGHT],
            names[frozen_lake.UP]] == ["left", "down", "right", "up"]
    names = toy_text_task("CliffWalking-v1").action_names
    assert [names[cliffwalking.UP], names[cliffwalking.RIGHT], names[cliffwalking.DOWN],
            names[cliffwalking.LEFT]] == ["up", "right", "down", "left"]
    assert toy_text_task("Taxi-v4").action_names == ("south", "north", "east", "west", "pickup", "dropoff")
    # Taxi's action 0 moves south: from row 0 it reaches row 1.
    taxi = toy_text_task("Taxi-v4").model()
    assert toy_text_task("Taxi-v4").grid().positions[int(taxi.next_states[taxi.outcomes(0, 0)][0])] == (1, 0)


def test_maps() -> None:
    lake = toy_text_task("FrozenLake-v1").grid()
    assert (lake.rows, lake.cols) == (4, 4)
    assert "".join(lake.labels) == "SFFFFHFHFFFHHFFG"
    assert [i for i, k in enumerate(lake.cells) if k == "hole"] == [5, 7, 11, 12]
    big = toy_text_task("FrozenLake8x8-v1").grid()
    assert (big.rows, big.cols, big.cells.count("hole"), big.kind(7, 7)) == (8, 8, 10, "goal")
    cliff = toy_text_task("CliffWalking-v1").grid()
    assert (cliff.rows, cliff.cols, cliff.kind(3, 0), cliff.kind(3, 11)) == (4, 12, "start", "goal")
    assert [c for c in range(12) if cliff.kind(3, c) == "cliff"] == list(range(1, 11))
    taxi = toy_text_task("Taxi-v4").grid()
    assert [taxi.label(r, c) for r, c in taxi.pads] == ["R", "G", "Y", "B"]
    assert taxi.walls == {(0, 1), (1, 1), (3, 0), (3, 2), (4, 0), (4, 2)}
    assert taxi.positions[499] == (4, 4)
    assert toy_text_task("Taxi-v4").observation_label(0) == (
        "taxi at row 0, column 0; passenger at R; destination R")
    assert toy_text_task("FrozenLake-v1").observation_label(5) == "row 1, column 1 (hole)"


def test_baselines_and_fractions() -> None:
    lake = toy_text_task("FrozenLake8x8-v1").baselines()
    assert lake["constant"].description == "always right (the best single action)"
    assert lake["random"].actions is None and lake["random"].value < lake["constant"].value
    assert fraction_of_optimum(0.5, 1.0) == 0.5
    assert fraction_of_optimum(-26.0, -13.0) == 0.5
    assert fraction_of_optimum(-13.0, -13.0) == 1.0
