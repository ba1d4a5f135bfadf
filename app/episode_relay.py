"""How the training child process's episodes travel to the window (no Qt here).

The child runs the core's ``train_agents`` and imports only this module and the core. Each
relay carries a run's new episodes as :class:`~policyledger_core.learn.envelope.Records`: one
record per episode while the window can draw them all, else merged into aligned blocks of
``2**grain`` episodes that keep each series' min, max and sum, so neither the pipe nor the
window ever receives more than the window asked for, however fast the engine runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policyledger_core.learn.engine import EpisodeBatch
from policyledger_core.learn.envelope import Records

SERIES = ("return", "mean_100", "epsilon", "env_steps")
"""The series of a one-agent run, in the order of the records' rows. ``env_steps``: environment
steps taken up to the end of the episode."""
POPULATION_SERIES = (*SERIES, "band_low", "band_high", "best")
"""A population's: ``return``, ``mean_100`` and ``env_steps`` are means over the agents (steps per
agent); the band is the 95% interval of the mean return across agents (mean less and plus 1.96
standard deviations over the square root of K); ``best`` the highest agent's mean of its last 100."""
RETURN, MEAN_100, EPSILON, ENV_STEPS, BAND_LOW, BAND_HIGH, BEST = range(7)
Z95 = 1.96

MAX_POINTS_PER_BATCH = 1000
"""Records per relay on average (about 30 relays a second): what the window draws smoothly."""
BURST_POINTS = 16_384
"""Records a relay may bring at most when earlier relays brought fewer: a short run, or the start
of one, is drawn episode by episode however fast it comes."""


@dataclass(frozen=True, eq=False)
class Relay:
    """A relay's new episodes, and where the run stands at its end."""

    records: Records
    through: int
    """Episodes done by the end of the relay."""
    last_epsilon: float
    last_rolling: float
    """Epsilon and mean of the last 100 of the relay's last episode."""
    grain: int = 0
    """Episodes travel merged in aligned blocks of ``2**grain`` (0: one by one)."""
    recorded_bytes: int = 0
    """Size of the run's recording of every episode so far (0: not recorded)."""

    def __len__(self) -> int:
        return len(self.records)


def series_of(population: bool) -> tuple[str, ...]:
    return POPULATION_SERIES if population else SERIES


def recording_columns(population: bool) -> int:
    """Float64 values per episode in a recording: the episode number, then the series."""
    return 1 + len(series_of(population))


class Packer:
    """Turns the training process's batches into :class:`Relay`\\ s (it runs there, one per run).

    A token bucket paces the records: each relay earns ``max_points``, unspent ones are saved up
    to ``burst``, and a relay's grain is the smallest whose records the savings cover. With
    ``record``, every episode's figures are also appended to that file, as they are: one row of
    float64 per episode, the episode number then the series (:func:`recording_columns`).
    """

    def __init__(self, max_points: int = MAX_POINTS_PER_BATCH, burst: int = BURST_POINTS,
                 record: str | None = None) -> None:
        self.max_points = max(1, max_points)
        self.burst = max(self.max_points, burst)
        self.tokens = self.burst - self.max_points
        self.steps_done = 0.0
        self.grain = 0
        self.record = record
        self.recorded = 0

    def __call__(self, batches: Sequence[EpisodeBatch]) -> Relay:
        episode = np.concatenate([b.episodes for b in batches]).astype(np.int64)
        returns = np.concatenate([b.returns for b in batches])
        rolling = np.concatenate([b.rolling for b in batches])
        epsilon = np.concatenate([b.epsilon for b in batches])
        steps = np.concatenate([b.steps for b in batches]).astype(np.float64)
        through = int(episode[-1]) + 1 if len(episode) else 0
        agents = returns.shape[1]
        mean_rolling = rolling.mean(axis=1)
        cumulative = self.steps_done + np.cumsum(steps.mean(axis=1))
        if len(cumulative):
            self.steps_done = float(cumulative[-1])
        mean = returns.mean(axis=1)
        rows = [mean, mean_rolling, epsilon, cumulative]
        if agents > 1:
            half = returns.std(axis=1) * (Z95 / math.sqrt(agents))
            rows += [mean - half, mean + half, rolling.max(axis=1)]
        self.tokens = min(self.burst, self.tokens + self.max_points)
        self.grain = 0
        while len(episode) and self._blocks(episode) > self.tokens:
            self.grain += 1
        self.tokens -= self._blocks(episode) if len(episode) else 0
        values = np.array(rows)
        if self.record is not None:
            self._append(self.record, episode, values)
        records = Records.of_episodes(episode, values).grouped(self.grain)
        last = (float(epsilon[-1]), float(mean_rolling[-1])) if len(episode) else (0.0, 0.0)
        return Relay(records, through, *last, grain=self.grain, recorded_bytes=self.recorded)

    def _append(self, path: str, episode: np.ndarray, values: np.ndarray) -> None:
        """Every episode, as it is, at the end of the recording (opened here: the packer travels
        to the training process before it is used)."""
        table = np.empty((len(episode), 1 + len(values)), dtype="<f8")
        table[:, 0] = episode
        table[:, 1:] = values.T
        with open(path, "ab") as out:
            table.tofile(out)
        self.recorded += table.nbytes

    def _blocks(self, episode: np.ndarray) -> int:
        """Records that episodes ``episode`` (consecutive) make at the current grain."""
        return int((episode[-1] >> self.grain) - (episode[0] >> self.grain)) + 1
