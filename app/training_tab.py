"""The Training tab: settings, Start/Stop, live plots, and the chained result.

The cyber-defense task trains one agent or a population (:func:`~policyledger_core.learn.engine.
train_agents`); a toy-text task one agent (:func:`~policyledger_core.learn.tabular_engine.
train_task`). Both run in the same child process and stream the same relays, and both end the
same way: the greedy policy saved, verified by replay (a toy-text table in Gymnasium, valued
exactly) and chained.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
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

from app import settings
from app.episode_relay import Packer, Relay
from app.model import AppModel, Findings, Place
from app.plot_history import write_recording_csv
from app.process_runner import RELAY_SECONDS, in_child_process
from app.recording import Recording, describe_size
from app.runs_table import Run
from app.task_runs import TaskRunsPanel
from app.training_form import CYBER, TrainingForm
from app.training_plots import X_AXES, TrainingPlots
from app.widgets import named, settings_and_work
from app.worker import TaskRunner, one_line
from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import Algorithm, Hyperparameters
from policyledger_core.learn.single import TrainingResult
from policyledger_core.learn.tabular_engine import TaskTrainingResult, prepare, train_task
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.spec import task_info
from policyledger_core.verify.suite import VerificationReport
from policyledger_core.workspace.curves import Curve, CurveStore
from policyledger_core.workspace.publish import Published, SavedPolicy, publish_run, save_policy

READY = "Ready."
COMPILING = "Compiling the training kernel (once after install, a few seconds)\u2026"
READ_ONLY = ("Cannot start: the ledger is read-only until repaired (see the Ledger tab); "
             "nothing learned could be chained.")
RESULT_CHARS = 38
"""The result panel's value column, in average characters: fixed, so a result never widens the form
(a longer value is elided; its tooltip has all of it)."""
TASK_Y_MARGIN = 0.05
"""The least margin above and below a toy-text run's returns (FrozenLake's are 0 or 1)."""
AnyResult = TrainingResult | TaskTrainingResult


def training_threads() -> int:
    """Threads a population trains on in the app: every core but one, which the window keeps
    (measured with K = 64 on 2 cores: a kernel on both cores stalled the window up to 85 ms)."""
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass(frozen=True)
class Chained:
    """What a save hands back: what was published, and what its own Context learned."""

    published: Published
    findings: Findings
    best_stationary: float | None = None
    """A toy-text task: the value of the best stationary table found (one action per observation)."""


def save_task(place: Place, result: TrainingResult, chain_all: bool, curve: Curve | None = None) -> Chained:
    """Save, verify by replay and chain the best agent's policy (or every agent's) on a Context of its own.

    The run's curve is kept beside each chained policy, for the marketplace's detail.
    """
    ctx = place.open()
    published = publish_run(ctx, result, "all" if chain_all else "best")
    if curve is not None and len(curve):
        store = CurveStore(place.config)
        for saved in published.saved:
            store.save(saved.policy.hash, curve)
    return Chained(published, Findings.of(ctx))


def save_toy_text_run(place: Place, result: TaskTrainingResult, curve: Curve | None = None) -> Chained:
    """Save a toy-text run's greedy table as a task policy, verify it (Gymnasium's replay and its
    exact value) and chain it, on a Context of its own, as :func:`save_task` does a cyber run's.
    Also gives the task's best stationary value (computed once per task, well under a second)."""
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium: loaded when a task is saved

    ctx = place.open()
    policy = result.policy()
    try:
        saved = save_policy(ctx, policy, result.training_fields(), {"kind": "trained"}, keep_file=True)
    except LedgerError as exc:  # what was learned is kept, as for a cyber run
        raise LedgerError(f"{exc}. The policy is kept as {ctx.store.path_of(policy.hash)}; "
                          "after a repair, chain it with 'Add policy file' (policyledger-cli add)") from None
    if curve is not None and len(curve):
        CurveStore(place.config).save(policy.hash, curve)
    best = toy_text_task(result.task_id).best_stationary_value()
    return Chained(Published([saved], saved), Findings.of(ctx), best)


def _figure(value: float) -> str:
    """A toy-text figure: four significant digits (FrozenLake's lie in [0, 1], Taxi's are whole)."""
    return f"{value:.4g}"


def _reward(result: AnyResult) -> float:
    """A run's training reward: its best agent's mean of the last 100 episodes."""
    if isinstance(result, TaskTrainingResult):
        return result.training_reward
    return float(result.training_reward[result.best_agent])


class TrainingTab(QWidget):
    """Train an agent or a population and watch it learn."""

    training_finished = Signal(object)
    """A list of :class:`~policyledger_core.workspace.publish.SavedPolicy` once the policy is chained."""
    settled = Signal()
    """A run is over for good: its policy is chained, or the run (or its save) failed."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingTab")
        self.model = model
        self.form = TrainingForm()
        self.plots = TrainingPlots(self)
        self.start_button = named(QPushButton("&Start training"), "startTrainingButton")
        self.stop_button = named(QPushButton("S&top"), "stopTrainingButton")
        self.stop_button.setEnabled(False)
        self.progress = named(QProgressBar(), "trainingProgress")
        self.stats = named(QLabel(READY), "trainingStats")
        self.smoothing = named(QSlider(Qt.Orientation.Horizontal), "smoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(90)
        self.smoothing_label = named(QLabel("0.90"), "smoothingValue")
        self.smoothing_label.setFixedWidth(self.smoothing_label.fontMetrics().horizontalAdvance("0.00") + 6)
        self.export_png_button = named(QPushButton("Export PNG..."), "exportPngButton")
        self.export_csv_button = named(QPushButton("Export CSV..."), "exportCsvButton")
        self.log_x = named(QCheckBox("log x"), "logXCheck")
        self.log_x.setToolTip("A logarithmic x axis (episode 0 is not drawn).")
        self.x_axis = named(QComboBox(), "xAxisCombo")
        for key in X_AXES:
            self.x_axis.addItem("episodes" if key == "episodes" else "env steps", key)
        self.x_axis.setToolTip("Draw the curves against episodes or environment steps "
                               "(a population's steps are per agent).")
        self.runs = named(TaskRunsPanel(self.plots.reward), "runsPanel")
        self._run: Run | None = None
        self.form_column = QWidget()
        self._stopping = False
        self.result_box = self._result_panel()
        self._training = TaskRunner(self, batch_seconds=RELAY_SECONDS)
        """The training run (in a child process, which batches its records), then the save of what it
        learned. Its batches are relayed as they come (:data:`~app.process_runner.RELAY_SECONDS`)."""
        self._warming = TaskRunner(self)
        """Compiles (or loads) the training kernel in a child process at start (:meth:`warm_up`)."""
        self._exporting = TaskRunner(self)
        """Writes a recording of every episode as CSV (long: it runs apart, with its progress)."""
        self.recording = Recording(self.model.ctx.config_dir)
        self.compiling = False
        self._saving = False
        self._findings: Findings | None = None
        self._best_stationary: float | None = None
        self._started = 0.0
        self._episodes_done = 0
        self._hyper: Hyperparameters | None = None
        self._result: AnyResult | None = None
        self._layout()
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.log_x.toggled.connect(self.plots.set_log_x)
        self.x_axis.currentIndexChanged.connect(self._on_x_axis)
        self.model.workspace_changed.connect(self.reset_view)
        self.model.ledger_changed.connect(self._on_ledger_changed)
        self._update_export()

    # -- layout -------------------------------------------------------------------------------

    def _result_panel(self) -> QGroupBox:
        box = named(QGroupBox("Last result"), "resultPanel")
        form = QFormLayout(box)
        form.setVerticalSpacing(2)
        self.result_labels: dict[str, QLabel] = {}
        for key, label in (("hash", "Policy"), ("verified", "Verified reward"), ("exact", "Exact value"),
                           ("fraction", "Of the optimum"), ("training", "Training reward"),
                           ("entry", "Ledger entry")):
            value = named(QLabel("-"), f"result_{key}")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setFixedWidth(value.fontMetrics().averageCharWidth() * RESULT_CHARS)
            self.result_labels[key] = value
            form.addRow(label, value)
        self._result_form = form
        form.setRowVisible(self.result_labels["exact"], False)  # a toy-text task's result only
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
        left_widget = self.form_column
        left_widget.setLayout(left)
        right = QVBoxLayout()
        smooth_row = QHBoxLayout()
        smooth_row.addWidget(QLabel("Smoothing"))
        smooth_row.addWidget(self.smoothing)
        smooth_row.addWidget(self.smoothing_label)
        x_label = QLabel("&x axis")
        x_label.setBuddy(self.x_axis)
        smooth_row.addWidget(x_label)
        smooth_row.addWidget(self.x_axis)
        smooth_row.addWidget(self.log_x)
        png, csv = self.export_png_button, self.export_csv_button
        png.clicked.connect(lambda: self._export("PNG image (*.png)", ".png", self.plots.export_png))
        csv.clicked.connect(self.export_csv)
        smooth_row.addWidget(png)
        smooth_row.addWidget(csv)
        right.addLayout(smooth_row)
        right.addWidget(self.plots.readout)
        right.addWidget(self.plots.reward, 5)
        right.addWidget(self.plots.epsilon, 2)
        right.addWidget(self.progress)
        right.addWidget(self.stats)
        plots_widget = QWidget()
        plots_widget.setLayout(right)
        right_widget = named(QSplitter(Qt.Orientation.Vertical), "plotsAndRuns")
        right_widget.addWidget(plots_widget)
        right_widget.addWidget(self.runs)
        right_widget.setStretchFactor(0, 4)
        right_widget.setStretchFactor(1, 1)
        right_widget.setChildrenCollapsible(False)
        settings_and_work(self, left_widget, right_widget)

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Training, or saving what was learned."""
        return self._training.busy

    def start(self) -> None:
        """Start training with the form's settings (refused at the form when invalid)."""
        if self.running:
            return
        hyper = self.form.hyperparameters()
        if hyper is None:
            return
        if self.model.ctx.ledger.read_only:
            self.form.show_error(READ_ONLY)
            return
        task_id, agents = self.form.task_id(), self.form.population()
        algorithm = cast(Algorithm, self.form.algorithm_id())
        self._hyper = hyper

        shown = self.form.preset.currentText() if task_id is None else self.form.task_title()
        self._run = self.runs.add(shown, self.form.hyper.currentText(), self.form.algorithm.currentText(),
                                  hyper.seed, agents, 0, task=task_id or CYBER)
        self.runs.new_current()
        self.plots.start(population=agents > 1, agents=agents,
                         y_margin=TASK_Y_MARGIN if task_id is not None else None)
        self.progress.setRange(0, 0 if hyper.episodes is None else hyper.episodes)
        self.progress.setValue(0)
        self._started, self._episodes_done = time.monotonic(), 0
        self._saving = self._stopping = False
        self.recording.discard()  # a recording belongs to the run shown: a new run replaces it
        record = self.recording.begin() if self.form.record.isChecked() else None
        packer = Packer(record=record)
        if task_id is None:
            train = partial(train_agents, workers=training_threads())
            work = in_child_process(train, self.form.config(), hyper, algorithm, agents, pack=packer)
        else:
            work = in_child_process(train_task, task_id, hyper, algorithm, pack=packer)
        self._training.start(work, progress=self._on_training_progressed, done=self._on_training_succeeded,
                             error=self._on_task_failed)
        self._set_running(True)
        self._update_export()
        self.stats.setText("Training\u2026 (waiting for the training kernel to compile)" if self.compiling
                           else "Training\u2026")

    def warm_up(self) -> None:
        """Get the training kernel ready in the background: compiled once after install (saying
        so), loaded from the disk cache afterwards. A run started meanwhile simply waits for it."""
        if not self._warming.busy:
            self._warming.start(in_child_process(prepare, patience=0.5), progress=self._on_compiling,
                                done=lambda _seconds: self._compiled(), error=lambda _exc: self._compiled())

    def _on_compiling(self, _notes: object) -> None:
        self.compiling = True
        if not self.running:
            self.stats.setText(COMPILING)

    def _compiled(self) -> None:
        self.compiling = False
        if self.stats.text() == COMPILING:
            self.stats.setText(READY)

    def stop(self) -> None:
        """Stop training; what was learned so far is still saved and chained."""
        self.stop_button.setEnabled(False)  # at once: one Stop is enough
        if self._training.busy and not self._saving and not self._stopping:
            self._stopping = True
            self._training.stop()  # the run ends by itself, with what it learned
            self.stats.setText("Stopping: finishing the episodes under way\u2026")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not self._stopping and not self._saving)
        self.form.setEnabled(not running)

    def _on_training_progressed(self, batches: list[Relay]) -> None:
        for batch in batches:
            self.plots.add(batch)
        last = batches[-1]
        self._episodes_done = max(self._episodes_done, last.through)
        if self._hyper is not None and self._hyper.episodes is not None:
            self.progress.setValue(self._episodes_done)
        self._update_export()
        if self._stopping or self._saving:  # the last batches of a stopped run: no live counter again
            return
        rate = self._episodes_done / max(time.monotonic() - self._started, 1e-6)
        recorded = f"   recording {describe_size(last.recorded_bytes)}" if self.recording.active else ""
        self.stats.setText(f"episode {self._episodes_done:,}   {rate:,.0f} episodes/s   "
                           f"epsilon {last.last_epsilon:.3f}   mean of last 100 {last.last_rolling:.2f}"
                           f"{recorded}")

    def _idle(self) -> None:
        """The run ended (stopped, finished or failed): no busy animation, no redraw timer."""
        self.plots.stop()
        done = self._episodes_done
        if self._run is not None and not self._run.finished:  # frozen copies: the buffers serve the next run
            self._run.episodes = max(self._run.episodes, done)
            self.runs.finish(self._run, *self.plots.history.overlay())
        self.progress.setRange(0, max(done, 1) if self.progress.maximum() == 0 else self.progress.maximum())
        self.progress.setValue(done)
        self._update_export()

    def _on_training_succeeded(self, result: AnyResult) -> None:
        self._episodes_done = max(self._episodes_done, result.episodes)
        self._idle()
        if self._run is not None:
            self._run.episodes, self._run.env_steps = result.episodes, result.env_steps
            reward = _reward(result)
            self._run.training_reward = _figure(reward) if isinstance(result, TaskTrainingResult) \
                else f"{reward:.2f}"
            self.runs.refresh_row(self._run)
        replay = "in Gymnasium" if isinstance(result, TaskTrainingResult) else "by replay"
        self.stats.setText(f"{'Stopped' if result.stopped else 'Finished'} after {result.episodes:,} "
                           f"episodes: verifying {replay} and chaining\u2026")
        self._result = result
        self._saving = True
        self.stop_button.setEnabled(False)  # what was learned is being saved: nothing left to stop
        place, curve = self.model.place, self._curve(result)
        if isinstance(result, TaskTrainingResult):
            self._training.call(lambda: save_toy_text_run(place, result, curve), done=self._on_chained,
                                error=self._on_task_failed)
            return
        chain_all = self.form.chain_all.isChecked() and result.agents > 1
        self._training.call(lambda: save_task(place, result, chain_all, curve), done=self._on_chained,
                            error=self._on_task_failed)

    def _curve(self, result: AnyResult) -> Curve:
        """The run's returns as plotted, downsampled: one agent's, or the population's mean."""
        label = "episode return" if result.agents == 1 else f"mean over {result.agents} agents"
        return self.plots.history.curve(label)

    def _on_chained(self, chained: Chained) -> None:
        self._saving = self._stopping = False
        self._findings = chained.findings
        self._best_stationary = chained.best_stationary
        self._on_saved(chained.published)

    def _take_findings(self) -> Findings | None:
        findings, self._findings = self._findings, None
        return findings

    def _on_saved(self, published: Published) -> None:
        result = self._result
        if result is not None:
            self._show_result(result, published)
        self._set_running(False)
        self.model.notify_changed(self, self._take_findings())
        self.training_finished.emit(published.saved)
        self.settled.emit()

    def _show_result(self, result: AnyResult, published: Published) -> None:
        best = published.best
        v = best.entry.verification
        self._set_result("hash", best.policy.hash[:16] + "\u2026", best.policy.hash)
        task = isinstance(result, TaskTrainingResult)
        self._result_form.setRowVisible(self.result_labels["exact"], task)
        if isinstance(result, TaskTrainingResult):
            verified = self._show_task_result(result, best)
        else:
            verified = f"{v.mean:.2f} \u00b1 {v.ci95:.2f}"
            self._set_result("verified", f"{verified} ({v.episodes} unseen episodes)")
            self._set_result("fraction", f"{v.fraction_of_optimum:.1%} (optimum {v.optimum:.2f})")
            self._set_result("training", f"{_reward(result):.2f} (last 100 episodes, exploring)")
        self._set_result("entry", f"#{best.entry.index}" + ("" if best.created else " (already recorded)")
                         + (f", {published.entries_created} new entries" if len(published.saved) > 1
                            else ""))
        if self._run is not None:
            self._run.verified = verified
            self.runs.refresh_row(self._run)
        chained = (f"Policy chained as entry #{best.entry.index}." if best.created
                   else f"Policy already recorded as entry #{best.entry.index}: nothing new chained.")
        self.stats.setText(f"{'Stopped' if result.stopped else 'Finished'}: {result.episodes:,} episodes, "
                           f"{result.env_steps:,} steps. {chained}")

    def _show_task_result(self, result: TaskTrainingResult, saved: SavedPolicy) -> str:
        """A toy-text table's figures: the replay in Gymnasium, the exact value beside the optimum
        and the best stationary table's value. Returns the verified mean and interval."""
        v = saved.entry.verification
        report: VerificationReport | None = saved.report
        exact = v.exact_value if v.exact_value is not None else (report.expected if report else None)
        verified = f"{_figure(v.mean)} \u00b1 {v.ci95:.2g}"
        self._set_result("verified", f"{verified} ({v.episodes} unseen episodes)",
                         f"Mean return of the table replayed in Gymnasium's {result.task_id} on {v.episodes} "
                         f"episodes it never trained on, with its 95% confidence interval.")
        best = self._best_stationary
        within = f" within {task_info(result.task_id).spec.horizon} steps"
        if exact is not None:
            best_text = "" if best is None else f" (best table {_figure(best)})"
            reach = None if best is None else fraction_of_optimum(best, v.optimum)
            best_tip = "" if best is None or reach is None else (
                f" The best table of one action per observation found by local search reaches "
                f"{_figure(best)} ({reach:.2%} of the optimum)"
                + (": with a time limit the optimum needs a policy that also depends on the time left."
                   if reach < 1.0 - 1e-9 else "."))
            self._set_result("exact", f"{_figure(exact)}{best_text}",
                             f"The table's exact expected return{within}, computed from Gymnasium's own "
                             f"model (no sampling).{best_tip}")
        else:
            self._set_result("exact", "-")
        self._set_result("fraction", f"{v.fraction_of_optimum:.2%} (optimum {_figure(v.optimum)})",
                         f"The exact value as a share of the exact optimum {v.optimum:.6g} (the best "
                         f"time-dependent policy{within}).")
        self._set_result("training", f"{_figure(result.training_reward)} (last 100 episodes, exploring)")
        return verified

    def _set_result(self, key: str, text: str, tip: str | None = None) -> None:
        """A value of the result panel, elided to the panel's fixed width (the tooltip has all of it)."""
        label = self.result_labels[key]
        label.setText(QFontMetrics(label.font()).elidedText(text, Qt.TextElideMode.ElideRight,
                                                            label.width()))
        label.setToolTip(tip if tip is not None else text)

    def reset_view(self) -> None:
        """Another workspace was opened: nothing shown belongs to it."""
        for label in self.result_labels.values():
            label.setText("-")
            label.setToolTip("")
        self._result, self._hyper, self._episodes_done = None, None, 0
        self._result_form.setRowVisible(self.result_labels["exact"], False)
        self.recording.discard()
        self.plots.clear()
        self.progress.setRange(0, 1)
        self.progress.reset()
        self.form.clear_error()
        self.stats.setText(READY)
        self._update_export()

    def _on_ledger_changed(self, _initiator: object) -> None:
        if self.form.error.text() == READ_ONLY and not self.model.ctx.ledger.read_only:
            self.form.clear_error()  # repaired: the refusal no longer holds

    def _on_x_axis(self) -> None:
        steps = self.x_axis.currentData() == "steps"
        self.runs.set_x_steps(steps)
        self.plots.set_x_axis("steps" if steps else "episodes")

    def view_state(self) -> tuple[str, bool]:
        """The plots' x axis and whether it is logarithmic (remembered between sessions)."""
        return str(self.x_axis.currentData()), self.log_x.isChecked()

    def restore_view_state(self, x_axis: str, log_x: bool) -> None:
        index = self.x_axis.findData(x_axis)
        if index >= 0:
            self.x_axis.setCurrentIndex(index)
        self.log_x.setChecked(log_x)

    def _on_smoothing(self, value: int) -> None:
        self.smoothing_label.setText(f"{value / 100:.2f}")
        self.plots.set_smoothing(value / 100)

    def _update_export(self) -> None:
        empty = self.plots.empty
        self.export_png_button.setEnabled(not empty)
        self.export_csv_button.setEnabled(not empty and not self._exporting.busy)
        self.export_csv_button.setToolTip(
            "Every episode of the run (it was recorded)." if self.recording.active else
            "The points drawn: recent episodes as they are, older ones as buckets (min, mean, max); "
            "tick \"record every episode\" before a run to export them all.")

    def export_csv(self) -> None:
        """Ask where, then write the run's CSV: every episode when it was recorded, else the plots'
        history (a recording is written apart, with its progress: it can be long)."""
        target = self._export_target("CSV file (*.csv)", ".csv")
        if target is None:
            return
        if not self.recording.active or self.recording.path is None:
            self._write_now(target, self.plots.export_csv)
            return
        source, population, weight = self.recording.path, self.plots.population, self.plots.smoothing
        self._exporting.start(lambda _stop: write_recording_csv(source, population, weight, target),
                              progress=lambda done: self._on_export_progress(target, done),
                              done=lambda rows: self._on_exported(target, rows),
                              error=lambda exc: self._on_export_failed(target, exc))
        self.stats.setText(f"Writing every episode to {target}\u2026")
        self._update_export()

    def _on_export_progress(self, target: Path, done: list[tuple[int, int]]) -> None:
        written, total = done[-1]
        self.stats.setText(f"Writing every episode to {target}: {written:,} of {total:,}")

    def _on_exported(self, target: Path, rows: int) -> None:
        self.stats.setText(f"Written {rows:,} episodes to {target}")
        self._update_export()

    def _on_export_failed(self, target: Path, exc: Exception) -> None:
        self.stats.setText(f"Could not write {target}: {one_line(exc)}; the plot was not exported.")
        self._update_export()

    def _on_task_failed(self, exc: Exception) -> None:
        self._saving = self._stopping = False
        self._idle()
        if self._run is not None and not self._run.verified:
            self._run.verified = "failed"
            self.runs.refresh_row(self._run)
        self._set_running(False)
        self.stats.setText(f"Failed: {one_line(exc)}")
        self.settled.emit()

    def shutdown(self) -> None:
        """Stop a run, then save and chain what was learned, blocking (window closing).

        A save under way still completes: it is one uninterrupted call.
        """
        self._warming.shutdown()  # a compile under way is abandoned (the disk cache stays whole)
        self._exporting.shutdown()  # an export under way is abandoned (no partial file is left)
        saving = self._saving
        task = self._training.shutdown(cancel=False)  # the run stops by itself and returns what it learned
        self.recording.discard()  # the training process has ended: nothing appends to it any more
        self._saving = False
        self.plots.stop()
        if task is None:
            return
        result = task.result
        if not saving and isinstance(result, TrainingResult | TaskTrainingResult):
            chain_all = self.form.chain_all.isChecked() and result.agents > 1
            try:
                chained = (save_toy_text_run(self.model.place, result, self._curve(result))
                           if isinstance(result, TaskTrainingResult)
                           else save_task(self.model.place, result, chain_all, self._curve(result)))
            except Exception as exc:  # the window is closing: say it, do not hang
                self.stats.setText(f"Could not chain the policy: {one_line(exc)}")
                return
            self.model.notify_changed(self, chained.findings)
        elif saving:
            self.model.notify_changed(self)

    def _export(self, filter_text: str, suffix: str, write: Callable[[Path], None]) -> None:
        target = self._export_target(filter_text, suffix)
        if target is not None:
            self._write_now(target, write)

    def _export_target(self, filter_text: str, suffix: str) -> Path | None:
        config = self.model.ctx.config_dir
        start = Path(settings.last_folder("plots", self.model.workspace_root, config)) / f"training{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export plot", str(start), filter_text)
        if not path:
            return None
        settings.remember_folder("plots", path, config)
        target = Path(path)
        return target if target.suffix else target.with_suffix(suffix)

    def _write_now(self, target: Path, write: Callable[[Path], None]) -> None:
        try:
            write(target)
        except OSError as exc:
            self.stats.setText(f"Could not write {target}: {exc.strerror or exc}; the plot was not exported.")
            return
        self.stats.setText(f"Plot written to {target}")
