"""``policyledger-cli``: the headless command line.

Exit codes: 0 done; 1 a check failed or an input was rejected; 2 bad usage or
unreadable input. An error is one line on stderr, or with ``--json`` one object
on stdout; never a traceback for a user error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from policyledger_core.cli import ledger as cli_ledger
from policyledger_core.cli import sweep as cli_sweep
from policyledger_core.cli import tlog as cli_tlog
from policyledger_core.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    UsageError,
    add_common,
)
from policyledger_core.cli.learning import cmd_optimum, cmd_train
from policyledger_core.errors import PolicyLedgerError
from policyledger_core.learn.hyper import ALGORITHMS, DEFAULT_HYPER, HYPER_PRESETS, MAX_SEED
from policyledger_core.learn.population import MAX_AGENTS
from policyledger_core.ledger.entry import MAX_WHOLE
from policyledger_core.sim.config import PRESETS
from policyledger_core.tasks.spec import CATALOGUE

Command = Callable[[argparse.Namespace, TextIO, TextIO], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _whole(low: int, high: int, high_text: str | None = None) -> Callable[[str], int]:
    """A whole number in [low, high]: the core's own limits, checked before any work starts."""
    def parse(text: str) -> int:
        digits = text.strip().lstrip("+-")
        if digits.isdigit() and len(digits) > 40:  # far out of range; int() may refuse it anyway
            raise argparse.ArgumentTypeError(f"must be from {low} to {high_text or high}, "
                                             f"got a number with {len(digits)} digits")
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r:.40}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high_text or high}, got {value}")
        return value

    return parse


def _setting_options(parser: argparse.ArgumentParser, preset_help: str, task_help: str) -> None:
    """``--preset NAME`` (the cyber-defense task) or ``--task ID`` (a toy-text task), not both."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--preset", choices=list(PRESETS), help=preset_help)
    which.add_argument("--task", choices=list(CATALOGUE), metavar="ID",
                       help=f"{task_help}: {', '.join(CATALOGUE)}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The argument parser of every command, and the function of each."""
    parser = _Parser(prog="policyledger-cli", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = commands.add_parser("train", help="train, verify by replay, save and chain a policy")
    _setting_options(tr, "environment preset of the cyber-defense task (default standard)",
                     "a Gymnasium toy-text task, trained with its own recommended hyperparameters")
    tr.add_argument("--hyper", choices=list(HYPER_PRESETS),
                    help=f"hyperparameter preset (default {DEFAULT_HYPER}; a task has only recommended)")
    tr.add_argument("--algorithm", default="q", choices=list(ALGORITHMS))
    tr.add_argument("--episodes", type=_whole(1, MAX_WHOLE, "2**63 - 1"),  # what an entry records
                    help="episodes per agent (default: the preset's)")
    tr.add_argument("--seed", type=_whole(0, MAX_SEED, "2**63 - 1"),
                    help="root seed, 0 <= seed < 2**63 (default: the preset's)")
    tr.add_argument("--agents", type=_whole(1, MAX_AGENTS), default=1,
                    help=f"population size K, 1 to {MAX_AGENTS} (default 1; not with --task)")
    tr.add_argument("--chain-all", action="store_true",
                    help="with --agents K: chain every agent's policy, not only the best")
    add_common(tr)
    opt = commands.add_parser("optimum", help="the optimal expected return and the baselines")
    _setting_options(opt, "environment preset of the cyber-defense task (default standard)",
                     "a Gymnasium toy-text task: its exact optimum and best stationary table")
    add_common(opt)  # --workspace is accepted for uniformity; the optimum needs no workspace
    table: dict[str, Command] = {"train": cmd_train, "optimum": cmd_optimum}
    table.update(cli_ledger.register(commands))
    table.update(cli_sweep.register(commands, _whole, MAX_AGENTS))
    table.update(cli_tlog.register(commands))
    return parser, table


def _message(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split("\n"))  # one line, whatever the exception held


def _wants_json(argv: list[str]) -> bool:
    """``--json`` among the options (not after ``--``): read before parsing, which may fail."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit code.

    An error is one line on stderr, or with ``--json`` one object ``{"error", "exit"}``
    on stdout and nothing on stderr; never a traceback for a user error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    words = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(words)
    try:
        parser, table = build_parser()
        args = parser.parse_args(words)
        as_json = args.json  # parsed: an abbreviation such as --js counts too
        return table[args.command](args, out, err)
    except PolicyLedgerError as exc:  # each kind carries its exit code (1 rejected, 2 bad usage or input)
        return _report(_message(exc), exc.exit_code, as_json, out, err)
    except OSError as exc:  # a missing file, not a folder, no permission: unusable input
        return _report(_message(exc), EXIT_USAGE, as_json, out, err)
    except KeyboardInterrupt:
        # Ctrl-C outside training (which stops and saves instead): stop with one line. The
        # ledger is safe here as after a kill: an append is whole or a torn tail.
        return _report("interrupted", EXIT_INTERRUPTED, as_json, out, err)


def _report(message: str, code: int, as_json: bool, out: TextIO, err: TextIO) -> int:
    if as_json:
        out.write(json.dumps({"error": message, "exit": code}, sort_keys=True) + "\n")
    else:
        err.write(f"policyledger-cli: {message}\n")
    return code


def entry_point() -> NoReturn:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
