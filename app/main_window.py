"""The main window: Training, Marketplace and Ledger tabs over one workspace."""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QTabWidget,
    QWidget,
)

from app import settings
from app.ledger_tab import LedgerTab
from app.marketplace_tab import MarketplaceTab
from app.model import AppModel
from app.resources import app_icon
from app.training_tab import TrainingTab
from app.widgets import named
from policyledger_core import __version__


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
        self.tabs.addTab(self.training_tab, "&Training")
        self.tabs.addTab(self.marketplace_tab, "&Marketplace")
        self.tabs.addTab(self.ledger_tab, "&Ledger")
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
        self._menus()
        self.model.ledger_changed.connect(self._on_model_changed)
        self.model.workspace_changed.connect(self._update_status)
        self.model.reproductions_changed.connect(self._on_model_changed)
        self._update_status()
        self._restore_state()

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
        folder = QFileDialog.getExistingDirectory(self, "Open workspace", str(self.model.workspace_root))
        if folder:
            if self.training_tab.running:
                QMessageBox.information(self, "PolicyLedger", "Stop the training run first.")
                return
            self.model.open_workspace(Path(folder))
            settings.write("workspace/last", folder)

    def _on_model_changed(self, _initiator: object) -> None:
        self._update_status()

    def _update_status(self) -> None:
        ledger = self.model.ctx.ledger
        self._status_workspace.setText(f"Workspace: {self.model.workspace_root}")
        self._status_entries.setText(f"{len(ledger)} entries")
        self._status_chain.setText(self.model.chain_status())
        self._status_chain.setStyleSheet("" if ledger.problem is None else "color: #b00020;")
        self._show_new_warnings()

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
        geometry = settings.read("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        with contextlib.suppress(TypeError, ValueError):
            self.tabs.setCurrentIndex(int(settings.read("window/tab")))
        form = settings.read("training/form")
        if form:
            self.training_tab.form.restore(str(form))

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop every task, chain what training learned, remember the UI state, then close."""
        self.marketplace_tab.shutdown()  # first: no replay starts when training's entry is announced
        self.ledger_tab.shutdown()
        self.training_tab.shutdown()
        settings.write("window/geometry", self.saveGeometry())
        settings.write("window/tab", self.tabs.currentIndex())
        settings.write("training/form", self.training_tab.form.state())
        event.accept()
