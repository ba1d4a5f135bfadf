"""The training engine: the compiled kernel gives the numpy reference's results bit for bit.

What a user relies on: the same seed gives the same policy hash whichever engine, number of
threads or batch size trained it; batches hold exactly the reference's per-episode records;
stopping returns exactly what a run of the reported episodes learns.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from policyledger_core.learn import engine
from policyledger_core.learn.engine import EpisodeBatch, train_agents
from policyledger_core.learn.hyper import Hyperparameters, hyper_preset
from policyledger_core.learn.population import train_population
from policyledger_core.learn.single import EpisodeRecord, TrainingResult, run_to_end, train
from policyledger_core.sim.config import PRESETS, EnvConfig
from tests.helpers.training import collect

ALGORITHMS = ("q", "double-q")
SCHEDULES = {
    "recommended": hyper_preset("recommended"),
    "seed-defaults": hyper_preset("seed-defaults"),
    "constant": Hyperparameters(lr_schedule="constant", learning_rate=0.3, epsilon_decay=0.99),
    "count-floor": Hyperparameters(lr_schedule="count", learning_rate=1.0, lr_exponent=0.8, lr_min=0.05,
                                   initial_q=2.5, discount=0.95),
}


def unrolled(batches: list[EpisodeBatch]) -> list[Any]:
    return [record for batch in batches for record in batch.records()]


def same_result(a: TrainingResult, b: TrainingResult) -> None:
    assert np.array_equal(a.q, b.q)
    assert np.array_equal(a.visits, b.visits)
    assert np.array_equal(a.training_reward, b.training_reward)
    for name in ("episodes", "env_steps", "stopped", "algorithm"):
        assert getattr(a, name) == getattr(b, name), name
    for k in range(a.agents):
        assert a.policy(k).hash == b.policy(k).hash


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_compiled_single_agent_equals_the_reference(preset: str, algorithm: str, schedule: str) -> None:
    config: EnvConfig = PRESETS[preset]
    hyper = SCHEDULES[schedule].replace(episodes=400, seed=11)
    reference_records, reference = collect(train(config, hyper, algorithm))
    batches, compiled = collect(train_agents(config, hyper, algorithm, 1, engine="compiled"))
    same_result(compiled, reference)
    records = unrolled(batches)
    assert all(isinstance(r, EpisodeRecord) for r in records)
    assert records == reference_records  # every episode's return, epsilon, steps, mean and counts


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_compiled_population_equals_the_reference_on_any_number_of_threads(algorithm: str) -> None:
    config, hyper = PRESETS["high-pressure"], hyper_preset("recommended").replace(episodes=150, seed=5)
    reference_records, reference = collect(train_population(config, hyper, 7, algorithm))
    for workers in (1, 2, 3, 7):
        batches, compiled = collect(train_agents(config, hyper, algorithm, 7, engine="compiled",
                                                 workers=workers))
        same_result(compiled, reference)
        records = unrolled(batches)
        assert len(records) == len(reference_records) == 150
        for mine, theirs in zip(records, reference_records, strict=True):
            for k in range(7):
                assert mine.agent(k) == theirs.agent(k)


def test_population_agent_0_is_the_single_agent() -> None:
    config, hyper = PRESETS["standard"], hyper_preset("recommended").replace(episodes=300, seed=77)
    single = run_to_end(train_agents(config, hyper, "double-q", 1))
    population = run_to_end(train_agents(config, hyper, "double-q", 5))
    assert np.array_equal(population.q[0], single.q[0])
    assert population.policy(0).hash == single.policy().hash


def test_batch_size_never_changes_a_result(monkeypatch: pytest.MonkeyPatch) -> None:
    config, hyper = PRESETS["extended"], hyper_preset("recommended").replace(episodes=500, seed=3)
    big_batches, big = collect(train_agents(config, hyper, "q", 3))
    monkeypatch.setattr(engine, "CHUNK_STEPS", 7 * config.horizon * 3)  # 7 episodes a batch
    small_batches, small = collect(train_agents(config, hyper, "q", 3))
    assert len(small_batches) > len(big_batches)
    assert {len(b) for b in small_batches[:-1]} == {7}
    same_result(small, big)
    for mine, theirs in zip(unrolled(small_batches), unrolled(big_batches), strict=True):
        for k in range(3):
            assert mine.agent(k) == theirs.agent(k)


@pytest.mark.parametrize("agents", [1, 4])
def test_stopping_returns_exactly_the_episodes_reported(agents: int, monkeypatch: pytest.MonkeyPatch) -> None:
    config = PRESETS["short-burst"]
    monkeypatch.setattr(engine, "CHUNK_STEPS", 50 * config.horizon * agents)
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 3

    hyper = hyper_preset("recommended").replace(episodes=None, seed=9)
    batches, stopped = collect(train_agents(config, hyper, "q", agents, should_stop))
    assert stopped.stopped and stopped.episodes == 150 == sum(len(b) for b in batches)
    assert len(calls) == 3  # asked once a batch
    bounded = run_to_end(train_agents(config, hyper.replace(episodes=150), "q", agents))
    assert not bounded.stopped
    assert np.array_equal(stopped.q, bounded.q) and stopped.env_steps == bounded.env_steps


def test_the_numpy_engine_gives_the_same_batches() -> None:
    config, hyper = PRESETS["sparse-attacks"], hyper_preset("recommended").replace(episodes=300, seed=2)
    numpy_batches, by_numpy = collect(train_agents(config, hyper, "double-q", 2, engine="numpy"))
    compiled_batches, compiled = collect(train_agents(config, hyper, "double-q", 2, engine="compiled"))
    same_result(by_numpy, compiled)
    for name in ("returns", "epsilon", "steps", "rolling", "counts"):
        assert np.array_equal(np.concatenate([getattr(b, name) for b in numpy_batches]),
                              np.concatenate([getattr(b, name) for b in compiled_batches])), name


def test_a_batch_says_what_it_holds() -> None:
    hyper = Hyperparameters(episodes=120, seed=1)
    batches, result = collect(train_agents(PRESETS["standard"], hyper, "q", 3))
    first = batches[0]
    assert first.first == 0 and first.agents == 3
    assert first.returns.shape == first.steps.shape == first.rolling.shape == (len(first), 3)
    assert first.counts.shape == (len(first), 3, 5)
    assert np.array_equal(first.counts.sum(axis=2), first.steps)  # one action a step
    assert sum(int(b.steps.sum()) for b in batches) == result.env_steps
    assert np.array_equal(np.concatenate([b.episodes for b in batches]), np.arange(120))


def test_without_numba_training_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "compiled_available", lambda: False)
    assert engine.resolve("auto") == "numpy"
    with pytest.raises(ValueError, match="needs numba"):
        engine.resolve("compiled")
    result = run_to_end(train_agents(PRESETS["standard"], Hyperparameters(episodes=30, seed=4), "q", 1))
    reference = run_to_end(train(PRESETS["standard"], Hyperparameters(episodes=30, seed=4), "q"))
    same_result(result, reference)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"engine": "gpu"}, "engine: must be one of auto, compiled, numpy"),
    ({"agents": 0}, "agents: expected a whole number"),
    ({"algorithm": "sarsa"}, "algorithm: must be"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"algorithm": "q", "agents": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        train_agents(PRESETS["standard"], Hyperparameters(episodes=3), **args)


def test_the_shipped_policies_are_retrained_bit_for_bit() -> None:
    """Every trained entry of the shipped ledger names its settings; the compiled engine, on this
    machine, trains exactly the recorded policy from them."""
    import json
    from pathlib import Path

    from policyledger_core.learn.tabular import train_tabular
    from policyledger_core.policy import TaskPolicy
    from policyledger_core.sim.config import EnvConfig as Config
    from policyledger_core.tasks.spec import CATALOGUE, task_info
    from policyledger_core.tasks.toytext import toy_text_task

    lines = (Path(__file__).resolve().parents[3] / "ledger.json").read_text(encoding="utf-8").splitlines()
    bodies = [json.loads(line.lstrip(","))["body"] for line in lines[1:] if line.lstrip(",").startswith("{")]
    trained = [b for b in bodies if b["origin"]["kind"] == "trained"]
    cyber = [b for b in trained if b["env_id"] not in CATALOGUE]
    tasks = [b for b in trained if b["env_id"] in CATALOGUE]
    assert len(cyber) == 5 and sorted(b["env_id"] for b in tasks) == sorted(CATALOGUE)  # one per task
    for body in cyber:
        record = body["training"]
        config = Config(**body["config"])
        hyper = Hyperparameters.from_dict(record["hyperparameters"])
        result = run_to_end(train_agents(config, hyper, record["algorithm"], record["agents"]))
        assert result.policy().hash == body["policy_hash"]
    for body in tasks:  # the toy-text tasks' tabular kernel, from the recorded settings
        record = body["training"]
        task = toy_text_task(body["env_id"])
        hyper = Hyperparameters.from_dict(record["hyperparameters"])
        done = train_tabular(task.model(), task.horizon, hyper, record["algorithm"])
        table = TaskPolicy(task_info(body["env_id"]), tuple(int(a) for a in done.actions))
        assert table.hash == body["policy_hash"]


_USER_CACHE_PROBE = """
import sys
import numba.core.caching as caching

def not_writable(self):
    raise OSError("read-only package folder")

caching.InTreeCacheLocator.ensure_cache_path = not_writable  # as in a system-wide install
from policyledger_core.learn import kernels

print(kernels.cached_on_disk(), kernels.warm() >= 0, kernels.cached_on_disk())
"""


def test_the_kernel_is_cached_in_the_user_cache_when_the_package_folder_is_read_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "user-cache")
    first = subprocess.run([sys.executable, "-c", _USER_CACHE_PROBE], capture_output=True, text=True,
                           check=False, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["False", "True", "True"]
    assert list((tmp_path / "user-cache" / "numba").rglob("*.nbi"))  # the index, in the user's cache
    second = subprocess.run([sys.executable, "-c", _USER_CACHE_PROBE], capture_output=True, text=True,
                            check=False, env=env)
    assert second.stdout.split() == ["True", "True", "True"]  # the next process finds it there
