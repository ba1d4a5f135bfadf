"""While a problem is open appends are refused; repair keeps a backup and continues."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.ledger.entry import GENESIS
from policyledger_core.ledger.layout import EMPTY
from policyledger_core.paths import LEDGER_FILE
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_builder import (
    DAMAGE_IDS,
    DAMAGES,
    EPISODES,
    OTHER_KEY,
    Built,
    assert_clean,
    assert_valid_json,
    damage_edit,
    damage_garbage,
    damage_truncate,
    entry_lines,
    fields_for,
    ledger_bytes,
    make_policy,
    save,
    tampered,
    write_lines,
)


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
    damage_truncate(built)
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
    damage_edit(built)
    first_damage = built.path.read_bytes()
    first = built.context().ledger.repair()
    damage_garbage(built)
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
    lines[3] = tampered(lines[3], lambda d: d.update(signature=OTHER_KEY.sign(d["hash"])))
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
