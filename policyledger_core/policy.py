"""Greedy policies: an action for each of the 108 observations, identified by a SHA-256.

A policy's canonical JSON holds the schema and version, the environment id,
the full environment configuration and the action table, and nothing about
training, so the same behaviour on the same environment has the same hash.

Rules that keep that promise:

* an observation the agent never updated gets the myopic action (best
  immediate reward for its severity, attack type and confidence);
* observations with health CRITICAL are terminal and never acted on: their
  entry is always the myopic action, whatever a file says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from policyledger_core.canonical import canonical_bytes, field_problem, load_json_strict, sha256_hex
from policyledger_core.errors import Rejected
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import ENV_ID, ConfigError, EnvConfig
from policyledger_core.tasks.spec import CATALOGUE, TaskInfo, info_for_config

SCHEMA = "policyledger/policy"
SCHEMA_VERSION = 1
MAX_POLICY_BYTES = 64 * 1024


class PolicyError(Rejected, ValueError):
    """A policy that cannot be accepted; the message says which field and why."""


def _myopic_by_observation() -> tuple[int, ...]:
    myopic = dyn.myopic_actions()
    out = []
    for obs in range(dyn.N_OBS):
        severity, attack, _, confidence, _ = dyn.decode_observation(obs)
        out.append(int(myopic[dyn.alert_code(severity, attack, confidence)]))
    return tuple(out)


MYOPIC_ACTIONS = _myopic_by_observation()
"""The myopic action of every observation index."""
TERMINAL_OBSERVATIONS = frozenset(
    obs for obs in range(dyn.N_OBS) if dyn.decode_observation(obs)[2] == dyn.CRITICAL
)


def _document(data: object) -> Mapping[str, Any]:
    """The checks every policy document passes whatever its task: an object with exactly the
    schema's fields, this schema and version, a string env_id."""
    if not isinstance(data, Mapping):
        raise PolicyError("policy: expected a JSON object")
    problem = field_problem("policy", data, {"schema", "version", "env_id", "config", "actions"})
    if problem is not None:
        raise PolicyError(problem)
    if data["schema"] != SCHEMA:
        raise PolicyError(f"schema: expected {SCHEMA!r}, got {data['schema']!r}")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version != SCHEMA_VERSION:
        raise PolicyError(f"version: unsupported policy version {version!r}")
    if not isinstance(data["env_id"], str):
        raise PolicyError("env_id: expected a string")
    return data


def _check_actions(actions: object, n_observations: int, n_actions: int) -> None:
    """An action table's shape and values, as either kind of policy requires them."""
    if not isinstance(actions, list | tuple) or len(actions) != n_observations:
        raise PolicyError(f"actions: expected a list of {n_observations} actions")
    for i, a in enumerate(actions):
        if isinstance(a, bool) or not isinstance(a, int | np.integer) or not 0 <= a < n_actions:
            raise PolicyError(f"actions[{i}]: expected an action 0..{n_actions - 1}, got {a!r}")


class _Identified:
    """What both kinds of policy share: the canonical bytes (set once validated), whose SHA-256 is
    the policy's identity, and the action table."""

    _bytes: bytes
    actions: tuple[int, ...]

    def canonical_bytes(self) -> bytes:
        """The bytes whose SHA-256 is this policy's identity."""
        return self._bytes

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical bytes."""
        return sha256_hex(self._bytes)

    def action_array(self) -> npt.NDArray[np.int64]:
        """The action table as a numpy array (one action per observation)."""
        return np.array(self.actions, dtype=np.int64)


@dataclass(frozen=True)
class Policy(_Identified):
    """A deterministic policy: ``actions[observation]`` for every observation index."""

    config: EnvConfig
    actions: tuple[int, ...]
    env_id: str = ENV_ID
    _bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.env_id != ENV_ID:
            known = ", ".join((ENV_ID, *CATALOGUE))
            raise PolicyError(f"env_id: unknown environment {self.env_id!r} (known: {known})")
        actions = self.actions
        _check_actions(actions, dyn.N_OBS, dyn.N_ACTIONS)
        fixed = tuple(MYOPIC_ACTIONS[i] if i in TERMINAL_OBSERVATIONS else int(a)
                      for i, a in enumerate(actions))
        object.__setattr__(self, "actions", fixed)
        object.__setattr__(self, "_bytes", canonical_bytes(self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-ready form."""
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "env_id": self.env_id,
                "config": self.config.to_dict(), "actions": list(self.actions)}

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Validate a parsed policy document; never evaluates anything from it."""
        data = _document(data)
        try:
            config = EnvConfig.from_dict(data["config"])
        except ConfigError as exc:
            text = str(exc)
            raise PolicyError(text if text.startswith("config") else f"config.{text}") from None
        if not isinstance(data["actions"], list):
            raise PolicyError(f"actions: expected a list of {dyn.N_OBS} actions")
        return cls(config=config, actions=tuple(data["actions"]), env_id=data["env_id"])

    @classmethod
    def from_json(cls, data: bytes) -> Policy:
        """Parse and validate a policy file's bytes."""
        try:
            return cls.from_dict(load_json_strict(data, max_bytes=MAX_POLICY_BYTES, max_depth=4))
        except ValueError as exc:
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError(f"policy file: {exc}") from None


def greedy_policy(config: EnvConfig, q: npt.NDArray[np.float64],
                  visits: npt.NDArray[np.int64]) -> Policy:
    """The greedy policy of a Q-table (108, 5): argmax, lowest action on ties.

    Observations never updated fall back to the myopic action (module docstring).
    """
    if q.shape != (dyn.N_OBS, dyn.N_ACTIONS) or visits.shape != q.shape:
        raise ValueError(f"q and visits: expected shape (108, 5), got {q.shape} and {visits.shape}")
    greedy = np.argmax(q, axis=1)
    seen = visits.sum(axis=1) > 0
    actions = np.where(seen, greedy, np.array(MYOPIC_ACTIONS))
    return Policy(config=config, actions=tuple(int(a) for a in actions))


@dataclass(frozen=True)
class TaskPolicy(_Identified):
    """A deterministic table for a toy-text task: ``actions[observation]``, identified like a
    :class:`Policy` by the SHA-256 of its canonical JSON (schema, version, the task's Gymnasium id
    as ``env_id``, its configuration: ``make`` keyword arguments and horizon, the actions)."""

    task: TaskInfo
    actions: tuple[int, ...]
    _bytes: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_actions(self.actions, self.task.n_observations, self.task.n_actions)
        object.__setattr__(self, "actions", tuple(int(a) for a in self.actions))
        object.__setattr__(self, "_bytes", canonical_bytes(self.to_dict()))

    @property
    def env_id(self) -> str:
        return self.task.spec.env_id

    @property
    def config(self) -> dict[str, Any]:
        """The task's configuration as recorded (``make`` keyword arguments and horizon)."""
        return self.task.config_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "env_id": self.env_id,
                "config": self.config, "actions": list(self.actions)}


AnyPolicy = Policy | TaskPolicy
"""A policy of the cyber-defense task or of a toy-text task."""


def config_dict(config: EnvConfig | TaskInfo) -> dict[str, Any]:
    """A configuration as JSON-ready data (a toy-text task's: its id, ``make`` arguments, horizon)."""
    return config.spec.to_dict() if isinstance(config, TaskInfo) else config.to_dict()


def configuration(policy: AnyPolicy) -> EnvConfig | TaskInfo:
    """What a policy plays, as an entry records it: the cyber-defense configuration, or the task."""
    return policy.config if isinstance(policy, Policy) else policy.task


def policy_from_dict(data: object) -> AnyPolicy:
    """Validate a parsed policy document of any task (dispatched on its ``env_id``)."""
    if isinstance(data, Mapping) and isinstance(data.get("env_id"), str) and data["env_id"] in CATALOGUE:
        data = _document(data)
        try:
            task = info_for_config(data["env_id"], data["config"])
        except ConfigError as exc:
            raise PolicyError(str(exc)) from None
        if not isinstance(data["actions"], list):
            raise PolicyError(f"actions: expected a list of {task.n_observations} actions")
        return TaskPolicy(task, tuple(data["actions"]))
    return Policy.from_dict(data)


def policy_from_json(data: bytes) -> AnyPolicy:
    """Parse and validate a policy file's bytes (any task)."""
    try:
        return policy_from_dict(load_json_strict(data, max_bytes=MAX_POLICY_BYTES, max_depth=4))
    except ValueError as exc:
        if isinstance(exc, PolicyError):
            raise
        raise PolicyError(f"policy file: {exc}") from None
