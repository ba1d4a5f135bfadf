"""A damaged file opens read-only and is never modified; a healthy one never raises a false alarm."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger import entry as entry_module
from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.ledger.entry import GENESIS, EntryError
from policyledger_core.ledger.layout import EMPTY, FOOTER, HEADER
from policyledger_core.paths import LEDGER_FILE, Workspace
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_builder import (
    EPISODES,
    Built,
    build,
    damage_edit,
    fields_for,
    make_policy,
    save,
)


def test_an_entry_longer_than_a_line_may_be_is_never_sealed(workspace: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """seal() refuses a line the scan would refuse (MAX_LINE_BYTES lowered to reach it), writing nothing."""
    ctx = Context.open(workspace, tmp_path / "config")
    fields = fields_for(make_policy(1))
    monkeypatch.setattr(entry_module, "MAX_LINE_BYTES", 1000)
    with pytest.raises(EntryError, match="entry: longer than 1000 bytes"):
        ctx.ledger.append(fields, ctx.publisher)
    assert len(ctx.ledger) == 0 and not ctx.ledger.read_only
    assert not (workspace / LEDGER_FILE).exists() or (workspace / LEDGER_FILE).read_bytes() == EMPTY
    monkeypatch.undo()
    entry = ctx.ledger.append(fields, ctx.publisher)
    assert 1000 < len(entry.line()) <= entry_module.MAX_LINE_BYTES
    reopened = Ledger.open(Workspace.open(workspace), tmp_path / "config")
    assert reopened.problem is None and not reopened.torn_tail
    assert [e.hash for e in reopened.entries()] == [entry.hash]


# -- a damaged file never makes open fail ---------------------------------------------------------

JUNK = {
    "empty": b"",
    "garbage": b"hello, world\n",
    "binary": bytes(range(256)) * 3,
    "nul": b"\x00" * 4096,
    "other-json": b'{"entries": []}\n',
    "bad-version": HEADER.replace(b'"version":1', b'"version":2') + FOOTER,
    "bad-format": HEADER.replace(b"policyledger/ledger", b"policyledger/ledgex") + FOOTER,
    "header-no-newline": HEADER[:-1],
    "invalid-utf8": b"\xff\xfe" + HEADER,
    "pretty-json": json.dumps({"format": "policyledger/ledger", "version": 1, "entries": []},
                              indent=2).encode(),
}


@pytest.mark.parametrize("content", list(JUNK.values()), ids=list(JUNK))
@pytest.mark.parametrize("witness", [True, False], ids=["witness", "no-witness"])
def test_damaged_file_opens_read_only(workspace: Path, tmp_path: Path, content: bytes, witness: bool) -> None:
    built = build(workspace, tmp_path / "config", 2)
    built.path.write_bytes(content)
    config = built.config if witness else tmp_path / "fresh-config"
    ctx = Context.open(built.root, config)  # never raises
    assert ctx.ledger.problem is not None
    assert ctx.ledger.problem.index == 0
    assert "not a PolicyLedger ledger" in ctx.ledger.problem.reason
    assert ctx.ledger.read_only
    assert ctx.ledger.entries() == []
    assert ctx.ledger.head == GENESIS
    with pytest.raises(LedgerError):
        ctx.ledger.append(fields_for(make_policy(100)), ctx.publisher)
    assert built.path.read_bytes() == content
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.problem == ctx.ledger.problem
    backup = ctx.ledger.repair()
    assert backup.read_bytes() == content
    assert built.path.read_bytes() == EMPTY
    assert save(ctx, 100).prev == GENESIS


def test_damaged_file_opens_read_only_in_an_empty_workspace(workspace: Path, tmp_path: Path) -> None:
    workspace.mkdir()
    (workspace / LEDGER_FILE).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    ledger = Ledger.open(Workspace.open(workspace), tmp_path / "config")
    assert ledger.problem is not None and ledger.problem.index == 0
    assert len(ledger) == 0


def test_opening_never_modifies_a_damaged_ledger(built: Built) -> None:
    damage_edit(built)
    damaged = built.path.read_bytes()
    witness_path = built.open().witness.path
    witness = witness_path.read_bytes()
    stamp = os.stat(built.path).st_mtime_ns
    for _ in range(2):
        built.open()
        built.context()
    assert built.path.read_bytes() == damaged
    assert os.stat(built.path).st_mtime_ns == stamp
    assert witness_path.read_bytes() == witness


# -- no false alarm -------------------------------------------------------------------------------

_OPS = st.lists(
    st.tuples(st.integers(0, 1),  # which of the two contexts appends
              st.integers(0, 11),  # which policy (repeats are deduplicated)
              st.sampled_from(["short-burst", "standard"]),
              st.booleans()),  # reopen that context afterwards
    max_size=10,
)


@settings(max_examples=25, deadline=None, database=None)
@given(ops=_OPS)
def test_no_false_alarm(ops: list[tuple[int, int, str, bool]]) -> None:
    with tempfile.TemporaryDirectory(prefix="policyledger-prop-") as tmp:
        root, config = Path(tmp) / "ws", Path(tmp) / "config"
        contexts = [Context.open(root, config), Context.open(root, config)]
        expected: list[str] = []
        for who, seed, preset_name, reopen in ops:
            policy = make_policy(seed, preset_name)
            saved = save_policy(contexts[who], policy, None, {"kind": "added"}, episodes=EPISODES)
            if policy.hash in expected:
                assert not saved.created
                assert saved.entry.index == expected.index(policy.hash)
            else:
                assert saved.created
                assert saved.entry.index == len(expected)
                expected.append(policy.hash)
            if reopen:
                contexts[who] = Context.open(root, config)
            if len(expected) >= 8:
                break
        for ctx in [*contexts, Context.open(root, config)]:
            ctx.ledger.reload()
            assert ctx.ledger.problem is None
            assert [e.policy_hash for e in ctx.ledger.entries()] == expected
            report = run_to_end(audit(ctx.ledger, ctx.store))
            assert report.ok, report.problem
            assert report.entries == len(expected)
        fresh = Ledger.open(Workspace.open(root), config)
        assert fresh.problem is None
        assert fresh.witness.hashes() == [e.hash for e in fresh.entries()]
        if expected:
            doc = json.loads((root / LEDGER_FILE).read_bytes())
            assert [e["body"]["policy_hash"] for e in doc["entries"]] == expected
