"""What every ``policyledger-cli`` command shares: exit codes, errors, the workspace."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from policyledger_core.atomic import write_atomic
from policyledger_core.canonical import is_hash
from policyledger_core.errors import BadInput, Rejected
from policyledger_core.paths import Workspace, outside_links
from policyledger_core.workspace.context import Context

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # the shell's code for a command stopped by SIGINT


def emit(args: argparse.Namespace, out: TextIO, data: dict[str, Any], text: str) -> None:
    """``data`` as one JSON line with ``--json``, else ``text``."""
    out.write(json.dumps(data, sort_keys=True) + "\n" if args.json else text)


def write_output(target: Path, data: bytes) -> None:
    """Write a command's ``-o`` file whole (or not at all); a folder or an unwritable place is bad usage."""
    if target.is_dir():
        raise UsageError(f"-o: {target} is a folder")
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise UsageError(f"-o: cannot write {target} ({exc.strerror})") from None


class UsageError(BadInput):
    """Bad usage or unreadable input: exit 2 with this one-line message."""


class CommandFailed(Rejected):
    """The command ran but the answer is no (a check failed, a bundle was rejected): exit 1."""


def add_common(parser: argparse.ArgumentParser) -> None:
    """``--workspace DIR`` and ``--json``, taken by every command."""
    parser.add_argument("--workspace", type=Path, metavar="DIR",
                        help="workspace folder (default: POLICYLEDGER_WORKSPACE, the source "
                             "checkout, or the user data folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def open_context(args: argparse.Namespace) -> Context:
    """The workspace named by ``--workspace`` (or the default one)."""
    root = Workspace.open(args.workspace).root
    where = "workspace" if args.workspace is None else "--workspace"
    existing = next(p for p in (root, *root.parents) if p.exists())
    if existing == root and not root.is_dir():
        raise UsageError(f"{where}: {root} is not a folder")
    if not existing.is_dir():
        raise UsageError(f"{where}: {root}: its parent {existing} is not a folder")
    ctx = Context.open(root)
    for note in outside_links(ctx.workspace):  # read through, never written: the user is told
        print(f"policyledger-cli: note: {note}", file=sys.stderr)

    def warn(text: str) -> None:  # a checkpoint update skipped (config folder read-only or full)
        print(f"policyledger-cli: warning: {text}", file=sys.stderr)

    for text in ctx.ledger.warnings:  # those of opening, then each as it comes
        warn(text)
    ctx.ledger.witness.on_warning = warn
    return ctx


def open_for_append(args: argparse.Namespace) -> Context:
    """The workspace of a command that will append, checked before its long work starts.

    A folder we can write in (created now: the append would create it anyway), a
    ``policies`` folder if there is one, a ledger that accepts appends, a usable key.
    """
    ctx = open_context(args)
    root = ctx.workspace.root
    where = "workspace" if args.workspace is None else "--workspace"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{where}: cannot create {root} ({exc.strerror})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: cannot write in {root}")
    policies = ctx.workspace.policies_dir
    if policies.exists() and not (policies.is_dir() and os.access(policies, os.W_OK | os.X_OK)):
        raise UsageError(f"{where}: {policies} is not a writable folder")
    if ctx.ledger.read_only:
        raise CommandFailed(f"ledger is read-only until repaired: {ctx.ledger.problem}")
    _ = ctx.publisher  # load (or create) the key now: a broken key must not cost a training run
    return ctx


def resolve_prefix(ctx: Context, prefix: str) -> str:
    """The one recorded policy hash starting with ``prefix`` (4+ hex characters)."""
    text = prefix.strip().lower()
    if len(text) < 4 or len(text) > 64 or any(c not in "0123456789abcdef" for c in text):
        raise UsageError(f"policy hash prefix: expected 4 to 64 hex characters, got {prefix!r:.70}")
    matches = sorted({e.policy_hash for e in ctx.ledger.scanned() if e.policy_hash.startswith(text)})
    if not matches:
        raise UsageError(f"no recorded policy starts with {text}")
    if len(matches) > 1:
        raise UsageError(f"{text} is ambiguous: {len(matches)} policies start with it")
    assert is_hash(matches[0])
    return matches[0]
