"""The Ledger tab: every entry of the chain, a full verification, and repair of a damaged ledger.

The checks themselves are the core's :func:`~policyledger_core.workspace.audit.audit`,
run in a worker thread; repair is :mod:`~policyledger_core.workspace.recovery` (planned in a
worker, shown, and carried out only after confirmation).
This view only shows what they report.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.ledger_table import COLUMNS, LedgerTableModel
from app.model import AppModel
from app.worker import BackgroundTask, GeneratorWorker, WorkerThread
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.workspace.audit import AuditProgress, AuditReport, audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.recovery import RepairPlan, apply_repair, plan_repair

BANNER_STYLE = ("QFrame#ledgerBanner { background: #b00020; border-radius: 4px; }"
                " QFrame#ledgerBanner QLabel { color: white; font-weight: bold; }")
COLUMN_WIDTHS = (60, 150, 130, 130, 130, 130, 140)
STAGES = {"fields": "checking fields", "policies": "checking policy files",
          "signatures": "checking signatures", "replay": "replaying policies", "done": "done"}


def _stoppable(audit_run: Generator[AuditProgress, None, AuditReport],
               should_stop: Callable[[], bool]) -> Generator[AuditProgress, None, AuditReport | None]:
    """The audit, abandoned between two progress records when asked to stop (window closing)."""
    while True:
        try:
            record = next(audit_run)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if should_stop():
            audit_run.close()
            return None
        yield record


class LedgerTab(QWidget):
    """List the ledger's entries, verify all of them, and repair a damaged ledger."""

    verification_finished = Signal(object)
    """The :class:`~policyledger_core.workspace.audit.AuditReport`, or None when stopped or failed."""
    repair_finished = Signal(object)
    """The :class:`~policyledger_core.workspace.recovery.RepairResult`, or None when declined or failed."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ledgerTab")
        self.model = model
        self.table_model = LedgerTableModel(self)
        self.table = QTableView(objectName="ledgerTable")
        self.banner = QFrame(objectName="ledgerBanner")
        self.banner_text = QLabel(objectName="ledgerBannerText", wordWrap=True)
        self.repair_button = QPushButton("&Repair...", objectName="repairButton")
        self.verify_button = QPushButton("&Verify ledger", objectName="verifyLedgerButton")
        self.replay_check = QCheckBox("replay too (slower: re-runs every policy)", objectName="replayCheck")
        self.progress = QProgressBar(objectName="ledgerProgress", textVisible=True)
        self.summary = QLabel(objectName="ledgerSummary", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._run: WorkerThread | None = None
        self._run_ledger: Ledger | None = None
        self._report: AuditReport | None = None
        self._own_change = False  # the change being announced is this tab's own verification
        self._repair_task = BackgroundTask(self)
        self._layout()
        self.verify_button.clicked.connect(self.verify)
        self.repair_button.clicked.connect(self.repair)
        self.model.ledger_changed.connect(self._on_model_ledger_changed)
        self.model.workspace_changed.connect(self._on_model_workspace_changed)
        self.refresh()
        self.summary.setText(self._idle_text())

    # -- layout -------------------------------------------------------------------------------

    def _layout(self) -> None:
        self.banner.setStyleSheet(BANNER_STYLE)
        banner_row = QHBoxLayout(self.banner)
        banner_row.addWidget(self.banner_text, 1)
        banner_row.addWidget(self.repair_button)
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        # Fixed sizes: sizing to contents would read every row of a 10,000-entry ledger.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for column, width in enumerate(COLUMN_WIDTHS[:len(COLUMNS) - 1]):
            header.resizeSection(column, width)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        controls = QHBoxLayout()
        controls.addWidget(self.verify_button)
        controls.addWidget(self.replay_check)
        controls.addWidget(self.progress, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(self.banner)
        outer.addLayout(controls)
        outer.addWidget(self.summary)
        outer.addWidget(self.table, 1)

    # -- showing the ledger -------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the ledger as the core sees it now."""
        ledger = self.model.ctx.ledger
        self.table_model.refresh(ledger, self.model.own_key(), self._report)
        problem = ledger.problem
        self.banner.setVisible(problem is not None)
        if problem is not None:
            self.banner_text.setText(
                f"The ledger is damaged at entry {problem.index}: {problem.reason}. It is read-only: "
                f"nothing can be added until it is repaired. Entries 0 to {problem.index - 1} are "
                "still usable." if problem.index else
                f"The ledger is damaged at entry 0: {problem.reason}. It is read-only until repaired.")
        self.repair_button.setEnabled(problem is not None and not self.running)

    def _idle_text(self) -> str:
        ledger = self.model.ctx.ledger
        usable = "usable " if ledger.problem is not None else ""
        return (f"{len(ledger)} {usable}entries. Verify checks every hash, link, field, policy file "
                "and signature." if len(ledger) or ledger.problem is not None else "The ledger is empty.")

    def _on_model_ledger_changed(self) -> None:
        if not self._own_change:
            self._report = None  # a verification speaks only of the ledger it looked at
            if not self.running:
                self.summary.setText(self._idle_text())
        self.refresh()

    def _on_model_workspace_changed(self) -> None:
        self._report = None
        self.summary.setText(self._idle_text())

    # -- verifying ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._run is not None

    def verify(self) -> None:
        """Run every check of the core's audit (and replays, when ticked) in a worker thread."""
        if self.running:
            return
        ctx, replay = self.model.ctx, self.replay_check.isChecked()
        ledger, store, reproductions = ctx.ledger, ctx.store, ctx.reproductions

        def factory(should_stop: Callable[[], bool]) -> Generator[Any, None, AuditReport | None]:
            # With the replay, the core remembers the entries it reproduced: the marketplace ranks them.
            return _stoppable(audit(ledger, store, replay=replay, reproductions=reproductions), should_stop)

        worker = GeneratorWorker(factory)
        worker.progressed.connect(self._on_worker_progressed)
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self._run_ledger = ledger
        self._set_running(True)
        self.progress.setRange(0, 0)  # busy until the first record: the chain scan comes first
        self.progress.setFormat("checking hashes and links")
        self.summary.setText("Verifying...")
        self._run = WorkerThread(worker, self)

    def _set_running(self, running: bool) -> None:
        self.verify_button.setEnabled(not running)
        self.replay_check.setEnabled(not running)
        self.repair_button.setEnabled(not running and self.model.ctx.ledger.problem is not None)

    def _finish_run(self) -> Ledger | None:
        run, self._run = self._run, None
        if run is not None:
            run.thread.wait()
        ledger, self._run_ledger = self._run_ledger, None
        self._set_running(False)
        return ledger

    def _on_worker_progressed(self, records: list[AuditProgress]) -> None:
        last = records[-1]
        self.progress.setRange(0, max(last.total, 1))
        self.progress.setValue(min(last.done, max(last.total, 1)) if last.total else 1)
        self.progress.setFormat(f"{STAGES.get(last.stage, last.stage)}: {last.done:,} / {last.total:,}")

    def _on_worker_succeeded(self, report: AuditReport | None) -> None:
        ledger = self._finish_run()
        if report is None or ledger is not self.model.ctx.ledger:  # stopped, or another workspace
            self.progress.setRange(0, 1)
            self.progress.setFormat("")
            self.summary.setText(self._idle_text())
            self.verification_finished.emit(None)
            return
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat("done")
        self._report = report
        self.summary.setText(self._report_text(report))
        if report.problem is None:
            self.refresh()
            if "replay" in report.seconds:
                self.model.notify_reproduced()  # the marketplace ranks what was just reproduced
        else:
            self._own_change = True
            try:
                self.model.notify_changed()  # status bar and marketplace: the ledger is now read-only
            finally:
                self._own_change = False
        self.verification_finished.emit(report)

    @staticmethod
    def _report_text(report: AuditReport) -> str:
        if report.problem is not None:
            return f"Problem at entry {report.problem.index}: {report.problem.reason}"
        seconds = sum(report.seconds.values())
        replayed = f", {report.replayed} policies replayed" if "replay" in report.seconds else ""
        return (f"Ledger intact: {report.entries} entries, hashes, links, fields, policy files and "
                f"signatures all check out{replayed} ({seconds:.2f} s).")

    def _on_worker_failed(self, message: str) -> None:
        self._finish_run()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("failed")
        self.summary.setText(f"Verification failed: {message}")
        self.verification_finished.emit(None)

    # -- repairing ----------------------------------------------------------------------------

    def repair(self) -> None:
        """Work out what a repair keeps, re-chains and leaves out (in the background), then ask."""
        problem = self.model.ctx.ledger.problem
        if problem is None or self.running or self._repair_task.busy:
            return
        root, config = self.model.ctx.workspace.root, self.model.ctx.config_dir
        self.repair_button.setEnabled(False)
        self.summary.setText("Checking the entries after the damage, each on its own (replaying them)...")
        # A context of its own: the worker never touches the ledger object the views read.
        self._repair_task.start(lambda: run_to_end(plan_repair(Context.open(root, config))),
                                self._on_repair_planned, self._on_repair_failed)

    def _on_repair_planned(self, plan: RepairPlan) -> None:
        problem = plan.problem
        head = (f"Entry {problem.index} is bad: {problem.reason}.\n\n" if problem is not None
                else "The last append never completed.\n\n")
        answer = QMessageBox.question(
            self, "Repair the ledger",
            head + "Repair keeps a backup copy of the current ledger file, and then:\n"
            + "".join(f"  - {line}\n" for line in plan.lines())
            + "\nRecovered entries are signed again by your key and name the backup they came from."
              "\n\nRepair now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            self.summary.setText("Repair cancelled; nothing was changed.")
            self.refresh()
            self.repair_finished.emit(None)
            return
        try:
            result = apply_repair(self.model.ctx, plan)
        except (LedgerError, OSError) as exc:
            self._on_repair_failed(str(exc))
            return
        self.model.reload()
        left = f", left out {len(plan.left_out)}" if plan.left_out else ""
        self.summary.setText(f"Repaired: kept {plan.kept} entries, re-chained {len(result.appended)} as "
                             f"recovered{left}. The damaged file is kept as {result.backup}")
        self.repair_finished.emit(result)

    def _on_repair_failed(self, message: str) -> None:
        self.summary.setText(f"Repair failed: {message}")
        self.refresh()
        self.repair_finished.emit(None)

    # -- closing ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop a running verification or repair plan and wait for its thread (window closing)."""
        self._repair_task.shutdown()
        run, self._run = self._run, None
        if run is None:
            return
        for signal in (run.worker.progressed, run.worker.succeeded, run.worker.failed):
            signal.disconnect()
        run.stop_and_wait()
        self._run_ledger = None
        self._set_running(False)
