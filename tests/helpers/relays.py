"""Relays made by hand, as the training process would send them for these per-episode values."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from app.episode_relay import Z95, Relay
from policyledger_core.learn.envelope import Records


def relay(episode: npt.ArrayLike, ret: npt.ArrayLike, epsilon: npt.ArrayLike, rolling: npt.ArrayLike,
          steps: npt.ArrayLike, spread: npt.ArrayLike | None = None, best: npt.ArrayLike | None = None,
          agents: int = 1) -> Relay:
    """One record per episode; with ``spread`` (the agents' standard deviation) and ``best``, a
    population's relay of ``agents`` agents."""
    number = np.asarray(episode, dtype=np.int64)
    mean = np.asarray(ret, dtype=np.float64)
    rows = [mean, np.asarray(rolling, dtype=np.float64), np.asarray(epsilon, dtype=np.float64),
            np.asarray(steps, dtype=np.float64)]
    if spread is not None and best is not None:
        half = np.asarray(spread, dtype=np.float64) * (Z95 / math.sqrt(agents))
        rows += [mean - half, mean + half, np.asarray(best, dtype=np.float64)]
    through = int(number[-1]) + 1 if len(number) else 0
    last = (float(rows[2][-1]), float(rows[1][-1])) if len(number) else (0.0, 0.0)
    return Relay(Records.of_episodes(number, np.array(rows)), through, *last)
