"""The Marketplace tab: ranked verified policies, their details, and bundle import and export."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.compare_dialog import CompareDialog
from app.model import AppModel
from app.policy_detail import PolicyDetail
from app.replay_dialog import ReplayDialog
from app.worker import GeneratorWorker, WorkerThread
from policyledger_core.atomic import write_atomic
from policyledger_core.autosave import Saved, save_policy
from policyledger_core.bundles import MAX_BUNDLE_BYTES, BundleError, export_bundle, import_bundle
from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.ledger import LedgerError
from policyledger_core.marketplace import Row
from policyledger_core.policy import MAX_POLICY_BYTES, Policy, PolicyError
from policyledger_core.store import StoreError
from policyledger_core.verification import VerificationReport, verify

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole
HASH_ROLE = Qt.ItemDataRole.UserRole + 1
PRESET_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("Rank", "Policy", "Preset", "Verified reward", "Of optimum", "Publisher", "Origin", "Date")
ALL_PRESETS = "All presets"


def preset_label(row: Row) -> str:
    """The preset's name, or a short fingerprint of a custom configuration."""
    if row.preset is not None:
        return row.preset
    return f"custom H={row.config.horizon} #{sha256_hex(canonical_bytes(row.config.to_dict()))[:6]}"


def _one_step(call: Callable[[], Any]) -> Generator[None, None, Any]:
    """A plain call as a (one-step) core generator, so GeneratorWorker can run it."""
    return call()
    yield  # makes this a generator


@dataclass(frozen=True)
class Refused:
    """An expected refusal from the core (bad bundle, bad file, read-only ledger): its one-line reason."""

    reason: str


def _refusing(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return call()
        except (BundleError, LedgerError, PolicyError, StoreError, OSError) as exc:
            return Refused(str(exc) or type(exc).__name__)
    return run


class RankingModel(QAbstractTableModel):
    """The marketplace rows as a table; numbers sort as numbers (SORT_ROLE)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []

    def set_rows(self, rows: list[Row]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's API)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 (Qt's API)
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role == SORT_ROLE:
            return (row.rank, row.policy_hash, preset_label(row), row.mean, row.fraction_of_optimum,
                    "" if row.own else row.publisher_id, row.origin, row.timestamp)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (0, 3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == HASH_ROLE:
            return row.policy_hash
        if role == PRESET_ROLE:
            return preset_label(row)
        return None

    @staticmethod
    def _text(row: Row, column: int) -> str:
        return (str(row.rank), row.policy_hash[:12], preset_label(row), f"{row.mean:.2f} +/- {row.ci95:.2f}",
                f"{row.fraction_of_optimum:.1%}", "you" if row.own else row.publisher_id, row.origin,
                row.timestamp.replace("T", " ").removesuffix("Z")[:16])[column]

    @staticmethod
    def _tooltip(row: Row, column: int) -> str | None:
        if column == 1:
            return row.policy_hash
        if column == 2:
            return str(row.config.to_dict())
        if column == 3:
            return f"95% CI [{row.ci_low:.2f}, {row.mean + row.ci95:.2f}]; ranked by its lower bound"
        if column == 4:
            return f"optimum {row.optimum:.2f} on the same episodes"
        if column == 5:
            return f"publisher key {row.publisher}"
        return None


class PresetFilter(QSortFilterProxyModel):
    """Keeps the rows of one preset (None: all)."""

    def __init__(self) -> None:
        super().__init__()
        self.preset: str | None = None
        self.setSortRole(SORT_ROLE)

    def set_preset(self, preset: str | None) -> None:
        if hasattr(self, "endFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self.preset = preset
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.preset = preset
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if self.preset is None:
            return True
        return bool(self.sourceModel().index(source_row, 0, source_parent).data(PRESET_ROLE) == self.preset)


class MarketplaceTab(QWidget):
    """Ranked verified policies: inspect, compare, replay, re-verify, import and export."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("marketplaceTab")
        self.model = model
        self.ranking = RankingModel()
        self.proxy = PresetFilter()
        self.proxy.setSourceModel(self.ranking)
        self.table = self._table()
        self.preset_combo = QComboBox(objectName="presetFilter")
        self.preset_combo.addItem(ALL_PRESETS)
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
        self._job: WorkerThread | None = None
        self._job_done: Callable[[Any], None] | None = None
        self._layout()
        self.preset_combo.currentTextChanged.connect(self._on_preset_combo_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)
        self.model.ledger_changed.connect(self.refresh)
        self.refresh()

    def _table(self) -> QTableView:
        table = QTableView(objectName="marketplaceTable")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        table.setAlternatingRowColors(True)
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        return table

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
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([460, 820])
        QVBoxLayout(self).addWidget(splitter)

    # -- table -------------------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Re-rank from the ledger, keeping the selection and the preset filter."""
        keep = set(self.selected_hashes())
        current = self.current_row()
        try:
            rows = self.model.ranking()
        except Exception as exc:  # a damaged workspace must not take the window down
            rows = []
            self._say(f"Could not read the ledger: {exc}", error=True)
        self.ranking.set_rows(rows)
        self.detail.policy_hash = None  # ranks may have moved: redraw the panel
        self._fill_preset_combo(rows)
        self.select_hashes(keep, None if current is None else current.policy_hash)
        if not self.selected_hashes():
            self.detail.clear("Select a policy to see its decisions and results." if rows else
                              "No verified policies yet: train one, add a policy file or import a bundle.")
        self._update_buttons()

    def _fill_preset_combo(self, rows: list[Row]) -> None:
        chosen = self.preset_combo.currentText()
        labels = sorted({preset_label(r) for r in rows})
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItems([ALL_PRESETS, *labels])
        self.preset_combo.setCurrentText(chosen if chosen in labels else ALL_PRESETS)
        self.preset_combo.blockSignals(False)
        self.proxy.set_preset(None if self.preset_combo.currentText() == ALL_PRESETS
                              else self.preset_combo.currentText())

    def visible_rows(self) -> list[Row]:
        """The rows in table order (after filter and sort)."""
        return [self.ranking.rows[self.proxy.mapToSource(self.proxy.index(i, 0)).row()]
                for i in range(self.proxy.rowCount())]

    def selected_rows(self) -> list[Row]:
        """Selected rows, in table order."""
        indexes = sorted(self.table.selectionModel().selectedRows(), key=lambda ix: ix.row())
        return [self.ranking.rows[self.proxy.mapToSource(ix).row()] for ix in indexes]

    def selected_hashes(self) -> list[str]:
        return [r.policy_hash for r in self.selected_rows()]

    def current_row(self) -> Row | None:
        """The row the detail panel shows: the current one if selected, else the first selected."""
        selection = self.table.selectionModel()
        current = selection.currentIndex()
        if current.isValid() and selection.isRowSelected(current.row(), QModelIndex()):
            return self.ranking.rows[self.proxy.mapToSource(current).row()]
        rows = self.selected_rows()
        return rows[0] if rows else None

    def select_hashes(self, hashes: set[str], current: str | None = None) -> None:
        """Select the visible rows of these policies; ``current`` gets the focus."""
        selection = QItemSelection()
        current_index = QModelIndex()
        for i in range(self.proxy.rowCount()):
            index = self.proxy.index(i, 0)
            policy_hash = index.data(HASH_ROLE)
            if policy_hash in hashes:
                selection.select(index, self.proxy.index(i, len(COLUMNS) - 1))
                if policy_hash == current or not current_index.isValid():
                    current_index = index
        flags = QItemSelectionModel.SelectionFlag
        model = self.table.selectionModel()
        model.select(selection, flags.ClearAndSelect | flags.Rows)
        if current_index.isValid():
            model.setCurrentIndex(current_index, flags.NoUpdate)
            self.table.scrollTo(current_index)
            self._show_detail()

    @Slot(str)
    def _on_preset_combo_changed(self, text: str) -> None:
        self.proxy.set_preset(None if text in (ALL_PRESETS, "") else text)
        self._update_buttons()

    @Slot(QItemSelection, QItemSelection)
    def _on_table_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_buttons()
        self._show_detail()

    @Slot(QModelIndex, QModelIndex)
    def _on_table_current_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_detail()

    def _update_buttons(self) -> None:
        count = len(self.table.selectionModel().selectedRows())
        busy = self._job is not None
        b = self.buttons
        b["exportButton"].setEnabled(count >= 1)
        b["importButton"].setEnabled(not busy)
        b["addPolicyButton"].setEnabled(not busy)
        b["reverifyButton"].setEnabled(count >= 1 and not busy)
        b["compareButton"].setEnabled(2 <= count <= 4)
        b["replayButton"].setEnabled(count >= 1)

    def _show_detail(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.policy_hash == self.detail.policy_hash:
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
                                              "PolicyLedger bundle (*.json);;All files (*)")
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
        if self._job is not None:
            self._say("Busy: wait for the running task to finish.", error=True)
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import policy bundle", "",
                                              "PolicyLedger bundle (*.json);;All files (*)")
        if not path:
            return
        data = self._read(path, MAX_BUNDLE_BYTES, "Import policy")
        if data is None:
            return
        ctx = self.model.ctx
        self._say(f"Checking {Path(path).name}: replaying the policy...")
        self._start(_refusing(lambda: import_bundle(ctx, data)),
                    lambda result: self._on_saved(result, "Import policy", "Imported"))

    @Slot()
    def add_policy_file(self) -> None:
        """Verify a bare policy JSON by replay and record it as ``added``."""
        if self._job is not None:
            self._say("Busy: wait for the running task to finish.", error=True)
            return
        path, _ = QFileDialog.getOpenFileName(self, "Add policy file", "",
                                              "Policy JSON (*.json);;All files (*)")
        if not path:
            return
        data = self._read(path, MAX_POLICY_BYTES, "Add policy file")
        if data is None:
            return
        try:
            policy = Policy.from_json(data)
        except PolicyError as exc:
            self._warn("Add policy file", f"Not a valid policy: {exc}")
            return
        ctx = self.model.ctx
        self._say(f"Verifying policy {policy.hash[:12]} by replay...")
        self._start(_refusing(lambda: save_policy(ctx, policy, None, {"kind": "added"})),
                    lambda result: self._on_saved(result, "Add policy file", "Added"))

    def _read(self, path: str, limit: int, title: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read(limit + 1)  # one byte more, so the core can say "too large"
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
        """Replay the current policy in a worker and compare the digest with its ledger entry."""
        row = self.current_row()
        if row is None or self._job is not None:
            return
        ctx = self.model.ctx
        entry = ctx.ledger.find_policy(row.policy_hash)
        if entry is None:
            self._say(f"Policy {row.policy_hash[:12]} is no longer in the ledger.", error=True)
            return
        claimed = entry.verification

        def check() -> tuple[str, VerificationReport]:
            return claimed["replay_digest"], verify(ctx.store.get(row.policy_hash), int(claimed["episodes"]))

        self._say(f"Re-verifying policy {row.policy_hash[:12]} by replay...")
        self._start(_refusing(check), lambda result: self._on_reverified(row, result))

    def _on_reverified(self, row: Row, result: tuple[str, VerificationReport] | Refused) -> None:
        if isinstance(result, Refused):
            self._say(f"Re-verify failed: {result.reason}", error=True)
            return
        claimed, report = result
        if report.replay_digest == claimed:
            self._say(f"Policy {row.policy_hash[:12]}: reproduced (mean {report.mean:.2f} on "
                      f"{report.episodes} episodes, replay digest {claimed[:12]} matches).")
        else:
            self._say(f"Policy {row.policy_hash[:12]}: MISMATCH (replay gives mean {report.mean:.2f}, "
                      f"digest {report.replay_digest[:12]} instead of {claimed[:12]}).", error=True)

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

    # -- worker -------------------------------------------------------------------------------

    def _start(self, call: Callable[[], Any], done: Callable[[Any], None]) -> None:
        worker = GeneratorWorker(lambda _stop: _one_step(call))
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self._job_done = done
        self._job = WorkerThread(worker, self)
        self._update_buttons()

    def _end_job(self) -> Callable[[Any], None] | None:
        job, self._job = self._job, None
        done, self._job_done = self._job_done, None
        if job is not None:
            job.thread.wait()
        self._update_buttons()
        return done

    @Slot(object)
    def _on_worker_succeeded(self, result: Any) -> None:
        done = self._end_job()
        if done is not None:
            done(result)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        self._end_job()
        self._warn("PolicyLedger", f"Failed: {message}")

    @property
    def busy(self) -> bool:
        return self._job is not None

    def shutdown(self) -> None:
        """Stop any running task and wait for it (window closing)."""
        job, self._job = self._job, None
        self._job_done = None
        if job is not None:
            job.worker.succeeded.disconnect(self._on_worker_succeeded)
            job.worker.failed.disconnect(self._on_worker_failed)
            job.stop_and_wait()
        for dialog in (self.compare_dialog, self.replay_dialog):
            if dialog is not None:
                dialog.close()
