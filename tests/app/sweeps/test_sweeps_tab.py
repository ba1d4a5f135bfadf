"""The Sweeps tab: the form's plan, a live sweep, its seed groups, chaining, the marketplace link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QItemSelectionModel

from app.main_window import MARKETPLACE_TAB, MainWindow
from app.sweeps_tab import SweepsTab
from policyledger_core.sweep.summary import groups

TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot: Any, tmp_path: Path) -> Iterator[MainWindow]:
    win = MainWindow(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.sweeps_tab.shutdown()


def _small(tab: SweepsTab, seeds: int = 2, episodes: int = 300) -> None:
    form = tab.form
    form.tick_presets({"short-burst"})
    form.settings[0][0].setCurrentText("learning_rate")
    form.settings[0][1].setText("0.5, 1.0")
    form.seeds.setValue(seeds)
    form.episodes.setValue(episodes)
    form.workers.setValue(2)


def tab_groups(tab: SweepsTab) -> list[Any]:
    return groups([tab.outcomes[i] for i in sorted(tab.outcomes)])


def _run(qtbot: Any, tab: SweepsTab) -> None:
    tab.start()
    assert tab.running
    qtbot.waitUntil(lambda: not tab.running, timeout=TIMEOUT_MS)


def test_the_form_counts_runs_and_names_what_is_wrong(window: MainWindow) -> None:
    tab = window.sweeps_tab
    assert tab.objectName() == "sweepsTab"
    form = tab.form
    assert form.count.text() == "15 runs"  # standard x Q-learning x 3 learning rates x 5 seeds
    form.settings[0][1].setText("0.3, fast")
    assert form.specs() is None and "expected numbers, got 'fast'" in form.error.text()
    form.settings[0][1].setText("0.3")
    form.algorithms["q"].setChecked(False)
    assert form.specs() is None and form.error.text() == "Algorithms: tick at least one"
    form.algorithms["double-q"].setChecked(True)
    assert form.count.text() == "5 runs" and form.error.text() == ""
    form.seeds.setValue(1000)
    form.settings[1][0].setCurrentText("discount")
    form.settings[1][1].setText("0.9, 0.95, 0.99")
    assert form.specs() is None and "the app runs at most 2,000" in form.error.text()
    tab.start()
    assert not tab.running  # refused at the form


def test_a_sweep_runs_live_then_chains_the_best_and_opens_it(qtbot: Any, window: MainWindow) -> None:
    tab = window.sweeps_tab
    _small(tab)
    _run(qtbot, tab)
    assert tab.status.text().startswith("Finished: 4 runs")
    states = [tab.table.item(row, 4).text() for row in range(tab.table.rowCount())]
    assert states == ["done"] * 4
    assert tab.table.item(0, 5).text().count("\u00b1") == 1
    lines = [i for i in tab.plot.getPlotItem().items if isinstance(i, pg.PlotDataItem)]
    bands = [i for i in tab.plot.getPlotItem().items if isinstance(i, pg.FillBetweenItem)]
    assert len(lines) == len(bands) == 2  # one curve and one band per group, reused as runs finish
    group = next(g for g in tab_groups(tab) if g.runs[0].spec.hyper.learning_rate == 0.5)
    xs, mean, _half = group.curve()
    assert list(lines[0].xData) == xs and list(lines[0].yData) == mean
    assert tab.chain_best_button.isEnabled() and not tab.open_button.isEnabled()
    with qtbot.waitSignal(window.model.ledger_changed, timeout=TIMEOUT_MS):
        tab.chain_best()
    qtbot.waitUntil(lambda: not tab._chainer.busy, timeout=TIMEOUT_MS)
    assert len(window.model.ctx.ledger) == 1
    best = max(tab.outcomes.values(), key=lambda o: (o.lower, o.verified_reward))
    row = next(i for i, o in tab.outcomes.items() if o.policy_hash == best.policy_hash)
    assert tab.table.item(row, 8).text() == "#0"
    tab.table.selectionModel().select(tab.table.model().index(row, 0),
                                      QItemSelectionModel.SelectionFlag.ClearAndSelect
                                      | QItemSelectionModel.SelectionFlag.Rows)
    assert tab.open_button.isEnabled()
    tab.open_button.click()
    assert window.tabs.currentIndex() == MARKETPLACE_TAB


def test_chain_selected_chains_exactly_those(qtbot: Any, window: MainWindow) -> None:
    tab = window.sweeps_tab
    _small(tab)
    _run(qtbot, tab)
    model = tab.table.selectionModel()
    for row in (0, 3):
        model.select(tab.table.model().index(row, 0),
                     QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    tab.chain_selected()
    qtbot.waitUntil(lambda: not tab._chainer.busy, timeout=TIMEOUT_MS)
    hashes = {tab.outcomes[0].policy_hash, tab.outcomes[3].policy_hash}
    assert set(tab.entries) == hashes
    assert len(window.model.ctx.ledger) == len(hashes)
    assert tab.status.text().startswith(f"Chained {len(hashes)} polic")


def test_stop_keeps_what_finished(qtbot: Any, window: MainWindow) -> None:
    tab = window.sweeps_tab
    _small(tab, seeds=40, episodes=30_000)
    tab.start()
    qtbot.waitUntil(lambda: len(tab.outcomes) >= 1, timeout=TIMEOUT_MS)
    tab.stop()
    assert not tab.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not tab.running, timeout=TIMEOUT_MS)
    kept = len(tab.outcomes)
    assert tab.status.text() == f"Stopped: kept the {kept} of 80 runs that finished."
    states = [tab.table.item(row, 4).text() for row in range(tab.table.rowCount())]
    assert states.count("done") == kept and states.count("waiting") == 80 - kept
    assert tab.chain_best_button.isEnabled()  # what finished can still be chained


def test_an_unchained_run_is_chained_then_opened_in_the_marketplace(qtbot: Any, window: MainWindow) -> None:
    tab = window.sweeps_tab
    _small(tab)
    _run(qtbot, tab)
    model = tab.table.selectionModel()
    model.select(tab.table.model().index(1, 0),
                 QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    assert tab.open_button.isEnabled()
    assert tab.open_button.text() == "Chain && open in &Marketplace"
    tab.open_button.click()
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == MARKETPLACE_TAB, timeout=TIMEOUT_MS)
    wanted = tab.outcomes[1].policy_hash
    assert set(tab.entries) == {wanted} and len(window.model.ctx.ledger) == 1
    current = window.marketplace_tab.current_row()
    assert current is not None and current.policy_hash == wanted
    assert tab.open_button.text() == "Open in &Marketplace"  # chained now: opening writes nothing


def test_opening_needs_a_writable_ledger_for_an_unchained_run(qtbot: Any, window: MainWindow,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tab = window.sweeps_tab
    _small(tab, seeds=1)
    _run(qtbot, tab)
    monkeypatch.setattr(type(window.model.ctx.ledger), "read_only", property(lambda _self: True))
    tab.table.selectionModel().select(
        tab.table.model().index(0, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    assert not tab.open_button.isEnabled()
    assert "read-only" in tab.open_button.toolTip()
