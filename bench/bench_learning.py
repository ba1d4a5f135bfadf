"""Figures of the learning core: training speed, policy quality, verification time."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np

import policyledger_core.sim.environment  # noqa: F401  (registers the environment with Gymnasium)
from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import Hyperparameters, hyper_preset
from policyledger_core.learn.single import run_to_end
from policyledger_core.sim.config import ENV_ID, PRESETS, preset
from policyledger_core.verify import suite as verification

Figure = dict[str, Any]


def figure(name: str, value: float, unit: str, reference: float | None = None,
           target: float | None = None, higher_is_better: bool = True, **extra: Any) -> Figure:
    """One JSON line of run.py."""
    out: Figure = {"name": name, "value": round(value, 6), "unit": unit}
    if reference is not None:
        out["reference"] = round(reference, 6)
        out["ratio"] = round(value / reference, 4) if reference else None
    if target is not None:
        out["target"] = target
        out["met"] = value >= target if higher_is_better else value <= target
    out.update(extra)
    return out


def textbook_steps_per_second(hyper: Hyperparameters, episodes: int) -> float:
    """The reference loop: a gymnasium.make environment, one step at a time, a dict Q-table."""
    env = gym.make(ENV_ID, preset_name="standard")
    q: defaultdict[int, list[float]] = defaultdict(lambda: [0.0] * 5)
    rng = np.random.default_rng(0)
    steps = 0
    start = time.perf_counter()
    obs, _ = env.reset(seed=0)
    for episode in range(episodes):
        if episode:
            obs, _ = env.reset()
        eps = hyper.epsilon(episode)
        done = False
        while not done:
            row = q[obs]
            action = int(rng.integers(5)) if rng.random() < eps else row.index(max(row))
            nxt, reward, terminated, truncated, _ = env.step(action)
            target = float(reward) + (0.0 if terminated else hyper.discount * max(q[nxt]))
            row[action] += hyper.learning_rate * (target - row[action])
            obs, done, steps = nxt, terminated or truncated, steps + 1
    return steps / (time.perf_counter() - start)


def _rate(run: Callable[[], Any]) -> tuple[float, int]:
    start = time.perf_counter()
    result = run()
    return result.env_steps / (time.perf_counter() - start), result.env_steps


def _median_fraction(config_name: str, hyper: Hyperparameters, seeds: int) -> tuple[float, float, float]:
    fractions, seconds = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        result = run_to_end(train_agents(preset(config_name), hyper.replace(seed=seed), "q", 1))
        seconds.append(time.perf_counter() - start)
        fractions.append(verification.verify(result.policy()).fraction_of_optimum)
    return statistics.median(fractions), min(fractions), statistics.median(seconds)


def bench_policy_quality() -> Iterator[Figure]:
    for name in PRESETS:
        rec = _median_fraction(name, hyper_preset("recommended"), 10)
        old = _median_fraction(name, hyper_preset("seed-defaults"), 10)
        yield figure(f"quality_{name}", rec[0], "fraction of optimum (median of 10 seeds)",
                     reference=old[0], target=0.98 if name == "standard" else 0.95,
                     reference_name="seed-defaults", min_fraction=round(rec[1], 4),
                     train_seconds_median=round(rec[2], 3), seed_defaults_min=round(old[1], 4))


def bench_verify() -> Iterator[Figure]:
    config = preset("standard")
    policy = run_to_end(train_agents(config, hyper_preset("seed-defaults"), "q", 1)).policy()
    verification.suite_uniforms.cache_clear()
    verification.reference.cache_clear()
    start = time.perf_counter()
    verification.verify(policy)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    verification.verify(policy)
    warm = time.perf_counter() - start
    env = gym.make(ENV_ID, preset_name="standard")
    start = time.perf_counter()
    actions = policy.actions
    for seed in verification.suite_seeds(verification.DEFAULT_EPISODES):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, done, _, _ = env.step(actions[obs])
    ref = time.perf_counter() - start
    yield figure("verify_seconds_cold", cold, "s", reference=ref, target=0.5, higher_is_better=False,
                 reference_name="the same 1000 episodes stepped through gymnasium.make")
    yield figure("verify_seconds_warm", warm, "s", reference=ref, target=0.5, higher_is_better=False,
                 reference_name="the same 1000 episodes stepped through gymnasium.make")


BENCHMARKS: dict[str, Callable[[], Iterator[Figure]]] = {
    "verify": bench_verify,
    "policy_quality": bench_policy_quality,
}
