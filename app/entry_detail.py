"""The Ledger tab's detail pane: every recorded field of the selected entry, as indented JSON.

Read-only, monospace and selectable; "Copy" puts all of it on the clipboard. It shows what the
core parsed (body, hash, signature), or, for an entry at or after a ledger's problem, what could
still be read of it (unverified).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from policyledger_core.ledger.entry import Entry
from policyledger_core.ledger.layout import SetAside

EMPTY_TEXT = "Select an entry to see every field it records."
INDENT = "  "


def pretty(value: Any, depth: int = 0) -> str:
    """Indented JSON, keys sorted (as in the canonical form); a list of plain values stays on one line."""
    pad, inner = INDENT * depth, INDENT * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {pretty(value[k], depth + 1)}"
                 for k in sorted(value)]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + pretty(v, depth + 1) for v in value) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def entry_text(entry: Entry) -> str:
    """The entry as recorded: body, hash and signature."""
    return pretty(entry.to_dict())


def aside_text(aside: SetAside) -> str:
    """What could be read of an entry at or after the problem (not verified)."""
    return pretty({"unverified": dataclasses.asdict(aside)})


class EntryDetail(QWidget):
    """One entry, pretty-printed; :meth:`clear` shows the empty state."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ledgerEntryDetail")
        self.title = QLabel(EMPTY_TEXT)
        self.title.setObjectName("ledgerEntryTitle")
        self.title.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setObjectName("ledgerEntryText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.copy_button = QPushButton("Cop&y")
        self.copy_button.setObjectName("ledgerEntryCopy")
        self.copy_button.setToolTip("Copy every field of the entry (JSON) to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.text, 1)
        self.shown: Any = None
        """The entry (or set-aside summary, or message) shown; None: nothing selected."""
        self.clear()

    def clear(self, message: str = EMPTY_TEXT) -> None:
        self.shown = None
        self.title.setText(message)
        self.text.clear()
        self.text.setEnabled(False)
        self.copy_button.setEnabled(False)

    def show_entry(self, entry: Entry) -> None:
        self._show(entry, f"Entry #{entry.index}: every recorded field", entry_text(entry))

    def show_aside(self, aside: SetAside) -> None:
        self._show(aside, f"Entry #{aside.index}: what can be read of it (at or after the problem, "
                          "not verified)", aside_text(aside))

    def show_unreadable(self, row: int, reason: str) -> None:
        self._show(reason, f"Entry #{row} cannot be read", reason)

    def _show(self, shown: Any, title: str, text: str) -> None:
        keep = self.text.verticalScrollBar().value() if shown == self.shown else 0
        self.shown = shown
        self.title.setText(title)
        self.text.setEnabled(True)
        self.text.setPlainText(text)
        self.text.verticalScrollBar().setValue(keep)
        self.copy_button.setEnabled(True)

    def copy(self) -> None:
        """Put all of the text shown on the clipboard."""
        if self.text.toPlainText():
            QGuiApplication.clipboard().setText(self.text.toPlainText())
