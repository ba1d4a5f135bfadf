"""``policyledger-cli``: the headless command line.

Exit codes: 0 done, 1 a verification failure or a rejected input, 2 bad usage
or unreadable input (one line on stderr, never a traceback for a user error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from policyledger_core import cli_ledger
from policyledger_core.cli_common import EXIT_FAILED, EXIT_USAGE, CommandFailed, UsageError, add_common
from policyledger_core.cli_learning import cmd_optimum, cmd_train
from policyledger_core.envconfig import PRESETS, ConfigError
from policyledger_core.hyper import ALGORITHMS, DEFAULT_HYPER, HYPER_PRESETS
from policyledger_core.ledger import LedgerError
from policyledger_core.signing import PublisherKeyError
from policyledger_core.store import StoreError

Command = Callable[[argparse.Namespace, TextIO, TextIO], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _whole(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The argument parser of every command, and the function of each."""
    parser = _Parser(prog="policyledger-cli", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = commands.add_parser("train", help="train, verify by replay, save and chain a policy")
    tr.add_argument("--preset", default="standard", choices=list(PRESETS), help="environment preset")
    tr.add_argument("--hyper", default=DEFAULT_HYPER, choices=list(HYPER_PRESETS),
                    help=f"hyperparameter preset (default {DEFAULT_HYPER})")
    tr.add_argument("--algorithm", default="q", choices=list(ALGORITHMS))
    tr.add_argument("--episodes", type=_whole(1), help="episodes per agent (default: the preset's)")
    tr.add_argument("--seed", type=_whole(0), help="root seed, 0 <= seed < 2**63 (default: the preset's)")
    tr.add_argument("--agents", type=_whole(1), default=1, help="population size K (default 1)")
    tr.add_argument("--chain-all", action="store_true",
                    help="with --agents K: chain every agent's policy, not only the best")
    add_common(tr)
    opt = commands.add_parser("optimum", help="the optimal expected return and the baselines")
    opt.add_argument("--preset", default="standard", choices=list(PRESETS))
    add_common(opt)  # --workspace is accepted for uniformity; the optimum needs no workspace
    table: dict[str, Command] = {"train": cmd_train, "optimum": cmd_optimum}
    table.update(cli_ledger.register(commands))
    return parser, table


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        parser, table = build_parser()
        args = parser.parse_args(argv)
        return table[args.command](args, out, err)
    except CommandFailed as exc:
        err.write(f"policyledger-cli: {exc}\n")
        return EXIT_FAILED
    except (UsageError, ConfigError, StoreError, PublisherKeyError) as exc:
        err.write(f"policyledger-cli: {exc}\n")
        return EXIT_USAGE
    except LedgerError as exc:
        err.write(f"policyledger-cli: {exc}\n")
        return EXIT_FAILED
    except OSError as exc:
        err.write(f"policyledger-cli: {exc.strerror or exc}"
                  f"{': ' + str(exc.filename) if exc.filename else ''}\n")
        return EXIT_USAGE


def entry_point() -> NoReturn:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
