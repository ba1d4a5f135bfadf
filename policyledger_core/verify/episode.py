"""One episode played step by step, for watching a policy act (the replay dialog).

The episode is what :class:`CyberDefenseEnv` plays from a reset seed, so an
evaluation seed (``2**63 + i``) gives episode i of the evaluation suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
