"""One change notice: ``ledger_changed(initiator)``, emitted once per change; every view listens.

The view that made a change can tell its own notice by the initiator (the Ledger tab keeps
its verification report); the others refresh from the model's own view of the ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.ledger_table import STATUS
from app.main_window import MainWindow
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim.config import preset
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy

TIMEOUT_MS = 30_000


def policy(k: int) -> Policy:
    actions = list(MYOPIC_ACTIONS)
    free = [obs for obs in range(len(actions)) if obs not in TERMINAL_OBSERVATIONS]
    for obs in free[3 * k:3 * k + 3] if k else []:
        actions[obs] = (actions[obs] + 1) % 5
    return Policy(preset("standard"), tuple(actions))


@pytest.fixture
def window(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    root, config = tmp_path / "ws", tmp_path / "cfg"
    ctx = Context.open(root, config)
    for k in range(3):
        save_policy(ctx, policy(k), None, {"kind": "added"})
    made = MainWindow(workspace=root, config_dir=config)
    qtbot.addWidget(made)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail(f"warning: {a[2]}"))
    return made


def notices(window: MainWindow) -> list[object]:
    seen: list[object] = []
    window.model.ledger_changed.connect(seen.append)
    return seen


def statuses(window: MainWindow) -> list[str]:
    table = window.ledger_tab.table_model
    return [table.data(table.index(row, STATUS)) for row in range(table.rowCount())]


def test_an_added_policy_is_one_notice_from_the_marketplace(qtbot: Any, window: MainWindow, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seen = notices(window)
    path = tmp_path / "mine.json"
    path.write_bytes(policy(4).canonical_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    market = window.marketplace_tab
    market.buttons["addPolicyButton"].click()
    qtbot.waitUntil(lambda: not market.busy, timeout=TIMEOUT_MS)
    assert seen == [market]  # once, naming who made the change
    assert window.ledger_tab.table_model.rowCount() == 4  # the other tab refreshed
    assert window._status_entries.text() == "4 entries"
    assert len(market.visible_rows()) == 4


def test_a_training_run_is_one_notice_from_the_training_tab(qtbot: Any, window: MainWindow) -> None:
    seen = notices(window)
    tab = window.training_tab
    tab.form.preset.setCurrentText("short-burst")
    tab.form.episodes.setValue(60)
    with qtbot.waitSignal(tab.training_finished, timeout=TIMEOUT_MS):
        tab.start()
    assert seen == [tab]
    assert window.ledger_tab.table_model.rowCount() == 4
    qtbot.waitUntil(lambda: len(window.marketplace_tab.visible_rows()) == 4, timeout=TIMEOUT_MS)
    assert window._status_entries.text() == "4 entries"


def test_the_ledger_tab_keeps_its_report_on_its_own_notice_only(qtbot: Any, window: MainWindow,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ledger_tab = window.ledger_tab
    lines = window.model.ctx.workspace.ledger_path.read_bytes().split(b"\n")
    lines[3] = lines[3][:-130] + lines[2][-130:]  # entry 2 gets entry 1's signature
    window.model.ctx.workspace.ledger_path.write_bytes(b"\n".join(lines))
    window.model.reload()
    assert window.model.ctx.ledger.problem is None  # the fast scan does not check signatures
    seen = notices(window)
    with qtbot.waitSignal(ledger_tab.verification_finished, timeout=TIMEOUT_MS):
        ledger_tab.verify()
    assert seen == [ledger_tab]  # the audit made the ledger read-only: one notice, from the Ledger tab
    assert statuses(window)[:2] == ["verified", "verified"]  # its own notice: the report is kept
    assert window._status_chain.text() == "problem at entry 2"
    assert "read-only" in window.marketplace_tab.ranking_state.text()

    seen.clear()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(ledger_tab.repair_finished, timeout=TIMEOUT_MS):
        ledger_tab.repair()
    assert seen == [ledger_tab]
    assert window._status_chain.text() == "chain checked"
    assert "read-only" not in window.marketplace_tab.ranking_state.text()

    with qtbot.waitSignal(ledger_tab.verification_finished, timeout=TIMEOUT_MS):
        ledger_tab.verify()
    assert set(statuses(window)) == {"verified"}
    seen.clear()
    path = tmp_path / "mine.json"
    path.write_bytes(policy(5).canonical_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.marketplace_tab.add_policy_file()
    qtbot.waitUntil(lambda: not window.marketplace_tab.busy, timeout=TIMEOUT_MS)
    assert seen == [window.marketplace_tab]
    assert set(statuses(window)) == {"chain checked"}  # another view's change: the report no longer holds
