"""What every task offers PolicyLedger: the :class:`Task` protocol and the values it returns.

A task is a finite-horizon decision problem over ``n_observations`` observations and
``n_actions`` actions, played by a stationary table (one action per observation). It can
compute exact figures for a table (the optimum, a table's expected return, baselines) and
replay a table on seeded episodes of its reference environment. The toy-text tasks of
:mod:`policyledger_core.tasks.toytext` implement it over an exact :class:`TabularModel`; a
task whose observations are not its Markov state (the cyber-defense task) returns no model
and computes its exact figures its own way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from policyledger_core.tasks.model import TabularModel

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

CELL_KINDS = ("start", "frozen", "hole", "goal", "cliff", "floor", "pad")
"""What a map cell can be: FrozenLake's S, F, H, G; CliffWalking's cliff; Taxi's pads."""


def returns_digest(returns: npt.ArrayLike) -> str:
    """SHA-256 (hex) over the per-episode returns as little-endian float64 bytes, in order."""
    return hashlib.sha256(np.ascontiguousarray(returns, dtype="<f8").tobytes()).hexdigest()


def fraction_of_optimum(value: float, optimum: float) -> float:
    """How much of the optimum ``value`` reaches, 1 at the optimum: ``value / optimum`` when the
    optimum is positive; when it is negative (every step costs), the ratio of costs
    ``optimum / value`` (so -26 against -13 is 0.5; a value of 0 or above counts as 1)."""
    if optimum > 0:
        return value / optimum
    if optimum < 0:
        return optimum / value if value < 0 else 1.0
    return 1.0 if value >= 0 else float("-inf")


@dataclass(frozen=True, eq=False)
class ReplayResult:
    """Per-episode results of replaying a table in the task's reference environment."""

    returns: Floats
    """(N,) each episode's undiscounted return."""
    steps: Ints
    """(N,) steps each episode took (until terminated or truncated)."""
    digest: str
    """SHA-256 identifying the returns (see :func:`returns_digest` for the toy-text tasks)."""

    @property
    def mean(self) -> float:
        return float(self.returns.mean()) if self.returns.size else float("nan")


@dataclass(frozen=True)
class Baseline:
    """A reference policy with its exact expected return."""

    name: str
    description: str
    value: float
    """Exact expected return within the horizon."""
    actions: tuple[int, ...] | None
    """Its table when it is a stationary table (None for a random policy)."""


@dataclass(frozen=True)
class GridMap:
    """A grid world's map, for drawing a table as arrows and an episode as moves."""

    rows: int
    cols: int
    cells: tuple[str, ...]
    """Row-major kind of each cell (one of :data:`CELL_KINDS`)."""
    labels: tuple[str, ...]
    """Row-major letter of each cell as the environment draws it ("" for none)."""
    walls: frozenset[tuple[int, int]]
    """Cells (row, column) with a wall on their east side."""
    positions: tuple[tuple[int, int], ...]
    """The cell (row, column) of each observation."""
    pads: tuple[tuple[int, int], ...] = ()
    """Taxi's pick-up and drop-off cells in the environment's order (its location indices)."""

    def kind(self, row: int, col: int) -> str:
        return self.cells[row * self.cols + col]

    def label(self, row: int, col: int) -> str:
        return self.labels[row * self.cols + col]


class Task(Protocol):
    """What PolicyLedger needs of a task to train, verify, rank and show its policies."""

    @property
    def task_id(self) -> str:
        """The task's identifier (a Gymnasium id)."""
        ...

    @property
    def n_observations(self) -> int: ...

    @property
    def n_actions(self) -> int: ...

    @property
    def action_names(self) -> tuple[str, ...]: ...

    @property
    def horizon(self) -> int:
        """Steps after which an episode is truncated."""
        ...

    def spec_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready identification of the task (recorded with its policies)."""
        ...

    def model(self) -> TabularModel | None:
        """The exact model over observations, when the observations are the Markov state."""
        ...

    def optimum(self) -> float:
        """Exact expected return of the optimal (time-dependent) policy."""
        ...

    def expected_return(self, actions: npt.ArrayLike) -> float:
        """Exact expected return of the stationary table ``actions[observation]``."""
        ...

    def best_stationary_value(self) -> float | None:
        """The best stationary table's value that could be found, or None when not computed."""
        ...

    def baselines(self) -> Mapping[str, Baseline]:
        """Reference policies with their exact values, by name."""
        ...

    def replay(self, actions: npt.ArrayLike, seeds: Iterable[int]) -> ReplayResult:
        """Play the table once per seed in the reference environment (reset with that seed)."""
        ...

    def grid(self) -> GridMap | None:
        """The map of a grid world, or None (the table is shown as a table)."""
        ...

    def observation_label(self, observation: int) -> str:
        """What an observation means, in a few words."""
        ...
