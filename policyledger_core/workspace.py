"""Where things live: the workspace (ledger + policies) and the per-user config folder.

Workspace: ``POLICYLEDGER_WORKSPACE`` if set; else, when running from a source
checkout, the checkout's top level (the shipped ``ledger.json`` and
``policies/``); else the user's data folder. Per-user state (the signing key,
the ledger checkpoints) lives in the config folder (``POLICYLEDGER_CONFIG_DIR``
or the platform's user config folder), never inside a workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "policyledger"
LEDGER_FILE = "ledger.json"
POLICIES_DIR = "policies"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def config_dir() -> Path:
    """The per-user config folder (created on demand by its users)."""
    override = os.environ.get("POLICYLEDGER_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME))


def default_workspace() -> Path:
    """The workspace to open when none is named."""
    override = os.environ.get("POLICYLEDGER_WORKSPACE")
    if override:
        return Path(override).expanduser()
    if is_source_checkout(_SOURCE_ROOT):
        return _SOURCE_ROOT
    return Path(platformdirs.user_data_dir(APP_NAME))


def is_source_checkout(root: Path) -> bool:
    """A PolicyLedger source tree: project file, core package and shipped ledger side by side."""
    return ((root / "pyproject.toml").is_file() and (root / "policyledger_core").is_dir()
            and (root / LEDGER_FILE).is_file())


@dataclass(frozen=True)
class Workspace:
    """A folder holding ``ledger.json`` and ``policies/``."""

    root: Path

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_FILE

    @property
    def policies_dir(self) -> Path:
        return self.root / POLICIES_DIR

    @classmethod
    def open(cls, root: Path | None = None) -> Workspace:
        """The workspace at ``root`` (default: :func:`default_workspace`), as an absolute path."""
        return cls((root or default_workspace()).expanduser().resolve())
