"""A long run stays bounded in the Training tab: the training process merges episodes into aligned
buckets when the window cannot draw them all, and the plots' history keeps recent records as they
came and older episodes in buckets of min, max and mean."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.episode_relay import (
    BAND_HIGH,
    BAND_LOW,
    BURST_POINTS,
    ENV_STEPS,
    EPSILON,
    MAX_POINTS_PER_BATCH,
    MEAN_100,
    RETURN,
    Packer,
    Relay,
)
from app.plot_history import CSV_COLUMNS, POPULATION_COLUMNS
from app.training_plots import TrainingPlots
from policyledger_core.learn.engine import EpisodeBatch
from policyledger_core.learn.envelope import smoothed


def _batch(first: int, n: int, agents: int = 1) -> EpisodeBatch:
    episodes = np.arange(first, first + n)
    returns = np.stack([episodes * 0.5 + k for k in range(agents)], axis=1).astype(np.float64)
    steps = np.stack([(episodes % 7) + 1 + k for k in range(agents)], axis=1).astype(np.int64)
    return EpisodeBatch(first, returns, 1.0 / (1.0 + episodes), steps, returns - 1.0,
                        np.zeros((n, agents, 5), dtype=np.int64))


@pytest.fixture
def plots(qtbot: Any) -> TrainingPlots:
    plots = TrainingPlots()
    qtbot.addWidget(plots.reward)
    qtbot.addWidget(plots.epsilon)
    return plots


@pytest.mark.parametrize("agents", [1, 3])
def test_a_packer_sends_the_exact_figures_of_the_episodes_it_merges(agents: int) -> None:
    packer = Packer(max_points=100, burst=200)
    sent: list[Relay] = []
    first = 0
    for n in [37, 150, 1, 300, 2000, 999, 5000]:
        sent.append(packer([_batch(first, n, agents)]))
        first += n
    total = first
    all_steps = np.cumsum([np.mean([(e % 7) + 1 + k for k in range(agents)]) for e in range(total)])
    mean_return = np.arange(total) * 0.5 + (agents - 1) / 2
    covered = 0
    for relay in sent:
        r = relay.records
        assert len(r) <= 200  # never more than the window asked for
        assert r.first[0] == covered and np.all(r.first[1:] == r.last[:-1] + 1)
        covered = int(r.last[-1]) + 1
        for i in range(len(r)):
            span = slice(r.first[i], r.last[i] + 1)
            assert r.lo[RETURN, i] == mean_return[span].min() and r.hi[RETURN, i] == mean_return[span].max()
            assert r.hi[ENV_STEPS, i] == pytest.approx(all_steps[span].max())  # every episode counted
        if agents > 1:
            assert np.all(r.lo[BAND_LOW] < r.mean[RETURN]) and np.all(r.mean[RETURN] < r.hi[BAND_HIGH])
    assert covered == total == 8487 and sent[-1].through == total
    assert sent[-1].last_epsilon == 1.0 / total  # the last episode's, merged or not
    assert sent[0].grain == 0 and sent[-1].grain > 0


def test_the_plots_stay_bounded_and_keep_every_extreme(plots: TrainingPlots) -> None:
    plots.start(population=False)
    packer, first = Packer(), 0
    sizes = []
    for _ in range(200):  # 2,000,000 episodes
        batch = _batch(first, 10_000)
        batch.returns[4_321, 0] = 1e9  # one spike a batch
        plots.add(packer([batch]))
        first += 10_000
        plots.refresh()
        sizes.append(plots.history.nbytes)
    drawn = plots.history.drawn()
    assert plots.points == len(drawn) < 4096 + 2 * 8192 + 1000
    assert max(sizes[100:]) <= 1.05 * max(sizes[:100])  # the second half of the run adds nothing
    assert drawn.records.episodes == first == plots.history.through
    # Every spike is inside some bucket's maximum; nothing drawn exceeds what happened.
    spikes = np.arange(200) * 10_000 + 4_321
    bucket = np.searchsorted(drawn.records.last, spikes)
    assert np.all(drawn.hi(RETURN)[bucket] == 1e9)
    assert drawn.hi(RETURN).max() == 1e9 and drawn.lo(RETURN).min() == 0.0
    assert np.allclose(drawn.smoothed, smoothed(drawn.mean(RETURN), plots.smoothing))  # kept up piecewise
    x, low, high = plots.band()
    assert high.max() == 1e9 and low.min() == 0.0  # the band shows the spikes
    assert np.sum(high == 1e9) == len(np.unique(np.searchsorted(x, spikes)))  # each where it happened


def test_a_bucket_reads_out_its_range(plots: TrainingPlots) -> None:
    plots.start(population=False)
    packer = Packer(max_points=10, burst=10)
    plots.add(packer([_batch(0, 1_000)]))
    plots.refresh()
    text = plots.history.describe(0)
    assert text.startswith("episodes 0\u2013127 (") and "[0.00, 63.50]" in text
    assert "epsilon" in text and "mean of last 100" in text


def test_the_csv_says_which_rows_are_episodes_and_which_are_envelopes(plots: TrainingPlots,
                                                                       tmp_path: Path) -> None:
    plots.start(population=True, agents=3)
    packer = Packer(max_points=50, burst=50)
    plots.add(packer([_batch(0, 40, agents=3)]))
    plots.add(packer([_batch(40, 4_000, agents=3)]))
    plots.refresh()
    path = tmp_path / "run.csv"
    plots.export_csv(path)
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(CSV_COLUMNS + POPULATION_COLUMNS)
    assert {row["kind"] for row in rows[:40]} == {"episode"} and rows[-1]["kind"] == "envelope"
    assert sum(int(row["episodes"]) for row in rows) == 4_040
    last = rows[-1]
    span = np.arange(int(last["first_episode"]), int(last["last_episode"]) + 1)
    assert float(last["return_max"]) == pytest.approx(span.max() * 0.5 + 1)
    assert float(last["return_min"]) == pytest.approx(span.min() * 0.5 + 1)
    assert float(last["band_low"]) < float(last["return_min"])


def test_a_flood_is_merged_so_the_window_draws_a_bounded_rate() -> None:
    packer = Packer()
    early = packer([_batch(0, 10_000)])  # a short run is drawn episode by episode, however fast
    assert len(early) == 10_000 and early.grain == 0
    first, sizes = 10_000, []
    for _ in range(20):
        flood = packer([_batch(first, 60_000)])
        first += 60_000
        sizes.append(len(flood))
        r = flood.records
        assert np.all(r.first >> flood.grain == r.last >> flood.grain)  # aligned blocks
        span = np.arange(r.first[0], r.last[0] + 1)
        assert r.mean[EPSILON][0] == pytest.approx(np.mean(1.0 / (1.0 + span)))
        assert r.mean[MEAN_100][0] == pytest.approx(np.mean(span * 0.5 - 1))
    assert sum(sizes) <= BURST_POINTS + 20 * MAX_POINTS_PER_BATCH  # the savings, then what each relay earns
    assert sizes[0] > MAX_POINTS_PER_BATCH and sizes[-1] < 2 * MAX_POINTS_PER_BATCH  # savings spent
    assert flood.grain in (5, 6) and flood.through == first
    slow = packer([_batch(first, 10)])
    assert slow.grain == 0 and len(slow) == 10  # a slow relay goes episode by episode again


def test_a_long_readout_never_widens_the_window(qtbot: Any, tmp_path: Path) -> None:
    from app.model import AppModel
    from app.training_tab import TrainingTab

    tab = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(tab)
    tab.resize(1100, 760)
    tab.show()
    qtbot.waitExposed(tab)
    long = "episodes 266,752\u2013266,879 (2,970,820 steps)  return 54.09 [48.42, 59.45]  "
    tab.plots.readout.setText(long * 4)
    qtbot.wait(50)
    assert tab.minimumSizeHint().width() <= 1100 and tab.width() == 1100


def test_a_population_leaves_the_window_a_core(qtbot: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from app import training_tab
    from app.model import AppModel

    started: list[Any] = []
    monkeypatch.setattr(training_tab, "in_child_process", lambda target, *args, **kw: started.append(target)
                        or (lambda _stop: iter(())))
    tab = training_tab.TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(tab)
    tab.form.agents.setValue(64)
    tab.start()
    assert started[0].keywords["workers"] == max(1, (os.cpu_count() or 1) - 1)
    tab._training.shutdown()


@pytest.mark.parametrize("population", [False, True])
def test_a_refresh_that_grows_the_view_computes_each_curve_once_for_the_new_range(
        plots: TrainingPlots, population: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = 3 if population else 1
    plots.start(population=population, agents=agents)
    packer = Packer()
    plots.add(packer([_batch(0, 500, agents)]))
    plots.refresh()
    view = plots.reward.getPlotItem().getViewBox()
    assert view.viewRange()[0][1] == 1000.0
    updates: dict[str, int] = {}
    for name in ("_raw", "_ema", "_rolling", "_band", "_best", "_eps"):
        curve = getattr(plots, name)
        original = curve.updateItems

        def counted(*args: Any, name: str = name, original: Any = original, **kwargs: Any) -> None:
            updates[name] = updates.get(name, 0) + 1
            original(*args, **kwargs)

        monkeypatch.setattr(curve, "updateItems", counted)
    plots.add(packer([_batch(500, 4500, agents)]))  # past the x range shown: the view grows
    plots.refresh()
    assert view.viewRange()[0][1] > 9000
    assert updates == {name: 1 for name in ("_raw", "_ema", "_rolling", "_band", "_best", "_eps")}
    # Computed for the new range: the curves reach the last episode (not clipped to the old view).
    for curve in (plots._raw, plots._ema, plots._rolling, plots._eps):
        x, _ = curve.getData()
        assert x is not None and x[-1] > 0.99 * plots.x_view()[-1] > 1000
    # Later range changes (a pan, a zoom) still redraw at once.
    view.setXRange(0, 2000, padding=0)
    plots.reward.scene().prepareForPaint()
    x, _ = plots._raw.getData()
    assert x is not None and x[-1] <= 2100 < plots.x_view()[-1]
