"""``policyledger-cli`` commands on the ledger: verify, list, show, export, import, add, repair."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from policyledger_core.cli.common import (
    EXIT_FAILED,
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
from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger import tlog
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.note import MAX_NOTE_BYTES, NoteError, Verifier
from policyledger_core.ledger.signing import PublisherKeyError, key_id
from policyledger_core.policy import MAX_POLICY_BYTES, PolicyError, policy_from_json
from policyledger_core.safeio import FileTooLarge, NotARegularFile, read_regular
from policyledger_core.sim.config import ENV_ID, PRESETS, EnvConfig
from policyledger_core.tasks.spec import CATALOGUE, TaskInfo, task_info
from policyledger_core.workspace.audit import AuditReport, audit
from policyledger_core.workspace.bundles import (
    MAX_BUNDLE_BYTES,
    BundleError,
    export_bundle,
    import_bundle,
    unproved_reason,
)
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.marketplace import rank_ledger
from policyledger_core.workspace.publish import save_policy
from policyledger_core.workspace.recovery import RepairResult, repair
from policyledger_core.workspace.reproduced import ReproduceReport, pending, reproduce


def _read_input(path: Path, limit: int) -> bytes:
    try:
        return read_regular(path, limit)  # a FIFO or a device is refused, never waited on
    except FileTooLarge as exc:
        raise CommandFailed(str(exc)) from None
    except NotARegularFile as exc:
        raise UsageError(f"{path}: cannot read: {exc.reason}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def _require_ledger(ctx: Context) -> None:
    """No file and no checkpoint saying there was one: nothing to check, not an intact ledger."""
    if ctx.ledger.problem is None and not ctx.workspace.ledger_path.exists():
        raise UsageError(f"no ledger in {ctx.workspace.root}")


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    _require_ledger(ctx)
    report: AuditReport = run_to_end(audit(ctx.ledger, ctx.store, args.replay, ctx.reproductions))
    data = {"ok": report.ok, "entries": report.entries, "seconds": report.seconds,
            "replayed": report.replayed,
            "problem": None if report.problem is None else
            {"index": report.problem.index, "reason": report.problem.reason}}
    against = None
    if args.against is not None and report.problem is None:
        against = check_against(ctx, args.against, args.key)
        data["against"] = against
    if report.problem is None:
        text = f"ledger intact: {report.entries} entries, chain, signatures and policy files verified"
        text += f", {report.replayed} policies replayed\n" if args.replay else "\n"
        if against is not None:
            text += (f"it extends the checkpoint of {against['size']} entries ({args.against})\n"
                     if against["ok"] else f"checkpoint {args.against}: {against['problem']}\n")
    else:
        index = report.problem.index
        intact = f"entries 0..{index - 1} are intact" if index > 0 else "no entry is intact"
        text = (f"ledger problem at entry {index}: {report.problem.reason}\n"
                f"{intact}; run 'policyledger-cli repair' to continue from there (a backup is kept)\n")
    emit(args, out, data, text)
    return EXIT_OK if report.ok and (against is None or against["ok"]) else EXIT_FAILED


def check_against(ctx: Context, path: Path, keys: list[str]) -> dict[str, Any]:
    """Whether the ledger extends the signed checkpoint in ``path`` (signed by this user or by one
    of ``keys``): ``{"ok", "size", "origin", "problem"}``."""
    try:
        verifiers = [ctx.publisher.verifier(), *(Verifier.parse(key) for key in keys)]
    except NoteError as exc:
        raise UsageError(f"--key: {exc}") from None
    text = _read_input(path, MAX_NOTE_BYTES).decode("utf-8", "replace")
    try:
        head = tlog.check_extends(ctx.ledger, text, verifiers)
    except (NoteError, Rejected) as exc:
        hint = " (give its verifier key with --key)" if isinstance(exc, tlog.UnknownSigner) else ""
        return {"ok": False, "size": None, "origin": None, "problem": str(exc) + hint}
    return {"ok": True, "size": head.size, "origin": head.origin, "problem": None}


def _row_dict(row: Any) -> dict[str, Any]:
    task = isinstance(row.config, TaskInfo)  # its config as its entries record it (kwargs, horizon)
    return {"rank": row.rank, "policy_hash": row.policy_hash, "preset": row.preset,
            "env_id": row.config.spec.env_id if task else ENV_ID, "task": task,
            "config": row.config.config_dict() if task else row.config.to_dict(),
            "verified_reward": row.mean, "ci95": row.ci95,
            "ci95_low": row.interval.low, "fraction_of_optimum": row.fraction_of_optimum,
            "entries": row.entries, "first_entry": row.first_index, "publisher": row.publisher,
            "publisher_id": row.publisher_id, "own": row.own, "origin": row.origin,
            "timestamp": row.timestamp}


def _own_key(ctx: Context) -> str | None:
    try:
        return ctx.own_public_key()
    except (PublisherKeyError, OSError):  # no usable key: nothing is "own"
        return None


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    replayed = _reproduce_pending(ctx, err)
    config = None if args.task is None else task_info(args.task)
    rows = rank_ledger(ctx.ledger, ctx.reproductions, _own_key(ctx), config=config, preset=args.preset)
    width = max([15, *(len(r.preset or "custom") for r in rows)])  # a task's title may be longer
    lines = [f"{'#':>3} {'policy':12} {'preset':{width}} {'verified':>16} {'of opt':>7} {'n':>3} "
             f"{'publisher':16} origin"]
    for r in rows:
        who = "you" if r.own else r.publisher_id
        lines.append(f"{r.rank:>3} {r.policy_hash[:12]} {r.preset or 'custom':{width}} "
                     f"{r.mean:8.2f} +/-{r.ci95:5.2f} {r.fraction_of_optimum:7.1%} {r.entries:>3} "
                     f"{who:16} {r.origin}")
    if ctx.ledger.problem is not None:
        lines.append(f"(only entries before the ledger problem are ranked: {ctx.ledger.problem})")
    emit(args, out, {"rows": [_row_dict(r) for r in rows], "replayed_now": replayed,
                      "problem": None if ctx.ledger.problem is None else str(ctx.ledger.problem)},
          "\n".join(lines) + "\n")
    return EXIT_OK


def _reproduce_pending(ctx: Context, err: TextIO) -> int:
    """Replay the entries not yet reproduced here (once per user); returns how many were replayed."""
    waiting = pending(ctx.ledger, ctx.reproductions)
    show = err.isatty() and len(waiting) > 20
    run = reproduce(ctx.ledger, ctx.store, ctx.reproductions, waiting)
    while True:
        try:
            step = next(run)
        except StopIteration as done:
            report: ReproduceReport = done.value
            break
        if show and step.done % 20 == 0:
            err.write(f"\rreplaying entries not yet reproduced here: {step.done}/{step.total}")
            err.flush()
    if show:
        err.write("\n")
    for warning in ctx.reproductions.warnings:
        err.write(f"policyledger-cli: warning: {warning}\n")
    return report.reproduced + (report.problem is not None)


def _setting(config: EnvConfig | TaskInfo) -> str:
    """What a policy plays, in a few words: the preset, or the toy-text task."""
    if isinstance(config, TaskInfo):
        return f"task {config.spec.env_id} ({config.title})"
    return f"preset {config.preset_name() or 'custom'}"


def cmd_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    policy_hash = resolve_prefix(ctx, args.hash_prefix)
    entries = [e for e in ctx.ledger.entries() if e.policy_hash == policy_hash]
    data = {"policy_hash": policy_hash, "entries": [e.to_dict() for e in entries]}
    first = entries[0]
    v = first.verification
    text = (f"policy {policy_hash}\n"
            f"{_setting(first.config)}; verified {v.mean:.2f} +/- {v.ci95:.2f} "
            f"on {v.suite}, {v.fraction_of_optimum:.1%} of the optimum\n")
    for e in entries:
        text += (f"entry {e.index}  {e.timestamp}  {e.origin.kind:8}  publisher {key_id(e.publisher)}  "
                 f"hash {e.hash[:16]}\n")
    emit(args, out, data, text)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    policy_hash = resolve_prefix(ctx, args.hash_prefix)
    try:
        data = export_bundle(ctx, policy_hash)
    except BundleError as exc:
        raise CommandFailed(str(exc)) from None
    target: Path = args.output
    write_output(target, data)
    entry = ctx.ledger.find_policy(policy_hash)
    unproved = None if entry is None else unproved_reason(ctx, entry)
    proof = "with its inclusion proof" if unproved is None else f"without an inclusion proof ({unproved})"
    emit(args, out, {"policy_hash": policy_hash, "file": str(target), "bytes": len(data),
                     "proof": unproved is None, "unproved_reason": unproved},
         f"exported {policy_hash[:12]} to {target} {proof}\n")
    return EXIT_OK


def _saved_dict(saved: Any) -> dict[str, Any]:
    return {"policy_hash": saved.policy.hash, "entry_index": saved.entry.index,
            "entry_hash": saved.entry.hash, "new_entry": saved.created,
            "verified_reward": saved.entry.verification.mean}


def cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    data = _read_input(args.file, MAX_BUNDLE_BYTES)
    try:
        imported = import_bundle(ctx, data)
    except BundleError as exc:
        raise CommandFailed(f"rejected: {exc}") from None
    saved, inclusion = imported.saved, imported.inclusion
    note = "imported as" if saved.created else "already recorded as"
    proof = None if inclusion is None else {
        "origin": inclusion.checkpoint.origin, "size": inclusion.checkpoint.size, "index": inclusion.index,
        "signer": inclusion.verifier.name, "seen_before": None if imported.observation is None
        else imported.observation.relation}
    emit(args, out, {**_saved_dict(saved), "proof": proof, "proof_text": imported.describe()},
         f"{note} entry {saved.entry.index}: policy {saved.policy.hash[:12]}, replay reproduced "
         f"{saved.entry.verification.mean:.2f}\n{imported.describe()}\n")
    return EXIT_OK


def cmd_add(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    data = _read_input(args.file, MAX_POLICY_BYTES)
    try:
        policy = policy_from_json(data)
        saved = save_policy(ctx, policy, None, {"kind": "added"})
    except PolicyError as exc:
        raise CommandFailed(f"rejected: {exc}") from None
    except LedgerError as exc:
        raise CommandFailed(str(exc)) from None
    note = ("added as" if saved.created else "healed the stored file of" if saved.healed
            else "already recorded as")
    v = saved.entry.verification
    emit(args, out, _saved_dict(saved), f"{note} entry {saved.entry.index}: policy {policy.hash[:12]}, "
          f"verified {v.mean:.2f} +/- {v.ci95:.2f} ({v.fraction_of_optimum:.1%} of the optimum)\n")
    return EXIT_OK


def cmd_repair(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ctx = open_context(args)
    _require_ledger(ctx)
    try:
        result: RepairResult = run_to_end(repair(ctx))
    except LedgerError as exc:
        if ctx.ledger.problem is None and not ctx.ledger.torn_tail:  # as re-read by the plan
            emit(args, out, {"backup": None, "entries": len(ctx.ledger), "kept": len(ctx.ledger),
                              "recovered": [], "left_out": []},
                  f"nothing to repair: the ledger is intact ({len(ctx.ledger)} entries)\n")
            return EXIT_OK
        raise CommandFailed(str(exc)) from None
    plan = result.plan
    pairs = zip(plan.recovered, result.appended, strict=True)
    data = {"backup": str(result.backup), "entries": len(ctx.ledger), "kept": plan.kept,
            "recovered": [{"from_index": r.index, "from_hash": r.entry.hash, "entry_index": e.index,
                           "entry_hash": e.hash} for r, e in pairs],
            "left_out": [{"index": left.index, "reason": left.reason} for left in plan.left_out]}
    text = "".join(f"repair {line}\n" for line in plan.lines())
    text += f"repaired: {len(ctx.ledger)} entries now; the damaged file is kept at {result.backup}\n"
    emit(args, out, data, text)
    return EXIT_OK


def register(commands: Any) -> dict[str, Any]:
    """Add the ledger commands to the parser; returns name -> function."""
    v = commands.add_parser("verify", help="check the whole ledger (exit 1 on a problem)")
    v.add_argument("--replay", action="store_true", help="also replay every policy and compare digests")
    v.add_argument("--against", type=Path, metavar="CHECKPOINT_FILE",
                   help="also check that the ledger extends this signed checkpoint (exit 1 if not)")
    v.add_argument("--key", action="append", default=[], metavar="VERIFIER_KEY",
                   help="a note verifier key the checkpoint may be signed with (besides this user's)")
    ls = commands.add_parser("list", help="the marketplace ranking")
    which = ls.add_mutually_exclusive_group()
    which.add_argument("--preset", choices=list(PRESETS), help="only this environment preset")
    which.add_argument("--task", choices=list(CATALOGUE), metavar="ID",
                       help=f"only this toy-text task: {', '.join(CATALOGUE)}")
    sh = commands.add_parser("show", help="one policy with its entries")
    sh.add_argument("hash_prefix")
    ex = commands.add_parser("export", help="write a policy bundle")
    ex.add_argument("hash_prefix")
    ex.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    im = commands.add_parser("import", help="check a bundle by replay, then record it")
    im.add_argument("file", type=Path)
    ad = commands.add_parser("add", help="validate, verify and record a bare policy file")
    ad.add_argument("file", type=Path)
    commands.add_parser("repair", help="keep a backup of a damaged ledger and continue from its "
                                       "last good entry")
    for p in (v, ls, sh, ex, im, ad, commands.choices["repair"]):
        add_common(p)
    return {"verify": cmd_verify, "list": cmd_list, "show": cmd_show, "export": cmd_export,
            "import": cmd_import, "add": cmd_add, "repair": cmd_repair}
