"""Every figure an entry records, bound to its replay: nothing that ranks a policy is taken on trust.

An entry records its verification figures (mean, std, ci95, episodes, suite,
replay digest, optimum, fraction of the optimum). Two checks bind them:

- :func:`consistency_problem` needs no replay of the policy: the suite is the
  one its episode count names, ci95 follows from std and N, the fraction from
  mean and optimum, and the optimum is the optimal policy's mean on that suite
  (value iteration, cached per configuration).
- :func:`replay_problem` compares every recorded figure with a fresh replay.

Figures computed from exact integer returns (mean, optimum, fraction, digest)
must be equal; std and ci95 come from a floating-point sum whose last bits may
differ between numpy builds, so they must agree to :data:`SPREAD_TOLERANCE`
(relative), far below any digit a person reads. Messages read like
"recorded mean 124.80, replay gives 94.80".
"""

from __future__ import annotations

from typing import Any

from policyledger_core.ledger.entry import Verification
from policyledger_core.sim.config import EnvConfig
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.spec import TaskInfo
from policyledger_core.verify.suite import (
    MAX_EPISODES,
    VerificationReport,
    ci95_half_width,
    suite_id,
    suite_optimum,
)

SPREAD_TOLERANCE = 1e-12
"""Relative difference allowed for std and ci95 (float summation order), and for nothing else."""
FIGURES = ("episodes", "suite", "mean", "std", "ci95", "optimum", "fraction_of_optimum", "replay_digest")
"""Every figure an entry records, in the order a difference is reported."""
TASK_FIGURES = ("episodes", "suite", "mean", "std", "ci95", "optimum", "exact_value", "fraction_of_optimum",
                "replay_digest")
"""A toy-text task's entry also records its table's exact value (named before the fraction it makes)."""
_SPREAD = ("std", "ci95")
_EXACT = ("optimum", "fraction_of_optimum", "exact_value")
"""A toy-text task's exact figures come from floating-point dynamic programming: the last bits may
differ between numpy builds, so they agree to the same relative tolerance as the spread."""
_LABELS = {"episodes": "episode count", "fraction_of_optimum": "fraction of the optimum",
           "replay_digest": "replay digest", "exact_value": "exact value"}


def show(a: Any, b: Any) -> tuple[str, str]:
    """The two values as text, with just enough digits to tell them apart (two at least)."""
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        if isinstance(a, int) and isinstance(b, int):
            return str(a), str(b)
        for digits in range(2, 18):
            left, right = f"{float(a):.{digits}f}", f"{float(b):.{digits}f}"
            if left != right:
                return left, right
        return repr(float(a)), repr(float(b))
    return str(a)[:70], str(b)[:70]


def _differ(name: str, recorded: Any, computed: object, task: bool = False) -> bool:
    if isinstance(computed, float):
        value = float(recorded)  # a hand-made entry may write 95 for 95.0
        if name in _SPREAD or (task and name in _EXACT):
            scale = max(abs(value), abs(computed), 1e-300)
            return abs(value - computed) > SPREAD_TOLERANCE * scale
        return value != computed
    return bool(recorded != computed)


def _mismatch(name: str, recorded: Any, computed: Any, source: str) -> str:
    left, right = show(float(recorded) if isinstance(computed, float) else recorded, computed)
    return f"recorded {name} {left}, {source} gives {right}"


def consistency_problem(verification: Verification, config: EnvConfig | TaskInfo) -> str | None:
    """What is wrong with recorded figures that can be seen without replaying the policy, or None."""
    v = verification
    episodes = v.episodes
    if episodes > MAX_EPISODES:
        return f"recorded episodes {episodes}, at most {MAX_EPISODES} can be replayed"
    if v.suite != suite_id(episodes):
        return _mismatch("suite", v.suite, suite_id(episodes), f"an episode count of {episodes}")
    ci95 = ci95_half_width(v.std, episodes)
    if v.std < 0 or _differ("ci95", v.ci95, ci95):
        source = f"std {v.std:.2f} over {episodes} episodes"
        return _mismatch("ci95", v.ci95, ci95, source)
    if isinstance(config, TaskInfo):
        return _task_consistency_problem(v, config)
    optimum = suite_optimum(config, episodes)
    if _differ("optimum", v.optimum, optimum):
        return _mismatch("optimum", v.optimum, optimum, "value iteration")
    fraction = v.mean / optimum
    if _differ("fraction_of_optimum", v.fraction_of_optimum, fraction):
        return _mismatch("fraction of the optimum", v.fraction_of_optimum, fraction,
                         "mean / optimum")
    return None


def _task_consistency_problem(v: Verification, task: TaskInfo) -> str | None:
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium: only when a task is checked

    optimum = toy_text_task(task.spec.env_id).optimum()
    if _differ("optimum", v.optimum, optimum, task=True):
        return _mismatch("optimum", v.optimum, optimum, "finite-horizon value iteration")
    if v.exact_value is None:
        return "no exact value recorded"
    fraction = fraction_of_optimum(v.exact_value, optimum)
    if _differ("fraction_of_optimum", v.fraction_of_optimum, fraction, task=True):
        return _mismatch("fraction of the optimum", v.fraction_of_optimum, fraction,
                         "exact value against the optimum")
    return None


def replay_problem(verification: Verification, report: VerificationReport) -> str | None:
    """The first recorded figure that the fresh replay ``report`` does not reproduce, or None."""
    task = verification.exact_value is not None
    fresh = verification_fields(report, task)
    for name in TASK_FIGURES if task else FIGURES:
        recorded = getattr(verification, name)
        if _differ(name, recorded, fresh[name], task):
            return _mismatch(_LABELS.get(name, name), recorded, fresh[name], "replay")
    return None


def verification_fields(report: VerificationReport, task: bool = False) -> dict[str, Any]:
    """What an entry records of a verification report (``task``: a toy-text task's, with the
    table's exact value)."""
    fields = {"mean": report.mean, "std": report.std, "ci95": report.ci95,
              "fraction_of_optimum": report.fraction_of_optimum, "optimum": report.optimum,
              "episodes": report.episodes, "suite": report.suite, "replay_digest": report.replay_digest}
    if task:
        fields["exact_value"] = report.expected
    return fields
