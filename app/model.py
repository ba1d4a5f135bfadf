"""The app's view of one workspace: the core Context, and signals when it changes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from policyledger_core.ledger.entry import Entry
from policyledger_core.ledger.signing import PublisherKeyError, key_id
from policyledger_core.paths import outside_links
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import Row, rank_ledger
from policyledger_core.workspace.reproduced import pending


class AppModel(QObject):
    """Holds the open workspace; views listen to its signals and never poke files."""

    ledger_changed = Signal()
    workspace_changed = Signal()
    reproductions_changed = Signal()
    """More entries were reproduced by replay here (the ledger itself is unchanged): re-rank."""

    def __init__(self, workspace: Path | None = None, config_dir: Path | None = None) -> None:
        super().__init__()
        self._config_dir = config_dir
        self.ctx = Context.open(workspace, config_dir)
        self._link_notes = outside_links(self.ctx.workspace)

    def open_workspace(self, root: Path) -> None:
        """Switch to another workspace folder."""
        self.ctx = Context.open(root, self._config_dir)
        self._link_notes = outside_links(self.ctx.workspace)
        self.workspace_changed.emit()
        self.ledger_changed.emit()

    def reload(self) -> None:
        """Re-read the ledger (after this or another process appended)."""
        self.ctx.ledger.reload()
        self.ledger_changed.emit()

    def notify_changed(self) -> None:
        """Tell every view that the ledger changed (an entry was appended here)."""
        self.ledger_changed.emit()

    def notify_reproduced(self) -> None:
        """Tell every view that entries were reproduced by replay here (by a Verify or the marketplace)."""
        self.reproductions_changed.emit()

    @property
    def workspace_root(self) -> Path:
        return self.ctx.workspace.root

    def own_key(self) -> str | None:
        """This user's public key, or None when the key file is unusable."""
        try:
            return self.ctx.own_public_key()
        except (PublisherKeyError, OSError):
            return None

    def key_id(self) -> str:
        try:
            public = self.ctx.own_public_key()
        except (PublisherKeyError, OSError) as exc:
            return f"unavailable ({exc})"
        return "not created yet (made with your first entry)" if public is None else key_id(public)

    def entries(self) -> list[Entry]:
        """Usable entries (before the first problem)."""
        return self.ctx.ledger.entries()

    def ranking(self) -> list[Row]:
        """The marketplace rows: only entries reproduced by replay here."""
        return rank_ledger(self.ctx.ledger, self.ctx.reproductions, self.own_key())

    def waiting(self) -> list[int]:
        """Indexes of the entries the marketplace would rank once they are reproduced here."""
        return pending(self.ctx.ledger, self.ctx.reproductions)

    def warnings(self) -> list[str]:
        """One line each: links out of the workspace (read, never written), and what could not
        be remembered in the config folder (checkpoint, reproductions)."""
        return [*self._link_notes, *self.ctx.ledger.warnings, *self.ctx.reproductions.warnings]

    def chain_status(self) -> str:
        problem = self.ctx.ledger.problem
        if problem is None:
            return "chain verified" if len(self.ctx.ledger) else "empty ledger"
        return f"problem at entry {problem.index}"
