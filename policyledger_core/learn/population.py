"""Population training: K independent tabular agents stepped together with numpy.

Each agent k draws from the same two streams as a single agent would (see
:mod:`policyledger_core.learn.single`), and its arithmetic is the same operation
for operation, so agent k of any population equals the single agent trained
with seed stream k. Agents whose episode ended early wait (their updates are
multiplied by zero) until every agent has finished the episode.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import numpy.typing as npt

from policyledger_core.learn.hyper import Algorithm, Hyperparameters
from policyledger_core.learn.single import (
    ENV_STREAM,
    EXPLORE_STREAM,
    EXPLORE_UNIFORMS,
    ROLLING,
    UPDATE_B_FROM,
    PopulationRecord,
    StopCheck,
    TrainingResult,
    chunk_episodes,
    stream,
)
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig

PopulationTraining = Generator[PopulationRecord, None, TrainingResult]
MAX_AGENTS = 65536
_TABLE = dyn.N_OBS * dyn.N_ACTIONS


class _ChunkOutcomes:
    """What a chunk of episodes holds that does not depend on the agents' choices.

    Arrays are laid out (episode, step, agent): the observation base (alert
    and duration; add health * HEALTH_STRIDE) and the step's outcome key (see
    :func:`policyledger_core.sim.dynamics.outcome_keys`), pre-multiplied by the
    number of (action, health) pairs.
    """

    def __init__(self, config: EnvConfig, env_rngs: list[np.random.Generator],
                 explore_rngs: list[np.random.Generator], episodes: int) -> None:
        horizon, agents = config.horizon, len(env_rngs)
        # Drawn (agent, episode, step, ...) straight into place: each agent's stream in order.
        env_u = np.empty((agents, episodes, horizon, dyn.UNIFORMS_PER_STEP))
        explore = np.empty((agents, episodes, horizon, EXPLORE_UNIFORMS))
        for k in range(agents):
            env_rngs[k].random(out=env_u[k])
            explore_rngs[k].random(out=explore[k])
        codes = dyn.schedule_codes(config, env_u)
        # One step past the horizon (never used as a state) keeps the loop free of a bounds test.
        obs_base = np.zeros((*codes.shape[:-1], horizon + 1), dtype=np.int64)
        obs_base[..., :horizon] = dyn.observation_bases(codes)
        # Stored (episode, step, agent): a step's values for all agents are contiguous.
        self.obs_base = _steps_major(obs_base)
        self.key = _steps_major(dyn.outcome_keys(codes, env_u) * dyn.PAIRS)
        self.explore = _steps_major(explore[..., 0])
        self.random_action = _steps_major((explore[..., 1] * dyn.N_ACTIONS).astype(np.int64))
        self.use_b = _steps_major(explore[..., 2] >= UPDATE_B_FROM)


def _steps_major(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(agent, episode, step) -> contiguous (episode, step, agent)."""
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def train_population(config: EnvConfig, hyper: Hyperparameters, agents: int,
                     algorithm: Algorithm = "q",
                     should_stop: StopCheck | None = None) -> PopulationTraining:
    """Train ``agents`` agents; yields a :class:`PopulationRecord` per episode."""
    if algorithm not in ("q", "double-q"):
        raise ValueError(f"algorithm: must be 'q' or 'double-q', got {algorithm!r}")
    if isinstance(agents, bool) or not isinstance(agents, int) or not 1 <= agents <= MAX_AGENTS:
        raise ValueError(f"agents: expected a whole number from 1 to {MAX_AGENTS}, got {agents!r}")
    return _PopulationRun(config, hyper, agents, algorithm == "double-q").run(should_stop)


class _PopulationRun:
    def __init__(self, config: EnvConfig, hyper: Hyperparameters, agents: int, double: bool) -> None:
        self.config, self.hyper, self.k, self.double = config, hyper, agents, double
        tables = 2 if double else 1
        # Flat (table, agent, obs, action) arrays so one fancy index reaches any cell.
        self.q = np.full(tables * agents * _TABLE, hyper.initial_q, dtype=np.float64)
        self.n = np.zeros(tables * agents * _TABLE, dtype=np.int64)
        self.env_rngs = [stream(hyper.seed, ENV_STREAM, k) for k in range(agents)]
        self.explore_rngs = [stream(hyper.seed, EXPLORE_STREAM, k) for k in range(agents)]
        self.alphas = hyper.alpha_table()
        self.agent_offset = np.arange(agents, dtype=np.int64) * _TABLE
        self.table_offset = agents * _TABLE

    def run(self, should_stop: StopCheck | None) -> PopulationTraining:
        cfg, hyper, k = self.config, self.hyper, self.k
        chunk = chunk_episodes(cfg, k, budget=1 << 19)
        window = np.zeros((k, ROLLING), dtype=np.int64)
        window_sum = np.zeros(k, dtype=np.int64)
        episode = steps_total = 0
        stopped = False
        while not stopped and (hyper.episodes is None or episode < hyper.episodes):
            n = chunk if hyper.episodes is None else min(chunk, hyper.episodes - episode)
            outcomes = _ChunkOutcomes(cfg, self.env_rngs, self.explore_rngs, n)
            for j in range(n):
                eps = hyper.epsilon(episode)
                tenths, steps, counts = self._episode(outcomes, j, eps)
                steps_total += int(steps.sum())
                slot = episode % ROLLING
                window_sum += tenths - window[:, slot]
                window[:, slot] = tenths
                filled = min(episode + 1, ROLLING)
                yield PopulationRecord(episode, tenths / 10.0, eps, steps,
                                       window_sum / filled / 10.0, counts)
                episode += 1
                if should_stop is not None and should_stop():
                    stopped = True
                    break
        filled = max(min(episode, ROLLING), 1)
        return self._result(episode, steps_total, window_sum / filled / 10.0, stopped)

    def _episode(self, chunk: _ChunkOutcomes, j: int, eps: float
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        # Written for numpy's per-call overhead: every array is a contiguous (agents,)
        # vector, and each value computed once is reused (the next state's row is
        # this step's bootstrap row).
        k, horizon, double = self.k, self.config.horizon, self.double
        q, cnt, alphas = self.q, self.n, self.alphas
        q_rows = q.reshape(-1, dyn.N_ACTIONS)
        last = len(alphas) - 1
        constant_alpha = float(alphas[0]) if last == 0 else None
        gamma = self.hyper.discount
        obs_base, key = chunk.obs_base[j], chunk.key[j]
        explore = chunk.explore[j] < eps
        random_action, use_b = chunk.random_action[j], chunk.use_b[j]
        row_a = self.agent_offset // dyn.N_ACTIONS
        table_rows = self.table_offset // dyn.N_ACTIONS
        health = np.zeros(k, dtype=np.int64)
        alive = np.ones(k, dtype=bool)
        ret = np.zeros(k, dtype=np.int64)
        actions = np.zeros((horizon, k), dtype=np.int64)
        acted = np.zeros((horizon, k), dtype=bool)
        row = row_a + obs_base[0]
        for t in range(horizon):
            rows = q_rows.take(row, axis=0)
            if double:
                rows += q_rows.take(row + table_rows, axis=0)
            action = np.where(explore[t], random_action[t], rows.argmax(axis=1))
            # An agent that already finished (health CRITICAL) may point past its
            # pair; what it reads is ignored, clipping only keeps the index valid.
            pick = key[t] + action * dyn.N_LIVE_HEALTH + health
            final = t == horizon - 1
            tenths = (dyn.OUTCOME_TENTHS_LAST if final else dyn.OUTCOME_TENTHS).take(pick, mode="clip")
            health = dyn.OUTCOME_HEALTH.take(pick, mode="clip")
            row_next = row_a + obs_base[t + 1] + health * dyn.HEALTH_STRIDE
            if double:
                # One table learns, judged by the other at its own greedy action.
                shift = np.where(use_b[t], table_rows, 0)
                learner = row + shift
                greedy_next = q_rows.take(row_next + shift, axis=0).argmax(axis=1)
                bootstrap = q.take((row_next + (table_rows - shift)) * dyn.N_ACTIONS + greedy_next)
            else:
                learner = row
                # max over a contiguous leading axis is several times faster than axis=1.
                bootstrap = np.ascontiguousarray(q_rows.take(row_next, axis=0).T).max(axis=0)
            reward = tenths / 10.0
            if final:
                target = reward
            else:
                done = health == dyn.CRITICAL
                target = np.where(done, reward, reward + gamma * bootstrap)
            idx = learner * dyn.N_ACTIONS + action
            c = cnt.take(idx) + alive
            cnt[idx] = c
            if constant_alpha is None:
                # A finished agent has c == 0 and reads alphas[-1]; alive zeroes its step.
                alpha = alphas.take(np.minimum(c - 1, last)) * alive
            else:
                alpha = alive * constant_alpha
            old = q.take(idx)
            q[idx] = old + alpha * (target - old)
            actions[t] = action
            acted[t] = alive
            ret += tenths * alive
            if final:
                break
            alive &= ~done
            if not alive.any():
                break
            row = row_next
        counts = np.bincount((np.arange(k) * dyn.N_ACTIONS + actions)[acted],
                             minlength=k * dyn.N_ACTIONS).reshape(k, dyn.N_ACTIONS)
        return ret, acted.sum(axis=0), counts.astype(np.int64)

    def _result(self, episodes: int, steps: int, training_reward: npt.NDArray[np.float64],
                stopped: bool) -> TrainingResult:
        k = self.k
        shape = (k, dyn.N_OBS, dyn.N_ACTIONS)
        q = self.q[: k * _TABLE].reshape(shape).copy()
        visits = self.n[: k * _TABLE].reshape(shape).copy()
        if self.double:
            q = q + self.q[k * _TABLE:].reshape(shape)
            visits = visits + self.n[k * _TABLE:].reshape(shape)
        algorithm: Algorithm = "double-q" if self.double else "q"
        return TrainingResult(self.config, self.hyper, algorithm, q, visits, episodes, steps,
                              training_reward, stopped)
