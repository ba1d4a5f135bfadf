"""Bundles: hostile and broken bundles are refused with a reason and change nothing; round trips.

Every hostile bundle starts from a real, valid bundle (a trained policy saved
and exported from a source workspace) and breaks exactly one thing. Where a
later check is the one under test, the entry is re-hashed and re-signed
consistently, so that only that check can catch it.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.learn.hyper import DEFAULT_HYPER, hyper_preset
from policyledger_core.learn.single import run_to_end, train
from policyledger_core.ledger import tlog
from policyledger_core.ledger.entry import MAX_LINE_BYTES, Origin, hash_body
from policyledger_core.ledger.signing import Publisher
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import PRESETS, EnvConfig
from policyledger_core.sim.optimum import solve
from policyledger_core.verify.suite import DEFAULT_EPISODES, suite_id, verify
from policyledger_core.workspace import bundles, transparency
from policyledger_core.workspace.bundles import (
    MAX_BUNDLE_BYTES,
    MAX_REPLAY_EPISODES,
    BundleError,
    check_bundle,
    export_bundle,
    import_bundle,
)
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import rank
from policyledger_core.workspace.publish import save_policy, training_fields
from tests.helpers.ledger_builder import prove_alone

EPISODES = DEFAULT_EPISODES  # imports refuse smaller suites; replays are cheap once the suite is cached
NON_TERMINAL = min(set(range(108)) - TERMINAL_OBSERVATIONS)
TERMINAL = min(TERMINAL_OBSERVATIONS)


# -- helpers ----------------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``roots``: relative name -> bytes (None for a folder). Lock files
    are left out: taking a lock (to check a checkpoint, say) records nothing."""
    out: dict[str, bytes | None] = {}
    for n, top in enumerate(roots):
        if not top.exists():
            continue
        for path in sorted(top.rglob("*")):
            if path.name.endswith(".lock"):
                continue
            name = f"{n}:{path.relative_to(top)}"
            out[name] = None if path.is_dir() else path.read_bytes()
    return out


def constructed_policy(seed: int, preset: str = "standard") -> Policy:
    """A deterministic, non-myopic policy (distinct per seed)."""
    actions = list(MYOPIC_ACTIONS)
    for k in range(4):
        i = (seed * 7 + k * 29) % 108
        actions[i] = (actions[i] + 1 + (seed + k) % 4) % 5
    return Policy(PRESETS[preset], tuple(actions))


@dataclass(frozen=True, eq=False)
class Source:
    """The exporting side: a workspace with one trained policy and its bundle."""

    ctx: Context
    policy: Policy
    data: bytes
    publisher: Publisher

    @property
    def doc(self) -> dict[str, Any]:
        """A fresh, mutable copy of the bundle's parsed JSON."""
        loaded: dict[str, Any] = json.loads(self.data)
        return loaded


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    base = tmp_path_factory.mktemp("source")
    ctx = Context.open(base / "workspace", base / "config")
    hyper = hyper_preset(DEFAULT_HYPER).replace(episodes=200, seed=11)
    result = run_to_end(train(PRESETS["standard"], hyper))
    policy = result.policy(0)
    save_policy(ctx, policy, training_fields(result, 0), {"kind": "trained"}, EPISODES)
    save_policy(ctx, constructed_policy(99), None, {"kind": "added"}, EPISODES)  # a tree of two
    data = export_bundle(ctx, policy.hash)
    return Source(ctx, policy, data, ctx.publisher)


@dataclass(frozen=True, eq=False)
class Target:
    """The importing side: another user's workspace that already holds one entry."""

    root: Path
    config: Path

    def open(self) -> Context:
        return Context.open(self.root, self.config)


@pytest.fixture
def target(tmp_path: Path) -> Target:
    t = Target(tmp_path / "target", tmp_path / "target-config")
    ctx = t.open()
    saved = save_policy(ctx, constructed_policy(1), None, {"kind": "added"}, EPISODES)
    assert saved.created and len(ctx.ledger) == 1
    return t


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the replays an import runs (episodes of each)."""
    calls: list[int] = []
    real = bundles.verify_policy

    def counting(policy: Policy, episodes: int = 1000) -> Any:
        calls.append(episodes)
        return real(policy, episodes)

    monkeypatch.setattr(bundles, "verify_policy", counting)
    return calls


def dump(doc: Any) -> bytes:
    return canonical_bytes(doc) + b"\n"


def reseal(doc: dict[str, Any], key: Publisher) -> dict[str, Any]:
    """Re-hash the entry body and sign it with ``key``, which becomes the publisher everywhere."""
    body = doc["entry"]["body"]
    body["publisher"] = key.public_hex
    doc["publisher"] = key.public_hex
    digest = hash_body(canonical_bytes(body))
    doc["entry"]["hash"] = digest
    doc["entry"]["signature"] = key.sign(digest)
    if "tlog_proof" in doc:
        origin = "example.com/log" if doc["tlog_proof"] == "foreign" else None
        doc["tlog_proof"] = prove_alone(doc["entry"], key, origin)
    return doc


def rehash(doc: dict[str, Any]) -> dict[str, Any]:
    """Re-hash the entry body but keep the (now stale) signature."""
    doc["entry"]["hash"] = hash_body(canonical_bytes(doc["entry"]["body"]))
    return doc


def flip_hex(text: str, at: int) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1:]


_FRESH = Publisher.generate()  # an attacker's (or any other) key
_OTHER = Publisher.generate()


# -- the corpus -------------------------------------------------------------------------------------


Make = Callable[[Source], bytes]


def raw(fn: Callable[[bytes], bytes]) -> Make:
    return lambda s: fn(s.data)


def edit(fn: Callable[[dict[str, Any]], Any], seal_with: str | None = None) -> Make:
    """Mutate the parsed bundle; optionally re-seal with the source key or a fresh key."""

    def make(s: Source) -> bytes:
        doc = s.doc
        fn(doc)
        if seal_with == "source":
            reseal(doc, s.publisher)
        elif seal_with == "fresh":
            reseal(doc, _FRESH)
        return dump(doc)

    return make


def _proof_lines(fn: Callable[[list[str]], list[str]]) -> Callable[[dict[str, Any]], None]:
    """Edit the lines of the tlog-proof before its checkpoint (header, index, hashes)."""

    def change(doc: dict[str, Any]) -> None:
        head, _, checkpoint = doc["tlog_proof"].partition("\n\n")
        doc["tlog_proof"] = "\n".join(fn(head.split("\n"))) + "\n\n" + checkpoint

    return change


def _reindex(lines: list[str], by: int) -> list[str]:
    return [lines[0], f"index {int(lines[1][6:]) + by}", *lines[2:]]


def _flip_hash(lines: list[str]) -> list[str]:
    raw = bytearray(base64.b64decode(lines[2]))
    raw[0] ^= 1
    return [*lines[:2], base64.b64encode(bytes(raw)).decode(), *lines[3:]]


def _proof_signed_by(key: Publisher) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        head, _, checkpoint = doc["tlog_proof"].partition("\n\n")
        text = checkpoint[:checkpoint.rindex("\n\n") + 1]
        doc["tlog_proof"] = head + "\n\n" + key.sign_note(text)

    return change


def _proof_of_another_entry(s: Source) -> bytes:
    """The proof of the source ledger's other entry, in the same signed checkpoint."""
    doc = s.doc
    doc["tlog_proof"] = transparency.proof(s.ctx, 1).text()
    return dump(doc)


def _foreign_origin(doc: dict[str, Any]) -> None:
    doc["tlog_proof"] = "foreign"  # reseal() below proves the entry in a tree of another origin


def _origin_of_another_key(s: Source) -> bytes:
    """The entry proved, with the publisher's own signature, in a log whose origin names another key:
    a checkpoint of one signer's log must never pass for another's."""
    doc = s.doc
    name = tlog.origin(s.ctx.ledger, None)
    doc["tlog_proof"] = prove_alone(doc["entry"], s.publisher, f"{name}/{_OTHER.key_id}")
    return dump(doc)


def body(doc: dict[str, Any]) -> dict[str, Any]:
    b: dict[str, Any] = doc["entry"]["body"]
    return b


def _set_action(doc: dict[str, Any], index: int, value: Any) -> None:
    doc["policy"]["actions"][index] = value


def _bump_action(doc: dict[str, Any], index: int) -> None:
    actions = doc["policy"]["actions"]
    actions[index] = (actions[index] + 1) % 5


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _claim_more(doc: dict[str, Any]) -> None:
    v = body(doc)["verification"]
    v["mean"] = v["mean"] + 25.0
    v["fraction_of_optimum"] = min(1.0, v["fraction_of_optimum"] + 0.2)
    v["replay_digest"] = sha256_hex(b"a replay that never happened")


def _episodes(n: int, suite: str | None = None) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        v = body(doc)["verification"]
        v["episodes"] = n
        v["suite"] = suite_id(n) if suite is None else suite

    return change


def _sub_first(pattern: bytes, repl: bytes) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        out, n = re.subn(pattern, repl, data, count=1)
        assert n == 1, pattern
        return out

    return change


def _swap_publisher_keep_signature(s: Source) -> bytes:
    doc = s.doc
    body(doc)["publisher"] = _FRESH.public_hex
    doc["publisher"] = _FRESH.public_hex
    return dump(rehash(doc))


def _signed_by_another_key(s: Source) -> bytes:
    doc = s.doc
    doc["entry"]["signature"] = _FRESH.sign(doc["entry"]["hash"])  # publisher fields still name the source
    return dump(doc)


def _signed_by_another_key_publisher_swapped(s: Source) -> bytes:
    doc = s.doc
    doc["entry"]["signature"] = _FRESH.sign(doc["entry"]["hash"])
    doc["publisher"] = _FRESH.public_hex  # the bundle names the signer, the entry still the source
    return dump(doc)


def _entry_as_line(s: Source) -> bytes:
    doc = s.doc
    entry = s.ctx.ledger.find_policy(s.policy.hash)
    assert entry is not None
    doc["entry"] = entry.line().decode("ascii")
    return dump(doc)


@dataclass(frozen=True)
class Case:
    name: str
    make: Make
    reason: str | tuple[str, ...]
    """A substring the rejection's message must contain (or one of several)."""
    replays: int = 0
    """Replays the import may run before refusing (0: refused before any replay)."""
    bug: str | None = None
    """Why this case fails today (it is then an expected failure)..."""
    raises: type[BaseException] = AssertionError
    """... and the exception it fails with."""

    def param(self) -> Any:
        marks = [] if self.bug is None else [pytest.mark.xfail(strict=True, reason=self.bug,
                                                                raises=self.raises)]
        return pytest.param(self, id=self.name, marks=marks)


CASES = [
    # not a bundle at all
    Case("empty", raw(lambda d: b""), "not valid JSON: Expecting value at line 1 column 1"),
    Case("whitespace-only", raw(lambda d: b" \n\t\n"), "not valid JSON"),
    Case("not-json", raw(lambda d: b"policy=good; reward=9000\n"), "not valid JSON"),
    Case("truncated-half", raw(lambda d: d[: len(d) // 2]), "not valid JSON"),
    Case("truncated-closing-brace", raw(lambda d: d.rstrip(b"\n")[:-1]), "not valid JSON"),
    Case("top-level-array", raw(lambda d: b"[" + d.rstrip(b"\n") + b"]"),
         "expected an object with format, version, policy, entry, publisher"),
    Case("top-level-null", raw(lambda d: b"null"), "expected an object with format"),
    Case("non-utf8-byte", raw(_sub_first(rb'"format":"', b'"format":"\xff')), "not UTF-8 text"),
    Case("utf16", raw(lambda d: d.decode("ascii").encode("utf-16")), "not UTF-8 text"),
    Case("huge", raw(lambda d: b" " * (MAX_BUNDLE_BYTES + 1 - len(d)) + d),
         f"too large: {MAX_BUNDLE_BYTES + 1}"),
    Case("deeply-nested-field", edit(lambda d: d["policy"]["config"].__setitem__("horizon", _nest(20))),
         "nested deeper than 12 levels"),
    Case("deeply-nested-recursion", raw(lambda d: b"[" * 200_000 + b"]" * 200_000),
         "nested deeper than 12 levels"),
    Case("nan-literal", raw(_sub_first(rb'"mean":-?[0-9.eE+-]+', b'"mean":NaN')),
         "mean: non-finite number NaN is not allowed"),
    Case("infinity-literal", raw(_sub_first(rb'"ci95":-?[0-9.eE+-]+', b'"ci95":Infinity')),
         "ci95: non-finite number Infinity is not allowed"),
    Case("minus-infinity-literal", raw(_sub_first(rb'"escalation_prob":[0-9.eE+-]+',
                                                  b'"escalation_prob":-Infinity')),
         "escalation_prob: non-finite number -Infinity is not allowed"),
    Case("duplicate-top-level-key", raw(lambda d: b'{"version":1,' + d[1:]), "duplicate key 'version'"),
    Case("duplicate-nested-key", raw(_sub_first(rb'"mean":', b'"mean":1e3,"mean":')),
         "duplicate key 'mean'"),
    # the bundle's own frame
    Case("unknown-top-level-field", edit(lambda d: d.__setitem__("comment", "trust me")),
         "expected an object with format, version, policy, entry, publisher"),
    Case("missing-publisher", edit(lambda d: d.pop("publisher")),
         "expected an object with format, version, policy, entry, publisher"),
    Case("missing-policy", edit(lambda d: d.pop("policy")), "expected an object with format"),
    Case("wrong-format", edit(lambda d: d.__setitem__("format", "policyledger/ledger")),
         "unknown format or version"),
    Case("version-3", edit(lambda d: d.__setitem__("version", 3)), "unknown format or version"),
    Case("version-1.0", edit(lambda d: d.__setitem__("version", 1.0)), "unknown format or version"),
    Case("version-true", edit(lambda d: d.__setitem__("version", True)), "unknown format or version"),
    Case("version-string", edit(lambda d: d.__setitem__("version", "1")), "unknown format or version"),
    # the policy
    Case("string-action", edit(lambda d: _set_action(d, NON_TERMINAL, "1")),
         f"actions[{NON_TERMINAL}]: expected an action 0..4, got '1'"),
    Case("float-action", edit(lambda d: _set_action(d, NON_TERMINAL, 1.0)),
         f"actions[{NON_TERMINAL}]: expected an action 0..4, got 1.0"),
    Case("bool-action", edit(lambda d: _set_action(d, NON_TERMINAL, True)),
         f"actions[{NON_TERMINAL}]: expected an action 0..4, got True"),
    Case("action-5", edit(lambda d: _set_action(d, NON_TERMINAL, 5)),
         f"actions[{NON_TERMINAL}]: expected an action 0..4, got 5"),
    Case("action-minus-1", edit(lambda d: _set_action(d, 107, -1)),
         "actions[107]: expected an action 0..4, got -1"),
    Case("too-few-actions", edit(lambda d: d["policy"]["actions"].pop()), "actions: expected a list of 108"),
    Case("actions-not-a-list", edit(lambda d: d["policy"].__setitem__("actions", "0" * 108)),
         "actions: expected a list of 108"),
    Case("list-config", edit(lambda d: d["policy"].__setitem__("config", list(d["policy"]["config"]))),
         "bundle policy: config: expected an object"),
    Case("number-env-id", edit(lambda d: d["policy"].__setitem__("env_id", 1)), "env_id: expected a string"),
    Case("unknown-env-id", edit(lambda d: d["policy"].__setitem__("env_id", "PolicyLedger/CyberDefense-v0")),
         "env_id: unknown environment 'PolicyLedger/CyberDefense-v0'"),
    Case("policy-unknown-field", edit(lambda d: d["policy"].__setitem__("q_table", [])),
         "policy: unknown field 'q_table'"),
    Case("policy-version-true", edit(lambda d: d["policy"].__setitem__("version", True)),
         "version: unsupported policy version True"),
    Case("probabilities-not-summing", edit(lambda d: d["policy"]["config"].__setitem__(
        "severity_probs", [0.5, 0.3, 0.3])), "config.severity_probs: probabilities must sum to 1"),
    Case("probability-above-one", edit(lambda d: d["policy"]["config"].__setitem__("escalation_prob", 1.5)),
         "config.escalation_prob: must lie in [0, 1]"),
    Case("policy-not-canonical", edit(lambda d: _bump_action(d, TERMINAL)),
         "bundle policy: not in canonical form"),
    Case("policy-action-changed", edit(lambda d: _bump_action(d, NON_TERMINAL)),
         "the entry records another policy hash than the policy's"),
    # the entry's frame and fields
    Case("entry-as-line-string", _entry_as_line,
         "bundle entry: expected an object with body, hash and signature"),
    Case("entry-hash-uppercase", edit(lambda d: d["entry"].__setitem__("hash", d["entry"]["hash"].upper())),
         "entry.hash: expected 64 lowercase hex characters"),
    Case("signature-not-hex", edit(lambda d: d["entry"].__setitem__("signature", "z" * 128)),
         "entry.signature: expected 128 lowercase hex characters"),
    Case("float-overflowing-to-infinity", raw(_sub_first(rb'"std":-?[0-9.eE+-]+', b'"std":1e400')),
         "number 1e400 is out of range"),
    Case("entry-missing-field", edit(lambda d: body(d).pop("timestamp")), "entry.timestamp: missing field"),
    Case("entry-unknown-field", edit(lambda d: body(d).__setitem__("note", "hi"), "source"),
         "entry.note: unknown field"),
    Case("entry-path-like-policy-hash", edit(lambda d: body(d).__setitem__(
        "policy_hash", "../../etc/passwd".ljust(64, "0")), "source"),
         "policy_hash: expected 64 lowercase hex characters"),
    Case("entry-absolute-path-policy-hash", edit(lambda d: body(d).__setitem__(
        "policy_hash", "/" + "a" * 63), "source"), "policy_hash: expected 64 lowercase hex characters"),
    Case("entry-number-env-id", edit(lambda d: body(d).__setitem__("env_id", 7), "source"),
         "env_id: unknown environment 7"),
    Case("entry-probabilities-not-summing", edit(lambda d: body(d)["config"].__setitem__(
        "type_probs", [0.4, 0.4, 0.4]), "source"), "config.type_probs: probabilities must sum to 1"),
    Case("entry-negative-index", edit(lambda d: body(d).__setitem__("index", -1), "source"),
         "index: expected a whole number from 0 to 2**63 - 1"),
    Case("entry-bad-timestamp", edit(lambda d: body(d).__setitem__("timestamp", "yesterday"), "source"),
         "timestamp: expected YYYY-MM-DDTHH:MM:SSZ"),
    Case("entry-string-episodes", edit(lambda d: body(d)["verification"].__setitem__("episodes", "50"),
                                       "source"),
         "verification.episodes: expected a whole number from 1 to 2**63 - 1"),
    Case("entry-unknown-origin", edit(lambda d: body(d).__setitem__("origin", {"kind": "stolen"}), "source"),
         "origin.kind: expected one of trained, added, imported"),
    Case("entry-unknown-algorithm", edit(lambda d: body(d)["training"].__setitem__("algorithm", "sarsa"),
                                         "source"), "training.algorithm: unknown algorithm"),
    Case("entry-hash-not-matching-body", edit(lambda d: body(d).__setitem__("timestamp",
                                                                             "2001-01-01T00:00:00Z")),
         "bundle entry: hash does not match its content"),
    # claims against each other
    Case("wrong-policy-hash-in-entry", edit(lambda d: body(d).__setitem__(
        "policy_hash", constructed_policy(99).hash), "source"),
         "the entry records another policy hash than the policy's"),
    Case("entry-config-differs", edit(lambda d: body(d).__setitem__(
        "config", PRESETS["short-burst"].to_dict()), "source"), "the entry's configuration differs"),
    Case("publisher-differs-from-entry", edit(lambda d: d.__setitem__("publisher", _OTHER.public_hex)),
         "the publisher key differs from the entry's"),
    Case("publisher-not-hex", edit(lambda d: d.__setitem__("publisher", "../key.pem")),
         "the publisher key differs from the entry's"),
    Case("forged-signature", edit(lambda d: d["entry"].__setitem__("signature", flip_hex(
        d["entry"]["signature"], 17))), "the signature does not verify with the publisher's key"),
    Case("signed-by-another-key", _signed_by_another_key, "the signature does not verify"),
    Case("publisher-swapped-signature-kept", _swap_publisher_keep_signature, "the signature does not verify"),
    Case("signed-by-another-key-bundle-publisher-swapped", _signed_by_another_key_publisher_swapped,
         "the publisher key differs from the entry's"),
    Case("huge-episode-count", edit(_episodes(10**9), "fresh"),
         "unknown evaluation suite 'eval-v1/n=1000000000'"),
    Case("episodes-just-above-limit", edit(_episodes(MAX_REPLAY_EPISODES + 1), "fresh"),
         "unknown evaluation suite"),
    Case("suite-names-other-count", edit(_episodes(EPISODES, suite_id(EPISODES + 1)), "fresh"),
         f"unknown evaluation suite 'eval-v1/n={EPISODES + 1}'"),
    Case("suite-other-version", edit(_episodes(EPISODES, f"eval-v0/n={EPISODES}"), "fresh"),
         f"unknown evaluation suite 'eval-v0/n={EPISODES}'"),
    Case("one-episode-suite", edit(_episodes(1), "fresh"), "evaluation suite too small (1 episodes"),
    Case("suite-just-below-the-standard", edit(_episodes(DEFAULT_EPISODES - 1), "fresh"),
         f"evaluation suite too small ({DEFAULT_EPISODES - 1} episodes, at least {DEFAULT_EPISODES})"),
    # the inclusion proof: the entry must be in a checkpoint its publisher signed
    Case("version-2-without-proof", edit(lambda d: d.pop("tlog_proof")),
         "a version 2 bundle carries its tlog_proof"),
    Case("version-1-with-proof", edit(lambda d: d.__setitem__("version", 1)),
         "a version 2 bundle carries its tlog_proof"),
    Case("proof-not-text", edit(lambda d: d.__setitem__("tlog_proof", 7)), "carries its tlog_proof as text"),
    Case("proof-not-a-proof", edit(lambda d: d.__setitem__("tlog_proof", "reward 9000\n")),
         "tlog-proof: expected"),
    Case("proof-of-another-index", edit(_proof_lines(lambda ls: _reindex(ls, +1))), "it proves entry"),
    Case("proof-flipped-hash", edit(_proof_lines(lambda ls: _flip_hash(ls))), "tlog-proof"),
    Case("proof-hash-dropped", edit(_proof_lines(lambda ls: [ls[0], ls[1], *ls[3:]])), "tlog-proof"),
    Case("proof-signed-by-another-key", edit(_proof_signed_by(_OTHER)),
         "not signed by the entry's publisher"),
    Case("proof-of-another-entry", _proof_of_another_entry, "it proves entry 1, the entry is 0"),
    Case("proof-foreign-origin", edit(_foreign_origin, "source"),
         "is not the origin of a PolicyLedger ledger"),
    Case("proof-origin-of-another-key", _origin_of_another_key,
         "names another key than the entry's publisher"),
    # only the replay can tell
    Case("reward-not-reproducible", edit(_claim_more, "fresh"),
         "claimed mean", replays=1),
    Case("digest-not-reproducible-by-publisher", edit(lambda d: body(d)["verification"].__setitem__(
        "replay_digest", sha256_hex(b"x")), "source"),
         "claimed replay digest", replays=1),
]


# Numbers too large for a float (or for Python's int parser) are refused while parsing,
# before any validation could raise OverflowError or a plain ValueError.
_BIG = "1" + "0" * 400

CASES += [
    Case("overflowing-int-mean", raw(_sub_first(rb'"mean":-?[0-9.eE+-]+', b'"mean":' + _BIG.encode())),
         "integer with 401 digits is too large"),
    Case("overflowing-int-probability", raw(_sub_first(rb'"escalation_prob":[0-9.eE+-]+',
                                                       b'"escalation_prob":' + _BIG.encode())),
         "integer with 401 digits is too large"),
    Case("overflowing-int-training-reward", edit(lambda d: body(d)["training"].__setitem__(
        "training_reward", int(_BIG)), "fresh"), "integer with 401 digits is too large"),
    Case("overflowing-int-learning-rate", edit(lambda d: body(d)["training"]["hyperparameters"].__setitem__(
        "learning_rate", int(_BIG)), "fresh"), "integer with 401 digits is too large"),
    Case("overflowing-float-mean", raw(_sub_first(rb'"mean":-?[0-9.eE+-]+', b'"mean":-1e999')),
         "number -1e999 is out of range"),
    Case("5000-digit-integer", raw(_sub_first(rb'"horizon":[0-9]+', b'"horizon":1' + b"0" * 5000)),
         "integer with 5001 digits is too large"),
    Case("20-digit-integer", raw(_sub_first(rb'"horizon":[0-9]+', b'"horizon":1' + b"0" * 19)),
         "integer with 20 digits is too large"),
    # in range for the parser, but not for the fields
    Case("int-mean-beyond-float-precision", edit(lambda d: body(d)["verification"].__setitem__(
        "mean", 10**18), "fresh"), "verification.mean: expected a finite number of sane size"),
    Case("int-learning-rate-beyond-float-precision", edit(
        lambda d: body(d)["training"]["hyperparameters"].__setitem__("learning_rate", 10**18), "fresh"),
         "learning_rate: out of range"),
    Case("index-of-2-to-the-63", edit(lambda d: body(d).__setitem__("index", 2**63), "source"),
         "index: expected a whole number from 0 to 2**63 - 1"),
]


def test_the_corpus_is_large_and_named_uniquely() -> None:
    assert len([c for c in CASES if c.bug is None]) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_untouched_bundle_and_a_consistent_reseal_are_accepted(source: Source, target: Target) -> None:
    """Controls: the re-signing used by the corpus makes bundles that pass when nothing else is wrong."""
    assert check_bundle(source.data).policy.hash == source.policy.hash
    resealed = dump(reseal(source.doc, _FRESH))
    checked = check_bundle(resealed)
    assert checked.entry.publisher == _FRESH.public_hex
    saved = import_bundle(target.open(), resealed).saved
    assert saved.created
    assert saved.entry.origin.publisher == _FRESH.public_hex


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_hostile_bundle_is_rejected_and_changes_nothing(case: Case, source: Source, target: Target,
                                                        replays: list[int]) -> None:
    data = case.make(source)
    assert data != source.data
    ctx = target.open()
    count = len(ctx.ledger)
    before = snapshot(target.root, target.config)
    with pytest.raises(BundleError) as caught:
        import_bundle(ctx, data)
    message = str(caught.value)
    reasons = (case.reason,) if isinstance(case.reason, str) else case.reason
    assert any(r in message for r in reasons), message
    assert "\n" not in message and len(message) < 300
    assert len(replays) == case.replays, f"replays run before refusing: {replays}"
    assert sum(replays) <= MAX_REPLAY_EPISODES
    assert snapshot(target.root, target.config) == before
    assert len(ctx.ledger) == count
    reopened = target.open()
    assert len(reopened.ledger) == count and not reopened.ledger.read_only


def test_huge_episode_count_is_refused_without_replaying(source: Source, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    def no_replay(policy: Policy, episodes: int = 1000) -> Any:
        raise AssertionError(f"replayed {episodes} episodes")

    monkeypatch.setattr(bundles, "verify_policy", no_replay)
    doc = source.doc
    _episodes(10**9)(doc)
    with pytest.raises(BundleError, match="unknown evaluation suite"):
        check_bundle(dump(reseal(doc, _FRESH)))


def test_a_bundle_of_exactly_the_size_limit_is_accepted(source: Source, target: Target) -> None:
    data = source.data.rstrip(b"\n")
    padded = data + b" " * (MAX_BUNDLE_BYTES - len(data))
    assert len(padded) == MAX_BUNDLE_BYTES
    assert import_bundle(target.open(), padded).saved.created
    with pytest.raises(BundleError, match="too large"):
        check_bundle(padded + b" ")


@pytest.mark.parametrize(("figure", "change"), [("mean", 5.0), ("mean", 50.0), ("std", 1.0), ("ci95", -0.5),
                                             ("optimum", 3.0), ("fraction_of_optimum", 0.1)])
def test_an_inflated_claim_never_enters_the_ledger(source: Source, target: Target, figure: str,
                                                   change: float) -> None:
    """A claimed figure other than the replayed one (digest intact, re-signed) is refused, naming both."""
    doc = source.doc
    claimed = body(doc)["verification"]
    true_value = claimed[figure]
    claimed[figure] = true_value + change
    ctx = target.open()
    before = snapshot(target.root, target.config)
    with pytest.raises(BundleError) as caught:
        import_bundle(ctx, dump(reseal(doc, _FRESH)))
    label = figure.replace("fraction_of_optimum", "fraction of the optimum")
    assert f"claimed {label} " in str(caught.value), str(caught.value)
    assert "replay gives" in str(caught.value)
    assert snapshot(target.root, target.config) == before


def _huge_training_counts(doc: dict[str, Any], value: int) -> None:
    training = body(doc)["training"]
    for name in ("episodes", "seed", "agents"):
        training[name] = value
    training["hyperparameters"]["episodes"] = value


def test_numbers_that_would_bloat_the_entry_line_are_refused(source: Source, target: Target) -> None:
    """4000-digit counts would make the imported entry's line longer than 16 KiB: refused while parsing."""
    doc = source.doc
    _huge_training_counts(doc, int("9" * 4000))
    data = dump(reseal(doc, _FRESH))
    assert len(data) < MAX_BUNDLE_BYTES
    ctx = target.open()
    count = len(ctx.ledger)
    before = snapshot(target.root, target.config)
    with pytest.raises(BundleError, match="integer with 4000 digits is too large"):
        import_bundle(ctx, data)
    assert snapshot(target.root, target.config) == before
    reopened = target.open()
    assert len(reopened.ledger) == count and not reopened.ledger.read_only


def test_an_accepted_import_leaves_a_ledger_that_reopens_intact(source: Source, target: Target) -> None:
    """The largest counts the parser and the fields allow still give a line that reopens intact."""
    doc = source.doc
    _huge_training_counts(doc, 2**63 - 1)
    data = dump(reseal(doc, _FRESH))
    ctx = target.open()
    count = len(ctx.ledger)
    saved = import_bundle(ctx, data).saved
    assert saved.created
    assert len(saved.entry.line()) <= MAX_LINE_BYTES
    reopened = target.open()
    assert reopened.ledger.problem is None and not reopened.ledger.torn_tail
    assert len(reopened.ledger) == count + 1
    assert reopened.ledger.entry(count).hash == saved.entry.hash


def stationary_optimal_policy(config: EnvConfig) -> Policy:
    """An observation policy from value iteration (its step-0 optimal action)."""
    solution = solve(config)
    actions = []
    for obs in range(108):
        severity, attack, health, confidence, duration = dyn.decode_observation(obs)
        if obs in TERMINAL_OBSERVATIONS:
            actions.append(MYOPIC_ACTIONS[obs])
            continue
        code = dyn.alert_code(severity, attack, confidence)
        actions.append(int(solution.actions[0, code, health, 3 if duration else 0]))
    return Policy(config, tuple(actions))


def test_a_one_episode_suite_cannot_buy_the_top_rank(tmp_path: Path, replays: list[int]) -> None:
    """On one episode std and ci95 are 0, so a weak policy's lower bound would beat a better one's."""
    standard = PRESETS["standard"]
    good, weak = stationary_optimal_policy(standard), Policy(standard, MYOPIC_ACTIONS)
    good_report, weak_report = verify(good), verify(weak)
    assert good_report.interval.low > weak_report.interval.low and good_report.mean > weak_report.mean
    assert verify(weak, 1).interval.low > good_report.interval.low  # what the one-episode claim would buy

    home = Context.open(tmp_path / "home", tmp_path / "home-config")
    save_policy(home, good, None, {"kind": "trained"})  # the standard suite
    publisher = Context.open(tmp_path / "publisher", tmp_path / "publisher-config")
    save_policy(publisher, weak, None, {"kind": "trained"}, episodes=1)
    data = export_bundle(publisher, weak.hash)
    before = snapshot(tmp_path / "home", tmp_path / "home-config")
    with pytest.raises(BundleError, match=r"evaluation suite too small \(1 episodes, at least 1000\)"):
        import_bundle(home, data)
    assert replays == []
    assert snapshot(tmp_path / "home", tmp_path / "home-config") == before
    assert [r.policy_hash for r in rank(home.ledger.entries())] == [good.hash]


# -- damaged ledgers --------------------------------------------------------------------------------


def _damage_last_entry(root: Path) -> None:
    path = root / "ledger.json"
    data = path.read_bytes()
    at = data.rindex(b'"timestamp":"') + len(b'"timestamp":"')
    path.write_bytes(data[:at] + (b"1" if data[at:at + 1] != b"1" else b"2") + data[at + 1:])


def test_import_into_a_damaged_ledger_is_refused_and_changes_nothing(source: Source, target: Target) -> None:
    _damage_last_entry(target.root)
    ctx = target.open()
    assert ctx.ledger.read_only
    before = snapshot(target.root, target.config)
    with pytest.raises(BundleError, match="read-only until repaired"):
        import_bundle(ctx, source.data)
    assert snapshot(target.root, target.config) == before
    assert target.open().ledger.read_only


def test_import_when_the_ledger_is_damaged_after_opening_writes_nothing(source: Source,
                                                                        target: Target) -> None:
    ctx = target.open()
    assert not ctx.ledger.read_only
    _damage_last_entry(target.root)
    before = snapshot(target.root, target.config)
    with pytest.raises(BundleError, match=r"import failed, nothing written: .*read-only until repaired"):
        import_bundle(ctx, source.data)
    assert snapshot(target.root, target.config) == before
    assert not ctx.store.contains(source.policy.hash)


# -- round trips ------------------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(preset=st.sampled_from(sorted(PRESETS)),
       actions=st.lists(st.integers(0, 4), min_size=108, max_size=108),
       trained=st.booleans())
def test_export_then_import_elsewhere_round_trips(preset: str, actions: list[int], trained: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bundle-rt-") as tmp:
        base = Path(tmp)
        policy = Policy(PRESETS[preset], tuple(actions))
        training = None
        if trained:
            hyper = hyper_preset(DEFAULT_HYPER)
            training = {"algorithm": "double-q", "hyperparameters": hyper.to_dict(), "episodes": 123,
                        "seed": 5, "training_reward": -1.5, "agents": 2}
        src = Context.open(base / "a", base / "config-a")
        original = save_policy(src, policy, training, {"kind": "trained"}, EPISODES).entry
        data = export_bundle(src, policy.hash)

        dst = Context.open(base / "b", base / "config-b")  # another workspace, another user
        saved = import_bundle(dst, data).saved
        assert saved.created
        entry = saved.entry
        assert entry.origin == Origin("imported", publisher=src.publisher.public_hex,
                                      entry_hash=original.hash, signature=original.signature)
        assert entry.publisher == dst.publisher.public_hex != src.publisher.public_hex
        assert entry.signature_valid()
        assert entry.policy_hash == original.policy_hash == policy.hash
        assert entry.verification.replay_digest == original.verification.replay_digest
        assert entry.verification == original.verification
        assert entry.body["training"] == training
        assert entry.config == policy.config
        assert dst.store.get(policy.hash) == policy

        files = snapshot(base / "b", base / "config-b")
        again = import_bundle(dst, data).saved
        assert not again.created
        assert again.entry.hash == entry.hash
        assert len(dst.ledger) == 1
        assert snapshot(base / "b", base / "config-b") == files
        reopened = Context.open(base / "b", base / "config-b")
        assert len(reopened.ledger) == 1 and not reopened.ledger.read_only

        # Back home it is already recorded.
        home = import_bundle(src, data).saved
        assert not home.created and home.entry.hash == original.hash and len(src.ledger) == 1


def test_export_of_an_unknown_policy_is_refused(workspace: Path) -> None:
    ctx = Context.open(workspace)
    with pytest.raises(BundleError, match="is not in the ledger"):
        export_bundle(ctx, constructed_policy(3).hash)


def test_snapshot_sees_every_change(tmp_path: Path) -> None:
    """The helper the no-change assertions rely on notices names, bytes and new folders."""
    (tmp_path / "a").write_bytes(b"1")
    first = snapshot(tmp_path)
    (tmp_path / "a").write_bytes(b"2")
    assert snapshot(tmp_path) != first
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "d").mkdir()
    assert snapshot(tmp_path) != first
