"""A chained policy keeps its training curve, downsampled, beside the user's other state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.episode_relay import RETURN
from app.model import AppModel
from app.training_tab import TrainingTab
from policyledger_core.workspace.curves import MAX_POINTS, CurveStore


@pytest.fixture
def tab(qtbot: Any, tmp_path: Path) -> TrainingTab:
    widget = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(widget)
    widget.form.preset.setCurrentText("short-burst")
    widget.form.seed.setValue(5)
    return widget


def test_a_single_agent_run_keeps_its_curve(qtbot: Any, tab: TrainingTab, tmp_path: Path) -> None:
    tab.form.episodes.setValue(2500)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000) as blocker:
        tab.start()
    policy_hash = blocker.args[0][0].policy.hash
    curve = CurveStore(tmp_path / "cfg").load(policy_hash)
    assert curve is not None and curve.episodes == 2500 and len(curve) <= MAX_POINTS
    assert curve.label == "episode return"
    drawn = tab.plots.history.drawn()
    assert drawn.records.episodes == 2500 and np.all(drawn.records.count == 1)  # every episode, as it was
    returns = drawn.mean(RETURN)
    assert curve.high.max() == returns.max() and curve.low.min() == returns.min()  # no extreme lost
    assert np.isclose(curve.mean @ np.diff(curve.episode, prepend=0), returns.sum())


def test_every_chained_agent_keeps_the_population_mean(qtbot: Any, tab: TrainingTab, tmp_path: Path) -> None:
    tab.form.episodes.setValue(50)
    tab.form.agents.setValue(3)
    tab.form.chain_all.setChecked(True)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000) as blocker:
        tab.start()
    store = CurveStore(tmp_path / "cfg")
    for saved in blocker.args[0]:
        curve = store.load(saved.policy.hash)
        assert curve is not None and curve.episodes == 50 and curve.label == "mean over 3 agents"
