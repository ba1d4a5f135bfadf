"""A process that appends to a workspace's ledger, for the crash and concurrency tests.

Run as ``python ledger_worker.py ROOT CONFIG [options]``. It opens the workspace
with :meth:`Context.open`, stores one policy, prints ``ready`` and then appends
entries, printing ``ack <index> <hash>`` (flushed) right after each
:meth:`Ledger.append` returns, so the parent knows exactly which entries were
acknowledged even when it kills this process with SIGKILL. ``done`` ends a
run that was not killed.

Options:

* ``--count N``: appends to make (0: until killed);
* ``--wait-go``: after ``ready``, wait for a line on stdin before appending (a start barrier);
* ``--pause-ms P``: sleep a random 0..P ms between appends;
* ``--tear-ledger-at K --tear-bytes B``: on append K (0-based, counted in this run) write
  only the first B bytes (B < 0: all but the last -B) of the append's ``pwrite`` to
  ``ledger.json`` and die by SIGKILL, as a crash in the middle of the write would;
* ``--tear-witness-at K --tear-bytes B``: the same for the checkpoint's write of append K
  (the ledger write is complete, the checkpoint line is cut).

Importing this module does nothing; the tests import the helpers below from it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.entry import GENESIS
from policyledger_core.paths import Workspace
from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim.config import PRESETS
from policyledger_core.verify.suite import verify
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import verification_fields
from policyledger_core.workspace.store import PolicyStore

VERIFY_EPISODES = 50
WORKER = Path(__file__).resolve()


def sample_policy() -> Policy:
    """The policy every appended entry records (append() does not dedupe)."""
    return Policy(PRESETS["standard"], MYOPIC_ACTIONS)


def entry_fields(policy: Policy) -> dict[str, Any]:
    """What :func:`policyledger_core.workspace.publish.save_policy` appends for ``policy`` (verified once)."""
    report = verify(policy, VERIFY_EPISODES)
    return {"policy_hash": policy.hash, "config": policy.config.to_dict(),
            "verification": verification_fields(report), "training": None, "origin": {"kind": "added"}}


# -- helpers for the tests (the parent side) ------------------------------------------------------


def start(root: Path, config: Path, *options: str) -> subprocess.Popen[bytes]:
    """Start a worker on ``root`` with the per-user folder ``config``; returns once it printed ``ready``.

    The pipes are unbuffered, so nothing the worker prints after ``ready`` is read
    here (and lost to :func:`finish`).
    """
    proc = subprocess.Popen([sys.executable, str(WORKER), str(root), str(config), *options],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=0, cwd=str(root.parent))
    assert proc.stdout is not None
    line = b""
    deadline = time.monotonic() + 30
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        byte = proc.stdout.read(1) if ready else b""
        if not byte:
            break
        line += byte
    if line != b"ready\n":
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"worker did not start: {line!r}\n{err.decode(errors='replace')}")
    return proc


def finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[str, str]:
    """Wait for a worker (or collect a killed one) and return its stdout and stderr."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"worker still running after {timeout} s\n{err.decode(errors='replace')}") \
            from None
    return out.decode(), err.decode(errors="replace")


def acks(out: str) -> list[tuple[int, str]]:
    """(index, hash) of every entry the worker printed as acknowledged, in order."""
    found = []
    for line in out.splitlines():
        if line.startswith("ack "):
            parts = line.split()
            if len(parts) == 3 and len(parts[2]) == 64:  # a killed worker prints no half line,
                found.append((int(parts[1]), parts[2]))  # but be strict about what counts
    return found


def run(root: Path, config: Path, *options: str) -> list[tuple[int, str]]:
    """Run a worker to its end (or its own SIGKILL) and return its acknowledged entries."""
    started = time.monotonic()
    proc = start(root, config, *options)
    out, _ = finish(proc, timeout=60 - (time.monotonic() - started))
    return acks(out)


def check_ledger(root: Path, config: Path, acked: Mapping[int, str]) -> Ledger:
    """Reopen the ledger as ``config``'s user: no problem, every acknowledged entry in place, audit ok."""
    workspace = Workspace.open(root)
    ledger = Ledger.open(workspace, config)
    assert ledger.problem is None, f"reopened ledger has a problem: {ledger.problem}"
    scanned = ledger.scanned()
    lost = [(i, h[:12]) for i, h in sorted(acked.items()) if i >= len(scanned) or scanned[i].hash != h]
    assert not lost, f"acknowledged entries lost or changed: {lost[:5]} (the ledger holds {len(scanned)})"
    report = run_to_end(audit(ledger, PolicyStore(workspace.policies_dir)))
    assert report.ok, f"audit: {report.problem}"
    assert report.entries == len(scanned)
    return ledger


def check_json(root: Path) -> list[dict[str, Any]]:
    """``ledger.json`` is valid JSON whose entries are indexed 0.. and chained, one after the other."""
    document = json.loads((root / "ledger.json").read_bytes())
    assert document["format"] == "policyledger/ledger"
    entries: list[dict[str, Any]] = document["entries"]
    prev = GENESIS
    for i, entry in enumerate(entries):
        assert entry["body"]["index"] == i, f"entry {i} has index {entry['body']['index']}"
        assert entry["body"]["prev"] == prev, f"entry {i} does not chain to entry {i - 1}"
        prev = entry["hash"]
    return entries


# -- the worker (the child side) ------------------------------------------------------------------


def _die_after_partial(name: str, suffix: str, keep: int) -> None:
    """Make the next ``os.<name>(fd, data, ...)`` on a file named ``*suffix`` write only ``keep`` bytes,
    then SIGKILL this process (other calls go through)."""
    real = getattr(os, name)

    def torn(fd: int, data: bytes, *rest: Any) -> int:
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(suffix):
            return int(real(fd, data, *rest))
        real(fd, bytes(data)[:keep], *rest)  # keep < 0: all but the last -keep bytes
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: the process was killed")

    setattr(os, name, torn)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--wait-go", action="store_true")
    parser.add_argument("--pause-ms", type=float, default=0)
    parser.add_argument("--tear-ledger-at", type=int, default=-1)
    parser.add_argument("--tear-witness-at", type=int, default=-1)
    parser.add_argument("--tear-bytes", type=int, default=0)
    args = parser.parse_args(argv)

    ctx = Context.open(args.root, args.config)
    policy = sample_policy()
    ctx.store.put(policy)
    fields = entry_fields(policy)
    publisher = ctx.publisher
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    if args.wait_go and not sys.stdin.readline():
        return 2
    done = 0
    while args.count == 0 or done < args.count:
        if done and args.pause_ms:  # room for another process to take the lock
            time.sleep(random.uniform(0, args.pause_ms / 1000))
        if done == args.tear_ledger_at:
            _die_after_partial("pwrite", "/ledger.json", args.tear_bytes)
        if done == args.tear_witness_at:
            _die_after_partial("write", ".log", args.tear_bytes)
        entry = ctx.ledger.append(fields, publisher)
        out.write(f"ack {entry.index} {entry.hash}\n")
        out.flush()
        done += 1
    out.write("done\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
