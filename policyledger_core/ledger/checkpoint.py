"""The checkpoint: what this user has seen of a workspace's ledger, kept outside it.

One append-only file per workspace in the config folder, a line per
acknowledged or verified entry (``index hash``). Against it a truncated or
rolled-back ledger, or a history rewritten with recomputed hashes, is caught,
and the first entry that differs is named. Appending to it costs the same
however long it is.

Beside it, the latest tree head seen (``.checkpoint``): a C2SP checkpoint of the
ledger, signed with this user's key when they have one. A rewrite is then also
proved, not only noticed: the consistency proof from that checkpoint to the file's
tree fails, and the signed checkpoint is evidence anyone can check.

Reading a ledger must work without a writable config folder (read-only, disk
full): the updates a reading makes are then skipped with a warning line in
:attr:`Witness.warnings`. An append checks first that the file can be written.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from policyledger_core.atomic import write_atomic
from policyledger_core.canonical import is_hex, sha256_hex
from policyledger_core.ledger.note import Checkpoint, NoteError, open_note
from policyledger_core.ledger.signing import Publisher, PublisherKeyError


class Witness:
    """The checkpoint file of one workspace."""

    def __init__(self, config_dir: Path, workspace_root: Path) -> None:
        name = sha256_hex(str(workspace_root.resolve()).encode("utf-8"))[:32]
        self.path = config_dir / "checkpoints" / f"{name}.log"
        self.config_dir = config_dir
        self._publisher: Publisher | None = None
        self.workspace_root = workspace_root
        self._hashes: list[str] = []
        self._read = 0  # bytes of the file already taken into _hashes
        self.warnings: list[str] = []
        """Updates skipped because the config folder cannot be written, one line each."""
        self.on_warning: Callable[[str], None] | None = None
        """Called with each new warning as it is added."""

    def warn(self, exc: OSError, consequence: str) -> None:
        """Note that an update was skipped (each distinct line once)."""
        text = f"cannot update the checkpoint in {self.path.parent} ({exc.strerror or exc}); {consequence}"
        if text not in self.warnings:
            self.warnings.append(text)
            if self.on_warning is not None:
                self.on_warning(text)

    @property
    def head_path(self) -> Path:
        return self.path.with_suffix(".checkpoint")

    def _signer(self) -> Publisher | None:
        if self._publisher is None:  # looked for until found: the first append creates the key
            try:
                self._publisher = Publisher.load_existing(self.config_dir)
            except (PublisherKeyError, OSError):
                return None  # no usable key: the checkpoint is kept unsigned
        return self._publisher

    def record_head(self, name: str, size: int, root: bytes) -> None:
        """Keep the ledger's tree head (``name`` is its origin without a key) as the latest seen,
        signed in this user's log when they have a key (the origin then ends with its id).
        Not fsynced: the line log is the durable record; a lost update leaves an older
        checkpoint, which the ledger still extends."""
        signer = self._signer()
        if signer is None:
            note = Checkpoint(name, size, root).text()
        else:
            note = signer.sign_note(Checkpoint(f"{name}/{signer.key_id}", size, root).text())
        # A temporary file of its own: another process keeping its head at the same moment (a
        # reader of the same workspace) must not rename this one's away, or write into it.
        target = self.head_path
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(note.encode("utf-8"))
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def head(self) -> tuple[Checkpoint, str] | None:
        """The latest checkpoint seen and its note as kept (None when there is none usable: a
        note whose signature fails with this user's key is not used)."""
        try:
            kept = self.head_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        try:
            if "\n\n" not in kept:
                return Checkpoint.parse(kept), kept
            signer = self._signer()
            if signer is None:
                return None
            text, _signed = open_note(kept, [signer.verifier()])
            return Checkpoint.parse(text), kept
        except NoteError:
            return None

    def head_size(self) -> int | None:
        """The size of the latest checkpoint kept, read without checking it (cheap)."""
        try:
            with self.head_path.open("rb") as f:
                lines = f.read(512).split(b"\n")
        except OSError:
            return None
        return int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else None

    def check_writable(self) -> None:
        """Raise OSError unless the checkpoint can be appended to (opened as an append opens it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))

    def tail(self) -> tuple[int, str | None]:
        """(entries recorded, hash of the last one), reading only the end of the file.

        Enough for the common check: entries are hash-chained, so when the last
        recorded entry is unchanged, so is every one before it.
        """
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - 256))
                chunk = f.read()
        except (FileNotFoundError, NotADirectoryError):  # no checkpoint (yet)
            return 0, None
        lines = chunk[: chunk.rfind(b"\n") + 1].split(b"\n")
        if len(lines) < 2:
            return 0, None
        index, _, digest = lines[-2].partition(b" ")
        if not index.isdigit() or not is_hex(digest, 64):  # odd last line: read it all
            known = self.hashes()
            return len(known), (known[-1] if known else None)
        return int(index) + 1, digest.decode("ascii")

    def hashes(self) -> list[str]:
        """Entry hashes seen so far, by index (a torn last line is ignored).

        Reads only what another process added since the last call.
        """
        try:
            size = self.path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            self._hashes, self._read = [], 0
            return self._hashes
        if size < self._read:
            self._hashes, self._read = [], 0
        if size > self._read:
            with self.path.open("rb") as f:
                f.seek(self._read)
                self._take(f.read(size - self._read))
        return self._hashes

    def _take(self, data: bytes) -> None:
        complete = data[: data.rfind(b"\n") + 1]  # the part after the last newline is torn
        for line in complete.split(b"\n")[:-1]:
            index, _, digest = line.partition(b" ")
            if index != str(len(self._hashes)).encode() or not is_hex(digest, 64):
                break
            self._hashes.append(digest.decode("ascii"))
        self._read += len(complete)

    def extend(self, hashes: list[str], start: int) -> None:
        """Record entries ``start``, ``start + 1``, ... (already recorded ones are skipped)."""
        count, _ = self.tail()
        new = hashes[count - start:] if count > start else hashes
        if not new or start > count:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        first = count
        text = "".join(f"{first + i} {h}\n" for i, h in enumerate(new)).encode()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                # A torn last line from a crash: cut it so the new lines stay readable.
                os.ftruncate(fd, self._complete_prefix(fd, end))
            os.write(fd, text)
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _complete_prefix(fd: int, end: int) -> int:
        """Length of the file up to its last newline."""
        start = max(0, end - 4096)
        chunk = os.pread(fd, end - start, start)
        return start + chunk.rfind(b"\n") + 1 if b"\n" in chunk else 0

    def reset(self, hashes: list[str]) -> None:
        """Replace the record (after an explicit repair the user confirmed); forgets any problem."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, "".join(f"{i} {h}\n" for i, h in enumerate(hashes)).encode(), 0o600)
        with contextlib.suppress(FileNotFoundError):
            self.head_path.unlink()  # the ledger's next open keeps the repaired tree's head
        self._hashes, self._read = [], 0
        self.forget_problem()

    def forget_problem(self) -> None:
        """Drop the remembered problem (best effort: skipped with a warning if it cannot be)."""
        if not os.path.lexists(self.problem_path):
            return  # nothing remembered: no need to touch the folder
        try:
            self.problem_path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            pass  # nothing remembered
        except OSError as exc:
            self.warn(exc, "a problem remembered from an earlier audit stays until it can be cleared")

    @property
    def problem_path(self) -> Path:
        return self.path.with_suffix(".problem.json")

    def record_problem(self, index: int, reason: str, entry_hash: str | None) -> None:
        """Remember a problem a full audit found (best effort: skipped with a warning if it cannot be)."""
        data = {"index": index, "reason": reason, "entry_hash": entry_hash}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.problem_path, json.dumps(data).encode(), 0o600)
        except OSError as exc:
            self.warn(exc, "the problem found is not remembered after this run")

    def recorded_problem(self) -> tuple[int, str, str | None] | None:
        """The remembered problem: (index, reason, hash of the entry it was found at)."""
        try:
            data = json.loads(self.problem_path.read_bytes())
            return int(data["index"]), str(data["reason"]), data["entry_hash"]
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable note: the next audit finds the problem again
