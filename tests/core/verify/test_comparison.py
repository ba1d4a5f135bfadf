"""Comparing policies by paired replay, differing decisions, and re-verifying a ledger entry.

The per-episode references here are played through the Gymnasium environment
itself, episode by episode, independently of the vectorised replay under test.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from policyledger_core.ledger.entry import Entry, seal
from policyledger_core.ledger.signing import Publisher
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import PRESETS, EnvConfig
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.verify.comparison import (
    NON_TERMINAL_OBSERVATIONS,
    differing_among,
    differing_observations,
    paired_difference,
    paired_evaluation,
    paired_from_returns,
    reverify,
    suite_returns_tenths,
)
from policyledger_core.verify.suite import Z95, Interval, reference, suite_id, suite_seeds, verify
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy

STANDARD = PRESETS["standard"]
FREE = list(NON_TERMINAL_OBSERVATIONS)


def changed(base: tuple[int, ...], observations: list[int], config: EnvConfig = STANDARD) -> Policy:
    """``base`` with the action of each of ``observations`` moved to the next action."""
    actions = list(base)
    for obs in observations:
        actions[obs] = (actions[obs] + 1) % dyn.N_ACTIONS
    return Policy(config, tuple(actions))


MYOPIC = Policy(STANDARD, MYOPIC_ACTIONS)
OTHER = changed(MYOPIC_ACTIONS, FREE[5:40:3])  # a dozen decisions away from myopic
IGNORING = Policy(STANDARD, (0,) * dyn.N_OBS)


def gym_returns(policy: Policy, episodes: int) -> list[int]:
    """Per-episode returns (tenths) of the suite's first ``episodes`` episodes, via the environment."""
    env = CyberDefenseEnv(config=policy.config)
    out = []
    for seed in suite_seeds(episodes):
        obs, _ = env.reset(seed=seed)
        total, done = 0, False
        while not done:
            obs, _reward, done, _, info = env.step(policy.actions[obs])
            total += info["reward_tenths"]
        out.append(total)
    return out


# -- paired difference ----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [MYOPIC, OTHER, IGNORING])
def test_a_policy_against_itself_differs_by_exactly_zero(policy: Policy) -> None:
    result = paired_difference(STANDARD, policy.actions, policy.action_array())
    assert result.mean_diff == 0.0 and result.ci95 == 0.0
    assert result.mean_a == result.mean_b == verify(policy).mean
    assert result.better is None and result.episodes == 1000


def test_against_myopic_is_the_difference_of_the_suite_means() -> None:
    result = paired_difference(STANDARD, OTHER.actions, MYOPIC_ACTIONS)
    assert result.mean_a == verify(OTHER).mean
    assert result.mean_b == reference(STANDARD).baselines["myopic"]
    assert result.mean_diff == pytest.approx(result.mean_a - result.mean_b, abs=1e-9)
    assert result.mean_diff != 0.0
    assert 0.0 < result.ci95 < verify(OTHER).ci95  # pairing removes the episodes' common spread


def test_paired_interval_matches_an_episode_by_episode_computation() -> None:
    n = 60
    diffs = [(a - b) / 10 for a, b in zip(gym_returns(OTHER, n), gym_returns(MYOPIC, n), strict=True)]
    result = paired_difference(STANDARD, OTHER.actions, MYOPIC.actions, episodes=n)
    assert result.episodes == n
    assert result.mean_diff == pytest.approx(statistics.fmean(diffs), abs=1e-12)
    assert result.ci95 == pytest.approx(Z95 * statistics.stdev(diffs) / math.sqrt(n), rel=1e-12)
    assert list(suite_returns_tenths(STANDARD, OTHER.actions, n)) == gym_returns(OTHER, n)


def test_the_interval_names_the_better_table() -> None:
    result = paired_difference(STANDARD, IGNORING.actions, MYOPIC_ACTIONS)
    assert result.interval.high < 0 and result.better == "b"
    swapped = paired_difference(STANDARD, MYOPIC_ACTIONS, IGNORING.actions)
    assert swapped.mean_diff == -result.mean_diff and swapped.ci95 == result.ci95
    assert swapped.interval.low > 0 and swapped.better == "a"
    assert swapped.interval == Interval(swapped.mean_diff, swapped.ci95)


def test_an_interval_that_contains_zero_names_neither_table() -> None:
    same = paired_from_returns(np.array([10, -10, 30], dtype=np.int64), np.array([0, 0, 30], dtype=np.int64))
    assert same.mean_diff == 0.0 and same.interval.low < 0 < same.interval.high
    assert same.better is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="actions"):
        paired_difference(STANDARD, MYOPIC_ACTIONS[:-1], MYOPIC_ACTIONS)
    with pytest.raises(ValueError, match="actions"):
        paired_difference(STANDARD, (5,) * dyn.N_OBS, MYOPIC_ACTIONS)
    with pytest.raises(ValueError, match="returns"):
        paired_from_returns(np.zeros(3, dtype=np.int64), np.zeros(4, dtype=np.int64))


def test_paired_evaluation_pairs_only_policies_of_one_configuration() -> None:
    burst = Policy(PRESETS["short-burst"], MYOPIC_ACTIONS)
    evaluation = paired_evaluation([OTHER, MYOPIC, burst])
    assert evaluation.episodes == 1000
    assert evaluation.means == [verify(OTHER).mean, verify(MYOPIC).mean, verify(burst).mean]
    assert [(p.first, p.second) for p in evaluation.pairs] == [(0, 1), (0, 2), (1, 2)]
    assert evaluation.pairs[0].result == paired_difference(STANDARD, OTHER.actions, MYOPIC_ACTIONS)
    assert evaluation.pairs[1].result is None and evaluation.pairs[2].result is None


# -- differing observations -----------------------------------------------------------------------


def test_differing_observations_are_exactly_the_changed_ones_and_symmetric() -> None:
    assert differing_observations(OTHER, MYOPIC) == FREE[5:40:3]
    assert differing_observations(MYOPIC, OTHER) == differing_observations(OTHER, MYOPIC)
    everything = differing_observations(IGNORING, Policy(STANDARD, (1,) * dyn.N_OBS))
    assert everything == FREE and not set(everything) & TERMINAL_OBSERVATIONS


@pytest.mark.parametrize("policy", [MYOPIC, OTHER, IGNORING])
def test_equal_policies_differ_nowhere(policy: Policy) -> None:
    assert differing_observations(policy, Policy(policy.config, policy.actions)) == []
    assert differing_among([policy, policy, policy]) == []


def test_differing_among_several_is_where_any_one_differs() -> None:
    third = changed(MYOPIC_ACTIONS, FREE[:2])
    assert differing_among([MYOPIC, OTHER, third]) == sorted({*FREE[5:40:3], *FREE[:2]})
    assert differing_among([MYOPIC]) == differing_among([]) == []


# -- re-verify ------------------------------------------------------------------------------------


def forged(entry: Entry, key: Publisher, **verification: object) -> Entry:
    """The entry with some verification fields replaced, sealed by ``key``."""
    body = {**entry.body, "verification": {**entry.body["verification"], **verification},
            "publisher": key.public_hex}
    return seal(body, key)


def test_reverify_reproduces_the_real_digest_and_rejects_a_forged_one(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    entry = save_policy(ctx, OTHER, None, {"kind": "added"}).entry
    ok, report = reverify(OTHER, entry)
    assert ok and report.replay_digest == entry.verification.replay_digest
    assert report.mean == entry.verification.mean and report.episodes == 1000

    key = Publisher.generate()
    fake = forged(entry, key, replay_digest="0" * 64)
    ok, report = reverify(OTHER, fake)
    assert not ok and report.replay_digest == entry.verification.replay_digest
    assert not reverify(OTHER, forged(entry, key, episodes=999, suite=suite_id(999)))[0]
    assert not reverify(OTHER, forged(entry, key, suite="eval-v0/n=1000"))[0]
    assert not reverify(MYOPIC, entry)[0]  # the entry is about another policy
