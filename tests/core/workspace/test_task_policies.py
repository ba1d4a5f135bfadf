"""Toy-text task policies through the product's core: their identity, their entries, verification by
Gymnasium's own replay and exact values, audits, bundles (an inflated claim is refused), ranking."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.canonical import canonical_bytes
from policyledger_core.ledger.entry import hash_body
from policyledger_core.ledger.signing import Publisher
from policyledger_core.policy import Policy, PolicyError, TaskPolicy, policy_from_dict, policy_from_json
from policyledger_core.tasks.spec import task_info
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.suite import DEFAULT_EPISODES
from policyledger_core.verify.tasks import verify_task
from policyledger_core.workspace.audit import check_entry
from policyledger_core.workspace.bundles import BundleError, export_bundle, import_bundle
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import rank
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_builder import prove_alone


def best(task_id: str) -> TaskPolicy:
    """The task's best stationary table (exact value known)."""
    actions = toy_text_task(task_id).best_stationary().actions
    return TaskPolicy(task_info(task_id), tuple(int(a) for a in actions))


def test_a_task_policy_is_named_by_its_task_and_table_and_parses_back() -> None:
    policy = best("Taxi-v4")
    doc = policy.to_dict()
    assert doc["env_id"] == "Taxi-v4"
    assert doc["config"] == {"kwargs": {"fickle_passenger": False, "is_rainy": False}, "horizon": 200}
    assert len(doc["actions"]) == 500
    again = policy_from_json(canonical_bytes(doc))
    assert again == policy and again.hash == policy.hash
    assert isinstance(policy_from_dict(Policy.from_dict(_cyber_doc()).to_dict()), Policy)  # dispatch


def _cyber_doc() -> dict[str, Any]:
    from policyledger_core.policy import MYOPIC_ACTIONS
    from policyledger_core.sim.config import preset

    return Policy(preset("standard"), MYOPIC_ACTIONS).to_dict()


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d["actions"].pop(), "actions: expected a list of 500 actions"),
    (lambda d: d["actions"].__setitem__(3, 6), "actions[3]: expected an action 0..5, got 6"),
    (lambda d: d["config"].__setitem__("horizon", 300), "no known task has the specification"),
    (lambda d: d["config"]["kwargs"].__setitem__("is_rainy", True), "no known task has the specification"),
    (lambda d: d["config"].pop("kwargs"), "exactly kwargs and horizon"),
    (lambda d: d.__setitem__("q_table", []), "unknown field"),
])
def test_a_task_policy_that_is_not_exactly_a_known_task_is_refused(change: Any, reason: str) -> None:
    doc = best("Taxi-v4").to_dict()
    change(doc)
    with pytest.raises(PolicyError, match=re.escape(reason)):
        policy_from_dict(doc)


def test_a_saved_task_policy_is_verified_by_gymnasium_and_valued_exactly(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    policy = best("FrozenLake-v1")
    saved = save_policy(ctx, policy, None, {"kind": "added"})
    entry = saved.entry
    assert saved.created and entry.body["env_id"] == "FrozenLake-v1"
    assert entry.body["config"] == {"kwargs": {"is_slippery": True, "map_name": "4x4"}, "horizon": 100}
    v = entry.verification
    assert v.exact_value == pytest.approx(0.740165, abs=1e-6)
    assert v.optimum == pytest.approx(0.744190, abs=1e-6)
    assert v.fraction_of_optimum == pytest.approx(0.99459, abs=1e-5)
    assert v.episodes == DEFAULT_EPISODES and abs(v.mean - v.exact_value) < 4 * v.ci95 + 0.01
    assert ctx.store.get(policy.hash) == policy
    reopened = Context.open(tmp_path / "ws", tmp_path / "cfg")
    assert reopened.ledger.problem is None
    assert check_entry(reopened.ledger, reopened.store, 0) is None  # every check, a replay included


@pytest.mark.parametrize(("change", "reason"), [
    ({"exact_value": -12.0}, "recorded fraction of the optimum"),  # seen without a replay
    ({"exact_value": -12.0, "fraction_of_optimum": 13 / 12},
     "recorded exact value -12.00, replay gives -13.00"),
    ({"optimum": -11.0}, "recorded optimum -11.00, finite-horizon value iteration gives -13.00"),
])
def test_a_task_entry_whose_figures_are_not_reproduced_fails_its_check(
        tmp_path: Path, change: dict[str, float], reason: str) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    save_policy(ctx, best("CliffWalking-v1"), None, {"kind": "added"})
    path = tmp_path / "ws" / "ledger.json"
    lines = path.read_bytes().split(b"\n")
    doc = json.loads(lines[1])
    doc["body"]["verification"].update(change)  # re-hashed and re-signed: a consistent forgery
    doc["hash"] = hash_body(canonical_bytes(doc["body"]))
    doc["signature"] = ctx.publisher.sign(doc["hash"])
    lines[1] = canonical_bytes({"body": doc["body"], "hash": doc["hash"], "signature": doc["signature"]})
    path.write_bytes(b"\n".join(lines))
    fresh = Context.open(tmp_path / "ws", tmp_path / "fresh-cfg")  # a reader who never saw it before
    assert fresh.ledger.problem is None
    assert reason in (check_entry(fresh.ledger, fresh.store, 0) or "")


def _resealed(data: bytes, key: Publisher, change: Any) -> bytes:
    doc = json.loads(data)
    body = doc["entry"]["body"]
    change(body["verification"])
    body["publisher"] = doc["publisher"] = key.public_hex
    doc["entry"]["hash"] = hash_body(canonical_bytes(body))
    doc["entry"]["signature"] = key.sign(doc["entry"]["hash"])
    doc["tlog_proof"] = prove_alone(doc["entry"], key)  # consistent: only the claim can be caught
    return canonical_bytes(doc) + b"\n"


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("exact_value", 7.95, "claimed exact value"),
    ("mean", 8.5, "claimed mean"),
])
def test_an_inflated_task_claim_in_a_bundle_is_refused(tmp_path: Path, field: str, value: float,
                                                       reason: str) -> None:
    home = Context.open(tmp_path / "home", tmp_path / "home-cfg")
    policy = best("Taxi-v4")
    save_policy(home, policy, None, {"kind": "added"})
    data = export_bundle(home, policy.hash)
    other = Context.open(tmp_path / "other", tmp_path / "other-cfg")
    key = Publisher.generate()
    forged = _resealed(data, key, lambda v: v.__setitem__(field, value))
    with pytest.raises(BundleError, match=reason):
        import_bundle(other, forged)
    assert len(other.ledger) == 0
    imported = import_bundle(other, data)  # the honest bundle: accepted, replayed in Gymnasium
    assert imported.saved.created and imported.saved.entry.verification.exact_value == pytest.approx(7.93)


def test_task_policies_rank_under_their_task(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    save_policy(ctx, best("Taxi-v4"), None, {"kind": "added"})
    save_policy(ctx, best("CliffWalking-v1"), None, {"kind": "added"})
    rows = rank(ctx.ledger.entries())
    assert {r.preset for r in rows} == {"Taxi", "CliffWalking"}
    only = rank(ctx.ledger.entries(), config=task_info("Taxi-v4"))
    assert [r.preset for r in only] == ["Taxi"] and only[0].fraction_of_optimum == 1.0


def test_the_task_report_names_the_replay_of_that_task() -> None:
    report = verify_task(best("CliffWalking-v1"), 50)
    assert report.mean == -13.0 and report.ci95 == 0.0 and report.expected == -13.0
    assert report.replay_digest != verify_task(best("CliffWalking-v1"), 51).replay_digest
