"""``policyledger-cli`` commands of the ledger as a transparency log: checkpoint."""

from __future__ import annotations

import argparse
import base64
import json
from typing import Any, TextIO

from policyledger_core.cli.common import EXIT_OK, CommandFailed, add_common, open_context
from policyledger_core.ledger import tlog


def cmd_checkpoint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    verifier = ctx.publisher.verifier().text()
    if args.verifier_key:
        out.write(f'{{"verifier_key": "{verifier}"}}\n' if args.json else verifier + "\n")
        return EXIT_OK
    if ctx.ledger.problem is not None:
        raise CommandFailed(f"the ledger has a problem at entry {ctx.ledger.problem.index}: "
                            "no checkpoint is signed for it (see verify, then repair)")
    try:
        head = tlog.checkpoint(ctx.ledger)
    except tlog.EmptyLog as exc:
        raise CommandFailed(str(exc)) from None
    note = ctx.publisher.sign_note(head.text())
    if args.json:
        out.write(json.dumps({"origin": head.origin, "size": head.size,
                              "root": base64.b64encode(head.root).decode(), "checkpoint": note,
                              "verifier_key": verifier}, sort_keys=True) + "\n")
    else:
        out.write(note)
    return EXIT_OK


def register(commands: Any) -> dict[str, Any]:
    """Add the transparency-log commands to the parser; returns name -> function."""
    cp = commands.add_parser("checkpoint", help="print the ledger's signed checkpoint (C2SP tlog-checkpoint)")
    cp.add_argument("--verifier-key", action="store_true",
                    help="print this user's note verifier key instead")
    add_common(cp)
    return {"checkpoint": cmd_checkpoint}
