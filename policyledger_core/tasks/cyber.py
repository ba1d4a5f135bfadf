"""The cyber-defense task as a :class:`~policyledger_core.tasks.base.Task`: the same questions the
toy-text tasks answer, asked of PolicyLedger's own simulator and one of its configurations.

Its observations are not its Markov state (the hidden attack episode goes on behind them), so it
has no :class:`~policyledger_core.tasks.model.TabularModel`: the optimum and a table's value come
from the simulator's own exact dynamic programming over the full state
(:mod:`policyledger_core.sim.optimum`), and the optimum is that of a policy that sees the state.
Replays draw each episode's randomness from ``numpy.random.default_rng(seed)``, as
``CyberDefenseEnv.reset(seed=...)`` does, so a seed plays the same episode here and there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import ENV_ID, EnvConfig
from policyledger_core.sim.optimum import expected_return, expected_return_random, solve
from policyledger_core.sim.replay import observation_decider, replay
from policyledger_core.tasks.base import Baseline, GridMap, ReplayResult, Task, returns_digest

ACTION_NAMES = tuple(name.lower() for name in dyn.ACTION_NAMES)


def _check(actions: npt.ArrayLike) -> npt.NDArray[np.int64]:
    table = np.asarray(actions, dtype=np.int64)
    if table.shape != (dyn.N_OBS,) or table.min() < 0 or table.max() >= dyn.N_ACTIONS:
        raise ValueError(f"actions: expected {dyn.N_OBS} actions 0..{dyn.N_ACTIONS - 1}")
    return table


@dataclass(frozen=True)
class CyberDefenseTask:
    """The cyber-defense task in one configuration (implements the Task protocol)."""

    config: EnvConfig

    @property
    def task_id(self) -> str:
        return ENV_ID

    @property
    def n_observations(self) -> int:
        return dyn.N_OBS

    @property
    def n_actions(self) -> int:
        return dyn.N_ACTIONS

    @property
    def action_names(self) -> tuple[str, ...]:
        return ACTION_NAMES

    @property
    def horizon(self) -> int:
        return self.config.horizon

    def spec_dict(self) -> dict[str, Any]:
        return {"env_id": ENV_ID, "config": self.config.to_dict()}

    def model(self) -> None:
        return None  # observations are not the state: see the module's docstring

    def optimum(self) -> float:
        return _solution_value(self.config)

    def expected_return(self, actions: npt.ArrayLike) -> float:
        return expected_return(self.config, _check(actions))

    def best_stationary_value(self) -> float | None:
        return None  # no search over tables is run for this task

    def baselines(self) -> dict[str, Baseline]:
        """``random`` (uniform actions), each constant action, and ``myopic`` (the best immediate
        reward for the alert seen), with their exact values."""
        out = {"random": Baseline("random", "a uniformly random action at every step",
                                  expected_return_random(self.config), None)}
        for action, name in enumerate(ACTION_NAMES):
            table = tuple([action] * dyn.N_OBS)
            out[name] = Baseline(name, f"always {name}", self.expected_return(table), table)
        myopic = _myopic_table()
        out["myopic"] = Baseline("myopic", "the best immediate reward for the alert seen",
                                 self.expected_return(myopic), myopic)
        return out

    def replay(self, actions: npt.ArrayLike, seeds: Iterable[int]) -> ReplayResult:
        table = _check(actions)
        seeds = list(seeds)
        uniforms = np.empty((len(seeds), self.config.horizon, dyn.UNIFORMS_PER_STEP))
        for i, seed in enumerate(seeds):
            uniforms[i] = dyn.draw_episode_uniforms(np.random.default_rng(seed), self.config)
        outcome = replay(self.config, uniforms, observation_decider(table))
        returns = outcome.returns
        return ReplayResult(returns, outcome.steps.astype(np.int64), returns_digest(returns))

    def grid(self) -> GridMap | None:
        return None

    def observation_label(self, observation: int) -> str:
        if not 0 <= observation < dyn.N_OBS:
            raise ValueError(f"observation: expected 0..{dyn.N_OBS - 1}, got {observation!r}")
        severity, attack, health, confidence, duration = dyn.decode_observation(observation)
        return (f"{dyn.SEVERITY_NAMES[severity].lower()} {dyn.ATTACK_NAMES[attack].lower()} alert, "
                f"{dyn.CONFIDENCE_NAMES[confidence].lower()} confidence; service "
                f"{dyn.HEALTH_NAMES[health].lower()}; {'long' if duration else 'short'} attack")


@functools.cache
def _solution_value(config: EnvConfig) -> float:
    return solve(config).value


@functools.cache
def _myopic_table() -> tuple[int, ...]:
    """The myopic action of every observation (that of its alert)."""
    myopic = dyn.myopic_actions()
    return tuple(int(myopic[dyn.alert_code(*_alert_of(obs))]) for obs in range(dyn.N_OBS))


def _alert_of(observation: int) -> tuple[int, int, int]:
    severity, attack, _health, confidence, _duration = dyn.decode_observation(observation)
    return severity, attack, confidence


if TYPE_CHECKING:
    _conforms: Task = CyberDefenseTask(EnvConfig())  # mypy holds it to the Task protocol
