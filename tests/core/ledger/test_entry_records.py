"""An entry's verification and origin are typed, frozen records read once, not dicts copied per read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from policyledger_core.ledger.entry import Origin, Verification
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_builder import EPISODES, make_policy


def test_verification_and_origin_are_frozen_records_of_the_body(tmp_path: Path) -> None:
    ctx = Context.open(tmp_path / "ws", tmp_path / "cfg")
    entry = save_policy(ctx, make_policy(1), None, {"kind": "added"}, episodes=EPISODES).entry
    v = entry.verification
    assert isinstance(v, Verification) and v is entry.verification  # read once, not copied per access
    assert dataclasses.asdict(v) == entry.body["verification"]
    assert entry.origin == Origin("added") and entry.origin.first_publisher is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.mean = 1e9  # type: ignore[misc]


def test_an_imported_origin_names_its_first_publisher() -> None:
    recorded = {"kind": "imported", "publisher": "a" * 64, "entry_hash": "b" * 64, "signature": "c" * 128}
    origin = Origin.of(recorded)
    assert origin.first_publisher == "a" * 64 and origin.entry_hash == "b" * 64
    assert Origin.of({"kind": "trained"}).first_publisher is None


def test_a_hand_written_whole_number_reads_as_the_same_figure() -> None:
    fields = {"mean": 95, "std": 10.0, "ci95": 0.62, "episodes": 1000, "suite": "eval-v1/n=1000",
              "optimum": 100, "fraction_of_optimum": 0.95, "replay_digest": "d" * 64}
    v = Verification.of(fields)
    assert v.mean == 95.0 and isinstance(v.mean, float) and isinstance(v.optimum, float)
