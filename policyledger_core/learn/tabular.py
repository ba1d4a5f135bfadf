"""Q-learning and Double Q-learning over an exact tabular model, in a compiled kernel (numba).

The kernel simulates the model itself: each step draws one uniform from the environment
stream and takes the first outcome of (state, action) whose running probability sum exceeds
it, as Gymnasium's toy-text environments do; each episode starts from the model's initial
distribution drawn the same way, and is truncated after ``horizon`` steps (bootstrapping on
truncation, stopping on termination). Exploration is epsilon-greedy with epsilon
``max(end, start * decay**episode)``; greedy choices take the lowest action on ties.

Deterministic for a seed: the environment and exploration streams are numpy PCG64
generators seeded with ``SeedSequence(seed, spawn_key=(stream, 0))``, drawn inside the
kernel through numpy's own C function; running in chunks changes nothing. Per step the
environment stream gives one uniform (the outcome; one more at each reset), the exploration
stream one (explore?), one more when exploring (the action) and, for Double Q, one (which
table learns).

Compiled on first use and cached on disk, like :mod:`policyledger_core.learn.kernels`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from policyledger_core.learn.hyper import ALGORITHMS, Algorithm, Hyperparameters
from policyledger_core.learn.kernels import Streams, _next_double
from policyledger_core.learn.single import ENV_STREAM, EXPLORE_STREAM, stream
from policyledger_core.tasks.model import TabularModel, check_table, greedy

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

CHUNK_STEPS = 1 << 20
"""Environment steps (at most) per kernel call, so a stop request is seen soon; results do
not depend on it."""


@njit(cache=True, nogil=True)
def _first_above(cumulative: Floats, lo: int, hi: int, u: float) -> int:  # pragma: no cover - compiled
    """The first index in [lo, hi) whose running sum exceeds ``u`` (the last when none does,
    which only rounding can cause): Gymnasium's ``categorical_sample`` on one (state, action)."""
    k = lo
    while k < hi - 1 and cumulative[k] <= u:
        k += 1
    return k


@njit(cache=True, nogil=True)
def _train(next_double: int, env: int, explore: int, offsets: Ints, cumulative: Floats, next_states: Ints,
           rewards: Floats, terminated: Bools, initial_cumulative: Floats, n_actions: int, horizon: int,
           eps: Floats, alphas: Floats, gamma: float, double: bool, qa: Floats, qb: Floats, na: Ints,
           nb: Ints, out_returns: Floats, out_steps: Ints) -> None:  # pragma: no cover - compiled
    """Train ``len(eps)`` episodes (epsilon ``eps[e]``), updating ``qa``/``na`` (and ``qb``/``nb``
    for Double Q) in place; writes each episode's return and steps."""
    last_alpha = alphas.size - 1
    last_state = initial_cumulative.size - 1
    for e in range(eps.size):
        epsilon = eps[e]
        # The first state whose running sum exceeds the uniform (Gymnasium's categorical_sample).
        s = min(np.searchsorted(initial_cumulative, _next_double(next_double, env), side="right"), last_state)
        ret = 0.0
        t = 0
        while t < horizon:
            a = 0
            if _next_double(next_double, explore) < epsilon:
                a = min(int(_next_double(next_double, explore) * n_actions), n_actions - 1)
            elif double:
                best = qa[s, 0] + qb[s, 0]
                for i in range(1, n_actions):
                    v = qa[s, i] + qb[s, i]
                    if v > best:
                        best, a = v, i
            else:
                best = qa[s, 0]
                for i in range(1, n_actions):
                    if qa[s, i] > best:
                        best, a = qa[s, i], i
            pair = s * n_actions + a
            k = _first_above(cumulative, offsets[pair], offsets[pair + 1], _next_double(next_double, env))
            s2, r, done = next_states[k], rewards[k], terminated[k]
            ret += r
            t += 1
            # Double Q: one table learns, judged by the other at its own greedy action.
            if double and _next_double(next_double, explore) >= 0.5:
                upd, other, cnt = qb, qa, nb
            else:
                upd, other, cnt = qa, qb, na
            c = cnt[s, a] + 1
            cnt[s, a] = c
            alpha = alphas[c - 1] if c <= last_alpha else alphas[last_alpha]
            if done:
                target = r
            else:
                nxt = 0
                top = upd[s2, 0]
                for i in range(1, n_actions):
                    if upd[s2, i] > top:
                        top, nxt = upd[s2, i], i
                # A truncation is not an end: the value after it still counts.
                target = r + gamma * (other[s2, nxt] if double else top)
            upd[s, a] += alpha * (target - upd[s, a])
            if done:
                break
            s = s2
        out_returns[e] = ret
        out_steps[e] = t


@njit(cache=True, nogil=True)
def _simulate(next_double: int, env: int, offsets: Ints, cumulative: Floats, next_states: Ints,
              rewards: Floats, terminated: Bools, initial_cumulative: Floats, n_actions: int, horizon: int,
              table: Ints, out_returns: Floats, out_steps: Ints, outcome_counts: Ints,
              initial_counts: Ints) -> None:  # pragma: no cover - compiled
    """Play the table on ``out_returns.size`` episodes, drawing exactly as :func:`_train` does;
    counts each outcome drawn and each initial state."""
    last_state = initial_cumulative.size - 1
    for e in range(out_returns.size):
        s = min(np.searchsorted(initial_cumulative, _next_double(next_double, env), side="right"), last_state)
        initial_counts[s] += 1
        ret = 0.0
        t = 0
        while t < horizon:
            pair = s * n_actions + table[s]
            k = _first_above(cumulative, offsets[pair], offsets[pair + 1], _next_double(next_double, env))
            outcome_counts[k] += 1
            ret += rewards[k]
            t += 1
            if terminated[k]:
                break
            s = next_states[k]
        out_returns[e] = ret
        out_steps[e] = t


@dataclass(frozen=True, eq=False)
class Simulation:
    """Episodes of a fixed table played by the kernel's own sampling."""

    returns: Floats
    """(episodes,) each episode's return."""
    steps: Ints
    """(episodes,) each episode's steps."""
    outcome_counts: Ints
    """(n_outcomes,) how often each outcome of the model was drawn."""
    initial_counts: Ints
    """(n_states,) how often each state started an episode."""


def simulate(model: TabularModel, horizon: int, actions: npt.ArrayLike, episodes: int,
             seed: int) -> Simulation:
    """Play the table ``actions`` for ``episodes`` episodes, sampling as training does (the
    environment stream of ``seed``): what the tests compare with Gymnasium's own episodes."""
    table = check_table(model, actions)
    streams = Streams([stream(seed, ENV_STREAM, 0)])
    returns, steps = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
    outcomes, initial = np.zeros(model.n_outcomes, dtype=np.int64), np.zeros(model.n_states, dtype=np.int64)
    _simulate(streams.next_double, int(streams.states[0]), model.offsets, model.cumulative(),
              model.next_states, model.rewards, model.terminated, np.cumsum(model.initial), model.n_actions,
              horizon, table, returns, steps, outcomes, initial)
    return Simulation(returns, steps, outcomes, initial)


@dataclass(frozen=True, eq=False)
class TabularTraining:
    """What a run learned and how its episodes went."""

    actions: Ints
    """(n_states,) the greedy table (of Q, or of QA + QB for Double Q; lowest action on ties)."""
    q: Floats
    """(n_states, n_actions) the action values (Double Q: the mean of its two tables)."""
    visits: Ints
    """(n_states, n_actions) updates of each pair (both tables together for Double Q)."""
    returns: Floats
    """(episodes,) each training episode's return, exploration included."""
    steps: Ints
    """(episodes,) each training episode's steps."""
    stopped: bool
    """Whether a stop request ended the run before its episodes were done."""

    @property
    def episodes(self) -> int:
        return int(self.returns.size)

    @property
    def env_steps(self) -> int:
        return int(self.steps.sum())


def epsilons(hyper: Hyperparameters, first: int, count: int) -> Floats:
    """Epsilon of episodes ``first`` to ``first + count - 1``."""
    episodes = np.arange(first, first + count, dtype=np.float64)
    out: Floats = np.maximum(hyper.epsilon_end, hyper.epsilon_start * hyper.epsilon_decay ** episodes)
    return out


class TabularRun:
    """One agent's run, advanced episodes at a time (:func:`train_tabular` runs it to the end).

    Neither epsilon (a function of the episode index) nor the step size (of the visit count)
    depends on when the run stops, so the agent after N episodes of a longer run is the agent
    of an N-episode run, bit for bit.
    """

    def __init__(self, model: TabularModel, horizon: int, hyper: Hyperparameters,
                 algorithm: Algorithm = "q", keep_episodes: bool = True) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: must be 'q' or 'double-q', got {algorithm!r}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon: expected a whole number >= 1, got {horizon!r}")
        self.model, self.horizon, self.hyper = model, horizon, hyper
        self.double = algorithm == "double-q"
        shape = (model.n_states, model.n_actions)
        self.qa, self.qb = np.full(shape, hyper.initial_q), np.full(shape, hyper.initial_q)
        self.na, self.nb = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
        self._streams = Streams([stream(hyper.seed, ENV_STREAM, 0), stream(hyper.seed, EXPLORE_STREAM, 0)])
        self._cumulative, self._initial = model.cumulative(), np.cumsum(model.initial)
        # Always a read-only view, so every schedule runs the one compiled signature.
        self._alphas = np.ascontiguousarray(hyper.alpha_table(), dtype=np.float64).view()
        self._alphas.setflags(write=False)
        self._returns: list[Floats] = []
        self._steps: list[Ints] = []
        self.keep_episodes = keep_episodes
        """Whether :meth:`result` gets every episode's return and steps (a run "until stopped"
        streams them instead, in bounded memory: then the result has none)."""
        self.episodes = 0
        """Episodes run so far."""

    def advance(self, episodes: int) -> tuple[Floats, Ints]:
        """Run ``episodes`` more episodes (in one kernel call: keep it to some million steps);
        returns their returns and steps."""
        if episodes < 1:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        returns, steps = np.zeros(episodes), np.zeros(episodes, dtype=np.int64)
        streams, model = self._streams, self.model
        _train(streams.next_double, int(streams.states[0]), int(streams.states[1]), model.offsets,
               self._cumulative, model.next_states, model.rewards, model.terminated, self._initial,
               model.n_actions, self.horizon, epsilons(self.hyper, self.episodes, episodes), self._alphas,
               self.hyper.discount, self.double, self.qa, self.qb, self.na, self.nb, returns, steps)
        if self.keep_episodes:
            self._returns.append(returns)
            self._steps.append(steps)
        self.episodes += episodes
        return returns, steps

    def greedy(self) -> Ints:
        """The greedy table now (of QA + QB for Double Q)."""
        return greedy(self.qa + self.qb if self.double else self.qa)

    def result(self, stopped: bool = False) -> TabularTraining:
        """What the run learned so far."""
        q = (self.qa + self.qb) / 2.0 if self.double else self.qa.copy()
        returns = np.concatenate(self._returns) if self._returns else np.zeros(0)
        steps = np.concatenate(self._steps) if self._steps else np.zeros(0, dtype=np.int64)
        return TabularTraining(self.greedy(), q, self.na + self.nb, returns, steps, stopped)


def train_tabular(model: TabularModel, horizon: int, hyper: Hyperparameters, algorithm: Algorithm = "q",
                  should_stop: Callable[[], bool] | None = None) -> TabularTraining:
    """Train one agent for ``hyper.episodes`` episodes on ``model`` within ``horizon`` steps;
    ``should_stop`` (checked between chunks of episodes) ends it early with what was learned."""
    if hyper.episodes is None:
        raise ValueError("episodes: a tabular run needs a number of episodes")
    run = TabularRun(model, horizon, hyper, algorithm)
    chunk = max(1, CHUNK_STEPS // horizon)
    while run.episodes < hyper.episodes:
        if should_stop is not None and should_stop():
            return run.result(stopped=True)
        run.advance(min(chunk, hyper.episodes - run.episodes))
    return run.result()


def compiled() -> bool:
    """Whether this process has the kernels ready (compiled or loaded from the disk cache)."""
    return bool(_train.signatures) and bool(_simulate.signatures)


def cached_on_disk() -> bool:
    """Whether the compiled kernels wait in the disk cache (so a first run will not compile them).

    Reads numba's cache index of each; when that cannot be told, says False (a run may then say
    "compiling" and be quicker than announced).
    """
    for kernel in (_train, _simulate):
        cache: Any = getattr(kernel, "_cache", None)
        impl: Any = getattr(cache, "_impl", None)
        locator: Any = getattr(impl, "locator", None)
        index: Any = getattr(cache, "_cache_file", None)
        try:
            if locator is None or index is None \
                    or not Path(locator.get_cache_path(), index._index_name).is_file():
                return False
        except (AttributeError, OSError, TypeError):
            return False
    return True


def warm() -> float:
    """Compile (or load from the disk cache) the kernels on a one-state model; returns the seconds taken."""
    start = time.perf_counter()
    if not compiled():
        tiny = TabularModel.from_transitions({0: {0: [(1.0, 0, 1.0, True)]}}, [1.0])
        train_tabular(tiny, 1, Hyperparameters(episodes=1), "double-q")
        simulate(tiny, 1, [0], 1, seed=0)
    return time.perf_counter() - start


# Chosen with ``.venv/bin/python bench/tasks_presets.py`` (its docstring gives the grid and the
# rule: the fewest episodes reaching the target on every seed 0..9 and on 100 held-out seeds).
# Figures: the exact value of the greedy table as a fraction of the exact optimum, median (min)
# over seeds 0..9, then over held-out seeds 10..109, and the median training seconds per run on
# a shared 2-core machine. With the time limit no stationary table reaches the FrozenLake
# optima: the best found are 99.459% (4x4) and 97.848% (8x8).
_FROZEN_LAKE = Hyperparameters(learning_rate=1.0, lr_schedule="count", lr_exponent=0.6, discount=0.99,
                               epsilon_start=1.0, epsilon_end=0.05, epsilon_decay=0.999, initial_q=1.0,
                               episodes=10_000)
_TAXI = Hyperparameters(learning_rate=1.0, lr_schedule="constant", discount=0.95, epsilon_start=1.0,
                        epsilon_end=0.05, epsilon_decay=0.9999, initial_q=0.0, episodes=1_000)
_CLIFF_WALKING = Hyperparameters(learning_rate=0.1, lr_schedule="constant", discount=0.95, epsilon_start=1.0,
                                 epsilon_end=0.05, epsilon_decay=0.999, initial_q=0.0, episodes=1_000)
TABULAR_PRESETS: dict[str, dict[Algorithm, Hyperparameters]] = {
    # q: 99.459% (99.459%), held out 99.459% (99.459%), 0.010 s; double-q: the same, 0.014 s.
    "FrozenLake-v1": {"q": _FROZEN_LAKE, "double-q": _FROZEN_LAKE},
    # Optimistic start (q0 = 1) and gamma 0.999: the table Q-learning converges to is 96.981%.
    # q: 96.981% (96.981%), held out 96.981% (96.824%), 0.154 s.
    # double-q: 96.981% (96.981%), held out 96.981% (96.824%), 0.234 s.
    "FrozenLake8x8-v1": {
        "q": _FROZEN_LAKE.replace(discount=0.999, episodes=50_000),
        "double-q": _FROZEN_LAKE.replace(discount=0.999, epsilon_decay=0.99999, episodes=100_000),
    },
    # q: 100% (100%), held out 100% (100%), 0.010 s.
    # double-q: 100% (99.916%), held out 100% (99.916%), 0.016 s.
    "Taxi-v4": {"q": _TAXI, "double-q": _TAXI.replace(episodes=2_000)},
    # q: 100% (100%), held out 100% (100%), 0.0025 s; double-q: the same, 0.0036 s.
    "CliffWalking-v1": {"q": _CLIFF_WALKING, "double-q": _CLIFF_WALKING},
}
"""The ``recommended`` hyperparameters of each task (by Gymnasium id) and algorithm."""


def recommended(task_id: str, algorithm: Algorithm = "q") -> Hyperparameters:
    """The measured ``recommended`` hyperparameters of a task (by Gymnasium id) for an algorithm."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: must be 'q' or 'double-q', got {algorithm!r}")
    try:
        return TABULAR_PRESETS[task_id][algorithm]
    except KeyError:
        known = ", ".join(TABULAR_PRESETS)
        raise ValueError(f"task: no recommended hyperparameters for {task_id!r} (known: {known})") from None
