"""The session's runs, each knowing its task: only runs of the task shown are overlaid.

The cyber-defense task's returns span tens, FrozenLake's are 0 or 1 and Taxi's reach -2,000
while it explores: a curve of one task drawn over another's would be flat or off the view, and
read as if comparable. So a finished run can be ticked (overlaid) only while the run shown is
of the same task (any cyber-defense preset counts as one task, as before); the others stay in
the list, greyed out of ticking, and say why.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QWidget

from app.runs_table import COLUMNS, COMPARE_COLUMNS, Run, RunsPanel
from app.training_form import CYBER, CYBER_TITLE
from policyledger_core.tasks.spec import CATALOGUE

PRESET_TIP = "The cyber-defense preset of a run, or the toy-text task it trained on."


def task_title(task: str) -> str:
    """How a task key (:data:`~app.training_form.CYBER` or a Gymnasium id) is shown."""
    info = CATALOGUE.get(task)
    return CYBER_TITLE if info is None else info.title


class TaskRunsPanel(RunsPanel):
    """:class:`~app.runs_table.RunsPanel` with each run's task; overlays only of the task shown."""

    def __init__(self, plot: pg.PlotWidget, parent: QWidget | None = None) -> None:
        super().__init__(plot, parent)
        self._tasks: dict[int, str] = {}
        """Each run's task, by the run's id (a session's runs live as long as the panel)."""
        header = self.table.horizontalHeaderItem(COLUMNS.index("preset"))
        if header is not None:  # a toy-text task has one configuration: its title stands for a preset
            header.setToolTip(PRESET_TIP)

    def add(self, preset: str, hyper: str, algorithm: str, seed: int, agents: int, episodes: int,
            task: str = CYBER) -> Run:
        """A new run of ``task`` starts (see :meth:`RunsPanel.add`)."""
        run = super().add(preset, hyper, algorithm, seed, agents, episodes)
        self._tasks[id(run)] = task
        return run

    def task_of(self, run: Run) -> str:
        return self._tasks.get(id(run), CYBER)

    def overlayable(self, run: Run) -> bool:
        """Whether ``run`` is of the task of the run shown (the current one)."""
        current = self.current
        return current is None or current is run or self.task_of(run) == self.task_of(current)

    def refresh_row(self, run: Run) -> None:
        super().refresh_row(run)
        if self.overlayable(run):
            return
        item = self.table.item(self.row_of(run), 0)
        if item is not None:
            self.table.blockSignals(True)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            shown = task_title(self.task_of(self.current)) if self.current is not None else ""
            item.setToolTip(f"A run of {task_title(self.task_of(run))}: the run shown is of {shown}, whose "
                            "returns are on another scale. Start a run of the same task to overlay it.")
            self.table.blockSignals(False)
        if run.overlay is not None:
            run.overlay.setVisible(False)

    def _overlay(self, run: Run, shown: bool) -> None:
        if shown and not self.overlayable(run):  # ticked by a program, or by Compare: not drawn
            shown = False
            item = self.table.item(self.row_of(run), 0)
            if item is not None:
                self.table.blockSignals(True)
                item.setCheckState(Qt.CheckState.Unchecked)
                self.table.blockSignals(False)
        super()._overlay(run, shown)

    def compare(self) -> None:
        super().compare()
        dialog = self.compare_dialog
        table = dialog.findChild(QTableWidget, "compareRunsTable") if dialog is not None else None
        header = table.horizontalHeaderItem(COMPARE_COLUMNS.index("preset")) if table is not None else None
        if header is not None:
            header.setToolTip(PRESET_TIP)
