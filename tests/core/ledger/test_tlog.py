"""The ledger as a transparency log: its tree over the entries' bytes, its origin, its signed checkpoint."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from policyledger_core.cli.main import main
from policyledger_core.ledger import tlog
from policyledger_core.ledger.merkle import leaf_hash, root
from policyledger_core.ledger.note import Checkpoint, Verifier, open_note
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
    assert head.origin == tlog.origin(ctx.ledger) == "policyledger/ledger/" + first[:16]
    assert head.size == 3 and head.root == ctx.ledger.tree().root()
    data = json.loads(run("checkpoint", "--json", "--workspace", str(built.root))[1])
    assert data["size"] == 3 and base64.b64decode(data["root"]) == head.root
    assert data["verifier_key"] == verifier.text() and data["checkpoint"].startswith(head.origin + "\n3\n")


def test_an_empty_ledger_has_no_checkpoint_yet(tmp_path: Path) -> None:
    code, _out, err = run("checkpoint", "--workspace", str(tmp_path / "empty"))
    assert code == 1 and "empty" in err
    ctx = Context.open(tmp_path / "empty")
    with pytest.raises(tlog.EmptyLog):
        tlog.origin(ctx.ledger)
