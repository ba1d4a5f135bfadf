"""The marketplace table: ranked rows as a Qt model, the preset filter and its combo box, and the view."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView, QTableView

from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.workspace.marketplace import RankedPolicy

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole
HASH_ROLE = Qt.ItemDataRole.UserRole + 1
PRESET_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("Rank", "Policy", "Preset", "Verified\nreward", "Of opt.", "Publisher", "Origin", "Date")
"""Header texts, short so that each column is about as wide as its values (tooltips say more)."""
HEADER_TIPS = (
    "Rank by the lower bound of the verified reward's 95% confidence interval",
    "Policy hash (first 12 hex digits; the tooltip shows all of it)",
    "Environment configuration (preset name, or a fingerprint of a custom one)",
    "Mean return on the evaluation suite, recomputed by replay, \u00b1 the 95% CI half-width",
    "Verified reward as a share of the optimum's mean on the same episodes",
    "Who published the policy (you, or the other publisher's key id)",
    "How the policy entered this ledger: trained, added or imported",
    "The day its first ledger entry was written (UTC; the tooltip shows the time)",
)
ALL_PRESETS = "All presets"


def preset_label(row: RankedPolicy) -> str:
    """The preset's name, or a short fingerprint of a custom configuration."""
    if row.preset is not None:
        return row.preset
    return f"custom H={row.config.horizon} #{sha256_hex(canonical_bytes(row.config.to_dict()))[:6]}"


class RankingModel(QAbstractTableModel):
    """The marketplace rows as a table; numbers sort as numbers (SORT_ROLE)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RankedPolicy] = []

    def set_rows(self, rows: list[RankedPolicy]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's API)
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == SORT_ROLE:
            return (row.rank, row.policy_hash, preset_label(row), row.mean, row.fraction_of_optimum,
                    "" if row.own else row.publisher_id, row.origin, row.timestamp)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, 3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == HASH_ROLE:
            return row.policy_hash
        if role == PRESET_ROLE:
            return preset_label(row)
        return None

    @staticmethod
    def _text(row: RankedPolicy, column: int) -> str:
        return (str(row.rank), row.policy_hash[:12], preset_label(row),
                f"{row.mean:.2f} \u00b1 {row.ci95:.2f}",
                f"{row.fraction_of_optimum:.1%}", "you" if row.own else row.publisher_id, row.origin,
                row.timestamp[:10])[column]

    @staticmethod
    def _tooltip(row: RankedPolicy, column: int) -> str | None:
        if column == 1:
            return row.policy_hash
        if column == 2:
            return str(row.config.to_dict())
        if column == 3:
            return f"95% CI [{row.interval.low:.2f}, {row.interval.high:.2f}]; ranked by its lower bound"
        if column == 4:
            return f"optimum {row.optimum:.2f} on the same episodes"
        if column == 5:
            return f"publisher key {row.publisher}"
        if column == 7:
            return row.timestamp.replace("T", " ").replace("Z", " UTC")
        return None


class PresetFilter(QSortFilterProxyModel):
    """Keeps the rows of one preset (None: all)."""

    def __init__(self) -> None:
        super().__init__()
        self.preset: str | None = None
        self.setSortRole(SORT_ROLE)

    def set_preset(self, preset: str | None) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self.preset = preset
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.preset = preset
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self.preset is None:
            return True
        return bool(self.sourceModel().index(source_row, 0, source_parent).data(PRESET_ROLE) == self.preset)


class PresetCombo(QComboBox):
    """Picks the preset the table shows: "All presets" or one preset label of the rows."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("presetFilter")
        self.addItem(ALL_PRESETS)

    @property
    def preset(self) -> str | None:
        """The chosen preset label; None for all."""
        text = self.currentText()
        return None if text in (ALL_PRESETS, "") else text

    def fill(self, rows: list[RankedPolicy]) -> None:
        """Offer the presets of ``rows``, keeping the choice when it is still there (no signal)."""
        chosen = self.currentText()
        labels = sorted({preset_label(r) for r in rows})
        self.blockSignals(True)
        self.clear()
        self.addItems([ALL_PRESETS, *labels])
        self.setCurrentText(chosen if chosen in labels else ALL_PRESETS)
        self.blockSignals(False)


class RankingTable(QTableView):
    """The ranking as a sortable table with a preset filter; whole rows are selected.

    Columns are sized to their contents whenever the rows change, and stay resizable by hand.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("marketplaceTable")
        self.ranking = RankingModel()
        self.proxy = PresetFilter()
        self.proxy.setSourceModel(self.ranking)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setHighlightSections(False)
        self.resizeColumnsToContents()

    def set_rows(self, rows: list[RankedPolicy], preset: str | None = None) -> bool:
        """Show ``rows`` of ``preset`` (None: all), keeping the selection; False: none stays selected."""
        keep = {r.policy_hash for r in self.selected_rows()}
        current = self.current_row()
        self.ranking.set_rows(rows)
        self.proxy.set_preset(preset)
        self.resizeColumnsToContents()
        return self.select_hashes(keep, None if current is None else current.policy_hash)

    def _row_at(self, index: QModelIndex) -> RankedPolicy:
        return self.ranking.rows[self.proxy.mapToSource(index).row()]

    def visible_rows(self) -> list[RankedPolicy]:
        """The rows in table order (after filter and sort)."""
        return [self._row_at(self.proxy.index(i, 0)) for i in range(self.proxy.rowCount())]

    def selected_rows(self) -> list[RankedPolicy]:
        """Selected rows, in table order."""
        indexes = sorted(self.selectionModel().selectedRows(), key=lambda ix: ix.row())
        return [self._row_at(ix) for ix in indexes]

    def current_row(self) -> RankedPolicy | None:
        """The current row if it is selected, else the first selected row."""
        selection = self.selectionModel()
        current = selection.currentIndex()
        if current.isValid() and selection.isRowSelected(current.row(), QModelIndex()):
            return self._row_at(current)
        rows = self.selected_rows()
        return rows[0] if rows else None

    def select_hashes(self, hashes: set[str], current: str | None = None) -> bool:
        """Select the visible rows of these policies; ``current`` gets the focus. False: none visible."""
        selection = QItemSelection()
        current_index = QModelIndex()
        for i in range(self.proxy.rowCount()):
            index = self.proxy.index(i, 0)
            policy_hash = index.data(HASH_ROLE)
            if policy_hash in hashes:
                selection.select(index, self.proxy.index(i, len(COLUMNS) - 1))
                if policy_hash == current or not current_index.isValid():
                    current_index = index
        flags = QItemSelectionModel.SelectionFlag
        model = self.selectionModel()
        model.select(selection, flags.ClearAndSelect | flags.Rows)
        if not current_index.isValid():
            return False
        model.setCurrentIndex(current_index, flags.NoUpdate)
        self.scrollTo(current_index)
        return True
