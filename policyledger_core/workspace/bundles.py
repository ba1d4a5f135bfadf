"""Bundles: one JSON file carrying a policy, its signed ledger entry, the publisher's key and a
C2SP tlog-proof that the entry is in the publisher's ledger.

Import trusts nothing: size and nesting, schema and types, finite numbers,
the policy hash, the entry hash, the signature, the environment and its
configuration are all checked, and then the policy is replayed; every claimed
figure (mean, std, ci95, optimum, fraction, digest) must come out as claimed.
The proof must show the entry in a checkpoint signed by the publisher, and that
checkpoint must not contradict the one this user saw of that ledger before (a
fork is refused, both checkpoints kept). Only then is anything written. Any
failure raises :class:`BundleError` with a one-line reason, and the workspace is
left byte for byte as it was. Bundles of version 1 (from before proofs) carry no
proof: they are checked as before and said to have none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from policyledger_core.canonical import JsonInputError, canonical_bytes, load_json_strict
from policyledger_core.errors import Rejected
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.entry import Entry, EntryError, from_dict
from policyledger_core.ledger.merkle import ProofError
from policyledger_core.ledger.note import NoteError
from policyledger_core.ledger.peers import ForkError, Observation
from policyledger_core.ledger.signing import PublisherKeyError, key_id
from policyledger_core.policy import AnyPolicy, PolicyError, configuration, policy_from_dict
from policyledger_core.verify.figures import replay_problem
from policyledger_core.verify.suite import DEFAULT_EPISODES, suite_id
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import SavedPolicy, save_policy
from policyledger_core.workspace.store import StoreError
from policyledger_core.workspace.transparency import Inclusion, check_inclusion, proof, remember, seen_before

BUNDLE_FORMAT = "policyledger/bundle"
BUNDLE_VERSION = 2
UNPROVED_VERSION = 1
"""Bundles from before proofs: still accepted, without an inclusion to show."""
MAX_BUNDLE_BYTES = 1 << 20
MAX_BUNDLE_DEPTH = 12
MAX_REPLAY_EPISODES = 10_000


class BundleError(Rejected):
    """A bundle that was not accepted (nothing was written); the message says why."""


def export_bundle(ctx: Context, policy_hash: str) -> bytes:
    """The bundle of a recorded policy: the policy, its first entry, the publisher's key and, when
    this user published that entry, its tlog-proof in the ledger's current signed checkpoint (only
    an entry's publisher can sign for it: others' entries go out as version 1, without a proof)."""
    entry = ctx.ledger.find_policy(policy_hash)
    if entry is None:
        raise BundleError(f"policy {policy_hash[:12]} is not in the ledger")
    try:
        policy = ctx.store.get(policy_hash)
    except StoreError as exc:
        raise BundleError(str(exc)) from None
    doc = {"format": BUNDLE_FORMAT, "version": UNPROVED_VERSION, "policy": policy.to_dict(),
           "entry": entry.to_dict(), "publisher": entry.publisher}
    if unproved_reason(ctx, entry) is None:
        doc.update(version=BUNDLE_VERSION, tlog_proof=proof(ctx, entry.index).text())
    return canonical_bytes(doc) + b"\n"


def unproved_reason(ctx: Context, entry: Entry) -> str | None:
    """Why the bundle of ``entry`` cannot carry an inclusion proof (None when it can)."""
    try:
        own = ctx.own_public_key()
    except (PublisherKeyError, OSError):
        own = None
    if own != entry.publisher:
        return (f"entry {entry.index} was published by key {key_id(entry.publisher)}; "
                "only its publisher signs for it")
    if ctx.ledger.problem is not None:
        return f"the ledger has a problem at entry {ctx.ledger.problem.index}; no checkpoint is signed for it"
    return None


@dataclass(frozen=True, eq=False)
class CheckedBundle:
    """A bundle that passed every check."""

    policy: AnyPolicy
    entry: Entry
    inclusion: Inclusion | None
    """Where the proof shows the entry (None for a bundle from before proofs)."""


@dataclass(frozen=True, eq=False)
class Imported:
    """A bundle taken in: the saved policy, and what its proof showed."""

    saved: SavedPolicy
    inclusion: Inclusion | None
    observation: Observation | None
    """How the proof's checkpoint relates to the one seen before of that ledger."""
    warning: str | None = None
    """What went wrong after the policy was saved (the checkpoint not remembered), if anything."""

    def describe(self) -> str:
        """One line on the proof: where the entry is, and against what was seen before."""
        if self.inclusion is None:
            return ("no inclusion proof (a version 1 bundle: from before proofs, or of an entry "
                    "its exporter did not publish)")
        seen = "" if self.observation is None else f"; {self.observation.describe()}"
        return self.inclusion.describe() + seen + ("" if self.warning is None else f"; {self.warning}")


_FIELDS = {"format", "version", "policy", "entry", "publisher"}


def check_bundle(data: bytes) -> CheckedBundle:
    """Validate a bundle completely, replay included; writes nothing."""
    try:
        doc = load_json_strict(data, max_bytes=MAX_BUNDLE_BYTES, max_depth=MAX_BUNDLE_DEPTH)
    except JsonInputError as exc:
        raise BundleError(f"bundle: {exc}") from None
    if not isinstance(doc, Mapping) or not _FIELDS <= set(doc) <= _FIELDS | {"tlog_proof"}:
        raise BundleError("bundle: expected an object with format, version, policy, entry, publisher "
                          "and tlog_proof")
    version = doc["version"]
    if doc["format"] != BUNDLE_FORMAT or type(version) is not int or version not in (BUNDLE_VERSION,
                                                                                       UNPROVED_VERSION):
        raise BundleError("bundle: unknown format or version")
    if ("tlog_proof" in doc) != (version == BUNDLE_VERSION) or not isinstance(doc.get("tlog_proof", ""), str):
        raise BundleError("bundle: a version 2 bundle carries its tlog_proof as text, version 1 none")
    try:
        policy = policy_from_dict(doc["policy"])
    except PolicyError as exc:
        raise BundleError(f"bundle policy: {exc}") from None
    if canonical_bytes(doc["policy"]) != policy.canonical_bytes():
        raise BundleError("bundle policy: not in canonical form (its hash would change)")
    try:
        entry = from_dict(doc["entry"])
    except EntryError as exc:
        raise BundleError(f"bundle entry: {str(exc).removeprefix('entry: ')}") from None
    _check_claims(policy, entry, doc["publisher"])
    inclusion = None
    if version == BUNDLE_VERSION:  # before the replay: the cheap checks first
        try:
            inclusion = check_inclusion(entry, doc["tlog_proof"])
        except (NoteError, ProofError) as exc:
            raise BundleError(f"bundle: {exc}") from None
    _check_replay(policy, entry)
    return CheckedBundle(policy, entry, inclusion)


def _check_claims(policy: AnyPolicy, entry: Entry, publisher: Any) -> None:
    if entry.policy_hash != policy.hash:
        raise BundleError("bundle: the entry records another policy hash than the policy's")
    if entry.config != configuration(policy):
        raise BundleError("bundle: the entry's configuration differs from the policy's")
    if publisher != entry.publisher:
        raise BundleError("bundle: the publisher key differs from the entry's")
    if not entry.signature_valid():
        raise BundleError("bundle: the signature does not verify with the publisher's key")


def _check_replay(policy: AnyPolicy, entry: Entry) -> None:
    claimed = entry.verification
    episodes = claimed.episodes
    if claimed.suite != suite_id(episodes) or episodes > MAX_REPLAY_EPISODES:
        raise BundleError(f"bundle: unknown evaluation suite {str(claimed.suite)[:40]!r}")
    if episodes < DEFAULT_EPISODES:
        # A tiny suite has a tiny (or zero) confidence interval and would buy a top rank.
        raise BundleError(f"bundle: evaluation suite too small ({episodes} episodes, "
                          f"at least {DEFAULT_EPISODES})")
    mismatch = replay_problem(claimed, verify_policy(policy, episodes))
    if mismatch is not None:
        raise BundleError(f"bundle: {mismatch.replace('recorded', 'claimed', 1)} (figures not reproduced)")


def import_bundle(ctx: Context, data: bytes) -> Imported:
    """Check a bundle, its checkpoint against the one seen before of that ledger, then store its
    policy and append an ``imported`` entry."""
    if ctx.ledger.read_only:
        raise BundleError(f"ledger is read-only until repaired: {ctx.ledger.problem}")
    checked = check_bundle(data)
    inclusion = checked.inclusion
    if inclusion is None:
        return _save(ctx, checked, None)
    try:
        observation = seen_before(ctx, inclusion)
    except ForkError as exc:
        raise BundleError(f"bundle refused: {exc}") from None
    except (Rejected, OSError) as exc:
        raise BundleError(f"bundle refused: cannot check its checkpoint against those seen before "
                          f"({exc})") from None
    imported = _save(ctx, checked, observation)  # the lock is not held through the save
    try:
        remember(ctx, inclusion)
    except ForkError as exc:  # another import came between: the evidence is kept, the user told
        return replace(imported, warning=f"imported, but its checkpoint now conflicts with one seen "
                                         f"meanwhile: {exc}")
    except (Rejected, OSError) as exc:
        return replace(imported, warning=f"imported; its checkpoint could not be remembered "
                                         f"({exc})")
    return imported


def _save(ctx: Context, checked: CheckedBundle, observation: Observation | None) -> Imported:
    entry = checked.entry
    origin = {"kind": "imported", "publisher": entry.publisher, "entry_hash": entry.hash,
              "signature": entry.signature}
    try:
        saved = save_policy(ctx, checked.policy, entry.body["training"], origin, entry.verification.episodes)
    except (LedgerError, OSError) as exc:
        raise BundleError(f"import failed, nothing written: {exc}") from None
    return Imported(saved, checked.inclusion, observation)
