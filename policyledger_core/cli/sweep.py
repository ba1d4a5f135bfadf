"""``policyledger-cli sweep``: train one policy per combination, verify each, summarise seed groups.

A sweep is over the cyber-defense task's presets (``--preset``) or over Gymnasium's toy-text
tasks (``--task``), not both: a task's runs train tables with the tabular kernel and are valued
exactly; the ones chained are replayed in Gymnasium first.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import time
from pathlib import Path
from typing import Any, TextIO

from policyledger_core.atomic import write_atomic
from policyledger_core.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    add_common,
    open_for_append,
)
from policyledger_core.cli.learning import Interrupt, announce_compiling, prepare_tabular
from policyledger_core.learn.hyper import ALGORITHMS, DEFAULT_HYPER, HYPER_PRESETS
from policyledger_core.sim.config import PRESETS
from policyledger_core.sweep.backends import BACKENDS, backend
from policyledger_core.sweep.execute import CHAIN_MODES, SweepResult, run_sweep
from policyledger_core.sweep.plan import SWEPT, TASK_HYPER, parse_setting, plan, plan_tasks
from policyledger_core.sweep.runs import RunOutcome
from policyledger_core.tasks.spec import CATALOGUE

CSV_HEAD = ("preset", "algorithm", "seed", "agents", "episodes", *SWEPT, "policy_hash", "verified_reward",
            "ci95", "fraction_of_optimum", "env_steps", "train_seconds")
TASK_CSV_HEAD = ("task", "horizon", "algorithm", "seed", "episodes", *SWEPT, "policy_hash", "exact_value",
                 "optimum_expected", "fraction_of_optimum", "env_steps", "train_seconds")
"""A sweep over tasks: each run's task id, its table's exact value and the task's exact optimum."""


def register(commands: Any, whole: Any, max_agents: int) -> dict[str, Any]:
    """Add ``sweep`` to the parser; ``whole(low, high)`` parses a bounded whole number."""
    sw = commands.add_parser("sweep", help="train one policy per combination of settings and seeds, "
                                           "verify each, summarise seed groups")
    sw.add_argument("--preset", action="append", choices=list(PRESETS),
                    help="a preset of the cyber-defense task (repeat for several; default standard)")
    sw.add_argument("--task", action="append", choices=list(CATALOGUE), metavar="ID",
                    help=f"a Gymnasium toy-text task instead (repeat for several): {', '.join(CATALOGUE)}")
    sw.add_argument("--algorithm", action="append", choices=list(ALGORITHMS),
                    help="algorithm (repeat for several; default q)")
    sw.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2",
                    help=f"values of one hyperparameter ({', '.join(SWEPT)}); repeat for several")
    sw.add_argument("--hyper", choices=list(HYPER_PRESETS),
                    help=f"the hyperparameters not swept (default {DEFAULT_HYPER}; a task has only "
                         f"{TASK_HYPER}, its own per algorithm)")
    sw.add_argument("--seeds", type=whole(1, 10_000), default=5,
                    help="seeds 0 to N-1 per setting (default 5)")
    sw.add_argument("--episodes", type=whole(1, 10**9),
                    help="episodes per run (default: the hyperparameter preset's, or the task's)")
    sw.add_argument("--agents", type=whole(1, max_agents),
                    help="population size K per run (default 1; not with --task)")
    sw.add_argument("--backend", choices=list(BACKENDS), default="local",
                    help="local: a process per core; ray: a Ray cluster (--address) or a local Ray")
    sw.add_argument("--address", help="with --backend ray: the cluster to join "
                                      "(host:6379, ray://host:10001 or auto)")
    sw.add_argument("--workers", type=whole(1, 4096), help="processes (local) or CPUs of a local Ray "
                                                          "(default: every core)")
    sw.add_argument("--chain", choices=list(CHAIN_MODES), default="best",
                    help="chain the best policy per preset or task (default), every policy, or none")
    sw.add_argument("-o", "--output", metavar="FILE", help="also write every run as CSV")
    add_common(sw)
    return {"sweep": cmd_sweep}


def _progress(err: TextIO) -> Any:
    last = [0.0]
    tty = err.isatty()

    def show(done: int, total: int, elapsed: float) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < (0.2 if tty else 2.0):
            return
        last[0] = now
        eta = elapsed / done * (total - done) if done else 0.0
        text = f"sweep: {done}/{total} runs done, about {eta:,.0f} s left"
        err.write(f"\r{text}   " if tty else text + "\n")
        if tty and done == total:
            err.write("\n")
        err.flush()

    return show


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    tasks = args.task is not None
    if tasks and args.preset is not None:
        raise UsageError("--preset and --task: a sweep is over presets or over tasks, not both")
    if tasks and args.agents is not None:
        raise UsageError("--agents: populations are for the cyber-defense task (--preset); "
                         "a task's run trains one agent")
    settings = [parse_setting(text) for text in args.set]
    if tasks:
        specs = plan_tasks(args.task, args.algorithm or ["q"], settings, args.seeds, args.episodes,
                           args.hyper or TASK_HYPER)
    else:
        specs = plan(args.preset or ["standard"], args.algorithm or ["q"], settings, args.seeds,
                     args.episodes, args.agents or 1, args.hyper or DEFAULT_HYPER)
    runner = backend(args.backend, args.address, args.workers)
    ctx = open_for_append(args) if args.chain != "none" else None  # a damaged ledger fails before work
    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    try:
        # Compiled (or loaded from the disk cache) here first: the workers then load it from disk.
        if tasks:
            prepare_tabular(err)
        else:
            announce_compiling(err)
        result = run_sweep(specs, runner, args.chain, ctx, interrupt, _progress(err))
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.stopped:
        err.write(f"sweep: stopped; kept the {len(result.runs)} of {result.total} runs that finished\n")
    if args.output:
        _write_csv(args.output, result.runs, TASK_CSV_HEAD if tasks else CSV_HEAD)
    if args.json:
        out.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
    else:
        out.write(_text(result, [name for name, _ in settings]))
    return EXIT_INTERRUPTED if result.stopped else EXIT_OK


def _write_csv(path: str, runs: list[RunOutcome], head: tuple[str, ...] = CSV_HEAD) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(head)
    for run in runs:
        row = run.row()
        values = {**row, **row["hyperparameters"]}
        writer.writerow(["" if values[k] is None else values[k] for k in head])
    write_atomic(Path(path), buffer.getvalue().encode("utf-8"))


def _text(result: SweepResult, swept: list[str]) -> str:
    lines = [f"{len(result.runs)} runs on the {result.backend} backend in {result.wall_seconds:.1f} s"]
    for group in result.groups:
        row = group.row()
        settings = " ".join(f"{name}={row['hyperparameters'][name]}" for name in swept)
        if "task" in row:
            lines.append(_task_group_text(row, settings))
            continue
        spread = "" if row["ci95"] is None else f" \u00b1 {row['ci95']:.2f}"
        lines.append(f"  {row['preset']:<15} {row['algorithm']:<8} {settings:<28} "
                     f"{row['mean']:8.2f}{spread} over {len(row['seeds'])} seeds "
                     f"({row['mean_fraction_of_optimum']:.1%} of the optimum; "
                     f"worst seed {row['worst_seed']}: {row['worst_reward']:.2f})")
    for failure in result.failed:
        spec, error = failure
        lines.append(f"  failed: {spec.describe()}: {error}")
    for chained in result.chained:
        created = "" if chained["new_entry"] else " (already recorded)"
        if "task" in chained:
            replayed = ("" if chained["verified_reward"] is None else "; replayed in Gymnasium: "
                        f"{chained['verified_reward']:.3f} \u00b1 {chained['ci95']:.3f}")
            lines.append(f"chained {chained['task']}: policy {chained['policy_hash'][:16]} as entry "
                         f"{chained['entry_index']}{created} (exact value {chained['exact_value']:.4f}, "
                         f"{chained['fraction_of_optimum']:.2%} of the optimum{replayed})")
            continue
        lines.append(f"chained {chained['preset']}: policy {chained['policy_hash'][:16]} as entry "
                     f"{chained['entry_index']}{created}")
    return "\n".join(lines) + "\n"


def _task_group_text(row: dict[str, Any], settings: str) -> str:
    """A task's seed group: the mean fraction of the exact optimum over the seeds, its interval,
    the mean exact value and the worst seed."""
    spread = "" if row["ci95"] is None else f" \u00b1 {row['ci95']:.2%}"
    return (f"  {row['task']:<17} {row['algorithm']:<8} {settings:<28} "
            f"{row['mean_fraction_of_optimum']:8.2%}{spread} of the optimum over {len(row['seeds'])} seeds "
            f"(exact value {row['mean_exact_value']:.4f} of {row['optimum_expected']:.4f}; "
            f"worst seed {row['worst_seed']}: {row['worst_fraction_of_optimum']:.2%})")
