"""Verification of toy-text task policies: replayed in Gymnasium's own environment, valued exactly.

The suite is the cyber-defense task's: episode i is reset with seed ``2**63 + i``, so no training
seed is an evaluation seed. The report has the same figures (mean, std, ci95 and range of the
replayed returns, their digest), and the exact figures that need no sampling: the table's
expected return within the horizon (its ``expected``, recorded as ``exact_value``), the optimum
of the best time-dependent policy, and the fraction of it the table reaches
(:func:`~policyledger_core.tasks.base.fraction_of_optimum`: a ratio of costs where every return
is negative). A replayed mean can be lucky; the exact value cannot.
"""

from __future__ import annotations

import hashlib
import math

from policyledger_core.policy import AnyPolicy, Policy, TaskPolicy
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.verify.suite import (
    DEFAULT_EPISODES,
    MAX_EPISODES,
    Interval,
    VerificationReport,
    suite_id,
    suite_seeds,
    verify,
)

TASK_REPLAY_DOMAIN = b"policyledger/task-replay-v1\n"


def task_replay_digest(suite: str, env_id: str, returns_bytes: bytes) -> str:
    """SHA-256 naming a task's replay: the suite, the task and the returns (float64, little-endian)."""
    return hashlib.sha256(TASK_REPLAY_DOMAIN + f"{suite}\n{env_id}\n".encode() + returns_bytes).hexdigest()


def verify_task(policy: TaskPolicy, episodes: int = DEFAULT_EPISODES) -> VerificationReport:
    """Replay the table in Gymnasium on the evaluation suite and value it exactly."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 1 <= episodes <= MAX_EPISODES:
        raise ValueError(f"episodes: expected 1..{MAX_EPISODES}, got {episodes!r}")
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium: loaded when a task is replayed

    task = toy_text_task(policy.env_id)
    result = task.replay(policy.actions, suite_seeds(episodes))
    returns = result.returns
    n = len(returns)
    mean = math.fsum(returns) / n  # exact for these tasks' integral returns, on any machine
    std = math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / (n - 1)) if n > 1 else 0.0
    interval = Interval.of(mean, std, n)
    suite = suite_id(episodes)
    exact, optimum = task.expected_return(policy.actions), task.optimum()
    return VerificationReport(
        mean=mean, std=std, ci95=interval.half_width, min=float(returns.min()), max=float(returns.max()),
        episodes=n, suite=suite,
        replay_digest=task_replay_digest(suite, policy.env_id, returns.astype("<f8").tobytes()),
        expected=exact, optimum=optimum, optimum_expected=optimum,
        fraction_of_optimum=fraction_of_optimum(exact, optimum),
        baselines={name: b.value for name, b in task.baselines().items()},
    )


def verify_policy(policy: AnyPolicy, episodes: int = DEFAULT_EPISODES) -> VerificationReport:
    """Verify a policy of any task by replay (the cyber-defense simulator, or Gymnasium)."""
    if isinstance(policy, Policy):
        return verify(policy, episodes)
    return verify_task(policy, episodes)
