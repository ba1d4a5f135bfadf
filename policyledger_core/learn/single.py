"""Tabular Q-learning and Double Q-learning on the cyber-defense task.

:func:`train` is a generator: it yields one small record per episode and
returns a :class:`TrainingResult`. Stopping is cooperative: pass
``should_stop`` and the run ends after the current episode, still returning
what was learned. One agent runs a plain-Python loop (fast for a single
table); a population of K agents runs the vectorised kernel in
:mod:`policyledger_core.learn.population`. Agent k of any run draws from the same
two streams whatever K is, so a single agent with seed S equals agent 0 of a
population with seed S, bit for bit.

Training streams are seeded with ``SeedSequence(seed, spawn_key=(stream, agent))``;
evaluation episodes use plain reset seeds >= 2**63, so training never sees them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from operator import add
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from policyledger_core.learn.hyper import Algorithm, Hyperparameters
from policyledger_core.policy import Policy, greedy_policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig

ENV_STREAM = 1
EXPLORE_STREAM = 2
EXPLORE_UNIFORMS = 3  # per step: explore?, random action, which table (Double Q)
UPDATE_B_FROM = 0.5
"""Double Q updates table B when the step's table uniform is at least this, else table A."""
ROLLING = 100
CHUNK_STEPS = 1 << 14  # agent-steps of uniforms drawn at once; results do not depend on it


@dataclass(frozen=True, slots=True)
class EpisodeRecord:
    """What one agent's episode reports."""

    episode: int
    ret: float
    epsilon: float
    steps: int
    rolling_mean: float
    action_counts: tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True, eq=False)
class PopulationRecord:
    """One episode of every agent of a population (arrays indexed by agent)."""

    episode: int
    returns: npt.NDArray[np.float64]
    epsilon: float
    steps: npt.NDArray[np.int64]
    rolling_mean: npt.NDArray[np.float64]
    action_counts: npt.NDArray[np.int64]

    def agent(self, k: int) -> EpisodeRecord:
        """Agent k's part as an :class:`EpisodeRecord`."""
        counts = tuple(int(c) for c in self.action_counts[k])
        return EpisodeRecord(self.episode, float(self.returns[k]), self.epsilon,
                             int(self.steps[k]), float(self.rolling_mean[k]),
                             (counts[0], counts[1], counts[2], counts[3], counts[4]))


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """Q-tables and visit counts of every agent, and what the run did."""

    config: EnvConfig
    hyper: Hyperparameters
    algorithm: Algorithm
    q: npt.NDArray[np.float64]
    """(K, 108, 5); for Double Q the sum of both tables (what the greedy policy uses)."""
    visits: npt.NDArray[np.int64]
    """(K, 108, 5) updates per (observation, action)."""
    episodes: int
    """Episodes completed per agent."""
    env_steps: int
    """Environment steps of all agents together."""
    training_reward: npt.NDArray[np.float64]
    """(K,) mean of each agent's last 100 training returns (exploration included)."""
    stopped: bool

    @property
    def agents(self) -> int:
        return int(self.q.shape[0])

    @property
    def best_agent(self) -> int:
        """The agent with the highest training reward (lowest index on ties)."""
        return int(np.argmax(self.training_reward))

    def policy(self, agent: int | None = None) -> Policy:
        """The greedy policy of one agent (default: the best by training reward)."""
        k = self.best_agent if agent is None else agent
        return greedy_policy(self.config, self.q[k], self.visits[k])


T = TypeVar("T")
StopCheck = Callable[[], bool]
Training = Generator[EpisodeRecord, None, TrainingResult]


def stream(seed: int, kind: int, agent: int) -> np.random.Generator:
    """A training stream of one agent: environment (1) or exploration (2)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(kind, agent))))


def chunk_episodes(config: EnvConfig, agents: int, budget: int = CHUNK_STEPS) -> int:
    """Episodes drawn per refill, bounding memory; any value gives identical results."""
    return max(1, budget // (config.horizon * agents))


def train(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm = "q",
          should_stop: StopCheck | None = None) -> Training:
    """Train one agent; yields an :class:`EpisodeRecord` per episode, returns the result."""
    if algorithm not in ("q", "double-q"):
        raise ValueError(f"algorithm: must be 'q' or 'double-q', got {algorithm!r}")
    return _ScalarRun(config, hyper, algorithm == "double-q").run(should_stop)


class _ScalarRun:
    """The single-agent loop, written for CPython speed (lists, local names)."""

    def __init__(self, config: EnvConfig, hyper: Hyperparameters, double: bool) -> None:
        self.config, self.hyper, self.double = config, hyper, double
        init = hyper.initial_q
        self.qa = [[init] * dyn.N_ACTIONS for _ in range(dyn.N_OBS)]
        self.qb = [[init] * dyn.N_ACTIONS for _ in range(dyn.N_OBS)]
        self.na = [[0] * dyn.N_ACTIONS for _ in range(dyn.N_OBS)]
        self.nb = [[0] * dyn.N_ACTIONS for _ in range(dyn.N_OBS)]
        self.env_rng = stream(hyper.seed, ENV_STREAM, 0)
        self.explore_rng = stream(hyper.seed, EXPLORE_STREAM, 0)
        self.alphas: list[float] = hyper.alpha_table().tolist()
        # The dynamics' step outcomes by (outcome key, action, health), as lists for fast indexing.
        self.health_out: list[int] = dyn.OUTCOME_HEALTH.tolist()
        self.tenths_mid: list[int] = dyn.OUTCOME_TENTHS.tolist()
        self.tenths_last: list[int] = dyn.OUTCOME_TENTHS_LAST.tolist()

    def run(self, should_stop: StopCheck | None) -> Training:
        cfg, hyper = self.config, self.hyper
        horizon = cfg.horizon
        chunk = chunk_episodes(cfg, 1)
        recent: deque[int] = deque(maxlen=ROLLING)
        recent_sum = 0
        episode = steps_total = 0
        stopped = False
        while hyper.episodes is None or episode < hyper.episodes:
            n = chunk if hyper.episodes is None else min(chunk, hyper.episodes - episode)
            env_u = dyn.draw_episode_uniforms(self.env_rng, cfg, n)
            codes = dyn.schedule_codes(cfg, env_u)
            bases = dyn.observation_bases(codes).tolist()
            keys = (dyn.outcome_keys(codes, env_u) * dyn.PAIRS).tolist()
            explore = self.explore_rng.random((n, horizon, EXPLORE_UNIFORMS)).tolist()
            for j in range(n):
                eps = hyper.epsilon(episode)
                tenths, steps, counts = self._episode(bases[j], keys[j], explore[j], eps)
                steps_total += steps
                if len(recent) == ROLLING:
                    recent_sum -= recent[0]
                recent.append(tenths)
                recent_sum += tenths
                yield EpisodeRecord(episode, tenths / 10.0, eps, steps,
                                    recent_sum / len(recent) / 10.0, counts)
                episode += 1
                if should_stop is not None and should_stop():
                    stopped = True
                    break
            if stopped:
                break
        return self._result(episode, steps_total, recent_sum / max(len(recent), 1) / 10.0, stopped)

    def _episode(self, bases: list[int], keys: list[int], explore: list[list[float]],
                 eps: float) -> tuple[int, int, tuple[int, int, int, int, int]]:
        """One episode; ``bases`` and ``keys`` are its steps' observation bases and outcome
        keys times PAIRS (see :mod:`policyledger_core.sim.dynamics`)."""
        qa, qb, na, nb = self.qa, self.qb, self.na, self.nb
        double = self.double
        gamma = self.hyper.discount
        alphas = self.alphas
        last_alpha = len(alphas) - 1
        health_out, tenths_mid, tenths_last = self.health_out, self.tenths_mid, self.tenths_last
        # Module constants as locals: the loop below runs once per environment step.
        n_actions, n_live, stride = dyn.N_ACTIONS, dyn.N_LIVE_HEALTH, dyn.HEALTH_STRIDE
        critical = dyn.CRITICAL
        update_b_from = UPDATE_B_FROM
        horizon = len(bases)
        counts = [0] * n_actions
        health = ret = 0
        s = bases[0]
        t = 0
        while True:
            u_explore, u_action, u_which = explore[t]
            if u_explore < eps:
                a = int(u_action * n_actions)
            elif double:
                row = list(map(add, qa[s], qb[s]))
                a = row.index(max(row))
            else:
                row = qa[s]
                a = row.index(max(row))
            counts[a] += 1
            pick = keys[t] + a * n_live + health
            health = health_out[pick]
            t += 1
            if t == horizon:
                tenths = tenths_last[pick]  # the end bonus, or the penalty of going CRITICAL
                done = True
            else:
                tenths = tenths_mid[pick]
                done = health == critical
                s2 = bases[t] + health * stride
            ret += tenths
            r = tenths / 10.0
            # Update one table with the other's estimate of its own greedy action.
            if double and u_which >= update_b_from:
                upd, other, cnt = qb, qa, nb
            else:
                upd, other, cnt = qa, qb, na
            row_u = upd[s]
            c = cnt[s][a] + 1
            cnt[s][a] = c
            alpha = alphas[c - 1] if c <= last_alpha else alphas[last_alpha]
            if done:
                target = r
            elif double:
                nxt = upd[s2]
                target = r + gamma * other[s2][nxt.index(max(nxt))]
            else:
                target = r + gamma * max(upd[s2])
            q = row_u[a]
            row_u[a] = q + alpha * (target - q)
            if done:
                return ret, t, (counts[0], counts[1], counts[2], counts[3], counts[4])
            s = s2

    def _result(self, episodes: int, steps: int, training_reward: float, stopped: bool) -> TrainingResult:
        qa = np.array(self.qa, dtype=np.float64)
        visits = np.array(self.na, dtype=np.int64)
        if self.double:
            qa = qa + np.array(self.qb, dtype=np.float64)
            visits = visits + np.array(self.nb, dtype=np.int64)
        algorithm: Algorithm = "double-q" if self.double else "q"
        return TrainingResult(self.config, self.hyper, algorithm, qa[None], visits[None], episodes,
                              steps, np.array([training_reward]), stopped)


def run_to_end(work: Generator[object, None, T]) -> T:
    """Exhaust a long-work generator (training, audit) and return its result."""
    while True:
        try:
            next(work)
        except StopIteration as done:
            result: T = done.value
            return result
