"""The Training tab's reading aids: hover readout, log x, the populations' 95% band, and the runs list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication, QTableWidget

from app.episode_relay import BEST, ENV_STEPS, EPSILON, MEAN_100, RETURN
from app.model import AppModel
from app.training_plots import READOUT_IDLE, TrainingPlots
from app.training_tab import TrainingTab
from tests.helpers.relays import relay


@pytest.fixture
def tab(qtbot: Any, tmp_path: Path) -> Iterator[TrainingTab]:
    widget = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(widget)
    widget.form.preset.setCurrentText("short-burst")
    widget.form.seed.setValue(3)
    widget.resize(1280, 800)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget._training.shutdown()


def _run(qtbot: Any, tab: TrainingTab, episodes: int = 200, agents: int = 1, seed: int = 3) -> None:
    tab.form.episodes.setValue(episodes)
    tab.form.agents.setValue(agents)
    tab.form.seed.setValue(seed)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()


def _scene(plot: pg.PlotWidget, x: float, y: float) -> QPointF:
    """The scene position of data point (x, y) on ``plot`` (x in view coordinates)."""
    return plot.getPlotItem().getViewBox().mapViewToScene(QPointF(x, y))


def _widget_point(plot: pg.PlotWidget, x: float, y: float) -> QPoint:
    return plot.mapFromScene(_scene(plot, x, y))


def _synthetic(plots: TrainingPlots, n: int, spread: bool = False) -> None:
    episode = np.arange(n, dtype=np.int64)
    ret = np.sin(episode / 50.0) * 10
    plots.add(relay(episode, ret, np.linspace(1, 0.05, n), ret * 0.5, (episode + 1) * 10.0,
                    np.full(n, 4.0) if spread else None, ret + 1 if spread else None, agents=plots.agents))
    plots.refresh()


# -- hover readout ----------------------------------------------------------------------------------


def test_hover_reads_out_the_nearest_episode_on_both_plots(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=300)
    plots = tab.plots
    plots.hover(_scene(plots.reward, 123.3, 0.0), plots.reward)
    assert plots.hovered == 123
    text = plots.readout.text()
    assert text.startswith("episode 123 ")
    drawn = plots.history.drawn()
    assert f"return {drawn.mean(RETURN)[123]:.2f}" in text
    assert f"smoothed {drawn.smoothed[123]:.2f}" in text
    assert f"mean of last 100 {drawn.mean(MEAN_100)[123]:.2f}" in text
    assert f"epsilon {drawn.mean(EPSILON)[123]:.3f}" in text
    lines = [item for plot in (plots.reward, plots.epsilon) for item in plot.getPlotItem().items
             if isinstance(item, pg.InfiniteLine)]
    assert len(lines) == 2 and all(line.isVisible() and line.value() == 123 for line in lines)
    low, high = plots.epsilon.getPlotItem().getViewBox().viewRange()[1]
    plots.hover(_scene(plots.epsilon, 199.6, (low + high) / 2), plots.epsilon)  # the epsilon plot too
    assert plots.hovered == 200 and plots.readout.text().startswith("episode 200 ")
    plots.hover(QPointF(-50, -50), plots.reward)  # outside the view box: nothing read out
    assert plots.hovered is None and plots.readout.text() == READOUT_IDLE
    assert not any(line.isVisible() for line in lines)


def test_mouse_moves_and_clicks_pin_and_release_the_readout(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=300)
    plots, plot = tab.plots, tab.plots.reward
    viewport = plot.viewport()
    qtbot.mouseMove(viewport, _widget_point(plot, 100, 0))
    qtbot.waitUntil(lambda: plots.hovered is not None and abs(plots.hovered - 100) <= 2, timeout=3000)
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_widget_point(plot, 150, 0))
    assert plots.pinned and abs((plots.hovered or 0) - 150) <= 2
    pinned_text = plots.readout.text()
    assert "pinned" in pinned_text and "Esc" in plots.readout.toolTip()
    qtbot.mouseMove(viewport, _widget_point(plot, 250, 0))
    qtbot.wait(100)
    QApplication.sendEvent(viewport, QEvent(QEvent.Type.Leave))  # the mouse leaves the plot
    assert plots.readout.text() == pinned_text  # stays where it was pinned
    qtbot.keyClick(plot, Qt.Key.Key_Escape)
    assert not plots.pinned and plots.hovered is None
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_widget_point(plot, 50, 0))
    assert plots.pinned
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=_widget_point(plot, 60, 0))
    assert not plots.pinned  # a second click releases it
    QApplication.sendEvent(viewport, QEvent(QEvent.Type.Leave))
    assert plots.hovered is None  # unpinned, it goes with the mouse


def test_nearest_episode_is_a_binary_search(qtbot: Any) -> None:
    plots = TrainingPlots()
    qtbot.addWidget(plots.reward)
    qtbot.addWidget(plots.epsilon)
    plots.start(population=False)
    _synthetic(plots, 4_000)
    plots.stop()
    xs = np.random.default_rng(1).uniform(-10, 4_010, 2000)
    begin = time.perf_counter()
    found = [plots.nearest(float(x)) for x in xs]
    elapsed = time.perf_counter() - begin
    assert found == [int(np.clip(np.round(x), 0, 3_999)) for x in xs]
    assert elapsed < 0.5  # a loop over the points per look-up would take many seconds


# -- x axis -----------------------------------------------------------------------------------------


def test_log_x_toggle_maps_curves_and_readout(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=1000)
    plots = tab.plots
    qtbot.mouseClick(tab.log_x, Qt.MouseButton.LeftButton)
    assert tab.log_x.isChecked() and plots.log_x
    for plot in (plots.reward, plots.epsilon):
        assert plot.getPlotItem().getAxis("bottom").logMode
    x, _y = plots._raw.getData()  # what is drawn: log10 of the episode
    assert 2.9 < np.nanmax(x) <= np.log10(999) + 1e-9
    plots.hover(_scene(plots.reward, np.log10(500), 0.0), plots.reward)
    assert plots.hovered == 500
    tab.log_x.setChecked(False)
    assert not plots.reward.getPlotItem().getAxis("bottom").logMode
    assert 990 < np.nanmax(plots._raw.getData()[0]) <= 999


def _choose_x(tab: TrainingTab, axis: str) -> None:
    tab.x_axis.setCurrentIndex(tab.x_axis.findData(axis))


def test_x_axis_in_environment_steps(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=300)
    plots, run = tab.plots, tab.runs.runs[-1]
    steps = plots.history.drawn().records.hi[ENV_STEPS]
    assert np.all(np.diff(steps) >= 1)  # every episode takes at least one step
    assert steps[-1] == run.env_steps  # the run's own count of steps, episode by episode
    _choose_x(tab, "steps")
    assert np.array_equal(plots._raw.xData, steps)
    assert np.array_equal(plots._eps.xData, steps)  # the epsilon plot follows
    assert plots.epsilon.getPlotItem().getAxis("bottom").labelText == "env steps"
    plots.hover(_scene(plots.reward, float(steps[150]) + 0.4, 0.0), plots.reward)
    assert plots.hovered == 150
    assert plots.readout.text().startswith(f"episode 150 ({int(steps[150]):,} steps) ")
    _choose_x(tab, "episodes")
    assert np.array_equal(plots._raw.xData, np.arange(300))
    assert plots.epsilon.getPlotItem().getAxis("bottom").labelText == "episode"


def test_overlays_follow_the_x_axis(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=120)
    first = tab.runs.runs[0]
    _run(qtbot, tab, episodes=80, seed=4)
    tab.runs.set_shown(first, True)
    assert first.overlay is not None
    assert np.array_equal(first.overlay.xData, np.arange(120))
    _choose_x(tab, "steps")
    assert np.array_equal(first.overlay.xData, first.steps)
    assert first.steps[-1] == first.env_steps


def test_population_steps_are_per_agent(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=50, agents=4)
    run = tab.runs.runs[-1]
    assert run.env_steps is not None
    assert tab.plots.history.drawn().records.hi[ENV_STEPS][-1] == pytest.approx(run.env_steps / 4)
    _choose_x(tab, "steps")
    assert tab.plots.epsilon.getPlotItem().getAxis("bottom").labelText == "env steps per agent"


def test_csv_has_cumulative_env_steps(qtbot: Any, tab: TrainingTab, tmp_path: Path) -> None:
    _run(qtbot, tab, episodes=100)
    path = tmp_path / "curve.csv"
    tab.plots.export_csv(path)
    rows = path.read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["first_episode", "last_episode", "episodes", "kind"]
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert int(last["env_steps"]) == tab.runs.runs[-1].env_steps
    assert last["kind"] == "episode" and len(rows) == 101  # a short run: every episode, exact


def test_steps_stay_exact_past_a_million(qtbot: Any, tmp_path: Path) -> None:
    plots = TrainingPlots()
    plots.start(False)
    n = 1000
    plots.add(relay(np.arange(n), np.zeros(n), np.ones(n), np.zeros(n), np.arange(1, n + 1) * 1234.0))
    plots.stop()
    path = tmp_path / "curve.csv"
    plots.export_csv(path)
    assert path.read_text(encoding="utf-8").splitlines()[-1].split(",")[10] == "1234000"


# -- populations ------------------------------------------------------------------------------------


def test_population_band_is_the_95_percent_interval_of_the_mean(qtbot: Any, tab: TrainingTab) -> None:
    _run(qtbot, tab, episodes=60, agents=4)
    plots = tab.plots
    drawn = plots.history.drawn()
    mean, rows = drawn.mean(RETURN), drawn.records
    assert np.all(rows.count == 1)  # 60 episodes: each drawn as it was
    _x, low, high = plots.band()
    assert np.all(low < mean) and np.all(mean < high)
    # The child's band, exactly: the mean return less and plus 1.96 std / sqrt(K) over the agents.
    assert np.allclose(high - mean, mean - low)
    names = [label.text for _sample, label in plots.reward.getPlotItem().legend.items]
    assert any("95%" in n and "K=4" in n for n in names)
    assert "best agent" in names
    assert np.array_equal(plots._best.getData()[1], drawn.mean(BEST))


def test_band_label_follows_k(qtbot: Any) -> None:
    plots = TrainingPlots()
    qtbot.addWidget(plots.reward)
    qtbot.addWidget(plots.epsilon)
    plots.start(population=True, agents=64)
    _synthetic(plots, 500, spread=True)
    names = [label.text for _sample, label in plots.reward.getPlotItem().legend.items]
    assert any("K=64" in n for n in names)
    assert np.allclose(plots.band()[2] - plots.history.drawn().mean(RETURN), 1.96 * 4.0 / 8.0)


# -- runs list --------------------------------------------------------------------------------------


def _cell(table: QTableWidget, row: int, column: int) -> str:
    item = table.item(row, column)
    assert item is not None
    return item.text()


def test_every_run_stays_in_the_runs_table(qtbot: Any, tab: TrainingTab) -> None:
    table = tab.findChild(QTableWidget, "runsTable")
    assert table is not None and table.rowCount() == 0
    _run(qtbot, tab, episodes=200, seed=3)
    _run(qtbot, tab, episodes=150, agents=2, seed=4)
    assert table.rowCount() == 2
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["name", "preset", "algorithm", "seed", "K", "episodes", "verified result"]
    assert [_cell(table, 0, c) for c in range(6)] == ["run 1", "short-burst", "Q-learning", "3", "1", "200"]
    assert [_cell(table, 1, c) for c in range(6)] == ["run 2", "short-burst", "Q-learning", "4", "2", "150"]
    for row in (0, 1):
        assert "±" in _cell(table, row, 6)  # mean ± ci95 once chained
    current = table.item(1, 0)
    assert current is not None and current.font().bold()
    earlier = table.item(0, 0)
    assert earlier is not None and not earlier.font().bold()


def test_ticked_runs_are_overlaid_as_frozen_copies(qtbot: Any, tab: TrainingTab) -> None:
    table = tab.runs.table
    _run(qtbot, tab, episodes=200, seed=3)
    first = tab.runs.runs[0]
    kept = first.rolling.copy()
    _run(qtbot, tab, episodes=300, seed=4)
    second = tab.runs.runs[1]
    assert np.array_equal(first.rolling, kept) and len(first.episode) == 200  # not the live buffers
    assert not np.shares_memory(second.rolling, tab.plots.history.drawn().records.total)
    assert not first.rolling.flags.writeable
    items_before = len(tab.plots.reward.getPlotItem().listDataItems())
    for row in (0, 1):
        item = table.item(row, 0)
        assert item is not None
        item.setCheckState(Qt.CheckState.Checked)
    assert tab.runs.shown() == [first, second]
    overlays = tab.plots.reward.getPlotItem().listDataItems()[items_before:]
    assert len(overlays) == 2
    for overlay, run in zip(overlays, (first, second), strict=True):
        x, y = overlay.getOriginalDataset()
        assert np.array_equal(x, run.episode) and np.array_equal(y, run.rolling)
        assert overlay.opts["autoDownsample"] and overlay.opts["downsampleMethod"] == "peak"
        assert overlay.opts["clipToView"]
        assert overlay.opts["pen"].color().getRgb()[:3] == run.colour
    assert first.colour != second.colour
    item = table.item(0, 0)
    assert item is not None
    item.setCheckState(Qt.CheckState.Unchecked)  # hide
    assert tab.runs.shown() == [second]
    assert first.overlay is not None and not first.overlay.isVisible()


def test_runs_can_be_renamed_and_compared(qtbot: Any, tab: TrainingTab) -> None:
    table = tab.runs.table
    _run(qtbot, tab, episodes=100, seed=3)
    _run(qtbot, tab, episodes=120, seed=8)
    item = table.item(0, 0)
    assert item is not None
    item.setText("baseline")  # what editing the name cell does
    assert tab.runs.runs[0].name == "baseline"
    assert not tab.runs.compare_button.isEnabled()
    table.selectRow(0)
    assert not tab.runs.compare_button.isEnabled()  # one run: nothing to compare
    table.selectAll()
    assert tab.runs.compare_button.isEnabled()
    qtbot.mouseClick(tab.runs.compare_button, Qt.MouseButton.LeftButton)
    dialog = tab.runs.compare_dialog
    assert dialog is not None and dialog.isVisible()
    compared = dialog.findChild(QTableWidget, "compareRunsTable")
    assert compared is not None and compared.rowCount() == 2
    assert _cell(compared, 0, 0) == "baseline" and _cell(compared, 1, 0) == "run 2"
    headers = [compared.horizontalHeaderItem(c).text() for c in range(compared.columnCount())]
    seeds, verified = headers.index("seed"), headers.index("verified result")
    assert [_cell(compared, r, seeds) for r in (0, 1)] == ["3", "8"]
    assert all("±" in _cell(compared, r, verified) for r in (0, 1))
    assert len(tab.runs.shown()) == 2  # compared runs are overlaid too
    dialog.close()


def test_a_running_run_cannot_be_ticked(qtbot: Any, tab: TrainingTab) -> None:
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 50, timeout=30_000)
    item = tab.runs.table.item(0, 0)
    assert item is not None and not item.flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert "running" in _cell(tab.runs.table, 0, 6)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.stop()
    assert item.flags() & Qt.ItemFlag.ItemIsUserCheckable
    overlay = tab.runs.runs[0].episode
    assert tab.runs.runs[0].finished and (len(overlay) == tab.plots.points or len(overlay) <= 2048)



def test_exploration_plot_keeps_its_fixed_scale(qtbot: Any, tab: TrainingTab) -> None:
    """The short epsilon plot shows 0, 0.5 and 1 on a [0, 1] scale, before and after a run
    (pyqtgraph's own ticks crowded its few pixels; a fitted range hid 0 and 0.5)."""
    plots = tab.plots
    axis = plots.epsilon.getPlotItem().getAxis("left")
    view = plots.epsilon.getPlotItem().getViewBox()
    assert [value for value, _text in axis._tickLevels[0]] == [0.0, 0.5, 1.0]
    _run(qtbot, tab, episodes=200)
    low, high = view.viewRange()[1]
    assert low <= 0.0 and 1.0 <= high <= 1.1
    assert plots.reward.getPlotItem().getAxis("bottom").label.isVisible() is False


def test_warm_up_says_it_compiles_then_is_ready(qtbot: Any, tab: TrainingTab, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The first start after install compiles the training kernel in the background and says so."""
    from app.training_tab import COMPILING, READY

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-kernel-cache"))
    tab.warm_up()
    qtbot.waitUntil(lambda: tab.stats.text() == COMPILING, timeout=30_000)
    assert tab.compiling
    qtbot.waitUntil(lambda: not tab._warming.busy, timeout=60_000)
    assert tab.stats.text() == READY and not tab.compiling
    assert any((tmp_path / "empty-kernel-cache").rglob("*.nbi"))  # compiled once, kept on disk
    tab.warm_up()  # the next start loads it: nothing to say
    qtbot.waitUntil(lambda: not tab._warming.busy, timeout=30_000)
    assert tab.stats.text() == READY


def test_closing_during_the_first_compile_does_not_wait_for_it(qtbot: Any, tab: TrainingTab, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from app.training_tab import COMPILING

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-kernel-cache"))
    tab.warm_up()
    qtbot.waitUntil(lambda: tab.stats.text() == COMPILING, timeout=30_000)
    started = time.monotonic()
    tab.shutdown()
    assert time.monotonic() - started < 8.0  # not the 10 s a training child is given to end
    assert not tab._warming.busy
