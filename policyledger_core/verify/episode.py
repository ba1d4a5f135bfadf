"""One episode played step by step, for watching a policy act (the replay dialog).

The episode is what :class:`CyberDefenseEnv` plays from a reset seed, so an
evaluation seed (``2**63 + i``) gives episode i of the evaluation suite.

A toy-text task's episode (:func:`play_task_episode`) is played in Gymnasium's own environment
(``gymnasium.make`` with the task's arguments and time limit, reset with the seed), exactly as
:func:`~policyledger_core.verify.tasks.verify_task` replays episode i of the suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from policyledger_core.sim.config import EnvConfig
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.verify.suite import EVAL_SEED_BASE


def evaluation_seed(offset: int) -> int:
    """The reset seed of evaluation episode ``offset`` (a suite of N episodes is offsets 0 .. N - 1)."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset: expected an integer >= 0, got {offset!r}")
    return EVAL_SEED_BASE + offset


@dataclass(frozen=True)
class StepRecord:
    """One step of an episode as the environment played it."""

    step: int
    info: dict[str, Any]
    """The environment's info when the action was chosen (severity, attack_type, confidence, health)."""
    health_after: int
    action: int
    reward_tenths: int
    cumulative_tenths: int

    @property
    def reward(self) -> float:
        return self.reward_tenths / 10.0

    @property
    def cumulative(self) -> float:
        return self.cumulative_tenths / 10.0


class EpisodeTrack:
    """One episode of :class:`CyberDefenseEnv` played by an observation-indexed action table."""

    def __init__(self, config: EnvConfig, actions: Sequence[int], seed: int) -> None:
        self.env = CyberDefenseEnv(config=config)
        self.actions = tuple(int(a) for a in actions)
        self.seed = seed
        self.obs, self.info = self.env.reset(seed=seed)
        self.records: list[StepRecord] = []
        self.total_tenths = 0
        self.done = False

    def step(self) -> StepRecord | None:
        """Take the table's action for the current observation; None once the episode has ended."""
        if self.done:
            return None
        action = self.actions[self.obs]
        before = self.info
        self.obs, _reward, terminated, truncated, self.info = self.env.step(action)
        tenths = int(self.info["reward_tenths"])
        self.total_tenths += tenths
        self.done = bool(terminated or truncated)
        record = StepRecord(len(self.records) + 1, before, int(self.info["health"]), action, tenths,
                            self.total_tenths)
        self.records.append(record)
        return record

    def run(self) -> list[StepRecord]:
        """Play the rest of the episode; returns every record so far."""
        while self.step() is not None:
            pass
        return self.records

    @property
    def total(self) -> float:
        """The return so far."""
        return self.total_tenths / 10.0


@dataclass(frozen=True)
class TaskStep:
    """One step of a toy-text task's episode, as Gymnasium's environment played it."""

    step: int
    """1 for the first step."""
    observation: int
    """The observation the action was chosen on."""
    action: int
    reward: float
    next_observation: int
    terminated: bool
    truncated: bool
    cumulative: float
    """The return up to and including this step."""


@dataclass(frozen=True)
class TaskEpisode:
    """A whole episode of a toy-text task played by a table: where it started, then every step."""

    env_id: str
    seed: int
    start: int
    """The observation the reset gave."""
    steps: tuple[TaskStep, ...]

    @property
    def total(self) -> float:
        """The episode's return."""
        return self.steps[-1].cumulative if self.steps else 0.0

    def observations(self, upto: int) -> list[int]:
        """The observations visited after ``upto`` steps, the start first (``upto + 1`` of them)."""
        return [self.start, *(s.next_observation for s in self.steps[:upto])]

    @property
    def ending(self) -> str:
        """How the episode ended: "terminated", "truncated" (the time limit) or "" (no steps)."""
        if not self.steps:
            return ""
        return "terminated" if self.steps[-1].terminated else "truncated"


def play_task_episode(env_id: str, actions: Sequence[int], seed: int) -> TaskEpisode:
    """Play the table ``actions[observation]`` for one episode of the toy-text task ``env_id`` in
    Gymnasium's environment reset with ``seed``, to termination or truncation."""
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium's task: loaded when played

    task = toy_text_task(env_id)
    table = [int(a) for a in actions]
    if len(table) != task.n_observations:
        raise ValueError(f"actions: expected {task.n_observations} actions, got {len(table)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected a whole number >= 0, got {seed!r}")
    env = task.make()
    steps: list[TaskStep] = []
    try:
        obs, _ = env.reset(seed=int(seed))
        start, total, done = int(obs), 0.0, False
        while not done:
            before, action = int(obs), table[int(obs)]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            steps.append(TaskStep(len(steps) + 1, before, action, float(reward), int(obs), bool(terminated),
                                  bool(truncated), total))
            done = bool(terminated or truncated)
    finally:
        env.close()
    return TaskEpisode(task.task_id, int(seed), start, tuple(steps))
