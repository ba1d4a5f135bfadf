"""Figures of the training engine: compiled kernels against the numpy reference, start-up, sweeps."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_learning import Figure, figure, textbook_steps_per_second

from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import hyper_preset
from policyledger_core.learn.population import train_population
from policyledger_core.learn.single import run_to_end, train
from policyledger_core.sim.config import preset

ROOT = Path(__file__).resolve().parent.parent


def _rate(run: Callable[[], Any], repeat: int = 1) -> tuple[float, int]:
    """The best of ``repeat`` runs, in environment steps per second."""
    best, steps = 0.0, 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = max(best, result.env_steps / (time.perf_counter() - start))
        steps = result.env_steps
    return best, steps


def bench_train_single() -> Iterator[Figure]:
    config, hyper = preset("standard"), hyper_preset("recommended").replace(episodes=30_000)
    run_to_end(train_agents(config, hyper.replace(episodes=10), "q", 1))  # the kernel is loaded
    ours, steps = _rate(lambda: run_to_end(train_agents(config, hyper, "q", 1)), repeat=3)
    reference, _ = _rate(lambda: run_to_end(train(config, hyper)))
    yield figure("train_single_steps_per_s", ours, "steps/s", reference=reference, target=5_000_000,
                 reference_name="numpy reference trainer, same run", steps=steps,
                 textbook_steps_per_s=round(textbook_steps_per_second(hyper_preset("seed-defaults"), 2000)))


def bench_train_population() -> Iterator[Figure]:
    config, hyper = preset("standard"), hyper_preset("recommended").replace(episodes=300)
    run_to_end(train_agents(config, hyper.replace(episodes=2), "q", 4))
    ours, steps = _rate(lambda: run_to_end(train_agents(config, hyper, "q", 1024)), repeat=3)
    reference, _ = _rate(lambda: run_to_end(train_population(config, hyper, 1024)))
    yield figure("train_population_1024_steps_per_s", ours, "steps/s", reference=reference,
                 target=12_000_000, reference_name="numpy reference population trainer, same run",
                 steps=steps, cores=os.cpu_count())


_START = """
import sys, time
t0 = float(sys.argv[1])
from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import Hyperparameters
from policyledger_core.learn.single import run_to_end
from policyledger_core.sim.config import preset
run_to_end(train_agents(preset("standard"), Hyperparameters(episodes=1), "q", 1, engine=sys.argv[2]))
print(time.time() - t0)
"""


def _start_seconds(engine: str, cache: Path) -> float:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _START, repr(time.time()), engine], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _first_batch_seconds(engine: str) -> float:
    config, hyper = preset("standard"), hyper_preset("recommended")
    times = []
    for _ in range(15):
        start = time.perf_counter()
        run = train_agents(config, hyper, "q", 1, engine=engine)  # type: ignore[arg-type]
        next(run)
        times.append(time.perf_counter() - start)
        run.close()
    return statistics.median(times)


def bench_engine_start() -> Iterator[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        cold = [_start_seconds("compiled", Path(tmp) / f"empty-{i}") for i in range(2)]
        numpy_cold = min(_start_seconds("numpy", Path(tmp) / "unused") for _ in range(2))
    yield figure("engine_cold_start_seconds", min(cold), "s", reference=numpy_cold, target=3.0,
                 higher_is_better=False, reference_name="numpy engine, fresh process",
                 what="fresh process, empty kernel cache: import, compile, one episode")
    run_to_end(train_agents(preset("standard"), hyper_preset("recommended").replace(episodes=2), "q", 1))
    warm = _first_batch_seconds("compiled")
    yield figure("engine_warm_start_seconds", warm, "s", reference=_first_batch_seconds("numpy"),
                 target=0.05, higher_is_better=False, reference_name="numpy engine, same call",
                 what="a 30,000-episode run, from the call to its first batch (kernel loaded)")


def bench_sweep() -> Iterator[Figure]:
    """2 presets x 3 learning rates x 10 seeds x 30,000 episodes: the local backend against a
    sequential loop of the numpy reference trainer (train, then verify), in the same run."""
    from policyledger_core.sweep.backends import LocalBackend
    from policyledger_core.sweep.execute import run_sweep
    from policyledger_core.sweep.plan import plan
    from policyledger_core.verify.suite import verify

    specs = plan(["standard", "short-burst"], ["q"], [("learning_rate", [0.3, 0.6, 1.0])], seeds=10,
                 episodes=30_000)
    start = time.perf_counter()
    result = run_sweep(specs, LocalBackend(), chain="none")
    ours = time.perf_counter() - start
    start = time.perf_counter()
    hashes = []
    for spec in specs:
        trained = run_to_end(train(preset(spec.preset), spec.hyper, spec.algorithm))
        verify(trained.policy())
        hashes.append(trained.policy().hash)
    reference = time.perf_counter() - start
    same = hashes == [r.policy_hash for r in result.runs]
    yield figure("sweep_60_runs_seconds", ours, "s", reference=reference, higher_is_better=False,
                 reference_name="sequential loop of the numpy reference trainer, same run",
                 runs=len(specs), workers=os.cpu_count(), same_policies=same)


BENCHMARKS = {
    "train_single": bench_train_single,
    "train_population": bench_train_population,
    "engine_start": bench_engine_start,
    "sweep": bench_sweep,
}
