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
from policyledger_core.tasks.spec import TaskInfo

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


# -- toy-text tasks ------------------------------------------------------------------------------


def test_ticking_a_task_sweeps_tasks_with_their_own_base(window: MainWindow) -> None:
    from policyledger_core.learn.tabular import recommended

    form = window.sweeps_tab.form
    form.agents.setValue(4)
    form.hyper.setCurrentText("seed-defaults")
    form.tick_presets({"FrozenLake-v1", "Taxi-v4"})
    # One agent, each task's own recommended values (its episodes too), only the seeds swept at first.
    assert form.agents.value() == 1 and not form.agents.isEnabled()
    assert form.hyper.currentText() == "recommended" and not form.hyper.isEnabled()
    assert form.episodes.value() == 0 and form.episodes.text() == "as in the base"
    assert [name.currentText() for name, _ in form.settings] == ["(not swept)"] * 3
    runs = form.specs()
    assert runs is not None and form.count.text() == "10 runs"  # 2 tasks x 5 seeds
    assert {spec.task for spec in runs} == {"FrozenLake-v1", "Taxi-v4"}
    for spec in runs:
        assert spec.agents == 1 and spec.hyper == recommended(spec.task or "", "q").replace(seed=spec.seed)
    form.settings[0][0].setCurrentText("learning_rate")
    form.settings[0][1].setText("0.2, 0.4")
    form.episodes.setValue(500)
    runs = form.specs() or []
    assert len(runs) == 20 and {(s.hyper.learning_rate, s.hyper.episodes) for s in runs} == {(0.2, 500),
                                                                                             (0.4, 500)}
    taxi = next(spec for spec in runs if spec.task == "Taxi-v4")
    assert taxi.hyper.discount == recommended("Taxi-v4", "q").discount  # what is not swept: the task's

    form.tick_presets({"standard", "Taxi-v4"})  # one kind per sweep
    assert form.specs() is None
    assert form.error.text() == ("Presets or tasks: a sweep is over cyber-defense presets or over toy-text "
                                 "tasks, not both")
    form.tick_presets({"standard"})  # back to the presets: their own values again
    assert form.agents.value() == 4 and form.agents.isEnabled() and form.hyper.isEnabled()
    assert form.hyper.currentText() == "seed-defaults" and form.episodes.value() == 30_000
    first = form.settings[0]
    assert (first[0].currentText(), first[1].text()) == ("learning_rate", "0.3, 0.6, 1.0")
    assert form.count.text() == "15 runs"
    form.tick_presets({"CliffWalking-v1"})  # and the tasks' values as they were left
    assert form.episodes.value() == 500 and form.settings[0][1].text() == "0.2, 0.4"
    form.tick_presets(set())
    assert form.specs() is None and form.error.text() == "Presets or tasks: tick at least one"


def test_a_task_sweep_runs_and_chains_the_best_table(qtbot: Any, window: MainWindow) -> None:
    tab = window.sweeps_tab
    form = tab.form
    form.tick_presets({"Taxi-v4"})
    form.settings[0][0].setCurrentText("learning_rate")
    form.settings[0][1].setText("0.5, 1.0")
    form.seeds.setValue(2)
    form.workers.setValue(2)
    _run(qtbot, tab)
    assert tab.status.text().startswith("Finished: 4 runs")
    assert {tab.table.item(row, 0).text() for row in range(4)} == {"Taxi"}
    for index, outcome in tab.outcomes.items():  # valued exactly: no interval to show
        assert outcome.exact_value is not None
        assert tab.table.item(index, 5).text() == f"{outcome.exact_value:.2f} (exact)"
    with qtbot.waitSignal(window.model.ledger_changed, timeout=TIMEOUT_MS):
        tab.chain_best()
    qtbot.waitUntil(lambda: not tab._chainer.busy, timeout=TIMEOUT_MS)
    ledger = window.model.ctx.ledger
    entry = ledger.entry(0)
    assert len(ledger) == 1 and isinstance(entry.config, TaskInfo) and entry.config.spec.env_id == "Taxi-v4"
    # The best exact value; of tied runs (several tables can be optimal), the one planned first.
    best = max((o.lower, o.verified_reward, -i) for i, o in tab.outcomes.items())
    assert entry.policy_hash == tab.outcomes[-best[2]].policy_hash
