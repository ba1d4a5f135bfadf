"""Environment configuration: a frozen, validated value with a canonical JSON form.

The configuration (not a preset's name) is part of a policy's identity, so it
has exactly one JSON form and refuses anything it cannot stand behind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, TypeVar

from policyledger_core.canonical import field_problem
from policyledger_core.errors import BadInput

T = TypeVar("T")

# The task's Gymnasium id, recorded in every policy and ledger entry; it lives here so that
# the ledger can read it without importing Gymnasium.
ENV_ID = "PolicyLedger/CyberDefense-v1"
MAX_HORIZON = 1000
_PROB_TOLERANCE = 1e-9


class ConfigError(BadInput, ValueError):
    """An invalid configuration or hyperparameter; the message names the field."""


def _check_probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ConfigError(f"{name}: out of range, got a number with {len(str(value))} digits") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name}: must be finite, got {value!r}")
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{name}: must lie in [0, 1], got {value!r}")
    return number


def _check_distribution(name: str, values: object, size: int) -> tuple[float, ...]:
    if not isinstance(values, list | tuple) or len(values) != size:
        raise ConfigError(f"{name}: expected a list of {size} probabilities")
    probs = tuple(_check_probability(f"{name}[{i}]", v) for i, v in enumerate(values))
    total = math.fsum(probs)
    if abs(total - 1.0) > _PROB_TOLERANCE:
        raise ConfigError(f"{name}: probabilities must sum to 1, they sum to {total:.12g}")
    return probs


def thresholds(probs: tuple[float, ...]) -> tuple[float, ...]:
    """Cumulative thresholds for drawing a category from one uniform double.

    The category of ``u`` is the number of thresholds ``<= u``. The last
    cumulative sum is left out so rounding can never push ``u`` past the end.
    """
    return tuple(accumulate(probs))[:-1]


@dataclass(frozen=True)
class EnvConfig:
    """One configuration of the cyber-defense environment.

    Spec: the docstring of :mod:`policyledger_core.sim.environment`, sections 3 and 6.
    """

    horizon: int = 24
    """Steps per episode (H)."""
    severity_probs: tuple[float, float, float] = (0.5, 0.3, 0.2)
    """P(LOW), P(MEDIUM), P(HIGH) of a fresh severity draw."""
    escalation_prob: float = 0.6
    """Probability that a step after a HIGH step is forced to HIGH."""
    type_probs: tuple[float, float, float] = (0.4, 0.4, 0.2)
    """P(SCAN), P(BRUTE_FORCE), P(DOS)."""
    high_confidence_probs: tuple[float, float, float] = (0.3, 0.5, 0.8)
    """P(confidence HIGH) given severity LOW, MEDIUM, HIGH."""
    severity_thresholds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    type_thresholds: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        horizon = self.horizon
        if isinstance(horizon, bool) or not isinstance(horizon, int):
            raise ConfigError(f"horizon: expected a whole number, got {horizon!r}")
        if not 1 <= horizon <= MAX_HORIZON:
            raise ConfigError(f"horizon: must be between 1 and {MAX_HORIZON}, got {horizon}")
        sev = _check_distribution("severity_probs", self.severity_probs, 3)
        typ = _check_distribution("type_probs", self.type_probs, 3)
        conf = self.high_confidence_probs
        if not isinstance(conf, list | tuple) or len(conf) != 3:
            raise ConfigError("high_confidence_probs: expected a list of 3 probabilities")
        conf_t = tuple(_check_probability(f"high_confidence_probs[{i}]", v) for i, v in enumerate(conf))
        esc = _check_probability("escalation_prob", self.escalation_prob)
        object.__setattr__(self, "severity_probs", sev)
        object.__setattr__(self, "type_probs", typ)
        object.__setattr__(self, "high_confidence_probs", conf_t)
        object.__setattr__(self, "escalation_prob", esc)
        object.__setattr__(self, "severity_thresholds", thresholds(sev))
        object.__setattr__(self, "type_thresholds", thresholds(typ))

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-ready form (lists, not tuples)."""
        return {
            "horizon": self.horizon,
            "severity_probs": list(self.severity_probs),
            "escalation_prob": self.escalation_prob,
            "type_probs": list(self.type_probs),
            "high_confidence_probs": list(self.high_confidence_probs),
        }

    @classmethod
    def from_dict(cls, data: object) -> EnvConfig:
        """Parse and validate a configuration; unknown or missing fields are errors."""
        expected = {"horizon", "severity_probs", "escalation_prob", "type_probs",
                    "high_confidence_probs"}
        problem = field_problem("config", data, expected)
        if problem is not None or not isinstance(data, Mapping):
            raise ConfigError(problem or "config: expected an object")
        return cls(
            horizon=data["horizon"],
            severity_probs=data["severity_probs"],
            escalation_prob=data["escalation_prob"],
            type_probs=data["type_probs"],
            high_confidence_probs=data["high_confidence_probs"],
        )

    def preset_name(self) -> str | None:
        """The preset this configuration equals, if any."""
        for name, preset in PRESETS.items():
            if preset == self:
                return name
        return None


PRESETS: dict[str, EnvConfig] = {
    "standard": EnvConfig(),
    "short-burst": EnvConfig(horizon=12),
    "extended": EnvConfig(horizon=48),
    "high-pressure": EnvConfig(severity_probs=(0.3, 0.3, 0.4), escalation_prob=0.75),
    "sparse-attacks": EnvConfig(severity_probs=(0.7, 0.2, 0.1), escalation_prob=0.4),
}
"""The named configurations of the spec (:mod:`policyledger_core.sim.environment`, section 6)."""


def named(table: Mapping[str, T], name: str, what: str) -> T:
    """``table[name]``, or a ConfigError that lists the known names."""
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"{what}: unknown preset {name!r} (known: {', '.join(table)})") from None


def preset(name: str) -> EnvConfig:
    """The configuration of a named preset; a clear error for an unknown name."""
    return named(PRESETS, name, "preset")
