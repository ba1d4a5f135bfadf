"""Verification by replay: a policy's reward is recomputed, never taken on trust.

The evaluation suite of N episodes uses reset seeds ``2**63 + i`` (i < N);
training seeds lie below ``2**63`` and training streams are spawned, so no
training episode is an evaluation episode. Episode i of the suite is exactly
what ``CyberDefenseEnv.reset(seed=2**63 + i)`` plays. Returns are exact
(integer tenths), so the replay digest is the same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from policyledger_core.canonical import canonical_bytes, sha256_hex
from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import EnvConfig
from policyledger_core.sim.optimum import expected_return, expected_return_random, optimal_decider, solve
from policyledger_core.sim.replay import ReplayOutcome, observation_decider, random_decider, replay

EVAL_SEED_BASE = 2**63
SUITE_VERSION = "eval-v1"
DEFAULT_EPISODES = 1000
MAX_EPISODES = 100_000
Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: a 95% interval is mean +/- Z95 * std / sqrt(n)."""
RANDOM_BASELINE = "random"
_BASELINE_TABLES: dict[str, npt.NDArray[np.int64]] = {
    **{name.lower(): np.full(dyn.N_OBS, action, dtype=np.int64)
       for action, name in enumerate(dyn.ACTION_NAMES)},
    "myopic": np.array(MYOPIC_ACTIONS, dtype=np.int64),
}
"""The action table of every baseline but the random one: each fixed action, and the myopic rule."""
BASELINES = (RANDOM_BASELINE, *_BASELINE_TABLES)
"""random, ignore, monitor, rate_limit, block_ip, isolate_service, myopic."""


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95% confidence interval of a mean of ``n`` values (what an entry records as ci95)."""
    return Z95 * std / math.sqrt(n)


@dataclass(frozen=True, slots=True)
class Interval:
    """A 95% confidence interval of a mean (normal approximation): ``center +/- half_width``.

    Held as the figures an entry records (mean and ci95), so they are never derived back
    from the bounds; the bounds are computed here and nowhere else.
    """

    center: float
    half_width: float

    @classmethod
    def of(cls, mean: float, std: float, n: int) -> Interval:
        """The interval of the mean of ``n`` values with sample standard deviation ``std``."""
        return cls(mean, ci95_half_width(std, n))

    @property
    def low(self) -> float:
        return self.center - self.half_width

    @property
    def high(self) -> float:
        return self.center + self.half_width


def suite_id(episodes: int) -> str:
    """Names the evaluation seeds: version and episode count."""
    return f"{SUITE_VERSION}/n={episodes}"


def suite_seeds(episodes: int) -> range:
    """The reset seeds of the evaluation suite."""
    return range(EVAL_SEED_BASE, EVAL_SEED_BASE + episodes)


@lru_cache(maxsize=8)
def suite_uniforms(config: EnvConfig, episodes: int) -> npt.NDArray[np.float64]:
    """(N, H, 6) uniforms of the suite's episodes (read-only, cached)."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 1 <= episodes <= MAX_EPISODES:
        raise ValueError(f"episodes: expected 1..{MAX_EPISODES}, got {episodes!r}")
    out = np.empty((episodes, config.horizon, dyn.UNIFORMS_PER_STEP))
    for i, seed in enumerate(suite_seeds(episodes)):
        # What gymnasium's reset(seed=...) builds: PCG64 over SeedSequence(seed).
        out[i] = dyn.draw_episode_uniforms(np.random.default_rng(seed), config)
    out.setflags(write=False)
    return out


def replay_digest(suite: str, returns_tenths: npt.NDArray[np.int64]) -> str:
    """SHA-256 over the suite id and the per-episode returns (integer tenths)."""
    body = canonical_bytes({"suite": suite, "returns_tenths": [int(r) for r in returns_tenths]})
    return sha256_hex(b"policyledger/replay-v1\n" + body)


@dataclass(frozen=True)
class Reference:
    """The optimum and the baselines on one suite."""

    optimum: float
    """Mean return of the optimal full-state policy on the suite's episodes."""
    optimum_expected: float
    """Exact optimal expected return (value iteration)."""
    baselines: dict[str, float]
    """Mean return on the suite of each baseline in :data:`BASELINES`."""


def mean_of_tenths(returns_tenths: npt.NDArray[np.int64]) -> float:
    """Mean return, computed from the exact integer total (one rounding only)."""
    return int(returns_tenths.sum()) / (10 * len(returns_tenths))


@lru_cache(maxsize=256)
def suite_optimum(config: EnvConfig, episodes: int = DEFAULT_EPISODES) -> float:
    """Mean return of the optimal full-state policy on the suite (what entries record as the optimum)."""
    outcome = replay(config, suite_uniforms(config, episodes), optimal_decider(solve(config)))
    return mean_of_tenths(outcome.returns_tenths)


@lru_cache(maxsize=16)
def reference(config: EnvConfig, episodes: int = DEFAULT_EPISODES) -> Reference:
    """Optimum and baselines on the suite (computed once per configuration)."""
    uniforms = suite_uniforms(config, episodes)
    solution = solve(config)
    best = suite_optimum(config, episodes)
    # The random baseline's coin flips come from their own evaluation stream.
    coins = np.random.Generator(np.random.PCG64(np.random.SeedSequence(EVAL_SEED_BASE, spawn_key=(1,))))
    decide = random_decider(coins.random((episodes, config.horizon)))
    baselines = {RANDOM_BASELINE: mean_of_tenths(replay(config, uniforms, decide).returns_tenths)}
    for name, table in _BASELINE_TABLES.items():
        baselines[name] = mean_of_tenths(replay(config, uniforms, observation_decider(table)).returns_tenths)
    return Reference(best, solution.value, baselines)


def exact_baselines(config: EnvConfig) -> dict[str, float]:
    """Exact expected return of each baseline in :data:`BASELINES` (policy evaluation, no sampling)."""
    exact = {RANDOM_BASELINE: expected_return_random(config)}
    for name, table in _BASELINE_TABLES.items():
        exact[name] = expected_return(config, table)
    return exact


@dataclass(frozen=True)
class VerificationReport:
    """What replaying a policy on the evaluation suite showed."""

    mean: float
    std: float
    ci95: float
    """Half-width of the 95% confidence interval of the mean (normal approximation)."""
    min: float
    max: float
    episodes: int
    suite: str
    replay_digest: str
    expected: float
    """Exact expected return of the policy (policy evaluation), for reference."""
    optimum: float
    optimum_expected: float
    fraction_of_optimum: float
    """mean / optimum, both on the same suite."""
    baselines: dict[str, float] = field(default_factory=dict)
    action_share: tuple[float, ...] = ()
    """Share of each action over the suite's steps."""

    @property
    def interval(self) -> Interval:
        """The 95% confidence interval of the mean."""
        return Interval(self.mean, self.ci95)

    @property
    def action_entropy(self) -> float:
        """Entropy (bits) of the action distribution."""
        return -sum(p * math.log2(p) for p in self.action_share if p > 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["action_share"] = list(self.action_share)
        return out


def summarise(outcome: ReplayOutcome, suite: str) -> dict[str, Any]:
    """Mean, spread, confidence interval, range and digest of a replay."""
    returns = outcome.returns
    n = len(returns)
    std = float(returns.std(ddof=1)) if n > 1 else 0.0
    total = int(outcome.action_counts.sum())
    interval = Interval.of(mean_of_tenths(outcome.returns_tenths), std, n)
    return {
        "mean": interval.center,
        "std": std,
        "ci95": interval.half_width,
        "min": float(returns.min()),
        "max": float(returns.max()),
        "episodes": n,
        "suite": suite,
        "replay_digest": replay_digest(suite, outcome.returns_tenths),
        "action_share": tuple(float(c) / total for c in outcome.action_counts),
    }


def verify(policy: Policy, episodes: int = DEFAULT_EPISODES) -> VerificationReport:
    """Replay ``policy`` on the evaluation suite and place it against the optimum and baselines."""
    config = policy.config
    actions = policy.action_array()
    outcome = replay(config, suite_uniforms(config, episodes), observation_decider(actions))
    ref = reference(config, episodes)
    stats = summarise(outcome, suite_id(episodes))
    return VerificationReport(
        **stats,
        expected=expected_return(config, actions),
        optimum=ref.optimum,
        optimum_expected=ref.optimum_expected,
        fraction_of_optimum=stats["mean"] / ref.optimum,
        baselines=dict(ref.baselines),
    )
