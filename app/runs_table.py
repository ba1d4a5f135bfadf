"""The session's runs: a table of every training run; finished runs' curves can be overlaid on the rewards.

A finished run keeps its overlay for the whole session: its mean of the last 100 at most
2,048 points (buckets of episodes, with their environment steps), 48 KB however long the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets import named

Floats = npt.NDArray[np.float64]
COLUMNS = ("name", "preset", "algorithm", "seed", "K", "episodes", "verified result")
COMPARE_COLUMNS = ("name", "preset", "hyperparameters", "algorithm", "seed", "K", "episodes",
                   "env steps", "training reward", "verified result")
COLOURS = ((214, 39, 40), (190, 0, 190), (140, 86, 75), (23, 190, 207), (188, 189, 34),
           (127, 127, 127), (0, 0, 0), (255, 152, 150), (100, 60, 0))
"""Overlay colours: none of the live curves' blues, orange, green or purple."""
CURRENT_BRUSH = QColor(255, 244, 200)


@dataclass
class Run:
    """One training run of the session: its settings, its result, and (once finished) its curve."""

    name: str
    preset: str
    hyper: str
    algorithm: str
    seed: int
    agents: int
    colour: tuple[int, int, int]
    episodes: int = 0
    env_steps: int | None = None
    training_reward: str = ""
    verified: str = ""
    finished: bool = False
    episode: Floats = field(default_factory=lambda: np.empty(0))
    steps: Floats = field(default_factory=lambda: np.empty(0))
    """Cumulative environment steps at the end of each episode (per agent for a population)."""
    rolling: Floats = field(default_factory=lambda: np.empty(0))
    overlay: pg.PlotDataItem | None = None

    def freeze(self, episode: Floats, steps: Floats, rolling: Floats) -> None:
        """Keep copies of the run's overlay (bounded: the live history serves the next run)."""
        n = min(len(episode), len(steps), len(rolling))
        self.episode = np.array(episode[:n], dtype=np.float64)
        self.steps = np.array(steps[:n], dtype=np.float64)
        self.rolling = np.array(rolling[:n], dtype=np.float64)
        for array in (self.episode, self.steps, self.rolling):
            array.setflags(write=False)
        self.finished = True


class RunsPanel(QWidget):
    """The runs table with its Compare button; ticked finished runs are overlaid on ``plot``."""

    def __init__(self, plot: pg.PlotWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = plot
        self.runs: list[Run] = []
        self.current: Run | None = None
        self.x_steps = False
        """Overlays drawn against environment steps instead of episodes (as the live curves)."""
        self.table = named(QTableWidget(0, len(COLUMNS)), "runsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setToolTip("Tick a finished run to overlay its mean of the last 100 episodes on the "
                              "reward plot; double-click a name to rename it.")
        self.compare_button = named(QPushButton("Compare"), "compareRunsButton")
        self.compare_button.setEnabled(False)
        self.compare_button.setToolTip("Select two or more runs to compare their settings and results.")
        self.compare_dialog: QDialog | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.compare_button)
        layout.addLayout(buttons)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.compare_button.clicked.connect(self.compare)

    # -- runs ---------------------------------------------------------------------------------------

    def add(self, preset: str, hyper: str, algorithm: str, seed: int, agents: int, episodes: int) -> Run:
        """A new run starts: it becomes the current run (highlighted; its curves are the live ones)."""
        colour = COLOURS[len(self.runs) % len(COLOURS)]
        run = Run(f"run {len(self.runs) + 1}", preset, hyper, algorithm, seed, agents, colour, episodes)
        self.runs.append(run)
        self.current = run
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        for column, text in enumerate(self._texts(run)):
            item = QTableWidgetItem(text)
            flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            if column == 0:
                flags |= Qt.ItemFlag.ItemIsEditable
                item.setData(Qt.ItemDataRole.DecorationRole, QColor(*colour))
                item.setCheckState(Qt.CheckState.Unchecked)
            item.setFlags(flags)
            self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self._highlight()
        self.table.scrollToBottom()
        return run

    def _texts(self, run: Run) -> list[str]:
        return [run.name, run.preset, run.algorithm, str(run.seed), str(run.agents),
                f"{run.episodes:,}", run.verified or ("-" if run.finished else "running\u2026")]

    def row_of(self, run: Run) -> int:
        return self.runs.index(run)

    def refresh_row(self, run: Run) -> None:
        """Show ``run``'s values again (episodes, verified result)."""
        row = self.row_of(run)
        self.table.blockSignals(True)
        for column, text in enumerate(self._texts(run)):
            item = self.table.item(row, column)
            if item is not None and column > 0:
                item.setText(text)
        name = self.table.item(row, 0)
        if name is not None:
            flags = name.flags()
            checkable = run.finished
            name.setFlags(flags | Qt.ItemFlag.ItemIsUserCheckable if checkable
                          else flags & ~Qt.ItemFlag.ItemIsUserCheckable)
            name.setToolTip("" if checkable else "Running: it can be overlaid once it ends.")
        self.table.blockSignals(False)

    def finish(self, run: Run, episode: Floats, steps: Floats, rolling: Floats) -> None:
        """The run ended: freeze its overlay (from now on it can be ticked to be overlaid)."""
        run.freeze(episode, steps, rolling)
        self.refresh_row(run)

    def new_current(self) -> None:
        """Every earlier run can now be ticked."""
        for run in self.runs:
            self.refresh_row(run)
        self._highlight()

    def _highlight(self) -> None:
        for row, run in enumerate(self.runs):
            current = run is self.current
            for column in range(self.table.columnCount()):
                item = self.table.item(row, column)
                if item is None:
                    continue
                font = QFont(item.font())
                font.setBold(current)
                self.table.blockSignals(True)
                item.setFont(font)
                item.setBackground(QBrush(CURRENT_BRUSH) if current else QBrush())
                self.table.blockSignals(False)

    # -- ticks, names, compare ----------------------------------------------------------------------

    def set_shown(self, run: Run, shown: bool) -> None:
        """Tick (overlay) or untick (hide) a finished run."""
        item = self.table.item(self.row_of(run), 0)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)

    def rename(self, run: Run, name: str) -> None:
        item = self.table.item(self.row_of(run), 0)
        if item is not None:
            item.setText(name)

    def shown(self) -> list[Run]:
        """The runs overlaid on the reward plot."""
        return [run for run in self.runs if run.overlay is not None and run.overlay.isVisible()]

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or item.row() >= len(self.runs):
            return
        run = self.runs[item.row()]
        name = item.text().strip()
        if name and name != run.name:
            run.name = name
        elif not name:
            self.table.blockSignals(True)
            item.setText(run.name)
            self.table.blockSignals(False)
        self._overlay(run, item.checkState() == Qt.CheckState.Checked)

    def _overlay(self, run: Run, shown: bool) -> None:
        if shown and run.finished and run.overlay is None:
            item = pg.PlotDataItem(pen=pg.mkPen(run.colour, width=1))
            self.plot.addItem(item)  # no name: the table is its legend (the colour beside the name)
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            item.setData(self._x(run), run.rolling, skipFiniteCheck=True)
            item.setZValue(1)  # above the current run's noisy returns
            run.overlay = item
        if run.overlay is not None:
            run.overlay.setVisible(shown and run.finished)

    def _x(self, run: Run) -> Floats:
        return run.steps if self.x_steps else run.episode

    def set_x_steps(self, on: bool) -> None:
        """Draw the overlays against environment steps (``on``) or episodes."""
        self.x_steps = on
        for run in self.runs:
            if run.overlay is not None:
                run.overlay.setData(self._x(run), run.rolling, skipFiniteCheck=True)

    def _on_selection(self) -> None:
        self.compare_button.setEnabled(len(self.selected()) >= 2)

    def selected(self) -> list[Run]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.runs[row] for row in rows if row < len(self.runs)]

    def compare(self) -> None:
        """A small table of the selected runs' settings and results; finished ones are overlaid too."""
        runs = self.selected()
        if len(runs) < 2:
            return
        for run in runs:
            if run.finished:
                self.set_shown(run, True)
        dialog = QDialog(self)
        dialog.setObjectName("compareRunsDialog")
        dialog.setWindowTitle("Compare runs")
        table = named(QTableWidget(len(runs), len(COMPARE_COLUMNS)), "compareRunsTable")
        table.setHorizontalHeaderLabels(list(COMPARE_COLUMNS))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        for row, run in enumerate(runs):
            values = (run.name, run.preset, run.hyper, run.algorithm, str(run.seed), str(run.agents),
                      f"{run.episodes:,}", "-" if run.env_steps is None else f"{run.env_steps:,}",
                      run.training_reward or "-", run.verified or "-")
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setData(Qt.ItemDataRole.DecorationRole, QColor(*run.colour))
                table.setItem(row, column, item)
        table.resizeColumnsToContents()
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        close = QPushButton("Close")
        close.clicked.connect(dialog.accept)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
        dialog.resize(min(table.horizontalHeader().length() + 40, 1100), 120 + 28 * len(runs))
        self.compare_dialog = dialog
        dialog.show()
