"""``policyledger-cli train`` and ``optimum``: learning from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO, cast

from policyledger_core.cli.common import EXIT_OK, open_for_append
from policyledger_core.learn.engine import needs_compiling, train_agents
from policyledger_core.learn.hyper import Algorithm, Hyperparameters, hyper_preset
from policyledger_core.learn.single import TrainingResult
from policyledger_core.sim.config import EnvConfig, preset
from policyledger_core.sim.optimum import solve
from policyledger_core.verify.suite import BASELINES, DEFAULT_EPISODES, exact_baselines, reference
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.publish import publish_run


class Interrupt:
    """Ctrl-C stops work cooperatively (training, a sweep); what was done is kept."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def _progress_printer(total: int | None, out: TextIO) -> Callable[[int], None]:
    last = [time.monotonic()]

    def show(episode: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            of = f"/{total}" if total else ""
            out.write(f"\rtraining: episode {episode + 1}{of}")
            out.flush()

    return show


def announce_compiling(err: TextIO) -> None:
    """Say so when the first run after install compiles the training kernel (a few seconds)."""
    if needs_compiling():
        err.write("compiling the training kernel (once after install, a few seconds)\u2026\n")
        err.flush()


def run_training(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                 should_stop: Callable[[], bool],
                 on_episode: Callable[[int], None] | None = None) -> tuple[TrainingResult, float]:
    """Train to the end (or until stopped); returns the result and the training seconds."""
    start = time.perf_counter()
    gen = train_agents(config, hyper, algorithm, agents, should_stop)
    while True:
        try:
            batch = next(gen)
        except StopIteration as done:
            return done.value, time.perf_counter() - start
        if on_episode is not None:
            on_episode(batch.first + len(batch) - 1)


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = preset(args.preset)
    hyper = hyper_preset(args.hyper)
    changes: dict[str, Any] = {}
    if args.episodes is not None:
        changes["episodes"] = args.episodes
    if args.seed is not None:
        changes["seed"] = args.seed
    hyper = hyper.replace(**changes)
    ctx = open_for_append(args)  # a bad workspace or a damaged ledger must not cost a training run
    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    show = _progress_printer(hyper.episodes, err) if err.isatty() else None
    announce_compiling(err)
    try:
        result, seconds = run_training(config, hyper, cast(Algorithm, args.algorithm), args.agents,
                                       interrupt, show)
    finally:
        signal.signal(signal.SIGINT, previous)
        if show is not None:
            err.write("\n")
    published = publish_run(ctx, result, "all" if args.chain_all else "best")
    best = published.best
    policy = best.policy
    report = best.report or verify_policy(policy)
    summary = {
        "entry_index": best.entry.index,
        "entry_hash": best.entry.hash,
        "new_entry": best.created,
        "entries_created": published.entries_created,
        "policy_hash": policy.hash,
        "verified_reward": report.mean,
        "ci95": report.ci95,
        "ci95_low": report.interval.low,
        "optimum": report.optimum,
        "optimum_expected": report.optimum_expected,
        "fraction_of_optimum": report.fraction_of_optimum,
        "training_reward": float(result.training_reward[result.best_agent]),
        "episodes": result.episodes,
        "env_steps": result.env_steps,
        "train_seconds": seconds,
        "agents": result.agents,
        "best_agent": result.best_agent,
        "algorithm": result.algorithm,
        "preset": args.preset,
        "hyper": args.hyper,
        "seed": hyper.seed,
        "stopped": result.stopped,
        "suite": report.suite,
        "replay_digest": report.replay_digest,
        "baselines": report.baselines,
    }
    if args.json:
        out.write(json.dumps(summary, sort_keys=True) + "\n")
        return EXIT_OK
    stopped = " (stopped early)" if result.stopped else ""
    rate = result.env_steps / max(seconds, 1e-9)
    out.write(
        f"trained {result.agents} agent(s), {result.episodes} episodes each{stopped}: "
        f"{result.env_steps} steps in {seconds:.2f} s ({rate:,.0f} steps/s)\n"
        f"policy          {policy.hash}\n"
        f"verified reward {report.mean:.2f} +/- {report.ci95:.2f} "
        f"(95% CI, {report.episodes} unseen episodes)\n"
        f"optimum         {report.optimum:.2f} on the same episodes -> {report.fraction_of_optimum:.1%}\n"
        f"training reward {summary['training_reward']:.2f} (mean of the last 100 training episodes)\n"
        f"ledger entry    {best.entry.index}{'' if best.created else ' (already recorded)'} "
        f"in {ctx.workspace.root}\n"
        f"best baseline   {_best_baseline(report.baselines)}\n"
    )
    return EXIT_OK


def _best_baseline(baselines: dict[str, float]) -> str:
    name = max(baselines, key=lambda k: baselines[k])
    return f"{name} {baselines[name]:.2f}"


def cmd_optimum(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = preset(args.preset)
    ref = reference(config)
    exact = exact_baselines(config)
    data = {"preset": args.preset, "config": config.to_dict(), "optimum_expected": solve(config).value,
            "optimum": ref.optimum, "suite_episodes": DEFAULT_EPISODES,
            "baselines": ref.baselines, "baselines_expected": exact}
    if args.json:
        out.write(json.dumps(data, sort_keys=True) + "\n")
        return EXIT_OK
    out.write(f"preset {args.preset}: optimal expected return {data['optimum_expected']:.3f} "
              f"(value iteration; {ref.optimum:.2f} on the {DEFAULT_EPISODES}-episode suite)\n")
    out.write(f"{'baseline':16s} {'suite mean':>10s} {'expected':>10s}\n")
    for name in BASELINES:
        out.write(f"{name:16s} {ref.baselines[name]:10.2f} {exact[name]:10.2f}\n")
    return EXIT_OK
