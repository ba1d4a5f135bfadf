"""The ranking table's text filter, its grouping by preset, copying a hash, and its fit at 1280 pixels."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLineEdit, QMenu

from app.main_window import MainWindow
from app.marketplace_tab import MarketplaceTab
from app.marketplace_table import COPY_HASH, FILTER_PLACEHOLDER, MIN_SHRUNK_WIDTH, SHRINKING
from app.model import AppModel
from policyledger_core.workspace.bundles import export_bundle, import_bundle
from policyledger_core.workspace.publish import save_policy
from tests.app.marketplace import test_marketplace_tab as base
from tests.app.marketplace.test_marketplace_tab import TIMEOUT_MS, make_tab, patch_dialogs, select, variant

model = base.model  # the fixtures of the tab's own tests: 3 "standard" policies and 1 "short-burst"
tab = base.tab
warnings_shown = base.warnings_shown
ROOT = Path(__file__).resolve().parents[3]


def filter_edit(tab: MarketplaceTab) -> QLineEdit:
    found = tab.findChild(QLineEdit, "marketplaceFilter")
    assert found is not None
    return found


def shown_hashes(tab: MarketplaceTab) -> list[str]:
    return [r.policy_hash for r in tab.visible_rows()]


# -- filter ---------------------------------------------------------------------------------------


def test_the_filter_keeps_rows_by_hash_prefix_case_insensitive(qtbot: Any, tab: MarketplaceTab) -> None:
    edit = filter_edit(tab)
    assert edit.placeholderText() == FILTER_PLACEHOLDER == "Filter by hash prefix or publisher"
    every = shown_hashes(tab)
    target = every[2]
    qtbot.keyClicks(edit, target[:5].upper())
    expected = [h for h in every if h.startswith(target[:5])]
    assert shown_hashes(tab) == expected and target in expected
    assert f"showing {len(expected)} of 4" in tab.ranking_state.text()
    edit.setText(target[1:6])  # not a prefix: nothing
    assert shown_hashes(tab) == []
    assert "showing 0 of 4" in tab.ranking_state.text()
    edit.setText("you")  # own policies
    assert shown_hashes(tab) == every
    assert "showing 4 of 4" in tab.ranking_state.text()


def test_filtering_out_the_selected_row_empties_the_detail_panel(qtbot: Any, tab: MarketplaceTab) -> None:
    rows = tab.visible_rows()
    tab.select_hashes({rows[0].policy_hash}, rows[0].policy_hash)
    qtbot.waitUntil(lambda: tab.detail.policy_hash == rows[0].policy_hash, timeout=TIMEOUT_MS)
    filter_edit(tab).setText("zzzz")
    assert tab.current_row() is None and tab.detail.policy_hash is None
    assert not tab.buttons["exportButton"].isEnabled()
    filter_edit(tab).clear()
    assert len(tab.visible_rows()) == 4


def test_escape_clears_the_filter(qtbot: Any, tab: MarketplaceTab) -> None:
    edit = filter_edit(tab)
    edit.setText("zzzz")
    assert shown_hashes(tab) == []
    qtbot.keyClick(edit, Qt.Key.Key_Escape)
    assert edit.text() == ""
    assert len(shown_hashes(tab)) == 4
    assert "showing" not in tab.ranking_state.text()  # the unfiltered line, as before


def test_the_filter_keeps_the_rows_of_another_publisher_by_key_id(qtbot: Any, model: AppModel,
                                                                     tmp_path: Path) -> None:
    mine = model.ranking()[0]
    other = AppModel(workspace=tmp_path / "ws2", config_dir=tmp_path / "cfg2")
    import_bundle(other.ctx, export_bundle(model.ctx, mine.policy_hash))
    save_policy(other.ctx, variant(3), None, {"kind": "added"})
    widget = make_tab(qtbot, other)
    try:
        qtbot.waitUntil(lambda: len(widget.visible_rows()) == 2 and not widget.reproducing,
                        timeout=TIMEOUT_MS)
        theirs = next(r for r in widget.visible_rows() if not r.own)
        edit = filter_edit(widget)
        edit.setText(theirs.publisher_id[:6].upper())
        assert shown_hashes(widget) == [mine.policy_hash]
        edit.setText("YOU")
        assert [r.own for r in widget.visible_rows()] == [True]
        assert "showing 1 of 2" in widget.ranking_state.text()
    finally:
        widget.shutdown()


def test_an_import_clears_the_filter_to_show_the_new_row(
        qtbot: Any, model: AppModel, tmp_path: Path, monkeypatch: Any, warnings_shown: list[str]) -> None:
    bundle = tmp_path / "policy.bundle.json"
    mine = model.ranking()[0]
    bundle.write_bytes(export_bundle(model.ctx, mine.policy_hash))
    patch_dialogs(monkeypatch, bundle)
    other = AppModel(workspace=tmp_path / "ws2", config_dir=tmp_path / "cfg2")
    widget = make_tab(qtbot, other)
    try:
        filter_edit(widget).setText("zzzz")
        with qtbot.waitSignal(other.ledger_changed, timeout=TIMEOUT_MS):
            widget.buttons["importButton"].click()
        qtbot.waitUntil(lambda: not widget.busy, timeout=TIMEOUT_MS)
        assert warnings_shown == []
        assert filter_edit(widget).text() == ""
        assert widget.current_row() is not None and widget.current_row().policy_hash == mine.policy_hash
    finally:
        widget.shutdown()


# -- grouped by preset ----------------------------------------------------------------------------


def test_all_presets_groups_rows_by_preset_with_the_rank_within_it(tab: MarketplaceTab,
                                                                  model: AppModel) -> None:
    ranking = model.ranking()
    assert {r.preset for r in ranking} == {"standard", "short-burst"}
    rows = tab.visible_rows()
    presets = [r.preset for r in rows]
    assert presets == sorted(presets)  # one block per preset
    standard = [r for r in ranking if r.preset == "standard"]  # the core's order within the preset
    assert [r.policy_hash for r in rows if r.preset == "standard"] == [r.policy_hash for r in standard]
    ranks = [tab.proxy.index(i, 0).data() for i in range(len(rows))]
    assert ranks == ["1", "1", "2", "3"]  # short-burst's best is 1 whatever the other preset's rewards
    assert [tab.table.starts_group(i) for i in range(len(rows))] == [False, True, False, False]

    tab.preset_combo.setCurrentText("standard")  # one preset: its ranking as before
    assert [r.policy_hash for r in tab.visible_rows()] == [r.policy_hash for r in standard]
    assert [tab.proxy.index(i, 0).data() for i in range(3)] == ["1", "2", "3"]
    assert "showing 3 of 4" in tab.ranking_state.text()


def test_the_detail_panel_names_the_rank_within_the_preset(qtbot: Any, tab: MarketplaceTab,
                                                           model: AppModel) -> None:
    short = next(r for r in model.ranking() if r.preset == "short-burst")
    assert short.rank > 1  # the core ranks every preset together
    tab.select_hashes({short.policy_hash}, short.policy_hash)
    qtbot.waitUntil(lambda: tab.detail.policy_hash == short.policy_hash, timeout=TIMEOUT_MS)
    assert tab.current_row() is not None and tab.current_row().rank == 1
    assert tab.detail.message.text().startswith("Rank 1 in short-burst: policy ")


# -- copy hash ------------------------------------------------------------------------------------


def test_the_context_menu_copies_the_full_policy_hash(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.show()
    qtbot.waitExposed(tab)
    QGuiApplication.clipboard().clear()
    rows = tab.visible_rows()
    point = tab.table.visualRect(tab.proxy.index(2, 1)).center()
    menu = tab.table.context_menu(point)
    assert isinstance(menu, QMenu)
    [action] = [a for a in menu.actions() if a.text() == COPY_HASH == "Copy policy hash"]
    action.trigger()
    assert QGuiApplication.clipboard().text() == rows[2].policy_hash
    assert len(rows[2].policy_hash) == 64
    assert tab.current_row() == rows[2]  # the right-clicked row is the one selected
    assert tab.table.context_menu(QPoint(5, tab.table.viewport().height() - 2)) is None  # below the rows


def test_ctrl_c_copies_the_selected_rows_hash(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.show()
    qtbot.waitExposed(tab)
    QGuiApplication.clipboard().clear()
    select(tab, 1)
    tab.table.setFocus()
    qtbot.keyClick(tab.table, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == tab.visible_rows()[1].policy_hash


# -- fits 1280 pixels -----------------------------------------------------------------------------


def assert_fits(qtbot: Any, tab: MarketplaceTab) -> None:
    table = tab.table
    qtbot.waitUntil(lambda: table.horizontalScrollBar().maximum() == 0, timeout=2000)
    assert not table.horizontalScrollBar().isVisible()
    header = table.horizontalHeader()
    assert header.length() <= table.viewport().width()
    for column in range(header.count()):  # the columns that give way are elided, down to a minimum
        least = MIN_SHRUNK_WIDTH if column in SHRINKING else table.sizeHintForColumn(column)
        assert header.sectionSize(column) >= min(least, table.sizeHintForColumn(column)), column
    assert header.sectionSize(3) >= table.sizeHintForColumn(3)  # the verified reward is never cut


def test_the_table_fits_a_1280_wide_tab_without_scrolling(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.resize(1280, 800)
    tab.show()
    qtbot.waitExposed(tab)
    assert_fits(qtbot, tab)


@pytest.mark.parametrize("size", [(1280, 800), (1264, 752)])  # 1264x752: the window a 1280x800 screen gets
def test_the_table_fits_the_window_at_1280_by_800(qtbot: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copy2(ROOT / "ledger.json", root / "ledger.json")
    shutil.copytree(ROOT / "policies", root / "policies")
    window = MainWindow(workspace=root, config_dir=tmp_path / "cfg")
    qtbot.addWidget(window)
    window.resize(*size)
    window.tabs.setCurrentWidget(window.tabs.widget(1))
    window.show()
    qtbot.waitExposed(window)
    tab = window.marketplace_tab
    qtbot.waitUntil(lambda: len(tab.visible_rows()) == 9 and not tab.reproducing, timeout=TIMEOUT_MS)
    QApplication.processEvents()
    assert window.width() == size[0]
    assert_fits(qtbot, tab)
