"""The marketplace table: ranked rows as a Qt model, the preset and text filter, its combo box, and the view.

Policies of different presets are never ranked against each other: the Rank column shows the rank
within the row's preset, and in "All presets" the rows are grouped by preset (a line between groups).
A toy-text task's policies form the group of that task: its title is their preset (the column
shows it without its parenthesised detail, "FrozenLake 8x8" for "FrozenLake 8x8 (slippery)", elided
in the middle when narrow so that "4x4" and "8x8" stay in sight; the tooltip and the preset filter
have the whole title).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPen,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QMenu,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
)

from app.task_map import task_decimals
from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.policy import config_dict
from policyledger_core.tasks.spec import TaskInfo
from policyledger_core.workspace.marketplace import RankedPolicy

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole
HASH_ROLE = Qt.ItemDataRole.UserRole + 1
PRESET_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("#", "Policy", "Preset", "Verified\nreward", "Of\nopt.", "By", "Origin", "Date")
"""Header texts, short so that each column is about as wide as its values (tooltips say more)."""
HEADER_TIPS = (
    "Rank within its preset, by the lower bound of the verified reward's 95% confidence interval",
    "Policy hash (first 12 hex digits; the tooltip shows all of it)",
    "Environment configuration (preset name, or a fingerprint of a custom one), or the toy-text task",
    "Mean return on the evaluation suite, recomputed by replay, \u00b1 the 95% CI half-width",
    "Verified reward as a share of the optimum's mean on the same episodes",
    "Who published the policy (you, or the other publisher's key id)",
    "How the policy entered this ledger: trained, added or imported",
    "The day its first ledger entry was written (UTC; the tooltip shows the time)",
)
ALL_PRESETS = "All presets"
PRESET_COLUMN = 2
SHRINKING = (5, 1, 7, 2)
"""When the table is narrow, the publisher's key id, the policy hash, the date and the preset give way
(elided) in turn."""
MIN_SHRUNK_WIDTH = 70
"""Down to this width each (about 8 hex digits shown); the others keep their values."""
GROUP_LINE = QColor(110, 110, 110)
FILTER_PLACEHOLDER = "Filter by hash prefix or publisher"
COPY_HASH = "Copy policy hash"


def preset_label(row: RankedPolicy) -> str:
    """The preset's name, or a short fingerprint of a custom configuration."""
    if row.preset is not None:
        return row.preset
    horizon = row.config.spec.horizon if isinstance(row.config, TaskInfo) else row.config.horizon
    return f"custom H={horizon} #{sha256_hex(canonical_bytes(config_dict(row.config)))[:6]}"


def preset_text(row: RankedPolicy) -> str:
    """What the Preset column shows: the preset label, a toy-text task's title without its detail in
    parentheses (both FrozenLake titles say "(slippery)": the column keeps what tells them apart)."""
    label = preset_label(row)
    if isinstance(row.config, TaskInfo) and row.preset is not None:
        return label.split(" (")[0]
    return label


def rank_within_preset(rows: list[RankedPolicy]) -> list[int]:
    """Each row's rank among the rows of its preset label (rows in the core's overall rank order)."""
    seen: dict[str, int] = {}
    ranks = []
    for row in sorted(rows, key=lambda r: r.rank):
        label = preset_label(row)
        seen[label] = seen.get(label, 0) + 1
        ranks.append((row.rank, seen[label]))
    by_rank = dict(ranks)
    return [by_rank[row.rank] for row in rows]


def publisher_text(row: RankedPolicy) -> str:
    """The publisher as the table shows it: "you", or the other publisher's key id."""
    return "you" if row.own else row.publisher_id


def matches(row: RankedPolicy, text: str) -> bool:
    """The filter: ``text`` (case-insensitive) begins the policy hash or the publisher shown."""
    needle = text.strip().lower()
    return (not needle or row.policy_hash.lower().startswith(needle)
            or publisher_text(row).lower().startswith(needle))


class RankingModel(QAbstractTableModel):
    """The marketplace rows as a table; numbers sort as numbers (SORT_ROLE)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[RankedPolicy] = []
        """The core's rows, each with its rank within its preset (the core ranks all of them together):
        the table, the detail panel and Compare show that rank."""

    def set_rows(self, rows: list[RankedPolicy]) -> None:
        self.beginResetModel()
        ranks = rank_within_preset(rows)
        self.rows = [dataclasses.replace(r, rank=k) for r, k in zip(rows, ranks, strict=True)]
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
        group_rank = row.rank
        if role == Qt.ItemDataRole.DisplayRole:
            return str(group_rank) if column == 0 else self._text(row, column)
        if role == SORT_ROLE:  # by rank: grouped by preset, then the rank within it
            return (f"{preset_label(row)}\x00{group_rank:09d}", row.policy_hash, preset_label(row), row.mean,
                    row.fraction_of_optimum, "" if row.own else row.publisher_id, row.origin,
                    row.timestamp)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 0:
                return f"rank {group_rank} among the {preset_label(row)} policies"
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
        return (str(row.rank), row.policy_hash[:12], preset_text(row),
                f"{reward_text(row, row.mean)} \u00b1 {reward_text(row, row.ci95)}",
                f"{row.fraction_of_optimum:.1%}", publisher_text(row), row.origin,
                row.timestamp[:10])[column]

    @staticmethod
    def _tooltip(row: RankedPolicy, column: int) -> str | None:
        if column == 1:
            return row.policy_hash
        if column == 2:
            if isinstance(row.config, TaskInfo):
                return f"{row.config.title}: {config_dict(row.config)}"
            return str(config_dict(row.config))
        if column == 3:
            return (f"95% CI [{reward_text(row, row.interval.low)}, {reward_text(row, row.interval.high)}]; "
                    "ranked by its lower bound")
        if column == 4:
            if isinstance(row.config, TaskInfo):
                return f"exact optimum {reward_text(row, row.optimum)} (finite-horizon value iteration)"
            return f"optimum {reward_text(row, row.optimum)} on the same episodes"
        if column == 5:
            return f"publisher key {row.publisher}"
        if column == 7:
            return row.timestamp.replace("T", " ").replace("Z", " UTC")
        return None


def reward_text(row: RankedPolicy, value: float) -> str:
    """A reward of ``row``'s task, with the digits its detail panel shows."""
    return f"{value:.{task_decimals(row.optimum) if isinstance(row.config, TaskInfo) else 2}f}"


class PresetFilter(QSortFilterProxyModel):
    """Keeps the rows of one preset (None: all) that match the filter text (see :func:`matches`)."""

    def __init__(self) -> None:
        super().__init__()
        self.preset: str | None = None
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_preset(self, preset: str | None) -> None:
        self._change(preset, self.text)

    def set_text(self, text: str) -> None:
        self._change(self.preset, text)

    def _change(self, preset: str | None, text: str) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self.preset, self.text = preset, text
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.preset, self.text = preset, text
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        source = self.sourceModel()
        preset = source.index(source_row, 0, source_parent).data(PRESET_ROLE)
        if self.preset is not None and preset != self.preset:
            return False
        assert isinstance(source, RankingModel)
        return matches(source.rows[source_row], self.text)


class FilterEdit(QLineEdit):
    """The table's text filter; Escape clears it."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("marketplaceFilter")
        self.setPlaceholderText(FILTER_PLACEHOLDER)
        self.setClearButtonEnabled(True)
        self.setToolTip("Show the policies whose hash begins with this, or whose publisher (a key id, or "
                        "\"you\") does; case-insensitive. Escape clears it.")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.text():
            self.clear()
            event.accept()
            return
        super().keyPressEvent(event)


class GroupDelegate(QStyledItemDelegate):
    """Draws a line above the first row of each preset group while the rows are sorted by rank."""

    def __init__(self, table: RankingTable) -> None:
        super().__init__(table)
        self.table = table

    def initStyleOption(self, option: QStyleOptionViewItem, index: Index) -> None:
        super().initStyleOption(option, index)
        if index.column() == PRESET_COLUMN:  # "FrozenLake 4x4" and "8x8" differ at their ends
            option.textElideMode = Qt.TextElideMode.ElideMiddle

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        super().paint(painter, option, index)
        if index.row() > 0 and self.table.starts_group(index.row()):
            painter.save()
            painter.setPen(QPen(GROUP_LINE, 2))
            top = option.rect.top() + 1
            painter.drawLine(option.rect.left(), top, option.rect.right(), top)
            painter.restore()


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
    """The ranking as a sortable table with a preset and text filter; whole rows are selected.

    Columns are sized to their contents whenever the rows change, and stay resizable by hand; when
    the table is too narrow for them all, the hash column gives way (elided) rather than scrolling.
    Right click or Ctrl+C copies the selected policy's full hash.
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
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(24)
        header.setDefaultSectionSize(40)  # the stretched last section shrinks down to this
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setItemDelegate(GroupDelegate(self))
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_context_menu_requested)
        header.sortIndicatorChanged.connect(self.fit_columns)
        self.fit_columns()

    def set_rows(self, rows: list[RankedPolicy], preset: str | None = None) -> bool:
        """Show ``rows`` of ``preset`` (None: all), keeping the selection; False: none stays selected."""
        keep = {r.policy_hash for r in self.selected_rows()}
        current = self.current_row()
        self.ranking.set_rows(rows)
        self.proxy.set_preset(preset)
        self.fit_columns()
        return self.select_hashes(keep, None if current is None else current.policy_hash)

    def fit_columns(self) -> None:
        """Size the columns to their contents; when they do not fit, the columns of SHRINKING give way
        in turn (elided, down to a minimum; tooltips have all of it): no sideways scrolling."""
        header = self.horizontalHeader()
        mark = self.style().pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize)  # room of the sort arrow
        sorted_column = header.sortIndicatorSection()
        wants = [max(self.sizeHintForColumn(c), header.sectionSizeHint(c) - (c != sorted_column) * mark)
                 for c in range(len(COLUMNS))]
        excess = sum(wants) - self.viewport().width()
        for column in SHRINKING:
            give = min(max(excess, 0), max(wants[column] - MIN_SHRUNK_WIDTH, 0))
            wants[column] -= give
            excess -= give
        for column, width in enumerate(wants):  # the last section then stretches to the edge
            header.resizeSection(column, width)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:  # the table's width, or a vertical scroll bar came or went
            self.fit_columns()
        return super().viewportEvent(event)

    def starts_group(self, view_row: int) -> bool:
        """The row begins another preset than the row above, while the table is sorted by rank."""
        if view_row <= 0 or self.horizontalHeader().sortIndicatorSection() != 0:
            return False
        above, here = self.proxy.index(view_row - 1, 0), self.proxy.index(view_row, 0)
        return bool(above.data(PRESET_ROLE) != here.data(PRESET_ROLE))

    # -- copying the hash ---------------------------------------------------------------------

    def copy_hashes(self) -> str:
        """Put the selected policies' full hashes on the clipboard (one a line); what was copied."""
        text = "\n".join(r.policy_hash for r in self.selected_rows())
        if text:
            QGuiApplication.clipboard().setText(text)
        return text

    def context_menu(self, pos: QPoint) -> QMenu | None:
        """The menu of the row at ``pos`` (viewport coordinates), which it selects; None off the rows."""
        index = self.indexAt(pos)
        if not index.isValid():
            return None
        if not self.selectionModel().isRowSelected(index.row(), QModelIndex()):
            flags = QItemSelectionModel.SelectionFlag
            self.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)
        menu = QMenu(self)
        menu.setObjectName("marketplaceRowMenu")
        action = QAction(COPY_HASH, menu)
        action.setShortcut(QKeySequence(QKeySequence.StandardKey.Copy))
        action.triggered.connect(self.copy_hashes)
        menu.addAction(action)
        return menu

    def _on_context_menu_requested(self, pos: QPoint) -> None:
        menu = self.context_menu(pos)
        if menu is not None:
            menu.exec(self.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_hashes()
            event.accept()
            return
        super().keyPressEvent(event)

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
