"""The signed, hash-chained ledger of a workspace.

Opening never modifies anything and never refuses: a damaged ledger opens
read-only with a :class:`~policyledger_core.ledger.layout.Problem` naming the
first bad entry, and appends are refused until an explicit :meth:`Ledger.repair`.
Appends take an inter-process lock, re-read the head under it, write only
after the last complete entry, fsync, and then record the entry in this
user's checkpoint (:mod:`policyledger_core.ledger.checkpoint`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock

from policyledger_core.atomic import fsync_dir, write_atomic
from policyledger_core.canonical import sha256_hex
from policyledger_core.errors import Rejected
from policyledger_core.ledger.checkpoint import Witness
from policyledger_core.ledger.entry import (
    ENTRY_SCHEMA,
    ENTRY_VERSION,
    GENESIS,
    Entry,
    parse_line,
    seal,
    utc_now,
)
from policyledger_core.ledger.layout import (
    EMPTY,
    FOOTER,
    HEADER,
    Problem,
    Scan,
    ScannedEntry,
    SetAside,
    append_bytes,
    scan,
    set_aside,
)
from policyledger_core.ledger.merkle import ProofError, Tree, leaf_hash, verify_consistency
from policyledger_core.ledger.signing import Publisher
from policyledger_core.paths import Workspace, outside_target
from policyledger_core.safeio import UnreadableFile, check_path, describe, read_regular
from policyledger_core.sim.config import ENV_ID

log = logging.getLogger(__name__)
LOCK_TIMEOUT = 30.0
ORIGIN_PREFIX = "policyledger/ledger/"
MAX_LEDGER_BYTES = 1 << 30
"""A larger ledger.json is not read (and not repaired): a bound on the memory an open takes."""


class LedgerError(Rejected):
    """An append or repair that cannot be done; the message says why."""


class Ledger:
    """One workspace's ledger as this process sees it."""

    def __init__(self, workspace: Workspace, witness: Witness) -> None:
        self.workspace = workspace
        self.witness = witness
        self.path = workspace.ledger_path
        self._lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT)
        self._scanned: list[ScannedEntry] = []
        self._parsed: dict[int, Entry] = {}
        self._by_policy: dict[str, int] | None = None  # built on first use
        self._tree = Tree()
        """The Merkle tree of the first ``size`` entries, caught up on demand (:meth:`tree`)."""
        self.problem: Problem | None = None
        self._audit_problem: Problem | None = None  # found by a full audit; kept until repaired
        self.torn_tail = False
        self._load()

    @classmethod
    def open(cls, workspace: Workspace, config_dir: Path) -> Ledger:
        """Open (read-only scan) the ledger of ``workspace`` with this user's checkpoint."""
        return cls(workspace, Witness(config_dir, workspace.root))

    # -- reading ------------------------------------------------------------------------------

    def _load(self) -> None:
        """Full scan of the file."""
        # The checkpoint is read first: another process may append (file, then checkpoint)
        # while we read, and a checkpoint ahead of the bytes we hold would look like a rollback.
        witnessed = self.witness.tail()
        try:
            data = read_regular(self.path, MAX_LEDGER_BYTES, self.path.name)
        except FileNotFoundError:
            data = EMPTY
        except OSError as exc:  # a FIFO, a device, a huge file, unreadable: read-only, nothing usable
            self._scanned, self._parsed, self._by_policy = [], {}, None
            unread = Scan(entries=[], problem=Problem(0, describe(exc, self.path.name)), torn_tail=False,
                          clean_end=False)
            self._absorb(unread, witnessed)
            return
        self._scanned, self._parsed, self._by_policy = [], {}, None
        self._tree = Tree()  # the file may have been replaced: nothing carried over
        self._absorb(scan(data), witnessed)

    def _refresh(self) -> None:
        """Bring the view up to date, reading only what was appended since (O(new bytes))."""
        if self.problem is not None or not self._scanned or not self.path.exists():
            self._load()
            return
        last = self._scanned[-1]
        start = last.end - len(last.line) - 1
        witnessed = self.witness.tail()  # before the bytes, as in _load
        try:
            tail = read_regular(self.path, MAX_LEDGER_BYTES, self.path.name, offset=start)
        except (FileNotFoundError, UnreadableFile):
            self._load()  # gone, swapped for something else or grown too large: the full read says which
            return
        if not tail.startswith(last.line + b"\n"):
            self._load()  # changed under us, not just appended to: check everything
            return
        rest = tail[len(last.line) + 1:]
        self._absorb(scan(rest, base=last.end, first_index=len(self._scanned), prev=last.hash),
                     witnessed)

    def _absorb(self, result: Scan, witnessed: tuple[int, str | None]) -> None:
        first_new = len(self._scanned)
        self._scanned.extend(result.entries)
        if self._by_policy is not None:  # keep it current: appends stay O(new entries)
            for i in range(first_new, len(self._scanned)):
                self._by_policy.setdefault(self._scanned[i].policy_hash, i)
        self.torn_tail = result.torn_tail
        # On a tie the scan's reason is the more specific one.
        if self._audit_problem is None:
            self._audit_problem = self._remembered_problem()
        found = [p for p in (result.problem, self._witness_problem(*witnessed), self._audit_problem)
                 if p is not None]
        self.problem = min(found, key=lambda p: p.index) if found else None
        if self.problem is not None:
            del self._scanned[self.problem.index:]
            self._by_policy = None
        elif self.torn_tail:
            log.warning("%s: dropping an incomplete trailing entry (an append that never completed)",
                        self.path)
        if self.problem is None:
            self._catch_up_witness()

    def _catch_up_witness(self, strict: bool = False) -> None:
        """Record in the checkpoint every entry it lacks (after a crash or a failed write too).

        Skipped with a warning when the config folder cannot be written: reading must
        still work there. An append (``strict``) fails instead: its entry is not
        acknowledged until the checkpoint holds it.
        """
        count, _ = self.witness.tail()
        if count < len(self._scanned):
            try:
                self.witness.extend([e.hash for e in self._scanned[count:]], count)
            except OSError as exc:
                if strict:
                    raise
                self.witness.warn(exc, "the entries read now are not recorded as seen here")
                return
        size = len(self._scanned)
        if size and self.witness.head_size() != size:
            try:
                self.witness.record_head(self.origin(), size, self.tree().root(size))
            except OSError as exc:  # the line log holds the entries; only the signed head lags
                if strict:
                    raise
                self.witness.warn(exc, "the latest checkpoint seen is not kept")

    @property
    def warnings(self) -> list[str]:
        """Checkpoint updates skipped so far (a read-only or full config folder), one line each."""
        return self.witness.warnings

    def _remembered_problem(self) -> Problem | None:
        """A problem an earlier audit found here, if the entry it names is still the same."""
        note = self.witness.recorded_problem()
        if note is None:
            return None
        index, reason, entry_hash = note
        if index < len(self._scanned) and self._scanned[index].hash == entry_hash:
            return Problem(index, reason)
        return None

    def _witness_problem(self, count: int, head: str | None) -> Problem | None:
        """Compare the file with what this user saw acknowledged before (``count`` entries, last ``head``)."""
        if count == 0 or (count <= len(self._scanned) and self._scanned[count - 1].hash == head):
            return None  # the chain binds every earlier entry to the matching one
        seen = self.witness.hashes()[:count]
        for i in range(min(len(seen), len(self._scanned))):
            if seen[i] != self._scanned[i].hash:
                return Problem(i, "differs from the entry seen here before (history rewritten)"
                               + self._proof_of_rewrite())
        n = len(self._scanned)
        return Problem(n, f"missing: {len(seen)} entries were seen here before, the file holds {n} "
                          "(truncated or rolled back)")

    def _proof_of_rewrite(self) -> str:
        """What the checkpoint kept beside the line log proves of a rewrite: the consistency proof
        from it to the file's tree fails (checked here, so the words are earned)."""
        kept = self.witness.head()
        size = len(self._scanned)
        if kept is None or not 0 < kept[0].size <= size:
            return ""
        head = kept[0]
        tree = self.tree()
        try:
            verify_consistency(head.size, size, head.root, tree.root(size),
                               tree.consistency_proof(head.size, size))
        except ProofError:
            signed = "your signed" if "\n\n" in kept[1] else "the"
            return (f"; proved: the consistency proof from {signed} checkpoint of {head.size} entries "
                    f"fails ({self.witness.head_path.name} in {self.witness.head_path.parent})")
        return ""

    def origin(self) -> str:
        """The ledger's name for its whole life: ``policyledger/ledger/`` and the first 16 hex digits
        of its first entry's hash (empty while it has no entry). A signer's log of it adds the key's
        id (:func:`policyledger_core.ledger.tlog.origin`)."""
        return ORIGIN_PREFIX + self._scanned[0].hash[:16] if self._scanned else ""

    def reload(self) -> None:
        """Scan the file again (another process may have appended)."""
        self._load()

    def __len__(self) -> int:
        return len(self._scanned)

    @property
    def read_only(self) -> bool:
        """True while a problem is open: appends are refused until a repair."""
        return self.problem is not None

    @property
    def head(self) -> str:
        """Hash of the last entry (GENESIS for an empty ledger)."""
        return self._scanned[-1].hash if self._scanned else GENESIS

    def entry(self, index: int) -> Entry:
        """Entry ``index``, fully parsed and validated (cached)."""
        found = self._parsed.get(index)
        if found is None:
            line = self._scanned[index].line
            found = parse_line(line[1:] if index else line)
            self._parsed[index] = found
        return found

    def entries(self) -> list[Entry]:
        """All usable entries (those before the first problem), parsed."""
        return [self.entry(i) for i in range(len(self._scanned))]

    def find_policy(self, policy_hash: str) -> Entry | None:
        """The first entry recording ``policy_hash``, if any."""
        if self._by_policy is None:
            self._by_policy = {}
            for i, scanned in enumerate(self._scanned):
                self._by_policy.setdefault(scanned.policy_hash, i)
        index = self._by_policy.get(policy_hash)
        return None if index is None else self.entry(index)

    def scanned(self) -> list[ScannedEntry]:
        """The fast-scan view of the usable entries."""
        return list(self._scanned)

    def tree(self) -> Tree:
        """The RFC 6962 tree of the usable entries (leaf i: entry i's bytes), with its subtree
        hashes stored: roots and proofs in O(log n) hashes. Kept up to date incrementally: O(1)
        hashes amortised per entry appended since the last call.

        The ledger's own, not a copy (one would cost O(n)): read it, never extend it. It only
        grows, and is replaced rather than cut when entries are dropped, so a caller keeping it
        gets the same answers later by passing the size it saw.
        """
        if self._tree.size > len(self._scanned):  # entries were dropped (a problem was found)
            self._tree = Tree()
        if self._tree.size < len(self._scanned):
            self._tree.extend(leaf_hash(entry.record) for entry in self._scanned[self._tree.size:])
        return self._tree

    def leaf_hashes(self) -> list[bytes]:
        """Every entry's leaf hash, in order, recomputed: O(n) (:meth:`tree` keeps them)."""
        return [leaf_hash(entry.record) for entry in self._scanned]

    # -- appending ----------------------------------------------------------------------------

    def append(self, fields: dict[str, Any], publisher: Publisher) -> Entry:
        """Append an entry with ``fields`` (policy_hash, config, verification, training, origin).

        Index, prev, timestamp, schema and publisher are filled in under the lock.
        Returns the entry once it is durable.
        """
        return self.append_unless_present(fields, publisher, dedupe=False)[0]

    def append_unless_present(self, fields: dict[str, Any], publisher: Publisher,
                              dedupe: bool = True) -> tuple[Entry, bool]:
        """Like :meth:`append`, but when the policy is already recorded return that entry.

        The check runs under the lock on a fresh view, so two processes saving
        the same policy at once still make one entry. Returns (entry, created).
        """
        with self._lock:
            self._refresh()
            if self.problem is not None:
                raise LedgerError(f"ledger is read-only until repaired: {self.problem}")
            existing = self.find_policy(str(fields.get("policy_hash"))) if dedupe else None
            if existing is not None:
                return existing, False
            body = {"env_id": ENV_ID, **fields, "schema": ENTRY_SCHEMA, "version": ENTRY_VERSION,
                    "index": len(self._scanned), "prev": self.head, "timestamp": utc_now(),
                    "publisher": publisher.public_hex}
            entry = seal(body, publisher)
            self._check_can_write()
            self._write(entry)
            self._catch_up_witness(strict=True)
        return entry, True

    def _check_can_write(self) -> None:
        """Refuse before anything is written: a ledger.json that leads out of the workspace or
        is a FIFO, a device or too large, or a checkpoint that cannot be updated."""
        target = outside_target(self.path, self.workspace.root)
        if target is not None:
            raise LedgerError(f"{self.path.name} resolves outside the workspace ({target}): "
                              "refusing to write through it")
        try:
            check_path(self.path, MAX_LEDGER_BYTES, self.path.name)
        except FileNotFoundError:
            pass  # an append or a repair creates it
        except OSError as exc:
            raise LedgerError(f"{describe(exc, self.path.name)}: refusing to write to it; "
                              "move it aside by hand") from None
        try:
            self.witness.check_writable()
        except OSError as exc:  # an entry the checkpoint never records would look like a rewrite later
            raise LedgerError(f"cannot update the checkpoint in {self.witness.path.parent} "
                              f"({exc.strerror or exc}): nothing was written") from None

    def set_aside(self) -> list[SetAside]:
        """What can be read of the entries from the first problem on (empty when intact)."""
        if self.problem is None:
            return []
        try:
            data = read_regular(self.path, MAX_LEDGER_BYTES, self.path.name)
        except OSError:
            return []
        return set_aside(data, self.problem.index)

    def forget_audit_problem(self) -> None:
        """Drop what earlier audits found, so that a new audit checks everything again."""
        self._audit_problem = None
        self.witness.forget_problem()
        self._load()

    def mark_problem(self, problem: Problem) -> None:
        """Record a problem found by a full audit (a bad signature, a missing policy file).

        The ledger becomes read-only from there, as if the scan had found it.
        """
        if self._audit_problem is None or problem.index < self._audit_problem.index:
            self._audit_problem = problem
            at = self._scanned[problem.index].hash if problem.index < len(self._scanned) else None
            self.witness.record_problem(problem.index, problem.reason, at)
        if self.problem is None or problem.index < self.problem.index:
            self.problem = problem
            del self._scanned[problem.index:]
            self._by_policy = None

    def _write(self, entry: Entry) -> None:
        if not self.path.exists():
            self.workspace.root.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, EMPTY)
        offset = self._scanned[-1].end if self._scanned else len(HEADER)
        first = not self._scanned
        data = append_bytes(entry.line(), first)
        fd = os.open(self.path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            lead = b""
            if size == offset - 1:  # the last entry is whole but its newline never reached the disk
                offset, lead = offset - 1, b"\n"
            elif self.torn_tail and size > offset:
                self._keep_torn(os.pread(fd, size - offset, offset))
            try:
                written = os.pwrite(fd, lead + data, offset)
                if written != len(lead + data):  # a regular file takes less only when the disk is full
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                os.ftruncate(fd, offset + len(lead + data))
                os.fsync(fd)
            except OSError:
                self._undo_append(fd, offset, lead + FOOTER, size)
                raise
        finally:
            os.close(fd)
        stored = (b"" if first else b",") + entry.line()
        offset += len(lead)
        self._scanned.append(ScannedEntry(stored, entry.hash, offset + len(stored) + 1))
        self._parsed[entry.index] = entry
        if self._by_policy is not None:
            self._by_policy.setdefault(entry.policy_hash, entry.index)
        self.torn_tail = False

    @staticmethod
    def _undo_append(fd: int, offset: int, closing: bytes, size: int) -> None:
        """Put the closing line back after a failed append: valid JSON again, nothing acknowledged lost."""
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_size == size and os.pread(fd, len(closing), offset) == closing:
                return  # the failed write changed nothing
            os.ftruncate(fd, offset)  # frees the blocks the closing line needs on a full disk
            done = 0
            while done < len(closing):
                step = os.pwrite(fd, closing[done:], offset + done)
                if step <= 0:
                    return
                done += step
            os.fsync(fd)

    def _keep_torn(self, tail: bytes) -> None:
        """Save the bytes of an append cut short beside the ledger before they are overwritten."""
        if FOOTER.startswith(tail):
            return  # only what was left of the closing line
        backup = self._backup_path("torn")
        write_atomic(backup, tail)
        log.warning("%s: discarding the incomplete trailing bytes of an earlier append (kept as %s)",
                    self.path, backup.name)

    # -- repair -------------------------------------------------------------------------------

    def _file_digest(self) -> str:
        try:
            return sha256_hex(read_regular(self.path, MAX_LEDGER_BYTES, self.path.name))
        except FileNotFoundError:
            return sha256_hex(b"")

    def _backup_path(self, kind: str = "damaged") -> Path:
        stamp = utc_now().replace(":", "").replace("-", "")
        backup = self.path.with_name(f"{self.path.name}.{kind}-{stamp}")
        n = 1
        while backup.exists():
            backup = self.path.with_name(f"{self.path.name}.{kind}-{stamp}-{n}")
            n += 1
        return backup

    def repair(self, expect_digest: str | None = None) -> Path:
        """Keep the damaged file as a timestamped backup and continue from the last good entry.

        Returns the backup's path. Only for a ledger with a problem or a torn tail;
        with ``expect_digest``, only while the file's SHA-256 is still that (what a
        plan was made from). :mod:`policyledger_core.workspace.recovery` re-chains the valid
        entries that followed.
        """
        self._check_can_write()
        with self._lock:
            self._load()
            if self.problem is None and not self.torn_tail:
                raise LedgerError("nothing to repair: the ledger is intact")
            if expect_digest is not None and self._file_digest() != expect_digest:
                raise LedgerError("the ledger changed since the repair was planned; plan it again")
            backup = self._backup_path()
            if self.path.exists():
                shutil.copy2(self.path, backup)
                fsync_dir(backup.parent)
            else:
                self.workspace.root.mkdir(parents=True, exist_ok=True)
                backup.write_bytes(b"")  # the ledger file itself was gone: record that it was
            kept = self._scanned
            write_atomic(self.path, HEADER + b"".join(e.line + b"\n" for e in kept) + b"]}\n")
            self.witness.reset([e.hash for e in kept])
            self._audit_problem = None
            log.warning("%s: repaired; kept %d entries, damaged copy at %s", self.path, len(kept), backup)
            self._load()
        return backup
