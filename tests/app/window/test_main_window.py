"""The whole window: tabs, menus, status bar, first launch, closing during training."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLabel, QTableView

from app.main_window import MainWindow
from policyledger_core.policy import Policy
from policyledger_core.workspace import audit
from policyledger_core.workspace.context import Context
from tests.app.conftest import HeldReplay

TIMEOUT_MS = 20_000

ROOT = Path(__file__).resolve().parents[3]


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
    assert window.marketplace_tab.reproducing  # the start does not wait for the replay
    assert table.model().rowCount() == 0  # nothing is ranked before it is reproduced here
    qtbot.waitUntil(lambda: table.model().rowCount() == 9, timeout=TIMEOUT_MS)  # one per preset and per task
    assert not window.marketplace_tab.reproducing
    assert window.model.ctx.ledger.problem is None
    assert window._status_chain.text() == "chain checked"
    assert window._status_entries.text() == "9 entries"


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
    first = _window(qtbot, shipped_copy, config)  # pins the checkpoint, reproduces the entries here
    qtbot.waitUntil(lambda: not first.marketplace_tab.reproducing, timeout=TIMEOUT_MS)
    first.close()
    lines = (shipped_copy / "ledger.json").read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"mean":', b'"mean":1', 1)  # entry 2
    (shipped_copy / "ledger.json").write_bytes(b"\n".join(lines))
    window = _window(qtbot, shipped_copy, config)
    assert window._status_chain.text() == "problem at entry 2"
    assert window.findChild(QTableView, "marketplaceTable").model().rowCount() == 2
    assert not window.marketplace_tab.reproducing  # a read-only ledger is not replayed


def test_a_replay_mismatch_shows_in_the_ledger_tab_and_status_bar(qtbot, shipped_copy: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_verify = audit.verify_policy  # the core decides; forge what its replay of entry 2 gives
    # Forged before the window opens: it starts replaying at once, in the background.
    forged = Context.open(shipped_copy, tmp_path / "cfg-peek").ledger.entry(2).policy_hash

    def verify(policy: Policy, episodes: int = 1000) -> Any:
        report = real_verify(policy, episodes)
        return dataclasses.replace(report, mean=report.mean + 7) if policy.hash == forged else report

    monkeypatch.setattr(audit, "verify_policy", verify)
    window = _window(qtbot, shipped_copy, tmp_path / "cfg")
    qtbot.waitUntil(lambda: not window.marketplace_tab.reproducing, timeout=TIMEOUT_MS)
    assert window._status_chain.text() == "problem at entry 2"
    ledger_tab = window.ledger_tab
    assert ledger_tab.banner.isVisibleTo(ledger_tab) and "recorded mean" in ledger_tab.banner_text.text()
    assert window.findChild(QTableView, "marketplaceTable").model().rowCount() == 2


def test_closing_during_the_replay_stops_it(qtbot, shipped_copy: Path, tmp_path: Path,
                                            held_replay: HeldReplay) -> None:
    window = _window(qtbot, shipped_copy, tmp_path / "cfg")
    thread = window.marketplace_tab._replays.task.qthread
    threading.Timer(0.2, held_replay.release.set).start()  # goes on while closing waits
    window.close()
    assert not thread.isRunning()


def test_verify_with_replay_ranks_at_once(qtbot, shipped_copy: Path, tmp_path: Path,
                                          held_replay: HeldReplay) -> None:
    window = _window(qtbot, shipped_copy, tmp_path / "cfg")
    table = window.findChild(QTableView, "marketplaceTable")
    assert table.model().rowCount() == 0
    window.ledger_tab.replay_check.setChecked(True)
    with qtbot.waitSignal(window.ledger_tab.verification_finished, timeout=TIMEOUT_MS):
        window.ledger_tab.verify()
    assert table.model().rowCount() == 9  # the Verify replayed them all; the marketplace's own is still held
    held_replay.release.set()
    qtbot.waitUntil(lambda: not window.marketplace_tab.reproducing, timeout=TIMEOUT_MS)


def test_an_unwritable_config_folder_is_said_once_in_the_status_bar(qtbot, shipped_copy: Path,
                                                                    tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.write_text("a file where the config folder should be\n")
    window = _window(qtbot, shipped_copy, config)
    warning = window.findChild(QLabel, "statusWarning")
    assert warning is not None and "cannot update the checkpoint" in warning.text()
    table = window.findChild(QTableView, "marketplaceTable")
    qtbot.waitUntil(lambda: table.model().rowCount() == 9, timeout=TIMEOUT_MS)  # remembered in memory only
    text = warning.text()
    assert text.count("cannot update the checkpoint") == 1 and text.count("cannot remember reproduced") == 1
    assert "\n" not in text and warning.toolTip()
    window.model.notify_changed()
    assert warning.text() == text


def test_closing_during_training_chains_and_exits_cleanly(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    tab = window.training_tab
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 100, timeout=30_000)
    thread = tab._training.task.qthread
    window.close()
    assert not shiboken6.isValid(thread) or not thread.isRunning()  # deleted once ended, while saving
    assert len(window.model.ctx.ledger) == 1
    assert window.model.ctx.ledger.entry(0).body["training"]["episodes"] >= 100


def test_ui_state_is_remembered_in_the_config_folder(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    window.tabs.setCurrentIndex(2)
    window.training_tab.form.seed.setValue(1234)
    window.close()
    settings = QSettings(str(tmp_path / "cfg" / "ui.ini"), QSettings.Format.IniFormat)
    assert int(settings.value("window/tab")) == 2
    assert '"seed": 1234' in str(settings.value("training/form"))
    again = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    assert again.tabs.currentIndex() == 2 and again.training_tab.form.seed.value() == 1234


def test_a_ledger_linked_from_outside_the_workspace_is_said_in_the_status_bar(
        qtbot, shipped_copy: Path, tmp_path: Path) -> None:
    """Read through the link, never written: the user is told once, as the CLI tells it."""
    outside = tmp_path / "elsewhere.json"
    (shipped_copy / "ledger.json").rename(outside)
    (shipped_copy / "ledger.json").symlink_to(outside)
    window = _window(qtbot, shipped_copy, tmp_path / "cfg")
    warning = window.findChild(QLabel, "statusWarning")
    assert warning is not None
    assert warning.text() == (f"Warning: ledger.json is a link to {outside} outside the workspace: "
                              "read, never written")
    qtbot.waitUntil(lambda: not window.marketplace_tab.reproducing, timeout=TIMEOUT_MS)
