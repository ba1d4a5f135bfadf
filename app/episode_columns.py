"""How the training child process's records travel (no Qt here).

The child runs the core's ``train_agents`` and imports only this module and the
core; records go back to the GUI as column arrays, one :class:`Columns` per
batch, so neither side handles thousands of small objects per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policyledger_core.learn.single import EpisodeRecord, PopulationRecord

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Columns:
    """A batch of episodes: for a population, ``ret`` and ``rolling`` are means over agents."""

    episode: npt.NDArray[np.int64]
    ret: Floats
    epsilon: Floats
    rolling: Floats
    steps: Floats
    """Environment steps the episode took (for a population, the mean over agents)."""
    spread: Floats | None = None
    """Standard deviation of the agents' returns (populations only)."""
    best: Floats | None = None
    """Highest agent's mean of its last 100 returns (populations only)."""

    def __len__(self) -> int:
        return len(self.episode)


def pack(records: Sequence[EpisodeRecord | PopulationRecord]) -> Columns:
    """Turn a batch of records into columns."""
    episode = np.array([r.episode for r in records], dtype=np.int64)
    epsilon = np.array([r.epsilon for r in records])
    pop = [r for r in records if isinstance(r, PopulationRecord)]
    if pop:
        returns = np.stack([r.returns for r in pop])
        rolling = np.stack([r.rolling_mean for r in pop])
        steps = np.stack([r.steps for r in pop]).mean(axis=1)
        return Columns(episode, returns.mean(axis=1), epsilon, rolling.mean(axis=1), steps,
                       returns.std(axis=1), rolling.max(axis=1))
    single = [r for r in records if isinstance(r, EpisodeRecord)]
    return Columns(episode, np.array([r.ret for r in single]), epsilon,
                   np.array([r.rolling_mean for r in single]),
                   np.array([r.steps for r in single], dtype=np.float64))
