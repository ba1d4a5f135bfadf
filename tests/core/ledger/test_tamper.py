"""Tampering found by open and by audit, naming the right entry: edits, deletions, swaps,
forged signatures, replaced keys, damaged policy files, truncation and rollback against the checkpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.errors import Rejected
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger import tlog
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.ledger.entry import hash_body
from policyledger_core.ledger.layout import FOOTER, HEADER, Problem
from policyledger_core.ledger.note import Checkpoint, open_note
from policyledger_core.ledger.signing import Publisher
from policyledger_core.paths import LEDGER_FILE, Workspace
from policyledger_core.sim.config import preset
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_builder import (
    EPISODES,
    N_ENTRIES,
    OTHER_KEY,
    Built,
    assert_clean,
    assert_valid_json,
    edit_mean,
    entry_lines,
    expect_problem,
    fields_for,
    full_audit,
    ledger_bytes,
    make_policy,
    rewrite_chain,
    save,
    tampered,
    write_lines,
)


def test_built_ledger_is_clean(built: Built) -> None:
    assert Witness(built.config, built.root).hashes() == built.hashes  # the copy has its checkpoint
    assert built.path.read_bytes() == built.data
    assert len(built.entries) == N_ENTRIES
    assert len(set(built.hashes)) == N_ENTRIES
    assert [e.index for e in built.entries] == list(range(N_ENTRIES))
    assert_clean(built.root, built.config, N_ENTRIES)
    assert_valid_json(built, built.hashes)


# -- tampering, one kind at a time -----------------------------------------------------------------



def _edit_timestamp(d: dict[str, Any]) -> None:
    d["body"]["timestamp"] = "2001-01-01T00:00:00Z"




def _edit_origin(d: dict[str, Any]) -> None:
    d["body"]["origin"] = {"kind": "trained"}


def _edit_policy_hash(d: dict[str, Any]) -> None:
    d["body"]["policy_hash"] = sha256_hex(b"some other policy")


@pytest.mark.parametrize(("index", "edit"), [
    (3, _edit_timestamp), (3, edit_mean), (3, _edit_origin), (3, _edit_policy_hash),
    (0, edit_mean), (N_ENTRIES - 1, _edit_origin),
], ids=["timestamp-3", "mean-3", "origin-3", "policy_hash-3", "mean-0", "origin-last"])
def test_edited_field_is_a_hash_mismatch(built: Built, index: int,
                                         edit: Callable[[dict[str, Any]], None]) -> None:
    lines = entry_lines(built.data)
    lines[index] = tampered(lines[index], edit)
    write_lines(built, lines)
    expect_problem(built, index, "hash does not match its content")


@pytest.mark.parametrize("index", [1, 2, N_ENTRIES - 2])
def test_deleted_entry(built: Built, index: int) -> None:
    lines = entry_lines(built.data)
    del lines[index]
    write_lines(built, lines)
    expect_problem(built, index, f"index is not {index}", "deleted")


def test_deleted_first_entry(built: Built) -> None:
    lines = entry_lines(built.data)
    del lines[0]
    write_lines(built, lines)
    expect_problem(built, 0, "index is not 0")


def test_deleted_first_line_keeping_the_comma(built: Built) -> None:
    """Only the first line cut out of the file, the second keeps its leading comma."""
    data = built.data
    start = len(HEADER)
    end = data.index(b"\n", start) + 1
    built.path.write_bytes(data[:start] + data[end:])
    expect_problem(built, 0)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 3), (1, 4), (3, N_ENTRIES - 1)])
def test_swapped_entries(built: Built, i: int, j: int) -> None:
    lines = entry_lines(built.data)
    lines[i], lines[j] = lines[j], lines[i]
    write_lines(built, lines)
    expect_problem(built, i, f"index is not {i}", "reordered")


@pytest.mark.parametrize("keep", [0, 1, 4, N_ENTRIES - 1])
def test_truncated_tail_caught_by_the_witness(built: Built, keep: int) -> None:
    """Whole entries removed and the file closed properly: only the checkpoint can tell."""
    write_lines(built, entry_lines(built.data)[:keep])
    json.loads(built.path.read_bytes())  # a perfectly valid (shorter) ledger
    expect_problem(built, keep, f"{N_ENTRIES} entries were seen here before", f"holds {keep}",
                   "truncated or rolled back")


def test_rollback_to_an_older_copy(workspace: Path, tmp_path: Path) -> None:
    ctx = Context.open(workspace, tmp_path / "config")
    for seed in range(3):
        save(ctx, seed)
    older = (workspace / LEDGER_FILE).read_bytes()
    for seed in range(3, N_ENTRIES):
        save(ctx, seed)
    b = Built(workspace, tmp_path / "config", ctx.ledger.entries(), (workspace / LEDGER_FILE).read_bytes())
    b.path.write_bytes(older)
    expect_problem(b, 3, "truncated or rolled back")


def test_deleted_ledger_file_caught_by_the_witness(built: Built) -> None:
    built.path.unlink()
    expect_problem(built, 0, "truncated or rolled back")


def test_undetectable_without_the_witness(built: Built, tmp_path: Path) -> None:
    """The counterpart: a clean truncation is a valid ledger to a user who never saw it longer."""
    write_lines(built, entry_lines(built.data)[:2])
    assert_clean(built.root, tmp_path / "fresh-config", 2)




@pytest.mark.parametrize("index", [0, 2, N_ENTRIES - 1])
def test_recomputed_history_caught_by_the_witness(built: Built, tmp_path: Path, index: int) -> None:
    forged = rewrite_chain(built, index, _edit_timestamp, OTHER_KEY)  # figures are checked on their own
    assert forged[:index] == built.hashes[:index]
    assert all(f != h for f, h in zip(forged[index:], built.hashes[index:], strict=True))
    # The forgery is internally consistent: hashes, links and signatures all check out...
    assert_clean(built.root, tmp_path / "fresh-config", N_ENTRIES)
    # ...so only this user's checkpoint catches it, at the edited entry, and its signed tree head
    # proves it: the consistency proof from it to the forged file's tree fails.
    witness = Witness(built.config, built.root)
    kept = witness.head_path.read_text(encoding="utf-8")
    user = Publisher.load_existing(built.config)
    assert user is not None
    head = Checkpoint.parse(open_note(kept, [user.verifier()])[0])
    assert head.size == N_ENTRIES
    expect_problem(built, index, "differs from the entry seen here before", "history rewritten",
                   f"proved: the consistency proof from your signed checkpoint of {N_ENTRIES} entries fails")
    rewritten = "does not extend the checkpoint of 6 entries" if index else "of another ledger"  # 0 names it
    with pytest.raises(Rejected, match=rewritten):
        tlog.check_extends(Ledger.open(Workspace.open(built.root), tmp_path / "fresh-config"), kept,
                           [user.verifier()])


def test_the_latest_checkpoint_seen_is_kept_signed_and_follows_the_ledger(built: Built,
                                                                          tmp_path: Path) -> None:
    ctx = built.context()
    witness = ctx.ledger.witness
    text, _ = open_note(witness.head_path.read_text(encoding="utf-8"), [ctx.publisher.verifier()])
    assert Checkpoint.parse(text) == tlog.checkpoint(ctx.ledger, ctx.publisher.key_id)
    save(ctx, 77)
    head = tlog.checkpoint(ctx.ledger, ctx.publisher.key_id)
    assert witness.head() == (head, witness.head_path.read_text(encoding="utf-8"))
    reader = Ledger.open(Workspace.open(built.root), tmp_path / "reader-config")  # no key: kept unsigned
    kept = reader.witness.head()
    assert kept is not None and kept[1] == tlog.checkpoint(reader, None).text()
    assert not (tmp_path / "reader-config" / "publisher-ed25519.pem").exists()


def test_an_append_and_a_reader_keeping_the_latest_checkpoint_at_once_both_succeed(
        built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process keeps the checkpoint through a temporary file of its own: a reader of the same
    workspace (the app, another command) writing its own between this one's write and rename must
    not make an append fail after its entry was written, nor leave a torn checkpoint."""
    ctx = built.context()
    reader = Witness(built.config, built.root)
    real = os.replace

    def meanwhile(src: Any, dst: Any) -> None:
        if Path(dst) == reader.head_path:
            monkeypatch.setattr(os, "replace", real)
            reader.record_head(ctx.ledger.origin(), len(ctx.ledger), ctx.ledger.tree().root())
        real(src, dst)

    monkeypatch.setattr(os, "replace", meanwhile)
    save(ctx, 77)
    head = tlog.checkpoint(ctx.ledger, ctx.publisher.key_id)
    assert reader.head() == (head, reader.head_path.read_text(encoding="utf-8"))
    assert sorted(p.name for p in reader.head_path.parent.iterdir()) == sorted(
        [reader.path.name, reader.head_path.name])


@pytest.mark.parametrize("forge", ["other-key", "other-entry", "bit-flip"])
def test_replaced_signature_found_by_audit(built: Built, forge: str) -> None:
    index = 3
    lines = entry_lines(built.data)

    def change(d: dict[str, Any]) -> None:
        if forge == "other-key":
            d["signature"] = OTHER_KEY.sign(d["hash"])
        elif forge == "other-entry":
            d["signature"] = built.entries[2].signature
        else:
            raw = bytearray.fromhex(d["signature"])
            raw[10] ^= 0x01
            d["signature"] = raw.hex()

    lines[index] = tampered(lines[index], change)
    assert lines[index] != entry_lines(built.data)[index]
    write_lines(built, lines)
    ctx = built.context()
    assert ctx.ledger.problem is None  # the fast scan does not check signatures
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.problem == Problem(index, "signature does not verify with the entry's key")
    assert ctx.ledger.problem == report.problem
    assert ctx.ledger.read_only
    assert [e.hash for e in ctx.ledger.entries()] == built.hashes[:index]


def _replace_publisher(d: dict[str, Any]) -> None:
    d["body"]["publisher"] = OTHER_KEY.public_hex


def test_replaced_publisher_key_is_a_hash_mismatch(built: Built) -> None:
    lines = entry_lines(built.data)
    lines[3] = tampered(lines[3], _replace_publisher)
    write_lines(built, lines)
    expect_problem(built, 3, "hash does not match its content")


def _replace_publisher_rehash(d: dict[str, Any]) -> None:
    _replace_publisher(d)
    d["hash"] = hash_body(canonical_bytes(d["body"]))


def test_replaced_publisher_key_with_recomputed_hash(built: Built) -> None:
    """The old signature no longer fits; the checkpoint names the entry as rewritten."""
    lines = entry_lines(built.data)
    lines[3] = tampered(lines[3], _replace_publisher_rehash)
    write_lines(built, lines)
    expect_problem(built, 3, "history rewritten")


def test_replaced_publisher_key_with_recomputed_hash_no_witness(built: Built, tmp_path: Path) -> None:
    """Without the checkpoint the scan stops at the broken link (4), the audit at the signature (3)."""
    lines = entry_lines(built.data)
    lines[3] = tampered(lines[3], _replace_publisher_rehash)
    write_lines(built, lines)
    fresh = tmp_path / "fresh-config"
    ledger = Ledger.open(Workspace.open(built.root), fresh)
    assert ledger.problem == Problem(4, "does not chain to the entry before it")
    report, ctx = full_audit(built, fresh)
    assert report.problem == Problem(3, "signature does not verify with the entry's key")
    assert [e.hash for e in ctx.ledger.entries()] == built.hashes[:3]


def test_bit_flip_in_a_body(built: Built) -> None:
    data = bytearray(built.data)
    start = data.index(b'"timestamp":"', data.index(built.entries[2].line())) + len(b'"timestamp":"')
    data[start] ^= 0x01  # '2' -> '3': still a digit, still valid JSON
    built.path.write_bytes(bytes(data))
    expect_problem(built, 2, "hash does not match")


def test_junk_line_inserted_between_entries(built: Built) -> None:
    prefix = ledger_bytes(entry_lines(built.data)[:2]).removesuffix(FOOTER)
    assert built.data.startswith(prefix)
    built.path.write_bytes(prefix + b",junk\n" + built.data[len(prefix):])
    expect_problem(built, 2)


# -- policy files ---------------------------------------------------------------------------------


@pytest.fixture
def shared(built: Built) -> Built:
    """The built ledger plus entry 6, a second record of entry 2's policy."""
    ctx = built.context()
    again = ctx.ledger.append(fields_for(make_policy(2)), ctx.publisher)
    assert again.index == N_ENTRIES and again.policy_hash == built.entries[2].policy_hash
    return Built(built.root, built.config, ctx.ledger.entries(), built.path.read_bytes())


def _policy_path(b: Built, index: int) -> Path:
    return b.root / "policies" / f"{b.entries[index].policy_hash}.json"


@pytest.mark.parametrize(("damage", "reason"), [
    ("edited", "content does not match its hash"),
    ("deleted", "file missing"),
    ("swapped", "content does not match its hash"),
    ("emptied", "content does not match its hash"),
])
def test_damaged_policy_file_found_by_audit(shared: Built, damage: str, reason: str) -> None:
    target = _policy_path(shared, 2)
    other = _policy_path(shared, 4)
    if damage == "edited":
        doc = json.loads(target.read_bytes())
        doc["actions"][0] = (doc["actions"][0] + 1) % 5
        target.write_bytes(canonical_bytes(doc))
    elif damage == "deleted":
        target.unlink()
    elif damage == "swapped":
        a, b = target.read_bytes(), other.read_bytes()
        target.write_bytes(b)
        other.write_bytes(a)
    else:
        target.write_bytes(b"")
    ctx = shared.context()
    assert ctx.ledger.problem is None  # the fast scan does not open policy files
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.problem is not None
    assert report.problem.index == 2  # the first entry referencing it, not entry 6 (or 4)
    assert reason in report.problem.reason
    assert shared.entries[2].policy_hash[:12] in report.problem.reason
    assert ctx.ledger.read_only
    assert [e.hash for e in ctx.ledger.entries()] == shared.hashes[:2]


def test_policy_configuration_differs_from_the_entry(built: Built) -> None:
    ctx = built.context()
    fields = fields_for(make_policy(1))
    ctx.store.put(make_policy(1))
    fields["config"] = preset("standard").to_dict()  # the entry claims another environment
    entry = ctx.ledger.append(fields, ctx.publisher)
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.problem is not None
    # Entry 1 records the same policy with the right configuration; the new entry is the liar.
    assert report.problem == Problem(entry.index, "the policy file's configuration differs from the entry's")


def test_saving_again_heals_a_deleted_policy_file(built: Built) -> None:
    _policy_path(built, 3).unlink()
    ctx = built.context()
    saved = save_policy(ctx, make_policy(3), None, {"kind": "added"}, episodes=EPISODES)
    assert not saved.created
    assert saved.entry.hash == built.hashes[3]
    assert built.path.read_bytes() == built.data
    assert_clean(built.root, built.config, N_ENTRIES)


# -- ledger.json cut mid-entry --------------------------------------------------------------------
