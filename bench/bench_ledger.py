"""Figures of the trust layer: append latency, full verification, opening a large ledger, and the
ledger as a transparency log (appends with the tree head kept current, open with the root, proofs)."""

from __future__ import annotations

import base64
import contextlib
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from bench_learning import Figure, figure

from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger import tlog
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.entry import ENTRY_SCHEMA, ENTRY_VERSION, GENESIS, seal
from policyledger_core.ledger.layout import FOOTER, HEADER
from policyledger_core.ledger.merkle import HASH_SIZE, consistency_proof, inclusion_proof
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim.config import ENV_ID, preset
from policyledger_core.verify.suite import Z95, suite_optimum
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy

SIZES = (100, 10_000, 100_000)
APPENDS = 60


def _fields(policy: Policy) -> dict[str, Any]:
    """Figures consistent among themselves (what verify checks without a replay); the digest is made up."""
    optimum = suite_optimum(policy.config, 1000)
    return {"policy_hash": policy.hash, "config": policy.config.to_dict(),
            "verification": {"mean": 102.76, "std": 38.4, "ci95": Z95 * 38.4 / math.sqrt(1000),
                             "fraction_of_optimum": 102.76 / optimum, "optimum": optimum,
                             "episodes": 1000, "suite": "eval-v1/n=1000", "replay_digest": "0" * 64},
            "training": None, "origin": {"kind": "added"}}


def _distinct_policy(i: int) -> Policy:
    """The i-th of many different policies (digits of i in base 5 at decision observations)."""
    actions = list(MYOPIC_ACTIONS)
    for position in range(8):
        i, digit = divmod(i, 5)
        actions[position * 4] = digit  # observations 0, 4, 8, ...: LOW SCAN alerts, never terminal
    return Policy(preset("standard"), tuple(actions))


def build_ledger(root: Path, config: Path, count: int, distinct: bool = False) -> Context:
    """A workspace whose ledger holds ``count`` valid signed entries, written in one go.

    ``distinct``: every entry records a different policy (all stored), as in a
    ledger of many training runs; otherwise all entries record one policy.
    """
    ctx = Context.open(root, config)
    policy = Policy(preset("standard"), MYOPIC_ACTIONS)
    ctx.store.put(policy)
    fields = _fields(policy)
    prev, lines = GENESIS, []
    ctx.store.folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        if distinct:
            policy = _distinct_policy(i)
            ctx.store.path_of(policy.hash).write_bytes(policy.canonical_bytes())  # no fsync: a fixture
            fields = _fields(policy)
        body = {**fields, "schema": ENTRY_SCHEMA, "version": ENTRY_VERSION, "env_id": ENV_ID,
                "index": i, "prev": prev, "timestamp": "2026-11-25T12:00:00Z",
                "publisher": ctx.publisher.public_hex}
        entry = seal(body, ctx.publisher)
        lines.append((b"," if i else b"") + entry.line() + b"\n")
        prev = entry.hash
    ctx.workspace.ledger_path.write_bytes(HEADER + b"".join(lines) + FOOTER)
    return Context.open(root, config)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_append() -> Iterator[Figure]:
    medians: dict[int, float] = {}
    for size in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            ctx = build_ledger(Path(tmp) / "ws", Path(tmp) / "cfg", size)
            fields = _fields(Policy(preset("standard"), MYOPIC_ACTIONS))
            times = []
            for _ in range(APPENDS):
                start = time.perf_counter()
                ctx.ledger.append(fields, ctx.publisher)
                times.append(time.perf_counter() - start)
            medians[size] = statistics.median(times) * 1e3
            yield figure(f"append_ms_median_at_{size}", medians[size], "ms",
                         reference=medians[SIZES[0]], target=10.0 if size == 100_000 else None,
                         higher_is_better=False, reference_name="median at 100 entries",
                         p99_ms=round(_percentile(times, 0.99) * 1e3, 3))
    yield figure("append_growth_100k_vs_100", medians[100_000] / medians[100], "ratio", target=2.0,
                 higher_is_better=False)


def bench_open_and_verify() -> Iterator[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        root, config = Path(tmp) / "ws", Path(tmp) / "cfg"
        build_ledger(root, config, 100_000)
        ctx = Context.open(root, config)
        start = time.perf_counter()
        ledger = Ledger.open(ctx.workspace, config)
        opened = time.perf_counter() - start
        start = time.perf_counter()
        raw = ctx.workspace.ledger_path.read_bytes()
        read = time.perf_counter() - start
        assert ledger.problem is None and len(ledger) == 100_000
        yield figure("open_seconds_100k", opened, "s", reference=read, target=1.0, higher_is_better=False,
                     reference_name="reading the file's bytes", bytes=len(raw))
        report = run_to_end(audit(ledger, ctx.store))
        assert report.ok, report.problem
        yield figure("verify_chain_seconds_100k", report.seconds["chain"], "s", target=1.0,
                     higher_is_better=False, note="hashes, links and checkpoint")
        yield figure("verify_fields_seconds_100k", report.seconds["fields"], "s")
        yield figure("verify_figures_seconds_100k", report.seconds["figures"], "s",
                     note="ci95, fraction and optimum checked without a replay")
        yield figure("verify_policies_seconds_100k", report.seconds["policies"], "s")
        yield figure("verify_signatures_seconds_100k", report.seconds["signatures"], "s")


def _real_ledger(root: Path, config: Path, count: int) -> Context:
    """Up to ``count`` different policies saved the real way (replayed, figures recorded)."""
    ctx = Context.open(root, config)
    for i in range(count):
        save_policy(ctx, _distinct_policy(i), None, {"kind": "added"})
    return ctx


def _digest_only(verification: Any, report: Any) -> str | None:
    """What the replay check compared before every figure was: suite and digest."""
    same = (verification.replay_digest, verification.suite) == (report.replay_digest, report.suite)
    return None if same else "replay does not reproduce the recorded result"


def bench_verify_replay_figures() -> Iterator[Figure]:
    """verify --replay with every figure checked, against the digest-only check of before."""
    import policyledger_core.workspace.audit as audit_module

    with tempfile.TemporaryDirectory() as tmp:
        ctx = _real_ledger(Path(tmp) / "ws", Path(tmp) / "cfg", 300)
        timings: dict[str, list[float]] = {"figures": [], "digest": []}
        for _ in range(3):
            for mode in ("digest", "figures"):
                with contextlib.ExitStack() as patches:
                    if mode == "digest":
                        patches.enter_context(mock.patch.object(audit_module, "replay_problem", _digest_only))
                        patches.enter_context(mock.patch.object(audit_module, "_check_figures",
                                                                lambda *_args: None))
                    ledger = Ledger.open(ctx.workspace, Path(tmp) / "cfg")
                    start = time.perf_counter()
                    report = run_to_end(audit(ledger, ctx.store, replay=True))
                    timings[mode].append(time.perf_counter() - start)
                    assert report.ok and report.replayed == len(ledger) > 50, report
        best = {mode: min(values) for mode, values in timings.items()}
        yield figure("verify_replay_seconds", best["figures"], "s", reference=best["digest"],
                     reference_name="the same verify --replay comparing only the digest",
                     entries=len(ctx.ledger))
        yield figure("verify_replay_figures_overhead", best["figures"] / best["digest"], "ratio",
                     target=1.10, higher_is_better=False)


TLOG_SIZE = 100_000
PROOFS = 200
OLD_WAY_PROOFS = 5  # the all-leaves proofs take a fraction of a second each


def bench_tlog_append() -> Iterator[Figure]:
    """Appends through the Ledger API at 100,000 entries, each followed by the current checkpoint
    (size and root), against the same appends alone."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build_ledger(Path(tmp) / "ws", Path(tmp) / "cfg", TLOG_SIZE)
        ledger, fields = ctx.ledger, _fields(Policy(preset("standard"), MYOPIC_ACTIONS))
        start = time.perf_counter()
        # The first one hashes the whole tree (what an open pays, below).
        tlog.checkpoint(ledger, ctx.publisher.key_id)
        first = time.perf_counter() - start
        plain, kept = [], []
        for i in range(2 * APPENDS):  # interleaved, so that both see the same machine
            start = time.perf_counter()
            ledger.append(fields, ctx.publisher)
            if i % 2:
                head = tlog.checkpoint(ledger, ctx.publisher.key_id)
                kept.append(time.perf_counter() - start)
            else:
                plain.append(time.perf_counter() - start)
        assert head.size == len(ledger) == TLOG_SIZE + 2 * APPENDS  # the last append had its head
        yield figure(f"tlog_append_ms_median_at_{TLOG_SIZE}", statistics.median(kept) * 1e3, "ms",
                     reference=statistics.median(plain) * 1e3, target=10.0, higher_is_better=False,
                     reference_name="the same appends without the checkpoint",
                     p99_ms=round(_percentile(kept, 0.99) * 1e3, 3),
                     first_checkpoint_ms=round(first * 1e3, 1))


def bench_tlog_open() -> Iterator[Figure]:
    """Opening a 100,000-entry ledger and computing its root, against the open alone; and the
    memory the stored tree holds, against 2 x 100,000 hashes."""
    with tempfile.TemporaryDirectory() as tmp:
        root, config = Path(tmp) / "ws", Path(tmp) / "cfg"
        workspace = build_ledger(root, config, TLOG_SIZE).workspace
        with_root, plain = [], []
        for _ in range(3):
            start = time.perf_counter()
            Ledger.open(workspace, config)
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            ledger = Ledger.open(workspace, config)
            head = ledger.tree().root()
            with_root.append(time.perf_counter() - start)
        assert ledger.problem is None and len(head) == HASH_SIZE
        yield figure(f"tlog_open_seconds_{TLOG_SIZE}", min(with_root), "s", reference=min(plain),
                     target=1.0, higher_is_better=False, reference_name="the same open without the tree")
        held = sys.getsizeof(ledger.tree())
        yield figure(f"tlog_tree_bytes_{TLOG_SIZE}", held, "bytes", reference=2 * TLOG_SIZE * HASH_SIZE,
                     reference_name="2 x 100,000 hashes of 32 bytes",
                     bytes_per_entry=round(held / TLOG_SIZE, 1))


def bench_tlog_prove() -> Iterator[Figure]:
    """tlog.prove and tlog.consistency_request at 100,000 entries, median over random indexes and
    old sizes, against the same proofs computed from all the leaf hashes (as before the stored tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build_ledger(Path(tmp) / "ws", Path(tmp) / "cfg", TLOG_SIZE)
        ledger, publisher, rng = ctx.ledger, ctx.publisher, random.Random(6962)
        start = time.perf_counter()
        tlog.prove(ledger, publisher, 0)  # the first one hashes the whole tree once
        first = time.perf_counter() - start
        timed: dict[str, list[float]] = {name: [] for name in ("prove", "consistency", "old_prove",
                                                               "old_consistency")}
        for i in range(PROOFS):
            index, old = rng.randrange(TLOG_SIZE), rng.randrange(1, TLOG_SIZE)
            start = time.perf_counter()
            proof = tlog.prove(ledger, publisher, index)
            timed["prove"].append(time.perf_counter() - start)
            start = time.perf_counter()
            request = tlog.consistency_request(ledger, publisher, old)
            timed["consistency"].append(time.perf_counter() - start)
            if i < OLD_WAY_PROOFS:  # the old way, which must give the same proofs
                start = time.perf_counter()
                path = inclusion_proof(ledger.leaf_hashes(), index)
                before = TlogProof(index, tuple(path), tlog.signed_checkpoint(ledger, publisher))
                timed["old_prove"].append(time.perf_counter() - start)
                start = time.perf_counter()
                hashes = consistency_proof(ledger.leaf_hashes(), old)
                lines = "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
                old_request = f"old {old}\n{lines}\n{tlog.signed_checkpoint(ledger, publisher)}"
                timed["old_consistency"].append(time.perf_counter() - start)
                assert before.text() == proof.text() and old_request == request, i
                proof.verify(ledger.scanned()[index].record, [publisher.verifier()])
        ms = {name: statistics.median(values) * 1e3 for name, values in timed.items()}
        yield figure(f"tlog_prove_ms_median_at_{TLOG_SIZE}", ms["prove"], "ms", reference=ms["old_prove"],
                     target=50.0, higher_is_better=False,
                     reference_name="inclusion proof from all the leaf hashes, then the signed checkpoint",
                     proofs=PROOFS, p99_ms=round(_percentile(timed["prove"], 0.99) * 1e3, 3),
                     first_ms=round(first * 1e3, 1))
        yield figure(f"tlog_consistency_ms_median_at_{TLOG_SIZE}", ms["consistency"], "ms",
                     reference=ms["old_consistency"], target=50.0, higher_is_better=False,
                     reference_name="consistency proof from all the leaf hashes, then the signed checkpoint",
                     proofs=PROOFS, p99_ms=round(_percentile(timed["consistency"], 0.99) * 1e3, 3))


BENCHMARKS = {
    "ledger_append": bench_append,
    "ledger_open_verify": bench_open_and_verify,
    "verify_replay_figures": bench_verify_replay_figures,
    "tlog_append": bench_tlog_append,
    "tlog_open": bench_tlog_open,
    "tlog_prove": bench_tlog_prove,
}
