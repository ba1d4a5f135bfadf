"""The table model of the Ledger tab: every entry, with its status.

The core keeps only the usable entries (those before the first problem) as
ledger entries; a damaged ledger also shows the bad entry (with the reason)
and the entries after it, from the core's best-effort ``set_aside`` reading,
marked "after the problem" (a repair sets them aside).

Rows are built on demand in :meth:`LedgerTableModel.data` from ``Ledger.entry``
(parsed once and cached by the core), so a ledger of 100,000 entries costs
only the rows on screen. Every verdict shown comes from the core: the
ledger's ``problem`` and the last :class:`~policyledger_core.workspace.audit.AuditReport`.
The ledger shown is the model's own: background work never changes it (it opens its own).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.entry import Entry, EntryError
from policyledger_core.ledger.layout import Problem, SetAside
from policyledger_core.ledger.signing import key_id
from policyledger_core.workspace.audit import AuditReport

COLUMNS = ("#", "Time", "Policy", "Verified reward", "Entry hash", "Previous hash", "Publisher", "Status")
INDEX, TIME, POLICY, REWARD, HASH, PREV, PUBLISHER, STATUS = range(len(COLUMNS))
SHORT = 12
PROBLEM_BACKGROUND = QColor(248, 196, 196)
AFTER_BACKGROUND = QColor(225, 225, 225)
STATUS_VALID = "verified"
"""Every check of a full verification (Verify) passed: the status bar says "ledger verified"."""
STATUS_AFTER = "after the problem"
STATUS_UNCHECKED = "chain checked"
"""Its hash and link were checked when the ledger was opened (the status bar says "chain checked");
fields, policy file and signature are checked by a full verification."""

_Index = QModelIndex | QPersistentModelIndex


def short(digest: str) -> str:
    """The first hex digits of a hash, for a narrow column (the tooltip holds all of it)."""
    return digest[:SHORT] + "\u2026" if len(digest) > SHORT else digest


class LedgerTableModel(QAbstractTableModel):
    """Read-only view of a ledger; :meth:`refresh` after the ledger or the report changed."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._ledger: Ledger | None = None
        self._own_key: str | None = None
        self._usable = 0
        self._problem: Problem | None = None
        self._report: AuditReport | None = None
        self._aside: list[SetAside] = []

    # -- state --------------------------------------------------------------------------------

    def refresh(self, ledger: Ledger, own_key: str | None, report: AuditReport | None) -> None:
        """Show ``ledger`` as it is now, marked with the last verification (None: chain checked only)."""
        self.beginResetModel()
        self._ledger = ledger
        self._own_key = own_key
        self._usable = len(ledger)
        self._problem = ledger.problem
        self._report = report
        self._aside = ledger.set_aside()
        self.endResetModel()

    @property
    def problem_row(self) -> int | None:
        """The row showing the first bad entry, when the ledger has one."""
        return None if self._problem is None else self._usable

    def status(self, row: int) -> str:
        """What is known of the entry in ``row``: verified, chain checked, or its problem."""
        if self._problem is not None and row == self._usable:
            return f"PROBLEM: {self._problem.reason}"
        if row > self._usable:
            return STATUS_AFTER
        return STATUS_VALID if self._report is not None else STATUS_UNCHECKED

    def content(self, row: int) -> Entry | SetAside | str | None:
        """What ``row`` shows: the parsed entry, what can be read of one at or after the problem,
        why it cannot be read, or None (no such row)."""
        if self._ledger is None or not 0 <= row < self.rowCount():
            return None
        if row < self._usable:
            return self._entry(row)
        offset = row - self._usable
        return self._aside[offset] if offset < len(self._aside) else "nothing could be read of it"

    # -- Qt model interface -------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        if parent.isValid():
            return 0
        if self._problem is None:
            return self._usable
        return self._usable + max(1, len(self._aside))

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable if index.isValid() \
            else Qt.ItemFlag.NoItemFlags

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._ledger is None:
            return None
        row, column = index.row(), index.column()
        if role == Qt.ItemDataRole.BackgroundRole:
            if row == self.problem_row:
                return PROBLEM_BACKGROUND
            return AFTER_BACKGROUND if row >= self._usable else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            right = column in (INDEX, REWARD)
            return int((Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        tooltip = role == Qt.ItemDataRole.ToolTipRole
        if column == STATUS:
            return self.status(row)
        if column == INDEX:
            return str(row)
        if row >= self._usable:
            return None if tooltip else self._aside_text(row, column)
        entry = self._entry(row)
        if isinstance(entry, str):
            return entry if tooltip or column == TIME else "?"
        return self._tooltip(entry, column) if tooltip else self._text(entry, column)

    # -- cells --------------------------------------------------------------------------------

    def _entry(self, row: int) -> Entry | str:
        """The parsed entry, or why it cannot be shown (a problem the audit will name)."""
        assert self._ledger is not None
        try:
            return self._ledger.entry(row)
        except EntryError as exc:
            return f"unreadable: {exc}"

    def _aside_text(self, row: int, column: int) -> str:
        """A cell of an entry at or after the problem: what could be read, unverified."""
        offset = row - self._usable
        if offset >= len(self._aside):
            return "\u2014"
        e = self._aside[offset]
        values = {
            TIME: e.timestamp.replace("T", " ").removesuffix("Z") if e.timestamp else None,
            POLICY: short(e.policy_hash) if e.policy_hash else None,
            REWARD: None if e.mean is None or e.ci95 is None else f"{e.mean:.2f} \u00b1 {e.ci95:.2f}",
            HASH: short(e.hash) if e.hash else None,
            PREV: short(e.prev) if e.prev else None,
            PUBLISHER: self._publisher_of(e.publisher) if e.publisher else None,
        }
        return values.get(column) or "\u2014"

    def _publisher_of(self, public: str) -> str:
        try:
            return "you" if public == self._own_key else key_id(public)
        except ValueError:
            return "?"

    def _publisher(self, entry: Entry) -> str:
        return "you" if entry.publisher == self._own_key else key_id(entry.publisher)

    def _text(self, entry: Entry, column: int) -> str:
        v = entry.verification
        return {
            TIME: entry.timestamp.replace("T", " ").removesuffix("Z"),
            POLICY: short(entry.policy_hash),
            REWARD: f"{v.mean:.2f} \u00b1 {v.ci95:.2f}",
            HASH: short(entry.hash),
            PREV: short(entry.prev),
            PUBLISHER: self._publisher(entry),
        }[column]

    def _tooltip(self, entry: Entry, column: int) -> str | None:
        v = entry.verification
        if column == REWARD:
            return (f"mean {v.mean:.3f}, std {v.std:.3f}, 95% CI \u00b1{v.ci95:.3f}\n"
                    f"{v.fraction_of_optimum:.1%} of the optimum ({v.optimum:.2f})\n"
                    f"{v.episodes} unseen episodes, suite {v.suite}")
        if column == PUBLISHER:
            return f"key id {key_id(entry.publisher)}\npublic key {entry.publisher}"
        return {TIME: f"{entry.timestamp} (UTC), origin: {entry.origin.kind}",
                POLICY: entry.policy_hash, HASH: entry.hash, PREV: entry.prev}.get(column)
