"""Figures of the toy-text tasks: policy quality with the ``recommended`` presets, Gymnasium replay time.

``tasks_quality``: per task, Q-learning with ``recommended(task)`` for seeds 0..9, the exact
value of each greedy table as a fraction of the exact optimum (median and min), and the
training seconds per run (median and max; the kernel is loaded first, not timed).
``tasks_replay``: per task, 1,000 episodes through ``gymnasium.make`` (seeds 2**63 + i) of the
table trained with seed 0, and of the constant table of action 0 (on Taxi and CliffWalking it
walks into a wall until the time limit: the longest replay there is).

Also runs on its own: ``.venv/bin/python bench/bench_tasks.py [NAME ...]``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_learning import Figure, figure

from policyledger_core.learn.tabular import TabularRun, recommended, train_tabular
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.toytext import TASKS, toy_text_task

TARGETS = {"FrozenLake-v1": 0.985, "FrozenLake8x8-v1": 0.965, "Taxi-v4": 0.995, "CliffWalking-v1": 1.0}
SEEDS = range(10)
REPLAY_EPISODES = 1_000
REPLAY_SEEDS = range(2**63, 2**63 + REPLAY_EPISODES)


def _slug(task_id: str) -> str:
    return task_id.lower().replace("-", "_")


def _warm() -> None:
    task = toy_text_task("FrozenLake-v1")
    TabularRun(task.model(), task.horizon, recommended(task.task_id).replace(episodes=1)).advance(1)


def bench_tasks_quality() -> Iterator[Figure]:
    _warm()
    for task_id in TASKS:
        task = toy_text_task(task_id)
        model, horizon, best = task.model(), task.horizon, task.optimum()
        fractions, seconds = [], []
        for seed in SEEDS:
            start = time.perf_counter()
            result = train_tabular(model, horizon, recommended(task_id).replace(seed=seed))
            seconds.append(time.perf_counter() - start)
            fractions.append(fraction_of_optimum(task.expected_return(result.actions), best))
        stationary = task.best_stationary_value()
        yield figure(f"tasks_quality_{_slug(task_id)}", statistics.median(fractions),
                     "fraction of optimum (median of 10 seeds)", target=TARGETS[task_id],
                     min_fraction=round(min(fractions), 6),
                     train_seconds_median=round(statistics.median(seconds), 4),
                     train_seconds_max=round(max(seconds), 4), train_seconds_target=10.0,
                     optimum=round(best, 6), best_stationary=round(stationary, 6),
                     best_stationary_fraction=round(fraction_of_optimum(stationary, best), 6),
                     episodes=recommended(task_id).episodes)


def bench_tasks_replay() -> Iterator[Figure]:
    _warm()
    for task_id in TASKS:
        task = toy_text_task(task_id)
        trained = train_tabular(task.model(), task.horizon, recommended(task_id).replace(seed=0)).actions
        task.replay(trained, range(5))  # Gymnasium's modules loaded, not timed
        timings = {}
        for name, table in (("trained", trained), ("constant-0", [0] * task.n_observations)):
            start = time.perf_counter()
            replay = task.replay(table, REPLAY_SEEDS)
            timings[name] = (time.perf_counter() - start, int(replay.steps.sum()), replay.mean)
        seconds, steps, mean = timings["trained"]
        worst_seconds, worst_steps, _ = timings["constant-0"]
        yield figure(f"tasks_replay_1000_seconds_{_slug(task_id)}", seconds, "s", target=3.0,
                     higher_is_better=False, steps=steps, steps_per_s=round(steps / seconds),
                     mean_return=round(mean, 6), exact_value=round(task.expected_return(trained), 6),
                     constant_0_seconds=round(worst_seconds, 4), constant_0_steps=worst_steps)


BENCHMARKS: dict[str, Callable[[], Iterator[Figure]]] = {
    "tasks_quality": bench_tasks_quality,
    "tasks_replay": bench_tasks_replay,
}


if __name__ == "__main__":
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        for line in BENCHMARKS[name]():
            print(json.dumps(line), flush=True)
