"""Where the app's files are: icons and the desktop entry under resources/."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def app_icon() -> QIcon:
    """The application icon (SVG plus PNG sizes, whichever the platform prefers)."""
    icon = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        png = RESOURCES / "icons" / f"policyledger-{size}.png"
        if png.is_file():
            icon.addFile(str(png))
    svg = RESOURCES / "icons" / "policyledger.svg"
    if svg.is_file():
        icon.addFile(str(svg))
    return icon
