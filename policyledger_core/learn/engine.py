"""The training engine: one agent or a population, compiled and on every core, in batches.

:func:`train_agents` is what the CLI, the app and sweeps call. It yields an
:class:`EpisodeBatch` per chunk of episodes and returns a
:class:`~policyledger_core.learn.single.TrainingResult`. Two engines give the same
results bit for bit:

* ``compiled``: the numba kernel of :mod:`policyledger_core.learn.kernels`, agents split
  over threads (the kernel releases the GIL; each agent has its own streams, so the split
  never changes a result);
* ``numpy``: the reference trainers of :mod:`policyledger_core.learn.single` and
  :mod:`policyledger_core.learn.population`, used when numba is missing.

Stopping is cooperative and checked between chunks (at most about 0.1 s of work): the
result is exactly that of a run of the episodes reported.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from policyledger_core.learn.hyper import ALGORITHMS, Algorithm, Hyperparameters
from policyledger_core.learn.population import MAX_AGENTS, train_population
from policyledger_core.learn.single import (
    ENV_STREAM,
    EXPLORE_STREAM,
    ROLLING,
    UPDATE_B_FROM,
    EpisodeRecord,
    PopulationRecord,
    StopCheck,
    TrainingResult,
    stream,
    train,
)
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig

Engine = Literal["auto", "compiled", "numpy"]
ENGINES: tuple[str, ...] = ("auto", "compiled", "numpy")
CHUNK_STEPS = 1 << 20
"""Horizon steps of all agents together between two batches (and two stop checks), at most."""
FIRST_CHUNK_STEPS = 1 << 13
"""The first batch is small (it comes at once); the next ones grow towards :data:`BATCH_SECONDS`."""
BATCH_SECONDS = 0.03
"""Work per batch the engine aims at: between half this and this. A live view then gets a batch
at least every 30 ms, what its 33 ms redraws need (a band of 20-80 ms gave it 18-19 a second)."""
NUMPY_BATCH = 256
"""Episodes per batch of the numpy engine."""


@dataclass(frozen=True, eq=False)
class EpisodeBatch:
    """Consecutive episodes of every agent: arrays (episodes, agents), counts (episodes, agents, 5)."""

    first: int
    """Number of the first episode."""
    returns: npt.NDArray[np.float64]
    epsilon: npt.NDArray[np.float64]
    """(episodes,) the exploration rate of each episode."""
    steps: npt.NDArray[np.int64]
    rolling: npt.NDArray[np.float64]
    """Each agent's mean of its last 100 returns (fewer at the start)."""
    counts: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.returns.shape[0])

    @property
    def agents(self) -> int:
        return int(self.returns.shape[1])

    @property
    def episodes(self) -> npt.NDArray[np.int64]:
        return np.arange(self.first, self.first + len(self), dtype=np.int64)

    def records(self) -> list[EpisodeRecord] | list[PopulationRecord]:
        """The batch episode by episode, as the reference trainers yield them."""
        eps = self.epsilon.tolist()
        if self.agents == 1:
            counts = self.counts[:, 0, :].tolist()
            return [EpisodeRecord(self.first + j, r, eps[j], s, m, (c[0], c[1], c[2], c[3], c[4]))
                    for j, (r, s, m, c) in enumerate(zip(self.returns[:, 0].tolist(),
                                                          self.steps[:, 0].tolist(),
                                                          self.rolling[:, 0].tolist(), counts, strict=True))]
        return [PopulationRecord(self.first + j, self.returns[j], eps[j], self.steps[j], self.rolling[j],
                                 self.counts[j]) for j in range(len(self))]

    @classmethod
    def of(cls, records: Sequence[EpisodeRecord] | Sequence[PopulationRecord]) -> EpisodeBatch:
        """Consecutive records of a reference trainer as one batch."""
        eps = np.array([r.epsilon for r in records], dtype=np.float64)
        if records and isinstance(records[0], PopulationRecord):
            pop = [r for r in records if isinstance(r, PopulationRecord)]
            return cls(pop[0].episode, np.stack([r.returns for r in pop]), eps,
                       np.stack([r.steps for r in pop]), np.stack([r.rolling_mean for r in pop]),
                       np.stack([r.action_counts for r in pop]))
        single = [r for r in records if isinstance(r, EpisodeRecord)]
        first = single[0].episode if single else 0
        return cls(first, np.array([[r.ret] for r in single], dtype=np.float64).reshape(-1, 1), eps,
                   np.array([r.steps for r in single], dtype=np.int64).reshape(-1, 1),
                   np.array([r.rolling_mean for r in single], dtype=np.float64).reshape(-1, 1),
                   np.array([r.action_counts for r in single], dtype=np.int64).reshape(-1, 1, dyn.N_ACTIONS))


Training = Generator[EpisodeBatch, None, TrainingResult]


def compiled_available() -> bool:
    """Whether the compiled engine can run here (numba imports)."""
    try:
        import policyledger_core.learn.kernels  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(engine: str) -> Literal["compiled", "numpy"]:
    """The engine ``engine`` names (``auto``: compiled when numba is there)."""
    if engine == "auto":
        return "compiled" if compiled_available() else "numpy"
    if engine == "compiled":
        if not compiled_available():
            raise ValueError("engine 'compiled' needs numba: pip install numba")
        return "compiled"
    if engine == "numpy":
        return "numpy"
    raise ValueError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")


def prepare(should_stop: StopCheck | None = None) -> Generator[str, None, float]:
    """Compile the compiled engine's kernel, or load it from the disk cache; yields "compiling"
    first when it has to compile (once after install). Returns the seconds it took (0 without numba)."""
    if resolve("auto") != "compiled":
        return 0.0
    from policyledger_core.learn import kernels

    if needs_compiling():
        yield "compiling"
    return kernels.warm()


def needs_compiling() -> bool:
    """Whether the next run compiles the kernel (the compiled engine, not yet in this process nor
    in the disk cache): the first run after install."""
    if resolve("auto") != "compiled":
        return False
    from policyledger_core.learn import kernels

    return not kernels.compiled() and not kernels.cached_on_disk()


def train_agents(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                 should_stop: StopCheck | None = None, engine: Engine = "auto",
                 workers: int | None = None) -> Training:
    """Train ``agents`` agents (1: a single agent); yields :class:`EpisodeBatch` es.

    ``workers``: threads for a population (default: every core); results never depend on it.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: must be 'q' or 'double-q', got {algorithm!r}")
    if isinstance(agents, bool) or not isinstance(agents, int) or not 1 <= agents <= MAX_AGENTS:
        raise ValueError(f"agents: expected a whole number from 1 to {MAX_AGENTS}, got {agents!r}")
    if resolve(engine) == "numpy":
        return _numpy_batches(config, hyper, algorithm, agents, should_stop)
    return _CompiledRun(config, hyper, algorithm, agents, workers).run(should_stop)


def _numpy_batches(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                   should_stop: StopCheck | None) -> Training:
    gen: Generator[Any, None, TrainingResult] = (
        train(config, hyper, algorithm, should_stop) if agents == 1
        else train_population(config, hyper, agents, algorithm, should_stop))
    pending: list[Any] = []
    while True:
        try:
            pending.append(next(gen))
        except StopIteration as done:
            if pending:
                yield EpisodeBatch.of(pending)
            result: TrainingResult = done.value
            return result
        if len(pending) == NUMPY_BATCH:
            yield EpisodeBatch.of(pending)
            pending = []


class _CompiledRun:
    def __init__(self, config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                 workers: int | None) -> None:
        from policyledger_core.learn.kernels import Streams, Task

        self.config, self.hyper, self.algorithm, self.k = config, hyper, algorithm, agents
        self.double = algorithm == "double-q"
        self.task = Task(config, hyper.alpha_table(), self.double, hyper.discount, UPDATE_B_FROM)
        shape = (agents, dyn.N_OBS, dyn.N_ACTIONS)
        self.qa = np.full(shape, hyper.initial_q, dtype=np.float64)
        self.na = np.zeros(shape, dtype=np.int64)
        self.qb = np.full(shape, hyper.initial_q, dtype=np.float64) if self.double else self.qa
        self.nb = np.zeros(shape, dtype=np.int64) if self.double else self.na
        self.env = Streams([stream(hyper.seed, ENV_STREAM, k) for k in range(agents)])
        self.explore = Streams([stream(hyper.seed, EXPLORE_STREAM, k) for k in range(agents)])
        self.workers = max(1, min(workers or os.cpu_count() or 1, agents))
        self.episode_steps = config.horizon * agents

    def run(self, should_stop: StopCheck | None) -> Training:
        hyper, k = self.hyper, self.k
        history = np.zeros((k, 0), dtype=np.int64)  # the last 100 returns in tenths, for the means of 100
        episode = steps_total = 0
        stopped = False
        budget = min(FIRST_CHUNK_STEPS, CHUNK_STEPS)
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="policyledger-train") \
            if self.workers > 1 else None
        try:
            while not stopped and (hyper.episodes is None or episode < hyper.episodes):
                chunk = max(1, budget // self.episode_steps)
                n = chunk if hyper.episodes is None else min(chunk, hyper.episodes - episode)
                started = time.perf_counter()
                eps = np.array([hyper.epsilon(e) for e in range(episode, episode + n)], dtype=np.float64)
                tenths = np.empty((k, n), dtype=np.int64)
                steps = np.empty((k, n), dtype=np.int64)
                counts = np.empty((k, n, dyn.N_ACTIONS), dtype=np.int64)
                ranges = np.array_split(np.arange(k), self.workers)
                if pool is None:
                    self._agents(ranges[0], eps, tenths, steps, counts)
                else:
                    for done in [pool.submit(self._agents, r, eps, tenths, steps, counts) for r in ranges]:
                        done.result()
                # Batches of about BATCH_SECONDS of work: a live view gets a steady stream, a stop
                # is heard soon; the size never changes a result.
                took = time.perf_counter() - started
                if took < BATCH_SECONDS / 2:
                    budget = min(2 * budget, CHUNK_STEPS)
                elif took > BATCH_SECONDS:
                    budget = max(budget // 2, FIRST_CHUNK_STEPS)
                rolling, history = _rolling(history, tenths)
                steps_total += int(steps.sum())
                yield EpisodeBatch(episode, (tenths / 10.0).T.copy(), eps, steps.T.copy(), rolling.T.copy(),
                                   counts.transpose(1, 0, 2).copy())
                episode += n
                if should_stop is not None and should_stop():
                    stopped = True
        finally:
            if pool is not None:
                pool.shutdown()
        count = max(history.shape[1], 1)
        training_reward = history.sum(axis=1) / count / 10.0
        return self._result(episode, steps_total, training_reward, stopped)

    def _agents(self, agents: npt.NDArray[np.int64], eps: npt.NDArray[np.float64],
                tenths: npt.NDArray[np.int64], steps: npt.NDArray[np.int64],
                counts: npt.NDArray[np.int64]) -> None:
        """Train a contiguous range of agents for the chunk's episodes (one thread's share)."""
        if len(agents):
            self.task.run(int(agents[0]), int(agents[-1]) + 1, self.env, self.explore, eps,
                          self.qa, self.qb, self.na, self.nb, tenths, steps, counts)

    def _result(self, episodes: int, steps: int, training_reward: npt.NDArray[np.float64],
                stopped: bool) -> TrainingResult:
        q, visits = self.qa.copy(), self.na.copy()
        if self.double:
            q = q + self.qb
            visits = visits + self.nb
        return TrainingResult(self.config, self.hyper, self.algorithm, q, visits, episodes, steps,
                              training_reward, stopped)


def _rolling(history: npt.NDArray[np.int64], tenths: npt.NDArray[np.int64]
             ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Each episode's mean of the last 100 returns (as the reference trainers compute it: an
    exact integer sum of tenths, divided by the count, then by 10), and the new history."""
    m, n = history.shape[1], tenths.shape[1]
    joined = np.concatenate([history, tenths], axis=1)
    sums = np.zeros((joined.shape[0], joined.shape[1] + 1), dtype=np.int64)
    np.cumsum(joined, axis=1, out=sums[:, 1:])
    end = np.arange(m + 1, m + n + 1)
    start = np.maximum(end - ROLLING, 0)
    rolling = (sums[:, end] - sums[:, start]) / (end - start) / 10.0
    return rolling, joined[:, -ROLLING:]
