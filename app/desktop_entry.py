"""Install the desktop entry and icons for the current user (freedesktop.org locations)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from app.resources import RESOURCES


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launcher() -> str:
    """The command that starts the app: the installed gui-script beside this Python, if any."""
    script = Path(sys.executable).with_name("policyledger")
    return str(script) if script.exists() else f"{sys.executable} -m app"


def install(target: Path | None = None) -> Path:
    """Write ``policyledger.desktop`` and the icons; returns the desktop file's path."""
    home = target or data_home()
    for png in sorted((RESOURCES / "icons").glob("policyledger-*.png")):
        size = png.stem.rsplit("-", 1)[1]
        folder = home / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, folder / "policyledger.png")
    scalable = home / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RESOURCES / "icons" / "policyledger.svg", scalable / "policyledger.svg")
    text = (RESOURCES / "policyledger.desktop").read_text(encoding="utf-8")
    text = text.replace("Exec=policyledger %F", f"Exec={launcher()}")
    applications = home / "applications"
    applications.mkdir(parents=True, exist_ok=True)
    desktop = applications / "policyledger.desktop"
    desktop.write_text(text, encoding="utf-8")
    desktop.chmod(0o755)
    return desktop
