"""What the live plots draw, in bounded memory (no Qt here).

A run's relays go into an :class:`~policyledger_core.learn.envelope.Envelope`: its recent
records as they came, older episodes in buckets of min, max and sum. :class:`PlotHistory`
turns that into the arrays the plots draw (lines through the means, bands through the
extremes), the hover readout's text, the curve kept for the marketplace and the CSV export.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.episode_relay import (
    BAND_HIGH,
    BAND_LOW,
    BEST,
    ENV_STEPS,
    EPSILON,
    MEAN_100,
    RETURN,
    Relay,
    recording_columns,
    series_of,
)
from policyledger_core.learn.envelope import Envelope, Records, debiased, ema
from policyledger_core.workspace.curves import Curve, curve_of

Floats = npt.NDArray[np.float64]

CSV_COLUMNS = ("first_episode", "last_episode", "episodes", "kind", "return_min", "return_mean", "return_max",
               "smoothed", "mean_100", "epsilon", "env_steps")
"""One row per record drawn. ``kind`` is ``episode`` for a row of one episode (its exact values) or
``envelope`` for a bucket of older episodes (their min, mean and max return; the means of
``mean_100`` and ``epsilon``); ``env_steps``: environment steps taken by the row's last episode."""
POPULATION_COLUMNS = ("band_low", "band_high", "best_min", "best_mean", "best_max")
"""Added for a population: the lowest and highest bounds of the 95% interval of the mean return
across agents over the row's episodes, and the best agent's mean of its last 100 episodes."""
OVERLAY_POINTS = 2048
"""A finished run keeps at most this many buckets for its overlay."""


def centres(records: Records) -> tuple[Floats, Floats]:
    """Where each record is drawn: the middle of its episodes, and of its environment steps."""
    return (records.first + records.last) / 2, (records.lo[ENV_STEPS] + records.hi[ENV_STEPS]) / 2


@dataclass(frozen=True, eq=False)
class Drawn:
    """The history as drawn: one point per record, at the middle of the episodes it covers."""

    records: Records
    x_episode: Floats
    x_steps: Floats
    smoothed: Floats

    def __len__(self) -> int:
        return len(self.records)

    def mean(self, row: int) -> Floats:
        mean: Floats = self.records.total[row] / self.records.count
        return mean

    def lo(self, row: int) -> Floats:
        low: Floats = self.records.lo[row]
        return low

    def hi(self, row: int) -> Floats:
        high: Floats = self.records.hi[row]
        return high


class PlotHistory:
    """One run's live history and everything derived from it."""

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self.population = False
        self.envelope = Envelope(len(series_of(False)))
        self.through = 0
        """Episodes done, drawn or not."""
        self._drawn: Drawn | None = None
        self._biased = self._smoothed = np.zeros(0)
        self._biased_for = (-1, smoothing)
        """The compaction count and weight the running average was computed for."""

    def start(self, population: bool) -> None:
        self.population = population
        self.envelope = Envelope(len(series_of(population)))
        self.through = 0
        self._drawn, self._biased_for = None, (-1, self.smoothing)
        self._biased = self._smoothed = np.zeros(0)

    def add(self, relay: Relay) -> None:
        self.envelope.add(relay.records)
        self.through = max(self.through, relay.through)
        self._drawn = None

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = weight
        self._drawn = None

    def __len__(self) -> int:
        return len(self.envelope)

    @property
    def nbytes(self) -> int:
        drawn = self._drawn
        arrays = 0 if drawn is None else drawn.x_episode.nbytes * 3
        return self.envelope.nbytes + self._biased.nbytes + self._smoothed.nbytes + arrays

    def drawn(self) -> Drawn:
        """The arrays to draw (computed once per change)."""
        if self._drawn is not None:
            return self._drawn
        records = self.envelope.view()
        means = records.total[RETURN] / records.count if len(records) else np.zeros(0)
        done, w = len(self._biased), self.smoothing
        if self._biased_for == (self.envelope.compactions, w) and done <= len(records):
            # Only new records since the last time: continue the running average.
            tail = ema(means[done:], w, float(self._biased[-1]) if done else 0.0)
            self._biased = np.concatenate([self._biased, tail])
            self._smoothed = np.concatenate([self._smoothed, debiased(tail, w, done)])
        else:  # older records were merged (or the weight changed): over again
            self._biased = ema(means, w)
            self._smoothed = debiased(self._biased, w)
        self._biased_for = (self.envelope.compactions, w)
        self._drawn = Drawn(records, *centres(records), self._smoothed)
        return self._drawn

    def describe(self, i: int) -> str:
        """The hover readout's text for point ``i``."""
        drawn = self.drawn()
        r = drawn.records
        first, last, steps = int(r.first[i]), int(r.last[i]), int(r.hi[ENV_STEPS, i])
        mean = float(drawn.mean(RETURN)[i])
        if first == last:
            head = f"episode {first:,} ({steps:,} steps)  return {mean:.2f}"
        else:
            head = (f"episodes {first:,}\u2013{last:,} ({steps:,} steps)  return {mean:.2f} "
                    f"[{float(r.lo[RETURN, i]):.2f}, {float(r.hi[RETURN, i]):.2f}]")
        text = (f"{head}  smoothed {float(drawn.smoothed[i]):.2f}  "
                f"mean of last 100 {float(drawn.mean(MEAN_100)[i]):.2f}  "
                f"epsilon {float(drawn.mean(EPSILON)[i]):.3f}")
        if self.population:
            text += f"  best agent {float(drawn.mean(BEST)[i]):.2f}"
        return text

    def curve(self, label: str) -> Curve:
        """The run's returns for the marketplace detail (at most its curve's points)."""
        return curve_of(self.envelope.view(), RETURN, EPSILON, label=label)

    def overlay(self) -> tuple[Floats, Floats, Floats]:
        """A finished run's overlay, bounded: x in episodes, x in steps, the mean of the last 100."""
        merged = self.envelope.view().at_most(OVERLAY_POINTS)
        return *centres(merged), merged.total[MEAN_100] / merged.count

    def write_csv(self, path: Path) -> None:
        """Every record drawn, as :data:`CSV_COLUMNS` (then :data:`POPULATION_COLUMNS`)."""
        drawn = self.drawn()
        r = drawn.records
        header = list(CSV_COLUMNS) + (list(POPULATION_COLUMNS) if self.population else [])
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            returns, rolling, eps = drawn.mean(RETURN), drawn.mean(MEAN_100), drawn.mean(EPSILON)
            best = drawn.mean(BEST) if self.population else None
            for i in range(len(r)):
                count = int(r.count[i])
                kind = "episode" if count == 1 else "envelope"
                row = [str(int(r.first[i])), str(int(r.last[i])), str(count), kind,
                       f"{r.lo[RETURN, i]:.6g}", f"{returns[i]:.6g}", f"{r.hi[RETURN, i]:.6g}",
                       f"{drawn.smoothed[i]:.6g}", f"{rolling[i]:.6g}", f"{eps[i]:.6g}",
                       # Steps count up to billions: 6 significant digits would round them.
                       f"{r.hi[ENV_STEPS, i]:.12g}"]
                if best is not None:
                    row += [f"{r.lo[BAND_LOW, i]:.6g}", f"{r.hi[BAND_HIGH, i]:.6g}", f"{r.lo[BEST, i]:.6g}",
                            f"{best[i]:.6g}", f"{r.hi[BEST, i]:.6g}"]
                writer.writerow(row)


RECORDING_CHUNK = 200_000
"""Episodes converted at a time (about 10 MB of the recording)."""


def write_recording_csv(recording: Path, population: bool, smoothing: float,
                        target: Path) -> Generator[tuple[int, int], None, int]:
    """A run's recording of every episode as CSV, in the export's columns (every row of ``kind``
    ``episode``: its min, mean and max are its value). Yields (episodes written, episodes recorded)
    after each chunk, returns the rows written. The file appears whole or not at all."""
    width = recording_columns(population)
    total = recording.stat().st_size // (8 * width)  # a row still being appended is left out
    header = list(CSV_COLUMNS) + (list(POPULATION_COLUMNS) if population else [])
    fmt = "%d,%d,1,episode,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.12g"
    if population:
        fmt += ",%.6g,%.6g,%.6g,%.6g,%.6g"
    partial = target.with_name(target.name + ".part")
    written, last = 0, 0.0
    try:
        with recording.open("rb") as source, partial.open("w", newline="", encoding="utf-8") as out:
            out.write(",".join(header) + "\n")
            while written < total:
                count = min(RECORDING_CHUNK, total - written)
                table = np.fromfile(source, dtype="<f8", count=count * width).reshape(count, width)
                episode, ret = table[:, 0], table[:, 1 + RETURN]
                biased = ema(ret, smoothing, last)
                last = float(biased[-1])
                columns = [episode, episode, ret, ret, ret, debiased(biased, smoothing, written),
                           table[:, 1 + MEAN_100], table[:, 1 + EPSILON], table[:, 1 + ENV_STEPS]]
                if population:
                    best = table[:, 1 + BEST]
                    columns += [table[:, 1 + BAND_LOW], table[:, 1 + BAND_HIGH], best, best, best]
                np.savetxt(out, np.column_stack(columns), fmt=fmt)
                written += count
                yield written, total
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return written
