"""The window on a small screen, closing during training, and where the UI settings live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QTimer
from PySide6.QtWidgets import QApplication, QProgressDialog

from app import main_window, settings
from app.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[3]
SCREEN = QRect(0, 0, 1280, 800)

PROBE = """
import sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.main_window import MainWindow
window = MainWindow(workspace=Path(sys.argv[1]))
window.show()
for _ in range(5):
    app.processEvents()
available = app.primaryScreen().availableGeometry()
frame, hint = window.frameGeometry(), window.minimumSizeHint()
print(available.width(), available.height(), frame.x(), frame.y(), frame.width(), frame.height(),
      hint.width(), hint.height())
window.close()
"""


def _window(qtbot, workspace: Path, config: Path | None = None) -> MainWindow:
    window = MainWindow(workspace=workspace, config_dir=config)
    qtbot.addWidget(window)
    return window


def test_first_window_fits_the_available_geometry() -> None:
    first = main_window.first_geometry(SCREEN)
    assert SCREEN.contains(first)
    assert first.height() + main_window.FRAME_ALLOWANCE.height() <= SCREEN.height()
    small = QRect(0, 24, 1024, 700)
    assert small.contains(main_window.first_geometry(small))


def test_the_window_fits_a_1280x800_offscreen_screen(tmp_path: Path) -> None:
    """A separate process on an offscreen screen of 1280x800: the frame and the minimum size fit."""
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "s", "x": 0, "y": 0, "width": 1280, "height": 800,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}",
               POLICYLEDGER_CONFIG_DIR=str(tmp_path / "cfg"))
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "ws")], capture_output=True,
                          text=True, check=False, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    aw, ah, x, y, w, h, mw, mh = map(int, done.stdout.split()[-8:])
    assert (aw, ah) == (1280, 800)
    assert x >= 0 and y >= 0 and x + w <= aw and y + h <= ah  # the frame is inside the screen
    assert mw <= aw and mh + main_window.FRAME_ALLOWANCE.height() <= ah  # every control reachable


def test_closing_during_training_shows_saving_until_chained(qtbot, tmp_path: Path) -> None:
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    tab = window.training_tab
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 100, timeout=30_000)
    seen: list[tuple[str, bool]] = []

    def look() -> None:
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QProgressDialog):
            seen.append((dialog.labelText(), tab.running))

    timer = QTimer(interval=20)
    timer.timeout.connect(look)
    timer.start()
    window.close()
    timer.stop()
    assert seen and seen[0][0] == "Saving the policy\u2026" and seen[0][1]
    assert not tab.running and len(window.model.ctx.ledger) == 1
    assert window.findChild(QProgressDialog, "savingDialog") is None or \
        not window.findChild(QProgressDialog, "savingDialog").isVisible()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def test_ui_settings_live_in_the_config_folder(qtbot, workspace: Path) -> None:
    config = Path(os.environ["POLICYLEDGER_CONFIG_DIR"])
    home = Path(os.environ["XDG_CONFIG_HOME"])
    before = _tree(home)
    window = _window(qtbot, workspace)  # the default config folder
    window.tabs.setCurrentIndex(1)
    window.training_tab.form.until_stopped.setChecked(True)
    window.training_tab.form.seed.setValue(77)
    window.training_tab.x_axis.setCurrentIndex(window.training_tab.x_axis.findData("steps"))
    window.training_tab.log_x.setChecked(True)
    window.close()
    assert (config / "ui.ini").is_file()
    assert _tree(home) == before  # nothing written to the home or XDG folder
    again = _window(qtbot, workspace)
    form = again.training_tab.form
    assert again.tabs.currentIndex() == 1 and form.seed.value() == 77
    assert form.until_stopped.isChecked() and not form.episodes.isEnabled()
    assert again.training_tab.view_state() == ("steps", True)  # the plots' x axis too
    assert again.training_tab.plots.x_axis == "steps" and again.training_tab.plots.log_x


def test_settings_follow_the_config_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "a"))
    settings.write("workspace/last", "/somewhere")
    assert (tmp_path / "a" / "ui.ini").is_file()
    assert settings.read("workspace/last") == "/somewhere"
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "b"))
    assert settings.read("workspace/last") == ""


def test_rows_and_status_bar_tell_one_story(qtbot, tmp_path: Path) -> None:
    import shutil

    from app.ledger_table import STATUS

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy2(ROOT / "ledger.json", shipped / "ledger.json")
    shutil.copytree(ROOT / "policies", shipped / "policies")
    window = _window(qtbot, shipped, tmp_path / "cfg")
    qtbot.waitUntil(lambda: not window.marketplace_tab.reproducing, timeout=20_000)
    table = window.ledger_tab.table_model

    def rows() -> set[str]:
        return {table.index(r, STATUS).data() for r in range(table.rowCount())}

    assert rows() == {"chain checked"} and window._status_chain.text() == "chain checked"
    with qtbot.waitSignal(window.ledger_tab.verification_finished, timeout=20_000):
        window.ledger_tab.verify()
    assert rows() == {"verified"} and window._status_chain.text() == "ledger verified"
    window.model.notify_changed()  # another view's change: back to what the opening checked
    assert rows() == {"chain checked"} and window._status_chain.text() == "chain checked"


def test_closing_while_the_save_fails_still_closes(qtbot, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The saving dialog waits for the run to settle, and a failed save settles it too."""
    from app import training_tab

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(training_tab, "save_task", broken)
    window = _window(qtbot, tmp_path / "ws", tmp_path / "cfg")
    tab = window.training_tab
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 100, timeout=30_000)
    with qtbot.waitSignal(tab.settled, timeout=30_000):
        window.close()
    assert not tab.running and window.saving_dialog is None
    assert tab.stats.text() == "Failed: disk full"
    assert len(window.model.ctx.ledger) == 0
