"""Bundles carry a tlog-proof: import shows where the entry is, and refuses a fork of the publisher's
ledger (keeping both checkpoints as evidence) without writing anything."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from policyledger_core.cli.main import main
from policyledger_core.ledger import tlog
from policyledger_core.ledger.note import Checkpoint, open_note, split
from policyledger_core.ledger.peers import Peers
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.verify.suite import DEFAULT_EPISODES
from policyledger_core.workspace.bundles import (
    BundleError,
    check_bundle,
    export_bundle,
    import_bundle,
    unproved_reason,
)
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.core.workspace.test_bundles import constructed_policy, snapshot


def add(ctx: Context, seed: int) -> str:
    policy = constructed_policy(seed)
    assert save_policy(ctx, policy, None, {"kind": "added"}, DEFAULT_EPISODES).created
    return policy.hash


@pytest.fixture
def alice(tmp_path: Path) -> Context:
    ctx = Context.open(tmp_path / "alice", tmp_path / "alice-config")
    for seed in (1, 2, 3):
        add(ctx, seed)
    return ctx


def carol(tmp_path: Path) -> Context:
    return Context.open(tmp_path / "carol", tmp_path / "carol-config")


def test_an_exported_bundle_proves_its_entry_and_import_says_where(alice: Context, tmp_path: Path) -> None:
    policy_hash = alice.ledger.scanned()[1].policy_hash
    data = export_bundle(alice, policy_hash)
    doc = json.loads(data)
    assert doc["version"] == 2
    proof = TlogProof.parse(doc["tlog_proof"])
    head = proof.verify(alice.ledger.scanned()[1].record, [alice.publisher.verifier()])
    assert proof.index == 1 and head == tlog.checkpoint(alice.ledger, alice.publisher.key_id)
    checked = check_bundle(data)
    assert checked.inclusion is not None and checked.inclusion.checkpoint.size == 3
    imported = import_bundle(carol(tmp_path), data)
    origin = tlog.origin(alice.ledger, alice.publisher.key_id)
    assert imported.describe() == (f"included in {origin} at size 3 (entry 1); "
                                   f"first checkpoint seen of {origin}")
    seen = Peers(tmp_path / "carol-config").latest(origin, alice.publisher.verifier())
    assert seen is not None and seen.checkpoint == head


def test_the_cli_import_prints_the_proof(alice: Context, tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_bytes(export_bundle(alice, alice.ledger.scanned()[0].policy_hash))
    out, err = io.StringIO(), io.StringIO()
    code = main(["import", str(bundle), "--workspace", str(tmp_path / "carol"), "--json"], out=out, err=err)
    assert code == 0, err.getvalue()
    said = json.loads(out.getvalue())
    origin = tlog.origin(alice.ledger, alice.publisher.key_id)
    assert said["proof"] == {"origin": origin, "size": 3, "index": 0,
                             "signer": alice.publisher.note_name, "seen_before": "first"}


def test_a_fork_of_the_publishers_ledger_is_refused_with_both_checkpoints_kept(
        alice: Context, tmp_path: Path) -> None:
    twin = tmp_path / "alice-copy"
    shutil.copytree(alice.workspace.root, twin)
    copy = Context.open(twin, tmp_path / "alice-config")  # the same publisher, two histories
    first = add(alice, 10)
    other = add(copy, 11)
    c = carol(tmp_path)
    assert import_bundle(c, export_bundle(alice, first)).saved.created
    before = snapshot(tmp_path / "carol", tmp_path / "carol-config")
    fork = r"fork of policyledger/ledger/.*same size \(4\).*another root"
    with pytest.raises(BundleError, match=fork) as err:
        import_bundle(c, export_bundle(copy, other))
    after = snapshot(tmp_path / "carol", tmp_path / "carol-config")
    evidence = [name for name in after if "/forks/" in name]
    assert len(evidence) == 1 and str(err.value).endswith(evidence[0].split("/")[-1])
    assert {k: v for k, v in after.items() if "forks" not in k} == before  # nothing else written
    kept = after[evidence[0]]
    assert kept is not None
    notes = kept.decode().split("# Seen before\n")[1].split("# Now\n")
    verifier = alice.publisher.verifier()
    heads = [Checkpoint.parse(open_note(n.rstrip("\n") + "\n", [verifier])[0]) for n in notes]
    assert heads[0].root == tlog.checkpoint(alice.ledger, alice.publisher.key_id).root
    assert heads[1].root == tlog.checkpoint(copy.ledger, copy.publisher.key_id).root
    assert heads[0].size == heads[1].size == 4


def test_an_older_checkpoint_than_one_seen_is_refused_and_a_newer_one_taken(
        alice: Context, tmp_path: Path) -> None:
    old_bundle = export_bundle(alice, alice.ledger.scanned()[0].policy_hash)  # at size 3
    newest = add(alice, 20)
    c = carol(tmp_path)
    assert import_bundle(c, export_bundle(alice, newest)).observation.relation == "first"  # type: ignore[union-attr]
    with pytest.raises(BundleError, match="3 entries, fewer than the 4 seen before"):
        import_bundle(c, old_bundle)
    later = add(alice, 21)
    taken = import_bundle(c, export_bundle(alice, later))
    assert taken.observation is not None and taken.observation.relation == "newer"
    assert "newer than the checkpoint seen before (4 entries)" in taken.describe()


def test_a_bundle_from_before_proofs_is_still_accepted_and_said_to_have_none(
        alice: Context, tmp_path: Path) -> None:
    doc = json.loads(export_bundle(alice, alice.ledger.scanned()[2].policy_hash))
    del doc["tlog_proof"]
    doc["version"] = 1
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    imported = import_bundle(carol(tmp_path), data)
    assert imported.saved.created and imported.inclusion is None
    assert imported.describe().startswith("no inclusion proof (a version 1 bundle: from before proofs")


def test_a_hostile_proof_is_refused_in_one_line_before_anything_is_written(
        alice: Context, tmp_path: Path) -> None:
    doc = json.loads(export_bundle(alice, alice.ledger.scanned()[1].policy_hash))
    path, _, note = doc["tlog_proof"].partition("\n\n")
    origin, _size, rest = split(note)[0].split("\n", 2)
    huge = alice.publisher.sign_note(f"{origin}\n1{'0' * 5000}\n{rest}")  # signed by the publisher
    for proof, reason in ((path.replace("index 1", "index 1" + "0" * 5000) + "\n\n" + note, "index"),
                          (path + "\n\n" + huge, "tree size"),
                          (path.replace("index 1", "index 1\ud800") + "\n\n" + note, "not UTF-8"),
                          (path + "\n\n" + note.replace("\u2014 ", "\u2014 \ud800", 1), "not UTF-8")):
        data = json.dumps({**doc, "tlog_proof": proof}).encode()  # JSON carries a lone surrogate as \ud800
        with pytest.raises(BundleError, match=reason) as refused:
            import_bundle(carol(tmp_path), data)
        assert "not signed" not in str(refused.value)  # each is signed by the publisher: say what is wrong
    assert not (tmp_path / "carol").exists() and not (tmp_path / "carol-config" / "tlog").exists()


def test_a_damaged_record_of_seen_checkpoints_refuses_the_import_and_is_left_alone(
        alice: Context, tmp_path: Path) -> None:
    c = carol(tmp_path)
    data = export_bundle(alice, alice.ledger.scanned()[0].policy_hash)
    import_bundle(c, data)
    record = next((tmp_path / "carol-config" / "tlog" / "logs").glob("*.json"))
    record.write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="cannot check its checkpoint against those seen before"):
        import_bundle(c, export_bundle(alice, add(alice, 30)))
    assert record.read_text(encoding="utf-8") == "{not json"


def test_only_an_entrys_publisher_exports_it_with_a_proof(alice: Context, tmp_path: Path) -> None:
    bob = Context.open(alice.workspace.root, tmp_path / "bob-config")  # the same workspace, another user
    policy_hash = alice.ledger.scanned()[0].policy_hash
    doc = json.loads(export_bundle(bob, policy_hash))
    assert doc["version"] == 1 and "tlog_proof" not in doc
    entry = bob.ledger.find_policy(policy_hash)
    assert entry is not None
    reason = unproved_reason(bob, entry)
    assert reason == f"entry 0 was published by key {alice.publisher.key_id}; only its publisher signs for it"
    assert not (tmp_path / "bob-config" / "publisher-ed25519.pem").exists()  # exporting made no key
    c = carol(tmp_path)
    imported = import_bundle(c, export_bundle(alice, policy_hash))
    again = json.loads(export_bundle(c, policy_hash))  # Carol's own imported entry: she signs for it
    assert again["version"] == 2
    assert TlogProof.parse(again["tlog_proof"]).index == imported.saved.entry.index


def test_a_checkpoint_that_cannot_be_remembered_after_the_save_is_said_not_refused(
        alice: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy is saved and the import says so; only the checkpoint seen is not remembered."""
    c = carol(tmp_path)
    real = Peers.observe

    def full_disk(self: Peers, *args: object, **kwargs: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Peers, "observe", full_disk)
    imported = import_bundle(c, export_bundle(alice, alice.ledger.scanned()[0].policy_hash))
    assert imported.saved.created and len(c.ledger) == 1
    assert imported.describe().endswith("imported; its checkpoint could not be remembered "
                                        "([Errno 28] No space left on device)")
    monkeypatch.setattr(Peers, "observe", real)
    assert Peers(tmp_path / "carol-config").latest(tlog.origin(alice.ledger, alice.publisher.key_id),
                                                   alice.publisher.verifier()) is None
