"""The toy-text tasks as PolicyLedger records them: identity, sizes and action names, without
Gymnasium (the ledger and the workspace services validate entries of these tasks and must not
load it; :mod:`policyledger_core.tasks.toytext` builds their models and replays).

A task is identified by its :class:`TaskSpec`: the Gymnasium id, the keyword arguments given to
``gymnasium.make`` and the horizon (the registry's time limit where it has one, else the task's
own). Only the tasks of :data:`CATALOGUE` are known: their models are checked against
Gymnasium's by the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from policyledger_core.sim.config import ConfigError

Scalar = bool | int | float | str
Family = Literal["frozenlake", "taxi", "cliffwalking"]
MAX_HORIZON = 100_000


@dataclass(frozen=True)
class TaskSpec:
    """What identifies a toy-text task: Gymnasium id, ``make`` keyword arguments, horizon."""

    env_id: str
    kwargs: tuple[tuple[str, Scalar], ...]
    """Sorted (name, value) pairs (a tuple, so a spec is hashable)."""
    horizon: int

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ConfigError("env_id: expected a non-empty string")
        pairs = tuple(sorted((str(k), v) for k, v in self.kwargs))
        for name, value in pairs:
            if not isinstance(value, Scalar) or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"kwargs.{name}: expected a finite number, a boolean or a string")
        if len({k for k, _ in pairs}) != len(pairs):
            raise ConfigError("kwargs: a name appears twice")
        object.__setattr__(self, "kwargs", pairs)
        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
            raise ConfigError(f"horizon: expected a whole number from 1 to {MAX_HORIZON}, got {horizon!r}")

    @classmethod
    def of(cls, env_id: str, horizon: int, **kwargs: Scalar) -> TaskSpec:
        return cls(env_id, tuple(kwargs.items()), horizon)

    def kwargs_dict(self) -> dict[str, Scalar]:
        return dict(self.kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-ready form, as recorded with policies."""
        return {"env_id": self.env_id, "kwargs": self.kwargs_dict(), "horizon": self.horizon}

    @classmethod
    def from_dict(cls, data: object) -> TaskSpec:
        """Parse and validate; unknown or missing fields are errors."""
        if not isinstance(data, Mapping) or set(data) != {"env_id", "kwargs", "horizon"}:
            raise ConfigError("task: expected an object with exactly env_id, kwargs and horizon")
        if not isinstance(data["kwargs"], Mapping):
            raise ConfigError("kwargs: expected an object")
        return cls(data["env_id"], tuple(data["kwargs"].items()), data["horizon"])



@dataclass(frozen=True)
class TaskInfo:
    """What is known of a toy-text task without building it."""

    spec: TaskSpec
    title: str
    family: Family
    n_observations: int
    n_actions: int
    action_names: tuple[str, ...]

    def config_dict(self) -> dict[str, Any]:
        """What policies and entries record as the task's configuration (its id is their env_id)."""
        return {"kwargs": self.spec.kwargs_dict(), "horizon": self.spec.horizon}


FROZEN_LAKE_ACTIONS = ("left", "down", "right", "up")
TAXI_ACTIONS = ("south", "north", "east", "west", "pickup", "dropoff")
CLIFF_WALKING_ACTIONS = ("up", "right", "down", "left")

CATALOGUE: dict[str, TaskInfo] = {
    info.spec.env_id: info
    for info in (
        TaskInfo(TaskSpec.of("FrozenLake-v1", 100, map_name="4x4", is_slippery=True),
                 "FrozenLake 4x4 (slippery)", "frozenlake", 16, 4, FROZEN_LAKE_ACTIONS),
        TaskInfo(TaskSpec.of("FrozenLake8x8-v1", 200, map_name="8x8", is_slippery=True),
                 "FrozenLake 8x8 (slippery)", "frozenlake", 64, 4, FROZEN_LAKE_ACTIONS),
        # Both stochastic options off: the fickle passenger is not in P (reset and step draw it).
        TaskInfo(TaskSpec.of("Taxi-v4", 200, is_rainy=False, fickle_passenger=False),
                 "Taxi", "taxi", 500, 6, TAXI_ACTIONS),
        # The registry sets no time limit here: the task's horizon is 200.
        TaskInfo(TaskSpec.of("CliffWalking-v1", 200, is_slippery=False),
                 "CliffWalking", "cliffwalking", 48, 4, CLIFF_WALKING_ACTIONS),
    )
}
"""The known toy-text tasks, by Gymnasium id."""


def task_info(task_id: str) -> TaskInfo:
    """The task of a Gymnasium id; a clear error for an unknown one."""
    try:
        return CATALOGUE[task_id]
    except (KeyError, TypeError):
        known = ", ".join(CATALOGUE)
        raise ConfigError(f"task: unknown task {str(task_id)[:40]!r} (known: {known})") from None


def info_for_spec(data: object) -> TaskInfo:
    """The known task whose spec is ``data`` (a spec's dict form)."""
    spec = TaskSpec.from_dict(data)
    for info in CATALOGUE.values():
        if info.spec == spec:
            return info
    raise ConfigError(f"task: no known task has the specification {spec.to_dict()}")


def info_for_config(env_id: object, config: object) -> TaskInfo:
    """The known task a policy or entry names by ``env_id`` and ``config`` (its kwargs and horizon):
    both must be exactly the task's."""
    task_info(env_id if isinstance(env_id, str) else "")  # an unknown id is named first
    if not isinstance(config, Mapping) or set(config) != {"kwargs", "horizon"}:
        raise ConfigError("config: expected an object with exactly kwargs and horizon")
    return info_for_spec({"env_id": env_id, **config})
