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
from app.worker import BackgroundTask
from policyledger_core.atomic import write_atomic
from policyledger_core.autosave import Saved, save_policy
from policyledger_core.bundles import MAX_BUNDLE_BYTES, BundleError, export_bundle, import_bundle
from policyledger_core.comparison import reverify
from policyledger_core.ledger import LedgerError
from policyledger_core.marketplace import Row
from policyledger_core.policy import MAX_POLICY_BYTES, Policy, PolicyError
from policyledger_core.store import StoreError
from policyledger_core.verification import VerificationReport, verify

__all__ = ["ALL_PRESETS", "MarketplaceTab", "Refused"]
BUNDLE_FILES = "PolicyLedger bundle (*.json);;All files (*)"
TABLE_SHARE = 45
"""Percent of the tab's width the ranking table starts with; the detail panel gets the rest."""


@dataclass(frozen=True)
class Refused:
    """An expected refusal from the core (bad bundle, bad file, read-only ledger): its one-line reason."""

    reason: str


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
        self._layout()
        self.preset_combo.currentTextChanged.connect(self._on_preset_combo_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)
        self.model.ledger_changed.connect(self.refresh)
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
        """Re-rank from the ledger, keeping the selection and the preset filter."""
        try:
            rows = self.model.ranking()
        except Exception as exc:  # a damaged workspace must not take the window down
            rows = []
            self._say(f"Could not read the ledger: {exc}", error=True)
        self.detail.policy_hash = None  # ranks may have moved: redraw the panel
        self.preset_combo.fill(rows)
        if self.table.set_rows(rows, self.preset_combo.preset):
            self._show_detail()
        else:
            self.detail.clear("Select a policy to see its decisions and results." if rows else
                              "No verified policies yet: train one, add a policy file or import a bundle.")
        self._update_buttons()

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
        self.status.setStyleSheet("color: #b00020;" if error else "")

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
        picked = self._pick_file("Import policy", BUNDLE_FILES, MAX_BUNDLE_BYTES)
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
        picked = self._pick_file("Add policy file", "Policy JSON (*.json);;All files (*)", MAX_POLICY_BYTES)
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

    def _pick_file(self, title: str, filters: str, limit: int) -> tuple[str, bytes] | None:
        """Ask for a file and read at most ``limit + 1`` bytes (so the core can say "too large")."""
        if self._task.busy:
            self._say("Busy: wait for the running task to finish.", error=True)
            return None
        path, _ = QFileDialog.getOpenFileName(self, title, "", filters)
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                return Path(path).name, f.read(limit + 1)
        except OSError as exc:
            self._warn(title, f"Cannot read {Path(path).name}: {exc.strerror or exc}")
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
        """Replay the current policy in a worker; the core says whether its ledger entry is reproduced."""
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
        self._start(lambda: reverify(ctx.store.get(row.policy_hash), entry),
                    lambda result: self._on_reverified(row, claimed, result))

    def _on_reverified(self, row: Row, claimed: str,
                       result: tuple[bool, VerificationReport] | Refused) -> None:
        if isinstance(result, Refused):
            self._say(f"Re-verify failed: {result.reason}", error=True)
            return
        reproduced, report = result
        if reproduced:
            self._say(f"Policy {row.policy_hash[:12]}: reproduced (mean {report.mean:.2f} on "
                      f"{report.episodes} episodes, replay digest {claimed[:12]} matches).")
        else:
            self._say(f"Policy {row.policy_hash[:12]}: MISMATCH (replay gives mean {report.mean:.2f}, "
                      f"digest {report.replay_digest[:12]} where the ledger records {claimed[:12]}).",
                      error=True)

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

    def shutdown(self) -> None:
        """Stop any running task and wait for it (window closing)."""
        self._task.shutdown()
        for dialog in (self.compare_dialog, self.replay_dialog):
            if dialog is not None:
                dialog.close()
