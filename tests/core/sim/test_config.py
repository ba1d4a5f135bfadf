"""Tests of the environment configuration: validation, JSON form and presets.

Spec: the docstring of :mod:`policyledger_core.sim.environment`, sections 3 (defaults) and
6 (presets).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest

from policyledger_core.canonical import canonical_bytes
from policyledger_core.sim.config import PRESETS, ConfigError, EnvConfig, preset

FIELDS = ("horizon", "severity_probs", "escalation_prob", "type_probs", "high_confidence_probs")

# spec section 6 (H, severity_probs, escalation_prob); type and confidence probabilities
# are the defaults of section 3 for every preset
SPEC_PRESETS: dict[str, tuple[int, tuple[float, float, float], float]] = {
    "standard": (24, (0.5, 0.3, 0.2), 0.6),
    "short-burst": (12, (0.5, 0.3, 0.2), 0.6),
    "extended": (48, (0.5, 0.3, 0.2), 0.6),
    "high-pressure": (24, (0.3, 0.3, 0.4), 0.75),
    "sparse-attacks": (24, (0.7, 0.2, 0.1), 0.4),
}
SPEC_TYPE_PROBS = (0.4, 0.4, 0.2)
SPEC_HIGH_CONF_PROBS = (0.3, 0.5, 0.8)

NAN, INF = math.nan, math.inf

# (keyword arguments, the field the error must name)
INVALID = [
    # horizon: a positive whole number (not a bool, not a float)
    ({"horizon": 0}, "horizon"),
    ({"horizon": -1}, "horizon"),
    ({"horizon": -24}, "horizon"),
    ({"horizon": True}, "horizon"),
    ({"horizon": False}, "horizon"),
    ({"horizon": 2.5}, "horizon"),
    ({"horizon": 24.0}, "horizon"),  # would not have one canonical JSON form ("24" vs "24.0")
    ({"horizon": NAN}, "horizon"),
    ({"horizon": INF}, "horizon"),
    ({"horizon": "24"}, "horizon"),
    ({"horizon": None}, "horizon"),
    # distributions: three finite probabilities in [0, 1] that sum to 1
    ({"severity_probs": (0.5, 0.3, 0.3)}, "severity_probs"),
    ({"severity_probs": (0.5, 0.3, 0.1)}, "severity_probs"),
    ({"severity_probs": (0.5, 0.3, 0.21)}, "severity_probs"),
    ({"severity_probs": (0.5, 0.5)}, "severity_probs"),
    ({"severity_probs": (0.5, 0.3, 0.1, 0.1)}, "severity_probs"),
    ({"severity_probs": ()}, "severity_probs"),
    ({"severity_probs": (NAN, 0.5, 0.5)}, "severity_probs"),
    ({"severity_probs": (INF, 0.5, 0.5)}, "severity_probs"),
    ({"severity_probs": (1.5, -0.25, -0.25)}, "severity_probs"),  # sums to 1, outside [0, 1]
    ({"severity_probs": (-0.1, 0.6, 0.5)}, "severity_probs"),
    ({"severity_probs": ("0.5", 0.3, 0.2)}, "severity_probs"),
    ({"severity_probs": None}, "severity_probs"),
    ({"severity_probs": "abc"}, "severity_probs"),
    ({"type_probs": (0.4, 0.4, 0.4)}, "type_probs"),
    ({"type_probs": (0.5, 0.5)}, "type_probs"),
    ({"type_probs": (0.4, 0.4, 0.1, 0.1)}, "type_probs"),
    ({"type_probs": (1.2, -0.1, -0.1)}, "type_probs"),
    ({"type_probs": (NAN, 0.4, 0.2)}, "type_probs"),
    # per-severity confidence probabilities: three numbers in [0, 1] (they need not sum to 1)
    ({"high_confidence_probs": (0.3, 1.2, 0.8)}, "high_confidence_probs"),
    ({"high_confidence_probs": (0.3, -0.1, 0.8)}, "high_confidence_probs"),
    ({"high_confidence_probs": (NAN, 0.5, 0.8)}, "high_confidence_probs"),
    ({"high_confidence_probs": (0.3, 0.5, INF)}, "high_confidence_probs"),
    ({"high_confidence_probs": (0.3, 0.5)}, "high_confidence_probs"),
    ({"high_confidence_probs": (0.3, 0.5, 0.8, 0.9)}, "high_confidence_probs"),
    ({"high_confidence_probs": None}, "high_confidence_probs"),
    # escalation: one probability
    ({"escalation_prob": -0.1}, "escalation_prob"),
    ({"escalation_prob": 1.1}, "escalation_prob"),
    ({"escalation_prob": NAN}, "escalation_prob"),
    ({"escalation_prob": INF}, "escalation_prob"),
    ({"escalation_prob": -INF}, "escalation_prob"),
    ({"escalation_prob": "0.6"}, "escalation_prob"),
    ({"escalation_prob": None}, "escalation_prob"),
    ({"escalation_prob": True}, "escalation_prob"),
]


@pytest.mark.parametrize(("kwargs", "field"), INVALID, ids=[repr(k) for k, _ in INVALID])
def test_invalid_config_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EnvConfig(**kwargs)
    message = str(caught.value)
    assert message.startswith(field), message
    # the other fields are valid, so no other field may be blamed
    for other in FIELDS:
        if other != field:
            assert other not in message.replace(field, ""), message


@pytest.mark.parametrize(("kwargs", "field"), INVALID[:12] + INVALID[-8:])
def test_invalid_config_is_rejected_by_from_dict_too(kwargs: dict[str, Any], field: str) -> None:
    data = EnvConfig().to_dict() | kwargs
    with pytest.raises(ConfigError, match=field):
        EnvConfig.from_dict(data)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("kwargs", [
    {"horizon": 1},
    {"horizon": 48},
    {"horizon": 100},
    {"severity_probs": (1, 0, 0)},
    {"severity_probs": (0.0, 0.0, 1.0)},
    {"severity_probs": [1 / 3, 1 / 3, 1 / 3]},  # sums to 1 up to rounding
    {"severity_probs": (0.7, 0.2, 0.1)},  # 0.7 + 0.2 + 0.1 != 1.0 in binary floating point
    {"type_probs": [0.1, 0.2, 0.7]},
    {"escalation_prob": 0},
    {"escalation_prob": 1},
    {"high_confidence_probs": (0.0, 0.0, 0.0)},
    {"high_confidence_probs": (1.0, 1.0, 1.0)},
])
def test_valid_edge_configs_are_accepted(kwargs: dict[str, Any]) -> None:
    config = EnvConfig(**kwargs)
    assert EnvConfig.from_dict(config.to_dict()) == config


def test_defaults_are_the_spec_defaults() -> None:
    config = EnvConfig()
    assert config.horizon == 24
    assert config.severity_probs == (0.5, 0.3, 0.2)
    assert config.escalation_prob == 0.6
    assert config.type_probs == SPEC_TYPE_PROBS
    assert config.high_confidence_probs == SPEC_HIGH_CONF_PROBS


def test_config_is_frozen() -> None:
    config = EnvConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.horizon = 12  # type: ignore[misc]
    assert config.horizon == 24


def test_lists_become_tuples_and_numbers_floats() -> None:
    config = EnvConfig(severity_probs=[1, 0, 0], escalation_prob=1)  # type: ignore[arg-type]
    assert config.severity_probs == (1.0, 0.0, 0.0)
    assert isinstance(config.severity_probs, tuple)
    assert all(type(p) is float for p in config.severity_probs)
    assert type(config.escalation_prob) is float
    hash(config)  # usable as a key


# ------------------------------------------------------------------ dict and JSON forms


def test_to_dict_has_exactly_the_fields_as_json_values() -> None:
    data = EnvConfig().to_dict()
    assert data == {
        "horizon": 24,
        "severity_probs": [0.5, 0.3, 0.2],
        "escalation_prob": 0.6,
        "type_probs": [0.4, 0.4, 0.2],
        "high_confidence_probs": [0.3, 0.5, 0.8],
    }
    assert all(isinstance(v, int | float | list) for v in data.values())


@pytest.mark.parametrize("config", [
    *PRESETS.values(),
    EnvConfig(horizon=7, severity_probs=(0.1, 0.2, 0.7), escalation_prob=0.0,
              type_probs=(1.0, 0.0, 0.0), high_confidence_probs=(0.0, 1.0, 0.25)),
], ids=[*PRESETS, "custom"])
def test_to_dict_from_dict_round_trip(config: EnvConfig) -> None:
    assert EnvConfig.from_dict(config.to_dict()) == config
    # through canonical JSON text as well, with identical bytes the second time
    blob = canonical_bytes(config.to_dict())
    again = EnvConfig.from_dict(json.loads(blob))
    assert again == config
    assert canonical_bytes(again.to_dict()) == blob


def test_from_dict_rejects_unknown_fields() -> None:
    data = EnvConfig().to_dict() | {"seed": 42}
    with pytest.raises(ConfigError, match="seed"):
        EnvConfig.from_dict(data)
    # derived values are not part of the configuration's form either
    data = EnvConfig().to_dict() | {"severity_thresholds": [0.5, 0.8]}
    with pytest.raises(ConfigError, match="severity_thresholds"):
        EnvConfig.from_dict(data)


@pytest.mark.parametrize("field", FIELDS)
def test_from_dict_rejects_missing_fields(field: str) -> None:
    data = EnvConfig().to_dict()
    del data[field]
    with pytest.raises(ConfigError, match=field):
        EnvConfig.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "standard", 24, [("horizon", 24)]])
def test_from_dict_rejects_non_objects(data: object) -> None:
    with pytest.raises(ConfigError):
        EnvConfig.from_dict(data)


def test_canonical_json_of_the_standard_config() -> None:
    # sorted keys, no spaces, the spec's default values
    expected = (b'{"escalation_prob":0.6,"high_confidence_probs":[0.3,0.5,0.8],"horizon":24,'
                b'"severity_probs":[0.5,0.3,0.2],"type_probs":[0.4,0.4,0.2]}')
    assert canonical_bytes(EnvConfig().to_dict()) == expected
    assert canonical_bytes(preset("standard").to_dict()) == expected


def test_equal_configs_have_identical_canonical_json() -> None:
    a = EnvConfig(severity_probs=(1.0, 0.0, 0.0), escalation_prob=1.0, type_probs=(0.4, 0.4, 0.2))
    b = EnvConfig(severity_probs=[1, 0, 0], escalation_prob=1,  # type: ignore[arg-type]
                  type_probs=[0.4, 0.4, 0.2])  # type: ignore[arg-type]
    assert a == b
    assert canonical_bytes(a.to_dict()) == canonical_bytes(b.to_dict())
    # and a config's bytes do not change from one call to the next
    assert canonical_bytes(a.to_dict()) == canonical_bytes(a.to_dict())


def test_different_configs_have_different_canonical_json() -> None:
    blobs = {canonical_bytes(c.to_dict()) for c in PRESETS.values()}
    assert len(blobs) == len(PRESETS)


# ------------------------------------------------------------------ presets (spec section 6)


def test_preset_names_are_the_spec_table() -> None:
    assert set(PRESETS) == set(SPEC_PRESETS)


@pytest.mark.parametrize("name", sorted(SPEC_PRESETS))
def test_preset_values_match_the_spec_table(name: str) -> None:
    horizon, severity_probs, escalation_prob = SPEC_PRESETS[name]
    config = preset(name)
    assert config == PRESETS[name]
    assert config.horizon == horizon
    assert config.severity_probs == severity_probs
    assert config.escalation_prob == escalation_prob
    assert config.type_probs == SPEC_TYPE_PROBS
    assert config.high_confidence_probs == SPEC_HIGH_CONF_PROBS
    assert config.preset_name() == name


def test_standard_preset_is_the_defaults() -> None:
    assert preset("standard") == EnvConfig()


def test_presets_differ_in_their_dynamics() -> None:
    # spec 7: high-pressure and sparse-attacks change the dynamics, not just a seed
    standard = preset("standard")
    for name in ("high-pressure", "sparse-attacks"):
        other = preset(name)
        assert other.horizon == standard.horizon
        assert other.severity_probs != standard.severity_probs
        assert other.escalation_prob != standard.escalation_prob


def test_custom_config_is_no_preset() -> None:
    assert EnvConfig(horizon=25).preset_name() is None
    assert EnvConfig(escalation_prob=0.61).preset_name() is None


def test_unknown_preset_lists_the_known_names() -> None:
    with pytest.raises(ConfigError) as caught:
        preset("nope")
    message = str(caught.value)
    assert "nope" in message
    for name in SPEC_PRESETS:
        assert name in message
