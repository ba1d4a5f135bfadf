"""Several processes on one workspace: appends serialise into one chain, nothing is lost or forked.

Each appender is a real process (``ledger_worker.py``) that prints the index
and hash of every entry the moment :meth:`Ledger.append` returns. Both start
appending together (a start barrier on stdin), as one user (one config
folder: one key, one checkpoint file) or as two users (two config folders).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.learn.single import run_to_end
from policyledger_core.ledger import chain as ledger_module
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.paths import Workspace
from policyledger_core.workspace.audit import audit
from policyledger_core.workspace.store import PolicyStore
from tests.helpers.ledger_worker import acks, check_json, check_ledger, finish, run, start

PER_CHILD = 200


@pytest.mark.parametrize(("users", "pause_ms"), [(1, 10), (2, 10), (1, 0)],
                         ids=["one-user", "two-users", "one-user-tight-loops"])
def test_two_processes_appending_at_once_make_one_chain(tmp_path: Path, users: int, pause_ms: int) -> None:
    """200 appends each; with a short random pause between appends the two interleave throughout
    (in tight loops the waiting process, polling for the lock, mostly gets it only at the end)."""
    root = tmp_path / "workspace"
    configs = [tmp_path / "config"] * 2 if users == 1 else [tmp_path / "config-a", tmp_path / "config-b"]
    options = ("--count", str(PER_CHILD), "--wait-go", "--pause-ms", str(pause_ms))
    procs = [start(root, config, *options) for config in configs]
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        outputs = [finish(proc, timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    got = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and out.endswith("done\n"), f"worker failed:\n{err}"
        mine = acks(out)
        assert len(mine) == PER_CHILD
        indices = [i for i, _ in mine]
        assert indices == sorted(indices) and len(set(indices)) == PER_CHILD
        got.append(mine)

    first, second = ({i for i, _ in mine} for mine in got)
    assert not first & second, f"two entries acknowledged at one index (a fork): {sorted(first & second)[:5]}"
    assert first | second == set(range(2 * PER_CHILD))
    acked = dict(got[0] + got[1])
    chain = [acked[i] for i in range(2 * PER_CHILD)]
    owner = [0 if i in first else 1 for i in range(2 * PER_CHILD)]
    switches = sum(a != b for a, b in pairwise(owner))
    if pause_ms:
        assert switches >= 5, f"the two processes hardly interleaved ({switches} switches)"

    # Each user's checkpoint, as its appends left it: the chain up to at least its own last entry.
    for config, mine in zip(configs, got, strict=True):
        witness = Witness(config, root)
        seen = witness.hashes()
        assert seen == chain[:len(seen)], "the checkpoint disagrees with the chain"
        assert len(seen) >= mine[-1][0] + 1, "an acknowledged entry is missing from the checkpoint"
        lines = witness.path.read_bytes().splitlines()
        assert len(lines) == len(seen), "the checkpoint holds duplicate or unreadable lines"
    if users == 1:
        assert Witness(configs[0], root).hashes() == chain

    for config in dict.fromkeys(configs):
        ledger = check_ledger(root, config, acked)
        assert len(ledger) == 2 * PER_CHILD and not ledger.torn_tail
    entries = check_json(root)
    assert [e["hash"] for e in entries] == chain
    publishers = [{entries[i]["body"]["publisher"] for i, _ in mine} for mine in got]
    assert all(len(keys) == 1 for keys in publishers)
    assert (publishers[0] == publishers[1]) == (users == 1)


# Regression: the checkpoint must be read before ledger.json, or an append by another
# process of the same user in between looks like a rollback.
_SAME_USER = pytest.mark.parametrize("same_user", [True, False], ids=["same-user", "other-user"])


@contextlib.contextmanager
def _another_process_appends_after_the_next_read(
        monkeypatch: pytest.MonkeyPatch, root: Path, config: Path) -> Iterator[list[tuple[int, str]]]:
    """Right after this process next reads ``ledger.json``, a worker (user ``config``) appends one entry."""
    path = Workspace.open(root).ledger_path
    real = ledger_module.read_regular
    appended: list[tuple[int, str]] = []

    def read_then_let_another_process_append(file: Path, *args: Any, **kwargs: Any) -> bytes:
        data = real(file, *args, **kwargs)
        if file == path and not appended:
            appended.extend(run(root, config, "--count", "1"))
        return data

    monkeypatch.setattr(ledger_module, "read_regular", read_then_let_another_process_append)
    try:
        yield appended
    finally:
        monkeypatch.setattr(ledger_module, "read_regular", real)
    assert appended, "the other process did not append while the file was read"


@_SAME_USER
def test_opening_while_another_process_appends_reports_no_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_user: bool) -> None:
    root, config = tmp_path / "workspace", tmp_path / "config"
    run(root, config, "--count", "3")
    other = config if same_user else tmp_path / "config-other"
    with _another_process_appends_after_the_next_read(monkeypatch, root, other) as appended:
        ledger = Ledger.open(Workspace.open(root), config)
    assert ledger.problem is None, f"a concurrent append was reported as damage: {ledger.problem}"
    assert len(ledger) == 3
    check_ledger(root, config, dict(appended))


@_SAME_USER
def test_an_audit_while_another_process_appends_finds_no_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_user: bool) -> None:
    """The audit reloads the file; a false alarm there would stay on the ledger until a repair,
    and the repair would cut the other process's acknowledged entry."""
    root, config = tmp_path / "workspace", tmp_path / "config"
    run(root, config, "--count", "3")
    workspace = Workspace.open(root)
    ledger = Ledger.open(workspace, config)
    other = config if same_user else tmp_path / "config-other"
    with _another_process_appends_after_the_next_read(monkeypatch, root, other) as appended:
        report = run_to_end(audit(ledger, PolicyStore(workspace.policies_dir)))
    assert report.ok, f"a concurrent append was reported as damage: {report.problem}"
    ledger.reload()
    assert ledger.problem is None and len(ledger) == 4
    assert ledger.scanned()[3].hash == appended[0][1]
