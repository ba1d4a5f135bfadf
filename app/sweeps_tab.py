"""The Sweeps tab: train one policy per combination of settings and seeds, watch the seed groups.

The sweep runs in a child process (its own process pool or Ray inside); each finished run comes
back with its verified figures, its training curve and its tables. The window's process is the
ledger's only writer: it chains the best run per preset (or toy-text task), or the runs selected,
on request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.model import AppModel, Findings, Place
from app.process_runner import in_child_process
from app.runs_table import COLOURS
from app.sweep_form import SweepForm
from app.task_map import task_decimals
from app.widgets import named, settings_and_work
from app.worker import TaskRunner, one_line
from policyledger_core.sweep.execute import best_per_preset, chain_runs, stream
from policyledger_core.sweep.plan import RunSpec
from policyledger_core.sweep.runs import RunOutcome
from policyledger_core.sweep.summary import groups
from policyledger_core.tasks.spec import task_info

COLUMNS = ("preset or task", "algorithm", "settings", "seed", "state", "verified reward", "of optimum",
           "policy", "entry")
MAX_DRAWN_GROUPS = len(COLOURS)
"""Groups drawn on the plot (the first ones); the table lists every run."""
DRAW_MS = 200


def chain_task(place: Place, outcomes: Sequence[RunOutcome]) -> tuple[list[dict[str, Any]], Findings]:
    """Chain runs' policies on a Context of the task's own."""
    ctx = place.open()
    return chain_runs(ctx, outcomes), Findings.of(ctx)


def _subject(spec: RunSpec) -> str:
    """What a run trains on, as the table shows it: the preset's name, or the task's title."""
    return task_info(spec.task).title if spec.task is not None else spec.preset


def run_reward_text(outcome: RunOutcome) -> str:
    """A run's verified reward: the replayed mean and its 95% half-width, or a task's exact value."""
    if outcome.exact_value is not None:
        return f"{outcome.exact_value:.{task_decimals(outcome.optimum_expected or 0.0)}f} (exact)"
    return f"{outcome.verified_reward:.2f} \u00b1 {outcome.ci95:.2f}"


class SweepsTab(QWidget):
    """Choose a sweep, run it, compare its seed groups, chain what deserves it."""

    open_policy = Signal(str)
    """A policy hash to show in the Marketplace."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sweepsTab")
        self.model = model
        self.form = SweepForm()
        self.start_button = named(QPushButton("St&art sweep"), "startSweepButton")
        self.stop_button = named(QPushButton("Sto&p"), "stopSweepButton")
        self.stop_button.setEnabled(False)
        self.progress = named(QProgressBar(), "sweepProgress")
        self.status = named(QLabel("Ready."), "sweepStatus")
        self.table = named(QTableWidget(0, len(COLUMNS)), "sweepRunsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        # Widths are set once per sweep: resizing to contents on every result costs milliseconds a cell.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        # The settings column takes the room left (the others keep their widths): no sideways scrolling.
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.plot = named(pg.PlotWidget(), "sweepPlot")
        self.plot.setBackground("w")
        self.plot.setTitle("Seed groups: mean of the last 100 training returns, 95% band across seeds",
                           color="#333", size="10pt")
        self.plot.setLabel("bottom", "episode")
        self.plot.setLabel("left", "return")
        self.chain_best_button = named(QPushButton("Chain &best of each"), "sweepChainBestButton")
        self.chain_best_button.setToolTip("Chain the best finished run of each preset or task: the highest "
                                          "lower bound of its verified reward (a task's: its exact value).")
        self.chain_selected_button = named(QPushButton("Chain &selected"), "sweepChainSelectedButton")
        self.open_button = named(QPushButton("Open in &Marketplace"), "sweepOpenButton")
        for button in (self.chain_best_button, self.chain_selected_button, self.open_button):
            button.setEnabled(False)
        self.specs: list[RunSpec] = []
        self.outcomes: dict[int, RunOutcome] = {}
        self.failed: dict[int, str] = {}
        self.entries: dict[str, int] = {}
        """Policy hash -> ledger entry, for the runs chained from here."""
        self._groups: dict[tuple[Any, ...], int] = {}
        self._curves: dict[tuple[Any, ...], tuple[Any, Any, Any, Any]] = {}
        self._plot_dirty = False
        self._draw_timer = QTimer(self, interval=DRAW_MS, singleShot=True)
        self._draw_timer.timeout.connect(self._draw_if_dirty)
        self._started = 0.0
        self._open_after_chain: str | None = None
        """A policy to open in the Marketplace once the chaining under way is done."""
        self._runner = TaskRunner(self)
        self._chainer = TaskRunner(self)
        self._layout()
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.chain_best_button.clicked.connect(self.chain_best)
        self.chain_selected_button.clicked.connect(self.chain_selected)
        self.open_button.clicked.connect(self._open_selected)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.form.changed.connect(self._update_buttons)
        self.model.workspace_changed.connect(self.reset_view)

    def _layout(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self.form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left.addLayout(buttons)
        left.addStretch(1)
        form_column = QWidget()
        form_column.setLayout(left)
        right = QVBoxLayout()
        right.addWidget(self.plot, 3)
        right.addWidget(self.progress)
        right.addWidget(self.status)
        right.addWidget(self.table, 3)
        actions = QHBoxLayout()
        actions.addStretch(1)
        for button in (self.open_button, self.chain_selected_button, self.chain_best_button):
            actions.addWidget(button)
        right.addLayout(actions)
        right_widget = QWidget()
        right_widget.setLayout(right)
        settings_and_work(self, form_column, right_widget)

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner.busy

    def start(self) -> None:
        """Run the form's sweep (refused at the form when it cannot run)."""
        if self.running:
            return
        specs = self.form.specs()
        if specs is None:
            return
        self.reset_view()
        self.specs = specs
        self._fill_table()
        self.progress.setRange(0, len(specs))
        self.progress.setValue(0)
        self._started = time.monotonic()
        factory = in_child_process(stream, specs, self.form.backend.currentText(), self.form.address_text(),
                                   self.form.workers.value(), daemon=False)
        self._runner.start(factory, progress=self._on_finished_runs, done=self._on_done, error=self._on_error)
        where = self.form.backend.currentText()
        self.status.setText(f"Running {len(specs):,} runs on the {where} backend\u2026")
        self._set_running(True)

    def stop(self) -> None:
        """Stop the sweep: runs not finished are dropped, finished ones kept."""
        self.stop_button.setEnabled(False)
        if self.running:
            self._runner.stop()
            self.status.setText("Stopping\u2026")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.form.setEnabled(not running)
        self._update_buttons()

    def _on_finished_runs(self, items: list[tuple[int, RunOutcome | str]]) -> None:
        for index, outcome in items:
            if isinstance(outcome, RunOutcome):
                self.outcomes[index] = outcome
            else:
                self.failed[index] = outcome
            self._show_row(index)
        done = len(self.outcomes) + len(self.failed)
        self.progress.setValue(done)
        elapsed = time.monotonic() - self._started
        left = elapsed / done * (len(self.specs) - done) if done else 0.0
        if self.stop_button.isEnabled():
            self.status.setText(f"{done:,} of {len(self.specs):,} runs done, about {left:,.0f} s left")
        self._schedule_draw()
        self._update_buttons()

    def _on_done(self, stopped: bool) -> None:
        self._draw_groups()
        self._set_running(False)
        done = len(self.outcomes)
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        if stopped:
            self.status.setText(f"Stopped: kept the {done:,} of {len(self.specs):,} runs that finished"
                                f"{failed}.")
        else:
            seconds = time.monotonic() - self._started
            self.status.setText(f"Finished: {done:,} runs in {seconds:.1f} s{failed}.")

    def _on_error(self, exc: Exception) -> None:
        self._set_running(False)
        self.status.setText(f"Sweep failed: {one_line(exc)}")

    # -- table and plot ----------------------------------------------------------------------

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.specs))
        for index, spec in enumerate(self.specs):
            colour = self._groups.setdefault(spec.group, len(self._groups))
            settings = spec.hyper.to_dict()
            swept = [name for name, _ in self._swept()]
            shown = " ".join(f"{n}={settings[n]}" for n in swept)
            values = (_subject(spec), spec.algorithm, shown, str(spec.seed), "waiting", "", "", "", "")
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setData(Qt.ItemDataRole.DecorationRole, QColor(*COLOURS[colour % len(COLOURS)]))
                self.table.setItem(index, column, item)
        self.table.resizeColumnsToContents()
        metrics = self.table.fontMetrics()
        for column, sample in ((4, "waiting"), (5, "-000.00 \u00b1 00.00"), (6, "100.0%"),
                               (7, "0123456789ab")):
            self.table.setColumnWidth(column, max(self.table.columnWidth(column),
                                                  metrics.horizontalAdvance(sample) + 16))

    def _swept(self) -> list[tuple[str, str]]:
        return [(name.currentText(), values.text()) for name, values in self.form.settings
                if name.currentText() in self.specs[0].hyper.to_dict()] if self.specs else []

    def _show_row(self, index: int) -> None:
        outcome = self.outcomes.get(index)
        cells: dict[int, str]
        if outcome is None:
            cells = {4: "failed"}
            item = self.table.item(index, 4)
            if item is not None:
                item.setToolTip(self.failed.get(index, ""))
        else:
            entry = self.entries.get(outcome.policy_hash)
            cells = {4: "done", 5: run_reward_text(outcome),
                     6: f"{outcome.fraction_of_optimum:.1%}", 7: outcome.policy_hash[:12],
                     8: "" if entry is None else f"#{entry}"}
        for column, text in cells.items():
            item = self.table.item(index, column)
            if item is not None:
                item.setText(text)

    def _draw_groups(self) -> None:
        """Each group's mean curve and band: items made once per group, then only given new data."""
        self._plot_dirty = False
        finished = [self.outcomes[i] for i in sorted(self.outcomes)]
        for group in groups(finished):
            key = group.runs[0].spec.group
            number = self._groups.get(key, 0)
            if number >= MAX_DRAWN_GROUPS:
                continue
            episodes, mean, half = group.curve()
            if not episodes:
                continue
            items = self._curves.get(key)
            if items is None:
                colour = COLOURS[number % len(COLOURS)]
                line = pg.PlotDataItem(pen=pg.mkPen(colour, width=2))
                upper, lower = pg.PlotDataItem(pen=None), pg.PlotDataItem(pen=None)
                band = pg.FillBetweenItem(upper, lower, brush=pg.mkBrush(*colour, 50))
                self.plot.addItem(band)
                self.plot.addItem(line)
                items = self._curves[key] = (line, upper, lower, band)
            line, upper, lower, _band = items
            line.setData(episodes, mean)
            spread = half if half is not None else [0.0] * len(mean)
            upper.setData(episodes, [m + h for m, h in zip(mean, spread, strict=True)])
            lower.setData(episodes, [m - h for m, h in zip(mean, spread, strict=True)])

    def _draw_if_dirty(self) -> None:
        if self._plot_dirty:
            self._draw_groups()

    def _schedule_draw(self) -> None:
        """Redraw at most a few times a second, however fast runs finish."""
        self._plot_dirty = True
        if not self._draw_timer.isActive():
            self._draw_timer.start()

    # -- chaining and the marketplace --------------------------------------------------------

    def _selected(self) -> list[tuple[int, RunOutcome]]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [(row, self.outcomes[row]) for row in rows if row in self.outcomes]

    def _update_buttons(self) -> None:
        idle = not self.running and not self._chainer.busy
        selected = self._selected()
        writable = not self.model.ctx.ledger.read_only
        self.chain_best_button.setEnabled(idle and writable and bool(self.outcomes))
        self.chain_selected_button.setEnabled(idle and writable and bool(selected))
        chained = len(selected) == 1 and selected[0][1].policy_hash in self.entries
        # A run not chained yet is chained first: the Marketplace lists only what the ledger holds.
        self.open_button.setText("Open in &Marketplace" if chained or not selected
                                 else "Chain && open in &Marketplace")
        self.open_button.setEnabled(chained or (len(selected) == 1 and idle and writable))
        self.open_button.setToolTip(
            "" if chained or writable else "The ledger is read-only until it is repaired: "
                                           "a run must be chained before the Marketplace can show it.")

    def chain_best(self) -> None:
        """Chain the best finished run of each preset or task (as ``sweep --chain best`` picks it)."""
        self._chain(best_per_preset(sorted(self.outcomes.items())))

    def chain_selected(self) -> None:
        self._chain([outcome for _, outcome in self._selected()])

    def _chain(self, outcomes: list[RunOutcome], then_open: str | None = None) -> None:
        if not outcomes or self._chainer.busy:
            return
        self._open_after_chain = then_open
        place = self.model.place
        self.status.setText(f"Chaining {len(outcomes)} polic{'y' if len(outcomes) == 1 else 'ies'}\u2026")
        self._chainer.call(lambda: chain_task(place, outcomes), done=self._on_chained,
                           error=self._on_chain_failed)
        self._update_buttons()

    def _on_chained(self, done: tuple[list[dict[str, Any]], Findings]) -> None:
        chained, findings = done
        for record in chained:
            self.entries[record["policy_hash"]] = record["entry_index"]
        for index in self.outcomes:
            self._show_row(index)
        created = sum(1 for record in chained if record["new_entry"])
        self.status.setText(f"Chained {len(chained)} polic{'y' if len(chained) == 1 else 'ies'} "
                            f"({created} new entr{'y' if created == 1 else 'ies'}).")
        self.model.notify_changed(self, findings)
        self._update_buttons()
        wanted, self._open_after_chain = self._open_after_chain, None
        if wanted is not None and wanted in self.entries:
            self.open_policy.emit(wanted)

    def _on_chain_failed(self, exc: Exception) -> None:
        self._open_after_chain = None
        self.status.setText(f"Could not chain: {one_line(exc)}; nothing else was changed.")
        self._update_buttons()

    def _open_selected(self) -> None:
        selected = self._selected()
        if len(selected) != 1:
            return
        wanted = selected[0][1].policy_hash
        if wanted in self.entries:
            self.open_policy.emit(wanted)
        else:
            self._chain([selected[0][1]], then_open=wanted)

    # -- lifecycle ---------------------------------------------------------------------------

    def reset_view(self) -> None:
        """Back to an empty sweep (a new one starts, or another workspace was opened)."""
        if self.running:
            return
        self.specs, self.outcomes, self.failed, self.entries = [], {}, {}, {}
        self._groups = {}
        self.table.setRowCount(0)
        for items in self._curves.values():
            for item in (items[0], items[3]):
                self.plot.removeItem(item)
        self._curves = {}
        self.progress.setValue(0)
        self._update_buttons()

    def shutdown(self) -> None:
        """Stop the sweep at once (finished runs stay in memory only); let a chaining finish."""
        self._runner.shutdown()
        self._chainer.shutdown(cancel=False)
