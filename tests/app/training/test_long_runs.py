"""A long run stays bounded in the Training tab: the training process sends every episode at first,
then every 2nd, 4th, ... with exact values, and the plots thin what they hold to match."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app import episode_columns
from app.episode_columns import Columns, Packer, stride_for
from app.training_plots import TrainingPlots
from policyledger_core.learn.engine import EpisodeBatch


def _batch(first: int, n: int, agents: int = 1) -> EpisodeBatch:
    episodes = np.arange(first, first + n)
    returns = np.stack([episodes * 0.5 + k for k in range(agents)], axis=1).astype(np.float64)
    steps = np.stack([(episodes % 7) + 1 + k for k in range(agents)], axis=1).astype(np.int64)
    return EpisodeBatch(first, returns, 1.0 / (1.0 + episodes), steps, returns - 1.0,
                        np.zeros((n, agents, 5), dtype=np.int64))


def test_the_stride_doubles_each_time_the_run_doubles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(episode_columns, "THIN_FROM", 100)
    assert [stride_for(n) for n in (0, 199, 200, 399, 400, 800, 1600)] == [1, 1, 2, 2, 4, 8, 16]


@pytest.mark.parametrize("agents", [1, 3])
def test_a_packer_keeps_exact_values_of_every_stride_th_episode(agents: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(episode_columns, "THIN_FROM", 100)
    packer = Packer()
    sent: list[Columns] = []
    first = 0
    for n in [37, 150, 1, 300, 2000, 999, 5000]:
        sent.append(packer([_batch(first, n, agents)]))
        first += n
    total = first
    all_steps = np.cumsum([np.mean([(e % 7) + 1 + k for k in range(agents)]) for e in range(total)])
    for columns in sent:
        assert np.all(columns.episode % columns.stride == 0)
        assert np.array_equal(columns.steps, all_steps[columns.episode])  # every episode counted
        assert np.allclose(columns.ret, columns.episode * 0.5 + (agents - 1) / 2)
    assert sent[-1].stride == stride_for(total) and sent[-1].through == total
    assert sent[-1].last_epsilon == 1.0 / total  # the last episode's, plotted or not
    kept = sum(len(c) for c in sent)
    assert kept < 3 * 100 + 7 * 100 and total == 8487  # far fewer points than episodes


def test_the_plots_thin_their_history_and_stay_bounded(qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(episode_columns, "THIN_FROM", 100)
    plots = TrainingPlots()
    qtbot.addWidget(plots.reward)
    qtbot.addWidget(plots.epsilon)
    plots.start(population=False)
    packer, first, sizes = Packer(), 0, []
    for _ in range(60):
        plots.add(packer([_batch(first, 500)]))
        first += 500
        plots.refresh()
        sizes.append(plots.episodes.size)
    stride = stride_for(first)
    shown = plots.episodes.view().astype(np.int64)
    assert np.all(shown % stride == 0) and plots.stride == stride
    assert np.array_equal(plots.returns.view(), shown * 0.5)  # exact values of real episodes
    assert max(sizes) <= 4 * 100  # 30,000 episodes, a few hundred points
    assert plots.smoother.values.size == plots.returns.size
    for buffer in (plots.rolling, plots.eps, plots.steps):
        assert buffer.size == plots.episodes.size


def test_a_flood_raises_the_stride_so_the_window_draws_a_bounded_rate() -> None:
    packer = Packer()
    early = packer([_batch(0, 50_000)])  # a short run is plotted whole, however fast it comes
    assert len(early) == 50_000 and early.stride == 1
    first = packer([_batch(50_000, 60_000)])  # past THIN_FROM episodes, a flood is thinned
    assert len(first) <= episode_columns.MAX_POINTS_PER_BATCH and first.stride == 64
    assert np.all(first.episode % 64 == 0) and first.through == 110_000
    slow = packer([_batch(110_000, 10)])
    assert slow.stride == 64  # strides never shrink: what is plotted stays consistent
