"""``policyledger-cli``: the headless command line.

Exit codes: 0 done, 1 a verification failure, 2 bad usage or bad input (one
line on stderr, never a traceback for a user error).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO, cast

import numpy as np

from policyledger_core.envconfig import PRESETS, ConfigError, EnvConfig, preset
from policyledger_core.hyper import (
    ALGORITHMS,
    DEFAULT_HYPER,
    HYPER_PRESETS,
    Algorithm,
    Hyperparameters,
    hyper_preset,
)
from policyledger_core.optimum import expected_return, expected_return_random, solve
from policyledger_core.policy import MYOPIC_ACTIONS
from policyledger_core.population import train_population
from policyledger_core.training import TrainingResult, train
from policyledger_core.verification import BASELINES, DEFAULT_EPISODES, reference, verify

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or unreadable input: exit 2 with this one-line message."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = _Parser(prog="policyledger-cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = commands.add_parser("train", help="train an agent (or a population), then verify it by replay")
    tr.add_argument("--preset", default="standard", choices=list(PRESETS), help="environment preset")
    tr.add_argument("--hyper", default=DEFAULT_HYPER, choices=list(HYPER_PRESETS),
                    help=f"hyperparameter preset (default {DEFAULT_HYPER})")
    tr.add_argument("--algorithm", default="q", choices=list(ALGORITHMS))
    tr.add_argument("--episodes", type=_positive, help="episodes per agent (default: the preset's)")
    tr.add_argument("--seed", type=_seed, help="root seed, 0 <= seed < 2**63 (default: the preset's)")
    tr.add_argument("--agents", type=_positive, default=1, help="population size K (default 1)")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    opt = commands.add_parser("optimum", help="the optimal expected return and the baselines")
    opt.add_argument("--preset", default="standard", choices=list(PRESETS))
    opt.add_argument("--json", action="store_true")
    return parser


class _Interrupt:
    """Ctrl-C stops training cooperatively; what was learned is still verified."""

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


def run_training(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                 should_stop: Callable[[], bool],
                 on_episode: Callable[[int], None] | None = None) -> tuple[TrainingResult, float]:
    """Train to the end (or until stopped); returns the result and the training seconds."""
    start = time.perf_counter()
    gen: Any = (train(config, hyper, algorithm, should_stop) if agents == 1
                else train_population(config, hyper, agents, algorithm, should_stop))
    while True:
        try:
            record = next(gen)
        except StopIteration as done:
            return done.value, time.perf_counter() - start
        if on_episode is not None:
            on_episode(record.episode)


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = preset(args.preset)
    hyper = hyper_preset(args.hyper)
    changes: dict[str, Any] = {}
    if args.episodes is not None:
        changes["episodes"] = args.episodes
    if args.seed is not None:
        changes["seed"] = args.seed
    hyper = hyper.replace(**changes)
    interrupt = _Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    show = _progress_printer(hyper.episodes, err) if err.isatty() else None
    try:
        result, seconds = run_training(config, hyper, cast(Algorithm, args.algorithm), args.agents,
                                       interrupt, show)
    finally:
        signal.signal(signal.SIGINT, previous)
        if show is not None:
            err.write("\n")
    policy = result.policy()
    report = verify(policy)
    summary = {
        "policy_hash": policy.hash,
        "verified_reward": report.mean,
        "ci95": report.ci95,
        "ci95_low": report.ci_low,
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
        f"best baseline   {_best_baseline(report.baselines)}\n"
    )
    return EXIT_OK


def _best_baseline(baselines: dict[str, float]) -> str:
    name = max(baselines, key=lambda k: baselines[k])
    return f"{name} {baselines[name]:.2f}"


def cmd_optimum(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = preset(args.preset)
    ref = reference(config)
    exact = {"random": expected_return_random(config)}
    for action, name in enumerate(BASELINES[1:6]):
        exact[name] = expected_return(config, np.full(108, action, dtype=np.int64))
    exact["myopic"] = expected_return(config, np.array(MYOPIC_ACTIONS, dtype=np.int64))
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


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "train": cmd_train,
    "optimum": cmd_optimum,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args, out, err)
    except UsageError as exc:
        err.write(f"policyledger-cli: {exc}\n")
        return EXIT_USAGE
    except (ConfigError, OSError) as exc:
        err.write(f"policyledger-cli: {exc}\n")
        return EXIT_USAGE


def entry_point() -> NoReturn:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
