"""Save and chain: a finished (or stopped) policy is stored, verified by replay and recorded.

One function serves the command line and the desktop app alike: :func:`publish_run` for a
training run (it decides which agents' policies are chained), :func:`save_policy` for one policy.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Literal

from policyledger_core.learn.single import TrainingResult
from policyledger_core.ledger.chain import MAX_LEDGER_BYTES, Ledger, LedgerError
from policyledger_core.ledger.entry import Entry, EntryError, parse_line
from policyledger_core.ledger.layout import scan
from policyledger_core.policy import AnyPolicy, TaskPolicy
from policyledger_core.safeio import read_regular
from policyledger_core.verify.figures import verification_fields
from policyledger_core.verify.suite import DEFAULT_EPISODES, VerificationReport
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.context import Context

Chain = Literal["best", "all"]
"""Which policies of a training run are chained: the best agent's, or every agent's."""
CHAINS: tuple[Chain, ...] = ("best", "all")


@dataclass(frozen=True, eq=False)
class SavedPolicy:
    """The outcome of saving one policy."""

    entry: Entry
    policy: AnyPolicy
    created: bool
    """False when the policy was already in the ledger (its first entry is returned)."""
    report: VerificationReport | None
    """The fresh replay, when one was run (not for a policy already recorded)."""
    healed: bool = False
    """True when the stored file was missing or damaged and now holds the policy's bytes."""


def training_fields(result: TrainingResult, agent: int) -> dict[str, Any]:
    """What an entry records of the training that produced a policy."""
    return {"algorithm": result.algorithm, "hyperparameters": result.hyper.to_dict(),
            "episodes": result.episodes, "seed": result.hyper.seed,
            "training_reward": float(result.training_reward[agent]), "agents": result.agents}


def save_policy(ctx: Context, policy: AnyPolicy, training: dict[str, Any] | None,
                origin: dict[str, Any], episodes: int = DEFAULT_EPISODES,
                keep_file: bool = False) -> SavedPolicy:
    """Store ``policy``, verify it by replay and append a signed entry (unless already recorded).

    When the append fails, the policy file is removed again (the workspace is as it was)
    unless ``keep_file``: a freshly trained policy is kept so that nothing learned is lost.
    """
    existing = ctx.ledger.find_policy(policy.hash) or recorded_in_chain(ctx.ledger, policy.hash)
    if existing is not None:
        # The entry vouches for these bytes (their hash is the file's name): a missing or
        # damaged file is healed, and an audit's finding about it no longer holds.
        healed = ctx.store.heal(policy)
        _forget_problem_about(ctx.ledger, existing)
        return SavedPolicy(existing, policy, False, None, healed)
    report = verify_policy(policy, episodes)
    had_file = os.path.lexists(ctx.store.path_of(policy.hash))  # damaged or not, never removed
    ctx.store.put(policy)
    task = isinstance(policy, TaskPolicy)
    config = policy.config if isinstance(policy, TaskPolicy) else policy.config.to_dict()
    fields = {"policy_hash": policy.hash, "env_id": policy.env_id, "config": config,
              "verification": verification_fields(report, task), "training": training, "origin": origin}
    try:
        entry, created = ctx.ledger.append_unless_present(fields, ctx.publisher)
    except BaseException:
        if not keep_file and not had_file and not _recorded(ctx, policy.hash):
            with contextlib.suppress(OSError):
                ctx.store.path_of(policy.hash).unlink()
        raise
    if created:  # its figures are the replay just run here
        ctx.reproductions.record([entry.hash])
    return SavedPolicy(entry, policy, created, report)


def recorded_in_chain(ledger: Ledger, policy_hash: str) -> Entry | None:
    """The first entry recording ``policy_hash`` whose hash chain is intact, also past a problem.

    A problem found by an audit (a damaged policy file, a bad signature) makes the
    ledger read-only from its entry on, but the entries after it are still bound
    by the chain and the checkpoint: they may vouch for a policy's bytes.
    """
    if ledger.problem is None:
        return None  # find_policy saw every entry
    try:
        data = read_regular(ledger.path, MAX_LEDGER_BYTES, ledger.path.name)
    except OSError:
        return None
    entries = scan(data).entries  # up to the first entry whose hash or link is bad
    seen = ledger.witness.hashes()
    agree = next((i for i in range(min(len(seen), len(entries))) if seen[i] != entries[i].hash),
                 len(entries))
    index = next((i for i in range(agree) if entries[i].policy_hash == policy_hash), None)
    if index is None:
        return None
    try:
        return parse_line(entries[index].line[1:] if index else entries[index].line)
    except EntryError:
        return None


def _forget_problem_about(ledger: Ledger, entry: Entry) -> None:
    """Forget the audit's remembered problem if it was about this entry's (now healed) policy file."""
    note = ledger.witness.recorded_problem()
    if note is None:
        return
    index, reason, entry_hash = note
    about_file = reason.startswith(f"policy {entry.policy_hash[:12]}: ")  # the store's messages
    if (index, entry_hash) == (entry.index, entry.hash) and about_file:
        ledger.forget_audit_problem()  # the next audit checks everything again


def _recorded(ctx: Context, policy_hash: str) -> bool:
    """Whether an entry for the policy reached the file (an append can fail after its line is whole)."""
    try:
        ctx.ledger.reload()
        return ctx.ledger.find_policy(policy_hash) is not None
    except Exception:
        return True  # unsure: keeping an unreferenced file is harmless, losing a referenced one is not


@dataclass(frozen=True, eq=False)
class Published:
    """What :func:`publish_run` saved."""

    saved: list[SavedPolicy]
    """One per chained agent, in agent order: the best agent's only, or every agent's."""
    best: SavedPolicy
    """The best agent's (highest training reward): what a run reports."""

    @property
    def entries_created(self) -> int:
        return sum(s.created for s in self.saved)


def publish_run(ctx: Context, result: TrainingResult, chain: Chain = "best") -> Published:
    """Save, verify and chain the policies of a finished or stopped run.

    ``chain="best"`` chains the best agent's policy, ``"all"`` every agent's (identical
    policies get one entry); for a single agent the two are the same.
    """
    if chain not in CHAINS:
        raise ValueError(f"chain: must be one of {', '.join(CHAINS)}, got {chain!r}")
    if chain == "all":
        saved = [_save_agent(ctx, result, k) for k in range(result.agents)]
        return Published(saved, saved[result.best_agent])
    best = _save_agent(ctx, result, result.best_agent)
    return Published([best], best)


def _save_agent(ctx: Context, result: TrainingResult, agent: int) -> SavedPolicy:
    """Save the greedy policy of one agent of a finished or stopped run."""
    policy = result.policy(agent)
    try:
        return save_policy(ctx, policy, training_fields(result, agent), {"kind": "trained"}, keep_file=True)
    except LedgerError as exc:
        raise LedgerError(f"{exc}. The policy is kept as {ctx.store.path_of(policy.hash)}; "
                          "after a repair, chain it with 'Add policy file' (policyledger-cli add)") from None
