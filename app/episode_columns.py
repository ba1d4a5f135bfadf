"""How the training child process's records travel (no Qt here).

The child runs the core's ``train_agents`` and imports only this module and the
core; its batches go back to the GUI as column arrays, one :class:`Columns` per
relay, so neither side handles thousands of small objects per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from policyledger_core.learn.engine import EpisodeBatch

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


def pack(batches: Sequence[EpisodeBatch]) -> Columns:
    """Turn training batches into columns (for a population: means over agents, their spread
    and the best agent's mean of 100)."""
    episode = np.concatenate([b.episodes for b in batches])
    epsilon = np.concatenate([b.epsilon for b in batches])
    returns = np.concatenate([b.returns for b in batches])
    rolling = np.concatenate([b.rolling for b in batches])
    steps = np.concatenate([b.steps for b in batches]).astype(np.float64)
    if returns.shape[1] > 1:
        return Columns(episode, returns.mean(axis=1), epsilon, rolling.mean(axis=1), steps.mean(axis=1),
                       returns.std(axis=1), rolling.max(axis=1))
    return Columns(episode, returns[:, 0], epsilon, rolling[:, 0], steps[:, 0])
