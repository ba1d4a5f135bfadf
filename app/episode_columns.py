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


THIN_FROM = 100_000
"""A run's first 2 x THIN_FROM episodes go to the plots one by one; then every 2nd, 4th, ... (the
stride doubles each time the run doubles), so the plots hold at most about 2 x THIN_FROM points
however long a run lasts, and the pipe carries no more."""


MAX_POINTS_PER_BATCH = 1000
"""Points per relay at most (about 30 relays a second): what the window draws smoothly."""


def stride_for(episodes_done: int) -> int:
    """The power of two such that episodes whose number it divides are plotted."""
    stride = 1
    while episodes_done >= 2 * THIN_FROM * stride:
        stride *= 2
    return stride


@dataclass(frozen=True, eq=False)
class Columns:
    """Episodes of a batch, exact values (for a population, ``ret`` and ``rolling`` are means over
    agents); in a long run only those whose number ``stride`` divides."""

    episode: npt.NDArray[np.int64]
    ret: Floats
    epsilon: Floats
    rolling: Floats
    steps: Floats
    """Environment steps taken up to the end of the episode (for a population, per agent)."""
    spread: Floats | None = None
    """Standard deviation of the agents' returns (populations only)."""
    best: Floats | None = None
    """Highest agent's mean of its last 100 returns (populations only)."""
    stride: int = 1
    through: int = 0
    """Episodes done by the end of the batch (plotted or not)."""
    last_epsilon: float = 0.0
    last_rolling: float = 0.0
    """Epsilon and mean of the last 100 of the batch's last episode (plotted or not)."""

    def __len__(self) -> int:
        return len(self.episode)


class Packer:
    """Turns the training process's batches into :class:`Columns` (it runs there, one per run):
    for a population, means over agents, their spread and the best agent's mean of 100; in a long
    or very fast run only every ``stride``-th episode (:func:`stride_for`, and at most
    :data:`MAX_POINTS_PER_BATCH` a batch), with its exact values."""

    def __init__(self) -> None:
        self.steps_done = 0.0
        self.stride = 1

    def __call__(self, batches: Sequence[EpisodeBatch]) -> Columns:
        episode = np.concatenate([b.episodes for b in batches])
        returns = np.concatenate([b.returns for b in batches])
        rolling = np.concatenate([b.rolling for b in batches])
        epsilon = np.concatenate([b.epsilon for b in batches])
        steps = np.concatenate([b.steps for b in batches]).astype(np.float64)
        through = int(episode[-1]) + 1 if len(episode) else 0
        population = returns.shape[1] > 1
        mean_rolling = rolling.mean(axis=1) if population else rolling[:, 0]
        cumulative = self.steps_done + np.cumsum(steps.mean(axis=1) if population else steps[:, 0])
        if len(cumulative):
            self.steps_done = float(cumulative[-1])
        # Strides only grow (what is plotted stays consistent); past THIN_FROM episodes a flood
        # also raises it, so the window draws at most about MAX_POINTS_PER_BATCH points per relay.
        stride = max(self.stride, stride_for(through))
        while through > THIN_FROM and np.count_nonzero(episode % stride == 0) > MAX_POINTS_PER_BATCH:
            stride *= 2
        self.stride = stride
        keep = episode % stride == 0
        last = (float(epsilon[-1]), float(mean_rolling[-1])) if len(episode) else (0.0, 0.0)
        kept = returns[keep]
        return Columns(episode[keep], kept.mean(axis=1) if population else kept[:, 0], epsilon[keep],
                       mean_rolling[keep], cumulative[keep],
                       kept.std(axis=1) if population else None,
                       rolling[keep].max(axis=1) if population else None,
                       stride, through, *last)

