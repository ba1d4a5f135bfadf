"""Training curves kept for chained policies: downsampled without losing extremes, and never trusted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.learn.envelope import Envelope, Records
from policyledger_core.workspace.curves import MAX_POINTS, CurveStore, curve_of, downsample

HASH = "ab" * 32


@settings(max_examples=200, deadline=None, database=None)
@given(returns=st.lists(st.floats(-1e6, 1e6), max_size=3000), points=st.integers(1, 50))
def test_every_bucket_is_exactly_the_episodes_it_covers(returns: list[float], points: int) -> None:
    eps = [1.0 / (i + 1) for i in range(len(returns))]
    curve = downsample(returns, eps, points)
    assert len(curve) <= points and curve.episodes == len(returns)
    start = 0
    for k, end in enumerate(curve.episode):
        covered = returns[start:end]
        assert covered, "a bucket covers at least one episode"
        assert curve.low[k] == min(covered) and curve.high[k] == max(covered)
        assert curve.mean[k] == pytest.approx(sum(covered) / len(covered), rel=1e-9, abs=1e-6)
        assert curve.epsilon[k] == eps[end - 1]
        start = int(end)
    assert start == len(returns)  # the buckets cover the whole run, in order


def test_a_spike_survives_downsampling() -> None:
    returns = np.zeros(100_000)
    returns[54_321] = 500.0
    curve = downsample(returns, np.ones(100_000))
    assert len(curve) == MAX_POINTS and curve.high.max() == 500.0 and curve.mean.max() < 500.0


def test_kept_and_read_back(tmp_path: Path) -> None:
    store = CurveStore(tmp_path / "cfg")
    assert store.load(HASH) is None
    curve = downsample(np.arange(5000.0), np.linspace(1, 0.05, 5000))
    assert store.save(HASH, curve)
    back = store.load(HASH)
    assert back is not None and back.episodes == 5000
    for name in ("episode", "low", "mean", "high", "epsilon"):
        assert np.array_equal(getattr(back, name), getattr(curve, name))


@pytest.mark.parametrize("content", [b"", b"{", b'{"schema": "policyledger/curve"}', b"[]",
                                     b'{"schema":"policyledger/curve","episodes":2,"episode":[2,1],'
                                     b'"low":[0,0],"mean":[0,0],"high":[0,0],"epsilon":[1,1]}',
                                     b'{"schema":"policyledger/curve","episodes":1,"episode":[1],'
                                     b'"low":[5],"mean":[0],"high":[9],"epsilon":[1]}'])
def test_a_damaged_curve_is_no_curve(tmp_path: Path, content: bytes) -> None:
    store = CurveStore(tmp_path / "cfg")
    store.folder.mkdir(parents=True)
    store.path(HASH).write_bytes(content)
    assert store.load(HASH) is None


def test_a_fifo_or_huge_file_is_no_curve_and_does_not_hang(tmp_path: Path) -> None:
    store = CurveStore(tmp_path / "cfg")
    store.folder.mkdir(parents=True)
    os.mkfifo(store.path(HASH))
    assert store.load(HASH) is None
    other = "cd" * 32
    with open(store.path(other), "wb") as f:
        f.truncate(4 << 30)  # sparse
    assert store.load(other) is None


def test_only_policy_hashes_name_curves(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="policy_hash"):
        CurveStore(tmp_path).path("../../etc/passwd")


def test_an_unwritable_folder_keeps_nothing_and_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "cfg"
    blocker.write_text("a file where the config folder should be")
    assert not CurveStore(blocker).save(HASH, downsample([1.0], [1.0]))


def test_a_curve_of_a_bounded_history_equals_the_downsampled_episodes() -> None:
    """Merging a history's buckets gives the figures of the episodes they cover, as downsampling does."""
    rng = np.random.default_rng(3)
    returns = rng.normal(size=4096)
    eps = np.maximum(0.05, 0.999 ** np.arange(4096))
    history = Envelope(series=2, recent=64, buckets=32)
    both = np.array([returns, eps])
    for start in range(0, 4096, 128):
        history.add(Records.of_episodes(np.arange(start, start + 128), both[:, start:start + 128]))
    curve = curve_of(history.view(), 0, 1, max_points=16)
    want = downsample(returns, eps, 16)
    assert np.array_equal(curve.episode, want.episode) and curve.episodes == 4096
    assert np.array_equal(curve.low, want.low) and np.array_equal(curve.high, want.high)
    assert np.allclose(curve.mean, want.mean) and np.array_equal(curve.epsilon, want.epsilon)
