"""The cyber-defense task answers the Task protocol's questions with the simulator's own figures,
so code written against the protocol treats it and the toy-text tasks alike."""

from __future__ import annotations

import numpy as np
import pytest

from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim.config import PRESETS, preset
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.sim.optimum import expected_return, solve
from policyledger_core.tasks.base import Task, fraction_of_optimum
from policyledger_core.tasks.cyber import CyberDefenseTask
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.suite import exact_baselines, suite_seeds, verify


@pytest.mark.parametrize("name", list(PRESETS))
def test_its_exact_figures_are_the_simulators(name: str) -> None:
    config = preset(name)
    task = CyberDefenseTask(config)
    assert task.optimum() == solve(config).value
    table = np.array(MYOPIC_ACTIONS)
    assert task.expected_return(table) == expected_return(config, table)
    assert {k: b.value for k, b in task.baselines().items()} == exact_baselines(config)
    assert task.baselines()["myopic"].actions == MYOPIC_ACTIONS
    assert task.model() is None and task.grid() is None and task.horizon == config.horizon


def test_its_replay_is_the_verification_suites_and_the_environments() -> None:
    config = preset("short-burst")
    policy = Policy(config, MYOPIC_ACTIONS)
    played = CyberDefenseTask(config).replay(policy.actions, suite_seeds(200))
    assert float(played.returns.mean()) == pytest.approx(verify(policy, 200).mean, abs=1e-12)
    env = CyberDefenseEnv(config=config)
    for i, seed in enumerate(suite_seeds(3)):  # the Gymnasium environment plays the same episodes
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(MYOPIC_ACTIONS[int(obs)])
            total += float(reward)
            done = terminated or truncated
        assert total == pytest.approx(played.returns[i], abs=1e-9)


def _summary(task: Task, actions: tuple[int, ...]) -> tuple[str, float]:
    """What code written against the protocol alone can say of a table."""
    return task.task_id, fraction_of_optimum(task.expected_return(actions), task.optimum())


def test_one_function_serves_both_kinds_of_task() -> None:
    taxi = toy_text_task("Taxi-v4")
    best = tuple(int(a) for a in taxi.best_stationary().actions)
    assert _summary(taxi, best) == ("Taxi-v4", 1.0)
    cyber = CyberDefenseTask(preset("standard"))
    task_id, fraction = _summary(cyber, MYOPIC_ACTIONS)
    assert task_id == "PolicyLedger/CyberDefense-v1" and 0 < fraction < 1
    assert cyber.observation_label(0).startswith("low scan alert")
    with pytest.raises(ValueError, match="108 actions"):
        cyber.expected_return((0,) * 5)
