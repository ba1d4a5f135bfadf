"""The sweep settings form: presets, algorithms, up to three swept hyperparameters, seeds, backend.

The form collects values; the core's :func:`~policyledger_core.sweep.plan.plan` validates
them, and its one-line reason shows under the form.
"""

from __future__ import annotations

import os

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
from policyledger_core.sweep.plan import SWEPT, RunSpec, parse_setting, plan

SETTING_ROWS = 3
APP_MAX_RUNS = 2000
"""The app keeps every run's tables for chaining: a sweep here stays at most this size."""
NOT_SWEPT = "(not swept)"


class SweepForm(QWidget):
    """What a sweep trains, and where."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QFormLayout(self)
        layout.setVerticalSpacing(3)
        self.presets = named(QListWidget(), "sweepPresets")
        for name in PRESETS:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name == "standard" else Qt.CheckState.Unchecked)
            self.presets.addItem(item)
        self.presets.setFixedHeight(self.presets.sizeHintForRow(0) * len(PRESETS) + 6)
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
        layout.addRow("&Presets", self.presets)
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
        self.episodes = named(QSpinBox(minimum=1, maximum=10_000_000, value=30_000), "sweepEpisodes")
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

    def _emit(self) -> None:
        self.specs()  # the run count and the error follow every edit
        self.changed.emit()

    def tick_presets(self, names: set[str]) -> None:
        """Tick exactly these presets."""
        for i in range(self.presets.count()):
            item = self.presets.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def chosen_presets(self) -> list[str]:
        return [self.presets.item(i).text() for i in range(self.presets.count())
                if self.presets.item(i).checkState() == Qt.CheckState.Checked]

    def specs(self) -> list[RunSpec] | None:
        """The sweep's runs, or None (the reason shown under the form)."""
        try:
            presets = self.chosen_presets()
            if not presets:
                raise BadInput("Presets: tick at least one")
            algorithms = [key for key, box in self.algorithms.items() if box.isChecked()]
            if not algorithms:
                raise BadInput("Algorithms: tick at least one")
            settings = [parse_setting(f"{name.currentText()}={values.text()}")
                        for name, values in self.settings if name.currentText() != NOT_SWEPT]
            runs = plan(presets, algorithms, settings, self.seeds.value(), self.episodes.value(),
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
