"""UI state kept between runs (QSettings): geometry, last tab, last workspace, last training form.

Domain data never goes here; it lives in the workspace.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

ORGANIZATION = "PolicyLedger"
APPLICATION = "PolicyLedger"

KEYS: dict[str, Any] = {
    "window/geometry": None,
    "window/tab": 0,
    "workspace/last": "",
    "training/form": "",
}
"""Every key with its default: the one table of what is remembered."""


def settings() -> QSettings:
    """The app's settings store (the platform's user config folder)."""
    return QSettings(ORGANIZATION, APPLICATION)


def read(key: str) -> Any:
    """A remembered value, or its default."""
    value = settings().value(key)
    return KEYS[key] if value is None else value


def write(key: str, value: Any) -> None:
    settings().setValue(key, value)
