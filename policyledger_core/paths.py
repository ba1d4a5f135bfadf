"""Where things live: the workspace (ledger + policies) and the per-user config folder.

Workspace: ``POLICYLEDGER_WORKSPACE`` if set; else, when running from a source
checkout, the checkout's top level (the shipped ``ledger.json`` and
``policies/``); else the user's data folder. Per-user state (the signing key,
the ledger checkpoints) lives in the config folder (``POLICYLEDGER_CONFIG_DIR``
or the platform's user config folder), never inside a workspace.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "policyledger"
LEDGER_FILE = "ledger.json"
POLICIES_DIR = "policies"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
_POLICY_FILE = re.compile(r"[0-9a-f]{64}\.json")


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


def outside_target(path: Path, root: Path) -> Path | None:
    """Where ``path`` leads (links followed) when that is outside ``root``; None when inside.

    Writes are refused through such a path: a workspace from somebody else must
    not make us write anywhere but in it.
    """
    target = Path(os.path.realpath(path))
    base = Path(os.path.realpath(root))
    return None if target.is_relative_to(base) else target


def outside_links(workspace: Workspace) -> list[str]:
    """One note per link that leads out of the workspace (ledger.json, policies, policy files)."""
    root = workspace.root
    notes: list[str] = []

    def noted(path: Path, name: str) -> bool:
        target = outside_target(path, root) if path.is_symlink() else None
        if target is not None:
            notes.append(f"{name} is a link to {target} outside the workspace: read, never written")
        return target is not None

    noted(workspace.ledger_path, LEDGER_FILE)
    policies = workspace.policies_dir
    if not noted(policies, POLICIES_DIR) and policies.is_dir():
        try:
            with os.scandir(policies) as found:  # one listing; links are told apart without a stat each
                for item in found:
                    if item.is_symlink() and _POLICY_FILE.fullmatch(item.name):
                        noted(Path(item.path), f"{POLICIES_DIR}/{item.name}")
        except OSError:
            pass  # an unreadable folder: reading its files fails with its own message
    return sorted(notes)
