"""The Marketplace tab: ranked verified policies, their details, and bundle import and export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QModelIndex, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.compare_dialog import CompareDialog
from app.marketplace_table import ALL_PRESETS, PresetCombo, RankingTable
from app.model import AppModel
from app.policy_detail import PolicyDetail
from app.replay_dialog import ReplayDialog
from app.worker import BackgroundTask, GeneratorWorker, WorkerThread, stoppable
from policyledger_core.atomic import write_atomic
from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.ledger.entry import Entry
from policyledger_core.policy import MAX_POLICY_BYTES, Policy, PolicyError
from policyledger_core.safeio import describe, read_regular
from policyledger_core.verify.comparison import reverify
from policyledger_core.verify.figures import replay_problem
from policyledger_core.verify.suite import VerificationReport, verify
from policyledger_core.workspace.bundles import MAX_BUNDLE_BYTES, BundleError, export_bundle, import_bundle
from policyledger_core.workspace.marketplace import Row
from policyledger_core.workspace.publish import Saved, save_policy
from policyledger_core.workspace.reproduced import ReproduceProgress, ReproduceReport, reproduce
from policyledger_core.workspace.store import StoreError

__all__ = ["ALL_PRESETS", "MarketplaceTab", "Refused"]
BUNDLE_FILES = "PolicyLedger bundle (*.json);;All files (*)"
TABLE_SHARE = 45
"""Percent of the tab's width the ranking table starts with; the detail panel gets the rest."""
WAITING_LISTED = 20
"""Waiting entries named in the ranking line's tooltip; the rest are counted."""
ERROR_STYLE = "color: #b00020;"


@dataclass(frozen=True)
class Refused:
    """An expected refusal from the core (bad bundle, bad file, read-only ledger): its one-line reason."""

    reason: str


def _replayed_against(policy: Policy, entry: Entry) -> tuple[VerificationReport, str | None]:
    """Replay ``policy`` on its entry's suite: the report, and the first recorded figure not reproduced."""
    reproduced, report = reverify(policy, entry)
    problem = replay_problem(entry.verification, report)
    if problem is None and not reproduced:  # every figure matches, but of another policy's entry
        problem = "the entry records another policy"
    return report, problem


def _refusing(call: Callable[[], Any]) -> Any:
    """Run ``call``; a refusal by the core becomes a :class:`Refused` result, not a failure."""
    try:
        return call()
    except (BundleError, LedgerError, PolicyError, StoreError, OSError) as exc:
        return Refused(str(exc) or type(exc).__name__)


class MarketplaceTab(QWidget):
    """Ranked verified policies: inspect, compare, replay, re-verify, import and export."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("marketplaceTab")
        self.model = model
        self.table = RankingTable()
        self.ranking, self.proxy = self.table.ranking, self.table.proxy
        self.preset_combo = PresetCombo()
        self.detail = PolicyDetail(self)
        self.status = QLabel("", objectName="marketplaceStatus")
        self.status.setWordWrap(True)
        self.ranking_state = QLabel("", objectName="marketplaceRanking")
        self.ranking_state.setWordWrap(True)
        self.progress = QProgressBar(objectName="marketplaceProgress", textVisible=True)
        keep_room = self.progress.sizePolicy()
        keep_room.setRetainSizeWhenHidden(True)  # the table does not jump when a replay ends
        self.progress.setSizePolicy(keep_room)
        self.progress.hide()
        self.buttons: dict[str, QPushButton] = {}
        for name, text, slot in (
            ("exportButton", "&Export...", self.export_selected),
            ("importButton", "&Import...", self.import_bundle),
            ("addPolicyButton", "&Add policy file...", self.add_policy_file),
            ("reverifyButton", "Re-&verify", self.reverify_selected),
            ("compareButton", "&Compare...", self.compare_selected),
            ("replayButton", "&Replay...", self.replay_selected),
        ):
            button = QPushButton(text, objectName=name)
            button.clicked.connect(slot)
            self.buttons[name] = button
        self.compare_dialog: CompareDialog | None = None
        self.replay_dialog: ReplayDialog | None = None
        self._task = BackgroundTask(self)
        self._task.changed.connect(self._update_buttons)
        self._replay: WorkerThread | None = None
        self._replay_ledger: Ledger | None = None
        self._tried: tuple[Ledger, list[int]] | None = None
        """The last replay's ledger and entries: the same ones are not tried again in a loop (a failure)."""
        self._closing = False
        self._layout()
        self.preset_combo.currentTextChanged.connect(self._on_preset_combo_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)
        self.model.ledger_changed.connect(self.refresh)
        self.model.reproductions_changed.connect(self.refresh)
        self.refresh()

    def _layout(self) -> None:
        filter_row = QHBoxLayout()
        label = QLabel("&Preset:")
        label.setBuddy(self.preset_combo)
        filter_row.addWidget(label)
        filter_row.addWidget(self.preset_combo, 1)
        button_row = QGridLayout()
        for i, button in enumerate(self.buttons.values()):
            button_row.addWidget(button, i // 3, i % 3)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(filter_row)
        left_layout.addWidget(self.ranking_state)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.table, 1)
        left_layout.addLayout(button_row)
        left_layout.addWidget(self.status)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.detail)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, TABLE_SHARE)
        splitter.setStretchFactor(1, 100 - TABLE_SHARE)
        splitter.setSizes([10 * TABLE_SHARE, 10 * (100 - TABLE_SHARE)])  # scaled to the real width
        self.splitter = splitter
        QVBoxLayout(self).addWidget(splitter)

    # -- table -------------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Re-rank from the ledger, keeping the selection and the preset filter.

        Only entries reproduced by replay on this machine are ranked; the others
        are replayed in the background (never on a read-only ledger), and the
        ranking is refreshed again when that replay ends.
        """
        try:
            rows, waiting = self.model.ranking(), self.model.waiting()
        except Exception as exc:  # a damaged workspace must not take the window down
            rows, waiting = [], []
            self._say(f"Could not read the ledger: {exc}", error=True)
        self.detail.policy_hash = None  # ranks may have moved: redraw the panel
        self.preset_combo.fill(rows)
        if self.table.set_rows(rows, self.preset_combo.preset):
            self._show_detail()
        elif rows:
            self.detail.clear("Select a policy to see its decisions and results.")
        elif waiting:
            self.detail.clear("The policies wait for their replay on this machine: each is ranked once "
                              "its recorded figures are reproduced here.")
        else:
            self.detail.clear("No verified policies yet: train one, add a policy file or import a bundle.")
        self._show_ranking_state(len(rows), waiting)
        self._reproduce_waiting(waiting)
        self._update_buttons()

    def _show_ranking_state(self, ranked: int, waiting: list[int]) -> None:
        """One line: how many policies are ranked, how many wait for their replay, the ledger's problem."""
        ledger = self.model.ctx.ledger
        parts = [f"{ranked} ranked (reproduced here)"]
        if waiting:
            parts.append(f"{len(waiting)} waiting for replay" + (" (not while read-only)" if ledger.read_only
                                                                  else ""))
        problem = ledger.problem
        if problem is not None:
            parts.append(f"read-only ledger, problem at entry {problem.index}: {problem.reason}")
        self.ranking_state.setText(" \u00b7 ".join(parts))
        self.ranking_state.setStyleSheet(ERROR_STYLE if problem is not None else "")
        self.ranking_state.setToolTip(self._waiting_tip(waiting))

    def _waiting_tip(self, waiting: list[int]) -> str:
        if not waiting:
            return "Every policy listed was reproduced by replay on this machine."
        scanned = self.model.ctx.ledger.scanned()
        lines = [f"#{i}  policy {scanned[i].policy_hash[:12]}"
                 for i in waiting[:WAITING_LISTED] if i < len(scanned)]
        more = len(waiting) - WAITING_LISTED
        return ("Not ranked until reproduced by replay on this machine:\n" + "\n".join(lines)
                + (f"\n... and {more} more" if more > 0 else ""))

    def visible_rows(self) -> list[Row]:
        """The rows in table order (after filter and sort)."""
        return self.table.visible_rows()

    def selected_rows(self) -> list[Row]:
        """Selected rows, in table order."""
        return self.table.selected_rows()

    def current_row(self) -> Row | None:
        """The row the detail panel shows: the current one if selected, else the first selected."""
        return self.table.current_row()

    def select_hashes(self, hashes: set[str], current: str | None = None) -> None:
        """Select the visible rows of these policies; ``current`` gets the focus and the detail panel."""
        if self.table.select_hashes(hashes, current):
            self._show_detail()

    @Slot(str)
    def _on_preset_combo_changed(self, _text: str) -> None:
        self.proxy.set_preset(self.preset_combo.preset)
        self._update_buttons()

    @Slot(QItemSelection, QItemSelection)
    def _on_table_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_buttons()
        self._show_detail()

    @Slot(QModelIndex, QModelIndex)
    def _on_table_current_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_detail()

    def _update_buttons(self) -> None:
        count, idle = len(self.table.selectionModel().selectedRows()), not self._task.busy
        for name, enabled in (("exportButton", count >= 1), ("importButton", idle), ("addPolicyButton", idle),
                              ("reverifyButton", count >= 1 and idle), ("compareButton", 2 <= count <= 4),
                              ("replayButton", count >= 1)):
            self.buttons[name].setEnabled(enabled)

    def _show_detail(self) -> None:
        row = self.current_row()
        if row is None or row.policy_hash == self.detail.policy_hash:
            return
        loaded = self._load(row)
        if loaded is not None:
            self.detail.show_policy(row, *loaded)

    def _load(self, row: Row) -> tuple[Policy, VerificationReport] | None:
        """The stored policy and a fresh report (a few ms once the suite is cached)."""
        try:
            policy = self.model.ctx.store.get(row.policy_hash)
            return policy, verify(policy)
        except Exception as exc:  # a missing or damaged file: say so, never raise into Qt
            message = f"Policy {row.policy_hash[:12]} cannot be shown: {exc}"
            self.detail.clear(message)
            self._say(message, error=True)
            return None

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def _warn(self, title: str, text: str) -> None:
        self._say(text, error=True)
        QMessageBox.warning(self, title, text)

    # -- actions ------------------------------------------------------------------------------

    @Slot()
    def export_selected(self) -> None:
        """Write the current policy's bundle to a file the user picks."""
        row = self.current_row()
        if row is None:
            self._warn("Export policy", "Select a policy to export.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export policy bundle",
                                              f"policy-{row.policy_hash[:12]}.bundle.json",
                                              BUNDLE_FILES)
        if not path:
            return
        try:
            data = export_bundle(self.model.ctx, row.policy_hash)
            write_atomic(Path(path), data)
        except (BundleError, OSError) as exc:
            self._warn("Export policy", f"Export failed, nothing written: {exc}")
            return
        self._say(f"Exported policy {row.policy_hash[:12]} to {path}.")

    @Slot()
    def import_bundle(self) -> None:
        """Check a bundle (replay included) in a worker, then record it; a refusal changes nothing."""
        picked = self._pick_file("Import policy", BUNDLE_FILES, MAX_BUNDLE_BYTES, "imported")
        if picked is None:
            return
        name, data = picked
        ctx = self.model.ctx
        self._say(f"Checking {name}: replaying the policy...")
        self._start(lambda: import_bundle(ctx, data),
                    lambda result: self._on_saved(result, "Import policy", "Imported"))

    @Slot()
    def add_policy_file(self) -> None:
        """Verify a bare policy JSON by replay and record it as ``added``."""
        picked = self._pick_file("Add policy file", "Policy JSON (*.json);;All files (*)", MAX_POLICY_BYTES,
                                 "added")
        if picked is None:
            return
        try:
            policy = Policy.from_json(picked[1])
        except PolicyError as exc:
            self._warn("Add policy file", f"Not a valid policy: {exc}")
            return
        ctx = self.model.ctx
        self._say(f"Verifying policy {policy.hash[:12]} by replay...")
        self._start(lambda: save_policy(ctx, policy, None, {"kind": "added"}),
                    lambda result: self._on_saved(result, "Add policy file", "Added"))

    def _pick_file(self, title: str, filters: str, limit: int, verb: str) -> tuple[str, bytes] | None:
        """Ask for a file and read it: a regular file of at most ``limit`` bytes.

        Never blocks on a FIFO or reads a device: the check comes before the read.
        """
        if self._task.busy:
            self._say("Busy: wait for the running task to finish.", error=True)
            return None
        path, _ = QFileDialog.getOpenFileName(self, title, "", filters)
        if not path:
            return None
        name = Path(path).name
        try:
            return name, read_regular(Path(path), limit, name)
        except OSError as exc:
            self._warn(title, f"{describe(exc, name)}. Nothing was {verb}.")
            return None

    def _on_saved(self, result: Saved | Refused, title: str, verb: str) -> None:
        if isinstance(result, Refused):
            self._warn(title, result.reason)
            return
        entry = result.entry
        if result.created:
            self._say(f"{verb} policy {result.policy.hash[:12]} as ledger entry #{entry.index} "
                      f"(verified by replay: {entry.verification['mean']:.2f}).")
        else:
            self._say(f"Policy {result.policy.hash[:12]} is already in the ledger (entry #{entry.index}).")
        self.preset_combo.setCurrentText(ALL_PRESETS)
        self.model.notify_changed()
        self.select_hashes({result.policy.hash}, result.policy.hash)

    @Slot()
    def reverify_selected(self) -> None:
        """Replay the current policy in a worker; the core names the first recorded figure not reproduced."""
        row = self.current_row()
        if row is None or self._task.busy:
            return
        ctx = self.model.ctx
        entry = ctx.ledger.find_policy(row.policy_hash)
        if entry is None:
            self._say(f"Policy {row.policy_hash[:12]} is no longer in the ledger.", error=True)
            return
        claimed = str(entry.verification["replay_digest"])
        self._say(f"Re-verifying policy {row.policy_hash[:12]} by replay...")
        self._start(lambda: _replayed_against(ctx.store.get(row.policy_hash), entry),
                    lambda result: self._on_reverified(row, claimed, result))

    def _on_reverified(self, row: Row, claimed: str,
                       result: tuple[VerificationReport, str | None] | Refused) -> None:
        if isinstance(result, Refused):
            self._say(f"Re-verify failed: {result.reason}", error=True)
            return
        report, problem = result
        if problem is None:
            self._say(f"Policy {row.policy_hash[:12]}: reproduced, every recorded figure matches the replay "
                      f"(mean {report.mean:.2f} on {report.episodes} episodes, "
                      f"replay digest {claimed[:12]}).")
        else:
            self._say(f"Policy {row.policy_hash[:12]}: MISMATCH: {problem}.", error=True)

    @Slot()
    def compare_selected(self) -> None:
        rows = self.selected_rows()
        if not 2 <= len(rows) <= 4:
            self._say("Select 2 to 4 policies to compare.", error=True)
            return
        loaded = [item for item in (self._load(r) for r in rows) if item is not None]
        if len(loaded) != len(rows):
            return  # the panel says which policy could not be loaded
        self.compare_dialog = CompareDialog(rows, [p for p, _ in loaded], [r for _, r in loaded], self)
        self.compare_dialog.show()

    @Slot()
    def replay_selected(self) -> None:
        row = self.current_row()
        loaded = None if row is None else self._load(row)
        if row is None or loaded is None:
            return
        if self.replay_dialog is not None:
            self.replay_dialog.close()
        self.replay_dialog = ReplayDialog(loaded[0], self)
        self.replay_dialog.show()

    # -- background work ------------------------------------------------------------------

    def _start(self, call: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._task.start(lambda: _refusing(call), done,
                         lambda message: self._warn("PolicyLedger", f"Failed: {message}"))

    @property
    def busy(self) -> bool:
        return self._task.busy

    # -- replaying the entries not yet reproduced here -------------------------------------------

    @property
    def reproducing(self) -> bool:
        """A background replay of waiting entries is under way."""
        return self._replay is not None

    def _reproduce_waiting(self, waiting: list[int]) -> None:
        """Replay ``waiting`` entries in a worker, one run at a time; the core records what it reproduces."""
        ledger = self.model.ctx.ledger
        if self._replay is not None:
            if self._replay_ledger is not ledger:
                self._replay.worker.stop()  # another workspace: its end starts this one's replay
            return
        tried = self._tried is not None and self._tried[0] is ledger and self._tried[1] == waiting
        if self._closing or not waiting or ledger.read_only or tried:
            return
        store, reproductions = self.model.ctx.store, self.model.ctx.reproductions
        worker = GeneratorWorker(lambda should_stop: stoppable(
            reproduce(ledger, store, reproductions, waiting), should_stop))
        worker.progressed.connect(self._on_replay_progressed)
        worker.succeeded.connect(self._on_replay_succeeded)
        worker.failed.connect(self._on_replay_failed)
        self._replay_ledger, self._tried = ledger, (ledger, list(waiting))
        self._show_progress(0, len(waiting))
        self.progress.show()
        self._replay = WorkerThread(worker, self)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        noun = "entry" if total == 1 else "entries"
        self.progress.setFormat(f"Reproducing {min(done + 1, total)} of {total} {noun} on this machine\u2026")

    def _end_replay(self) -> Ledger | None:
        run, self._replay = self._replay, None
        if run is not None:
            run.thread.wait()  # the worker has emitted its last signal; its thread is ending
        ledger, self._replay_ledger = self._replay_ledger, None
        self.progress.hide()
        return ledger

    @Slot(list)
    def _on_replay_progressed(self, records: list[ReproduceProgress]) -> None:
        if self._replay is not None:  # not a record still queued when the window closed
            self._show_progress(records[-1].done, records[-1].total)

    @Slot(object)
    def _on_replay_succeeded(self, report: ReproduceReport | None) -> None:
        if self._replay is None:
            return
        ledger = self._end_replay()
        if report is None or ledger is not self.model.ctx.ledger:  # stopped for another workspace
            self.refresh()
            return
        problem = report.problem
        if problem is not None:
            self._say(f"The replay here does not reproduce entry {problem.index}: {problem.reason}. "
                      "The ledger is read-only until repaired (Ledger tab).", error=True)
            self.model.notify_changed()  # now read-only: the Ledger tab and status bar show it; this re-ranks
            return
        self.model.notify_reproduced()  # re-ranks; the window says if they could not be remembered

    @Slot(str)
    def _on_replay_failed(self, message: str) -> None:
        if self._replay is None:
            return
        self._end_replay()
        self._say(f"Replaying the waiting entries failed: {message}", error=True)
        self.refresh()  # the same entries are not tried again until the ledger changes

    def shutdown(self) -> None:
        """Stop any running task and the background replay, and wait for them (window closing)."""
        self._closing = True
        run, self._replay = self._replay, None
        if run is not None:
            for signal in (run.worker.progressed, run.worker.succeeded, run.worker.failed):
                signal.disconnect()
            run.stop_and_wait()  # stops after the entry under way; those reproduced are remembered
            self._replay_ledger = None
            self.progress.hide()
        self._task.shutdown()
        for dialog in (self.compare_dialog, self.replay_dialog):
            if dialog is not None:
                dialog.close()
