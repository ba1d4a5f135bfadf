"""The Ledger tab's detail pane: every recorded field of the selected entry, copyable, kept current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QFontInfo, QGuiApplication
from PySide6.QtWidgets import QPlainTextEdit, QPushButton, QWidget

from app.entry_detail import EMPTY_TEXT
from app.ledger_tab import LedgerTab
from app.model import AppModel
from policyledger_core.workspace.publish import save_policy
from tests.app.ledger import test_ledger_tab as base
from tests.app.ledger.test_ledger_tab import ENTRIES, EPISODES, _policy, _tamper_entry

model = base.model  # the fixtures of the tab's own tests: a ledger of ENTRIES entries
tab = base.tab


def detail_parts(tab: LedgerTab) -> tuple[QWidget, QPlainTextEdit, QPushButton]:
    pane = tab.findChild(QWidget, "ledgerEntryDetail")
    assert pane is not None and tab.isAncestorOf(pane)
    text = pane.findChild(QPlainTextEdit)
    copy = pane.findChild(QPushButton, "ledgerEntryCopy")
    assert text is not None and copy is not None
    return pane, text, copy


def select_row(tab: LedgerTab, row: int) -> None:
    flags = QItemSelectionModel.SelectionFlag
    index = tab.table_model.index(row, 0)
    tab.table.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)


def test_nothing_selected_shows_an_empty_state(qtbot: Any, tab: LedgerTab) -> None:
    tab.show()
    qtbot.waitExposed(tab)
    _pane, text, copy = detail_parts(tab)
    assert text.toPlainText() == "" and not copy.isEnabled()
    assert tab.detail.title.text() == EMPTY_TEXT and tab.detail.title.isVisible()


def test_the_selected_entry_is_shown_whole_indented_read_only_and_monospace(
        qtbot: Any, tab: LedgerTab, model: AppModel) -> None:
    tab.show()
    qtbot.waitExposed(tab)
    _pane, text, copy = detail_parts(tab)
    select_row(tab, 2)
    entry = model.ctx.ledger.entry(2)
    shown = text.toPlainText()
    assert json.loads(shown) == {"body": entry.body, "hash": entry.hash, "signature": entry.signature}
    for field in entry.body:  # every recorded field, each on a line of its own, indented
        assert f'\n    "{field}": ' in shown, field
    assert f'"hash": "{entry.hash}"' in shown and f'"signature": "{entry.signature}"' in shown
    assert text.isReadOnly() and text.isEnabled()
    assert QFontInfo(text.font()).fixedPitch()
    assert "#2" in tab.detail.title.text()

    select_row(tab, 4)  # follows the selection
    assert json.loads(text.toPlainText())["hash"] == model.ctx.ledger.entry(4).hash
    tab.table.clearSelection()
    assert text.toPlainText() == "" and not copy.isEnabled()


def test_copy_puts_all_of_it_on_the_clipboard(qtbot: Any, tab: LedgerTab, model: AppModel) -> None:
    _pane, text, copy = detail_parts(tab)
    select_row(tab, 1)
    QGuiApplication.clipboard().clear()
    assert copy.isEnabled()
    copy.click()
    copied = QGuiApplication.clipboard().text()
    assert copied == text.toPlainText()
    assert json.loads(copied)["signature"] == model.ctx.ledger.entry(1).signature


def test_the_pane_follows_the_ledger_when_it_changes(qtbot: Any, tab: LedgerTab, model: AppModel,
                                                     tmp_path: Path) -> None:
    _pane, text, _copy = detail_parts(tab)
    select_row(tab, 2)
    before = text.toPlainText()
    save_policy(model.ctx, _policy(ENTRIES), None, {"kind": "added"}, episodes=EPISODES)
    model.notify_changed()
    assert tab.selected_row() == 2 and text.toPlainText() == before  # still the selected entry

    _tamper_entry(model, 2)  # edited on disk: the entry no longer checks out
    model.reload()
    assert tab.selected_row() == 2
    shown = json.loads(text.toPlainText())
    assert "unverified" in shown and shown["unverified"]["index"] == 2
    assert "not verified" in tab.detail.title.text()

    model.open_workspace(tmp_path / "empty")  # no such entry any more: the empty state
    assert text.toPlainText() == "" and tab.detail.title.text() == EMPTY_TEXT
