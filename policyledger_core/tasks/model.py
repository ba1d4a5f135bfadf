"""Exact tabular models and finite-horizon dynamic programming over them.

A :class:`TabularModel` holds an environment's transition table exactly as the environment
states it (``env.unwrapped.P``: for each state and action a list of ``(probability,
next_state, reward, terminated)``), flattened into numpy arrays in the same order, nothing
merged. Episodes last at most ``horizon`` steps (a time limit truncates them); a terminated
transition ends the episode. All values are undiscounted expected returns from the initial
state distribution, with V_H = 0.

With a time limit the optimal policy depends on the time left, so a stationary table (one
action per state) cannot always reach :func:`optimum`; :func:`best_stationary` searches for
the best one it can find.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

TIE_TOLERANCE = 1e-12
"""An improvement of the local search must exceed this, so float noise never counts as one."""
_BATCH_OUTCOMES = 2_000_000
"""Outcomes evaluated at once by the local search (bounds its memory to some 100 MB)."""


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    # Models are cached and shared, so nobody may change one in place.
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class TabularModel:
    """A finite MDP's outcomes, flattened: those of (state s, action a) are the entries
    ``offsets[s * n_actions + a]`` to ``offsets[s * n_actions + a + 1] - 1`` of the outcome
    arrays, in the environment's own order. Arrays are read-only."""

    n_states: int
    n_actions: int
    offsets: Ints
    """(n_states * n_actions + 1,) where each (state, action)'s outcomes start; the last is their count."""
    probs: Floats
    """(n_outcomes,) probability of each outcome."""
    next_states: Ints
    """(n_outcomes,) the state each outcome leads to."""
    rewards: Floats
    """(n_outcomes,) the reward each outcome gives."""
    terminated: Bools
    """(n_outcomes,) whether the outcome ends the episode."""
    initial: Floats
    """(n_states,) the initial-state distribution."""

    def __post_init__(self) -> None:
        n_pairs, n = self.n_states * self.n_actions, self.probs.size
        if self.n_states < 1 or self.n_actions < 1:
            raise ValueError("model: needs at least one state and one action")
        if self.offsets.shape != (n_pairs + 1,) or self.offsets[0] != 0 or self.offsets[-1] != n:
            raise ValueError("model: offsets do not cover the outcomes")
        if np.any(np.diff(self.offsets) < 1):
            raise ValueError("model: every (state, action) needs at least one outcome")
        if any(a.shape != (n,) for a in (self.next_states, self.rewards, self.terminated)):
            raise ValueError("model: outcome arrays differ in length")
        if self.initial.shape != (self.n_states,):
            raise ValueError("model: initial distribution has the wrong length")
        if n and (self.next_states.min() < 0 or self.next_states.max() >= self.n_states):
            raise ValueError("model: a next state is out of range")
        if np.any(self.probs < 0) or np.any(self.initial < 0):
            raise ValueError("model: negative probability")
        sums = np.add.reduceat(self.probs, self.offsets[:-1])
        if not np.allclose(sums, 1.0, atol=1e-9) or abs(self.initial.sum() - 1.0) > 1e-9:
            raise ValueError("model: probabilities do not sum to 1")
        for array in (self.offsets, self.probs, self.next_states, self.rewards, self.terminated,
                      self.initial):
            _frozen(array)

    @property
    def n_outcomes(self) -> int:
        """Number of outcomes over all (state, action) pairs."""
        return int(self.probs.size)

    def outcomes(self, state: int, action: int) -> slice:
        """Where the outcomes of (state, action) lie in the outcome arrays."""
        pair = state * self.n_actions + action
        return slice(int(self.offsets[pair]), int(self.offsets[pair + 1]))

    @property
    def pair_of_outcome(self) -> Ints:
        """(n_outcomes,) the (state * n_actions + action) each outcome belongs to."""
        return np.repeat(np.arange(self.n_states * self.n_actions), np.diff(self.offsets))

    def cumulative(self) -> Floats:
        """(n_outcomes,) running sums of the probabilities within each (state, action): an
        outcome is drawn as the first whose running sum exceeds a uniform, as Gymnasium does."""
        # Summed within each pair on its own (not differenced from one running sum), so the
        # figures are bit for bit those Gymnasium's sampler computes.
        out = np.empty_like(self.probs)
        for pair in range(self.n_states * self.n_actions):
            lo, hi = self.offsets[pair], self.offsets[pair + 1]
            out[lo:hi] = np.cumsum(self.probs[lo:hi])
        return out

    @classmethod
    def from_transitions(cls, transitions: Mapping[int, Mapping[int, Sequence[Sequence[Any]]]],
                         initial: npt.ArrayLike, n_actions: int | None = None) -> TabularModel:
        """Build from a table in Gymnasium's ``P`` form and an initial-state distribution."""
        n_states = len(transitions)
        if sorted(transitions) != list(range(n_states)):
            raise ValueError("transitions: states must be 0..n-1")
        if n_actions is None:
            n_actions = len(transitions[0])
        offsets = [0]
        probs: list[float] = []
        nexts: list[int] = []
        rewards: list[float] = []
        ends: list[bool] = []
        for s in range(n_states):
            if sorted(transitions[s]) != list(range(n_actions)):
                raise ValueError(f"transitions[{s}]: actions must be 0..{n_actions - 1}")
            for a in range(n_actions):
                for p, s2, r, done in transitions[s][a]:
                    probs.append(float(p))
                    nexts.append(int(s2))
                    rewards.append(float(r))
                    ends.append(bool(done))
                offsets.append(len(probs))
        return cls(n_states, n_actions, np.array(offsets, dtype=np.int64), np.array(probs, dtype=np.float64),
                   np.array(nexts, dtype=np.int64), np.array(rewards, dtype=np.float64),
                   np.array(ends, dtype=np.bool_), np.array(initial, dtype=np.float64).copy())

    @classmethod
    def from_env(cls, env: Any) -> TabularModel:
        """Build from a Gymnasium toy-text environment (``env.unwrapped.P`` and its initial
        distribution: ``initial_state_distrib``, else the one-hot of ``start_state_index``)."""
        core = env.unwrapped
        n_states = int(core.observation_space.n)
        if hasattr(core, "initial_state_distrib"):
            initial = np.asarray(core.initial_state_distrib, dtype=np.float64)
        elif hasattr(core, "start_state_index"):
            initial = np.zeros(n_states)
            initial[int(core.start_state_index)] = 1.0
        else:
            raise ValueError("env: no initial-state distribution to read")
        return cls.from_transitions(core.P, initial, int(core.action_space.n))


@dataclass(frozen=True, eq=False)
class Solution:
    """Finite-horizon value iteration's result (arrays read-only)."""

    value: float
    """Expected return of the optimal time-dependent policy from the initial distribution."""
    q: Floats
    """(horizon, n_states, n_actions) optimal action values with t steps taken."""


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon: expected a whole number >= 1, got {horizon!r}")
    return int(horizon)


def _backward(model: TabularModel, horizon: int, select: Callable[[int, Floats], Floats]) -> float:
    """Backward induction: Q_t = R + sum p (1 - terminated) V_{t+1}(next), V_t = select(t, Q_t)."""
    pair = model.pair_of_outcome
    n_pairs = model.n_states * model.n_actions
    expected_reward = np.bincount(pair, weights=model.probs * model.rewards, minlength=n_pairs)
    carry = model.probs * ~model.terminated  # a terminated outcome stops: no value after it
    value = np.zeros(model.n_states)
    for t in range(_check_horizon(horizon) - 1, -1, -1):
        later = np.bincount(pair, weights=carry * value[model.next_states], minlength=n_pairs)
        q = (expected_reward + later).astype(np.float64, copy=False)
        value = select(t, q.reshape(model.n_states, model.n_actions))
    return float(model.initial @ value)


def solve(model: TabularModel, horizon: int) -> Solution:
    """Finite-horizon value iteration: the optimal values of every step."""
    q_all = np.empty((_check_horizon(horizon), model.n_states, model.n_actions))

    def best(t: int, q: Floats) -> Floats:
        q_all[t] = q
        top: Floats = q.max(axis=1)
        return top

    value = _backward(model, horizon, best)
    return Solution(value, _frozen(q_all))


def optimum(model: TabularModel, horizon: int) -> float:
    """Expected return of the optimal time-dependent policy within ``horizon`` steps."""
    return _backward(model, horizon, lambda t, q: q.max(axis=1))


def check_table(model: TabularModel, actions: npt.ArrayLike) -> Ints:
    """A stationary table as int64 (n_states,), or a ValueError saying what is wrong."""
    table = np.asarray(actions)
    if table.shape != (model.n_states,):
        raise ValueError(f"actions: expected shape ({model.n_states},), got {table.shape}")
    if table.size and not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"actions: expected integers, got dtype {table.dtype}")
    if table.size and (table.min() < 0 or table.max() >= model.n_actions):
        raise ValueError(f"actions: every action must lie in 0..{model.n_actions - 1}")
    return table.astype(np.int64)


def evaluate(model: TabularModel, horizon: int, actions: npt.ArrayLike) -> float:
    """Exact expected return of the stationary table ``actions[state]`` within ``horizon`` steps."""
    table = check_table(model, actions)
    rows = np.arange(model.n_states)
    return _backward(model, horizon, lambda t, q: q[rows, table])


def evaluate_stochastic(model: TabularModel, horizon: int, policy: npt.ArrayLike) -> float:
    """Exact expected return of the stationary stochastic policy ``policy[state, action]``
    (each row a distribution over actions), e.g. uniformly random actions."""
    probs = np.asarray(policy, dtype=np.float64)
    if probs.shape != (model.n_states, model.n_actions):
        raise ValueError(f"policy: expected shape ({model.n_states}, {model.n_actions}), got {probs.shape}")
    if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError("policy: each row must be a probability distribution")
    return _backward(model, horizon, lambda t, q: (q * probs).sum(axis=1))


def greedy(q: npt.ArrayLike) -> Ints:
    """The greedy table of action values (n_states, n_actions): the lowest action on ties."""
    table: Ints = np.argmax(np.asarray(q), axis=1).astype(np.int64)
    return table


def reachable(model: TabularModel, horizon: int, actions: npt.ArrayLike) -> Bools:
    """States the table ``actions`` acts in with positive probability before the time limit (a
    change of action anywhere else leaves its value as it is)."""
    table = check_table(model, actions)
    pair = model.pair_of_outcome
    chosen = np.zeros(model.n_states * model.n_actions, dtype=np.bool_)
    chosen[np.arange(model.n_states) * model.n_actions + table] = True
    # Outcomes the table can take that let the episode go on.
    follow = chosen[pair] & (model.probs > 0) & ~model.terminated
    source = pair // model.n_actions
    seen = model.initial > 0
    frontier = seen.copy()
    for _ in range(_check_horizon(horizon) - 1):  # breadth first, one step of time per round
        step = np.zeros(model.n_states, dtype=np.bool_)
        step[model.next_states[follow & frontier[source]]] = True
        frontier = step & ~seen
        if not frontier.any():
            break
        seen |= frontier
    return seen


def evaluate_many(model: TabularModel, horizon: int, tables: npt.ArrayLike) -> Floats:
    """Exact expected returns of several stationary tables (k, n_states) at once."""
    batch = np.asarray(tables)
    if batch.ndim != 2:
        raise ValueError("tables: expected a 2-d array (k, n_states)")
    for row in batch:
        check_table(model, row)
    out = np.empty(batch.shape[0])
    counts = np.diff(model.offsets)
    # Tables are split into groups of bounded size: each is a (k * n_states) chain of outcomes.
    per_table = max(1, int(counts.max()) * model.n_states)
    group = max(1, _BATCH_OUTCOMES // per_table)
    for first in range(0, batch.shape[0], group):
        part = batch[first:first + group].astype(np.int64)
        out[first:first + group] = _evaluate_group(model, horizon, part)
    return out


def _evaluate_group(model: TabularModel, horizon: int, tables: Ints) -> Floats:
    k, n = tables.shape
    pairs = (np.arange(n) * model.n_actions)[None, :] + tables  # (k, n)
    counts = np.diff(model.offsets)[pairs].ravel()
    starts = model.offsets[:-1][pairs].ravel()
    # Outcome indices of every (table, state), in order, and which (table, state) each serves.
    owner = np.repeat(np.arange(k * n), counts)
    within = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = starts[owner] + within
    reward = np.bincount(owner, weights=model.probs[idx] * model.rewards[idx], minlength=k * n)
    carry = model.probs[idx] * ~model.terminated[idx]
    target = (owner // n) * n + model.next_states[idx]  # the next state, within its own table
    value = np.zeros(k * n)
    for _ in range(_check_horizon(horizon)):
        value = reward + np.bincount(owner, weights=carry * value[target], minlength=k * n)
    values: Floats = value.reshape(k, n) @ model.initial
    return values


@dataclass(frozen=True, eq=False)
class StationarySearch:
    """What :func:`best_stationary` found."""

    actions: Ints
    """(n_states,) the table: no change of a single state's action improves it."""
    value: float
    """Its exact expected return."""
    start_value: float
    """The exact expected return of the table the search started from."""
    changes: int
    """Single-state changes applied."""
    evaluations: int
    """Tables evaluated."""


def best_stationary(model: TabularModel, horizon: int, start: npt.ArrayLike | None = None,
                    max_changes: int = 10_000, ceiling: float | None = None) -> StationarySearch:
    """Local search for a good stationary table: from ``start`` (by default the greedy table of
    the time-0 optimal action values), apply the single-state change that improves the exact
    value most, until none does (a local optimum, not always the global one).

    Only states the current table reaches are tried: a change anywhere else cannot change its
    value. Stops at once when the table reaches ``ceiling`` (by default the optimum: no
    stationary table does better than the best time-dependent policy).
    """
    table = greedy(solve(model, horizon).q[0]) if start is None else check_table(model, start).copy()
    if ceiling is None:
        ceiling = optimum(model, horizon)
    value = evaluate(model, horizon, table)
    start_value, changes, evaluations = value, 0, 1
    while changes < max_changes and value < ceiling - TIE_TOLERANCE:
        states = np.flatnonzero(reachable(model, horizon, table))
        cand_state = np.repeat(states, model.n_actions - 1)
        offset = np.tile(np.arange(1, model.n_actions), states.size)
        cand_action = (table[cand_state] + offset) % model.n_actions
        batch = np.repeat(table[None, :], cand_state.size, axis=0)
        batch[np.arange(cand_state.size), cand_state] = cand_action
        values = evaluate_many(model, horizon, batch)
        evaluations += int(cand_state.size)
        if values.size == 0:
            break
        best = int(np.argmax(values))  # the first of equal gains: lowest state, then next action
        if values[best] <= value + TIE_TOLERANCE:
            break
        table[cand_state[best]] = cand_action[best]
        value = evaluate(model, horizon, table)  # the single evaluation's figure, not the batch's
        changes += 1
    return StationarySearch(_frozen(table), value, start_value, changes, evaluations)
