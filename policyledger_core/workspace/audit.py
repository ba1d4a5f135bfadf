"""Full verification of a ledger: every check, the first bad entry named.

Checks, in one pass per kind: the scan's header, hashes and links and the
checkpoint (done when the ledger was opened); each entry's fields, types and
canonical form; the recorded figures that need no replay (ci95 from std and N,
the fraction from mean and optimum, the optimum from value iteration); each
referenced policy file (present, matches its hash, valid, same configuration
as the entry); each signature (timed separately, it is the slow part);
optionally a replay of every policy, which must reproduce every recorded figure.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.entry import EntryError
from policyledger_core.ledger.layout import Problem
from policyledger_core.policy import AnyPolicy, configuration
from policyledger_core.verify.figures import consistency_problem, replay_problem
from policyledger_core.verify.suite import VerificationReport
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.store import PolicyStore, StoreError

if TYPE_CHECKING:  # the reproductions module builds on this one
    from policyledger_core.workspace.reproduced import Reproductions


@dataclass(frozen=True)
class AuditProgress:
    """Where a running audit is: the check under way and entries done of total."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class AuditReport:
    """What a full verification found."""

    entries: int
    """Entries in the file that were looked at (usable ones, and the first bad one)."""
    problem: Problem | None
    seconds: dict[str, float] = field(default_factory=dict)
    """Time per check: chain (hashes and links), fields, policies, signatures, replay."""
    replayed: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


Audit = Generator[AuditProgress, None, AuditReport]


@dataclass
class _State:
    """What the checks share: each policy is loaded once and replayed once."""

    policies: dict[str, AnyPolicy] = field(default_factory=dict)
    reports: dict[tuple[str, int], VerificationReport] = field(default_factory=dict)
_STEP = 1000  # entries between progress records


def audit(ledger: Ledger, store: PolicyStore, replay: bool = False,
          reproductions: Reproductions | None = None) -> Audit:
    """Run every check; yields progress, returns the report. Marks the ledger on a problem.

    With ``replay``, the entries that pass everything are remembered in ``reproductions``.
    """
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    ledger.forget_audit_problem()  # re-checks everything; what it finds is recorded again
    seconds["chain"] = time.perf_counter() - start
    problems = [ledger.problem] if ledger.problem is not None else []
    count = len(ledger)
    found: Problem | None = None
    state = _State()
    stages = [("fields", _check_fields), ("policies", _check_policies), ("figures", _check_figures),
              ("signatures", _check_signatures)]
    if replay:
        stages.append(("replay", _check_replay))
    for stage, check in stages:
        begin = time.perf_counter()
        limit = min([count, *(p.index for p in problems)])
        for i in range(limit):
            if i % _STEP == 0:
                yield AuditProgress(stage, i, limit)
            reason = check(ledger, store, i, state)
            if reason is not None:
                problems.append(Problem(i, reason))
                break
        seconds[stage] = time.perf_counter() - begin
    if problems:
        found = min(problems, key=lambda p: p.index)
        ledger.mark_problem(found)
    if replay and reproductions is not None:
        good = count if found is None else found.index
        reproductions.record([line.hash for line in ledger.scanned()[:good]])
    yield AuditProgress("done", count, count)
    return AuditReport(count, found, seconds, len(state.reports))


def _check_fields(ledger: Ledger, store: PolicyStore, i: int, state: _State) -> str | None:
    try:
        ledger.entry(i)
    except EntryError as exc:
        return str(exc).removeprefix("entry: ")
    return None


def _check_policies(ledger: Ledger, store: PolicyStore, i: int, state: _State) -> str | None:
    entry = ledger.entry(i)
    policy = state.policies.get(entry.policy_hash)
    if policy is None:
        try:
            policy = store.get(entry.policy_hash)
        except StoreError as exc:
            return str(exc)
        state.policies[entry.policy_hash] = policy
    if configuration(policy) != entry.config:
        return "the policy file's configuration differs from the entry's"
    return None


def _check_signatures(ledger: Ledger, store: PolicyStore, i: int, state: _State) -> str | None:
    return None if ledger.entry(i).signature_valid() else "signature does not verify with the entry's key"


def check_entry(ledger: Ledger, store: PolicyStore, index: int) -> str | None:
    """Every check of one entry, a replay included: the first reason it fails, or None."""
    state = _State()
    for check in (_check_fields, _check_policies, _check_figures, _check_signatures, _check_replay):
        reason = check(ledger, store, index, state)
        if reason is not None:
            return reason
    return None


def _check_figures(ledger: Ledger, store: PolicyStore, i: int, state: _State) -> str | None:
    entry = ledger.entry(i)
    return consistency_problem(entry.verification, entry.config)


def _check_replay(ledger: Ledger, store: PolicyStore, i: int, state: _State) -> str | None:
    entry = ledger.entry(i)
    key = (entry.policy_hash, entry.verification.episodes)
    if key not in state.reports:
        state.reports[key] = verify_policy(state.policies[entry.policy_hash], key[1])
    return replay_problem(entry.verification, state.reports[key])
