"""Launching: the entry points, the workspace choice, the desktop entry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.desktop_entry import install
from app.main import choose_workspace, parse_args


def test_module_entry_point_has_help() -> None:
    done = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0 and "--workspace" in done.stdout


def test_workspace_argument_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_args(["--workspace", str(tmp_path)]).workspace == tmp_path
    assert choose_workspace(tmp_path) == tmp_path
    monkeypatch.delenv("POLICYLEDGER_WORKSPACE", raising=False)
    from app import settings

    settings.write("workspace/last", str(tmp_path))
    assert choose_workspace(None) == tmp_path  # the last workspace opened
    settings.write("workspace/last", str(tmp_path / "gone"))
    assert choose_workspace(None) is None  # a vanished folder falls back to the core default


def test_install_desktop_entry(tmp_path: Path) -> None:
    desktop = install(tmp_path)
    text = desktop.read_text()
    assert desktop == tmp_path / "applications" / "policyledger.desktop"
    assert "Name=PolicyLedger" in text and "Icon=policyledger" in text
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert "policyledger" in exec_line or "-m app" in exec_line
    assert (tmp_path / "icons/hicolor/256x256/apps/policyledger.png").is_file()
    assert (tmp_path / "icons/hicolor/scalable/apps/policyledger.svg").is_file()


def test_qt_settings_go_to_the_config_folder(tmp_path: Path) -> None:
    """Qt's own settings (the file dialog's history) follow POLICYLEDGER_CONFIG_DIR, not the home folder."""
    probe = ("from PySide6.QtCore import QSettings\n"
             "from app import settings\n"
             "settings.keep_qt_settings_in()\n"
             "s = QSettings('QtProject', 'probe'); s.setValue('k', 1); s.sync()\n")
    home = tmp_path / "xdg"
    home.mkdir()
    env = dict(os.environ, POLICYLEDGER_CONFIG_DIR=str(tmp_path / "cfg"), XDG_CONFIG_HOME=str(home))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False,
                          timeout=60, env=env, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cfg" / "QtProject" / "probe.conf").is_file()
    assert list(home.rglob("*")) == []
