"""The Training tab through its real widgets: start, stop, plots, refusal of bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.model import AppModel
from app.training_tab import TrainingTab


@pytest.fixture
def tab(qtbot, tmp_path: Path) -> TrainingTab:
    model = AppModel(tmp_path / "ws", tmp_path / "cfg")
    widget = TrainingTab(model)
    qtbot.addWidget(widget)
    widget.form.preset.setCurrentText("short-burst")
    widget.form.seed.setValue(3)
    return widget


def _wait_idle(qtbot, tab: TrainingTab, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: not tab.running, timeout=timeout)


def test_training_run_chains_an_entry_and_shows_it(qtbot, tab: TrainingTab) -> None:
    tab.form.episodes.setValue(800)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    saved = blocker.args[0]
    assert len(saved) == 1 and saved[0].created
    ledger = tab.model.ctx.ledger
    assert len(ledger) == 1
    assert ledger.entry(0).policy_hash == saved[0].policy.hash
    assert tab.result_labels["entry"].text().startswith("#0")
    assert "±" in tab.result_labels["verified"].text()
    assert tab.plots.points == 800  # every episode reached the plot buffers
    assert tab.plots.refreshes >= 1
    assert tab.progress.value() == 800
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()


def test_stop_mid_run_still_chains_what_was_learned(qtbot, tab: TrainingTab) -> None:
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 200, timeout=30_000)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    saved = blocker.args[0]
    assert saved[0].entry.body["training"]["episodes"] >= 200
    assert len(tab.model.ctx.ledger) == 1
    assert "Stopped" in tab.stats.text()


def test_population_plots_mean_band_and_best_agent(qtbot, tab: TrainingTab) -> None:
    tab.form.episodes.setValue(60)
    tab.form.agents.setValue(4)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()
    assert tab.plots.population
    assert tab.plots.points == 60 and tab.plots.history.envelope.series == 7  # with band and best agent
    assert len(tab.model.ctx.ledger) == 1  # the best agent only, by default


def test_chain_all_agents_option(qtbot, tab: TrainingTab) -> None:
    tab.form.episodes.setValue(60)
    tab.form.agents.setValue(3)
    tab.form.chain_all.setChecked(True)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000) as blocker:
        tab.start()
    assert len(blocker.args[0]) == 3
    assert len(tab.model.ctx.ledger) == len({s.policy.hash for s in blocker.args[0]})


def test_invalid_fields_are_refused_at_the_form(qtbot, tab: TrainingTab) -> None:
    tab.form.fields["epsilon_start"].setValue(0.1)
    tab.form.fields["epsilon_end"].setValue(0.5)  # end above start
    tab.start()
    assert not tab.running
    assert "Epsilon end" in tab.form.error.text()  # the form's label, not the field's name
    assert tab.form.invalid_field() == "epsilon_end"  # marked at the field
    assert "b00020" in tab.form.fields["epsilon_end"].lineEdit().styleSheet()
    assert len(tab.model.ctx.ledger) == 0
    tab.form.fields["learning_rate"].setValue(0.0)  # outside (0, 1]
    tab.form.fields["epsilon_end"].setValue(0.05)
    tab.start()
    assert not tab.running and "Learning rate" in tab.form.error.text()


def test_spin_boxes_bound_what_can_be_typed(tab: TrainingTab) -> None:
    tab.form.episodes.setValue(0)
    assert tab.form.episodes.value() == 1
    tab.form.seed.setValue(-5)
    assert tab.form.seed.value() == 0


def test_shutdown_during_training_chains_and_stops_the_thread(qtbot, tab: TrainingTab) -> None:
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 100, timeout=30_000)
    thread = tab._training.task.qthread if tab._training.task is not None else None
    tab.shutdown()
    assert thread is not None and not thread.isRunning()
    assert len(tab.model.ctx.ledger) == 1


def test_void_calls_do_not_leak_references_to_none(qtbot) -> None:
    """The guard from qt-on-linux.md: PySide6 6.12.0 on Python 3.11 drops a None reference per call."""
    app = QApplication.instance()
    before = sys.getrefcount(None)
    for _ in range(10_000):
        app.processEvents()
    assert sys.getrefcount(None) >= before - 100
