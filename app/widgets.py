"""Small helpers for building widgets."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

Q = TypeVar("Q", bound=QObject)


def named(obj: Q, name: str) -> Q:
    """``obj`` with its object name set (tests and style sheets find widgets by it)."""
    obj.setObjectName(name)
    return obj


def settings_and_work(owner: QWidget, settings: QWidget, work: QWidget) -> None:
    """Lay ``owner`` out as the Training and Sweeps tabs are: its settings column on the left and
    its work area taking the room left, with a handle between them."""
    splitter = QSplitter()
    splitter.addWidget(settings)
    splitter.addWidget(work)
    splitter.setStretchFactor(1, 1)
    QVBoxLayout(owner).addWidget(splitter)
