"""Tests of the signed, hash-chained ledger: tamper detection, recovery and no false alarms.

Every ledger here is built through the real API (``Context.open`` and
``autosave.save_policy``, or ``Ledger.append`` with fields built as autosave
builds them) and then damaged on disk the way an attacker, a crash or a bad
sync would. Each problem must name the RIGHT entry (``Problem.index``) with a
reason that says what is wrong, both from a fresh ``Ledger.open`` (fast scan
plus the per-user checkpoint) and from a full ``audit``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger import entry as entry_module
from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.ledger.entry import GENESIS, Entry, EntryError, hash_body, seal
from policyledger_core.ledger.layout import EMPTY, FOOTER, HEADER, Problem
from policyledger_core.ledger.signing import KEY_FILE, Publisher
from policyledger_core.paths import LEDGER_FILE, Workspace
from policyledger_core.policy import Policy
from policyledger_core.sim.config import preset
from policyledger_core.verify.suite import verify
from policyledger_core.workspace.audit import AuditReport, audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy, verification_fields

EPISODES = 50
N_ENTRIES = 6
LEDGER_LOG = "policyledger_core.ledger.chain"


# -- building real ledgers ------------------------------------------------------------------------


def make_policy(seed: int, preset_name: str = "short-burst") -> Policy:
    """A policy with a pseudo-random action table (distinct seeds give distinct policies)."""
    rng = random.Random(seed)
    return Policy(config=preset(preset_name), actions=tuple(rng.randrange(5) for _ in range(108)))


def fields_for(policy: Policy) -> dict[str, Any]:
    """Entry fields exactly as autosave builds them."""
    report = verify(policy, EPISODES)
    return {"policy_hash": policy.hash, "config": policy.config.to_dict(),
            "verification": verification_fields(report), "training": None, "origin": {"kind": "added"}}


def save(ctx: Context, seed: int, preset_name: str = "short-burst") -> Entry:
    saved = save_policy(ctx, make_policy(seed, preset_name), None, {"kind": "added"}, episodes=EPISODES)
    assert saved.created
    return saved.entry


@dataclass
class Built:
    """A workspace with a real ledger of ``N_ENTRIES`` entries and its untouched state."""

    root: Path
    config: Path
    entries: list[Entry]
    data: bytes

    @property
    def path(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def hashes(self) -> list[str]:
        return [e.hash for e in self.entries]

    def context(self) -> Context:
        return Context.open(self.root, self.config)

    def open(self) -> Ledger:
        return Ledger.open(Workspace.open(self.root), self.config)


def build(root: Path, config: Path, n: int = N_ENTRIES, first_seed: int = 0) -> Built:
    ctx = Context.open(root, config)
    entries = [save(ctx, first_seed + i) for i in range(n)]
    return Built(root, config, entries, (root / LEDGER_FILE).read_bytes())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One real ledger of ``N_ENTRIES`` entries, built once; tests get copies of it."""
    base = tmp_path_factory.mktemp("template")
    return build(base / "workspace", base / "config")


@pytest.fixture
def built(template: Built, workspace: Path, tmp_path: Path) -> Built:
    """A copy of the template in this test's workspace, with this user's checkpoint moved along.

    The checkpoint file is named after the workspace path, so the copy's is renamed to
    the name its new workspace gets; its content (index and hash per line) is unchanged.
    """
    config = tmp_path / "config"
    shutil.copytree(template.root, workspace)
    shutil.copytree(template.config, config)
    old = Witness(template.config, template.root).path
    new = Witness(config, workspace).path
    os.replace(config / old.relative_to(template.config), new)
    return Built(workspace, config, template.entries, template.data)


# -- reading and writing the file's lines ---------------------------------------------------------


def entry_lines(data: bytes) -> list[bytes]:
    """The entry lines of a well-formed ledger file, without their leading comma."""
    assert data.startswith(HEADER) and data.endswith(FOOTER)
    middle = data[len(HEADER):-len(FOOTER)]
    return [line.removeprefix(b",") for line in middle.split(b"\n")[:-1]]


def ledger_bytes(lines: list[bytes]) -> bytes:
    """A well-formed ledger file holding ``lines`` (commas put where the layout wants them)."""
    return HEADER + b"".join((b"," if i else b"") + line + b"\n" for i, line in enumerate(lines)) + FOOTER


def write_lines(b: Built, lines: list[bytes]) -> None:
    b.path.write_bytes(ledger_bytes(lines))


def tampered(line: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The line with its JSON changed, hash and signature left as they were (canonical form kept)."""
    data = json.loads(line)
    change(data)
    return canonical_bytes(data)


def full_audit(b: Built, config: Path | None = None) -> tuple[AuditReport, Context]:
    ctx = Context.open(b.root, config or b.config)
    return run_to_end(audit(ctx.ledger, ctx.store)), ctx


def expect_problem(b: Built, index: int, *fragments: str, config: Path | None = None) -> Problem:
    """Fresh open and full audit both name entry ``index``; entries before it stay usable."""
    ledger = Ledger.open(Workspace.open(b.root), config or b.config)
    problem = ledger.problem
    assert problem is not None, "the damage went unnoticed"
    assert problem.index == index, problem
    for fragment in fragments:
        assert fragment in problem.reason, problem
    assert ledger.read_only
    assert len(ledger) == index
    assert [e.hash for e in ledger.entries()] == b.hashes[:index]
    assert ledger.head == (b.hashes[index - 1] if index else GENESIS)
    report, _ = full_audit(b, config)
    assert not report.ok
    assert report.problem == problem
    return problem


def assert_valid_json(b: Built, hashes: list[str]) -> None:
    doc = json.loads(b.path.read_bytes())
    assert doc["format"] == "policyledger/ledger"
    assert doc["version"] == 1
    assert [e["hash"] for e in doc["entries"]] == hashes
    prev = GENESIS
    for i, e in enumerate(doc["entries"]):
        assert e["body"]["index"] == i
        assert e["body"]["prev"] == prev
        prev = e["hash"]


def assert_clean(root: Path, config: Path, n: int) -> AuditReport:
    ctx = Context.open(root, config)
    assert ctx.ledger.problem is None
    assert not ctx.ledger.torn_tail
    assert len(ctx.ledger) == n
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.ok, report.problem
    assert report.entries == n
    return report


def test_built_ledger_is_clean(built: Built) -> None:
    assert Witness(built.config, built.root).hashes() == built.hashes  # the copy has its checkpoint
    assert built.path.read_bytes() == built.data
    assert len(built.entries) == N_ENTRIES
    assert len(set(built.hashes)) == N_ENTRIES
    assert [e.index for e in built.entries] == list(range(N_ENTRIES))
    assert_clean(built.root, built.config, N_ENTRIES)
    assert_valid_json(built, built.hashes)


# -- tampering, one kind at a time -----------------------------------------------------------------

_OTHER = Publisher.generate()


def _edit_timestamp(d: dict[str, Any]) -> None:
    d["body"]["timestamp"] = "2001-01-01T00:00:00Z"


def _edit_mean(d: dict[str, Any]) -> None:
    d["body"]["verification"]["mean"] += 1.0


def _edit_origin(d: dict[str, Any]) -> None:
    d["body"]["origin"] = {"kind": "trained"}


def _edit_policy_hash(d: dict[str, Any]) -> None:
    d["body"]["policy_hash"] = sha256_hex(b"some other policy")


@pytest.mark.parametrize(("index", "edit"), [
    (3, _edit_timestamp), (3, _edit_mean), (3, _edit_origin), (3, _edit_policy_hash),
    (0, _edit_mean), (N_ENTRIES - 1, _edit_origin),
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


def _rewrite_chain(b: Built, index: int, edit: Callable[[dict[str, Any]], None],
                   signer: Publisher) -> list[str]:
    """Edit entry ``index`` and recompute every later hash and prev, re-signed by ``signer``."""
    new: list[Entry] = list(b.entries[:index])
    prev = b.hashes[index - 1] if index else GENESIS
    for old in b.entries[index:]:
        body = copy.deepcopy(old.body)
        if old.index == index:
            edit({"body": body})
        body["prev"] = prev
        body["publisher"] = signer.public_hex
        entry = seal(body, signer)
        new.append(entry)
        prev = entry.hash
    write_lines(b, [e.line() for e in new])
    return [e.hash for e in new]


@pytest.mark.parametrize("index", [0, 2, N_ENTRIES - 1])
def test_recomputed_history_caught_by_the_witness(built: Built, tmp_path: Path, index: int) -> None:
    forged = _rewrite_chain(built, index, _edit_timestamp, _OTHER)  # figures are checked on their own
    assert forged[:index] == built.hashes[:index]
    assert all(f != h for f, h in zip(forged[index:], built.hashes[index:], strict=True))
    # The forgery is internally consistent: hashes, links and signatures all check out...
    assert_clean(built.root, tmp_path / "fresh-config", N_ENTRIES)
    # ...so only this user's checkpoint catches it, at the edited entry.
    expect_problem(built, index, "differs from the entry seen here before", "history rewritten")


@pytest.mark.parametrize("forge", ["other-key", "other-entry", "bit-flip"])
def test_replaced_signature_found_by_audit(built: Built, forge: str) -> None:
    index = 3
    lines = entry_lines(built.data)

    def change(d: dict[str, Any]) -> None:
        if forge == "other-key":
            d["signature"] = _OTHER.sign(d["hash"])
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
    d["body"]["publisher"] = _OTHER.public_hex


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


def _cut_inside(b: Built, index: int, keep: int) -> bytes:
    """The file cut ``keep`` bytes into entry ``index``'s line (its comma included)."""
    lines = entry_lines(b.data)
    start = len(ledger_bytes(lines[:index]).removesuffix(FOOTER))
    cut = b.data[:start + keep]
    b.path.write_bytes(cut)
    return cut


@pytest.mark.parametrize("index", [0, 3, N_ENTRIES - 1])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_cut_mid_entry_caught_by_the_witness(built: Built, index: int, where: str) -> None:
    length = len(entry_lines(built.data)[index]) + (1 if index else 0)
    keep = {"start": 1, "middle": length // 2, "end": length}[where]  # "end": line complete, no newline
    _cut_inside(built, index, keep)
    if where != "end":
        expect_problem(built, index, "truncated or rolled back")
    elif index < N_ENTRIES - 1:  # a whole entry without its newline is kept; the rest is missing
        expect_problem(built, index + 1, "truncated or rolled back")
    else:
        ledger = built.open()
        assert ledger.problem is None and ledger.torn_tail and len(ledger) == N_ENTRIES


@pytest.mark.parametrize("where", ["comma", "middle", "no-newline", "no-footer", "half-footer"])
def test_cut_mid_entry_without_witness_is_a_torn_append(
        built: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str) -> None:
    last = N_ENTRIES - 1
    length = len(entry_lines(built.data)[last]) + 1
    if where == "no-footer":
        built.path.write_bytes(built.data.removesuffix(FOOTER))
        kept = N_ENTRIES
    elif where == "half-footer":
        built.path.write_bytes(built.data.removesuffix(FOOTER) + FOOTER[:1])
        kept = N_ENTRIES
    else:
        keep = {"comma": 1, "middle": length // 2, "no-newline": length}[where]
        _cut_inside(built, last, keep)
        kept = N_ENTRIES if where == "no-newline" else last  # a whole entry is never dropped
    torn_bytes = built.path.read_bytes()[len(ledger_bytes(entry_lines(built.data)[:kept])) - len(FOOTER):]
    fresh = tmp_path / "fresh-config"
    caplog.set_level(logging.WARNING, logger=LEDGER_LOG)
    ctx = Context.open(built.root, fresh)
    assert ctx.ledger.problem is None
    assert ctx.ledger.torn_tail
    assert not ctx.ledger.read_only
    assert [e.hash for e in ctx.ledger.entries()] == built.hashes[:kept]
    assert any("incomplete trailing entry" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    # Still usable: the next append replaces the torn bytes and continues the chain.
    entry = save(ctx, 100)
    assert entry.index == kept
    assert entry.prev == built.hashes[kept - 1]
    saved = sorted(built.root.glob(f"{LEDGER_FILE}.torn-*"))
    if where in ("comma", "middle"):  # bytes of an entry were overwritten: kept beside the ledger first
        assert any("discarding the incomplete trailing bytes" in r.getMessage() for r in caplog.records)
        assert [p.read_bytes() for p in saved] == [torn_bytes]
    else:
        assert saved == []
    assert_valid_json(built, [*built.hashes[:kept], entry.hash])
    assert built.path.read_bytes().startswith(ledger_bytes(entry_lines(built.data)[:kept])[:-len(FOOTER)])
    assert_clean(built.root, fresh, kept + 1)


# -- a problem is read-only; repair ---------------------------------------------------------------


def _damage_edit(b: Built) -> int:
    lines = entry_lines(b.data)
    lines[3] = tampered(lines[3], _edit_mean)
    write_lines(b, lines)
    return 3


def _damage_delete(b: Built) -> int:
    lines = entry_lines(b.data)
    del lines[2]
    write_lines(b, lines)
    return 2


def _damage_swap(b: Built) -> int:
    lines = entry_lines(b.data)
    lines[1], lines[4] = lines[4], lines[1]
    write_lines(b, lines)
    return 1


def _damage_truncate(b: Built) -> int:
    write_lines(b, entry_lines(b.data)[:4])
    return 4


def _damage_rewrite(b: Built) -> int:
    _rewrite_chain(b, 2, _edit_mean, _OTHER)
    return 2


def _damage_cut(b: Built) -> int:
    _cut_inside(b, 3, 40)
    return 3


def _damage_garbage(b: Built) -> int:
    b.path.write_bytes(b"this is not a ledger\n")
    return 0


DAMAGES = [_damage_edit, _damage_delete, _damage_swap, _damage_truncate, _damage_rewrite, _damage_cut,
           _damage_garbage]
DAMAGE_IDS = ["edit", "delete", "swap", "truncate", "rewrite", "cut", "garbage"]


@pytest.mark.parametrize("damage", DAMAGES, ids=DAMAGE_IDS)
def test_appends_refused_while_a_problem_is_open(built: Built, damage: Callable[[Built], int]) -> None:
    index = damage(built)
    damaged = built.path.read_bytes()
    witness_path = built.context().ledger.witness.path
    witness = witness_path.read_bytes()
    ctx = built.context()
    assert ctx.ledger.problem is not None and ctx.ledger.problem.index == index
    with pytest.raises(LedgerError, match="read-only until repaired"):
        ctx.ledger.append(fields_for(make_policy(100)), ctx.publisher)
    with pytest.raises(LedgerError, match="read-only until repaired"):
        save_policy(ctx, make_policy(101), None, {"kind": "added"}, episodes=EPISODES)
    assert not ctx.store.path_of(make_policy(101).hash).exists()  # the refused save left nothing
    assert built.path.read_bytes() == damaged
    assert witness_path.read_bytes() == witness


def test_append_refused_from_a_context_opened_before_the_truncation(built: Built) -> None:
    ctx = built.context()  # a long-running process with an up-to-date view
    _damage_truncate(built)
    damaged = built.path.read_bytes()
    with pytest.raises(LedgerError, match="truncated or rolled back"):
        ctx.ledger.append(fields_for(make_policy(100)), ctx.publisher)
    assert built.path.read_bytes() == damaged


@pytest.mark.parametrize("damage", DAMAGES, ids=DAMAGE_IDS)
def test_repair_keeps_a_backup_and_continues(built: Built, damage: Callable[[Built], int]) -> None:
    index = damage(built)
    damaged = built.path.read_bytes()
    ctx = built.context()
    assert ctx.ledger.problem is not None and ctx.ledger.problem.index == index
    backup = ctx.ledger.repair()
    assert backup.parent == built.root
    assert backup.name.startswith(f"{LEDGER_FILE}.damaged-")
    assert backup.read_bytes() == damaged
    assert ctx.ledger.problem is None
    assert len(ctx.ledger) == index
    # The kept entries are byte for byte the good ones.
    assert built.path.read_bytes() == ledger_bytes(entry_lines(built.data)[:index])
    assert_clean(built.root, built.config, index)
    entry = save(ctx, 100)
    assert entry.index == index
    assert entry.prev == (built.hashes[index - 1] if index else GENESIS)
    assert_valid_json(built, [*built.hashes[:index], entry.hash])
    assert_clean(built.root, built.config, index + 1)
    assert backup.read_bytes() == damaged


def test_repair_twice_keeps_both_backups(built: Built) -> None:
    _damage_edit(built)
    first_damage = built.path.read_bytes()
    first = built.context().ledger.repair()
    _damage_garbage(built)
    second = built.context().ledger.repair()
    assert first != second
    assert first.read_bytes() == first_damage
    assert second.read_bytes() == b"this is not a ledger\n"
    assert_clean(built.root, built.config, 0)


def test_repair_of_an_intact_ledger_is_refused(built: Built) -> None:
    ctx = built.context()
    with pytest.raises(LedgerError, match="nothing to repair"):
        ctx.ledger.repair()
    assert built.path.read_bytes() == built.data
    assert sorted(p.name for p in built.root.iterdir() if "damaged" in p.name) == []


def test_repair_of_an_empty_workspace_is_refused(workspace: Path, tmp_path: Path) -> None:
    ctx = Context.open(workspace, tmp_path / "config")
    with pytest.raises(LedgerError, match="nothing to repair"):
        ctx.ledger.repair()


def _bad_signature_found_by_audit(built: Built) -> tuple[bytes, Context]:
    """Entry 3 signed by another key (the fast scan does not check signatures; the audit does)."""
    lines = entry_lines(built.data)
    lines[3] = tampered(lines[3], lambda d: d.update(signature=_OTHER.sign(d["hash"])))
    write_lines(built, lines)
    damaged = built.path.read_bytes()
    ctx = built.context()
    assert ctx.ledger.problem is None  # not seen before the audit
    report = run_to_end(audit(ctx.ledger, ctx.store))
    assert report.problem is not None and report.problem.index == 3
    assert ctx.ledger.read_only
    return damaged, ctx


def test_append_refused_after_audit_finds_a_bad_signature(built: Built) -> None:
    damaged, ctx = _bad_signature_found_by_audit(built)
    witness = Witness(built.config, built.root).path.read_bytes()
    for attempt in range(2):  # each append reloads the file first: the audit's finding survives
        with pytest.raises(LedgerError, match="read-only until repaired: entry 3"):
            save_policy(ctx, make_policy(100 + attempt), None, {"kind": "added"}, episodes=EPISODES)
        with pytest.raises(LedgerError, match="read-only until repaired: entry 3"):
            ctx.ledger.append(fields_for(make_policy(102 + attempt)), ctx.publisher)
        assert ctx.ledger.problem is not None and ctx.ledger.problem.index == 3
        assert ctx.ledger.read_only and len(ctx.ledger) == 3
    assert built.path.read_bytes() == damaged
    assert Witness(built.config, built.root).path.read_bytes() == witness


def test_repair_after_audit_finds_a_bad_signature(built: Built) -> None:
    damaged, ctx = _bad_signature_found_by_audit(built)
    backup = ctx.ledger.repair()
    assert backup.parent == built.root and backup.name.startswith(f"{LEDGER_FILE}.damaged-")
    assert backup.read_bytes() == damaged
    assert ctx.ledger.problem is None and not ctx.ledger.read_only
    assert len(ctx.ledger) == 3
    assert built.path.read_bytes() == ledger_bytes(entry_lines(built.data)[:3])
    assert_clean(built.root, built.config, 3)
    entry = save(ctx, 100)  # continues from the last good entry
    assert entry.index == 3 and entry.prev == built.hashes[2]
    assert_valid_json(built, [*built.hashes[:3], entry.hash])
    assert_clean(built.root, built.config, 4)
    assert backup.read_bytes() == damaged
    with pytest.raises(LedgerError, match="nothing to repair"):  # the audit's finding is cleared
        ctx.ledger.repair()


def test_repair_of_a_deleted_ledger(built: Built) -> None:
    built.path.unlink()
    ctx = built.context()
    found = ctx.ledger.problem
    assert found is not None and found.index == 0  # the checkpoint remembers the entries
    backup = ctx.ledger.repair()
    assert backup.parent == built.root and backup.name.startswith(f"{LEDGER_FILE}.damaged-")
    assert backup.read_bytes() == b""  # records that the ledger file was gone
    assert built.path.read_bytes() == EMPTY
    assert ctx.ledger.problem is None and len(ctx.ledger) == 0
    assert_clean(built.root, built.config, 0)
    assert save(ctx, 100).prev == GENESIS
    assert_clean(built.root, built.config, 1)


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
    _damage_edit(built)
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


def test_workspaces_sharing_a_config_dir_do_not_interfere(tmp_path: Path) -> None:
    config = tmp_path / "config"
    a = build(tmp_path / "a", config, 4)
    b = build(tmp_path / "b", config, 2, first_seed=50)
    assert a.open().witness.path != b.open().witness.path
    assert_clean(a.root, config, 4)
    assert_clean(b.root, config, 2)


# -- the file format on append --------------------------------------------------------------------


def test_append_keeps_valid_json_and_never_rewrites(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx = Context.open(workspace, config)
    path = workspace / LEDGER_FILE
    b = Built(workspace, config, [], b"")
    hashes: list[str] = []
    for seed in range(8):
        before = path.read_bytes() if path.exists() else None
        inode = os.stat(path).st_ino if path.exists() else None
        if seed % 2:
            entry = save(ctx, seed)
        else:
            ctx.store.put(make_policy(seed))
            entry = ctx.ledger.append(fields_for(make_policy(seed)), ctx.publisher)
        hashes.append(entry.hash)
        after = path.read_bytes()
        assert_valid_json(b, hashes)
        assert after.endswith(entry.line() + b"\n" + FOOTER)
        if before is not None:
            assert before.endswith(FOOTER)
            assert after.startswith(before[:-len(FOOTER)])
            assert len(after) == len(before) + len(entry.line()) + 2  # ",", "\n"
            assert os.stat(path).st_ino == inode  # written in place, not replaced
    assert_clean(workspace, config, 8)


def test_append_fills_in_the_chain_fields(built: Built) -> None:
    ctx = built.context()
    ctx.store.put(make_policy(100))
    entry = ctx.ledger.append(fields_for(make_policy(100)), ctx.publisher)
    assert entry.index == N_ENTRIES
    assert entry.prev == built.hashes[-1]
    assert entry.publisher == ctx.publisher.public_hex
    assert entry.signature_valid()
    assert built.entries[0].prev == GENESIS
    assert all(built.entries[i].prev == built.hashes[i - 1] for i in range(1, N_ENTRIES))


def test_dedupe_same_policy_gives_one_entry(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    ctx = Context.open(workspace, config)
    stale = Context.open(workspace, config)  # opened before anything was saved
    policy = make_policy(7)
    first = save_policy(ctx, policy, None, {"kind": "added"}, episodes=EPISODES)
    data = (workspace / LEDGER_FILE).read_bytes()
    second = save_policy(ctx, policy, None, {"kind": "added"}, episodes=EPISODES)
    third = save_policy(stale, policy, None, {"kind": "trained"}, episodes=EPISODES)
    assert first.created
    assert not second.created and not third.created
    assert second.report is None
    assert second.entry.hash == third.entry.hash == first.entry.hash
    assert (workspace / LEDGER_FILE).read_bytes() == data
    assert len(Context.open(workspace, config).ledger) == 1
    # The same actions under another configuration are another policy.
    other = Policy(config=preset("standard"), actions=policy.actions)
    assert save_policy(ctx, other, None, {"kind": "added"}, episodes=EPISODES).created
    assert_clean(workspace, config, 2)


def test_witness_and_key_live_in_the_config_dir(built: Built) -> None:
    ctx = built.context()
    witness = ctx.ledger.witness.path
    assert witness.is_file()
    assert witness.is_relative_to(built.config)
    assert not witness.resolve().is_relative_to(built.root.resolve())
    assert witness.read_text().splitlines() == [f"{i} {h}" for i, h in enumerate(built.hashes)]
    assert stat.S_IMODE(witness.stat().st_mode) & 0o077 == 0
    key = built.config / KEY_FILE
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # Nothing per-user in the workspace: only the ledger (and its lock) and the policy files.
    for path in built.root.rglob("*"):
        rel = path.relative_to(built.root)
        assert rel.parts[0] in ("policies", LEDGER_FILE, f"{LEDGER_FILE}.lock"), rel
        assert path.suffix not in (".pem", ".log")
        if path.is_file() and rel.parts[0] == "policies":
            assert path.name == f"{sha256_hex(path.read_bytes())}.json"


def _ledger_of_distinct_policies(tmp_path: Path, count: int) -> tuple[Any, Path]:
    """A workspace with ``count`` added policies (one changed action each) and its config folder."""
    from policyledger_core.policy import MYOPIC_ACTIONS, Policy
    from policyledger_core.sim.config import preset as env_preset
    from policyledger_core.workspace.context import Context
    from policyledger_core.workspace.publish import save_policy

    config = tmp_path / "cfg"
    ctx = Context.open(tmp_path / "ws", config)
    for i in range(count):
        actions = list(MYOPIC_ACTIONS)
        actions[i] = (actions[i] + 1) % 5
        save_policy(ctx, Policy(env_preset("short-burst"), tuple(actions)), None, {"kind": "added"},
                    episodes=50)
    return ctx, config


def test_a_problem_found_by_an_audit_survives_a_restart(tmp_path: Path) -> None:
    """A bad signature is invisible to the fast scan; the audit's finding is remembered per user."""
    from policyledger_core.learn.single import run_to_end
    from policyledger_core.ledger.chain import Ledger, LedgerError
    from policyledger_core.workspace.audit import audit

    ctx, config = _ledger_of_distinct_policies(tmp_path, 3)
    path = ctx.workspace.ledger_path
    lines = path.read_bytes().split(b"\n")
    signature = lines[2][-130:-2]  # entry 1's signature hex
    lines[2] = lines[2].replace(signature, bytes(reversed(signature)))
    path.write_bytes(b"\n".join(lines))
    assert Ledger.open(ctx.workspace, config).problem is None  # the scan cannot see it
    report = run_to_end(audit(Ledger.open(ctx.workspace, config), ctx.store))
    assert report.problem is not None and report.problem.index == 1
    reopened = Ledger.open(ctx.workspace, config)  # a new process, same user
    assert reopened.problem is not None and reopened.problem.index == 1
    with pytest.raises(LedgerError):
        reopened.append({}, ctx.publisher)
    lines[2] = lines[2].replace(bytes(reversed(signature)), signature)  # the signature put back
    path.write_bytes(b"\n".join(lines))
    fixed = Ledger.open(ctx.workspace, config)
    assert fixed.problem is not None  # still remembered until an audit looks again
    assert run_to_end(audit(fixed, ctx.store)).ok
    assert Ledger.open(ctx.workspace, config).problem is None


def test_set_aside_reads_what_it_can_after_the_problem(tmp_path: Path) -> None:
    """For display only: entries from the first problem on, read without trusting them."""
    from policyledger_core.ledger.chain import Ledger

    ctx, config = _ledger_of_distinct_policies(tmp_path, 4)
    assert Ledger.open(ctx.workspace, config).set_aside() == []
    path = ctx.workspace.ledger_path
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"mean":', b'"mean":7', 1)  # entry 1 edited
    lines[4] = b",{not json"  # entry 3 garbage
    path.write_bytes(b"\n".join(lines))
    ledger = Ledger.open(ctx.workspace, config)
    aside = ledger.set_aside()
    assert [a.index for a in aside] == [1, 2, 3]
    assert aside[1].policy_hash == ctx.ledger.entry(2).policy_hash
    assert aside[2].policy_hash is None and aside[2].mean is None
