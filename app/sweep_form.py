"""The sweep settings form: presets or tasks, algorithms, up to three swept hyperparameters, seeds,
backend.

A sweep is over one kind: the cyber-defense task's presets, or Gymnasium's toy-text tasks (one
agent, each from its own measured ``recommended`` hyperparameters per algorithm). The form collects
values; the core's :func:`~policyledger_core.sweep.plan.plan` (or ``plan_tasks``) validates them,
and its one-line reason shows under the form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QWidget,
)

from app.widgets import named
from policyledger_core.errors import BadInput
from policyledger_core.learn.hyper import ALGORITHM_NAMES, DEFAULT_HYPER, HYPER_PRESETS
from policyledger_core.sim.config import PRESETS
from policyledger_core.sweep.backends import BACKENDS
from policyledger_core.sweep.plan import SWEPT, TASK_HYPER, RunSpec, parse_setting, plan, plan_tasks
from policyledger_core.tasks.spec import CATALOGUE

SETTING_ROWS = 3
APP_MAX_RUNS = 2000
"""The app keeps every run's tables for chaining: a sweep here stays at most this size."""
NOT_SWEPT = "(not swept)"
FROM_BASE = "as in the base"
"""What 0 episodes per run shows: each run trains as long as its base says (a toy-text task's
recommended episodes differ per task and algorithm)."""
TASK_TIP = ("A toy-text task of Gymnasium (the rows below the cyber-defense presets): one agent, from its "
            "measured recommended hyperparameters.")


@dataclass(frozen=True)
class KindValues:
    """The form's values that belong to one kind of sweep (presets, or toy-text tasks)."""

    agents: int
    base: str
    episodes: int
    settings: tuple[tuple[str, str], ...]
    """Each sweep row: the hyperparameter (or NOT_SWEPT) and its values."""


TASK_VALUES = KindValues(1, TASK_HYPER, 0, ((NOT_SWEPT, ""),) * SETTING_ROWS)
"""The first values of a sweep over toy-text tasks: each task's own recommended values, its seeds."""


class SweepForm(QWidget):
    """What a sweep trains, and where."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        layout.setVerticalSpacing(3)
        self.presets = named(QListWidget(), "sweepPresets")
        self.presets.setToolTip("A sweep is over the cyber-defense task's presets or over toy-text "
                                "tasks: tick either kind.")
        for name in PRESETS:
            ticked = Qt.CheckState.Checked if name == "standard" else Qt.CheckState.Unchecked
            self._add_subject(name, None, ticked)
        for task_id, info in CATALOGUE.items():
            self._add_subject(info.title, task_id, Qt.CheckState.Unchecked)
        self.presets.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.presets.setFixedHeight(self.presets.sizeHintForRow(0) * self.presets.count() + 6)
        self._tasks_chosen = False
        self._kept: dict[bool, KindValues] = {}
        """The values of the kind not shown (True: the tasks'), back when it is ticked again."""
        self.algorithms = {key: named(QCheckBox(name), f"sweepAlgorithm_{key}")
                           for key, name in ALGORITHM_NAMES.items()}
        self.algorithms["q"].setChecked(True)
        algorithms = QWidget()
        row = QHBoxLayout(algorithms)
        row.setContentsMargins(0, 0, 0, 0)
        for box in self.algorithms.values():
            row.addWidget(box)
        self.hyper = named(QComboBox(), "sweepHyperCombo")
        self.hyper.addItems(list(HYPER_PRESETS))
        self.hyper.setCurrentText(DEFAULT_HYPER)
        self.hyper.setToolTip("Where the hyperparameters that are not swept come from.")
        self.settings: list[tuple[QComboBox, QLineEdit]] = []
        layout.addRow("&Presets or tasks", self.presets)
        layout.addRow("Algorithms", algorithms)
        layout.addRow("&Base hyperparameters", self.hyper)
        for i in range(SETTING_ROWS):
            which = named(QComboBox(), f"sweepSettingName{i}")
            which.addItems([NOT_SWEPT, *SWEPT])
            values = named(QLineEdit(), f"sweepSettingValues{i}")
            values.setPlaceholderText("values, e.g. 0.3, 0.6, 1.0")
            pair = QWidget()
            line = QHBoxLayout(pair)
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(which)
            line.addWidget(values, 1)
            self.settings.append((which, values))
            layout.addRow(f"Sweep {i + 1}", pair)
        self.settings[0][0].setCurrentText("learning_rate")
        self.settings[0][1].setText("0.3, 0.6, 1.0")
        self.seeds = named(QSpinBox(minimum=1, maximum=1000, value=5), "sweepSeeds")
        self.episodes = named(QSpinBox(minimum=0, maximum=10_000_000, value=30_000), "sweepEpisodes")
        self.episodes.setSpecialValueText(FROM_BASE)
        self.episodes.setToolTip("0: as the base hyperparameters say (a toy-text task's recommended "
                                 "episodes, per task and algorithm).")
        self.agents = named(QSpinBox(minimum=1, maximum=1024, value=1), "sweepAgents")
        self.backend = named(QComboBox(), "sweepBackend")
        self.backend.addItems(list(BACKENDS))
        self.address = named(QLineEdit(), "sweepAddress")
        self.address.setPlaceholderText("Ray cluster (host:6379); empty: a local Ray")
        self.workers = named(QSpinBox(minimum=1, maximum=4096, value=os.cpu_count() or 1), "sweepWorkers")
        for label, widget in (("&Seeds per setting", self.seeds), ("&Episodes per run", self.episodes),
                              ("Agents per run (&K)", self.agents), ("Back&end", self.backend),
                              ("Cluster address", self.address), ("&Workers", self.workers)):
            layout.addRow(label, widget)
        self.count = named(QLabel(), "sweepRunCount")
        self.error = named(QLabel(), "sweepFormError")
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        self.error.setFixedHeight(self.error.fontMetrics().lineSpacing() * 2 + 4)  # no layout jump
        layout.addRow(self.count)
        layout.addRow(self.error)
        self.presets.itemChanged.connect(self._emit)
        for which, values in self.settings:
            which.currentIndexChanged.connect(self._emit)
            values.textChanged.connect(self._emit)
        for box in self.algorithms.values():
            box.toggled.connect(self._emit)
        for spin in (self.seeds, self.episodes, self.agents):
            spin.valueChanged.connect(self._emit)
        self.hyper.currentIndexChanged.connect(self._emit)
        self.backend.currentIndexChanged.connect(self._on_backend)
        self._on_backend()
        self._emit()

    def _on_backend(self) -> None:
        self.address.setEnabled(self.backend.currentText() == "ray")

    def _add_subject(self, text: str, task_id: str | None, state: Qt.CheckState) -> None:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(state)
        item.setData(Qt.ItemDataRole.UserRole, task_id)
        if task_id is not None:
            item.setToolTip(TASK_TIP)
        self.presets.addItem(item)

    def _emit(self) -> None:
        self._follow_kind()
        self.specs()  # the run count and the error follow every edit
        self.changed.emit()

    def _follow_kind(self) -> None:
        """Each kind keeps its own values: ticking toy-text tasks (one agent, their own recommended
        base, episodes as in the base, nothing swept but the seeds at first) puts the presets'
        values aside, and unticking them brings those back."""
        tasks = bool(self.chosen_tasks())
        if tasks == self._tasks_chosen:
            return
        self._kept[self._tasks_chosen] = self._values()
        self._tasks_chosen = tasks
        self._show_values(self._kept.get(tasks, TASK_VALUES))
        self.agents.setEnabled(not tasks)
        self.hyper.setEnabled(not tasks)
        self.hyper.setToolTip(f"Toy-text tasks: each from its {TASK_HYPER!r} values per algorithm."
                              if tasks else "Where the hyperparameters that are not swept come from.")

    def _values(self) -> KindValues:
        return KindValues(self.agents.value(), self.hyper.currentText(), self.episodes.value(),
                          tuple((name.currentText(), values.text()) for name, values in self.settings))

    def _show_values(self, kept: KindValues) -> None:
        widgets = [self.agents, self.hyper, self.episodes, *(w for pair in self.settings for w in pair)]
        for widget in widgets:
            widget.blockSignals(True)
        self.agents.setValue(kept.agents)
        self.hyper.setCurrentText(kept.base)
        self.episodes.setValue(kept.episodes)
        for (name, values), (shown, text) in zip(self.settings, kept.settings, strict=True):
            name.setCurrentText(shown)
            values.setText(text)
        for widget in widgets:
            widget.blockSignals(False)

    def tick_presets(self, names: set[str]) -> None:
        """Tick exactly these presets (or tasks, by Gymnasium id)."""
        for i in range(self.presets.count()):
            item = self.presets.item(i)
            key = item.data(Qt.ItemDataRole.UserRole) or item.text()
            item.setCheckState(Qt.CheckState.Checked if key in names else Qt.CheckState.Unchecked)

    def _ticked(self) -> list[QListWidgetItem]:
        return [self.presets.item(i) for i in range(self.presets.count())
                if self.presets.item(i).checkState() == Qt.CheckState.Checked]

    def chosen_presets(self) -> list[str]:
        return [item.text() for item in self._ticked() if item.data(Qt.ItemDataRole.UserRole) is None]

    def chosen_tasks(self) -> list[str]:
        """The toy-text tasks ticked, by Gymnasium id."""
        return [task for item in self._ticked() if (task := item.data(Qt.ItemDataRole.UserRole)) is not None]

    def specs(self) -> list[RunSpec] | None:
        """The sweep's runs, or None (the reason shown under the form)."""
        try:
            presets, tasks = self.chosen_presets(), self.chosen_tasks()
            if not presets and not tasks:
                raise BadInput("Presets or tasks: tick at least one")
            if presets and tasks:
                raise BadInput("Presets or tasks: a sweep is over cyber-defense presets or over toy-text "
                               "tasks, not both")
            algorithms = [key for key, box in self.algorithms.items() if box.isChecked()]
            if not algorithms:
                raise BadInput("Algorithms: tick at least one")
            settings = [parse_setting(f"{name.currentText()}={values.text()}")
                        for name, values in self.settings if name.currentText() != NOT_SWEPT]
            episodes = self.episodes.value() or None
            if tasks:
                runs = plan_tasks(tasks, algorithms, settings, self.seeds.value(), episodes)
            else:
                runs = plan(presets, algorithms, settings, self.seeds.value(), episodes,
                            self.agents.value(), self.hyper.currentText())
            if len(runs) > APP_MAX_RUNS:
                raise BadInput(f"{len(runs):,} runs: the app runs at most {APP_MAX_RUNS:,} "
                               "(policyledger-cli sweep runs more)")
        except BadInput as exc:
            self.error.setText(str(exc).removeprefix("--set: ").removeprefix("sweep: "))
            self.count.setText("")
            return None
        self.error.setText("")
        self.count.setText(f"{len(runs):,} runs")
        return runs

    def address_text(self) -> str | None:
        text = self.address.text().strip()
        return text if text and self.backend.currentText() == "ray" else None
