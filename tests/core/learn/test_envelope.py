"""The bounded history: every bucket's figures are those of the episodes it covers, in bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.learn.envelope import Envelope, Records, ema, smoothed

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def _check(view: Records, values: np.ndarray) -> None:
    """Each record covers first..last exactly, and its min/max/mean are those episodes'."""
    assert len(view) and view.first[0] == 0 and view.last[-1] == values.shape[1] - 1
    assert np.all(view.first[1:] == view.last[:-1] + 1)  # contiguous, in order, nothing twice
    assert np.all(view.count == view.last - view.first + 1)
    for i in range(len(view)):
        covered = values[:, view.first[i]:view.last[i] + 1]
        assert np.array_equal(view.lo[:, i], covered.min(axis=1))
        assert np.array_equal(view.hi[:, i], covered.max(axis=1))
        assert np.allclose(view.mean[:, i], covered.mean(axis=1), rtol=1e-9, atol=1e-6)


@settings(max_examples=150, deadline=None)
@given(returns=st.lists(finite, min_size=1, max_size=600),
       cuts=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 4)), min_size=1, max_size=60),
       recent=st.integers(1, 12), buckets=st.integers(2, 9))
def test_every_bucket_holds_the_figures_of_the_episodes_it_covers(
        returns: list[float], cuts: list[tuple[int, int]], recent: int, buckets: int) -> None:
    values = np.array([returns, [v * 0.5 - 3 for v in returns]])  # two series, as return and mean of 100
    history = Envelope(series=2, recent=recent, buckets=buckets)
    start, largest, turn = 0, 0, 0
    while start < len(returns):
        size, grain = cuts[turn % len(cuts)]
        turn += 1
        stop = min(start + size, len(returns))
        # The training side may merge episodes into aligned blocks before they travel.
        part = Records.of_episodes(np.arange(start, stop), values[:, start:stop]).grouped(grain)
        largest = max(largest, len(part))
        history.add(part)
        start = stop
        _check(history.view(), values[:, :stop])
        assert history.nbytes <= history.bound(largest)
        assert len(history) <= buckets + 2 * recent + largest


def test_memory_stays_flat_over_a_long_run() -> None:
    history = Envelope(series=4)
    rng = np.random.default_rng(0)
    sizes = []
    for batch in range(2_000):  # 2,000,000 episodes in batches of 1,000
        first = batch * 1_000
        history.add(Records.of_episodes(np.arange(first, first + 1_000), rng.normal(size=(4, 1_000))))
        sizes.append(history.nbytes)
    assert max(sizes) <= history.bound(1_000) < 4 << 20
    assert max(sizes[1_000:]) <= 1.01 * max(sizes[:1_000])  # the second million adds (almost) nothing
    assert history.view().episodes == 2_000_000


def test_a_spike_survives_any_compaction() -> None:
    history = Envelope(series=1, recent=16, buckets=8)
    values = np.zeros(100_000)
    values[12_345] = 1e9
    for start in range(0, len(values), 500):
        history.add(Records.of_episodes(np.arange(start, start + 500), values[None, start:start + 500]))
    view = history.view()
    spike = int(np.searchsorted(view.last, 12_345))
    assert view.hi[0, spike] == 1e9 and view.first[spike] <= 12_345 <= view.last[spike]
    assert view.lo[0].min() == 0.0 and len(view) <= 8 + 32


def test_at_most_merges_exactly() -> None:
    values = np.arange(1_000, dtype=np.float64)[None, :]
    merged = Records.of_episodes(np.arange(1_000), values).at_most(10)
    assert len(merged) <= 10 and merged.episodes == 1_000
    assert merged.lo[0, 0] == 0 and merged.hi[0, -1] == 999


def test_records_refuse_series_they_were_not_made_for() -> None:
    history = Envelope(series=2)
    with pytest.raises(ValueError, match="expected 2 series"):
        history.add(Records.of_episodes([0], [[1.0]]))


def _loop_ema(values: list[float], weight: float) -> list[float]:
    last, out = 0.0, []
    for n, v in enumerate(values, start=1):
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(-1e4, 1e4), min_size=0, max_size=3_000),
       weight=st.sampled_from([0.0, 0.3, 0.6, 0.9, 0.95, 0.99, 0.999]))
def test_smoothing_matches_tensorboards_running_average(values: list[float], weight: float) -> None:
    got = smoothed(np.array(values, dtype=np.float64), weight)
    want = _loop_ema(values, weight) if weight > 0 else values
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert math.isclose(g, w, rel_tol=1e-7, abs_tol=1e-6)


def test_an_average_continued_equals_one_computed_at_once() -> None:
    values = np.random.default_rng(1).normal(size=5_000)
    whole = ema(values, 0.99)
    head = ema(values[:1_234], 0.99)
    tail = ema(values[1_234:], 0.99, last=float(head[-1]))
    assert np.allclose(np.concatenate([head, tail]), whole, rtol=1e-9)
    with pytest.raises(ValueError, match="0 <= w < 1"):
        ema(values, 1.0)
