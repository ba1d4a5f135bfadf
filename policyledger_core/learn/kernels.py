"""The trainers' compiled kernel (numba): agents' episodes, drawing from their own streams.

The kernel does what :class:`policyledger_core.learn.single._ScalarRun` does, operation for
operation (same draws, same tie-breaks, same float arithmetic), so the compiled engine and the
numpy reference give the same Q-tables bit for bit; the tests hold them to it. It takes every
table and threshold as an argument (none is frozen into the on-disk cache) and releases the
GIL, so several agents train on several cores at once.

Compiled on first use and cached on disk: beside this module, or in the user's cache folder
when the package folder is not writable (numba picks). :func:`compiled` tells whether this
process already has it; :func:`warm` compiles (or loads) it.
"""

from __future__ import annotations

import ctypes
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

LAYOUT = np.array([dyn.N_ACTIONS, dyn.N_LIVE_HEALTH, dyn.HEALTH_STRIDE, dyn.CRITICAL, dyn.HIGH, dyn.LOW,
                   dyn.PAIRS, dyn.LONG_AFTER], dtype=np.int64)
"""The dynamics' layout constants, handed to the kernel (a cached kernel never goes stale)."""
_CHANGE_CUTS = np.array(dyn._CHANGE_CUTS, dtype=np.float64)


@njit(cache=True, nogil=True)
def _schedule(u: Floats, sev_cuts: Floats, type_cuts: Floats, conf_p: Floats, esc_p: float,
              change_cuts: Floats, defence_holds: float, obs_base: Ints, layout: Ints,
              bases: Ints, keys: Ints) -> None:  # pragma: no cover - compiled
    """Observation bases and outcome keys (times PAIRS) of one episode's steps from its uniforms
    (H, 6): :func:`~policyledger_core.sim.dynamics.schedule_codes`,
    :func:`~policyledger_core.sim.dynamics.observation_bases` and
    :func:`~policyledger_core.sim.dynamics.outcome_keys`, step by step."""
    high, low, pairs, long_after = layout[4], layout[5], layout[6], layout[7]
    n_bands = change_cuts.size + 1
    horizon = u.shape[0]
    # Written without branches on the draws (comparisons added as 0 or 1): a mispredicted
    # branch on a random uniform costs more than the whole step.
    previous = low
    streak = 0  # consecutive steps of severity above LOW just before this one
    for t in range(horizon):
        fresh = 0
        for cut in sev_cuts:
            fresh += u[t, 0] >= cut
        forced = (previous == high) & (u[t, 1] < esc_p)  # never at t = 0: previous starts LOW
        severity = high if forced else fresh
        attack = 0
        for cut in type_cuts:
            attack += u[t, 2] >= cut
        code = (severity * 3 + attack) * 2 + (u[t, 3] < conf_p[severity])
        bases[t] = obs_base[code] + (streak >= long_after)
        band = 0
        for cut in change_cuts:
            band += u[t, 5] >= cut
        keys[t] = ((code * 2 + (u[t, 4] >= defence_holds)) * n_bands + band) * pairs
        streak = (streak + 1) * (severity != low)
        previous = severity


def _next_double_typing(typingctx: Any, function: Any, state: Any) -> Any:  # pragma: no cover
    """Call a bit generator's ``next_double(state)`` through its addresses (numpy's own C
    function, so the draws are exactly those of ``Generator.random``)."""
    signature = types.float64(types.int64, types.int64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        pointer = ir.IntType(8).as_pointer()
        fn = builder.inttoptr(args[0], ir.FunctionType(ir.DoubleType(), [pointer]).as_pointer())
        return builder.call(fn, [builder.inttoptr(args[1], pointer)])

    return signature, codegen


_next_double: Any = intrinsic(_next_double_typing)


@njit(cache=True, nogil=True)
def _episode(u_env: Floats, u_explore: Floats, epsilon: float, bases: Ints, keys: Ints,
             health_out: Ints, tenths_mid: Ints, tenths_last: Ints, layout: Ints,
             qa: Floats, qb: Floats, na: Ints, nb: Ints, alphas: Floats, double: bool, gamma: float,
             update_b_from: float, counts: Ints) -> tuple[int, int]:  # pragma: no cover - compiled
    """One episode of one agent: updates its tables, counts its actions; returns (tenths, steps)."""
    n_actions, n_live, stride, critical = layout[0], layout[1], layout[2], layout[3]
    last_alpha = alphas.size - 1
    horizon = u_env.shape[0]
    for a in range(n_actions):
        counts[a] = 0
    health = 0
    ret = 0
    s = bases[0]
    s2 = s
    t = 0
    while True:
        a = 0
        if u_explore[t, 0] < epsilon:
            a = int(u_explore[t, 1] * n_actions)
        elif double:
            best = qa[s, 0] + qb[s, 0]
            for i in range(1, n_actions):
                v = qa[s, i] + qb[s, i]
                if v > best:  # the first of equal values wins, as list.index(max(...))
                    best, a = v, i
        else:
            best = qa[s, 0]
            for i in range(1, n_actions):
                if qa[s, i] > best:
                    best, a = qa[s, i], i
        counts[a] += 1
        pick = keys[t] + a * n_live + health
        health = health_out[pick]
        which = u_explore[t, 2]
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
        # Double Q: one table learns, judged by the other at its own greedy action.
        if double and which >= update_b_from:
            upd, other, cnt = qb, qa, nb
        else:
            upd, other, cnt = qa, qb, na
        c = cnt[s, a] + 1
        cnt[s, a] = c
        alpha = alphas[c - 1] if c <= last_alpha else alphas[last_alpha]
        if done:
            target = r
        elif double:
            nxt = 0
            top = upd[s2, 0]
            for i in range(1, n_actions):
                if upd[s2, i] > top:
                    top, nxt = upd[s2, i], i
            target = r + gamma * other[s2, nxt]
        else:
            top = upd[s2, 0]
            for i in range(1, n_actions):
                if upd[s2, i] > top:
                    top = upd[s2, i]
            target = r + gamma * top
        q = upd[s, a]
        upd[s, a] = q + alpha * (target - q)
        if done:
            return ret, t
        s = s2


@njit(cache=True, nogil=True)
def train_agents(first: int, last: int, next_double: int, env_states: Ints, explore_states: Ints,
                 eps: Floats, horizon: int,
                 sev_cuts: Floats, type_cuts: Floats, conf_p: Floats, esc_p: float,
                 change_cuts: Floats, defence_holds: float, update_b_from: float,
                 obs_base: Ints, health_out: Ints, tenths_mid: Ints, tenths_last: Ints, layout: Ints,
                 qa: Floats, qb: Floats, na: Ints, nb: Ints, alphas: Floats, double: bool, gamma: float,
                 out_tenths: Ints, out_steps: Ints, out_counts: Ints) -> None:  # pragma: no cover
    """Train agents ``first`` to ``last - 1`` for ``len(eps)`` episodes each (epsilon ``eps[e]``).

    Agent k draws from the bit generators at ``env_states[k]`` and ``explore_states[k]`` (6 and
    3 uniforms per step of the horizon, every step, as the reference trainers do); its tables
    ``qa[k]``/``qb[k]`` (108, 5) and counts ``na[k]``/``nb[k]`` are updated in place (``qb``/``nb``
    only for Double Q). Writes each episode's return in tenths, steps and action counts at [k, e].
    """
    u_env = np.empty((horizon, 6))
    u_explore = np.empty((horizon, 3))
    bases = np.zeros(horizon + 1, dtype=np.int64)
    keys = np.zeros(horizon, dtype=np.int64)
    for k in range(first, last):
        env, explore = env_states[k], explore_states[k]
        for e in range(eps.size):
            for t in range(horizon):
                for c in range(6):
                    u_env[t, c] = _next_double(next_double, env)
            for t in range(horizon):
                for c in range(3):
                    u_explore[t, c] = _next_double(next_double, explore)
            _schedule(u_env, sev_cuts, type_cuts, conf_p, esc_p, change_cuts, defence_holds,
                      obs_base, layout, bases, keys)
            ret, steps = _episode(u_env, u_explore, eps[e], bases, keys, health_out, tenths_mid,
                                  tenths_last, layout, qa[k], qb[k], na[k], nb[k], alphas, double, gamma,
                                  update_b_from, out_counts[k, e])
            out_tenths[k, e] = ret
            out_steps[k, e] = steps


class Streams:
    """The addresses of some bit generators, for :func:`train_agents` (which draws from them).

    Keeps the generators alive as long as it lives; each is used by one thread at a time.
    """

    def __init__(self, generators: list[np.random.Generator]) -> None:
        self.generators = generators
        views = [g.bit_generator.ctypes for g in generators]
        self._views = views  # the ctypes views own the addresses below
        self.states = np.array([v.state_address for v in views], dtype=np.int64)
        functions = {ctypes.cast(v.next_double, ctypes.c_void_p).value for v in views}
        if len(functions) != 1:
            raise ValueError("streams: every generator must use the same bit generator")
        self.next_double = int(functions.pop() or 0)


class Task:
    """What the kernel needs of a configuration and a run, as arrays (built once per run)."""

    def __init__(self, config: EnvConfig, alphas: Floats, double: bool, gamma: float,
                 update_b_from: float) -> None:
        self.horizon = config.horizon
        self.sev_cuts = np.array(config.severity_thresholds, dtype=np.float64)
        self.type_cuts = np.array(config.type_thresholds, dtype=np.float64)
        self.conf_p = np.array(config.high_confidence_probs, dtype=np.float64)
        self.esc_p = float(config.escalation_prob)
        self.alphas = np.ascontiguousarray(alphas, dtype=np.float64)
        self.double, self.gamma, self.update_b_from = double, float(gamma), float(update_b_from)

    def run(self, first: int, last: int, env: Streams, explore: Streams, eps: Floats,
            qa: Floats, qb: Floats, na: Ints, nb: Ints,
            out_tenths: Ints, out_steps: Ints, out_counts: Ints) -> None:
        """Agents ``first`` to ``last - 1``, ``len(eps)`` episodes (see :func:`train_agents`)."""
        train_agents(first, last, env.next_double, env.states, explore.states, eps, self.horizon,
                     self.sev_cuts, self.type_cuts, self.conf_p, self.esc_p, _CHANGE_CUTS,
                     dyn.DEFENCE_HOLDS, self.update_b_from, dyn.ALERT_OBS_BASE, dyn.OUTCOME_HEALTH,
                     dyn.OUTCOME_TENTHS, dyn.OUTCOME_TENTHS_LAST, LAYOUT, qa, qb, na, nb, self.alphas,
                     self.double, self.gamma, out_tenths, out_steps, out_counts)


def compiled() -> bool:
    """Whether this process has the kernel ready (compiled or loaded from the disk cache)."""
    return bool(train_agents.signatures)


def cached_on_disk() -> bool:
    """Whether a compiled kernel waits in the disk cache (so a first run will not compile).

    Reads numba's cache index; when that cannot be told, says False (a run may then say
    "compiling" and be quicker than announced).
    """
    cache: Any = getattr(train_agents, "_cache", None)
    impl: Any = getattr(cache, "_impl", None)
    locator: Any = getattr(impl, "locator", None)
    index: Any = getattr(cache, "_cache_file", None)
    try:
        return bool(locator is not None and index is not None
                    and Path(locator.get_cache_path(), index._index_name).is_file())
    except (AttributeError, OSError, TypeError):
        return False


def warm() -> float:
    """Compile (or load from the disk cache) the kernel on a tiny run; returns the seconds taken."""
    start = time.perf_counter()
    if not compiled():
        from policyledger_core.sim.config import preset

        config = preset("standard")
        task = Task(config, np.array([0.5]), True, 0.9, 0.5)
        q = np.zeros((1, dyn.N_OBS, dyn.N_ACTIONS))
        n = np.zeros((1, dyn.N_OBS, dyn.N_ACTIONS), dtype=np.int64)
        streams = Streams([np.random.Generator(np.random.PCG64(0))])
        out = np.zeros((1, 1), dtype=np.int64)
        task.run(0, 1, streams, streams, np.array([0.5]), q, q.copy(), n, n.copy(), out, out.copy(),
                 np.zeros((1, 1, dyn.N_ACTIONS), dtype=np.int64))
    return time.perf_counter() - start
