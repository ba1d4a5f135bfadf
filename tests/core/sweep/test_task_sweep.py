"""Sweeping Gymnasium's toy-text tasks: tables trained by the tabular kernel, valued exactly, the
same on every backend and as a direct run; seed groups of the fraction of the optimum; the best
table of each task chained, replayed in Gymnasium."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from policyledger_core.learn.tabular import recommended, train_tabular
from policyledger_core.policy import TaskPolicy
from policyledger_core.sim.config import ConfigError
from policyledger_core.sweep.backends import Finished, LocalBackend, RayBackend
from policyledger_core.sweep.execute import SweepResult, run_sweep
from policyledger_core.sweep.plan import RunSpec, plan_tasks
from policyledger_core.sweep.runs import RunOutcome, TaskTable, run_one
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.spec import task_info
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.tasks import verify_task
from policyledger_core.workspace.context import Context

TASKS = ["Taxi-v4", "CliffWalking-v1"]
LEARNING_RATES = [0.5, 1.0]
EPISODES = 600  # few: Taxi's tables still differ across seeds at a learning rate of 0.5
SPECS = plan_tasks(TASKS, ["q"], [("learning_rate", LEARNING_RATES)], seeds=2, episodes=EPISODES)


@pytest.fixture(scope="module")
def local_result() -> SweepResult:
    return run_sweep(SPECS, LocalBackend(2), chain="none")


def test_the_plan_starts_from_each_tasks_recommended_hyperparameters() -> None:
    assert len(SPECS) == 2 * 2 * 2
    expected = [(task, lr, seed) for task in TASKS for lr in LEARNING_RATES for seed in (0, 1)]
    assert [(s.task, s.hyper.learning_rate, s.seed) for s in SPECS] == expected
    for spec in SPECS:
        assert spec.task is not None and spec.preset == "" and spec.agents == 1
        assert spec.subject == spec.task and spec.kind == "task"
        base = recommended(spec.task, "q")
        assert spec.hyper == base.replace(learning_rate=spec.hyper.learning_rate, episodes=EPISODES,
                                          seed=spec.seed)
    assert len({s.group for s in SPECS}) == 4  # seeds share a group, nothing else does
    double = plan_tasks(["Taxi-v4"], ["double-q"], [], seeds=1, episodes=None)
    assert double[0].hyper == recommended("Taxi-v4", "double-q")  # per algorithm, its own episodes too


def test_a_task_plan_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown task 'Pong-v5'"):
        plan_tasks(["Pong-v5"], ["q"], [], 1, None)
    with pytest.raises(ConfigError, match="--hyper: a task has only the 'recommended' preset"):
        plan_tasks(["Taxi-v4"], ["q"], [], 1, None, base="seed-defaults")
    invalid = re.escape("the setting epsilon_end=0.9, epsilon_start=0.5 is invalid")
    with pytest.raises(ConfigError, match=invalid):
        plan_tasks(["Taxi-v4"], ["q"], [("epsilon_end", [0.9]), ("epsilon_start", [0.5])], 1, None)
    with pytest.raises(ConfigError, match="--algorithm: must be one of q, double-q"):
        plan_tasks(["Taxi-v4"], ["sarsa"], [], 1, None)


def test_every_run_is_the_table_train_tabular_trains(local_result: SweepResult) -> None:
    assert not local_result.stopped and not local_result.failed
    assert [r.spec for r in local_result.runs] == SPECS  # plan order, whatever finished first
    for run in local_result.runs:
        assert run.spec.task is not None
        task = toy_text_task(run.spec.task)
        hyper = recommended(run.spec.task, "q").replace(learning_rate=run.spec.hyper.learning_rate,
                                                        episodes=EPISODES, seed=run.spec.seed)
        direct = train_tabular(task.model(), task.horizon, hyper, "q")
        assert run.policy_hash == TaskPolicy(task_info(run.spec.task), tuple(direct.actions)).hash
        exact = task.expected_return(direct.actions)
        assert run.exact_value == run.verified_reward == exact and run.ci95 == 0.0
        assert run.optimum_expected == task.optimum()
        assert run.fraction_of_optimum == fraction_of_optimum(exact, task.optimum())
        assert run.env_steps == direct.env_steps
        assert run.result is None  # nothing is chained: no table kept
        episodes, values = run.curve
        assert episodes[0] == 0 and episodes[-1] == EPISODES - 1
        assert values[-1] == pytest.approx(float(np.mean(direct.returns[-100:])))
        assert values[0] == direct.returns[0]
    taxi = [r.fraction_of_optimum for r in local_result.runs if r.spec.task == "Taxi-v4"]
    assert len(set(taxi)) > 1  # the seeds give different tables: the summary below is not trivial


def test_seed_groups_summarise_the_fraction_of_the_optimum(local_result: SweepResult) -> None:
    groups = local_result.groups
    assert len(groups) == 4
    for group in groups:
        row = group.row()
        fractions = [r.fraction_of_optimum for r in group.runs]
        values = [r.exact_value for r in group.runs]
        assert row["task"] == group.runs[0].spec.task and row["seeds"] == [0, 1]
        assert row["horizon"] == 200 and row["optimum_expected"] == group.runs[0].optimum_expected
        assert row["mean_fraction_of_optimum"] == pytest.approx(statistics.fmean(fractions))
        assert row["ci95"] == pytest.approx(12.706 * statistics.stdev(fractions) / math.sqrt(2))
        assert row["ci95_low"] == pytest.approx(row["mean_fraction_of_optimum"] - row["ci95"])
        assert row["mean_exact_value"] == pytest.approx(statistics.fmean(v for v in values if v is not None))
        assert row["worst_fraction_of_optimum"] == min(fractions)
        assert row["worst_seed"] == group.runs[fractions.index(min(fractions))].spec.seed
        assert "preset" not in row and "mean" not in row


def test_json_rows_name_the_task_and_its_exact_value(local_result: SweepResult) -> None:
    data = local_result.to_json()
    run = data["runs"][0]
    assert run["task"] == "Taxi-v4" and run["horizon"] == 200
    assert set(run) >= {"algorithm", "seed", "episodes", "hyperparameters", "policy_hash", "exact_value",
                        "optimum_expected", "fraction_of_optimum", "env_steps", "train_seconds"}
    assert "preset" not in run and "verified_reward" not in run  # valued exactly, not replayed
    assert run["hyperparameters"]["learning_rate"] == 0.5 and "seed" not in run["hyperparameters"]


def test_ray_gives_exactly_the_local_task_runs(ray_instance: Any, local_result: SweepResult) -> None:
    result = run_sweep(SPECS, RayBackend(), chain="none")
    assert result.backend == "ray" and not result.failed
    assert [r.policy_hash for r in result.runs] == [r.policy_hash for r in local_result.runs]
    assert [r.exact_value for r in result.runs] == [r.exact_value for r in local_result.runs]
    assert [r.fraction_of_optimum for r in result.runs] == [r.fraction_of_optimum for r in local_result.runs]


class _Replay:
    """A backend that hands back given outcomes (in a given order), for the orchestration alone."""

    name = "replay"
    workers = 1

    def __init__(self, items: Sequence[Finished]) -> None:
        self.items = items

    def run(self, specs: Sequence[RunSpec], should_stop: Any) -> Iterator[Finished]:
        yield from self.items


@pytest.fixture(scope="module")
def outcomes() -> list[RunOutcome]:
    return [run_one(spec) for spec in SPECS]  # in this process: each keeps its table


def test_chain_best_chains_one_verified_task_policy_per_task(outcomes: list[RunOutcome],
                                                              workspace: Path) -> None:
    ctx = Context.open(workspace)
    backwards = list(enumerate(outcomes))[::-1]  # arrival order must not matter
    result = run_sweep(SPECS, _Replay(backwards), "best", ctx)
    assert [c["task"] for c in result.chained] == sorted(TASKS)
    assert len(ctx.ledger) == 2
    for chained in result.chained:
        mine = [(i, o) for i, o in enumerate(outcomes) if o.spec.task == chained["task"]]
        _, best = max(mine, key=lambda p: (p[1].exact_value or 0.0, -p[0]))  # ties: planned first
        assert chained["policy_hash"] == best.policy_hash and chained["new_entry"]
        assert chained["seed"] == best.spec.seed and chained["exact_value"] == best.exact_value
        entry = ctx.ledger.find_policy(best.policy_hash)
        assert entry is not None and entry.index == chained["entry_index"]
        assert entry.body["env_id"] == chained["task"]
        policy = ctx.store.get(best.policy_hash)
        assert isinstance(policy, TaskPolicy) and policy.env_id == chained["task"]
        replay = verify_task(policy)  # the entry's figures are Gymnasium's replay and the exact value
        assert entry.verification.mean == replay.mean == chained["verified_reward"]
        assert entry.verification.replay_digest == replay.replay_digest
        assert entry.verification.exact_value == best.exact_value
        assert entry.training is not None and entry.training.hyperparameters == best.spec.hyper
        assert isinstance(best.result, TaskTable)
        assert entry.training.training_reward == best.result.training_reward
    assert all(r.result is None for r in result.runs)  # the others did not keep their tables


def test_chain_all_records_each_distinct_table(outcomes: list[RunOutcome], workspace: Path) -> None:
    ctx = Context.open(workspace)
    cliff = [(i, o) for i, o in enumerate(outcomes) if o.spec.task == "CliffWalking-v1"]
    result = run_sweep([o.spec for _, o in cliff], _Replay([(k, o) for k, (_, o) in enumerate(cliff)]),
                       "all", ctx)
    assert len(result.chained) == len(cliff)
    assert len(ctx.ledger) == len({o.policy_hash for _, o in cliff})  # one entry per distinct table
    again = [c["new_entry"] for c in result.chained]
    assert again.count(True) == len(ctx.ledger)
