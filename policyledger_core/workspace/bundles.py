"""Bundles: one JSON file carrying a policy, its signed ledger entry and the publisher's key.

Import trusts nothing: size and nesting, schema and types, finite numbers,
the policy hash, the entry hash, the signature, the environment and its
configuration are all checked, and then the policy is replayed; every claimed
figure (mean, std, ci95, optimum, fraction, digest) must come out as claimed.
Only then is anything written. Any failure raises :class:`BundleError` with a
one-line reason, and the workspace is left byte for byte as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policyledger_core.canonical import JsonInputError, canonical_bytes, load_json_strict
from policyledger_core.errors import Rejected
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.entry import Entry, EntryError, from_dict
from policyledger_core.policy import Policy, PolicyError
from policyledger_core.verify.figures import replay_problem
from policyledger_core.verify.suite import DEFAULT_EPISODES, suite_id, verify
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import SavedPolicy, save_policy
from policyledger_core.workspace.store import StoreError

BUNDLE_FORMAT = "policyledger/bundle"
BUNDLE_VERSION = 1
MAX_BUNDLE_BYTES = 1 << 20
MAX_BUNDLE_DEPTH = 12
MAX_REPLAY_EPISODES = 10_000


class BundleError(Rejected):
    """A bundle that was not accepted (nothing was written); the message says why."""


def export_bundle(ctx: Context, policy_hash: str) -> bytes:
    """The bundle of a recorded policy: the policy, its first entry and the publisher's key."""
    entry = ctx.ledger.find_policy(policy_hash)
    if entry is None:
        raise BundleError(f"policy {policy_hash[:12]} is not in the ledger")
    try:
        policy = ctx.store.get(policy_hash)
    except StoreError as exc:
        raise BundleError(str(exc)) from None
    return canonical_bytes({"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
                            "policy": policy.to_dict(), "entry": entry.to_dict(),
                            "publisher": entry.publisher}) + b"\n"


@dataclass(frozen=True, eq=False)
class CheckedBundle:
    """A bundle that passed every check."""

    policy: Policy
    entry: Entry


def check_bundle(data: bytes) -> CheckedBundle:
    """Validate a bundle completely, replay included; writes nothing."""
    try:
        doc = load_json_strict(data, max_bytes=MAX_BUNDLE_BYTES, max_depth=MAX_BUNDLE_DEPTH)
    except JsonInputError as exc:
        raise BundleError(f"bundle: {exc}") from None
    if not isinstance(doc, Mapping) or set(doc) != {"format", "version", "policy", "entry", "publisher"}:
        raise BundleError("bundle: expected an object with format, version, policy, entry and publisher")
    if doc["format"] != BUNDLE_FORMAT or type(doc["version"]) is not int or doc["version"] != BUNDLE_VERSION:
        raise BundleError("bundle: unknown format or version")
    try:
        policy = Policy.from_dict(doc["policy"])
    except PolicyError as exc:
        raise BundleError(f"bundle policy: {exc}") from None
    if canonical_bytes(doc["policy"]) != policy.canonical_bytes():
        raise BundleError("bundle policy: not in canonical form (its hash would change)")
    try:
        entry = from_dict(doc["entry"])
    except EntryError as exc:
        raise BundleError(f"bundle entry: {str(exc).removeprefix('entry: ')}") from None
    _check_claims(policy, entry, doc["publisher"])
    return CheckedBundle(policy, entry)


def _check_claims(policy: Policy, entry: Entry, publisher: Any) -> None:
    if entry.policy_hash != policy.hash:
        raise BundleError("bundle: the entry records another policy hash than the policy's")
    if entry.config != policy.config:
        raise BundleError("bundle: the entry's configuration differs from the policy's")
    if publisher != entry.publisher:
        raise BundleError("bundle: the publisher key differs from the entry's")
    if not entry.signature_valid():
        raise BundleError("bundle: the signature does not verify with the publisher's key")
    claimed = entry.verification
    episodes = claimed.episodes
    if claimed.suite != suite_id(episodes) or episodes > MAX_REPLAY_EPISODES:
        raise BundleError(f"bundle: unknown evaluation suite {str(claimed.suite)[:40]!r}")
    if episodes < DEFAULT_EPISODES:
        # A tiny suite has a tiny (or zero) confidence interval and would buy a top rank.
        raise BundleError(f"bundle: evaluation suite too small ({episodes} episodes, "
                          f"at least {DEFAULT_EPISODES})")
    mismatch = replay_problem(claimed, verify(policy, episodes))
    if mismatch is not None:
        raise BundleError(f"bundle: {mismatch.replace('recorded', 'claimed', 1)} (figures not reproduced)")


def import_bundle(ctx: Context, data: bytes) -> SavedPolicy:
    """Check a bundle, then store its policy and append an ``imported`` entry."""
    if ctx.ledger.read_only:
        raise BundleError(f"ledger is read-only until repaired: {ctx.ledger.problem}")
    checked = check_bundle(data)
    entry = checked.entry
    origin = {"kind": "imported", "publisher": entry.publisher, "entry_hash": entry.hash,
              "signature": entry.signature}
    try:
        return save_policy(ctx, checked.policy, entry.body["training"], origin,
                           entry.verification.episodes)
    except (LedgerError, OSError) as exc:
        raise BundleError(f"import failed, nothing written: {exc}") from None
