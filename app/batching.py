"""Progress records in batches, at most one batch per interval (no Qt here).

The core's long work is a generator that yields small progress records and
returns its result. Whoever relays those records (the thread worker to the GUI,
the training child process down its pipe) sends them through :func:`drain`, so
a fast generator cannot flood the receiver: records are gathered and handed on
as one list at most every ``interval`` seconds, every record in order.

The child process imports this module: it must never import Qt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Generic, TypeVar

BATCH_SECONDS = 0.03
"""The default interval: about 30 batches a second, more than a progress display can show."""

R = TypeVar("R")
T = TypeVar("T")


class Cancelled(Exception):
    """Raised by :func:`drain` when asked to cancel between two records; the generator was closed."""


def _never() -> bool:
    return False


class Batcher(Generic[R]):
    """Gathers records and ``send``s them as lists, at most one list per ``interval`` seconds.

    A record that comes after a quiet spell of ``interval`` or longer goes out at
    once (so the first one does); the others wait for the next record after the
    interval, or for :meth:`flush` at the end. Every record is sent exactly once, in order.
    """

    def __init__(self, send: Callable[[list[R]], object], interval: float = BATCH_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._interval = interval
        self._clock = clock
        self._batch: list[R] = []
        self._last: float | None = None

    def add(self, record: R) -> None:
        """Take one record; send the batch when the interval since the last one has passed."""
        self._batch.append(record)
        now = self._clock()
        if self._last is None or now - self._last >= self._interval:
            self._send_batch(now)

    def flush(self) -> None:
        """Send what is gathered (the end of the run: nothing more will come)."""
        if self._batch:
            self._send_batch(self._clock())

    def _send_batch(self, now: float) -> None:
        batch, self._batch = self._batch, []
        self._last = now
        self._send(batch)


def drain(work: Generator[R, None, T], send: Callable[[list[R]], object], *,
          interval: float = BATCH_SECONDS, cancelled: Callable[[], bool] = _never,
          clock: Callable[[], float] = time.monotonic) -> T:
    """Run ``work`` to its end, its records sent in batches; return what it returns.

    ``cancelled`` is asked after each record: when it says yes, the generator is
    closed there (its ``finally`` blocks run) and :class:`Cancelled` is raised;
    the records gathered since the last batch are dropped.
    """
    batcher: Batcher[R] = Batcher(send, interval, clock)
    while True:
        try:
            record = next(work)
        except StopIteration as done:
            batcher.flush()
            result: T = done.value
            return result
        if cancelled():
            work.close()
            raise Cancelled
        batcher.add(record)
