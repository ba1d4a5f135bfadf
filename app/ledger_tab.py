"""The Ledger tab: every entry of the chain, a full verification, repair of a damaged ledger, and
the ledger's signed checkpoint (:mod:`app.checkpoint_panel`).

The checks themselves are the core's :func:`~policyledger_core.workspace.audit.audit`,
run as a background task on a Context of its own; repair is
:mod:`~policyledger_core.workspace.recovery` (planned in a task, shown, and carried
out in a task only after confirmation). This view only shows what they report, and
re-reads the ledger through the model when they end.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
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
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.checkpoint_panel import CheckpointPanel
from app.entry_detail import EntryDetail
from app.ledger_table import COLUMNS, LedgerTableModel
from app.model import AppModel, Findings, Place
from app.worker import ShouldStop, TaskRunner, one_line
from policyledger_core.ledger.entry import Entry
from policyledger_core.workspace.audit import AuditProgress, AuditReport, audit
from policyledger_core.workspace.recovery import (
    RepairPlan,
    RepairProgress,
    RepairResult,
    apply_repair,
    plan_repair,
)

BANNER_STYLE = ("QFrame#ledgerBanner { background: #b00020; border-radius: 4px; }"
                " QFrame#ledgerBanner QLabel { color: white; font-weight: bold; }")
COLUMN_WIDTHS = (60, 150, 130, 130, 130, 130, 140)
STAGES = {"fields": "checking fields", "policies": "checking policy files",
          "signatures": "checking signatures", "replay": "replaying policies", "done": "done"}


@dataclass(frozen=True)
class Audited:
    """A verification's report, and what its own Context learned."""

    report: AuditReport
    findings: Findings


@dataclass(frozen=True)
class Repaired:
    """A carried-out repair, and what its own Context learned (the recovered entries were replayed)."""

    result: RepairResult
    findings: Findings


def audit_task(place: Place, replay: bool) -> Generator[AuditProgress, None, Audited]:
    """Every check of the core's audit on a Context of the task's own (run in a worker thread)."""
    ctx = place.open()
    # With the replay, the core remembers the entries it reproduced: the marketplace ranks them.
    report = yield from audit(ctx.ledger, ctx.store, replay=replay, reproductions=ctx.reproductions)
    return Audited(report, Findings.of(ctx) if replay else Findings(warnings=tuple(ctx.ledger.warnings)))


def plan_task(place: Place) -> Generator[RepairProgress, None, RepairPlan]:
    """What a repair would keep, re-chain and leave out (writes nothing)."""
    return (yield from plan_repair(place.open()))


def repair_task(place: Place, plan: RepairPlan) -> Repaired:
    """Carry out ``plan`` on a Context of the task's own."""
    ctx = place.open()
    result = apply_repair(ctx, plan)
    return Repaired(result, Findings.of(ctx))


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
        self.table = QTableView()
        self.table.setObjectName("ledgerTable")
        self.banner = QFrame()
        self.banner.setObjectName("ledgerBanner")
        self.banner_text = QLabel(wordWrap=True)
        self.banner_text.setObjectName("ledgerBannerText")
        self.repair_button = QPushButton("&Repair...")
        self.repair_button.setObjectName("repairButton")
        self.verify_button = QPushButton("&Verify ledger")
        self.verify_button.setObjectName("verifyLedgerButton")
        self.replay_check = QCheckBox("replay too (slower: re-runs every policy)")
        self.replay_check.setObjectName("replayCheck")
        self.progress = QProgressBar(textVisible=True)
        self.progress.setObjectName("ledgerProgress")
        self.summary = QLabel(wordWrap=True)
        self.summary.setObjectName("ledgerSummary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.checkpoint = CheckpointPanel(model)
        """The ledger's checkpoint: shown, copied, saved, checked against; follows the ledger."""
        self.detail = EntryDetail()
        """Every recorded field of the selected entry; follows the selection and the ledger."""
        self._tasks = TaskRunner(self)
        """Verification, repair planning and repair: one at a time."""
        self._generation = 0
        """The model's workspace generation the running task works on."""
        self._report: AuditReport | None = None
        self._layout()
        self.verify_button.clicked.connect(self.verify)
        self.repair_button.clicked.connect(self.repair)
        self._tasks.busy_changed.connect(self._on_tasks_busy_changed)
        self.table.selectionModel().currentRowChanged.connect(self._show_detail)
        self.table.selectionModel().selectionChanged.connect(self._show_detail)
        self.model.ledger_changed.connect(self._on_model_ledger_changed)
        self.model.reproductions_changed.connect(self._on_model_reproductions_changed)
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
        self._show_progress("", 0, 1)
        controls = QHBoxLayout()
        controls.addWidget(self.verify_button)
        controls.addWidget(self.replay_check)
        controls.addWidget(self.progress, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(self.banner)
        outer.addLayout(controls)
        outer.addWidget(self.summary)
        outer.addWidget(self.checkpoint)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.detail)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        outer.addWidget(self.splitter, 1)

    # -- showing the ledger -------------------------------------------------------------------

    def refresh(self) -> None:
        """Show the ledger as the model's own view of it is now."""
        ledger = self.model.ctx.ledger
        selected = self.selected_row()
        self.table_model.refresh(ledger, self.model.own_key(), self._report)
        if selected is not None and selected < self.table_model.rowCount():  # the same entry, as it is now
            flags = QItemSelectionModel.SelectionFlag
            self.table.selectionModel().setCurrentIndex(self.table_model.index(selected, 0),
                                                        flags.ClearAndSelect | flags.Rows)
        self._show_detail()
        problem = ledger.problem
        self.banner.setVisible(problem is not None)
        if problem is not None:
            self.banner_text.setText(
                f"The ledger is damaged at entry {problem.index}: {problem.reason}. It is read-only: "
                f"nothing can be added until it is repaired. Entries 0 to {problem.index - 1} are "
                "still usable." if problem.index else
                f"The ledger is damaged at entry 0: {problem.reason}. It is read-only until repaired.")
        self.checkpoint.refresh()
        self._update_buttons()

    def selected_row(self) -> int | None:
        """The selected entry's row (the current one when several are selected)."""
        selection = self.table.selectionModel()
        current = selection.currentIndex()
        if current.isValid() and selection.isRowSelected(current.row()):
            return current.row()
        rows = sorted(ix.row() for ix in selection.selectedRows())
        return rows[0] if rows else None

    def _show_detail(self) -> None:
        """The detail pane shows the selected entry as the model's ledger has it now."""
        row = self.selected_row()
        content = None if row is None else self.table_model.content(row)
        if row is None or content is None:
            self.detail.clear()
        elif isinstance(content, Entry):
            self.detail.show_entry(content)
        elif isinstance(content, str):
            self.detail.show_unreadable(row, content)
        else:
            self.detail.show_aside(content)

    def _idle_text(self) -> str:
        ledger = self.model.ctx.ledger
        usable = "usable " if ledger.problem is not None else ""
        return (f"{len(ledger)} {usable}entries. Verify checks every hash, link, field, policy file "
                "and signature." if len(ledger) or ledger.problem is not None else "The ledger is empty.")

    def _on_model_ledger_changed(self, initiator: object) -> None:
        if initiator is not self:
            self._report = None  # a verification speaks only of the ledger it looked at
            if not self.running:
                self.summary.setText(self._idle_text())
        self.checkpoint.forget()  # a check against a checkpoint too, whoever changed it
        self.refresh()

    def _on_model_reproductions_changed(self, _initiator: object) -> None:
        self.refresh()  # the model re-read the ledger too: show its own view (the report still holds)

    def _on_model_workspace_changed(self) -> None:
        self._report = None
        self.checkpoint.forget()
        self.summary.setText(self._idle_text())

    # -- running tasks ------------------------------------------------------------------------

    @property
    def verified(self) -> bool:
        """A full verification (every check of the audit) passed on the ledger as it is now."""
        return self._report is not None and self._report.problem is None

    @property
    def running(self) -> bool:
        """A verification, a repair plan or a repair is under way."""
        return self._tasks.busy

    def _update_buttons(self) -> None:
        idle = not self.running
        self.verify_button.setEnabled(idle)
        self.replay_check.setEnabled(idle)
        self.repair_button.setEnabled(idle and self.model.ctx.ledger.problem is not None)

    def _on_tasks_busy_changed(self, _busy: bool) -> None:
        self._update_buttons()

    def _show_progress(self, text: str, done: int, total: int) -> None:
        """``total`` 0: busy, without a known end."""
        self.progress.setRange(0, total)
        self.progress.setValue(min(done, total))
        self.progress.setFormat(text)

    def _same_workspace(self) -> bool:
        return self._generation == self.model.generation

    # -- verifying ----------------------------------------------------------------------------

    def verify(self) -> None:
        """Run every check of the core's audit (and replays, when ticked) in a background task."""
        if self.running:
            return
        place, replay = self.model.place, self.replay_check.isChecked()
        self._generation = self.model.generation

        def work(_should_stop: ShouldStop) -> Generator[AuditProgress, None, Audited]:
            return audit_task(place, replay)

        self._tasks.start(work, progress=self._on_audit_progressed, done=self._on_audited,
                          error=self._on_audit_failed)
        self._show_progress("checking hashes and links", 0, 0)  # busy until the first record
        self.summary.setText("Verifying...")

    def _on_audit_progressed(self, records: list[AuditProgress]) -> None:
        last = records[-1]
        total = max(last.total, 1)
        self._show_progress(f"{STAGES.get(last.stage, last.stage)}: {last.done:,} / {last.total:,}",
                            min(last.done, total) if last.total else 1, total)

    def _on_audited(self, audited: Audited) -> None:
        if not self._same_workspace():  # another workspace was opened meanwhile
            self._show_progress("", 0, 1)
            self.summary.setText(self._idle_text())
            self.verification_finished.emit(None)
            return
        report = audited.report
        self._show_progress("done", 1, 1)
        self._report = report
        self.summary.setText(self._report_text(report))
        if report.problem != self.model.ctx.ledger.problem:
            # The audit marked (or cleared) a problem in its own Context: the status bar, the
            # marketplace and this table re-read the ledger. This tab keeps its report.
            self.model.notify_changed(self, audited.findings)
        elif "replay" in report.seconds:
            self.model.notify_reproduced(self, audited.findings)  # the marketplace ranks them now
            self.refresh()
        else:
            self.model.add_findings(audited.findings)
            self.refresh()
        self.verification_finished.emit(report)

    @staticmethod
    def _report_text(report: AuditReport) -> str:
        if report.problem is not None:
            return f"Problem at entry {report.problem.index}: {report.problem.reason}"
        seconds = sum(report.seconds.values())
        replayed = f", {report.replayed} policies replayed" if "replay" in report.seconds else ""
        return (f"Ledger intact: {report.entries} entries, hashes, links, fields, policy files and "
                f"signatures all check out{replayed} ({seconds:.2f} s).")

    def _on_audit_failed(self, exc: Exception) -> None:
        self._show_progress("failed", 0, 1)
        self.summary.setText(f"Verification failed: {one_line(exc)}")
        self.verification_finished.emit(None)

    # -- repairing ----------------------------------------------------------------------------

    def repair(self) -> None:
        """Work out what a repair keeps, re-chains and leaves out (in the background), then ask."""
        if self.model.ctx.ledger.problem is None or self.running:
            return
        place = self.model.place
        self._generation = self.model.generation

        def work(_should_stop: ShouldStop) -> Generator[RepairProgress, None, RepairPlan]:
            return plan_task(place)

        self._tasks.start(work, progress=self._on_repair_progressed, done=self._on_repair_planned,
                          error=self._on_repair_failed)
        self._show_progress("checking the entries after the damage", 0, 0)
        self.summary.setText("Checking the entries after the damage, each on its own (replaying them)...")

    def _on_repair_progressed(self, records: list[RepairProgress]) -> None:
        last = records[-1]
        self._show_progress(f"checking the entries after the damage: {last.done:,} / {last.total:,}",
                            last.done, max(last.total, 1))

    def _on_repair_planned(self, plan: RepairPlan) -> None:
        self._show_progress("", 0, 1)
        if not self._same_workspace():
            self._repair_ended("Another workspace was opened: nothing was repaired.", None)
            return
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
            self._repair_ended("Repair cancelled; nothing was changed.", None)
            return
        place = self.model.place
        self._tasks.call(lambda: repair_task(place, plan), done=self._on_repaired,
                         error=self._on_repair_failed)
        self._show_progress("repairing", 0, 0)
        self.summary.setText("Repairing: backing up the ledger file and re-chaining the recovered entries...")

    def _on_repaired(self, repaired: Repaired) -> None:
        self._show_progress("", 0, 1)
        if not self._same_workspace():
            self._repair_ended(f"The ledger of the workspace closed meanwhile was repaired; its damaged "
                               f"file is kept as {repaired.result.backup}", repaired.result)
            return
        result, plan = repaired.result, repaired.result.plan
        self.model.notify_changed(self, repaired.findings)
        left = f", left out {len(plan.left_out)}" if plan.left_out else ""
        self.summary.setText(f"Repaired: kept {plan.kept} entries, re-chained {len(result.appended)} as "
                             f"recovered{left}. The damaged file is kept as {result.backup}")
        self.repair_finished.emit(result)

    def _on_repair_failed(self, exc: Exception) -> None:
        self._show_progress("", 0, 1)
        self._repair_ended(f"Repair failed: {one_line(exc)}", None)

    def _repair_ended(self, text: str, result: RepairResult | None) -> None:
        self.summary.setText(text)
        self.refresh()
        self.repair_finished.emit(result)

    # -- closing ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel a running verification or repair plan and wait for it (window closing).

        A repair under way is one uninterrupted call: it completes.
        """
        self._tasks.shutdown()
        self.checkpoint.shutdown()
        self._show_progress("", 0, 1)
        self._update_buttons()
