"""Reading files that may be hostile: a FIFO, a device, a socket, a huge or sparse file.

Workspaces and input files come from anybody. Every such read opens without
blocking, checks that it holds a regular file, bounds its size and reads at
most one byte past the bound, so a bad file gives one clear line at once
instead of a hang or an exhausted memory.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from policyledger_core.errors import BadInput

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))
_CHUNK = 1 << 20


class UnreadableFile(BadInput, OSError):
    """A file that is refused before its content is read; ``str()`` is one line naming it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(errno.EINVAL, reason)  # strerror = reason, for plain OSError handlers
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


class NotARegularFile(UnreadableFile):
    """A FIFO, a device, a socket or a folder where a file was expected."""


class FileTooLarge(UnreadableFile):
    """A file larger than its bound."""


def kind_of(mode: int) -> str:
    """What a file mode is, in words ("a FIFO", "a character device", ...)."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a link")):
        if test(mode):
            return name
    return "of an unknown kind"


def check_regular(st: os.stat_result, limit: int, name: str) -> None:
    """Raise unless ``st`` is a regular file of at most ``limit`` bytes."""
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFile(name, f"not a regular file ({kind_of(st.st_mode)})")
    if st.st_size > limit:
        raise FileTooLarge(name, f"larger than {limit} bytes")


def check_path(path: Path, limit: int, name: str | None = None) -> None:
    """Like :func:`read_regular` without reading (stat only, follows links; never blocks).

    A missing file raises FileNotFoundError.
    """
    check_regular(os.stat(path), limit, name or str(path))


def read_regular(path: Path, limit: int, name: str | None = None, offset: int = 0) -> bytes:
    """The bytes of the regular file ``path`` from ``offset`` on; the whole file is at most ``limit``.

    Raises :class:`NotARegularFile` or :class:`FileTooLarge` (named ``name``,
    default the path) before reading anything; FileNotFoundError and other
    OSErrors of the open or the read pass through.
    """
    label = name or str(path)
    # stat first: opening a device can have effects of its own, and a socket cannot be opened;
    # the check after the open catches a file swapped in between.
    check_regular(os.stat(path), limit, label)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        check_regular(st, limit, label)
        size = st.st_size
        chunks: list[bytes] = []
        total = offset
        want = max(0, min(size, limit) - offset) + 1  # one byte more tells a file that grew
        while total <= limit:
            chunk = os.pread(fd, min(want, limit + 1 - total), total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = _CHUNK
        if total > limit:
            raise FileTooLarge(label, f"larger than {limit} bytes")
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def describe(exc: OSError, name: str) -> str:
    """One line for a failed read of the file called ``name``."""
    if isinstance(exc, UnreadableFile):
        return str(exc)
    return f"{name}: cannot read ({exc.strerror or exc})"
