"""What the training child process runs, and how its records travel (no Qt here).

The child imports only this module and the core; records go back to the GUI
as column arrays, one :class:`Columns` per batch, so neither side handles
thousands of small objects per second.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from policyledger_core.envconfig import EnvConfig
from policyledger_core.hyper import Algorithm, Hyperparameters
from policyledger_core.population import PopulationRecord, train_population
from policyledger_core.training import EpisodeRecord, TrainingResult, train

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Columns:
    """A batch of episodes: for a population, ``ret`` and ``rolling`` are means over agents."""

    episode: npt.NDArray[np.int64]
    ret: Floats
    epsilon: Floats
    rolling: Floats
    spread: Floats | None = None
    """Standard deviation of the agents' returns (populations only)."""
    best: Floats | None = None
    """Highest agent's mean of its last 100 returns (populations only)."""

    def __len__(self) -> int:
        return len(self.episode)


def run_training(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                 should_stop: Callable[[], bool]) -> Generator[Any, None, TrainingResult]:
    """One agent or a population, as the core trains them."""
    if agents == 1:
        return train(config, hyper, algorithm, should_stop)
    return train_population(config, hyper, agents, algorithm, should_stop)


def pack(records: Sequence[EpisodeRecord | PopulationRecord]) -> Columns:
    """Turn a batch of records into columns."""
    episode = np.array([r.episode for r in records], dtype=np.int64)
    epsilon = np.array([r.epsilon for r in records])
    pop = [r for r in records if isinstance(r, PopulationRecord)]
    if pop:
        returns = np.stack([r.returns for r in pop])
        rolling = np.stack([r.rolling_mean for r in pop])
        return Columns(episode, returns.mean(axis=1), epsilon, rolling.mean(axis=1),
                       returns.std(axis=1), rolling.max(axis=1))
    single = [r for r in records if isinstance(r, EpisodeRecord)]
    return Columns(episode, np.array([r.ret for r in single]), epsilon,
                   np.array([r.rolling_mean for r in single]))
