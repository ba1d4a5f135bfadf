"""Save and chain: a finished (or stopped) policy is stored, verified by replay and recorded.

One function serves the command line and the desktop app alike.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from policyledger_core.context import Context
from policyledger_core.entry import Entry
from policyledger_core.ledger import LedgerError
from policyledger_core.policy import Policy
from policyledger_core.training import TrainingResult
from policyledger_core.verification import DEFAULT_EPISODES, VerificationReport, verify


@dataclass(frozen=True, eq=False)
class Saved:
    """The outcome of saving one policy."""

    entry: Entry
    policy: Policy
    created: bool
    """False when the policy was already in the ledger (its first entry is returned)."""
    report: VerificationReport | None
    """The fresh replay, when one was run (not for a policy already recorded)."""


def verification_fields(report: VerificationReport) -> dict[str, Any]:
    """What an entry records of a verification report."""
    return {"mean": report.mean, "std": report.std, "ci95": report.ci95,
            "fraction_of_optimum": report.fraction_of_optimum, "optimum": report.optimum,
            "episodes": report.episodes, "suite": report.suite, "replay_digest": report.replay_digest}


def training_fields(result: TrainingResult, agent: int) -> dict[str, Any]:
    """What an entry records of the training that produced a policy."""
    return {"algorithm": result.algorithm, "hyperparameters": result.hyper.to_dict(),
            "episodes": result.episodes, "seed": result.hyper.seed,
            "training_reward": float(result.training_reward[agent]), "agents": result.agents}


def save_policy(ctx: Context, policy: Policy, training: dict[str, Any] | None,
                origin: dict[str, Any], episodes: int = DEFAULT_EPISODES,
                keep_file: bool = False) -> Saved:
    """Store ``policy``, verify it by replay and append a signed entry (unless already recorded).

    When the append fails, the policy file is removed again (the workspace is as it was)
    unless ``keep_file``: a freshly trained policy is kept so that nothing learned is lost.
    """
    existing = ctx.ledger.find_policy(policy.hash)
    if existing is not None:
        ctx.store.put(policy)  # heal a missing file; the entry already vouches for these bytes
        return Saved(existing, policy, False, None)
    report = verify(policy, episodes)
    had_file = ctx.store.contains(policy.hash)
    ctx.store.put(policy)
    fields = {"policy_hash": policy.hash, "config": policy.config.to_dict(),
              "verification": verification_fields(report), "training": training, "origin": origin}
    try:
        entry, created = ctx.ledger.append_unless_present(fields, ctx.publisher)
    except BaseException:
        if not keep_file and not had_file and not _recorded(ctx, policy.hash):
            with contextlib.suppress(OSError):
                ctx.store.path_of(policy.hash).unlink()
        raise
    return Saved(entry, policy, created, report)


def _recorded(ctx: Context, policy_hash: str) -> bool:
    """Whether an entry for the policy reached the file (an append can fail after its line is whole)."""
    try:
        ctx.ledger.reload()
        return ctx.ledger.find_policy(policy_hash) is not None
    except Exception:
        return True  # unsure: keeping an unreferenced file is harmless, losing a referenced one is not


def save_training(ctx: Context, result: TrainingResult, agent: int | None = None) -> Saved:
    """Save the greedy policy of one agent of a finished or stopped run (default: the best)."""
    k = result.best_agent if agent is None else agent
    policy = result.policy(k)
    try:
        return save_policy(ctx, policy, training_fields(result, k), {"kind": "trained"}, keep_file=True)
    except LedgerError as exc:
        raise LedgerError(f"{exc}. The policy is kept as {ctx.store.path_of(policy.hash)}; "
                          "after a repair, chain it with 'Add policy file' (policyledger-cli add)") from None


def save_all_agents(ctx: Context, result: TrainingResult) -> list[Saved]:
    """Save every agent's policy (identical policies get one entry)."""
    return [save_training(ctx, result, k) for k in range(result.agents)]
