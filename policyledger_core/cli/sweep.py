"""``policyledger-cli sweep``: train one policy per combination, verify each, summarise seed groups."""

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
from policyledger_core.cli.common import EXIT_INTERRUPTED, EXIT_OK, add_common, open_for_append
from policyledger_core.cli.learning import Interrupt, announce_compiling
from policyledger_core.learn.hyper import ALGORITHMS, DEFAULT_HYPER, HYPER_PRESETS
from policyledger_core.sim.config import PRESETS
from policyledger_core.sweep.backends import BACKENDS, backend
from policyledger_core.sweep.execute import CHAIN_MODES, SweepResult, run_sweep
from policyledger_core.sweep.plan import SWEPT, parse_setting, plan
from policyledger_core.sweep.runs import RunOutcome

CSV_HEAD = ("preset", "algorithm", "seed", "agents", "episodes", *SWEPT, "policy_hash", "verified_reward",
            "ci95", "fraction_of_optimum", "env_steps", "train_seconds")


def register(commands: Any, whole: Any, max_agents: int) -> dict[str, Any]:
    """Add ``sweep`` to the parser; ``whole(low, high)`` parses a bounded whole number."""
    sw = commands.add_parser("sweep", help="train one policy per combination of settings and seeds, "
                                           "verify each, summarise seed groups")
    sw.add_argument("--preset", action="append", choices=list(PRESETS),
                    help="environment preset (repeat for several; default standard)")
    sw.add_argument("--algorithm", action="append", choices=list(ALGORITHMS),
                    help="algorithm (repeat for several; default q)")
    sw.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2",
                    help=f"values of one hyperparameter ({', '.join(SWEPT)}); repeat for several")
    sw.add_argument("--hyper", default=DEFAULT_HYPER, choices=list(HYPER_PRESETS),
                    help=f"the hyperparameters not swept (default {DEFAULT_HYPER})")
    sw.add_argument("--seeds", type=whole(1, 10_000), default=5,
                    help="seeds 0 to N-1 per setting (default 5)")
    sw.add_argument("--episodes", type=whole(1, 10**9), help="episodes per run (default: the preset's)")
    sw.add_argument("--agents", type=whole(1, max_agents), default=1, help="population size K per run")
    sw.add_argument("--backend", choices=list(BACKENDS), default="local",
                    help="local: a process per core; ray: a Ray cluster (--address) or a local Ray")
    sw.add_argument("--address", help="with --backend ray: the cluster to join "
                                      "(host:6379, ray://host:10001 or auto)")
    sw.add_argument("--workers", type=whole(1, 4096), help="processes (local) or CPUs of a local Ray "
                                                          "(default: every core)")
    sw.add_argument("--chain", choices=list(CHAIN_MODES), default="best",
                    help="chain the best policy per preset (default), every policy, or none")
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
    settings = [parse_setting(text) for text in args.set]
    specs = plan(args.preset or ["standard"], args.algorithm or ["q"], settings, args.seeds, args.episodes,
                 args.agents, args.hyper)
    runner = backend(args.backend, args.address, args.workers)
    ctx = open_for_append(args) if args.chain != "none" else None  # a damaged ledger fails before work
    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    try:
        announce_compiling(err)
        result = run_sweep(specs, runner, args.chain, ctx, interrupt, _progress(err))
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.stopped:
        err.write(f"sweep: stopped; kept the {len(result.runs)} of {result.total} runs that finished\n")
    if args.output:
        _write_csv(args.output, result.runs)
    if args.json:
        out.write(json.dumps(result.to_json(), sort_keys=True) + "\n")
    else:
        out.write(_text(result, [name for name, _ in settings]))
    return EXIT_INTERRUPTED if result.stopped else EXIT_OK


def _write_csv(path: str, runs: list[RunOutcome]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEAD)
    for run in runs:
        row = run.row()
        values = {**row, **row["hyperparameters"]}
        writer.writerow(["" if values[k] is None else values[k] for k in CSV_HEAD])
    write_atomic(Path(path), buffer.getvalue().encode("utf-8"))


def _text(result: SweepResult, swept: list[str]) -> str:
    lines = [f"{len(result.runs)} runs on the {result.backend} backend in {result.wall_seconds:.1f} s"]
    for group in result.groups:
        row = group.row()
        settings = " ".join(f"{name}={row['hyperparameters'][name]}" for name in swept)
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
        lines.append(f"chained {chained['preset']}: policy {chained['policy_hash'][:16]} as entry "
                     f"{chained['entry_index']}{created}")
    return "\n".join(lines) + "\n"
