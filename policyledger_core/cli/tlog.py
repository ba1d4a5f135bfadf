"""``policyledger-cli`` commands of the ledger as a transparency log: checkpoint, prove, consistency
(``verify --against`` is with verify)."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any, TextIO

from policyledger_core.cli.common import (
    EXIT_OK,
    CommandFailed,
    UsageError,
    add_common,
    emit,
    open_context,
    resolve_prefix,
    write_output,
)
from policyledger_core.ledger import tlog
from policyledger_core.workspace.context import Context


def _usable(ctx: Context) -> None:
    if ctx.ledger.problem is not None:
        raise CommandFailed(f"the ledger has a problem at entry {ctx.ledger.problem.index}: "
                            "nothing is signed for it (see verify, then repair)")


def cmd_checkpoint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    verifier = ctx.publisher.verifier().text()
    if args.verifier_key:
        emit(args, out, {"verifier_key": verifier}, verifier + "\n")
        return EXIT_OK
    _usable(ctx)
    head = tlog.checkpoint(ctx.ledger)
    note = ctx.publisher.sign_note(head.text())
    emit(args, out, {"origin": head.origin, "size": head.size, "root": base64.b64encode(head.root).decode(),
                     "checkpoint": note, "verifier_key": verifier}, note)
    return EXIT_OK


def cmd_prove(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    _usable(ctx)
    policy_hash = resolve_prefix(ctx, args.hash_prefix)
    indexes = [i for i, e in enumerate(ctx.ledger.scanned()) if e.policy_hash == policy_hash]
    if args.index is not None and args.index not in indexes:
        raise UsageError(f"--index {args.index}: not an entry of {policy_hash[:16]} "
                         f"(its entries: {', '.join(map(str, indexes))})")
    index = indexes[0] if args.index is None else args.index
    text = tlog.prove(ctx.ledger, ctx.publisher, index).text()
    if args.output is not None:
        write_output(args.output, text.encode())
    size, file = len(ctx.ledger), None if args.output is None else str(args.output)
    said = text if file is None else f"proof of entry {index} in a tree of {size} written to {file}\n"
    emit(args, out, {"index": index, "size": size, "origin": tlog.origin(ctx.ledger),
                     "policy_hash": policy_hash, "proof": text, "file": file}, said)
    return EXIT_OK


def cmd_consistency(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    _usable(ctx)
    body = tlog.consistency_request(ctx.ledger, ctx.publisher, args.old_size)
    emit(args, out, {"old": args.old_size, "size": len(ctx.ledger), "request": body}, body)
    return EXIT_OK


def register(commands: Any) -> dict[str, Any]:
    """Add the transparency-log commands to the parser; returns name -> function."""
    cp = commands.add_parser("checkpoint", help="print the ledger's signed checkpoint (C2SP tlog-checkpoint)")
    cp.add_argument("--verifier-key", action="store_true",
                    help="print this user's note verifier key instead")
    pr = commands.add_parser("prove", help="write a C2SP tlog-proof that a policy's entry is in the ledger")
    pr.add_argument("hash_prefix")
    pr.add_argument("--index", type=int, metavar="N",
                    help="which of the policy's entries (default its first)")
    pr.add_argument("-o", "--output", type=Path, metavar="FILE",
                    help="write the proof here (default: print it)")
    co = commands.add_parser("consistency", help="a consistency proof from an older tree to now, as a "
                                                 "C2SP tlog-witness add-checkpoint request")
    co.add_argument("old_size", type=int, metavar="OLD_SIZE")
    for p in (cp, pr, co):
        add_common(p)
    return {"checkpoint": cmd_checkpoint, "prove": cmd_prove, "consistency": cmd_consistency}
