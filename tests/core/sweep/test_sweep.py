"""Running a sweep: the same policies on every backend, seed groups, chaining, stopping, failures."""

from __future__ import annotations

import math
import multiprocessing as mp
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.single import run_to_end
from policyledger_core.sim.config import preset
from policyledger_core.sweep.backends import BackendUnavailable, Finished, LocalBackend, RayBackend, backend
from policyledger_core.sweep.execute import run_sweep
from policyledger_core.sweep.plan import RunSpec, plan
from policyledger_core.sweep.runs import RunOutcome, run_one
from policyledger_core.sweep.summary import t95
from policyledger_core.workspace.context import Context

SPECS = plan(["standard", "short-burst"], ["q"], [("learning_rate", [0.5, 1.0])], seeds=3, episodes=400)


@pytest.fixture(scope="module")
def local_result() -> Any:
    return run_sweep(SPECS, LocalBackend(2), chain="none")


def test_every_run_finishes_with_the_policy_a_direct_run_trains(local_result: Any) -> None:
    assert not local_result.stopped and not local_result.failed
    assert [r.spec for r in local_result.runs] == SPECS  # plan order, whatever finished first
    for run in local_result.runs[::4]:
        direct = run_to_end(train_agents(preset(run.spec.preset), run.spec.hyper, "q", 1))
        assert run.policy_hash == direct.policy().hash
    again = run_one(SPECS[5])
    assert again.policy_hash == local_result.runs[5].policy_hash
    assert again.verified_reward == local_result.runs[5].verified_reward


def test_seed_groups_have_the_mean_interval_and_worst_seed(local_result: Any) -> None:
    groups = local_result.groups
    assert len(groups) == 4
    for group in groups:
        row = group.row()
        rewards = [r.verified_reward for r in group.runs]
        assert row["seeds"] == [0, 1, 2]
        assert row["mean"] == pytest.approx(statistics.fmean(rewards))
        assert row["ci95"] == pytest.approx(4.303 * statistics.stdev(rewards) / math.sqrt(3))
        assert row["ci95_low"] == pytest.approx(row["mean"] - row["ci95"])
        assert row["worst_reward"] == min(rewards)
        assert row["worst_seed"] == group.runs[rewards.index(min(rewards))].spec.seed


def test_json_rows_have_the_promised_fields(local_result: Any) -> None:
    data = local_result.to_json()
    assert set(data) >= {"runs", "groups", "chained", "backend", "wall_seconds"}
    run = data["runs"][0]
    assert set(run) >= {"preset", "algorithm", "seed", "hyperparameters", "policy_hash", "verified_reward",
                        "ci95", "fraction_of_optimum", "env_steps", "train_seconds"}
    assert run["hyperparameters"]["learning_rate"] == 0.5 and "seed" not in run["hyperparameters"]
    assert data["backend"] == "local" and data["wall_seconds"] > 0


class _Replay:
    """A backend that hands back given outcomes (in a given order), for the orchestration alone."""

    name = "replay"
    workers = 1

    def __init__(self, items: Sequence[Finished]) -> None:
        self.items = items

    def run(self, specs: Sequence[RunSpec], should_stop: Any) -> Iterator[Finished]:
        for item in self.items:
            if should_stop():
                return
            yield item


@pytest.fixture(scope="module")
def outcomes() -> list[RunOutcome]:
    specs = plan(["short-burst", "standard"], ["q", "double-q"], [], seeds=2, episodes=300)
    return [run_one(spec) for spec in specs]


def _ctx(workspace: Path) -> Context:
    return Context.open(workspace)


def test_chain_best_chains_the_highest_lower_bound_per_preset(outcomes: list[RunOutcome],
                                                                workspace: Path) -> None:
    ctx = _ctx(workspace)
    backwards = [(i, o) for i, o in enumerate(outcomes)][::-1]  # arrival order must not matter
    result = run_sweep([o.spec for o in outcomes], _Replay(backwards), "best", ctx)
    assert [c["preset"] for c in result.chained] == ["short-burst", "standard"]
    for chained in result.chained:
        mine = [o for o in outcomes if o.spec.preset == chained["preset"]]
        best = max(mine, key=lambda o: (o.lower, o.verified_reward))
        assert chained["policy_hash"] == best.policy_hash and chained["new_entry"]
    assert len(ctx.ledger) == 2
    assert all(r.result is None for r in result.runs)  # the others did not keep their tables


def test_chain_all_and_none(outcomes: list[RunOutcome], workspace: Path) -> None:
    ctx = _ctx(workspace)
    result = run_sweep([o.spec for o in outcomes], _Replay(list(enumerate(outcomes))), "all", ctx)
    assert len(result.chained) == len(outcomes)
    assert len(ctx.ledger) == len({o.policy_hash for o in outcomes})  # one entry per distinct policy
    nothing = run_sweep([o.spec for o in outcomes], _Replay(list(enumerate(outcomes))), "none")
    assert nothing.chained == []


def test_a_stopped_sweep_keeps_what_finished(outcomes: list[RunOutcome], workspace: Path) -> None:
    seen: list[int] = []

    def progress(done: int, total: int, elapsed: float) -> None:
        seen.append(done)

    result = run_sweep([o.spec for o in outcomes], _Replay(list(enumerate(outcomes))), "best",
                       _ctx(workspace), should_stop=lambda: len(seen) >= 3, progress=progress)
    assert result.stopped and len(result.runs) == 3 and result.total == len(outcomes)
    assert result.chained  # the best of what finished is still chained


def test_a_failed_run_is_reported_and_the_others_kept(outcomes: list[RunOutcome]) -> None:
    items: list[Finished] = [(0, outcomes[0]), (1, MemoryError("out of memory")), (2, outcomes[2])]
    result = run_sweep([o.spec for o in outcomes[:3]], _Replay(items), "none")
    assert [r.spec for r in result.runs] == [outcomes[0].spec, outcomes[2].spec]
    assert result.failed == [(outcomes[1].spec, "MemoryError: out of memory")]
    assert not result.stopped


def test_the_local_pool_stops_at_once_and_leaves_no_process() -> None:
    specs = plan(["standard"], ["q"], [], seeds=40, episodes=20_000)
    got: list[Finished] = []
    runner = LocalBackend(2)
    for item in runner.run(specs, should_stop=lambda: len(got) >= 1):
        got.append(item)
    assert len(got) == 1
    assert mp.active_children() == []  # the runs under way were abandoned, not waited for


def test_backend_choice_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BackendUnavailable, match="--address: only with --backend ray"):
        backend("local", "host:6379")
    with pytest.raises(BackendUnavailable, match="--backend: must be one of local, ray"):
        backend("slurm")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(BackendUnavailable, match=r"needs Ray: pip install 'policyledger\[cluster\]'"):
        list(RayBackend().run(SPECS[:1], lambda: False))


def test_ray_gives_exactly_the_local_runs(ray_instance: Any, local_result: Any) -> None:
    result = run_sweep(SPECS, RayBackend(), chain="none")
    assert result.backend == "ray" and not result.failed
    assert [r.policy_hash for r in result.runs] == [r.policy_hash for r in local_result.runs]
    assert [r.verified_reward for r in result.runs] == [r.verified_reward for r in local_result.runs]
    assert ray_instance.is_initialized()  # a Ray this process had joined stays joined
    assert t95(2) == 4.303


def test_a_run_keeps_its_training_curve_and_groups_average_it(local_result: Any) -> None:
    run = local_result.runs[0]
    episodes, values = run.curve
    assert episodes[0] == 0 and episodes[-1] == 399 and len(episodes) == 200
    batches = []
    training = train_agents(preset(run.spec.preset), run.spec.hyper, "q", 1)
    while True:
        try:
            batches.append(next(training))
        except StopIteration:
            break
    rolling = [float(v) for b in batches for v in b.rolling[:, 0]]
    assert list(values) == [rolling[e] for e in episodes]
    group = local_result.groups[0]
    xs, mean, half = group.curve()
    assert xs == list(episodes) and half is not None
    at = [r.curve[1][50] for r in group.runs]
    assert mean[50] == pytest.approx(statistics.fmean(at))
    assert half[50] == pytest.approx(4.303 * statistics.stdev(at) / math.sqrt(3))
