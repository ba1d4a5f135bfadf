"""The ledger as a transparency log: its tree over the entries' bytes, its origin, its signed checkpoint."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import pytest

from policyledger_core.cli.main import main
from policyledger_core.errors import Rejected
from policyledger_core.ledger import tlog
from policyledger_core.ledger.layout import Problem
from policyledger_core.ledger.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
)
from policyledger_core.ledger.note import Checkpoint, NoteError, Verifier, open_note
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.ledger.signing import Publisher
from policyledger_core.workspace.context import Context
from tests.helpers.ledger_builder import build, save


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_tree_is_over_each_entrys_bytes_and_follows_appends(tmp_path: Path) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 3)
    ctx = Context.open(built.root, built.config)
    lines = (built.root / "ledger.json").read_bytes().split(b"\n")[1:4]
    records = [lines[0], *(line[1:] for line in lines[1:])]  # entry i's object: no comma, no newline
    assert all(record.startswith(b'{"body":') and record.endswith(b'"}') for record in records)
    tree = ctx.ledger.tree()
    assert tree.size == 3 and tree.root() == root([leaf_hash(r) for r in records])
    save(ctx, 40)
    after = ctx.ledger.tree()
    assert after.size == 4 and after.root() == root(ctx.ledger.leaf_hashes())
    fresh = Context.open(built.root, built.config)
    assert fresh.ledger.tree().root() == after.root()  # a reader opening the file agrees


def test_the_stored_tree_gives_the_all_leaves_proofs_and_drops_what_the_ledger_drops(tmp_path: Path) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 6)
    ledger = Context.open(built.root, built.config).ledger
    tree, leaves = ledger.tree(), ledger.leaf_hashes()
    assert [tree.inclusion_proof(i) for i in range(6)] == [inclusion_proof(leaves, i) for i in range(6)]
    assert [tree.consistency_proof(m) for m in range(7)] == [consistency_proof(leaves, m) for m in range(7)]
    ledger.mark_problem(Problem(4, "found by an audit"))  # entries 4 and 5 are no longer usable
    assert ledger.tree().size == 4 and ledger.tree().root() == root(leaves[:4])
    assert tree.size == 6 and tree.root() == root(leaves)  # replaced, not cut: a kept tree still answers


def test_the_checkpoint_is_a_signed_note_any_verifier_accepts(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 3)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))  # the commands sign with this user's key
    ctx = Context.open(built.root, built.config)
    code, note, err = run("checkpoint", "--workspace", str(built.root))
    assert code == 0, err
    code, key, _ = run("checkpoint", "--verifier-key", "--workspace", str(built.root))
    verifier = Verifier.parse(key.strip())
    assert verifier.name == f"policyledger/{ctx.publisher.key_id}"
    text, _signed = open_note(note, [verifier])
    head = Checkpoint.parse(text)
    first = ctx.ledger.scanned()[0].hash
    expected = f"policyledger/ledger/{first[:16]}/{ctx.publisher.key_id}"  # this ledger, as this key signs it
    assert head.origin == tlog.origin(ctx.ledger, ctx.publisher.key_id) == expected
    assert head.size == 3 and head.root == ctx.ledger.tree().root()
    data = json.loads(run("checkpoint", "--json", "--workspace", str(built.root))[1])
    assert data["size"] == 3 and base64.b64decode(data["root"]) == head.root
    assert data["verifier_key"] == verifier.text() and data["checkpoint"].startswith(head.origin + "\n3\n")


def test_an_empty_ledger_has_no_checkpoint_yet(tmp_path: Path) -> None:
    code, _out, err = run("checkpoint", "--workspace", str(tmp_path / "empty"))
    assert code == 1 and "empty" in err
    ctx = Context.open(tmp_path / "empty")
    with pytest.raises(tlog.EmptyLog):
        tlog.origin(ctx.ledger, None)


def test_a_proof_shows_a_policys_entry_is_in_the_signed_tree(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 5)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))
    ctx = Context.open(built.root, built.config)
    entry = ctx.ledger.scanned()[3]
    out = tmp_path / "entry.tlog-proof"
    code, said, err = run("prove", entry.policy_hash[:10], "-o", str(out), "--workspace", str(built.root))
    assert code == 0, err
    assert said == f"proof of entry 3 in a tree of 5 written to {out}\n"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 3\n")
    proof = TlogProof.parse(text)
    assert proof.text() == text
    head = proof.verify(entry.record, [ctx.publisher.verifier()])
    assert head.size == 5 and head.origin == tlog.origin(ctx.ledger, ctx.publisher.key_id)
    with pytest.raises(ProofError):
        proof.verify(ctx.ledger.scanned()[2].record, [ctx.publisher.verifier()])  # another entry's bytes
    with pytest.raises(ProofError):
        TlogProof(2, proof.hashes, proof.checkpoint).verify(entry.record, [ctx.publisher.verifier()])
    stranger = Verifier(ctx.publisher.note_name, bytes(32))
    with pytest.raises(NoteError):
        proof.verify(entry.record, [stranger])  # the checkpoint is checked against the key given
    code, _said, err = run("prove", entry.policy_hash[:10], "--index", "1", "--workspace", str(built.root))
    assert code == 2 and "not an entry of" in err


@pytest.mark.parametrize("text", [
    "c2sp.org/tlog-proof@v2\nindex 0\n\nx\n",
    "c2sp.org/tlog-proof@v1\nindex 01\n\nx\n",
    "c2sp.org/tlog-proof@v1\nnumber 1\n\nx\n",
    "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n\nx\n",
    "c2sp.org/tlog-proof@v1\nindex 1\n",
    "c2sp.org/tlog-proof@v1\nindex " + "1" * 5000 + "\n\nx\n",  # more digits than int() takes
    f"c2sp.org/tlog-proof@v1\nindex {1 << 64}\n\nx\n",
    "c2sp.org/tlog-proof@v1\nindex 1\ud800\n\nx\n",  # not UTF-8: a lone surrogate from JSON
])
def test_malformed_proofs_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        TlogProof.parse(text)


def _checkpoint_file(root: Path, path: Path) -> Path:
    code, note, err = run("checkpoint", "--workspace", str(root))
    assert code == 0, err
    path.write_text(note, encoding="utf-8")
    return path


def test_verify_against_a_checkpoint_finds_forks_rollbacks_and_forgeries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 3)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))
    at_3 = _checkpoint_file(built.root, tmp_path / "at-3.checkpoint")
    copy = tmp_path / "copy"
    shutil.copytree(built.root, copy)
    save(Context.open(built.root, built.config), 40)  # the ledger grows: it still extends what was seen
    code, out, err = run("verify", "--against", str(at_3), "--workspace", str(built.root))
    assert code == 0, err
    assert "it extends the checkpoint of 3 entries" in out
    save(Context.open(copy, built.config), 41)  # the copy gets another 4th entry: a fork
    fork = _checkpoint_file(copy, tmp_path / "fork.checkpoint")
    code, out, _ = run("verify", "--against", str(fork), "--workspace", str(built.root), "--json")
    assert code == 1
    assert "does not extend the checkpoint of 4 entries" in json.loads(out)["against"]["problem"]
    ahead = _checkpoint_file(built.root, tmp_path / "at-4.checkpoint")
    save(Context.open(built.root, built.config), 42)
    data = (built.root / "ledger.json").read_bytes().split(b"\n")
    (copy / "ledger.json").write_bytes(b"\n".join([*data[:3], b"]}", b""]))  # rolled back to 2 entries
    code, out, _ = run("verify", "--against", str(ahead), "--workspace", str(copy))
    assert code == 1  # the audit of the copy may find the rollback itself; either way it is refused
    forged = at_3.read_text(encoding="utf-8").replace("\n3\n", "\n2\n")
    (tmp_path / "forged.checkpoint").write_text(forged, encoding="utf-8")
    code, out, _ = run("verify", "--against", str(tmp_path / "forged.checkpoint"),
                       "--workspace", str(built.root))
    assert code == 1 and "does not verify" in out


def test_a_consistency_request_proves_the_old_tree_is_a_prefix(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 6)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))
    ctx = Context.open(built.root, built.config)
    code, body, err = run("consistency", "3", "--workspace", str(built.root))
    assert code == 0, err
    head, _, signed = body.partition("\n\n")
    lines = head.split("\n")
    assert lines[0] == "old 3"
    proof = [base64.b64decode(line) for line in lines[1:]]
    text, _ = open_note(signed, [ctx.publisher.verifier()])
    new = Checkpoint.parse(text)
    old_root = root(ctx.ledger.leaf_hashes()[:3])
    verify_consistency(3, new.size, old_root, new.root, proof)
    code, _, err = run("consistency", "7", "--workspace", str(built.root))
    assert code == 2 and "the ledger has 6 entries" in err


def test_a_checkpoint_check_names_an_unknown_signer_and_an_emptied_ledger(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build(tmp_path / "ws", tmp_path / "cfg", 2)
    ctx = Context.open(built.root, built.config)
    stranger = Publisher.generate()
    foreign = tmp_path / "foreign.checkpoint"
    theirs = tlog.checkpoint(ctx.ledger, stranger.key_id)
    foreign.write_text(stranger.sign_note(theirs.text()), encoding="utf-8")
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))
    code, out, _ = run("verify", "--against", str(foreign), "--workspace", str(built.root), "--json")
    problem = json.loads(out)["against"]["problem"]
    assert code == 1 and problem == (f"the checkpoint is signed by {stranger.note_name}, not by any key it "
                                     "was checked against (give its verifier key with --key)")
    code, out, _ = run("verify", "--against", str(foreign), "--key", stranger.verifier().text(),
                       "--workspace", str(built.root))
    assert code == 0, out
    signed = tlog.signed_checkpoint(ctx.ledger, ctx.publisher)
    empty = Context.open(tmp_path / "empty", tmp_path / "other-cfg")
    with pytest.raises(Rejected, match=r"saw 2 entries of policyledger/ledger/.*this ledger is empty"):
        tlog.check_extends(empty.ledger, signed, [ctx.publisher.verifier()])
