"""``policyledger-cli`` commands of the ledger as a transparency log: checkpoint, prove, consistency,
cosign (``verify --against`` is with verify)."""

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
from policyledger_core.errors import Rejected
from policyledger_core.ledger import tlog
from policyledger_core.ledger.cosign import (
    Cosigner,
    CosignerKey,
    Request,
    Stored,
    attach,
    cosignatures,
    witness,
)
from policyledger_core.ledger.note import MAX_NOTE_BYTES, NoteError, Verifier, split
from policyledger_core.ledger.peers import Peers
from policyledger_core.safeio import read_regular
from policyledger_core.workspace import transparency
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
    head = tlog.checkpoint(ctx.ledger, ctx.publisher.key_id)
    note = ctx.publisher.sign_note(head.text())
    stored = Stored(ctx.config_dir)
    if args.cosignatures:
        keys = _cosigner_keys(args.cosigner_key)
        lines = [line for path in args.cosignatures for line in _cosignature_lines(path)]
        if keys:
            try:
                cosigned = attach(note, lines)
                text, signatures = split(cosigned)
            except NoteError as exc:
                raise UsageError(f"--cosignatures: {exc}") from None
            given = {(key.name, key.key_id): key for key in keys}
            for signature in signatures:  # a known key's failing line would make verifiers refuse the note
                key = given.get((signature.name, signature.key_id))
                if key is not None and key.timestamp(text, signature) is None:
                    raise CommandFailed(f"a cosignature by {key.name} does not verify on this checkpoint "
                                        "(one of another checkpoint, or altered): nothing was kept")
            valid = {key.name for key, _t in cosignatures(cosigned, keys)}
            missing = [key.name for key in keys if key.name not in valid]
            if missing:
                raise CommandFailed(f"no valid cosignature of this checkpoint by {', '.join(missing)}")
        try:
            note = stored.add(note, lines)
        except NoteError as exc:
            raise UsageError(f"--cosignatures: {exc}") from None
        except OSError as exc:
            raise CommandFailed(f"cannot keep the cosignatures in {stored.folder} ({exc.strerror})") from None
    else:
        extra = stored.lines(head.text())
        note = note + "".join(extra)
    emit(args, out, {"origin": head.origin, "size": head.size, "root": base64.b64encode(head.root).decode(),
                     "checkpoint": note, "verifier_key": verifier,
                     "cosignatures": len(split(note)[1]) - 1}, note)
    return EXIT_OK


def _cosigner_keys(texts: list[str] | None) -> list[CosignerKey]:
    try:
        return [CosignerKey.parse(text) for text in texts or ()]
    except NoteError as exc:
        raise UsageError(f"--cosigner-key: {exc}") from None


def _cosignature_lines(path: Path) -> list[str]:
    """The signature lines of a file (a witness's response, or a cosigned checkpoint)."""
    text = _read_text(path, "--cosignatures")
    lines = [line for line in text.splitlines() if line.startswith("\u2014 ")]
    if not lines:
        raise UsageError(f"--cosignatures: {path} holds no signature line")
    return lines


def _read_text(path: Path, what: str) -> str:
    try:
        return read_regular(path, MAX_NOTE_BYTES, path.name).decode("utf-8")
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path} ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what}: {path} is not UTF-8 text") from None


def cmd_prove(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    _usable(ctx)
    policy_hash = resolve_prefix(ctx, args.hash_prefix)
    indexes = [i for i, e in enumerate(ctx.ledger.scanned()) if e.policy_hash == policy_hash]
    if args.index is not None and args.index not in indexes:
        raise UsageError(f"--index {args.index}: not an entry of {policy_hash[:16]} "
                         f"(its entries: {', '.join(map(str, indexes))})")
    index = indexes[0] if args.index is None else args.index
    text = transparency.proof(ctx, index).text()
    if args.output is not None:
        write_output(args.output, text.encode())
    size, file = len(ctx.ledger), None if args.output is None else str(args.output)
    said = text if file is None else f"proof of entry {index} in a tree of {size} written to {file}\n"
    emit(args, out, {"index": index, "size": size, "origin": tlog.origin(ctx.ledger, ctx.publisher.key_id),
                     "policy_hash": policy_hash, "proof": text, "file": file}, said)
    return EXIT_OK


def cmd_consistency(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    _usable(ctx)
    body = tlog.consistency_request(ctx.ledger, ctx.publisher, args.old_size)
    emit(args, out, {"old": args.old_size, "size": len(ctx.ledger), "request": body}, body)
    return EXIT_OK


def cmd_cosign(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    cosigner = Cosigner.load_or_create(ctx.config_dir)
    if args.verifier_key:
        emit(args, out, {"cosigner_key": cosigner.key.text()}, cosigner.key.text() + "\n")
        return EXIT_OK
    if args.request is None:
        raise UsageError("cosign: give REQUEST_FILE (or --verifier-key)")
    try:
        request = Request.parse(_read_text(args.request, "cosign"))
        given = [Verifier.parse(key) for key in args.key or ()]
    except NoteError as exc:
        raise UsageError(f"cosign: {exc}") from None
    peers = Peers(ctx.config_dir)
    try:
        origin = split(request.note)[0].split("\n", 1)[0]
        verifiers = [*given, *peers.verifiers(origin), ctx.publisher.verifier()]
        line, seen = witness(request, verifiers, peers, cosigner)
    except (NoteError, Rejected) as exc:
        raise CommandFailed(f"not cosigned: {exc}") from None
    head = seen.checkpoint
    emit(args, out, {"cosignature": line, "origin": head.origin, "size": head.size,
                     "cosigner_key": cosigner.key.text(), "seen_before": seen.relation}, line)
    return EXIT_OK


def register(commands: Any) -> dict[str, Any]:
    """Add the transparency-log commands to the parser; returns name -> function."""
    cp = commands.add_parser("checkpoint", help="print the ledger's signed checkpoint (C2SP tlog-checkpoint)")
    cp.add_argument("--verifier-key", action="store_true",
                    help="print this user's note verifier key instead")
    cp.add_argument("--cosignatures", nargs="+", type=Path, metavar="FILE",
                    help="attach the cosignatures in these files (witness responses) to the checkpoint "
                         "and keep them: proofs and bundles of this checkpoint then carry them")
    cp.add_argument("--cosigner-key", action="append", metavar="VKEY",
                    help="refuse unless this cosigner's valid cosignature is among them (repeatable)")
    pr = commands.add_parser("prove", help="write a C2SP tlog-proof that a policy's entry is in the ledger")
    pr.add_argument("hash_prefix")
    pr.add_argument("--index", type=int, metavar="N",
                    help="which of the policy's entries (default its first)")
    pr.add_argument("-o", "--output", type=Path, metavar="FILE",
                    help="write the proof here (default: print it)")
    co = commands.add_parser("consistency", help="a consistency proof from an older tree to now, as a "
                                                 "C2SP tlog-witness add-checkpoint request")
    co.add_argument("old_size", type=int, metavar="OLD_SIZE")
    cs = commands.add_parser("cosign", help="witness another ledger: check a C2SP add-checkpoint request "
                                            "against the last one of it you cosigned, print a cosignature")
    cs.add_argument("request", type=Path, nargs="?", metavar="REQUEST_FILE")
    cs.add_argument("--key", action="append", metavar="VKEY",
                    help="the log's note verifier key (needed the first time a log is seen; repeatable)")
    cs.add_argument("--verifier-key", action="store_true",
                    help="print this user's cosigner key (to give to those who check cosignatures)")
    for p in (cp, pr, co, cs):
        add_common(p)
    return {"checkpoint": cmd_checkpoint, "prove": cmd_prove, "consistency": cmd_consistency,
            "cosign": cmd_cosign}
