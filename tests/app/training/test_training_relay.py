"""The training child's batches reach the plots one by one: the relay does not batch them again.

The child sends at most one batch per ``BATCH_SECONDS``. When the thread relaying them batched
them again by time, every batch that arrived a little early (pipe and GIL jitter: about a third)
was held and merged with the next, so the GUI saw a batch 60 ms apart there and the 33 ms plot
timer found nothing new on the tick between (the plots' refresh rate at 100,000 episodes fell
from about 25 to 22 a second).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.episode_relay import Relay
from app.model import AppModel
from app.training_tab import TrainingTab

BATCHES = 15
"""Enough child batches (about half a second) that a re-batching relay would merge some."""


@pytest.fixture
def tab(qtbot: Any, tmp_path: Path) -> TrainingTab:
    widget = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(widget)
    widget.form.preset.setCurrentText("short-burst")
    widget.form.seed.setValue(3)
    widget.form.until_stopped.setChecked(True)
    return widget


def test_each_child_batch_reaches_the_gui_as_its_own_progress_call(
        qtbot: Any, tab: TrainingTab, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    progressed = tab._on_training_progressed

    def spy(batches: list[Relay]) -> None:
        calls.append(len(batches))
        progressed(batches)

    monkeypatch.setattr(tab, "_on_training_progressed", spy)  # start() hands the callback on
    tab.start()
    qtbot.waitUntil(lambda: len(calls) >= BATCHES, timeout=30_000)
    tab.stop()
    qtbot.waitUntil(lambda: not tab.running, timeout=30_000)
    assert calls and set(calls) == {1}, f"child batches merged by the relay: {calls}"
    assert tab.plots.points > 0
