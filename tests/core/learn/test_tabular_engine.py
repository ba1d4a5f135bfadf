"""A toy-text task trained in batches (the app's training process): exactly train_tabular's run.

What the app relies on: the batches hold every episode's return, epsilon, steps and mean of the
last 100, in order; the result's table, steps and training reward are those of a run of the
episodes reported, stopped or not; memory stays bounded for a run "until stopped"; the result
is a task policy and training fields the ledger accepts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from policyledger_core.learn.engine import EpisodeBatch
from policyledger_core.learn.hyper import Hyperparameters
from policyledger_core.learn.tabular import TabularRun, epsilons, recommended, train_tabular
from policyledger_core.learn.tabular_engine import TaskTrainingResult, train_task
from policyledger_core.ledger.entry import _validate_training
from policyledger_core.policy import TaskPolicy
from policyledger_core.tasks.spec import CATALOGUE
from policyledger_core.tasks.toytext import toy_text_task

ROOT = Path(__file__).resolve().parents[3]


def _run(task_id: str, hyper: Hyperparameters, algorithm: str = "q",
         stop_after: int | None = None) -> tuple[list[EpisodeBatch], TaskTrainingResult]:
    batches: list[EpisodeBatch] = []

    def should_stop() -> bool:
        return stop_after is not None and len(batches) >= stop_after

    gen = train_task(task_id, hyper, algorithm, should_stop)  # type: ignore[arg-type]
    while True:
        try:
            batches.append(next(gen))
        except StopIteration as done:
            return batches, done.value


@pytest.mark.parametrize("task_id", sorted(CATALOGUE))
@pytest.mark.parametrize("algorithm", ["q", "double-q"])
def test_batches_and_result_are_train_tabulars(task_id: str, algorithm: str) -> None:
    task = toy_text_task(task_id)
    hyper = recommended(task_id, algorithm).replace(episodes=3000, seed=7)  # type: ignore[arg-type]
    batches, result = _run(task_id, hyper, algorithm)
    reference = train_tabular(task.model(), task.horizon, hyper, algorithm)  # type: ignore[arg-type]
    assert [b.first for b in batches] == list(np.cumsum([0] + [len(b) for b in batches[:-1]]))
    returns = np.concatenate([b.returns[:, 0] for b in batches])
    assert np.array_equal(returns, reference.returns)
    assert np.array_equal(np.concatenate([b.steps[:, 0] for b in batches]), reference.steps)
    assert np.array_equal(np.concatenate([b.epsilon for b in batches]), epsilons(hyper, 0, 3000))
    rolling = np.concatenate([b.rolling[:, 0] for b in batches])
    expected = [reference.returns[max(0, i - 99):i + 1].mean() for i in range(3000)]
    assert np.allclose(rolling, expected, rtol=0, atol=1e-9)
    assert all(b.agents == 1 for b in batches)
    assert result.actions == tuple(int(a) for a in reference.actions)
    assert (result.episodes, result.env_steps, result.stopped) == (3000, reference.env_steps, False)
    assert result.training_reward == pytest.approx(reference.returns[-100:].mean(), abs=1e-12)
    assert (result.task_id, result.algorithm, result.hyper, result.agents) == (task_id, algorithm, hyper, 1)


def test_a_stopped_run_is_the_run_of_the_episodes_it_reports() -> None:
    task = toy_text_task("FrozenLake-v1")
    hyper = recommended("FrozenLake-v1").replace(episodes=None, seed=3)
    batches, result = _run("FrozenLake-v1", hyper, stop_after=4)
    assert len(batches) == 4 and result.stopped
    done = sum(len(b) for b in batches)
    assert result.episodes == done
    reference = train_tabular(task.model(), task.horizon, hyper.replace(episodes=done))
    assert result.actions == tuple(int(a) for a in reference.actions)
    assert result.env_steps == reference.env_steps
    assert result.training_reward == pytest.approx(reference.returns[-100:].mean(), abs=1e-12)


def test_batches_grow_towards_the_work_per_batch_but_stay_bounded() -> None:
    hyper = recommended("CliffWalking-v1").replace(episodes=None, seed=1)
    batches, _result = _run("CliffWalking-v1", hyper, stop_after=12)
    sizes = [len(b) for b in batches]
    assert sizes[0] == 64  # the first comes at once
    assert max(sizes) > sizes[0]  # a fast task gets bigger batches
    assert max(sizes) <= (1 << 20) // toy_text_task("CliffWalking-v1").horizon


def test_a_long_run_keeps_no_episode_history() -> None:
    task = toy_text_task("Taxi-v4")
    run = TabularRun(task.model(), task.horizon, Hyperparameters(episodes=None), keep_episodes=False)
    returns, steps = run.advance(50)
    assert len(returns) == len(steps) == 50 and run.episodes == 50
    assert run._returns == [] and run._steps == []  # what an "until stopped" run streams, never kept
    kept = TabularRun(task.model(), task.horizon, Hyperparameters(episodes=None))
    again, _ = kept.advance(50)
    assert np.array_equal(again, returns) and kept.result().episodes == 50


def test_the_result_is_a_task_policy_the_ledger_accepts() -> None:
    hyper = recommended("Taxi-v4").replace(seed=2)
    _batches, result = _run("Taxi-v4", hyper)
    policy = result.policy()
    assert isinstance(policy, TaskPolicy) and policy.env_id == "Taxi-v4"
    assert policy.actions == result.actions
    record = _validate_training(result.training_fields())
    assert record is not None
    assert (record.algorithm, record.episodes, record.seed, record.agents) == ("q", 1000, 2, 1)
    assert record.hyperparameters == hyper and record.training_reward == result.training_reward


def test_unknown_tasks_and_algorithms_are_refused_before_anything_runs() -> None:
    with pytest.raises(Exception, match="unknown task"):
        train_task("Blackjack-v1", Hyperparameters())
    with pytest.raises(ValueError, match="algorithm"):
        train_task("Taxi-v4", Hyperparameters(), "sarsa")  # type: ignore[arg-type]


_PREPARE_PROBE = """
from policyledger_core.learn import tabular
from policyledger_core.learn.tabular_engine import prepare
gen = prepare()
notes = []
while True:
    try:
        notes.append(next(gen))
    except StopIteration:
        break
print(notes, tabular.compiled(), tabular.cached_on_disk())
"""


def test_prepare_says_it_compiles_once_then_finds_both_kernels_on_disk(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", _PREPARE_PROBE], capture_output=True, text=True,
                           check=False, env=env, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split("\n")[0] == "['compiling'] True True"
    second = subprocess.run([sys.executable, "-c", _PREPARE_PROBE], capture_output=True, text=True,
                            check=False, env=env, cwd=ROOT)
    assert second.stdout.split("\n")[0] == "[] True True"  # the next start has nothing to say
