"""UI state kept between runs (QSettings): geometry, last tab, last workspace, last training form,
the last folder of each kind of file dialog.

Kept in ``ui.ini`` in the config folder (:func:`policyledger_core.paths.config_dir`, or the
folder a window was opened with), never in the platform's own settings place: so
``POLICYLEDGER_CONFIG_DIR`` moves all of it. Domain data never goes here; it lives in the workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from policyledger_core.paths import config_dir

ORGANIZATION = "PolicyLedger"
APPLICATION = "PolicyLedger"

KEYS: dict[str, Any] = {
    "window/geometry": None,
    "window/tab": 0,
    "workspace/last": "",
    "training/form": "",
    "plots/x_axis": "episodes",
    "plots/log_x": False,
}
"""Every key with its default: the one table of what is remembered."""


UI_FILE = "ui.ini"
DIALOG_PREFIX = "dialogs/"
"""``dialogs/<kind>``: the folder a file dialog of that kind last used."""


def settings(folder: Path | None = None) -> QSettings:
    """The app's settings store: ``ui.ini`` in ``folder`` (default: the config folder)."""
    return QSettings(str((folder or config_dir()) / UI_FILE), QSettings.Format.IniFormat)


def read(key: str, folder: Path | None = None) -> Any:
    """A remembered value, or its default."""
    value = settings(folder).value(key)
    default = KEYS.get(key, "")
    if value is None:
        return default
    if isinstance(default, bool):  # an ini file gives back text
        return str(value).lower() in ("true", "1")
    return value


def write(key: str, value: Any, folder: Path | None = None) -> None:
    """Remember ``value`` (silently not kept when the config folder cannot be written)."""
    store = settings(folder)
    store.setValue(key, value)
    store.sync()


def keep_qt_settings_in(folder: Path | None = None) -> None:
    """Qt's own settings (the file dialog's history, ``QtProject.conf``) go to the config folder too,
    not to the home folder. Call before any QSettings is used (Qt caches the folder)."""
    where = str(folder or config_dir())
    for kind in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(kind, QSettings.Scope.UserScope, where)


def last_folder(kind: str, fallback: Path, folder: Path | None = None) -> str:
    """Where a file dialog of ``kind`` starts: the folder it last used, else ``fallback``."""
    remembered = str(read(DIALOG_PREFIX + kind, folder) or "")
    return remembered if remembered and Path(remembered).is_dir() else str(fallback)


def remember_folder(kind: str, picked: str, folder: Path | None = None) -> None:
    """Remember the folder of the file (or folder) a dialog of ``kind`` picked."""
    path = Path(picked)
    write(DIALOG_PREFIX + kind, str(path if path.is_dir() else path.parent), folder)
