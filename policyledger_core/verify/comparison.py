"""Comparing policies and re-checking a recorded result, by replay on the evaluation suite.

Two action tables of one configuration play exactly the same evaluation
episodes (seeds ``2**63 + i``), so their per-episode returns can be paired:
the mean of the differences equals the difference of the means, and its
confidence interval is much narrower than the two intervals taken apart.
Returns stay exact integer tenths until the final division.

The same holds for the toy-text tasks' tables (:class:`~policyledger_core.policy.TaskPolicy`):
their episodes are Gymnasium's, reset with the same suite seeds (as
:func:`~policyledger_core.verify.tasks.verify_task` replays them), and their returns are whole
numbers, so exact tenths too. A table acts on the observations an episode can be in when an
action is chosen (:func:`acting_observations`); decisions are compared there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from policyledger_core.ledger.entry import Entry
from policyledger_core.policy import TERMINAL_OBSERVATIONS, AnyPolicy, Policy, TaskPolicy, configuration
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig
from policyledger_core.sim.replay import observation_decider, replay
from policyledger_core.verify.suite import (
    DEFAULT_EPISODES,
    Interval,
    VerificationReport,
    mean_of_tenths,
    suite_seeds,
    suite_uniforms,
)
from policyledger_core.verify.tasks import verify_policy

IntArray = npt.NDArray[np.int64]
Actions = Sequence[int] | IntArray
"""An observation-indexed action table (108 actions)."""

NON_TERMINAL_OBSERVATIONS = tuple(obs for obs in range(dyn.N_OBS) if obs not in TERMINAL_OBSERVATIONS)
"""The observations a policy acts on (health CRITICAL ends the episode)."""


@functools.cache
def task_acting_observations(env_id: str) -> tuple[int, ...]:
    """The observations of a toy-text task an episode can be in when an action is chosen, ascending:
    those of the initial distribution and those reached from them, by any actions, through outcomes
    that do not end the episode (so not FrozenLake's holes and goal, CliffWalking's cliff and goal,
    nor Taxi's passenger already at the destination). What a table says anywhere else is never used."""
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium: loaded for a task only

    model = toy_text_task(env_id).model()
    source = model.pair_of_outcome // model.n_actions
    go_on = (model.probs > 0) & ~model.terminated
    seen = model.initial > 0
    frontier = seen.copy()
    while frontier.any():
        step = np.zeros(model.n_states, dtype=np.bool_)
        step[model.next_states[go_on & frontier[source]]] = True
        frontier = step & ~seen
        seen |= frontier
    return tuple(int(obs) for obs in np.flatnonzero(seen))


def acting_observations(policy: AnyPolicy) -> tuple[int, ...]:
    """The observations a policy's table acts on (see :data:`NON_TERMINAL_OBSERVATIONS` and
    :func:`task_acting_observations`)."""
    if isinstance(policy, Policy):
        return NON_TERMINAL_OBSERVATIONS
    return task_acting_observations(policy.env_id)


def _table(actions: Actions) -> IntArray:
    table = np.asarray(actions, dtype=np.int64)
    if table.shape != (dyn.N_OBS,) or table.min() < 0 or table.max() >= dyn.N_ACTIONS:
        raise ValueError(f"actions: expected {dyn.N_OBS} actions 0..{dyn.N_ACTIONS - 1}")
    return table


def suite_returns_tenths(config: EnvConfig, actions: Actions, episodes: int = DEFAULT_EPISODES) -> IntArray:
    """Per-episode returns (integer tenths) of an action table on the evaluation suite."""
    decide = observation_decider(_table(actions))
    return replay(config, suite_uniforms(config, episodes), decide).returns_tenths


@dataclass(frozen=True)
class PairedResult:
    """Two action tables on the same episodes: each mean and the mean per-episode difference (a - b)."""

    mean_a: float
    mean_b: float
    mean_diff: float
    ci95: float
    """Half-width of the 95% confidence interval of ``mean_diff`` (normal approximation)."""
    episodes: int

    @property
    def interval(self) -> Interval:
        """The 95% confidence interval of ``mean_diff``."""
        return Interval(self.mean_diff, self.ci95)

    @property
    def better(self) -> Literal["a", "b"] | None:
        """Which table the interval shows to be better; None when it contains 0."""
        interval = self.interval
        if interval.low > 0:
            return "a"
        if interval.high < 0:
            return "b"
        return None


def paired_from_returns(tenths_a: IntArray, tenths_b: IntArray) -> PairedResult:
    """Pair two equally long per-episode return arrays (integer tenths) of the same episodes."""
    if tenths_a.shape != tenths_b.shape or tenths_a.ndim != 1 or len(tenths_a) == 0:
        raise ValueError("returns: expected two non-empty arrays of the same episodes")
    n = len(tenths_a)
    diff = tenths_a.astype(np.int64) - tenths_b.astype(np.int64)
    std = float((diff / 10.0).std(ddof=1)) if n > 1 else 0.0
    interval = Interval.of(mean_of_tenths(diff), std, n)
    return PairedResult(mean_a=mean_of_tenths(tenths_a), mean_b=mean_of_tenths(tenths_b),
                        mean_diff=interval.center, ci95=interval.half_width, episodes=n)


def paired_difference(config: EnvConfig, actions_a: Actions, actions_b: Actions,
                      episodes: int = DEFAULT_EPISODES) -> PairedResult:
    """Replay two action tables on the same ``episodes`` evaluation episodes of ``config`` and pair them."""
    return paired_from_returns(suite_returns_tenths(config, actions_a, episodes),
                               suite_returns_tenths(config, actions_b, episodes))


@dataclass(frozen=True)
class Pair:
    """The paired result of policies ``first`` and ``second`` (indexes into the compared list)."""

    first: int
    second: int
    result: PairedResult | None
    """None when the two have different configurations: they play different episodes."""


@dataclass(frozen=True)
class PairedEvaluation:
    """Every policy's suite mean and every pair of policies, in order (0, 1), (0, 2), ..., (1, 2), ..."""

    episodes: int
    means: list[float]
    pairs: list[Pair]


def task_returns_tenths(policy: TaskPolicy, episodes: int = DEFAULT_EPISODES) -> IntArray:
    """Per-episode returns (integer tenths) of a toy-text table on the evaluation suite, played in
    Gymnasium's environment (each episode reset with its suite seed)."""
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium: loaded for a task only

    returns = toy_text_task(policy.env_id).replay(policy.actions, suite_seeds(episodes)).returns
    tenths = np.rint(returns * 10.0)
    if not np.array_equal(tenths / 10.0, returns):  # the known tasks' rewards are whole numbers
        raise ValueError(f"{policy.env_id}: returns that are not whole tenths cannot be paired exactly")
    return tenths.astype(np.int64)


def _suite_tenths(policy: AnyPolicy, episodes: int) -> IntArray:
    if isinstance(policy, Policy):
        return suite_returns_tenths(policy.config, policy.actions, episodes)
    return task_returns_tenths(policy, episodes)


def paired_evaluation(policies: Sequence[AnyPolicy], episodes: int = DEFAULT_EPISODES) -> PairedEvaluation:
    """Replay each policy once on its configuration's suite; pair those sharing a configuration
    (the cyber-defense task's, or the same toy-text task)."""
    tenths = [_suite_tenths(p, episodes) for p in policies]
    means = [mean_of_tenths(t) for t in tenths]
    configs = [configuration(p) for p in policies]
    pairs = [Pair(i, j, paired_from_returns(tenths[i], tenths[j]) if configs[i] == configs[j] else None)
             for i in range(len(policies)) for j in range(i + 1, len(policies))]
    return PairedEvaluation(episodes, means, pairs)


def _same_table_shape(a: AnyPolicy, b: AnyPolicy) -> None:
    if isinstance(a, Policy) and isinstance(b, Policy):
        return
    if isinstance(a, TaskPolicy) and isinstance(b, TaskPolicy) and a.env_id == b.env_id:
        return
    raise ValueError("policies of different tasks have different observations: their decisions "
                     "cannot be compared one by one")


def differing_observations(a: AnyPolicy, b: AnyPolicy) -> list[int]:
    """Observations the tables act on (:func:`acting_observations`) where ``a`` and ``b`` take
    different actions, ascending; a ValueError for policies of different tasks."""
    _same_table_shape(a, b)
    return [obs for obs in acting_observations(a) if a.actions[obs] != b.actions[obs]]


def differing_among(policies: Sequence[AnyPolicy]) -> list[int]:
    """Observations the tables act on where the policies do not all take the same action, ascending."""
    if not policies:
        return []
    first = policies[0]
    found: set[int] = set()
    for other in policies[1:]:
        found.update(differing_observations(first, other))
    return sorted(found)


def differing_elsewhere(policies: Sequence[AnyPolicy]) -> list[int]:
    """Observations no episode acts on where the tables still differ, ascending (they make the hashes
    differ, never the behaviour; always empty for the cyber-defense task, whose terminal entries are
    fixed)."""
    if not policies:
        return []
    acting = set(acting_observations(policies[0]))
    first = policies[0]
    for other in policies[1:]:
        _same_table_shape(first, other)
    return [obs for obs in range(len(first.actions)) if obs not in acting
            and any(other.actions[obs] != first.actions[obs] for other in policies[1:])]


def reverify(policy: AnyPolicy, entry: Entry) -> tuple[bool, VerificationReport]:
    """Replay ``policy`` on the suite its ledger ``entry`` names; True when the entry's result is reproduced.

    Reproduced means: the entry is about this policy, and the replay gives the
    recorded suite and replay digest (so every per-episode return matches).
    """
    claimed = entry.verification
    report = verify_policy(policy, claimed.episodes)
    reproduced = (entry.policy_hash == policy.hash and report.suite == claimed.suite
                  and report.replay_digest == claimed.replay_digest)
    return reproduced, report
