"""The training settings form: the task, its presets and editable hyperparameters.

The task is the cyber-defense task (with its environment presets and a population of K agents)
or one of Gymnasium's toy-text tasks (one configuration each, one agent, their own measured
``recommended`` hyperparameters per algorithm). The form only collects values; the core
validates them (a ConfigError names the field, which the form shows next to it).
"""

from __future__ import annotations

import json
from typing import Any, cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from app.widgets import named
from policyledger_core.learn.hyper import (
    ALGORITHM_NAMES,
    DEFAULT_HYPER,
    HYPER_PRESETS,
    Algorithm,
    Hyperparameters,
)
from policyledger_core.sim.config import PRESETS, ConfigError, EnvConfig, preset
from policyledger_core.tasks.spec import CATALOGUE

ALGORITHMS = {name: algorithm for algorithm, name in ALGORITHM_NAMES.items()}
"""The form's choices: name shown -> algorithm."""
CYBER = "cyber-defense"
"""The task choice of the cyber-defense task (the toy-text tasks' are their Gymnasium ids)."""
CYBER_TITLE = "Cyber defense"
TASK_HYPER = ("recommended",)
"""A toy-text task's hyperparameter presets: its measured ``recommended`` values (per algorithm)."""
PRESET_TIP = "The cyber-defense task's environment presets."
TASK_PRESET_TIP = ("Cyber defense only: a toy-text task has one configuration (its Gymnasium id, "
                   "arguments and time limit).")
AGENTS_TIP = "Train K agents at once (a population); the best one's policy is chained."
TASK_AGENTS_TIP = "A population is for the cyber-defense task: a toy-text task trains one agent."


def task_hyper(task_id: str, algorithm: str) -> Hyperparameters:
    """A toy-text task's ``recommended`` hyperparameters for an algorithm (loads the tabular engine,
    and numba with it, the first time a task is picked: not when the window opens)."""
    from policyledger_core.learn.tabular import recommended

    return recommended(task_id, cast(Algorithm, algorithm))


_FLOATS = {  # field: (label, minimum, maximum, decimals, step)
    "learning_rate": ("Learning rate", 0.0, 1.0, 4, 0.05),
    "lr_exponent": ("Count exponent", 0.0, 1.0, 3, 0.05),
    "discount": ("Discount (gamma)", 0.0, 1.0, 4, 0.01),
    "epsilon_start": ("Epsilon start", 0.0, 1.0, 3, 0.05),
    "epsilon_end": ("Epsilon end", 0.0, 1.0, 3, 0.01),
    "epsilon_decay": ("Epsilon decay / episode", 0.0, 1.0, 5, 0.0005),
    "initial_q": ("Initial Q", -1000.0, 1000.0, 2, 1.0),
}
_LABELS = {"lr_schedule": "Learning-rate schedule", "episodes": "Episodes", "seed": "Seed",
           **{name: spec[0] for name, spec in _FLOATS.items()}}
"""The label the form shows for each field the core may name in a ConfigError."""
_HINTS = {"epsilon_end": " (it cannot exceed Epsilon start)"}
ERROR_LINES = 3
"""Lines reserved for the error under the form: an error never pushes Start/Stop down."""
INVALID_STYLE = "border: 1px solid #b00020; background: #fdecee;"
"""On a spin box's text area the border alone hardly shows (the box draws its own frame): tinted too."""


def _styled(widget: QWidget) -> QWidget:
    """Where a field's red border goes: a spin box's text area only, so the box keeps its arrows."""
    return widget.lineEdit() if isinstance(widget, QSpinBox | QDoubleSpinBox) else widget


class TrainingForm(QWidget):
    """Environment, hyperparameters, algorithm, episodes, seed and population size."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        layout.setVerticalSpacing(2)  # seventeen rows: the form and the result panel fit a 1280x800 screen
        self.task = named(QComboBox(), "taskCombo")
        self.task.addItem(CYBER_TITLE, CYBER)
        for task_id, info in CATALOGUE.items():
            self.task.addItem(info.title, task_id)
        self.task.setToolTip("The task to train on: the cyber-defense task, or one of Gymnasium's "
                             "toy-text tasks (replayed in Gymnasium, valued exactly against the optimum).")
        self.preset = named(QComboBox(), "presetCombo")
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip(PRESET_TIP)
        self.hyper = named(QComboBox(), "hyperCombo")
        self.hyper.addItems(list(HYPER_PRESETS))
        self.algorithm = named(QComboBox(), "algorithmCombo")
        self.algorithm.addItems(list(ALGORITHMS))
        self.schedule = named(QComboBox(), "scheduleCombo")
        self.schedule.addItems(["count", "constant"])
        self.fields: dict[str, QDoubleSpinBox] = {}
        self.episodes = named(QSpinBox(minimum=1, maximum=10_000_000), "episodesSpinBox")
        self.until_stopped = named(QCheckBox("until stopped"), "untilStoppedCheck")
        self.seed = named(QSpinBox(minimum=0, maximum=2**31 - 1), "seedSpinBox")
        self.agents = named(QSpinBox(minimum=1, maximum=4096), "agentsSpinBox")
        self.agents.setToolTip(AGENTS_TIP)
        self.chain_all = named(QCheckBox("chain every agent's policy"), "chainAllCheck")
        self.record = named(QCheckBox("record every episode"), "recordCheck")
        self.record.setToolTip(
            "Stream every episode's figures to a file while training (about 40 bytes an episode, "
            "more for a population), so that Export CSV writes them all instead of the plots' "
            "buckets. The file is replaced by the next recorded run and removed when the window closes.")
        self.error = named(QLabel(), "formError")
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        self.error.setFixedHeight(self.error.fontMetrics().lineSpacing() * ERROR_LINES + 4)
        self.error.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._invalid: str | None = None
        self._validation = False  # the error shown is about the values (cleared by an edit)
        self._loaded: dict[str, Any] | None = None
        """The values a preset last filled in (a task's follow the algorithm while untouched)."""
        layout.addRow("Tas&k", self.task)
        layout.addRow("Environment &preset", self.preset)
        layout.addRow("&Hyperparameters", self.hyper)
        layout.addRow("&Algorithm", self.algorithm)
        layout.addRow("Learning-rate schedule", self.schedule)
        for name, (label, low, high, decimals, step) in _FLOATS.items():
            box = named(QDoubleSpinBox(minimum=low, maximum=high, decimals=decimals, singleStep=step),
                        f"{name}SpinBox")
            self.fields[name] = box
            layout.addRow(label, box)
        episodes = QHBoxLayout()  # "until stopped" beside the count it replaces: a row less to fit 1280x800
        episodes.setContentsMargins(0, 0, 0, 0)
        episodes.addWidget(self.episodes, 1)
        episodes.addWidget(self.until_stopped)
        layout.addRow("&Episodes", episodes)
        episodes_label = layout.labelForField(episodes)
        if isinstance(episodes_label, QLabel):  # a row of a layout has no buddy of its own: Alt+E
            episodes_label.setBuddy(self.episodes)
        layout.addRow("", self.record)
        layout.addRow("&Seed", self.seed)
        layout.addRow("Agents (K)", self.agents)
        layout.addRow("", self.chain_all)
        layout.addRow(self.error)
        for name, box in self.fields.items():
            box.valueChanged.connect(lambda _v, n=name: self._edited(n))
        self.episodes.valueChanged.connect(lambda _v: self._edited("episodes"))
        self.until_stopped.toggled.connect(lambda _on: self._edited("episodes"))
        self.seed.valueChanged.connect(lambda _v: self._edited("seed"))
        self.schedule.currentTextChanged.connect(lambda _t: self._edited("lr_schedule"))
        self.hyper.currentTextChanged.connect(self._load_hyper)
        self.until_stopped.toggled.connect(lambda on: self.episodes.setEnabled(not on))
        self.agents.valueChanged.connect(lambda _k: self._update_population())
        self.task.currentIndexChanged.connect(lambda _i: self._on_task())
        self.algorithm.currentTextChanged.connect(lambda _t: self._on_algorithm())
        self.chain_all.setEnabled(False)
        self.hyper.setCurrentText(DEFAULT_HYPER)
        self._load_hyper(DEFAULT_HYPER)

    def task_id(self) -> str | None:
        """The toy-text task picked (its Gymnasium id), or None for the cyber-defense task."""
        data = self.task.currentData()
        return None if data == CYBER else str(data)

    def task_title(self) -> str:
        return self.task.currentText()

    def _preset_values(self, name: str) -> Hyperparameters:
        """The values of hyperparameter preset ``name`` for the task (and algorithm) picked."""
        task_id = self.task_id()
        return HYPER_PRESETS[name] if task_id is None else task_hyper(task_id, self.algorithm_id())

    def _load_hyper(self, name: str) -> None:
        if not name:
            return
        values = self._preset_values(name)
        self.schedule.setCurrentText(values.lr_schedule)
        for field, box in self.fields.items():
            box.setValue(getattr(values, field))
        self.episodes.setValue(values.episodes or 1000)
        self.until_stopped.setChecked(values.episodes is None)
        self._loaded = self._values()
        self.clear_error()

    def _values(self) -> dict[str, Any]:
        """What a hyperparameter preset fills in, as the form holds it now."""
        return {"schedule": self.schedule.currentText(), "episodes": self.episodes.value(),
                "until_stopped": self.until_stopped.isChecked(),
                **{name: box.value() for name, box in self.fields.items()}}

    def _on_task(self) -> None:
        """Another task: its presets, its recommended hyperparameters, one agent for a toy-text task."""
        task = self.task_id() is not None
        names = list(TASK_HYPER if task else HYPER_PRESETS)
        if [self.hyper.itemText(i) for i in range(self.hyper.count())] != names:
            current = self.hyper.currentText()
            self.hyper.blockSignals(True)
            self.hyper.clear()
            self.hyper.addItems(names)
            self.hyper.setCurrentText(current if current in names else DEFAULT_HYPER)
            self.hyper.blockSignals(False)
        self.preset.setEnabled(not task)
        self.preset.setToolTip(TASK_PRESET_TIP if task else PRESET_TIP)
        self.agents.setEnabled(not task)
        self.agents.setToolTip(TASK_AGENTS_TIP if task else AGENTS_TIP)
        self._update_population()
        self._load_hyper(self.hyper.currentText())

    def _on_algorithm(self) -> None:
        """A toy-text task's recommended values depend on the algorithm: untouched, they follow it."""
        if self.task_id() is not None and self._values() == self._loaded:
            self._load_hyper(self.hyper.currentText())

    def _update_population(self) -> None:
        self.chain_all.setEnabled(self.task_id() is None and self.agents.value() > 1)

    def population(self) -> int:
        """Agents to train: K for the cyber-defense task, one for a toy-text task."""
        return 1 if self.task_id() is not None else self.agents.value()

    def config(self) -> EnvConfig:
        return preset(self.preset.currentText())

    def algorithm_id(self) -> str:
        return ALGORITHMS[self.algorithm.currentText()]

    def hyperparameters(self) -> Hyperparameters | None:
        """The validated hyperparameters, or None with the reason shown at the form."""
        base = self._preset_values(self.hyper.currentText())
        values: dict[str, Any] = {name: box.value() for name, box in self.fields.items()}
        values["lr_schedule"] = self.schedule.currentText()
        values["episodes"] = None if self.until_stopped.isChecked() else self.episodes.value()
        values["seed"] = self.seed.value()
        self.clear_error()
        try:
            hyper = base.replace(**values)
        except ConfigError as exc:
            field, _, reason = str(exc).partition(":")  # the core names the field first
            if field in _LABELS and reason:
                self.show_error(f"Cannot start: {_LABELS[field]} {reason.strip()}{_HINTS.get(field, '')}.",
                                field)
            else:
                self.show_error(f"Cannot start: {exc}")
            self._validation = True
            return None
        return hyper

    def _widget(self, field: str) -> QWidget | None:
        if field in self.fields:
            return self.fields[field]
        return {"episodes": self.episodes, "seed": self.seed, "lr_schedule": self.schedule}.get(field)

    def invalid_field(self) -> str | None:
        """The field the shown error blames (marked with a red border), if any."""
        return self._invalid

    def show_error(self, text: str, field: str | None = None) -> None:
        """Show ``text`` under the form; mark ``field`` (its text area only: the box keeps its arrows)."""
        self.clear_error()
        self.error.setText(text)
        self.error.setToolTip(text)
        widget = self._widget(field) if field is not None else None
        if widget is None:
            return
        self._invalid = field
        _styled(widget).setStyleSheet(INVALID_STYLE)
        widget.setFocus()

    def clear_error(self) -> None:
        """Clear the error and the red border."""
        widget = self._widget(self._invalid) if self._invalid is not None else None
        if widget is not None:
            _styled(widget).setStyleSheet("")
        self._invalid = None
        self._validation = False
        self.error.clear()
        self.error.setToolTip("")

    def _edited(self, field: str) -> None:
        """A value changed: a validation error about the form is out of date (the next Start checks again)."""
        if self._validation:
            self.clear_error()

    def state(self) -> str:
        """The form as JSON, for QSettings."""
        return json.dumps({"task": self.task.currentData(),
                           "preset": self.preset.currentText(), "hyper": self.hyper.currentText(),
                           "algorithm": self.algorithm.currentText(), "seed": self.seed.value(),
                           "agents": self.agents.value(), "episodes": self.episodes.value(),
                           "schedule": self.schedule.currentText(),
                           "until_stopped": self.until_stopped.isChecked(),
                           "record": self.record.isChecked(),
                           "fields": {n: b.value() for n, b in self.fields.items()}})

    def restore(self, text: str) -> None:
        """Restore :meth:`state`; anything unreadable is ignored."""
        try:
            data = json.loads(text)
            task = self.task.findData(str(data.get("task", CYBER)))  # older states: the cyber-defense task
            self.task.setCurrentIndex(max(task, 0))
            self.preset.setCurrentText(str(data["preset"]))
            self.hyper.setCurrentText(str(data["hyper"]))
            self.algorithm.setCurrentText(str(data["algorithm"]))
            self.schedule.setCurrentText(str(data["schedule"]))
            for name, value in data["fields"].items():
                if name in self.fields:
                    self.fields[name].setValue(float(value))
            self.seed.setValue(int(data["seed"]))
            self.agents.setValue(int(data["agents"]))
            self.episodes.setValue(int(data["episodes"]))
            if "until_stopped" in data:  # older states kept it under a key of its own
                self.until_stopped.setChecked(bool(data["until_stopped"]))
            self.record.setChecked(bool(data.get("record", False)))
        except (ValueError, KeyError, TypeError, AttributeError):
            return
