"""One episode stepped by EpisodeTrack: the same episode, rewards and end as CyberDefenseEnv's."""

from __future__ import annotations

import numpy as np
import pytest

from policyledger_core.policy import MYOPIC_ACTIONS
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import PRESETS, EnvConfig
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.sim.replay import observation_decider, replay
from policyledger_core.verify.episode import EpisodeTrack, evaluation_seed
from policyledger_core.verify.suite import EVAL_SEED_BASE, suite_uniforms

STANDARD = PRESETS["standard"]
IGNORE = (0,) * dyn.N_OBS  # loses the system in many episodes: ends early
ISOLATE = (4,) * dyn.N_OBS


def env_play(config: EnvConfig, actions: tuple[int, ...], seed: int) -> tuple[float, list[int], list[int]]:
    """Return (float sum of the env's rewards), rewards in tenths and actions, played directly."""
    env = CyberDefenseEnv(config=config)
    obs, _ = env.reset(seed=seed)
    total, tenths, taken, done = 0.0, [], [], False
    while not done:
        action = actions[obs]
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        tenths.append(info["reward_tenths"])
        taken.append(action)
        done = terminated or truncated
    return total, tenths, taken


@pytest.mark.parametrize("actions", [MYOPIC_ACTIONS, IGNORE, ISOLATE])
@pytest.mark.parametrize("offset", [0, 1, 17, 10_000])
def test_cumulative_reward_is_the_environments(actions: tuple[int, ...], offset: int) -> None:
    seed = evaluation_seed(offset)
    total, tenths, taken = env_play(STANDARD, actions, seed)
    track = EpisodeTrack(STANDARD, actions, seed)
    records = track.run()
    assert track.done and track.step() is None and len(track.records) == len(records)
    assert track.total == pytest.approx(total, abs=1e-9)
    assert [r.reward_tenths for r in records] == tenths
    assert [r.action for r in records] == taken
    assert [r.step for r in records] == list(range(1, len(tenths) + 1))
    running = 0
    for record, reward in zip(records, tenths, strict=True):
        running += reward
        assert record.cumulative_tenths == running
    assert records[-1].cumulative == track.total


def test_steps_one_at_a_time_with_the_state_before_each_action() -> None:
    track = EpisodeTrack(STANDARD, MYOPIC_ACTIONS, evaluation_seed(3))
    first = track.step()
    assert first is not None and first.step == 1 and first.info["step"] == 0
    assert first.info["health"] == dyn.HEALTHY and len(track.records) == 1
    obs = dyn.observation_index(first.info["severity"], first.info["attack_type"], first.info["health"],
                                first.info["confidence"], first.info["duration"])
    assert first.action == MYOPIC_ACTIONS[obs]
    second = track.step()
    assert second is not None and second.info["health"] == first.health_after


def test_suite_episodes_match_the_vectorised_replay() -> None:
    n = 40
    outcome = replay(STANDARD, suite_uniforms(STANDARD, n), observation_decider(np.array(IGNORE)))
    for i in range(n):
        track = EpisodeTrack(STANDARD, IGNORE, evaluation_seed(i))
        track.run()
        assert track.total_tenths == int(outcome.returns_tenths[i])
        assert len(track.records) == int(outcome.steps[i])


def test_evaluation_seed() -> None:
    assert evaluation_seed(0) == EVAL_SEED_BASE == 2**63
    assert evaluation_seed(7) == 2**63 + 7
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="offset"):
            evaluation_seed(bad)  # type: ignore[arg-type]
