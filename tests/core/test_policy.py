"""Tests of greedy policies, their canonical JSON identity and the strict policy-file parser.

Spec: the docstring of :mod:`policyledger_core.sim.environment` (observation index of section 1,
rewards of section 4.1 for the myopic rule of section 8). A policy file is untrusted input: it must
be rejected with a ``PolicyError`` that names the offending field, and nothing in it may
ever be evaluated.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyledger_core.policy import (
    MAX_POLICY_BYTES,
    MYOPIC_ACTIONS,
    SCHEMA,
    SCHEMA_VERSION,
    TERMINAL_OBSERVATIONS,
    Policy,
    PolicyError,
    greedy_policy,
)
from policyledger_core.sim.config import ENV_ID, PRESETS, EnvConfig

STANDARD = PRESETS["standard"]
LOW, MEDIUM, HIGH = 0, 1, 2
SCAN, BRUTE_FORCE, DOS = 0, 1, 2
CRITICAL = 2
CONF_LOW, CONF_HIGH = 0, 1


def obs_index(severity: int, attack: int, health: int, confidence: int, duration: int) -> int:
    """Spec section 1."""
    return (((severity * 3 + attack) * 3 + health) * 2 + confidence) * 2 + duration


def decode(index: int) -> tuple[int, int, int, int, int]:
    for sev in range(3):
        for att in range(3):
            for health in range(3):
                for conf in range(2):
                    for dur in range(2):
                        if obs_index(sev, att, health, conf, dur) == index:
                            return sev, att, health, conf, dur
    raise AssertionError(index)


def spec_reward(severity: int, attack: int, confidence: int, action: int) -> float:
    """Spec 4.1, the 'total' column."""
    if action == 0:
        if severity == HIGH:
            return -10.0
        if severity == MEDIUM:
            return -4.0
        return 2.0 if confidence == CONF_LOW else -1.0
    if action == 1:
        return {LOW: 2.8, MEDIUM: 0.8, HIGH: -3.2}[severity]
    if action == 2:
        if attack == SCAN:
            return -1.5
        return 7.0 if severity >= MEDIUM else 2.0
    if action == 3:
        if severity == HIGH and confidence == CONF_HIGH:
            return 8.5
        return 3.5 if severity >= MEDIUM else -3.5
    if severity == HIGH:
        return 9.0 if attack == DOS else 5.0
    return -7.0


def spec_myopic(index: int) -> int:
    sev, att, _, conf, _ = decode(index)
    rewards = [spec_reward(sev, att, conf, a) for a in range(5)]
    return rewards.index(max(rewards))


CRITICAL_OBS = sorted(i for i in range(108) if decode(i)[2] == CRITICAL)
NON_CRITICAL_OBS = [i for i in range(108) if i not in CRITICAL_OBS]


def valid_doc(config: EnvConfig = STANDARD, actions: tuple[int, ...] = MYOPIC_ACTIONS) -> dict[str, Any]:
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "env_id": ENV_ID,
            "config": config.to_dict(), "actions": list(actions)}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")


def reject(data: bytes, *fragments: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        Policy.from_json(data)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    return info.value


# --- the myopic rule and greedy policies ------------------------------------------------------


def test_myopic_actions_follow_the_spec_rewards() -> None:
    assert len(MYOPIC_ACTIONS) == 108
    assert list(MYOPIC_ACTIONS) == [spec_myopic(i) for i in range(108)]
    assert frozenset(CRITICAL_OBS) == TERMINAL_OBSERVATIONS
    assert len(CRITICAL_OBS) == 36


def test_greedy_policy_takes_argmax_with_lowest_index_on_ties() -> None:
    rng = np.random.default_rng(3)
    q = rng.normal(size=(108, 5))
    visits = np.ones((108, 5), dtype=np.int64)
    tie_obs = obs_index(MEDIUM, SCAN, 0, CONF_LOW, 0)
    q[tie_obs] = [1.0, 3.0, 3.0, 0.0, 3.0]
    zero_obs = obs_index(LOW, DOS, 1, CONF_HIGH, 1)
    q[zero_obs] = 0.0
    policy = greedy_policy(STANDARD, q, visits)
    assert policy.actions[tie_obs] == 1
    assert policy.actions[zero_obs] == 0
    for i in NON_CRITICAL_OBS:
        if i not in (tie_obs, zero_obs):
            assert policy.actions[i] == int(np.argmax(q[i]))
            assert q[i, policy.actions[i]] == q[i].max()


def test_unvisited_observations_get_the_myopic_action() -> None:
    q = np.zeros((108, 5))
    q[:, 0] = 100.0  # IGNORE looks best everywhere ...
    visits = np.zeros((108, 5), dtype=np.int64)
    visited = obs_index(HIGH, DOS, 0, CONF_HIGH, 0)
    visits[visited, 2] = 1  # ... but only one observation was ever updated
    policy = greedy_policy(STANDARD, q, visits)
    assert policy.actions[visited] == 0
    for i in range(108):
        if i != visited:
            assert policy.actions[i] == MYOPIC_ACTIONS[i] == spec_myopic(i)
    # An all-zero Q row that was visited is a real (tied) estimate: lowest action.
    q2 = np.zeros((108, 5))
    policy2 = greedy_policy(STANDARD, q2, np.ones((108, 5), dtype=np.int64))
    assert all(policy2.actions[i] == 0 for i in NON_CRITICAL_OBS)


def test_greedy_policy_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        greedy_policy(STANDARD, np.zeros((107, 5)), np.zeros((107, 5), dtype=np.int64))
    with pytest.raises(ValueError):
        greedy_policy(STANDARD, np.zeros((108, 5)), np.zeros((108, 4), dtype=np.int64))


def test_critical_observations_always_get_the_myopic_action() -> None:
    # Through greedy_policy, even when such an observation looks visited ...
    q = np.zeros((108, 5))
    q[:, 0] = 50.0
    policy = greedy_policy(STANDARD, q, np.ones((108, 5), dtype=np.int64))
    for i in CRITICAL_OBS:
        assert policy.actions[i] == MYOPIC_ACTIONS[i]
    # ... and when a Policy is constructed with something else there.
    base = list(MYOPIC_ACTIONS)
    other = list(base)
    for i in CRITICAL_OBS:
        other[i] = (MYOPIC_ACTIONS[i] + 1 + i % 4) % 5
        assert other[i] != MYOPIC_ACTIONS[i]
    a, b = Policy(STANDARD, tuple(base)), Policy(STANDARD, tuple(other))
    assert b.actions == a.actions == MYOPIC_ACTIONS
    assert a == b
    assert a.hash == b.hash
    assert a.canonical_bytes() == b.canonical_bytes()
    # ... and when a file says so.
    doc = valid_doc(actions=tuple(other))
    assert Policy.from_json(dumps(doc)).hash == a.hash


# --- canonical JSON and hash ------------------------------------------------------------------


def test_canonical_json_holds_exactly_the_behaviour() -> None:
    policy = Policy(STANDARD, MYOPIC_ACTIONS)
    raw = policy.canonical_bytes()
    doc = json.loads(raw)
    assert set(doc) == {"schema", "version", "env_id", "config", "actions"}
    assert doc["schema"] == SCHEMA
    assert doc["version"] == SCHEMA_VERSION
    assert doc["env_id"] == ENV_ID
    assert doc["config"] == STANDARD.to_dict()
    assert set(doc["config"]) == {"horizon", "severity_probs", "escalation_prob", "type_probs",
                                  "high_confidence_probs"}
    assert doc["actions"] == list(MYOPIC_ACTIONS)
    # Sorted keys, compact separators, ASCII only.
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    assert policy.hash == hashlib.sha256(raw).hexdigest()
    assert len(policy.hash) == 64 and policy.hash == policy.hash.lower()
    assert policy.to_dict() == doc


def test_same_behaviour_same_hash_whatever_the_training() -> None:
    rng = np.random.default_rng(8)
    q = rng.normal(size=(108, 5))
    visits = rng.integers(1, 50, size=(108, 5))
    a = greedy_policy(STANDARD, q, visits)
    # Other Q values and visit counts with the same argmax: the same behaviour.
    b = greedy_policy(STANDARD, 3.0 * q + 7.0, visits * 13 + 2)
    assert a.actions == b.actions
    assert a.hash == b.hash
    # A preset and an equal configuration built by hand are the same environment.
    c = Policy(EnvConfig(horizon=12), MYOPIC_ACTIONS)
    d = Policy(PRESETS["short-burst"], MYOPIC_ACTIONS)
    assert c.hash == d.hash
    # numpy integers are the same actions as Python ints.
    e = Policy(STANDARD, tuple(np.array(a.actions, dtype=np.int64)))
    assert e.hash == a.hash


def test_one_changed_action_changes_the_hash() -> None:
    base = Policy(STANDARD, MYOPIC_ACTIONS)
    hashes = {base.hash}
    for i in NON_CRITICAL_OBS:
        changed = list(MYOPIC_ACTIONS)
        changed[i] = (changed[i] + 1) % 5
        hashes.add(Policy(STANDARD, tuple(changed)).hash)
    assert len(hashes) == 1 + len(NON_CRITICAL_OBS)


def test_configuration_is_part_of_the_identity() -> None:
    hashes = {Policy(cfg, MYOPIC_ACTIONS).hash for cfg in PRESETS.values()}
    assert len(hashes) == len(PRESETS)


# --- the strict parser -------------------------------------------------------------------------


def test_valid_file_is_accepted_in_any_formatting() -> None:
    policy = Policy(STANDARD, MYOPIC_ACTIONS)
    pretty = json.dumps(valid_doc(), indent=4).encode()
    parsed = Policy.from_json(pretty)
    assert parsed == policy
    assert parsed.hash == policy.hash
    assert Policy.from_json(policy.canonical_bytes()) == policy


@pytest.mark.parametrize(
    ("index", "value"),
    [(0, "1"), (5, 1.0), (7, True), (9, False), (11, None), (13, [1]), (15, {"a": 1}), (17, 5),
     (19, -1), (21, 2**60), (23, 3.5)],
)
def test_bad_action_values_name_the_entry(index: int, value: object) -> None:
    actions: list[object] = list(MYOPIC_ACTIONS)
    actions[index] = value
    reject(dumps({**valid_doc(), "actions": actions}), f"actions[{index}]")


def test_absurdly_long_integers_are_refused_by_the_parser() -> None:
    actions: list[object] = list(MYOPIC_ACTIONS)
    actions[21] = 2**70  # 22 digits: refused before any field is looked at
    reject(dumps({**valid_doc(), "actions": actions}), "integer with 22 digits is too large")


@pytest.mark.parametrize("size", [0, 107, 109, 216])
def test_wrong_number_of_actions_is_rejected(size: int) -> None:
    actions = (list(MYOPIC_ACTIONS) * 2)[:size]
    reject(dumps({**valid_doc(), "actions": actions}), "actions", "108")


@pytest.mark.parametrize("value", ["0,1,2", {"0": 1}, 3, None])
def test_actions_must_be_a_list(value: object) -> None:
    reject(dumps({**valid_doc(), "actions": value}), "actions")


@pytest.mark.parametrize("env_id", ["PolicyLedger/CyberDefense-v0", "CartPole-v1", "", 1, None])
def test_unknown_env_id_is_rejected(env_id: object) -> None:
    reject(dumps({**valid_doc(), "env_id": env_id}), "env_id")


def test_constructor_rejects_unknown_env_id_and_bad_actions() -> None:
    with pytest.raises(PolicyError, match="env_id"):
        Policy(STANDARD, MYOPIC_ACTIONS, env_id="Other-v1")
    with pytest.raises(PolicyError, match="actions"):
        Policy(STANDARD, MYOPIC_ACTIONS[:-1])
    with pytest.raises(PolicyError, match=r"actions\[3\]"):
        Policy(STANDARD, (*MYOPIC_ACTIONS[:3], 5, *MYOPIC_ACTIONS[4:]))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"severity_probs": [0.5, 0.3, 0.3]}, "severity_probs"),
        ({"type_probs": [0.4, 0.4, 0.1]}, "type_probs"),
        ({"severity_probs": [0.5, 0.5]}, "severity_probs"),
        ({"escalation_prob": 1.5}, "escalation_prob"),
        ({"escalation_prob": "0.6"}, "escalation_prob"),
        ({"high_confidence_probs": [0.3, 0.5, -0.1]}, "high_confidence_probs"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 24.0}, "horizon"),
        ({"horizon": True}, "horizon"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_config_is_rejected_naming_the_field(changes: dict[str, object], field: str) -> None:
    doc = valid_doc()
    doc["config"] = {**doc["config"], **changes}
    reject(dumps(doc), field)


def test_missing_config_field_is_rejected() -> None:
    doc = valid_doc()
    del doc["config"]["type_probs"]
    reject(dumps(doc), "type_probs", "missing")


@pytest.mark.parametrize("value", [[], "standard", None, 24])
def test_config_must_be_an_object(value: object) -> None:
    reject(dumps({**valid_doc(), "config": value}), "config")


NAN_CONFIG = dumps(valid_doc()).replace(b'"escalation_prob": 0.6', b'"escalation_prob": NaN')


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_number_tokens_are_rejected(token: bytes) -> None:
    data = dumps(valid_doc()).replace(b'"escalation_prob": 0.6', b'"escalation_prob": ' + token)
    assert token in data
    reject(data, token.decode().lstrip("-"))


def test_nan_token_rejection_names_the_field() -> None:
    """PolicyError's contract: 'the message says which field and why'."""
    assert b"NaN" in NAN_CONFIG
    reject(NAN_CONFIG, "NaN", "escalation_prob")


def test_unknown_top_level_field_is_rejected() -> None:
    reject(dumps({**valid_doc(), "trained_by": "me"}), "trained_by")
    reject(dumps({**valid_doc(), "hash": "0" * 64}), "hash")


@pytest.mark.parametrize("field", ["schema", "version", "env_id", "config", "actions"])
def test_missing_field_is_rejected(field: str) -> None:
    doc = valid_doc()
    del doc[field]
    reject(dumps(doc), field, "missing")


def test_duplicate_keys_are_rejected() -> None:
    text = dumps(valid_doc()).decode()
    dup_top = text[:-1] + ', "actions": ' + json.dumps([0] * 108) + "}"
    reject(dup_top.encode(), "duplicate", "actions")
    dup_config = text.replace('"horizon": 24', '"horizon": 24, "horizon": 12')
    assert dup_config != text
    reject(dup_config.encode(), "duplicate", "horizon")


def test_non_utf8_bytes_are_rejected() -> None:
    data = dumps(valid_doc()).replace(ENV_ID.encode(), ENV_ID.encode() + b"\xff\xfe")
    reject(data, "UTF-8")
    reject(b"\xff" + dumps(valid_doc()), "UTF-8")


def test_oversized_input_is_rejected() -> None:
    base = dumps(valid_doc())
    exactly = base[:-1] + b" " * (MAX_POLICY_BYTES - len(base)) + b"}"
    assert len(exactly) == MAX_POLICY_BYTES == 64 * 1024
    assert Policy.from_json(exactly) == Policy(STANDARD, MYOPIC_ACTIONS)
    over = base[:-1] + b" " * (MAX_POLICY_BYTES - len(base) + 1) + b"}"
    assert len(over) == MAX_POLICY_BYTES + 1
    reject(over, "too large")
    reject(b"[" * (1 << 20), "too large")


def test_deep_nesting_is_rejected() -> None:
    doc = valid_doc()
    doc["actions"] = [[[[[0]]]], *MYOPIC_ACTIONS[1:]]
    reject(dumps(doc), "nested")
    # Far deeper than the parser's recursion limit, still within the size limit.
    reject(b"[" * 30_000 + b"]" * 30_000, "nested")
    reject(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested")


@pytest.mark.parametrize("schema", ["policyledger/policy2", "", None, 1, "POLICYLEDGER/POLICY"])
def test_wrong_schema_is_rejected(schema: object) -> None:
    reject(dumps({**valid_doc(), "schema": schema}), "schema")


@pytest.mark.parametrize("version", [0, 2, -1, "1", True, None, [1]])
def test_wrong_version_is_rejected(version: object) -> None:
    reject(dumps({**valid_doc(), "version": version}), "version")


@pytest.mark.parametrize(
    "data",
    [b"", b"null", b"[]", b"42", b'"policy"', b"{", b"{'schema': 1}", b"\x00"],
)
def test_non_object_or_invalid_json_is_rejected(data: bytes) -> None:
    reject(data)


PAYLOADS = [
    "__import__('os').system('echo pwned')",
    "__import__('os').system('touch {marker}')",
    "eval(\"__import__('os').system('touch {marker}')\")",
]


def test_code_in_a_policy_file_is_never_evaluated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args) or 0)
    marker = tmp_path / "pwned"
    for template in PAYLOADS:
        payload = template.format(marker=marker)
        variants: list[dict[str, Any]] = []
        doc = valid_doc()
        variants.append({**doc, payload: 1})  # unknown top-level key
        variants.append({**doc, "env_id": payload})
        variants.append({**doc, "schema": payload})
        variants.append({**doc, "version": payload})
        variants.append({**doc, "actions": [payload] * 108})
        variants.append({**doc, "actions": payload})
        with_action = copy.deepcopy(doc)
        with_action["actions"][3] = payload
        variants.append(with_action)
        config_key = copy.deepcopy(doc)
        config_key["config"][payload] = 0.5
        variants.append(config_key)
        config_value = copy.deepcopy(doc)
        config_value["config"]["escalation_prob"] = payload
        variants.append(config_value)
        config_value2 = copy.deepcopy(doc)
        config_value2["config"]["horizon"] = payload
        variants.append(config_value2)
        for variant in variants:
            with pytest.raises(PolicyError):
                Policy.from_json(dumps(variant))
        # Also as the whole document.
        with pytest.raises(PolicyError):
            Policy.from_json(dumps(payload))
        with pytest.raises(PolicyError):
            Policy.from_json(payload.encode())
    assert calls == []
    assert not marker.exists()


# --- round trip ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    actions=st.lists(st.integers(min_value=0, max_value=4), min_size=108, max_size=108),
    preset=st.sampled_from(sorted(PRESETS)),
)
def test_round_trip_through_canonical_bytes(actions: list[int], preset: str) -> None:
    policy = Policy(PRESETS[preset], tuple(actions))
    for i in NON_CRITICAL_OBS:
        assert policy.actions[i] == actions[i]
    again = Policy.from_json(policy.canonical_bytes())
    assert again == policy
    assert again.hash == policy.hash
    assert again.config == PRESETS[preset]
    assert again.canonical_bytes() == policy.canonical_bytes()
    assert Policy.from_dict(json.loads(policy.canonical_bytes())) == policy
