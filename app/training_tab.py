"""The Training tab: settings, Start/Stop, live plots, and the chained result."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.model import AppModel
from app.process_runner import in_child_process
from app.training_form import TrainingForm
from app.training_job import Columns, pack
from app.training_plots import TrainingPlots
from app.worker import BackgroundTask, GeneratorWorker, WorkerThread
from policyledger_core.learn.hyper import Algorithm, Hyperparameters
from policyledger_core.learn.population import train_agents
from policyledger_core.learn.single import TrainingResult
from policyledger_core.workspace.publish import Saved, save_all_agents, save_training


def _save(model: AppModel, result: TrainingResult, chain_all: bool) -> list[Saved]:
    """Save, verify and chain the best agent's policy (or every agent's)."""
    return save_all_agents(model.ctx, result) if chain_all else [save_training(model.ctx, result)]


class TrainingTab(QWidget):
    """Train an agent or a population and watch it learn."""

    training_finished = Signal(object)
    """A list of :class:`~policyledger_core.workspace.publish.Saved` once the policy is chained."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingTab")
        self.model = model
        self.form = TrainingForm()
        self.plots = TrainingPlots(self)
        self.start_button = QPushButton("&Start training", objectName="startTrainingButton")
        self.stop_button = QPushButton("S&top", objectName="stopTrainingButton", enabled=False)
        self.progress = QProgressBar(objectName="trainingProgress")
        self.stats = QLabel("Ready.", objectName="trainingStats")
        self.smoothing = QSlider(Qt.Orientation.Horizontal, objectName="smoothingSlider",
                                 minimum=0, maximum=99, value=90)
        self.result_box = self._result_panel()
        self._run: WorkerThread | None = None
        self._saver = BackgroundTask(self)
        self._started = 0.0
        self._episodes_done = 0
        self._hyper: Hyperparameters | None = None
        self._result: TrainingResult | None = None
        self._layout()
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.smoothing.valueChanged.connect(lambda v: self.plots.set_smoothing(v / 100))

    # -- layout -------------------------------------------------------------------------------

    def _result_panel(self) -> QGroupBox:
        box = QGroupBox("Last result", objectName="resultPanel")
        form = QFormLayout(box)
        self.result_labels: dict[str, QLabel] = {}
        for key, label in (("hash", "Policy"), ("verified", "Verified reward"),
                           ("fraction", "Of the optimum"), ("training", "Training reward"),
                           ("entry", "Ledger entry")):
            value = QLabel("-", objectName=f"result_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.result_labels[key] = value
            form.addRow(label, value)
        return box

    def _layout(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self.form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left.addLayout(buttons)
        left.addWidget(self.result_box)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        right = QVBoxLayout()
        smooth_row = QHBoxLayout()
        smooth_row.addWidget(QLabel("Smoothing"))
        smooth_row.addWidget(self.smoothing)
        png = QPushButton("Export PNG...", objectName="exportPngButton")
        csv = QPushButton("Export CSV...", objectName="exportCsvButton")
        png.clicked.connect(lambda: self._export("PNG image (*.png)", self.plots.export_png))
        csv.clicked.connect(lambda: self._export("CSV file (*.csv)", self.plots.export_csv))
        smooth_row.addWidget(png)
        smooth_row.addWidget(csv)
        right.addLayout(smooth_row)
        right.addWidget(self.plots.reward, 3)
        right.addWidget(self.plots.epsilon, 1)
        right.addWidget(self.progress)
        right.addWidget(self.stats)
        right_widget = QWidget()
        right_widget.setLayout(right)
        splitter = QSplitter()
        splitter.addWidget(left_widget)
        splitter.addWidget(right_widget)
        splitter.setStretchFactor(1, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(splitter)

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._run is not None or self._saver.busy

    def start(self) -> None:
        """Start training with the form's settings (refused at the form when invalid)."""
        if self.running:
            return
        hyper = self.form.hyperparameters()
        if hyper is None:
            return
        if self.model.ctx.ledger.read_only:
            self.form.error.setText("Cannot start: the ledger is read-only until repaired "
                                    "(see the Ledger tab); nothing learned could be chained.")
            return
        config, agents = self.form.config(), self.form.agents.value()
        algorithm = cast(Algorithm, self.form.algorithm_id())
        self._hyper = hyper

        worker = GeneratorWorker(in_child_process(train_agents, config, hyper, algorithm, agents, pack=pack))
        worker.progressed.connect(self._on_worker_progressed)
        worker.succeeded.connect(self._on_training_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self.plots.start(population=agents > 1)
        self.progress.setRange(0, 0 if hyper.episodes is None else hyper.episodes)
        self.progress.setValue(0)
        self._started, self._episodes_done = time.monotonic(), 0
        self._set_running(True)
        self.stats.setText("Training...")
        self._run = WorkerThread(worker, self)

    def stop(self) -> None:
        """Stop training; what was learned so far is still saved and chained."""
        if self._run is not None:
            self._run.worker.stop()
            self.stats.setText("Stopping: saving what was learned...")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.form.setEnabled(not running)

    def _on_worker_progressed(self, batches: list[Columns]) -> None:
        for batch in batches:
            self.plots.add(batch)
        last = batches[-1]
        self._episodes_done = int(last.episode[-1]) + 1
        if self._hyper is not None and self._hyper.episodes is not None:
            self.progress.setValue(self._episodes_done)
        rate = self._episodes_done / max(time.monotonic() - self._started, 1e-6)
        self.stats.setText(f"episode {self._episodes_done:,}   {rate:,.0f} episodes/s   "
                           f"epsilon {last.epsilon[-1]:.3f}   mean of last 100 {last.rolling[-1]:.2f}")

    def _on_training_succeeded(self, result: TrainingResult) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.thread.wait()
        self.plots.stop()
        self.stats.setText(f"{'Stopped' if result.stopped else 'Finished'} after {result.episodes:,} "
                           "episodes: verifying by replay and chaining...")
        chain_all = self.form.chain_all.isChecked() and result.agents > 1
        self._result = result
        self._saver.start(lambda: _save(self.model, result, chain_all), self._on_saved,
                          self._on_worker_failed)

    def _on_saved(self, saved: list[Saved]) -> None:
        result = self._result
        if result is not None:
            self._show_result(result, saved)
        self._set_running(False)
        self.model.notify_changed()
        self.training_finished.emit(saved)

    def _show_result(self, result: TrainingResult, saved: list[Saved]) -> None:
        best = saved[0] if len(saved) == 1 else saved[result.best_agent]
        v = best.entry.verification
        labels = self.result_labels
        labels["hash"].setText(best.policy.hash[:16] + "...")
        labels["hash"].setToolTip(best.policy.hash)
        labels["verified"].setText(f"{v['mean']:.2f} +/- {v['ci95']:.2f} ({v['episodes']} unseen episodes)")
        labels["fraction"].setText(f"{v['fraction_of_optimum']:.1%} (optimum {v['optimum']:.2f})")
        labels["training"].setText(f"{float(result.training_reward[result.best_agent]):.2f} "
                                   "(last 100 training episodes, exploring)")
        new = sum(s.created for s in saved)
        labels["entry"].setText(f"#{best.entry.index}" + ("" if best.created else " (already recorded)")
                                + (f", {new} new entries" if len(saved) > 1 else ""))
        self.stats.setText(f"{'Stopped' if result.stopped else 'Finished'}: {result.episodes:,} episodes, "
                           f"{result.env_steps:,} steps. Policy chained as entry #{best.entry.index}.")

    def _on_worker_failed(self, message: str) -> None:
        self._run = None
        self.plots.stop()
        self._set_running(False)
        self.stats.setText(f"Failed: {message}")

    def shutdown(self) -> None:
        """Stop a run, then save and chain what was learned, blocking (window closing)."""
        if self._run is not None:
            run, self._run = self._run, None
            run.worker.succeeded.disconnect()
            run.stop_and_wait()
            result = run.worker.result
            if isinstance(result, TrainingResult):
                chain_all = self.form.chain_all.isChecked() and result.agents > 1
                try:
                    _save(self.model, result, chain_all)
                except Exception as exc:  # the window is closing: say it, do not hang
                    self.stats.setText(f"Could not chain the policy: {exc}")
        self._saver.shutdown()  # a save under way still completes: it is one uninterrupted call
        self.plots.stop()

    def _export(self, filter_text: str, write: Callable[[Path], None]) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", "", filter_text)
        if path:
            try:
                write(Path(path))
            except OSError as exc:
                self.stats.setText(f"Export failed: {exc}")
