"""At the size a 1280x800 screen gives the window, no tab needs scrolling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QScrollArea

from app.main_window import MainWindow


@pytest.mark.parametrize("size", [(1264, 752), (1280, 800)])  # 1264x752: the window a 1280x800 screen gets
def test_no_tab_scrolls_at_1280x800(qtbot: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    window = MainWindow(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(20)
        area = window.tabs.widget(index)
        assert isinstance(area, QScrollArea)
        assert area.verticalScrollBar().maximum() == 0, window.tabs.tabText(index)
        assert area.horizontalScrollBar().maximum() == 0, window.tabs.tabText(index)
