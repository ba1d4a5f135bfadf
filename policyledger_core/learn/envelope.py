"""A run's per-episode history in bounded memory: recent records as they came, older ones in
buckets that keep each series' min, max and sum.

A record covers a range of episodes inside one aligned block (episodes ``j * 2**g`` to
``(j + 1) * 2**g - 1`` for some grain ``g``); a single episode is a record of one. Merging the
records of one block is exact (min of mins, max of maxes, sum of sums), so however far a
history is compacted, every bucket's figures are those of the episodes it covers: a spike is
never lost when zoomed out, and no value is shown that no episode had.

:class:`Envelope` keeps at most ``recent`` records as they came (up to twice that between
compactions) and at most ``buckets`` older buckets, all of one aligned size that doubles when
they would be more: its memory does not grow with the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

RECENT = 2048
"""Records kept as they came (a compaction leaves this many)."""
BUCKETS = 4096
"""Older buckets at most (their size doubles rather than their number grows)."""


@dataclass(frozen=True, eq=False)
class Records:
    """Episode ranges, oldest first, with each series' min, max and sum over the range.

    ``lo``, ``hi`` and ``total`` have one row per series and one column per record.
    """

    first: Ints
    last: Ints
    count: Ints
    lo: Floats
    hi: Floats
    total: Floats

    @classmethod
    def empty(cls, series: int) -> Records:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, *(np.zeros((series, 0)) for _ in range(3)))

    @classmethod
    def of_episodes(cls, episode: npt.ArrayLike, values: npt.ArrayLike) -> Records:
        """One record per episode: ``values`` has one row per series, one column per episode."""
        number = np.asarray(episode, dtype=np.int64)
        rows = np.atleast_2d(np.asarray(values, dtype=np.float64))
        if rows.shape[1] != len(number):
            raise ValueError("values: expected one column per episode")
        return cls(number, number, np.ones(len(number), dtype=np.int64), rows, rows, rows)

    @classmethod
    def concat(cls, parts: Sequence[Records]) -> Records:
        if len(parts) == 1:
            return parts[0]
        return cls(np.concatenate([p.first for p in parts]), np.concatenate([p.last for p in parts]),
                   np.concatenate([p.count for p in parts]), np.concatenate([p.lo for p in parts], axis=1),
                   np.concatenate([p.hi for p in parts], axis=1),
                   np.concatenate([p.total for p in parts], axis=1))

    def __len__(self) -> int:
        return len(self.first)

    @property
    def series(self) -> int:
        return int(self.lo.shape[0])

    @property
    def mean(self) -> Floats:
        return self.total / self.count

    @property
    def episodes(self) -> int:
        """Episodes covered."""
        return int(self.count.sum())

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.first, self.last, self.count, self.lo, self.hi, self.total))

    def grain(self) -> int:
        """The smallest ``g`` such that every record lies inside one aligned block of ``2**g`` episodes."""
        if not len(self):
            return 0
        return int(np.bitwise_or.reduce(self.first ^ self.last)).bit_length()

    def slice(self, start: int, stop: int) -> Records:
        return Records(self.first[start:stop], self.last[start:stop], self.count[start:stop],
                       self.lo[:, start:stop], self.hi[:, start:stop], self.total[:, start:stop])

    def grouped(self, level: int) -> Records:
        """Adjacent records of the same aligned block of ``2**level`` episodes merged into one (every
        record must lie inside one such block: ``level >= grain()``)."""
        if len(self) < 2:
            return self
        keys = self.first >> level
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        if len(starts) == len(self):
            return self
        ends = np.append(starts[1:], len(self)) - 1
        return Records(self.first[starts], self.last[ends], np.add.reduceat(self.count, starts),
                       np.minimum.reduceat(self.lo, starts, axis=1),
                       np.maximum.reduceat(self.hi, starts, axis=1),
                       np.add.reduceat(self.total, starts, axis=1))

    def at_most(self, points: int) -> Records:
        """Merged into aligned blocks until at most ``points`` records remain (exact figures)."""
        if len(self) <= points:
            return self
        # Episodes first..last make about span / 2**level blocks: start from the level where
        # that fits (one pass, mostly; a misaligned start may take one more).
        span = int(self.last[-1] - self.first[0]) + 1
        level = max(self.grain(), (-(-span // points) - 1).bit_length())
        merged = self.grouped(level)
        while len(merged) > points:
            level += 1
            merged = merged.grouped(level)
        return merged


class Envelope:
    """A run's history in bounded memory: :data:`RECENT` records as they came, then at most
    :data:`BUCKETS` buckets of ``2**level`` episodes (see the module's docstring)."""

    def __init__(self, series: int, recent: int = RECENT, buckets: int = BUCKETS) -> None:
        if recent < 1 or buckets < 2:
            raise ValueError("recent >= 1 and buckets >= 2 expected")
        self.series, self.recent_max, self.buckets_max = series, recent, buckets
        self.old = Records.empty(series)
        self.level = 0
        """Older buckets cover aligned blocks of ``2**level`` episodes."""
        self._recent: list[Records] = []
        self._recent_len = 0
        self._view: Records | None = None
        self.compactions = 0
        """How often older records were merged (the drawn history changed, not only grew)."""

    def add(self, records: Records) -> None:
        """Append records that follow those already added."""
        if records.series != self.series:
            raise ValueError(f"records: expected {self.series} series, got {records.series}")
        if not len(records):
            return
        self._recent.append(records)
        self._recent_len += len(records)
        self._view = None
        if self._recent_len > 2 * self.recent_max:
            self._compact()

    def _compact(self) -> None:
        recent = Records.concat(self._recent)
        moving, staying = recent.slice(0, len(recent) - self.recent_max), recent.slice(
            len(recent) - self.recent_max, len(recent))
        self.level = max(self.level, moving.grain())
        old = Records.concat([self.old, moving]).grouped(self.level)
        while len(old) > self.buckets_max:
            self.level += 1
            old = old.grouped(self.level)
        self.old = old
        self._recent, self._recent_len = [staying], len(staying)
        self.compactions += 1

    def view(self) -> Records:
        """Every record, oldest first (older buckets, then the recent records)."""
        if self._view is None:
            self._view = Records.concat([self.old, *self._recent])
        return self._view

    def __len__(self) -> int:
        return len(self.old) + self._recent_len

    @property
    def nbytes(self) -> int:
        """Memory held by the records (at most :meth:`bound` however long the run)."""
        return self.old.nbytes + sum(part.nbytes for part in self._recent)

    def bound(self, largest_add: int) -> int:
        """Bytes this history can hold when no single :meth:`add` brings more than ``largest_add`` records."""
        per_record = 3 * 8 + 3 * 8 * self.series
        return (self.buckets_max + 2 * self.recent_max + largest_add) * per_record

    def clear(self) -> None:
        self.old, self.level = Records.empty(self.series), 0
        self._recent, self._recent_len, self._view = [], 0, None


def ema(values: Floats, weight: float, last: float = 0.0) -> Floats:
    """The exponential moving average ``y_k = w * y_(k-1) + (1 - w) * x_k`` from ``y_0 = last``,
    computed block by block (a closed form per block keeps it vectorised and within float precision)."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight: expected 0 <= w < 1, got {weight}")
    n = len(values)
    out = np.empty(n)
    if weight == 0:
        out[:] = values
        return out
    # w**-m stays below 1e6 inside a block: the closed form loses at most a few digits.
    block = max(1, int(6 * math.log(10) / -math.log(weight)))
    for start in range(0, n, block):
        chunk = np.asarray(values[start:start + block], dtype=np.float64)
        powers = weight ** np.arange(1, len(chunk) + 1)
        # y_k = w**k * (y_0 + (1 - w) * sum_{i<=k} w**-i * x_i)
        out[start:start + len(chunk)] = powers * (last + (1 - weight) * np.cumsum(chunk / powers))
        last = float(out[start + len(chunk) - 1])
    return out


def debiased(biased: Floats, weight: float, start: int = 0) -> Floats:
    """TensorBoard's correction of an average started at 0: divide the k-th by ``1 - w**k``
    (``biased`` starts at the ``start + 1``-th)."""
    if weight == 0:
        return biased
    k = np.arange(start + 1, start + len(biased) + 1)
    # Past ~700 / -ln(w) points w**k underflows to 0: the correction is 1 there.
    return biased / (1 - weight ** np.minimum(k, 1 + int(750 / -math.log(weight))))


def smoothed(values: Floats, weight: float) -> Floats:
    """TensorBoard's debiased exponential moving average of ``values``."""
    return debiased(ema(values, weight), weight)
