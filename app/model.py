"""The app's view of one workspace: the core Context, and one notice when it changes.

Only the GUI thread uses :attr:`AppModel.ctx`. Background work opens its own view
of the workspace from a :class:`Place` and hands back plain values; the model then
re-opens its own (:meth:`AppModel.notify_changed`) and tells every view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from policyledger_core.ledger.entry import Entry
from policyledger_core.ledger.signing import PublisherKeyError, key_id
from policyledger_core.paths import Workspace, outside_links
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import RankedPolicy, rank_ledger
from policyledger_core.workspace.reproduced import pending
from policyledger_core.workspace.store import PolicyStore


@dataclass(frozen=True)
class Place:
    """Where a workspace is, as plain paths: what a background task opens its own view from."""

    root: Path
    config: Path

    def open(self) -> Context:
        """A Context of the caller's own (ledger, store, reproductions, key): never the GUI's."""
        return Context.open(self.root, self.config)

    def store(self) -> PolicyStore:
        """Only the policy store (no ledger scan), for work that reads policy files."""
        return PolicyStore(Workspace.open(self.root).policies_dir)


@dataclass(frozen=True)
class Findings:
    """What a task's own Context learned that the GUI's must hear of (plain values)."""

    reproduced: tuple[str, ...] = ()
    """Entry hashes reproduced by replay here (kept in memory only when the config folder is read-only)."""
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, ctx: Context) -> Findings:
        known = ctx.reproductions
        return cls(tuple(line.hash for line in ctx.ledger.scanned() if line.hash in known),
                   tuple([*ctx.ledger.warnings, *known.warnings]))


class AppModel(QObject):
    """Holds the open workspace; views listen to its signals and never poke files."""

    ledger_changed = Signal(object)
    """The ledger may have changed: every view refreshes. The argument is the initiator (the view
    that made the change, or None): a view can tell its own change from the others'."""
    workspace_changed = Signal()
    reproductions_changed = Signal(object)
    """More entries were reproduced by replay here (the ledger itself is unchanged): re-rank.
    The argument is the initiator, as for ``ledger_changed``."""

    def __init__(self, workspace: Path | None = None, config_dir: Path | None = None) -> None:
        super().__init__()
        self._config_dir = config_dir
        self.ctx = Context.open(workspace, config_dir)
        self._link_notes = outside_links(self.ctx.workspace)
        self._reproduced: set[str] = set()
        self._past_warnings: dict[str, None] = {}  # an ordered set
        self.generation = 0
        """Counts the workspaces opened: a task's result for an earlier one is dropped."""

    @property
    def place(self) -> Place:
        """The open workspace's paths, for a background task to open its own view from."""
        return Place(self.ctx.workspace.root, self.ctx.config_dir)

    def open_workspace(self, root: Path) -> None:
        """Switch to another workspace folder."""
        self.ctx = Context.open(root, self._config_dir)
        self._link_notes = outside_links(self.ctx.workspace)
        self._reproduced.clear()
        self.generation += 1
        self.workspace_changed.emit()
        self.ledger_changed.emit(None)

    def _reopen(self, findings: Findings | None) -> None:
        """Re-open the GUI's own Context from disk, keeping what tasks learned."""
        if findings is not None:
            self.add_findings(findings)
        old = self.ctx
        self._past_warnings.update(dict.fromkeys([*old.ledger.warnings, *old.reproductions.warnings]))
        self.ctx = Context.open(old.workspace.root, old.config_dir)
        missing = [h for h in sorted(self._reproduced) if h not in self.ctx.reproductions]
        if missing:  # remembered in memory only: the config folder could not keep them
            self.ctx.reproductions.record(missing)

    def reload(self, initiator: object = None) -> None:
        """Re-read the ledger (after this or another process appended) and tell every view."""
        self.notify_changed(initiator)

    def notify_changed(self, initiator: object = None, findings: Findings | None = None) -> None:
        """The ledger changed (here, in a task, or elsewhere): re-open it and tell every view once."""
        self._reopen(findings)
        self.ledger_changed.emit(initiator)

    def notify_reproduced(self, initiator: object = None, findings: Findings | None = None) -> None:
        """Entries were reproduced by replay here (by a Verify or the marketplace): re-rank."""
        self._reopen(findings)
        self.reproductions_changed.emit(initiator)

    def add_findings(self, findings: Findings) -> None:
        """Keep a task's warnings (and reproductions) without re-reading anything."""
        self._reproduced.update(findings.reproduced)
        self._past_warnings.update(dict.fromkeys(findings.warnings))

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

    def ranking(self) -> list[RankedPolicy]:
        """The marketplace rows: only entries reproduced by replay here."""
        return rank_ledger(self.ctx.ledger, self.ctx.reproductions, self.own_key())

    def waiting(self) -> list[int]:
        """Indexes of the entries the marketplace would rank once they are reproduced here."""
        return pending(self.ctx.ledger, self.ctx.reproductions)

    def warnings(self) -> list[str]:
        """One line each: links out of the workspace (read, never written), and what could not be
        remembered in the config folder (checkpoint, reproductions), here or by a task."""
        return list(dict.fromkeys([*self._link_notes, *self._past_warnings, *self.ctx.ledger.warnings,
                                   *self.ctx.reproductions.warnings]))

    def chain_status(self) -> str:
        problem = self.ctx.ledger.problem
        if problem is None:
            return "chain verified" if len(self.ctx.ledger) else "empty ledger"
        return f"problem at entry {problem.index}"
