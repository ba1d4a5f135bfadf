"""The Ledger tab: listing, verification in a worker, the damage banner, and repair.

Ledgers are built through the core (``publish.save_policy``) and damaged on
disk the way an editor or a bad sync would; the tab must show what the core
finds, at the right row, and repair only after confirmation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.ledger_tab import LedgerTab
from app.ledger_table import (
    AFTER_BACKGROUND,
    COLUMNS,
    HASH,
    POLICY,
    PROBLEM_BACKGROUND,
    PUBLISHER,
    STATUS,
    TIME,
    short,
)
from app.model import AppModel
from policyledger_core.ledger.entry import ENTRY_SCHEMA, ENTRY_VERSION, GENESIS, seal
from policyledger_core.ledger.layout import FOOTER, HEADER
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim.config import ENV_ID, preset
from policyledger_core.workspace.publish import save_policy
from policyledger_core.workspace.reproduced import pending

ENTRIES = 5
EPISODES = 50  # verification episodes per saved policy: enough for a real entry, and fast
TIMEOUT_MS = 20_000
EDITED = "hash does not match its content (entry edited)"
BAD_SIGNATURE = "signature does not verify with the entry's key"


def _policy(k: int) -> Policy:
    """The myopic policy with a few non-terminal actions changed (distinct k, distinct policy)."""
    actions = list(MYOPIC_ACTIONS)
    free = [obs for obs in range(len(actions)) if obs not in TERMINAL_OBSERVATIONS]
    for obs in free[3 * k:3 * k + 3]:
        actions[obs] = (actions[obs] + 1) % 5
    return Policy(preset("standard"), tuple(actions))


@pytest.fixture
def model(tmp_path: Path) -> AppModel:
    app_model = AppModel(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    for k in range(ENTRIES):
        save_policy(app_model.ctx, _policy(k), None, {"kind": "added"}, episodes=EPISODES)
    return app_model


@pytest.fixture
def tab(qtbot: Any, model: AppModel) -> Iterator[LedgerTab]:
    widget = LedgerTab(model)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()


def _ledger_lines(model: AppModel) -> list[bytes]:
    return model.ctx.workspace.ledger_path.read_bytes().split(b"\n")


def _write_lines(model: AppModel, lines: list[bytes]) -> None:
    model.ctx.workspace.ledger_path.write_bytes(b"\n".join(lines))


def _tamper_entry(model: AppModel, index: int) -> None:
    """Change one field of entry ``index`` in ledger.json (its origin), leaving hash and signature."""
    lines = _ledger_lines(model)
    line = lines[1 + index]
    assert b'"origin":{"kind":"added"}' in line
    lines[1 + index] = line.replace(b'"origin":{"kind":"added"}', b'"origin":{"kind":"trained"}')
    _write_lines(model, lines)


def _swap_signature(model: AppModel, index: int) -> None:
    """Give entry ``index`` another entry's signature: valid hex, wrong for this hash."""
    lines = _ledger_lines(model)
    other = lines[index]  # entry index - 1
    lines[1 + index] = lines[1 + index][:-130] + other[-130:]
    assert lines[1 + index] != _ledger_lines(model)[1 + index]
    _write_lines(model, lines)


def _verify(qtbot: Any, tab: LedgerTab, replay: bool = False) -> Any:
    tab.replay_check.setChecked(replay)
    with qtbot.waitSignal(tab.verification_finished, timeout=TIMEOUT_MS) as blocker:
        qtbot.mouseClick(tab.verify_button, Qt.MouseButton.LeftButton)
        assert tab.running and not tab.verify_button.isEnabled()
    assert not tab.running and tab.verify_button.isEnabled()
    return blocker.args[0]


def _cell(tab: LedgerTab, row: int, column: int, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> Any:
    table = tab.table_model
    return table.data(table.index(row, column), role)


def _statuses(tab: LedgerTab) -> list[str]:
    return [_cell(tab, row, STATUS) for row in range(tab.table_model.rowCount())]


def _set_answer(monkeypatch: pytest.MonkeyPatch, answer: QMessageBox.StandardButton) -> list[str]:
    asked: list[str] = []

    def question(*args: Any, **kwargs: Any) -> QMessageBox.StandardButton:
        asked.append(str(args[2]))
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def _backups(model: AppModel) -> list[Path]:
    path = model.ctx.workspace.ledger_path
    return sorted(path.parent.glob(path.name + ".damaged-*"))


# -- listing ----------------------------------------------------------------------------------


def test_table_lists_every_entry(tab: LedgerTab, model: AppModel) -> None:
    entries = model.entries()
    table = tab.table
    assert table.objectName() == "ledgerTable" and tab.objectName() == "ledgerTab"
    assert tab.table_model.rowCount() == ENTRIES and tab.table_model.columnCount() == len(COLUMNS)
    for row, entry in enumerate(entries):
        assert _cell(tab, row, 0) == str(entry.index)
        assert entry.policy_hash.startswith(_cell(tab, row, POLICY).rstrip("\u2026"))
        assert _cell(tab, row, POLICY, Qt.ItemDataRole.ToolTipRole) == entry.policy_hash
        assert entry.hash.startswith(_cell(tab, row, HASH).rstrip("\u2026"))
        assert _cell(tab, row, PUBLISHER) == "you"
        assert _cell(tab, row, TIME)
        assert _cell(tab, row, STATUS) == "chain checked"
    assert f"{entries[0].verification.mean:.2f}" in _cell(tab, 0, 3)
    assert tab.banner.isHidden()


def test_table_follows_ledger_changes(tab: LedgerTab, model: AppModel) -> None:
    save_policy(model.ctx, _policy(ENTRIES), None, {"kind": "added"}, episodes=EPISODES)
    model.notify_changed()
    assert tab.table_model.rowCount() == ENTRIES + 1


# -- verifying --------------------------------------------------------------------------------


@pytest.mark.parametrize("replay", [False, True])
def test_verify_intact_ledger_marks_all_valid(qtbot: Any, tab: LedgerTab, replay: bool) -> None:
    report = _verify(qtbot, tab, replay)
    assert report.ok and report.entries == ENTRIES
    assert _statuses(tab) == ["verified"] * ENTRIES
    assert tab.banner.isHidden()
    assert tab.summary.text().startswith(f"Ledger intact: {ENTRIES} entries")
    assert ("policies replayed" in tab.summary.text()) == replay
    assert tab.progress.objectName() == "ledgerProgress" and tab.progress.value() == tab.progress.maximum()


def test_verify_with_replay_marks_the_entries_reproduced_here(qtbot: Any, model: AppModel,
                                                              tmp_path: Path) -> None:
    other = AppModel(workspace=model.workspace_root, config_dir=tmp_path / "cfg-elsewhere")
    widget = LedgerTab(other)
    qtbot.addWidget(widget)
    assert pending(other.ctx.ledger, other.ctx.reproductions) == list(range(ENTRIES))
    assert _verify(qtbot, widget).ok
    assert pending(other.ctx.ledger, other.ctx.reproductions) == list(range(ENTRIES))  # nothing replayed
    with qtbot.waitSignal(other.reproductions_changed, timeout=TIMEOUT_MS):  # the marketplace re-ranks
        assert _verify(qtbot, widget, replay=True).ok
    assert pending(other.ctx.ledger, other.ctx.reproductions) == []
    widget.shutdown()


def test_tampered_ledger_shows_banner_and_problem_row(qtbot: Any, tab: LedgerTab, model: AppModel) -> None:
    _tamper_entry(model, 2)
    model.reload()
    assert model.ctx.ledger.read_only
    assert tab.banner.isVisibleTo(tab) and "entry 2" in tab.banner_text.text()
    assert "read-only" in tab.banner_text.text() and tab.repair_button.isEnabled()
    assert tab.table_model.rowCount() == ENTRIES  # every entry is listed, with its status
    after = ["after the problem"] * (ENTRIES - 3)
    assert _statuses(tab) == ["chain checked", "chain checked", f"PROBLEM: {EDITED}", *after]
    assert _cell(tab, 2, 0) == "2"
    assert _cell(tab, 2, STATUS, Qt.ItemDataRole.BackgroundRole) == PROBLEM_BACKGROUND
    assert _cell(tab, 1, STATUS, Qt.ItemDataRole.BackgroundRole) is None
    assert _cell(tab, 3, STATUS, Qt.ItemDataRole.BackgroundRole) == AFTER_BACKGROUND
    entry_3 = json.loads(model.ctx.workspace.ledger_path.read_bytes().split(b"\n")[4][1:])
    assert _cell(tab, 3, 2) == short(entry_3["body"]["policy_hash"])  # read, though set aside

    report = _verify(qtbot, tab)
    assert report.problem.index == 2
    assert _statuses(tab) == ["verified", "verified", f"PROBLEM: {EDITED}", *after]
    assert tab.summary.text() == f"Problem at entry 2: {EDITED}"


def test_bad_signature_found_only_by_the_audit(qtbot: Any, tab: LedgerTab, model: AppModel) -> None:
    _swap_signature(model, 3)
    model.reload()
    assert not model.ctx.ledger.read_only  # the fast scan does not check signatures
    assert tab.banner.isHidden()

    with qtbot.waitSignal(model.ledger_changed, timeout=TIMEOUT_MS):  # the status bar must hear of it
        report = _verify(qtbot, tab)
    assert report.problem.index == 3
    after = ["after the problem"] * (ENTRIES - 4)
    assert _statuses(tab) == ["verified"] * 3 + [f"PROBLEM: {BAD_SIGNATURE}", *after]
    assert tab.summary.text() == f"Problem at entry 3: {BAD_SIGNATURE}"
    assert tab.banner.isVisibleTo(tab) and "entry 3" in tab.banner_text.text()


# -- repairing --------------------------------------------------------------------------------


def test_repair_keeps_a_backup_and_reopens_the_ledger(qtbot: Any, tab: LedgerTab, model: AppModel,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _tamper_entry(model, 2)
    model.reload()
    damaged = model.ctx.workspace.ledger_path.read_bytes()
    asked = _set_answer(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(tab.repair_finished, timeout=TIMEOUT_MS):
        tab.repair_button.click()
    assert len(asked) == 1 and "backup" in asked[0]
    # The plan is shown before the user confirms: what is kept, re-chained and left out.
    assert "keeps entries 0 to 1 as they are" in asked[0]
    assert "re-chains 2 later valid entries as recovered: 3, 4" in asked[0]
    assert "leaves out entry 2: hash does not match" in asked[0]
    backups = _backups(model)
    assert len(backups) == 1 and backups[0].read_bytes() == damaged
    assert str(backups[0]) in tab.summary.text()
    assert tab.banner.isHidden() and not model.ctx.ledger.read_only
    assert tab.table_model.rowCount() == ENTRIES - 1  # the valid later entries were re-chained
    assert [e.origin.kind for e in model.ctx.ledger.entries()[2:]] == ["recovered"] * (ENTRIES - 3)
    saved = save_policy(model.ctx, _policy(ENTRIES), None, {"kind": "added"}, episodes=EPISODES)
    assert saved.created and saved.entry.index == ENTRIES - 1


def test_repair_after_audit_problem(qtbot: Any, tab: LedgerTab, model: AppModel,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _swap_signature(model, 3)
    _verify(qtbot, tab)
    _set_answer(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(tab.repair_finished, timeout=TIMEOUT_MS):
        tab.repair()
    assert len(_backups(model)) == 1 and tab.banner.isHidden()
    assert len(model.ctx.ledger) == ENTRIES - 1  # the bad signature is left out, the rest re-chained
    report = _verify(qtbot, tab)
    assert report.ok and _statuses(tab) == ["verified"] * (ENTRIES - 1)


def test_declining_repair_changes_nothing(qtbot: Any, tab: LedgerTab, model: AppModel,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _tamper_entry(model, 2)
    model.reload()
    before = model.ctx.workspace.ledger_path.read_bytes()
    problem = model.ctx.ledger.problem
    asked = _set_answer(monkeypatch, QMessageBox.StandardButton.No)
    with qtbot.waitSignal(tab.repair_finished, timeout=TIMEOUT_MS):
        tab.repair()
    assert len(asked) == 1
    assert model.ctx.workspace.ledger_path.read_bytes() == before and not _backups(model)
    assert model.ctx.ledger.problem == problem and tab.banner.isVisibleTo(tab)
    assert tab.table_model.rowCount() == ENTRIES


def test_shutdown_stops_a_running_verification(qtbot: Any, tab: LedgerTab) -> None:
    tab.replay_check.setChecked(True)
    tab.verify()
    assert tab.running
    tab.shutdown()
    assert not tab.running and tab.verify_button.isEnabled()


# -- a large ledger ---------------------------------------------------------------------------


def _big_model(root: Path, config: Path, count: int) -> AppModel:
    """A workspace whose ledger holds ``count`` valid signed entries, written in one go."""
    model = AppModel(workspace=root, config_dir=config)
    ctx = model.ctx
    policy = Policy(preset("standard"), MYOPIC_ACTIONS)
    ctx.store.put(policy)
    fields = {"policy_hash": policy.hash, "config": policy.config.to_dict(),
              "verification": {"mean": 102.76, "std": 38.4, "ci95": 2.38, "fraction_of_optimum": 0.9466,
                               "optimum": 108.56, "episodes": 1000, "suite": "eval-v1/n=1000",
                               "replay_digest": "0" * 64},
              "training": None, "origin": {"kind": "added"}}
    prev, lines = GENESIS, []
    for i in range(count):
        body = {**fields, "schema": ENTRY_SCHEMA, "version": ENTRY_VERSION, "env_id": ENV_ID,
                "index": i, "prev": prev, "timestamp": "2026-11-25T12:00:00Z",
                "publisher": ctx.publisher.public_hex}
        entry = seal(body, ctx.publisher)
        lines.append((b"," if i else b"") + entry.line() + b"\n")
        prev = entry.hash
    ctx.workspace.ledger_path.write_bytes(HEADER + b"".join(lines) + FOOTER)
    model.reload()
    return model


def test_table_is_lazy_on_10000_entries(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    count = 10_000
    big = _big_model(tmp_path / "big", tmp_path / "cfg", count)
    ledger = big.ctx.ledger
    assert len(ledger) == count and ledger.problem is None
    fetched: list[int] = []
    entry = ledger.entry
    monkeypatch.setattr(ledger, "entry", lambda i: fetched.append(i) or entry(i))

    tab = LedgerTab(big)
    qtbot.addWidget(tab)
    tab.resize(1000, 600)
    tab.show()
    qtbot.waitExposed(tab)
    table = tab.table_model
    start = time.perf_counter()
    assert table.rowCount() == count
    for row in (0, count // 2, count - 1):
        assert table.data(table.index(row, 0)) == str(row)
        assert table.data(table.index(row, PUBLISHER)) == "you"
        assert table.data(table.index(row, STATUS)) == "chain checked"
    elapsed = time.perf_counter() - start
    print(f"rowCount + data for 3 rows of {count}: {elapsed * 1e3:.2f} ms; rows parsed: {len(set(fetched))}")
    assert len(set(fetched)) < 200  # only the rows on screen, never the whole ledger
    tab.shutdown()
