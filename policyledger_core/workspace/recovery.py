"""Repair that keeps every valid entry: continue from the last good one, re-chain the rest that stand alone.

A damaged ledger is cut at its first problem (the damaged file is kept as
``ledger.json.damaged-<time>``). The complete entries found after that point
in the damaged file are then checked one by one, each on its own: its fields
and its own hash, its signature, its policy file (present and matching), and
its figures reproduced by replay. Each that passes is appended again as a new
entry, signed by the repairing user, whose origin records where it came from
(the backup file, its index there, its original hash, publisher and
signature). The others are left out, each with its reason.

:func:`plan_repair` works out all of this without writing anything, so a
person can read what will be kept before confirming; :func:`apply_repair`
does it, refusing when the file changed since the plan.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policyledger_core.canonical import sha256_hex
from policyledger_core.ledger.chain import MAX_LEDGER_BYTES, LedgerError
from policyledger_core.ledger.entry import LINE_HEAD, Entry, EntryError, parse_line
from policyledger_core.ledger.layout import BOM, Problem
from policyledger_core.safeio import read_regular
from policyledger_core.verify.figures import consistency_problem, replay_problem
from policyledger_core.verify.suite import verify
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.store import StoreError


@dataclass(frozen=True)
class Recovered:
    """A later entry that stands on its own and will be re-chained."""

    index: int
    """Its index in the damaged file."""
    entry: Entry


@dataclass(frozen=True)
class LeftOut:
    """A later entry that will not be re-chained, and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class RepairPlan:
    """What a repair will do: keep, re-chain, leave out."""

    problem: Problem | None
    kept: int
    """Entries before the first problem, kept byte for byte."""
    recovered: tuple[Recovered, ...]
    left_out: tuple[LeftOut, ...]
    digest: str
    """SHA-256 of the file the plan was made from (a repair of a changed file is refused)."""

    def lines(self) -> list[str]:
        """The plan for a person, one line each."""
        out = [f"keeps entries 0 to {self.kept - 1} as they are" if self.kept else "keeps no entry as it is"]
        if self.recovered:
            shown = ", ".join(str(r.index) for r in self.recovered[:12])
            more = f" and {len(self.recovered) - 12} more" if len(self.recovered) > 12 else ""
            out.append(f"re-chains {len(self.recovered)} later valid entries as recovered: {shown}{more}")
        for left in self.left_out[:12]:
            out.append(f"leaves out entry {left.index}: {left.reason}")
        if len(self.left_out) > 12:
            out.append(f"leaves out {len(self.left_out) - 12} more entries (see the JSON report)")
        return out


@dataclass(frozen=True)
class RepairProgress:
    """Later entries checked so far."""

    done: int
    total: int


@dataclass(frozen=True)
class RepairResult:
    """A finished repair: the backup, the plan it followed, the entries it appended."""

    backup: Path
    plan: RepairPlan
    appended: tuple[Entry, ...]


def _read(ctx: Context) -> bytes:
    try:
        return read_regular(ctx.ledger.path, MAX_LEDGER_BYTES, ctx.ledger.path.name)
    except FileNotFoundError:
        return b""


def _entry_lines(data: bytes) -> list[bytes]:
    """Every line of the file shaped like an entry, in order (separator comma, CR and BOM removed)."""
    out = []
    for raw in data.removeprefix(BOM).split(b"\n"):
        line = raw.removesuffix(b"\r").removeprefix(b",")
        if line.startswith(LINE_HEAD):
            out.append(line)
    return out


def plan_repair(ctx: Context) -> Generator[RepairProgress, None, RepairPlan]:
    """Check every entry after the first problem on its own; writes nothing."""
    ledger = ctx.ledger
    ledger.reload()
    if ledger.problem is None and not ledger.torn_tail:
        raise LedgerError("nothing to repair: the ledger is intact")
    data = _read(ctx)
    kept = len(ledger)
    later = _entry_lines(data)[kept:]
    recorded = {scanned.policy_hash: i for i, scanned in enumerate(ledger.scanned())}
    recovered: list[Recovered] = []
    left_out: list[LeftOut] = []
    for n, line in enumerate(later):
        yield RepairProgress(n, len(later))
        index = kept + n
        try:
            entry = parse_line(line)
        except EntryError as exc:
            left_out.append(LeftOut(index, str(exc).removeprefix("entry: ")))
            continue
        reason = _stands_alone(ctx, entry, recorded)
        if reason is None:
            recorded[entry.policy_hash] = index
            recovered.append(Recovered(index, entry))
        else:
            left_out.append(LeftOut(index, reason))
    yield RepairProgress(len(later), len(later))
    return RepairPlan(ledger.problem, kept, tuple(recovered), tuple(left_out), sha256_hex(data))


def _stands_alone(ctx: Context, entry: Entry, recorded: dict[str, int]) -> str | None:
    """Why ``entry`` cannot be re-chained on its own, or None."""
    if not entry.signature_valid():
        return "signature does not verify with the entry's key"
    if entry.policy_hash in recorded:
        return f"its policy is already recorded (entry {recorded[entry.policy_hash]})"
    try:
        policy = ctx.store.get(entry.policy_hash)
    except StoreError as exc:
        return str(exc)
    if policy.config != entry.config:
        return "the policy file's configuration differs from the entry's"
    claimed = entry.verification
    return (consistency_problem(claimed, entry.config)
            or replay_problem(claimed, verify(policy, claimed.episodes)))


def _recovered_fields(item: Recovered, backup: Path) -> dict[str, Any]:
    body = item.entry.body
    origin = {"kind": "recovered", "backup": backup.name, "index": item.index,
              "entry_hash": item.entry.hash, "publisher": item.entry.publisher,
              "signature": item.entry.signature}
    return {"policy_hash": body["policy_hash"], "config": body["config"],
            "verification": body["verification"], "training": body["training"], "origin": origin}


def apply_repair(ctx: Context, plan: RepairPlan) -> RepairResult:
    """Carry out ``plan``: back up and cut the file, then re-chain the recovered entries."""
    backup = ctx.ledger.repair(expect_digest=plan.digest)
    appended = []
    for item in plan.recovered:
        entry = ctx.ledger.append(_recovered_fields(item, backup), ctx.publisher)
        ctx.reproductions.record([entry.hash])  # its figures were just reproduced by the plan's replay
        appended.append(entry)
    return RepairResult(backup, plan, tuple(appended))


def repair(ctx: Context) -> Generator[RepairProgress, None, RepairResult]:
    """Plan and carry out a repair in one go (the command line's ``repair``)."""
    plan = yield from plan_repair(ctx)
    return apply_repair(ctx, plan)
