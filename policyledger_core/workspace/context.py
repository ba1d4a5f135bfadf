"""Everything one user needs to work on one workspace: ledger, store, publisher key."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.signing import Publisher
from policyledger_core.paths import Workspace, config_dir
from policyledger_core.workspace.reproduced import Reproductions
from policyledger_core.workspace.store import PolicyStore


class Context:
    """An open workspace as seen by the local user."""

    def __init__(self, workspace: Workspace, config: Path) -> None:
        self.workspace = workspace
        self.config_dir = config
        self.store = PolicyStore(workspace.policies_dir)
        self.ledger = Ledger.open(workspace, config)

    @classmethod
    def open(cls, root: Path | None = None, config: Path | None = None) -> Context:
        """Open the workspace at ``root`` (default: the default workspace)."""
        return cls(Workspace.open(root), config or config_dir())

    @cached_property
    def publisher(self) -> Publisher:
        """This user's signing key, created on first use (the first append)."""
        return Publisher.load_or_create(self.config_dir)

    @cached_property
    def reproductions(self) -> Reproductions:
        """The entries this user has reproduced by replay (what the marketplace may rank)."""
        return Reproductions(self.config_dir)

    def own_public_key(self) -> str | None:
        """This user's public key if a key exists; looking never creates one."""
        if "publisher" in self.__dict__:
            return self.publisher.public_hex
        existing = Publisher.load_existing(self.config_dir)
        return None if existing is None else existing.public_hex
