"""Crash safety of ledger appends: SIGKILL at random moments, torn writes, and failing I/O.

An entry is acknowledged once :meth:`Ledger.append` returns. Whatever happens
after that (the process killed, a later append cut short or failing with a
full disk or a permission error), the acknowledged entries must stay in the
file byte for byte, the ledger must reopen without a problem (an incomplete
trailing entry is dropped with a warning), the chain must audit clean, and the
next append must work and leave valid JSON.

The crashing appender is a real process (``ledger_worker.py``) that prints
each acknowledged entry the moment ``append`` returns. Failing I/O is injected
in this process by wrapping the ``os`` functions the ledger, the atomic writer
and the checkpoint call; only calls made by ``policyledger_core`` on files of
the test's own folder are counted and failed.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policyledger_core.ledger.chain import Ledger, LedgerError
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.ledger.entry import Entry
from policyledger_core.ledger.layout import FOOTER, HEADER
from policyledger_core.paths import Workspace
from policyledger_core.policy import MYOPIC_ACTIONS, Policy
from policyledger_core.sim.config import PRESETS
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.helpers.ledger_worker import (
    acks,
    check_json,
    check_ledger,
    entry_fields,
    finish,
    run,
    sample_policy,
    start,
)

ROUNDS = 25
"""Kills of the randomly interrupted appender (about 0.7 s each)."""


@pytest.fixture(scope="module")
def fields() -> dict[str, Any]:
    """The fields of every entry appended here (one verification, computed once)."""
    return entry_fields(sample_policy())


def _dirs(base: Path) -> tuple[Path, Path]:
    return base / "workspace", base / "config"


def _torn_tail_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "policyledger_core.ledger.chain" and "incomplete trailing entry" in r.getMessage()]


# -- SIGKILL at random moments --------------------------------------------------------------------


def test_sigkill_at_random_moments_never_loses_an_acknowledged_entry(
        tmp_path: Path, fields: dict[str, Any]) -> None:
    """Most kills land inside an append (its fsyncs take most of the time), often after the entry
    line is complete but before ``append`` returned: such an entry is kept, though unacknowledged."""
    root, config = _dirs(tmp_path)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acked: dict[int, str] = {}
    total = 0  # entries in the ledger after the previous round
    for round_ in range(ROUNDS):
        where = f"round {round_} (seed {seed})"
        proc = start(root, config)  # appends until killed
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, err = finish(proc)
        assert proc.returncode == -signal.SIGKILL, f"{where}: the worker ended by itself:\n{err}"
        new = acks(out)
        assert [i for i, _ in new] == list(range(total, total + len(new))), f"{where}: indices {new[:3]}"
        acked.update(new)

        ledger = check_ledger(root, config, acked)
        assert len(ledger) >= total + len(new)

        ctx = Context.open(root, config)
        entry = ctx.ledger.append(fields, ctx.publisher)
        assert entry.index == len(ledger), f"{where}: the next append is not at the end"
        acked[entry.index] = entry.hash
        entries = check_json(root)
        assert len(entries) == entry.index + 1
        assert entries[entry.index]["hash"] == entry.hash
        total = entry.index + 1
    assert len(acked) > 2 * ROUNDS, "the worker was killed before it acknowledged anything"
    check_ledger(root, config, acked)


# -- a crash in the middle of a write -------------------------------------------------------------

_TEARS = {
    "comma only": 1,
    "part of the line": 200,
    "whole line, no newline": -4,  # the append writes ",<line>\n]}\n"
    "line and newline, no closing": -3,
    "closing without its newline": -1,
}


@pytest.mark.parametrize("keep", list(_TEARS.values()), ids=list(_TEARS))
def test_a_crash_in_the_middle_of_the_ledger_write_is_dropped_and_overwritten(
        tmp_path: Path, fields: dict[str, Any], caplog: pytest.LogCaptureFixture, keep: int) -> None:
    root, config = _dirs(tmp_path)
    acked = dict(run(root, config, "--count", "3"))
    torn = run(root, config, "--count", "5", "--tear-ledger-at", "2", "--tear-bytes", str(keep))
    assert [i for i, _ in torn] == [3, 4], "the worker should die on its third append"
    acked.update(torn)
    data = (root / "ledger.json").read_bytes()
    assert not data.endswith(FOOTER), "the write should have been cut short"

    caplog.set_level(logging.WARNING, logger="policyledger_core.ledger.chain")
    ledger = check_ledger(root, config, acked)
    assert ledger.torn_tail
    assert _torn_tail_warnings(caplog), "dropping a torn tail must be logged"
    # A cut after the entry's last byte leaves a complete entry: kept, though never acknowledged.
    assert len(ledger) == (6 if keep in (-4, -3, -1) else 5)

    ctx = Context.open(root, config)
    entry = ctx.ledger.append(fields, ctx.publisher)
    assert entry.index == len(ledger)
    acked[entry.index] = entry.hash
    assert len(check_json(root)) == entry.index + 1
    assert not check_ledger(root, config, acked).torn_tail
    later = run(root, config, "--count", "2")
    assert [i for i, _ in later] == [entry.index + 1, entry.index + 2]


def test_a_crash_in_the_middle_of_the_checkpoint_write_loses_nothing(
        tmp_path: Path, fields: dict[str, Any]) -> None:
    root, config = _dirs(tmp_path)
    acked = dict(run(root, config, "--count", "3"))
    torn = run(root, config, "--count", "5", "--tear-witness-at", "1", "--tear-bytes", "30")
    assert [i for i, _ in torn] == [3]  # entry 4 is in the ledger, its checkpoint line cut
    acked.update(torn)
    ledger = check_ledger(root, config, acked)
    assert len(ledger) == 5
    acked.update(run(root, config, "--count", "3"))
    ledger = check_ledger(root, config, acked)
    assert len(ledger) == 8
    ctx = Context.open(root, config)
    ctx.ledger.append(fields, ctx.publisher)
    assert len(check_json(root)) == 9


def _rolled_back(path: Path, entries: int) -> None:
    """Cut the ledger file back to its first ``entries`` entries (a restored old copy)."""
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(HEADER + b"".join(line + b"\n" for line in lines[1:1 + entries]) + FOOTER)


def test_entries_acknowledged_after_a_torn_checkpoint_line_are_still_checkpointed(
        tmp_path: Path) -> None:
    root, config = _dirs(tmp_path)
    run(root, config, "--count", "3")
    run(root, config, "--count", "5", "--tear-witness-at", "1", "--tear-bytes", "30")
    later = run(root, config, "--count", "3")  # entries 5, 6, 7: acknowledged after the crash
    assert [i for i, _ in later] == [5, 6, 7]
    failures = []
    seen = Witness(config, root).hashes()  # as a fresh process reads it (before any Ledger.open)
    missing = [i for i, h in later if i >= len(seen) or seen[i] != h]
    if missing:
        failures.append(f"checkpoint holds {len(seen)} entries; acknowledged {missing} are not recorded")
    _rolled_back(root / "ledger.json", 5)  # drop the acknowledged entries 5..7
    reopened = Ledger.open(Workspace.open(root), config)
    if reopened.problem is None or reopened.problem.index != 5:
        failures.append(f"rolling back acknowledged entries 5..7 gave problem {reopened.problem}")
    assert not failures, "; ".join(failures)


# -- failing I/O ----------------------------------------------------------------------------------

_OPS = ("open", "pwrite", "write", "ftruncate", "fsync", "replace", "chmod", "close")
_CALLERS_SEEN_THROUGH = {"tempfile", "pathlib", "contextlib", "shutil", "os", __name__}


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class Faults:
    """Wraps ``os`` I/O functions; counts and, when armed, fails calls made by the ledger code.

    A call counts when its file lies under ``base`` (not the lock file) and the
    first caller outside the standard library is ``policyledger_core``.
    """

    def __init__(self, base: Path) -> None:
        self.bases = (str(base), str(base.resolve()))
        self.calls: list[tuple[str, str]] = []
        """Every counted call: (operation, normalised path)."""
        self.fail: Callable[[int, str, str], bool] | None = None
        """Given (call number, operation, normalised path): fail this call?"""
        self.errno = errno.ENOSPC
        self.failed: list[tuple[str, str]] = []

    def arm(self, fail: Callable[[int, str, str], bool], error: int) -> None:
        self.fail, self.errno = fail, error

    def disarm(self) -> None:
        self.fail = None

    def _counted(self, path: str) -> str | None:
        base = next((b for b in self.bases if path.startswith(b + os.sep)), None)
        if base is None or path.endswith(".lock"):
            return None
        frame = sys._getframe(3)  # check <- _counted's caller <- the wrapper <- its caller
        while frame is not None and frame.f_globals.get("__name__") in _CALLERS_SEEN_THROUGH:
            frame = frame.f_back
        if frame is None or not str(frame.f_globals.get("__name__")).startswith("policyledger_core"):
            return None
        rel = path[len(base) + 1:]
        rel = re.sub(r"\.ledger\.json\.[^/]*\.tmp$", ".ledger.json.*.tmp", rel)
        rel = re.sub(r"checkpoints/\.[0-9a-f]+\.checkpoint\.[^/]*\.tmp$", "checkpoints/.*.checkpoint.*.tmp",
                     rel)
        return re.sub(r"checkpoints/[0-9a-f]+\.(log|checkpoint)$", r"checkpoints/*.\1", rel)

    def check(self, op: str, path: str) -> None:
        rel = self._counted(path)
        if rel is None:
            return
        number = len(self.calls)
        self.calls.append((op, rel))
        if self.fail is not None and self.fail(number, op, rel):
            self.failed.append((op, rel))
            raise OSError(self.errno, os.strerror(self.errno), path)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in _OPS:
            monkeypatch.setattr(os, name, self._wrapped(name, getattr(os, name)))
        real_fdopen = os.fdopen

        def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
            path = _fd_path(fd)
            return _CheckedFile(real_fdopen(fd, *args, **kwargs), self, path)

        monkeypatch.setattr(os, "fdopen", fdopen)

    def _wrapped(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            target = args[0]
            if name == "replace":
                target = args[1]
            path = _fd_path(target) if isinstance(target, int) else os.fsdecode(os.fspath(target))
            try:
                self.check(name, path)
            except OSError:
                if name == "close":  # a failing close still releases the descriptor
                    real(*args, **kwargs)
                raise
            return real(*args, **kwargs)

        return call


class _CheckedFile:
    """A file from ``os.fdopen`` whose ``write`` goes through :class:`Faults` (``write_atomic``)."""

    def __init__(self, file: Any, faults: Faults, path: str) -> None:
        self._file, self._faults, self._path = file, faults, path

    def write(self, data: bytes) -> int:
        self._faults.check("write", self._path)
        return int(self._file.write(data))

    def __enter__(self) -> _CheckedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@pytest.fixture
def faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    found = Faults(tmp_path)
    found.install(monkeypatch)
    yield found
    found.disarm()


def _prepared(base: Path, entries: int, fields: dict[str, Any]) -> tuple[Context, list[Entry]]:
    """A workspace with its policy stored, its user's key made and ``entries`` acknowledged entries."""
    root, config = _dirs(base)
    ctx = Context.open(root, config)
    ctx.store.put(sample_policy())
    publisher = ctx.publisher
    return ctx, [ctx.ledger.append(fields, publisher) for _ in range(entries)]


def _append_fails(ctx: Context, fields: dict[str, Any], error: int) -> str:
    try:
        ctx.ledger.append(fields, ctx.publisher)
    except (OSError, LedgerError) as exc:
        message = str(exc)
    else:
        raise AssertionError("the append returned although one of its calls failed")
    assert os.strerror(error) in message, f"unclear error message: {message!r}"
    return message


def _recovers(ctx: Context, fields: dict[str, Any], acked: list[Entry], before: bytes) -> None:
    """After a failed append: nothing acknowledged changed, the ledger reopens and takes new entries."""
    root, config = ctx.workspace.root, ctx.config_dir
    path = ctx.ledger.path
    after = path.read_bytes() if path.exists() else b""
    keep = len(before) - len(FOOTER) if before else 0
    assert after[:keep] == before[:keep], "bytes of acknowledged entries changed"
    assert after == b"" or after.startswith(HEADER)
    leftovers = sorted(p.name for p in [*root.glob(".ledger.json.*"), *config.glob("checkpoints/.*.tmp")])
    assert not leftovers, f"temporary files left behind: {leftovers}"

    reopened = Ledger.open(Workspace.open(root), config)
    assert reopened.problem is None, f"reopened with a problem: {reopened.problem}"
    # The failed entry itself may be there in full (it failed after being written), never half.
    assert len(reopened) in (len(acked), len(acked) + 1)
    assert [e.hash for e in reopened.scanned()[:len(acked)]] == [e.hash for e in acked]

    recovered = ctx.ledger.append(fields, ctx.publisher)  # the same object that saw the failure
    assert recovered.index == len(reopened)
    other = Ledger.open(Workspace.open(root), config)
    later = other.append(fields, ctx.publisher)
    done = {e.index: e.hash for e in [*acked, recovered, later]}
    ledger = check_ledger(root, config, done)
    assert len(ledger) == later.index + 1
    assert len(check_json(root)) == later.index + 1


_ERRORS = pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES], ids=["ENOSPC", "EACCES"])


@_ERRORS
@pytest.mark.parametrize("entries", [3, 0], ids=["append", "first-append-creates-the-file"])
def test_each_io_call_of_an_append_failing_in_turn(
        tmp_path: Path, faults: Faults, fields: dict[str, Any], entries: int, error: int) -> None:
    ctx, _ = _prepared(tmp_path / "trace", entries, fields)
    start_at = len(faults.calls)
    ctx.ledger.append(fields, ctx.publisher)
    sequence = faults.calls[start_at:]
    traced = {(op, rel.removeprefix("trace/")) for op, rel in sequence}
    expected = {("open", "workspace/ledger.json"), ("pwrite", "workspace/ledger.json"),
                ("ftruncate", "workspace/ledger.json"), ("fsync", "workspace/ledger.json"),
                ("open", "config/checkpoints/*.log"), ("write", "config/checkpoints/*.log"),
                ("fsync", "config/checkpoints/*.log"), ("open", "config/checkpoints/.*.checkpoint.*.tmp"),
                ("write", "config/checkpoints/.*.checkpoint.*.tmp"),
                ("replace", "config/checkpoints/*.checkpoint")}
    if entries == 0:
        expected |= {("open", "workspace/.ledger.json.*.tmp"), ("write", "workspace/.ledger.json.*.tmp"),
                     ("fsync", "workspace/.ledger.json.*.tmp"), ("replace", "workspace/ledger.json"),
                     ("fsync", "workspace")}
    assert expected <= traced, f"calls an append should make: {sorted(expected - traced)}"

    problems = []
    for k, call in enumerate(sequence):
        case = tmp_path / f"case{k}"
        ctx, acked = _prepared(case, entries, fields)
        before = ctx.ledger.path.read_bytes() if entries else b""
        first = len(faults.calls)
        faults.arm(lambda number, _op, _rel, at=first + k: number == at, error)
        try:
            try:
                _append_fails(ctx, fields, error)
            finally:
                faults.disarm()
            op, rel = faults.failed[-1]
            assert (op, rel.replace(f"case{k}/", "trace/", 1)) == call, "calls differ from the traced ones"
            _recovers(ctx, fields, acked, before)
        except AssertionError as exc:
            problems.append(f"{call[0]} of {call[1]} failing: {exc}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("entries", [3, 0], ids=["append", "first-append-creates-the-file"])
def test_a_full_disk_refuses_every_append_until_space_returns(
        tmp_path: Path, faults: Faults, fields: dict[str, Any], entries: int) -> None:
    ctx, acked = _prepared(tmp_path, entries, fields)
    path = ctx.ledger.path
    before = path.read_bytes() if entries else b""
    faults.arm(lambda _number, op, _rel: op in ("write", "pwrite"), errno.ENOSPC)
    for _ in range(3):
        _append_fails(ctx, fields, errno.ENOSPC)
    faults.disarm()
    assert (path.read_bytes() if path.exists() else b"") == before
    _recovers(ctx, fields, acked, before)


@pytest.mark.parametrize("fails", [False, True], ids=["short-write", "partial-write-then-ENOSPC"])
def test_a_partial_write_is_undone_before_the_error_goes_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], fails: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    ctx, acked = _prepared(tmp_path, 3, fields)
    before = ctx.ledger.path.read_bytes()
    real = os.pwrite
    calls = []

    def partial(fd: int, data: bytes, offset: int) -> int:
        calls.append(len(data))
        if len(calls) > 1:  # the disk has room again once the half-written entry is cut away
            return real(fd, data, offset)
        half = real(fd, data[:len(data) // 2], offset)
        if fails:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return half

    monkeypatch.setattr(os, "pwrite", partial)
    with pytest.raises(OSError) as info:
        ctx.ledger.append(fields, ctx.publisher)
    monkeypatch.setattr(os, "pwrite", real)
    assert os.strerror(errno.ENOSPC) in str(info.value), "a short write is a full disk and says so"
    assert ctx.ledger.path.read_bytes() == before, "the half-written entry is undone: valid JSON again"
    caplog.set_level(logging.WARNING, logger="policyledger_core.ledger.chain")
    reopened = Ledger.open(Workspace.open(ctx.workspace.root), ctx.config_dir)
    assert reopened.problem is None and len(reopened) == 3
    _recovers(ctx, fields, acked, before)


def _checkpoint(rel: str) -> bool:
    return rel.endswith(".log") and "checkpoints/" in rel


@pytest.mark.parametrize("op", ["open", "write"])
def test_entries_acknowledged_after_a_failed_checkpoint_write_are_checkpointed(
        tmp_path: Path, faults: Faults, fields: dict[str, Any], op: str) -> None:
    ctx, _ = _prepared(tmp_path, 3, fields)
    faults.arm(lambda _number, o, rel: o == op and _checkpoint(rel), errno.ENOSPC)
    _append_fails(ctx, fields, errno.ENOSPC)
    faults.disarm()
    later = [ctx.ledger.append(fields, ctx.publisher) for _ in range(2)]  # acknowledged: 4 and 5
    root, config = _dirs(tmp_path)
    failures = []
    seen = Witness(config, root).hashes()
    missing = [e.index for e in later if e.index >= len(seen) or seen[e.index] != e.hash]
    if missing:
        failures.append(f"checkpoint holds {len(seen)} entries; acknowledged {missing} are not recorded")
    _rolled_back(root / "ledger.json", 4)  # drop the acknowledged entries 4 and 5
    reopened = Ledger.open(Workspace.open(root), config)
    if reopened.problem is None or reopened.problem.index != 4:
        failures.append(f"rolling back acknowledged entries 4..5 gave problem {reopened.problem}")
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize("target", ["ledger.json", "checkpoint"])
def test_a_failed_save_leaves_no_entry_without_its_policy_file(
        tmp_path: Path, faults: Faults, fields: dict[str, Any], target: str) -> None:
    ctx, _ = _prepared(tmp_path, 3, fields)
    actions = list(MYOPIC_ACTIONS)
    actions[0] = (actions[0] + 1) % 5
    new_policy = Policy(PRESETS["standard"], tuple(actions))
    if target == "ledger.json":
        faults.arm(lambda _number, op, rel: op == "fsync" and rel.endswith("/ledger.json"), errno.ENOSPC)
    else:
        faults.arm(lambda _number, op, rel: op == "write" and _checkpoint(rel), errno.ENOSPC)
    with pytest.raises(OSError, match="No space left"):
        save_policy(ctx, new_policy, None, {"kind": "added"}, episodes=50)
    faults.disarm()
    ctx.ledger.append(fields, ctx.publisher)  # the user carries on
    root, config = _dirs(tmp_path)
    recorded = new_policy.hash in [e.policy_hash for e in Ledger.open(Workspace.open(root), config).entries()]
    assert not recorded or ctx.store.contains(new_policy.hash), \
        "an entry records the policy of the failed save, whose file was deleted"
    check_ledger(root, config, {})
