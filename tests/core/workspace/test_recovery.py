"""Repair keeps every valid entry: later entries that stand on their own are re-chained as recovered.

Before, a repair dropped every entry after the first bad one, even valid,
signed entries made later (they survived only in the backup file).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from policyledger_core.cli.main import main
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.entry import Origin
from policyledger_core.paths import LEDGER_FILE
from policyledger_core.verify.suite import verify
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import rank_ledger
from policyledger_core.workspace.recovery import apply_repair, plan_repair, repair
from tests.helpers import ledger_builder as base
from tests.helpers.ledger_builder import (
    EPISODES,
    N_ENTRIES,
    Built,
    edit_mean,
    entry_lines,
    ledger_bytes,
    make_policy,
    tampered,
    write_lines,
)


def _edit(b: Built, index: int) -> None:
    lines = entry_lines(b.data)
    lines[index] = tampered(lines[index], edit_mean)
    write_lines(b, lines)


def _snapshot(b: Built) -> dict[str, bytes]:
    files = [p for p in (*b.root.rglob("*"), *b.config.rglob("*")) if p.is_file()]
    return {str(p): p.read_bytes() for p in files}


def test_repair_re_chains_the_valid_entries_after_the_damage(built: Built) -> None:
    _edit(built, 2)
    ctx = built.context()
    result = run_to_end(repair(ctx))
    plan = result.plan
    assert plan.kept == 2
    assert [r.index for r in plan.recovered] == [3, 4, 5]
    assert [(x.index, "hash does not match" in x.reason) for x in plan.left_out] == [(2, True)]
    # The file: entries 0 and 1 byte for byte, then one new entry per recovered one.
    entries = ctx.ledger.entries()
    assert [e.hash for e in entries[:2]] == built.hashes[:2]
    assert len(entries) == 5
    for new, old_index in zip(entries[2:], [3, 4, 5], strict=True):
        old = built.entries[old_index]
        assert new.policy_hash == old.policy_hash
        assert new.verification == old.verification
        assert new.origin == Origin("recovered", backup=result.backup.name, index=old_index,
                                    entry_hash=old.hash, publisher=old.publisher, signature=old.signature)
    assert result.backup.name.startswith(f"{LEDGER_FILE}.damaged-")
    report = run_to_end(audit(ctx.ledger, ctx.store, replay=True))
    assert report.ok, report.problem
    rows = rank_ledger(ctx.ledger, ctx.reproductions)
    assert {r.policy_hash for r in rows} == {built.entries[i].policy_hash for i in (0, 1, 3, 4, 5)}
    assert {r.origin for r in rows if r.first_index >= 2} == {"recovered"}


def test_a_deleted_entry_loses_nothing_else(built: Built) -> None:
    lines = entry_lines(built.data)
    del lines[2]
    write_lines(built, lines)
    result = run_to_end(repair(built.context()))
    assert result.plan.kept == 2 and result.plan.left_out == ()
    assert [r.entry.hash for r in result.plan.recovered] == built.hashes[3:]


def test_entries_that_do_not_stand_alone_are_left_out_with_their_reason(built: Built) -> None:
    _edit(built, 1)
    ctx = built.context()
    ctx.store.path_of(built.entries[3].policy_hash).unlink()
    plan = run_to_end(plan_repair(ctx))
    reasons = {x.index: x.reason for x in plan.left_out}
    assert set(reasons) == {1, 3}
    assert "file missing" in reasons[3]
    assert [r.index for r in plan.recovered] == [2, 4, 5]


def test_a_later_entry_with_inflated_figures_is_left_out(built: Built) -> None:
    """Signed and hashed correctly, but its mean is not what its policy plays."""
    ctx = built.context()
    policy = make_policy(77)
    ctx.store.put(policy)
    fields = base.fields_for(policy)
    fields["verification"]["mean"] += 30
    fields["verification"]["fraction_of_optimum"] = fields["verification"]["mean"] / \
        fields["verification"]["optimum"]
    ctx.ledger.append(fields, ctx.publisher)
    data = built.path.read_bytes()
    lines = entry_lines(data)
    lines[0] = tampered(lines[0], edit_mean)
    built.path.write_bytes(ledger_bytes(lines))
    plan = run_to_end(plan_repair(built.context()))
    reasons = {x.index: x.reason for x in plan.left_out}
    assert set(reasons) == {0, N_ENTRIES}
    assert reasons[N_ENTRIES].startswith("recorded mean")
    assert [r.index for r in plan.recovered] == list(range(1, N_ENTRIES))


def test_the_plan_writes_nothing_and_a_changed_file_is_not_repaired_from_it(built: Built) -> None:
    _edit(built, 2)
    ctx = built.context()
    before = _snapshot(built)
    plan = run_to_end(plan_repair(ctx))
    assert _snapshot(built) == before
    built.path.write_bytes(built.path.read_bytes() + b"\n")  # changed since the plan
    with pytest.raises(LedgerError, match="changed since the repair was planned"):
        apply_repair(built.context(), plan)
    assert built.path.read_bytes() == before[str(built.path)] + b"\n"


def test_a_ledger_with_crlf_line_endings_is_recovered_whole(built: Built) -> None:
    built.path.write_bytes(built.data.replace(b"\n", b"\r\n"))
    result = run_to_end(repair(built.context()))
    assert result.plan.kept == 0 and result.plan.left_out == ()
    assert [r.entry.hash for r in result.plan.recovered] == built.hashes
    assert len(built.context().ledger) == N_ENTRIES


def test_cli_repair_reports_what_was_kept_recovered_and_left_out(built: Built,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _edit(built, 4)
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(built.config))
    out, err = io.StringIO(), io.StringIO()
    assert main(["repair", "--workspace", str(built.root), "--json"], out=out, err=err) == 0, err.getvalue()
    data = json.loads(out.getvalue())
    assert data["kept"] == 4
    assert [r["from_index"] for r in data["recovered"]] == [5]
    assert [r["entry_index"] for r in data["recovered"]] == [4]
    assert [x["index"] for x in data["left_out"]] == [4]
    text = io.StringIO()
    lines = built.path.read_bytes()
    assert lines.count(b"\n") == N_ENTRIES + 1  # header, 5 entries, closing line
    assert main(["verify", "--replay", "--workspace", str(built.root)], out=text, err=err) == 0


def test_recovered_entries_replay_to_their_figures(built: Built) -> None:
    _edit(built, 3)
    result = run_to_end(repair(built.context()))
    for entry in result.appended:
        report = verify(built.context().store.get(entry.policy_hash), EPISODES)
        assert entry.verification.replay_digest == report.replay_digest


def test_plan_lines_read_well(built: Built) -> None:
    _edit(built, 2)
    lines = run_to_end(plan_repair(built.context())).lines()
    assert lines[0] == "keeps entries 0 to 1 as they are"
    assert lines[1] == "re-chains 3 later valid entries as recovered: 3, 4, 5"
    assert lines[2].startswith("leaves out entry 2: hash does not match")


def test_nothing_to_repair_on_an_intact_ledger(built: Built, tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="nothing to repair"):
        run_to_end(plan_repair(Context.open(built.root, built.config)))
