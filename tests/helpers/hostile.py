"""Hostile files for tests: FIFOs, devices, sockets, folders, huge sparse files; calls that may block."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
SECONDS = 5.0


def bounded(call: Callable[[], T], fifo: Path | None = None) -> T:
    """``call()``, failing the test if it blocks (a blocked FIFO reader is released first)."""
    result: list[tuple[bool, object]] = []

    def target() -> None:
        try:
            result.append((True, call()))
        except BaseException as exc:  # handed back to the test's thread
            result.append((False, exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(SECONDS)
    if thread.is_alive():
        if fifo is not None:  # a reader blocked on the FIFO gets EOF once a writer came and went
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(SECONDS)
        pytest.fail(f"blocked for more than {SECONDS} seconds")
    ok, value = result[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # type: ignore[return-value]


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def make_hostile(path: Path, kind: str) -> str:
    """Put a hostile ``kind`` of file at ``path``; returns what the error must say."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
        return "not a regular file (a FIFO)"
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
        return "not a regular file (a character device)"
    if kind == "socket":
        with _in(path.parent), socket.socket(socket.AF_UNIX) as s:  # a short name: sun_path is small
            s.bind(path.name)
        return "not a regular file (a socket)"
    if kind == "folder":
        path.mkdir()
        return "not a regular file (a folder)"
    assert kind == "sparse"
    path.write_bytes(b"")
    os.truncate(path, 4 << 30)  # 4 GiB of nothing on disk
    return "larger than"
