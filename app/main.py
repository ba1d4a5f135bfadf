"""Start PolicyLedger: ``policyledger [--workspace DIR]`` or ``python -m app``."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from app import settings
from app.desktop_entry import install
from app.main_window import MainWindow
from app.resources import app_icon


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="policyledger", description="PolicyLedger desktop app")
    parser.add_argument("--workspace", type=Path, metavar="DIR", help="workspace folder to open")
    parser.add_argument("--install-desktop-entry", action="store_true",
                        help="install the menu entry and icons for this user, then exit")
    return parser.parse_args(argv)


def choose_workspace(given: Path | None) -> Path | None:
    """--workspace, else POLICYLEDGER_WORKSPACE, else the last one opened, else the core default."""
    if given is not None or os.environ.get("POLICYLEDGER_WORKSPACE"):
        return given
    last = str(settings.read("workspace/last") or "")
    return Path(last) if last and Path(last).is_dir() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application until its window closes."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.install_desktop_entry:
        print(f"installed {install()}")
        return 0
    settings.keep_qt_settings_in()  # before any QSettings: Qt's file dialog history included
    running = QApplication.instance()
    app = running if isinstance(running, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName(settings.APPLICATION)
    app.setOrganizationName(settings.ORGANIZATION)
    app.setApplicationDisplayName("PolicyLedger")
    app.setDesktopFileName("policyledger")
    app.setWindowIcon(app_icon())
    window = MainWindow(workspace=choose_workspace(args.workspace))
    window.show()
    # What start-up built (modules, Qt wrappers, plot items) lives as long as the window: frozen,
    # the cyclic collector no longer rescans it on every full collection (measured during a long
    # run: 33-57 ms pauses, the UI's longest).
    gc.freeze()
    window.training_tab.warm_up()  # the first start after install compiles the training kernel
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
