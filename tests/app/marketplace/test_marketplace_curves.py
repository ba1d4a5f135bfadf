"""The marketplace detail shows the training curve kept for a policy trained on this machine."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.model import AppModel
from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import Hyperparameters
from policyledger_core.learn.single import run_to_end
from policyledger_core.sim.config import preset
from policyledger_core.workspace.curves import CurveStore, downsample
from policyledger_core.workspace.publish import publish_run
from tests.app.marketplace import test_marketplace_tab as base
from tests.app.marketplace.test_marketplace_tab import make_tab, select_and_wait

model = base.model  # the fixtures of the tab's own tests
warnings_shown = base.warnings_shown


def test_a_policy_trained_here_shows_its_curve_and_others_say_why_not(
        qtbot: Any, model: AppModel, warnings_shown: list[str]) -> None:
    result = run_to_end(train_agents(preset("standard"), Hyperparameters(episodes=40, seed=2), "q", 1))
    trained = publish_run(model.ctx, result).best.policy.hash
    returns = np.linspace(-50, 90, 3000)
    returns[1234] = 400.0
    CurveStore(model.place.config).save(trained, downsample(returns, np.linspace(1, 0.05, 3000)))
    model.notify_changed(None)
    widget = make_tab(qtbot, model)
    rows = widget.visible_rows()
    select_and_wait(qtbot, widget, next(i for i, r in enumerate(rows) if r.policy_hash == trained))
    view = widget.detail.curve
    assert view.curve is not None and view.curve.episodes == 3000
    assert not view.plot.isHidden()
    _, high = view._high.getData()
    assert high.max() == 400.0  # the spike is drawn, not averaged away
    assert "3,000 episodes" in view.note.text()
    select_and_wait(qtbot, widget, next(i for i, r in enumerate(rows) if r.policy_hash != trained))
    assert view.curve is None and view.plot.isHidden()
    assert "No training curve kept on this machine" in view.note.text()
