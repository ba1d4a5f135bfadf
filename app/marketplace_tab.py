"""The Marketplace tab: ranked verified policies, their details, and bundle import and export.

Everything that reads files or replays runs as a background task on a view of the
workspace of its own (:class:`app.model.Place`): the detail panel's replay, compare,
re-verify, export, import, add, and the replay of entries not yet reproduced here.
The tab shows what they hand back; the model re-reads the ledger when they changed it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QItemSelection, QModelIndex, QObject, QRect, Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
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

from app import settings
from app.compare_dialog import CompareDialog, Comparison, compare
from app.marketplace_table import ALL_PRESETS, FilterEdit, PresetCombo, RankingTable
from app.model import AppModel, Findings, Place
from app.policy_detail import PolicyDetail
from app.replay_dialog import ReplayDialog, TaskReplayDialog
from app.task_map import TaskDetail, TaskFacts, task_detail, task_facts
from app.worker import ShouldStop, TaskRunner, one_line
from policyledger_core.atomic import write_atomic
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.entry import Entry
from policyledger_core.policy import (
    MAX_POLICY_BYTES,
    AnyPolicy,
    Policy,
    PolicyError,
    TaskPolicy,
    policy_from_json,
)
from policyledger_core.safeio import check_path, describe, read_regular
from policyledger_core.verify.comparison import reverify
from policyledger_core.verify.figures import replay_problem
from policyledger_core.verify.suite import VerificationReport
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.bundles import MAX_BUNDLE_BYTES, BundleError, export_bundle, import_bundle
from policyledger_core.workspace.curves import Curve, CurveStore
from policyledger_core.workspace.marketplace import RankedPolicy
from policyledger_core.workspace.publish import SavedPolicy, save_policy
from policyledger_core.workspace.reproduced import ReproduceProgress, ReproduceReport, reproduce
from policyledger_core.workspace.store import StoreError

__all__ = ["ALL_PRESETS", "MarketplaceTab"]
BUNDLE_FILES = "PolicyLedger bundle (*.json);;All files (*)"
TABLE_SHARE = 45
"""Percent of the tab's width the ranking table starts with; the detail panel gets the rest."""
WAITING_LISTED = 20
"""Waiting entries named in the ranking line's tooltip; the rest are counted."""
ERROR_STYLE = "color: #b00020;"
SLOW_DETAIL_MS = 200
"""The detail panel says it is replaying only when that takes longer than this."""
STATUS_LINES = 2
"""The status line below the buttons keeps room for this many lines whatever it says (longer: cut,
the tooltip has all of it), so the buttons above it never move."""
BANNER_STYLE = ("QFrame#marketplaceBanner { background: #b00020; border-radius: 4px; }"
                " QFrame#marketplaceBanner QLabel { color: white; font-weight: bold; }")
READ_ONLY_TIP = "The ledger is read-only until it is repaired (Ledger tab): nothing can be added to it."
REFUSALS = (BundleError, LedgerError, PolicyError, StoreError, OSError)
"""Expected refusals by the core (bad bundle, bad file, read-only ledger): said as they are."""


class NotAPolicy(Exception):
    """A picked policy file that does not parse as a policy."""


@dataclass(frozen=True)
class Loaded:
    """A policy and a fresh verification report of it, for the detail panel."""

    row: RankedPolicy
    policy: AnyPolicy
    report: VerificationReport
    curve: Curve | None = None
    """The training curve kept on this machine, if it was trained here."""
    task: TaskDetail | None = None
    """A toy-text task's policy: its exact figures and its task's map."""


@dataclass(frozen=True)
class ToReplay:
    """A policy to replay step by step, and its task's facts (a toy-text task's policy)."""

    policy: AnyPolicy
    facts: TaskFacts | None = None


@dataclass(frozen=True)
class Added:
    """An imported or added policy, and what the task's own Context learned."""

    saved: SavedPolicy
    findings: Findings
    proof: str | None = None
    """What a bundle's inclusion proof showed (imports only)."""


@dataclass(frozen=True)
class Replayed:
    """A replay of waiting entries: the core's report, and what the task's own Context learned."""

    report: ReproduceReport
    findings: Findings


def _replayed_against(policy: AnyPolicy, entry: Entry) -> tuple[VerificationReport, str | None]:
    """Replay ``policy`` on its entry's suite: the report, and the first recorded figure not reproduced."""
    reproduced, report = reverify(policy, entry)
    problem = replay_problem(entry.verification, report)
    if problem is None and not reproduced:  # every figure matches, but of another policy's entry
        problem = "the entry records another policy"
    return report, problem


# -- the work of the tasks (each runs in a worker thread, on objects of its own) ----------------------


def load_task(place: Place, row: RankedPolicy) -> Loaded:
    """The stored policy and a fresh report (a few ms once the suite is cached; a toy-text task's policy
    is replayed in Gymnasium, under a second, and valued exactly)."""
    policy = place.store().get(row.policy_hash)
    task = task_detail(policy) if isinstance(policy, TaskPolicy) else None
    return Loaded(row, policy, verify_policy(policy), CurveStore(place.config).load(row.policy_hash), task)


def reverify_task(place: Place, entry: Entry) -> tuple[VerificationReport, str | None]:
    return _replayed_against(place.store().get(entry.policy_hash), entry)


def compare_task(place: Place, rows: Sequence[RankedPolicy]) -> Comparison:
    return compare(rows, place.store())


def policy_task(place: Place, policy_hash: str) -> ToReplay:
    policy = place.store().get(policy_hash)
    return ToReplay(policy, task_facts(policy.env_id) if isinstance(policy, TaskPolicy) else None)


def export_task(place: Place, policy_hash: str, path: Path) -> None:
    """Write the policy's bundle to ``path`` (atomically: nothing is written on a failure)."""
    write_atomic(path, export_bundle(place.open(), policy_hash))


def import_task(place: Place, path: Path, name: str) -> Added:
    """Read a bundle, check it (replay included) and record it; a refusal changes nothing."""
    data = read_regular(path, MAX_BUNDLE_BYTES, name)
    ctx = place.open()
    imported = import_bundle(ctx, data)
    return Added(imported.saved, Findings.of(ctx), imported.describe())


def add_task(place: Place, path: Path, name: str) -> Added:
    """Read a bare policy file, verify it by replay and record it as ``added``."""
    data = read_regular(path, MAX_POLICY_BYTES, name)
    try:
        policy = policy_from_json(data)
    except PolicyError as exc:
        raise NotAPolicy(f"Not a valid policy: {exc}") from exc
    ctx = place.open()
    return Added(save_policy(ctx, policy, None, {"kind": "added"}), Findings.of(ctx))


def replay_task(place: Place, waiting: list[int]) -> Generator[ReproduceProgress, None, Replayed]:
    """Reproduce the ``waiting`` entries by replay; the core remembers those it reproduced."""
    ctx = place.open()
    report = yield from reproduce(ctx.ledger, ctx.store, ctx.reproductions, waiting)
    return Replayed(report, Findings.of(ctx))


class MarketplaceTab(QWidget):
    """Ranked verified policies: inspect, compare, replay, re-verify, import and export."""

    def __init__(self, model: AppModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("marketplaceTab")
        self.model = model
        self.table = RankingTable()
        self.ranking, self.proxy = self.table.ranking, self.table.proxy
        self.preset_combo = PresetCombo()
        self.filter_edit = FilterEdit()
        """Filters the table by policy-hash prefix or publisher (the ranking line counts the rows shown)."""
        self._ranked_state: tuple[int, list[int]] = (0, [])
        self.detail = PolicyDetail(self)
        self.status = QLabel("")
        self.status.setObjectName("marketplaceStatus")
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.status.setFixedHeight(STATUS_LINES * self.status.fontMetrics().lineSpacing())
        self.status.installEventFilter(self)  # a new width: the text is fitted again
        self._status_text = ""
        self.banner = QFrame()
        """Names the ledger's problem while it is read-only (as the Ledger tab's banner does)."""
        self.banner.setObjectName("marketplaceBanner")
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner_text = QLabel(wordWrap=True)
        self.banner_text.setObjectName("marketplaceBannerText")
        QHBoxLayout(self.banner).addWidget(self.banner_text)
        self.banner.hide()
        self.ranking_state = QLabel("")
        self.ranking_state.setObjectName("marketplaceRanking")
        self.ranking_state.setWordWrap(True)
        self.progress = QProgressBar(textVisible=True)
        self.progress.setObjectName("marketplaceProgress")
        self.busy_bar = QProgressBar(textVisible=False, minimum=0, maximum=0)
        """Shown while an action (import, export, compare...) runs in the background."""
        self.busy_bar.setObjectName("marketplaceBusy")
        self.busy_bar.setMaximumHeight(8)
        for bar in (self.progress, self.busy_bar):
            keep_room = bar.sizePolicy()
            keep_room.setRetainSizeWhenHidden(True)  # the table does not jump when a task ends
            bar.setSizePolicy(keep_room)
            bar.hide()
        self.buttons: dict[str, QPushButton] = {}
        for name, text, slot in (
            ("exportButton", "&Export...", self.export_selected),
            ("importButton", "&Import...", self.import_bundle),
            ("addPolicyButton", "&Add policy file...", self.add_policy_file),
            ("reverifyButton", "Re-&verify", self.reverify_selected),
            ("compareButton", "&Compare...", self.compare_selected),
            ("replayButton", "&Replay...", self.replay_selected),
        ):
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(slot)
            self.buttons[name] = button
        self.compare_dialog: CompareDialog | None = None
        self.replay_dialog: ReplayDialog | TaskReplayDialog | None = None
        self._actions = TaskRunner(self)
        """The user's actions (export, import, add, re-verify, compare, replay): one at a time."""
        self._actions.busy_changed.connect(self._on_actions_busy_changed)
        self._detail = TaskRunner(self)
        """The detail panel's load and replay of the current policy."""
        self._loading: RankedPolicy | None = None
        self._unloadable: str | None = None
        """The policy whose detail failed to load: not tried again until the next refresh."""
        self._slow_detail = QTimer(self, singleShot=True, interval=SLOW_DETAIL_MS)
        self._slow_detail.timeout.connect(self._on_slow_detail_timeout)
        self._replays = TaskRunner(self)
        """The replay of the entries not yet reproduced here."""
        self._replay_generation = -1
        self._tried: list[int] | None = None
        """The last replay's entries: the same ones are not tried again in a loop (a failure)."""
        self._findings: Findings | None = None
        """What the action just ended learned, for the change notice."""
        self._closing = False
        self._layout()
        self.preset_combo.currentTextChanged.connect(self._on_preset_combo_changed)
        self.filter_edit.textChanged.connect(self._on_filter_text_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_changed)
        self.model.ledger_changed.connect(self._on_model_changed)
        self.model.reproductions_changed.connect(self._on_model_changed)
        self.model.workspace_changed.connect(self._on_model_workspace_changed)
        self.refresh()

    def _layout(self) -> None:
        filter_row = QHBoxLayout()
        label = QLabel("&Preset:")
        label.setBuddy(self.preset_combo)
        filter_row.addWidget(label)
        filter_row.addWidget(self.preset_combo, 1)
        filter_row.addWidget(self.filter_edit, 2)
        button_row = QGridLayout()
        for i, button in enumerate(self.buttons.values()):
            button_row.addWidget(button, i // 3, i % 3)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.banner)
        left_layout.addLayout(filter_row)
        left_layout.addWidget(self.ranking_state)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.table, 1)
        left_layout.addLayout(button_row)
        left_layout.addWidget(self.busy_bar)
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
        self._unloadable = None  # and a file that was missing may be back
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
        self._ranked_state = (ranked, waiting)
        ledger = self.model.ctx.ledger
        parts = [f"{ranked} ranked (reproduced here)"]
        shown = self.proxy.rowCount()
        if self.filter_edit.text().strip() or shown != ranked:
            parts.insert(0, f"showing {shown} of {ranked}")
        if waiting:
            parts.append(f"{len(waiting)} waiting for replay" + (" (not while read-only)" if ledger.read_only
                                                                  else ""))
        problem = ledger.problem
        if problem is not None:
            parts.append(f"read-only ledger, problem at entry {problem.index}: {problem.reason}")
        self.ranking_state.setText(" \u00b7 ".join(parts))
        self.banner.setVisible(problem is not None)
        if problem is not None:
            self.banner_text.setText(
                f"The ledger is damaged at entry {problem.index}: {problem.reason}. It is read-only until "
                "repaired (Ledger tab): nothing can be imported or added, and only the entries before the "
                "problem are listed.")
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

    def visible_rows(self) -> list[RankedPolicy]:
        """The rows in table order (after filter and sort)."""
        return self.table.visible_rows()

    def selected_rows(self) -> list[RankedPolicy]:
        """Selected rows, in table order."""
        return self.table.selected_rows()

    def current_row(self) -> RankedPolicy | None:
        """The row the detail panel shows: the current one if selected, else the first selected."""
        return self.table.current_row()

    def select_hashes(self, hashes: set[str], current: str | None = None) -> None:
        """Select the visible rows of these policies; ``current`` gets the focus and the detail panel."""
        if self.table.select_hashes(hashes, current):
            self._show_detail()

    @Slot(str)
    def _on_preset_combo_changed(self, _text: str) -> None:
        self.proxy.set_preset(self.preset_combo.preset)
        self._on_rows_filtered()

    @Slot(str)
    def _on_filter_text_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._on_rows_filtered()

    def _on_rows_filtered(self) -> None:
        """The rows shown changed: count them; the detail panel empties when its row was filtered out."""
        self._show_ranking_state(*self._ranked_state)
        self._update_buttons()
        if self.current_row() is None and self.detail.policy_hash is not None:
            self.detail.clear("Select a policy to see its decisions and results.")
        else:
            self._show_detail()

    @Slot(QItemSelection, QItemSelection)
    def _on_table_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._update_buttons()
        self._show_detail()

    @Slot(QModelIndex, QModelIndex)
    def _on_table_current_changed(self, _current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_detail()

    def _update_buttons(self) -> None:
        """Actions need their selection, and no other action under way (one at a time)."""
        count, idle = len(self.table.selectionModel().selectedRows()), not self._actions.busy
        writable = not self.model.ctx.ledger.read_only
        for name in ("importButton", "addPolicyButton"):
            self.buttons[name].setToolTip("" if writable else READ_ONLY_TIP)
        for name, enabled in (("exportButton", count >= 1), ("importButton", writable),
                              ("addPolicyButton", writable),
                              ("reverifyButton", count >= 1), ("compareButton", 2 <= count <= 4),
                              ("replayButton", count >= 1)):
            self.buttons[name].setEnabled(enabled and idle)

    # -- the detail panel ---------------------------------------------------------------------

    @property
    def loading_detail(self) -> bool:
        """The detail panel's policy is being loaded and replayed."""
        return self._detail.busy

    def _show_detail(self) -> None:
        """Load and replay the current row's policy in the background, then show it.

        One load at a time: when the selection moves on meanwhile, the newest
        current row is loaded once the running load ends.
        """
        row = self.current_row()
        if (row is None or self._closing or self._detail.busy or row.policy_hash == self.detail.policy_hash
                or row.policy_hash == self._unloadable):
            return
        place, self._loading = self.model.place, row
        self._detail.call(lambda: load_task(place, row), done=self._on_detail_loaded,
                          error=self._on_detail_failed)
        self._slow_detail.start()

    def _on_slow_detail_timeout(self) -> None:
        if self._detail.busy and self._loading is not None:
            self.detail.message.setText(f"Replaying policy {self._loading.policy_hash[:24]}... on the "
                                        "evaluation suite")

    def _on_detail_loaded(self, loaded: Loaded) -> None:
        self._slow_detail.stop()
        self._loading = None
        row = self.current_row()
        if row is not None and row.policy_hash == loaded.row.policy_hash:
            self.detail.show_policy(row, loaded.policy, loaded.report, loaded.curve,  # the row as ranked now
                                    loaded.task)
        self._show_detail()  # the selection moved on meanwhile

    def _on_detail_failed(self, exc: Exception) -> None:
        self._slow_detail.stop()
        row, self._loading = self._loading, None
        if row is not None:  # a missing or damaged file: say so
            self._unloadable = row.policy_hash
            message = f"Policy {row.policy_hash[:12]} cannot be shown: {one_line(exc)}"
            self.detail.clear(message)
            self._say(message, error=True)
        self._show_detail()

    def _say(self, text: str, error: bool = False) -> None:
        self._status_text = text
        self.status.setToolTip(text)
        self._fit_status()
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def _fit_status(self) -> None:
        """The status text, cut with "\u2026" where it would need more than its lines (the tooltip has
        all of it)."""
        text, metrics = self._status_text, self.status.fontMetrics()
        if not self.status.isVisible():  # no width of its own yet: fitted when shown (a resize)
            self.status.setText(text)
            return
        width = max(self.status.width(), 1)
        room = QRect(0, 0, width, 100 * metrics.lineSpacing())
        flags = int(Qt.TextFlag.TextWordWrap)
        budget = STATUS_LINES * width
        while text and metrics.boundingRect(room, flags, text).height() > self.status.height():
            budget -= metrics.averageCharWidth() * 4
            text = metrics.elidedText(self._status_text, Qt.TextElideMode.ElideRight, max(budget, 0))
        self.status.setText(text)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.status and event.type() == QEvent.Type.Resize:
            self._fit_status()
        return super().eventFilter(watched, event)

    def _warn(self, title: str, text: str) -> None:
        self._say(text, error=True)
        QMessageBox.warning(self, title, text)

    # -- actions ------------------------------------------------------------------------------

    @Slot()
    def export_selected(self) -> None:
        """Write the current policy's bundle to a file the user picks (in the background)."""
        if self._actions.busy:
            self._say("Busy: wait for the running task to finish.", error=True)
            return
        row = self.current_row()
        if row is None:
            self._warn("Export policy", "Select a policy to export.")
            return
        folder = Path(self._start_folder("export"))
        path, _ = QFileDialog.getSaveFileName(self, "Export policy bundle",
                                              str(folder / f"policy-{row.policy_hash[:12]}.bundle.json"),
                                              BUNDLE_FILES)
        if not path:
            return
        settings.remember_folder("export", str(Path(path).parent), self.model.ctx.config_dir)
        place, policy_hash, target = self.model.place, row.policy_hash, Path(path)
        self._say(f"Exporting policy {policy_hash[:12]}...")
        self._run(lambda: export_task(place, policy_hash, target),
                  lambda _none: self._say(f"Exported policy {policy_hash[:12]} to {path}."),
                  lambda exc: self._warn("Export policy", f"Export failed, nothing written: {one_line(exc)}"))

    @Slot()
    def import_bundle(self) -> None:
        """Check a bundle (replay included) in the background, then record it; a refusal changes nothing."""
        picked = self._pick_file("Import policy", BUNDLE_FILES, MAX_BUNDLE_BYTES, "imported", "import")
        if picked is None:
            return
        place, (name, path) = self.model.place, picked
        self._say(f"Checking {name}: replaying the policy...")
        self._run(lambda: import_task(place, path, name),
                  lambda added: self._on_added(added, "Import policy", "Imported"),
                  lambda exc: self._refused(exc, "Import policy", name, "imported"))

    @Slot()
    def add_policy_file(self) -> None:
        """Verify a bare policy JSON by replay (in the background) and record it as ``added``."""
        picked = self._pick_file("Add policy file", "Policy JSON (*.json);;All files (*)", MAX_POLICY_BYTES,
                                 "added", "add")
        if picked is None:
            return
        place, (name, path) = self.model.place, picked
        self._say(f"Verifying the policy in {name} by replay...")
        self._run(lambda: add_task(place, path, name),
                  lambda added: self._on_added(added, "Add policy file", "Added"),
                  lambda exc: self._refused(exc, "Add policy file", name, "added"))

    def _start_folder(self, kind: str) -> str:
        """Where a file dialog of ``kind`` opens: the folder it last used, else the workspace."""
        return settings.last_folder(kind, self.model.workspace_root, self.model.ctx.config_dir)

    def _pick_file(self, title: str, filters: str, limit: int, verb: str,
                   kind: str) -> tuple[str, Path] | None:
        """Ask for a file: a regular file of at most ``limit`` bytes (read later, by the task).

        Refused at once when it is not: never blocks on a FIFO or reads a device
        (the check comes before any read, and again at the read). Refused before
        asking while the ledger is read-only (nothing could be recorded).
        """
        if self._actions.busy:
            self._say("Busy: wait for the running task to finish.", error=True)
            return None
        if self.model.ctx.ledger.read_only:
            self._say(f"Nothing can be {verb}: {READ_ONLY_TIP[0].lower()}{READ_ONLY_TIP[1:]}", error=True)
            return None
        path, _ = QFileDialog.getOpenFileName(self, title, self._start_folder(kind), filters)
        if not path:
            return None
        settings.remember_folder(kind, str(Path(path).parent), self.model.ctx.config_dir)
        name = Path(path).name
        try:
            check_path(Path(path), limit, name)
        except OSError as exc:
            self._refused(exc, title, name, verb)
            return None
        return name, Path(path)

    def _refused(self, exc: Exception, title: str, name: str, verb: str) -> None:
        """An import or add that did not happen: the core's reason, as it is said."""
        if isinstance(exc, OSError):
            self._warn(title, f"{describe(exc, name)}. Nothing was {verb}.")
        elif isinstance(exc, (*REFUSALS, NotAPolicy)):
            self._warn(title, one_line(exc))
        else:
            self._warn("PolicyLedger", f"Failed: {type(exc).__name__}: {one_line(exc)}")

    def _on_added(self, added: Added, title: str, verb: str) -> None:
        self._findings = added.findings
        self._on_saved(added.saved, title, verb, added.proof)

    def _take_findings(self) -> Findings | None:
        findings, self._findings = self._findings, None
        return findings

    def _on_saved(self, result: SavedPolicy, title: str, verb: str, proof: str | None = None) -> None:
        entry = result.entry
        proved = "" if proof is None else f" Proof: {proof}."
        if result.created:
            self._say(f"{verb} policy {result.policy.hash[:12]} as ledger entry #{entry.index} "
                      f"(verified by replay: {entry.verification.mean:.2f}).{proved}")
        else:
            self._say(f"Policy {result.policy.hash[:12]} is already in the ledger "
                      f"(entry #{entry.index}).{proved}")
        self.preset_combo.setCurrentText(ALL_PRESETS)
        self.filter_edit.clear()  # the new row is shown and selected whatever the filter was
        self.model.notify_changed(self, self._take_findings())
        self.select_hashes({result.policy.hash}, result.policy.hash)

    @Slot()
    def reverify_selected(self) -> None:
        """Replay the current policy in a worker; the core names the first recorded figure not reproduced."""
        row = self.current_row()
        if row is None or self._actions.busy:
            return
        entry = self.model.ctx.ledger.find_policy(row.policy_hash)
        if entry is None:
            self._say(f"Policy {row.policy_hash[:12]} is no longer in the ledger.", error=True)
            return
        claimed = str(entry.verification.replay_digest)
        self._say(f"Re-verifying policy {row.policy_hash[:12]} by replay...")
        place = self.model.place
        self._run(lambda: reverify_task(place, entry),
                  lambda result: self._on_reverified(row, claimed, result),
                  lambda exc: self._say(f"Re-verify failed: {one_line(exc)}", error=True))

    def _on_reverified(self, row: RankedPolicy, claimed: str,
                       result: tuple[VerificationReport, str | None]) -> None:
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
        if self._actions.busy:
            return
        place = self.model.place
        self._say(f"Comparing {len(rows)} policies: replaying them on the same episodes...")
        self._run(lambda: compare_task(place, rows), self._on_compared,
                  lambda exc: self._say(f"Cannot compare: {one_line(exc)}", error=True))

    def _on_compared(self, comparison: Comparison) -> None:
        self._say(f"Compared {len(comparison.rows)} policies.")
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        self.compare_dialog = CompareDialog(comparison, self)
        self.compare_dialog.show()

    @Slot()
    def replay_selected(self) -> None:
        row = self.current_row()
        if row is None or self._actions.busy:
            return
        place, policy_hash = self.model.place, row.policy_hash
        self._run(lambda: policy_task(place, policy_hash), self._on_replay_policy_loaded,
                  lambda exc: self._say(f"Policy {policy_hash[:12]} cannot be replayed: {one_line(exc)}",
                                        error=True))

    def _on_replay_policy_loaded(self, loaded: ToReplay) -> None:
        if self.replay_dialog is not None:
            self.replay_dialog.close()
        policy = loaded.policy
        if isinstance(policy, Policy):
            self.replay_dialog = ReplayDialog(policy, self)
        else:
            assert loaded.facts is not None
            self.replay_dialog = TaskReplayDialog(policy, loaded.facts, self)
        self.replay_dialog.show()

    # -- background work ------------------------------------------------------------------

    def _run(self, call: Callable[[], object], done: Callable[[Any], object],
             error: Callable[[Exception], object]) -> None:
        """Run one of the user's actions in the background (one at a time)."""
        if self._actions.busy:
            self._say("Busy: wait for the running task to finish.", error=True)
            return
        self._actions.call(call, done=done, error=error)

    def _on_actions_busy_changed(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        self._update_buttons()

    @property
    def busy(self) -> bool:
        """A user's action, or the detail panel's replay, is under way."""
        return self._actions.busy or self._detail.busy

    # -- replaying the entries not yet reproduced here -------------------------------------------

    @property
    def reproducing(self) -> bool:
        """A background replay of waiting entries is under way."""
        return self._replays.busy

    def _on_model_changed(self, _initiator: object) -> None:
        self.refresh()  # this tab's own changes too: it re-ranks from the model's view

    def _on_model_workspace_changed(self) -> None:
        self._tried = None

    def _reproduce_waiting(self, waiting: list[int]) -> None:
        """Replay ``waiting`` entries in the background, one run at a time; the core records what it
        reproduces."""
        if self._replays.busy:
            if self._replay_generation != self.model.generation:
                self._replays.cancel()  # another workspace: its end starts this one's replay
            return
        if self._closing or not waiting or self.model.ctx.ledger.read_only or waiting == self._tried:
            return
        place, self._replay_generation, self._tried = self.model.place, self.model.generation, list(waiting)

        def work(_should_stop: ShouldStop) -> Generator[ReproduceProgress, None, Replayed]:
            return replay_task(place, waiting)

        self._replays.start(work, progress=self._on_replay_progressed, done=self._on_replayed,
                            error=self._on_replay_failed, cancelled=self._on_replay_cancelled)
        self._show_progress(0, len(waiting))
        self.progress.show()

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        noun = "entry" if total == 1 else "entries"
        self.progress.setFormat(f"Reproducing {min(done + 1, total)} of {total} {noun} on this machine\u2026")

    def _on_replay_progressed(self, records: list[ReproduceProgress]) -> None:
        self._show_progress(records[-1].done, records[-1].total)

    def _on_replayed(self, replayed: Replayed) -> None:
        self.progress.hide()
        if self._replay_generation != self.model.generation:  # for a workspace no longer open
            self.refresh()
            return
        problem = replayed.report.problem
        if problem is not None:
            self._say(f"The replay here does not reproduce entry {problem.index}: {problem.reason}. "
                      "The ledger is read-only until repaired (Ledger tab).", error=True)
            # Now read-only: the Ledger tab and the status bar show it; this tab re-ranks.
            self.model.notify_changed(self, replayed.findings)
            return
        self.model.notify_reproduced(self, replayed.findings)  # re-ranks; the window says what was not kept

    def _on_replay_cancelled(self) -> None:
        self.progress.hide()
        self.refresh()  # starts the replay of the workspace now open

    def _on_replay_failed(self, exc: Exception) -> None:
        self.progress.hide()
        self._say(f"Replaying the waiting entries failed: {one_line(exc)}", error=True)
        self.refresh()  # the same entries are not tried again until they change

    def shutdown(self) -> None:
        """Stop every task of this tab and wait for them: no callback runs after this (window closing).

        The replay of waiting entries stops after the entry under way (those reproduced are
        remembered); an action under way is one uninterrupted call: it completes.
        """
        self._closing = True
        self._slow_detail.stop()
        for runner in (self._replays, self._detail, self._actions):
            runner.shutdown()
        self.progress.hide()
        for dialog in (self.compare_dialog, self.replay_dialog):
            if dialog is not None:
                dialog.close()
