"""The main window: Training, Marketplace and Ledger tabs over one workspace."""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QByteArray, QEventLoop, QRect, QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QScrollArea,
    QSizePolicy,
    QTabWidget,
    QWidget,
)

from app import settings
from app.ledger_tab import LedgerTab
from app.marketplace_tab import MarketplaceTab
from app.model import AppModel
from app.resources import app_icon
from app.sweeps_tab import SweepsTab
from app.training_tab import TrainingTab
from app.widgets import named
from policyledger_core import __version__

PREFERRED_SIZE = QSize(1280, 820)
"""The first window's size when the screen has room for it (and its frame)."""
FRAME_ALLOWANCE = QSize(16, 48)
"""Room kept for the window manager's frame: borders, and a title bar above."""
"""How often closing checks whether training's policy is chained yet."""


def first_geometry(available: QRect) -> QRect:
    """The first window's geometry (its frame excluded): at most :data:`PREFERRED_SIZE`, centred, and
    with its frame inside ``available`` (the screen less its panels)."""
    width = max(1, min(PREFERRED_SIZE.width(), available.width() - FRAME_ALLOWANCE.width()))
    height = max(1, min(PREFERRED_SIZE.height(), available.height() - FRAME_ALLOWANCE.height()))
    border = FRAME_ALLOWANCE.width() // 2
    x = available.x() + (available.width() - width - FRAME_ALLOWANCE.width()) // 2 + border
    y = (available.y() + (available.height() - height - FRAME_ALLOWANCE.height()) // 2
         + FRAME_ALLOWANCE.height() - border)
    return QRect(x, y, width, height)


def scrollable(tab: QWidget) -> QScrollArea:
    """``tab`` in a scroll area: on a small screen every control stays reachable (scrolled to)."""
    area = QScrollArea()
    area.setObjectName(f"{tab.objectName()}Scroll")
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(tab)
    return area


MARKETPLACE_TAB = 1


class MainWindow(QMainWindow):
    """The whole application window for one workspace."""

    def __init__(self, workspace: Path | None = None, config_dir: Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = AppModel(workspace, config_dir)
        self.setWindowTitle("PolicyLedger")
        self.setWindowIcon(app_icon())
        self.tabs = named(QTabWidget(), "mainTabs")
        self.training_tab = TrainingTab(self.model)
        self.marketplace_tab = MarketplaceTab(self.model)
        self.ledger_tab = LedgerTab(self.model)
        self.sweeps_tab = SweepsTab(self.model)
        self.tabs.addTab(scrollable(self.training_tab), "&Training")
        self.tabs.addTab(scrollable(self.marketplace_tab), "&Marketplace")
        self.tabs.addTab(scrollable(self.ledger_tab), "&Ledger")
        self.tabs.addTab(scrollable(self.sweeps_tab), "S&weeps")
        self.sweeps_tab.open_policy.connect(self._open_in_marketplace)
        self.setCentralWidget(self.tabs)
        self._status_workspace = named(QLabel(), "statusWorkspace")
        self._status_entries = named(QLabel(), "statusEntries")
        self._status_chain = named(QLabel(), "statusChain")
        for label in (self._status_workspace, self._status_entries, self._status_chain):
            self.statusBar().addPermanentWidget(label)
        # Left of the status bar, one line; a long warning is cut (its tooltip has all of it) rather
        # than widening the window.
        self._status_warning = named(QLabel(), "statusWarning")
        self._status_warning.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._status_warning.setStyleSheet("color: #8a4b00;")
        self.statusBar().addWidget(self._status_warning, 1)
        self._warned: list[str] = []
        self.saving_dialog: QProgressDialog | None = None
        """Shown while closing waits for training's policy to be chained."""
        self._menus()
        self.model.ledger_changed.connect(self._on_model_changed)
        self.model.workspace_changed.connect(self._update_status)
        self.model.reproductions_changed.connect(self._on_model_changed)
        self.ledger_tab.verification_finished.connect(self._on_model_changed)
        self._update_status()
        self._restore_state()

    def _open_in_marketplace(self, policy_hash: str) -> None:
        self.tabs.setCurrentIndex(MARKETPLACE_TAB)
        self.marketplace_tab.select_hashes({policy_hash}, policy_hash)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("&Open Workspace...", QKeySequence.StandardKey.Open, self.open_workspace),
            ("&Import Policy...", QKeySequence("Ctrl+I"), self.marketplace_tab.import_bundle),
            ("&Export Policy...", QKeySequence("Ctrl+E"), self.marketplace_tab.export_selected),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            action = QAction(text, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About PolicyLedger", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def about_text(self) -> str:
        return (f"PolicyLedger {__version__}\n\n"
                f"Workspace: {self.model.workspace_root}\n"
                f"Publisher key: {self.model.key_id()}\n\n"
                "Train, verify by replay and share RL policies for incident response.")

    def show_about(self) -> None:
        QMessageBox.about(self, "About PolicyLedger", self.about_text())

    def open_workspace(self) -> None:
        start = settings.last_folder("workspace", self.model.workspace_root, self._config)
        folder = QFileDialog.getExistingDirectory(self, "Open workspace", start)
        if folder:
            settings.remember_folder("workspace", folder, self._config)
            if self.training_tab.running:
                QMessageBox.information(self, "PolicyLedger", "Stop the training run first.")
                return
            self.model.open_workspace(Path(folder))
            settings.write("workspace/last", folder, self._config)

    @property
    def _config(self) -> Path:
        """The config folder: the UI settings (``ui.ini``) live there too."""
        return self.model.ctx.config_dir

    def _on_model_changed(self, _initiator: object) -> None:
        self._update_status()

    def _update_status(self) -> None:
        ledger = self.model.ctx.ledger
        self._status_workspace.setText(f"Workspace: {self.model.workspace_root}")
        self._status_entries.setText(f"{len(ledger)} entries")
        self._status_chain.setText(self.chain_text())
        self._status_chain.setToolTip(
            "Every hash and link was checked when the ledger was opened; the Ledger tab's Verify checks "
            "fields, policy files and signatures too." if ledger.problem is None and len(ledger) else "")
        self._status_chain.setStyleSheet("" if ledger.problem is None else "color: #b00020;")
        self._show_new_warnings()

    def chain_text(self) -> str:
        """What was checked, as the Ledger tab's rows say it: chain checked at opening, or verified."""
        ledger = self.model.ctx.ledger
        if ledger.problem is not None or not len(ledger):
            return self.model.chain_status()
        return "ledger verified" if self.ledger_tab.verified else "chain checked"

    def _show_new_warnings(self) -> None:
        """Say once, in the status bar, each thing the config folder could not remember (no dialog)."""
        # dict.fromkeys: the core may repeat a warning once per failed write
        new = [w for w in dict.fromkeys(self.model.warnings()) if w not in self._warned]
        if not new:
            return
        self._warned.extend(new)
        text = "; ".join(self._warned)
        self._status_warning.setText(f"Warning: {text}")
        self._status_warning.setToolTip("\n".join(self._warned))

    def _restore_state(self) -> None:
        geometry = settings.read("window/geometry", self._config)
        if not (isinstance(geometry, QByteArray) and self.restoreGeometry(geometry)):
            screen = QGuiApplication.primaryScreen()
            self.setGeometry(first_geometry(screen.availableGeometry()) if screen is not None
                             else QRect(0, 0, PREFERRED_SIZE.width(), PREFERRED_SIZE.height()))
        with contextlib.suppress(TypeError, ValueError):
            self.tabs.setCurrentIndex(int(settings.read("window/tab", self._config)))
        form = settings.read("training/form", self._config)
        if form:
            self.training_tab.form.restore(str(form))  # "until stopped" too
        self.training_tab.restore_view_state(str(settings.read("plots/x_axis", self._config)),
                                             bool(settings.read("plots/log_x", self._config)))

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop every task, chain what training learned, remember the UI state, then close."""
        if self.saving_dialog is not None:  # already waiting for the policy to be chained
            event.ignore()
            return
        self.marketplace_tab.shutdown()  # first: no replay starts when training's entry is announced
        self.ledger_tab.shutdown()
        self.sweeps_tab.shutdown()
        if self.training_tab.running:
            self._wait_for_the_policy()
        self.training_tab.shutdown()
        folder = self._config
        settings.write("window/geometry", self.saveGeometry(), folder)
        settings.write("window/tab", self.tabs.currentIndex(), folder)
        settings.write("training/form", self.training_tab.form.state(), folder)
        x_axis, log_x = self.training_tab.view_state()
        settings.write("plots/x_axis", x_axis, folder)
        settings.write("plots/log_x", log_x, folder)
        event.accept()

    def _wait_for_the_policy(self) -> None:
        """Stop training and say "Saving the policy..." (modal, busy) until what it learned is chained.

        The events go on meanwhile (the dialog moves; the run's end and its save are delivered).
        """
        dialog = QProgressDialog("Saving the policy\u2026", "", 0, 0, self)
        dialog.setObjectName("savingDialog")
        dialog.setWindowTitle("PolicyLedger")
        dialog.setCancelButton(None)  # what was learned is chained: nothing to cancel
        dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        self.saving_dialog = dialog
        dialog.show()
        self.training_tab.stop()
        loop = QEventLoop(self)
        self.training_tab.settled.connect(loop.quit)
        if self.training_tab.running:
            loop.exec()
        self.training_tab.settled.disconnect(loop.quit)
        dialog.close()
        dialog.deleteLater()
        self.saving_dialog = None
