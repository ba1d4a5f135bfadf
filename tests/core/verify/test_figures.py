"""Every figure an entry records is bound to its replay: inflated figures never rank a policy.

The attack: an entry whose replay digest is genuine (the policy really plays
those episodes) but whose recorded mean, std, ci95, optimum or fraction were
changed, signed by a key that checks out. ``verify --replay`` must name the
figure and both values; ``verify`` without a replay catches what the other
figures contradict; the marketplace ranks nothing it has not reproduced here.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.cli.main import main
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.entry import Verification
from policyledger_core.verify.figures import consistency_problem, replay_problem, verification_fields
from policyledger_core.verify.suite import DEFAULT_EPISODES, Z95, verify
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import rank_ledger
from policyledger_core.workspace.publish import save_policy
from policyledger_core.workspace.reproduced import Reproductions, pending, reproduce
from tests.helpers.ledger_builder import make_policy

EPISODES = 50


def run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _append_forged(ctx: Context, seed: int, change: dict[str, Any], episodes: int = EPISODES) -> int:
    """Append (signed by this user) an entry for a real policy with some recorded figures changed."""
    policy = make_policy(seed)
    ctx.store.put(policy)
    figures = verification_fields(verify(policy, episodes))
    figures.update(change)
    entry = ctx.ledger.append({"policy_hash": policy.hash, "config": policy.config.to_dict(),
                               "verification": figures, "training": None, "origin": {"kind": "added"}},
                              ctx.publisher)
    return entry.index


def _honest(ctx: Context, seeds: range) -> None:
    for seed in seeds:
        assert save_policy(ctx, make_policy(seed), None, {"kind": "added"}, episodes=EPISODES).created


def _inflated(report_mean: float, std: float) -> dict[str, Any]:
    """Mean raised by 30 and ci95 set to 0.01, everything else made consistent with them."""
    fake_std = 0.01 * math.sqrt(EPISODES) / Z95
    return {"mean": report_mean + 30, "ci95": 0.01, "std": fake_std}


def _consistent(ctx: Context, seed: int, change: dict[str, Any]) -> dict[str, Any]:
    """``change`` plus the fraction recomputed from the changed mean (so only a replay can tell)."""
    truth = verification_fields(verify(make_policy(seed), EPISODES))
    merged = {**truth, **change}
    merged["fraction_of_optimum"] = merged["mean"] / truth["optimum"]
    return {k: merged[k] for k in (*change, "fraction_of_optimum")}


@pytest.fixture
def ctx(workspace: Path, tmp_path: Path) -> Context:
    return Context.open(workspace, tmp_path / "config")


def test_inflated_mean_with_a_genuine_digest_fails_verify_replay(ctx: Context) -> None:
    _honest(ctx, range(3))
    truth = verify(make_policy(10), EPISODES)
    index = _append_forged(ctx, 10, _consistent(ctx, 10, _inflated(truth.mean, truth.std)))
    code, out, err = run("verify", "--replay", "--workspace", ctx.workspace.root)
    assert code == 1, (out, err)
    assert f"entry {index}: recorded mean {truth.mean + 30:.2f}, replay gives {truth.mean:.2f}" in out


@pytest.mark.parametrize("figure", ["std", "ci95", "mean", "optimum", "fraction_of_optimum"])
def test_each_figure_is_compared_with_the_replay(figure: str) -> None:
    policy = make_policy(3)
    report = verify(policy, EPISODES)
    recorded = verification_fields(report)
    assert replay_problem(Verification(**recorded), report) is None
    recorded[figure] = recorded[figure] + 0.25
    problem = replay_problem(Verification(**recorded), report)
    label = figure.replace("fraction_of_optimum", "fraction of the optimum")
    assert problem is not None and problem.startswith(f"recorded {label} "), problem
    assert "replay gives" in problem


def test_figures_as_recorded_round_trip_through_json_exactly() -> None:
    report = verify(make_policy(4), EPISODES)
    recorded = json.loads(json.dumps(verification_fields(report)))
    assert replay_problem(Verification(**recorded), report) is None
    assert consistency_problem(Verification(**recorded), make_policy(4).config) is None


def test_tiny_differences_are_shown_with_enough_digits() -> None:
    report = verify(make_policy(5), EPISODES)
    recorded = verification_fields(report)
    recorded["mean"] = report.mean + 1e-6
    problem = replay_problem(Verification(**recorded), report)
    assert problem is not None
    left, right = problem.removeprefix("recorded mean ").split(", replay gives ")
    assert left != right


@pytest.mark.parametrize(("change", "fragment"), [
    ({"ci95": 0.01}, "recorded ci95 0.01"),
    ({"fraction_of_optimum": 1.15}, "recorded fraction of the optimum 1.15"),
    ({"optimum": 50.0}, "recorded optimum 50.00, value iteration gives"),
    ({"suite": "eval-v1/n=49"}, "recorded suite eval-v1/n=49"),
])
def test_verify_without_replay_checks_what_needs_no_replay(ctx: Context, change: dict[str, Any],
                                                           fragment: str) -> None:
    _honest(ctx, range(2))
    index = _append_forged(ctx, 10, change)
    code, out, _ = run("verify", "--workspace", ctx.workspace.root, "--json")
    data = json.loads(out)
    assert code == 1
    assert data["problem"]["index"] == index
    assert fragment in data["problem"]["reason"], data["problem"]


def test_the_shipped_style_entries_pass_both_checks(ctx: Context) -> None:
    _honest(ctx, range(4))
    report = run_to_end(audit(ctx.ledger, ctx.store, replay=True))
    assert report.ok and report.replayed == 4


# -- the marketplace ranks only what was reproduced here ------------------------------------------


def test_an_inflated_entry_is_never_ranked_and_becomes_a_problem(ctx: Context, tmp_path: Path) -> None:
    _honest(ctx, range(3))
    truth = verify(make_policy(10), EPISODES)
    index = _append_forged(ctx, 10, _consistent(ctx, 10, _inflated(truth.mean, truth.std)))
    # Another user (no reproductions yet) opens the workspace: nothing is ranked before a replay.
    other = Context.open(ctx.workspace.root, tmp_path / "other-config")
    assert rank_ledger(other.ledger, other.reproductions) == []
    assert pending(other.ledger, other.reproductions) == [0, 1, 2, index]
    report = run_to_end(reproduce(other.ledger, other.store, other.reproductions,
                                  pending(other.ledger, other.reproductions)))
    assert report.reproduced == 3
    assert report.problem is not None and report.problem.index == index
    assert "recorded mean" in report.problem.reason
    rows = rank_ledger(other.ledger, other.reproductions)
    assert make_policy(10).hash not in [r.policy_hash for r in rows]
    assert len(rows) == 3
    assert other.ledger.read_only  # the mismatch is a problem at that entry, as after an audit


def test_reproductions_are_remembered_per_user_across_runs(ctx: Context, tmp_path: Path) -> None:
    _honest(ctx, range(2))
    config = tmp_path / "other-config"
    first = Context.open(ctx.workspace.root, config)
    assert pending(first.ledger, first.reproductions) == [0, 1]
    run_to_end(reproduce(first.ledger, first.store, first.reproductions, [0, 1]))
    again = Context.open(ctx.workspace.root, config)
    assert pending(again.ledger, again.reproductions) == []
    assert len(rank_ledger(again.ledger, again.reproductions)) == 2
    assert Reproductions(tmp_path / "third").path.exists() is False


def test_own_new_entries_are_reproduced_by_the_replay_that_made_them(ctx: Context) -> None:
    _honest(ctx, range(2))
    assert pending(ctx.ledger, ctx.reproductions) == []
    assert len(rank_ledger(ctx.ledger, ctx.reproductions)) == 2


def test_cli_list_replays_what_is_waiting_once(ctx: Context, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _honest(ctx, range(2))
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "colleague"))
    code, out, _ = run("list", "--workspace", ctx.workspace.root, "--json")
    data = json.loads(out)
    assert code == 0 and data["replayed_now"] == 2 and len(data["rows"]) == 2
    code, out, _ = run("list", "--workspace", ctx.workspace.root, "--json")
    assert json.loads(out)["replayed_now"] == 0


def test_inflated_entry_makes_cli_list_report_the_problem(ctx: Context, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _honest(ctx, range(2))
    raised = {"mean": verify(make_policy(10), EPISODES).mean + 5}
    index = _append_forged(ctx, 10, _consistent(ctx, 10, raised))
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(tmp_path / "colleague"))
    code, out, _ = run("list", "--workspace", ctx.workspace.root, "--json")
    data = json.loads(out)
    assert code == 0
    assert sorted(r["first_entry"] for r in data["rows"]) == [0, 1]
    assert data["problem"].startswith(f"entry {index}: recorded mean")


def test_default_suite_figures_of_a_real_policy_are_consistent() -> None:
    policy = make_policy(6, "standard")
    report = verify(policy, DEFAULT_EPISODES)
    assert consistency_problem(Verification(**verification_fields(report)), policy.config) is None
