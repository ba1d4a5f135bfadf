"""The whole window: tabs, menus, status bar, first launch, closing during training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QTableView

from app.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped workspace: tests never touch the real one."""
    root = tmp_path / "shipped"
    root.mkdir()
    shutil.copy2(ROOT / "ledger.json", root / "ledger.json")
    shutil.copytree(ROOT / "policies", root / "policies")
    return root


def _window(qtbot, workspace: Path, config: Path) -> MainWindow:
    window = MainWindow(workspace=workspace, config_dir=config)
    qtbot.addWidget(window)
    return window


def test_object_names_tabs_and_menus(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    for name in ("trainingTab", "marketplaceTab", "ledgerTab", "startTrainingButton", "stopTrainingButton",
                 "episodesSpinBox", "seedSpinBox", "presetCombo", "trainingProgress", "rewardPlot",
                 "epsilonPlot", "marketplaceTable", "ledgerTable", "verifyLedgerButton"):
        assert window.findChild(object, name) is not None, name
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Help"]
    file_actions = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert file_actions == ["&Open Workspace...", "&Import Policy...", "&Export Policy...", "&Quit"]
    assert "Publisher key:" in window.about_text() and str(tmp_path / "ws") in window.about_text()


def test_first_launch_on_the_shipped_workspace(qtbot, shipped_copy: Path, tmp_path: Path) -> None:
    window = _window(qtbot, shipped_copy, tmp_path / "cfg")
    table = window.findChild(QTableView, "marketplaceTable")
    assert table.model().rowCount() == 5  # one verified policy per preset
    assert window.model.ctx.ledger.problem is None
    assert window._status_chain.text() == "chain verified"
    assert window._status_entries.text() == "5 entries"


def test_training_entry_appears_in_both_tables(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    tab = window.training_tab
    tab.form.preset.setCurrentText("short-burst")
    tab.form.episodes.setValue(500)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()
    market = window.findChild(QTableView, "marketplaceTable")
    ledger = window.findChild(QTableView, "ledgerTable")
    qtbot.waitUntil(lambda: market.model().rowCount() == 1 and ledger.model().rowCount() == 1)
    assert window._status_entries.text() == "1 entries"


def test_tampered_ledger_shows_the_problem(qtbot, shipped_copy: Path, tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    _window(qtbot, shipped_copy, config).close()  # pins the checkpoint
    lines = (shipped_copy / "ledger.json").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"mean":', b'"mean":1', 1)  # entry 2
    (shipped_copy / "ledger.json").write_bytes(b"\n".join(lines))
    window = _window(qtbot, shipped_copy, config)
    assert window._status_chain.text() == "problem at entry 2"
    assert window.findChild(QTableView, "marketplaceTable").model().rowCount() == 2


def test_closing_during_training_chains_and_exits_cleanly(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    tab = window.training_tab
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.episodes.size > 100, timeout=30_000)
    thread = tab._run.thread
    window.close()
    assert not thread.isRunning()
    assert len(window.model.ctx.ledger) == 1
    assert window.model.ctx.ledger.entry(0).body["training"]["episodes"] >= 100


def test_ui_state_is_remembered_in_qsettings(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    window.tabs.setCurrentIndex(2)
    window.training_tab.form.seed.setValue(1234)
    window.close()
    settings = QSettings("PolicyLedger", "PolicyLedger")
    assert int(settings.value("window/tab")) == 2
    assert '"seed": 1234' in str(settings.value("training/form"))
    again = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    assert again.tabs.currentIndex() == 2 and again.training_tab.form.seed.value() == 1234
