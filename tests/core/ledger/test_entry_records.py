"""An entry's verification and origin are typed, frozen records read once, not dicts copied per read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import Hyperparameters
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.entry import Origin, Verification, validate_body
from policyledger_core.sim.config import preset
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import publish_run, save_policy
from tests.helpers.ledger_builder import EPISODES, make_policy


def test_verification_and_origin_are_frozen_records_of_the_body(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    entry = save_policy(ctx, make_policy(1), None, {"kind": "added"}, episodes=EPISODES).entry
    v = entry.verification
    assert isinstance(v, Verification) and v is entry.verification  # read once, not copied per access
    assert dataclasses.asdict(v) == {**entry.body["verification"], "exact_value": None}  # a task's only
    assert entry.origin == Origin("added") and entry.origin.first_publisher is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.mean = 1e9  # type: ignore[misc]


def test_an_imported_origin_names_its_first_publisher() -> None:
    recorded = {"kind": "imported", "publisher": "a" * 64, "entry_hash": "b" * 64, "signature": "c" * 128}
    origin = Origin.of(recorded)
    assert origin.first_publisher == "a" * 64 and origin.entry_hash == "b" * 64
    assert Origin.of({"kind": "trained"}).first_publisher is None


def test_a_hand_written_whole_number_reads_as_the_same_figure(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    body = save_policy(ctx, make_policy(3), None, {"kind": "added"}, episodes=EPISODES).entry.body
    written = {**body, "verification": {**body["verification"], "mean": 95, "optimum": 100}}
    _, v, _, _ = validate_body(written)
    assert v.mean == 95.0 and isinstance(v.mean, float) and isinstance(v.optimum, float)


def test_a_trained_entry_records_how_it_was_learned(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    hyper = Hyperparameters(episodes=30, seed=7)
    result = run_to_end(train_agents(preset("short-burst"), hyper, "double-q", 3))
    best = publish_run(ctx, result).best.entry
    training = best.training
    assert training is not None
    assert (training.algorithm, training.episodes, training.seed, training.agents) == ("double-q", 30, 7, 3)
    assert training.hyperparameters == hyper
    assert training.summary() == "Double Q-learning, 30 episodes, seed 7, K=3"
    assert "learning_rate = 0.3" in training.settings().splitlines()
    added = save_policy(ctx, make_policy(2), None, {"kind": "added"}, episodes=EPISODES).entry
    assert added.training is None
