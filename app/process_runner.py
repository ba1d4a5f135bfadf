"""Run a CPU-bound core generator in a child process, seen from the GUI side as a generator.

A training loop in a thread would hold the GIL almost all the time and starve
the GUI thread (measured: multi-second event-loop stalls). In a child process
it cannot. The proxy generator, run by the usual QThread worker, relays the
child's records in batches, passes a stop request on, and returns the child's
result. Stopping stays cooperative: the child finishes its episode and
returns what was learned.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

BATCH_SECONDS = 0.03
Target = Callable[..., Generator[Any, None, Any]]


class ChildProcessError_(RuntimeError):
    """The child process failed; the message is its one-line reason."""


Pack = Callable[[list[Any]], Any]


def _child(target: Target, args: tuple[Any, ...], conn: Connection, stop: Event, pack: Pack | None) -> None:
    try:
        gen = target(*args, should_stop=stop.is_set)
        batch: list[Any] = []
        last = time.monotonic()
        while True:
            try:
                batch.append(next(gen))
            except StopIteration as done:
                if batch:
                    conn.send(("records", pack(batch) if pack else batch))
                conn.send(("result", done.value))
                return
            if time.monotonic() - last >= BATCH_SECONDS:
                conn.send(("records", pack(batch) if pack else batch))
                batch, last = [], time.monotonic()
    except Exception as exc:  # reported to the parent as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def in_child_process(target: Target, *args: Any, pack: Pack | None = None
                     ) -> Callable[[Callable[[], bool]], Generator[Any, None, Any]]:
    """A generator factory (for :class:`app.worker.GeneratorWorker`) running ``target(*args)`` apart.

    With ``pack``, the child sends ``pack(batch)`` and the proxy yields one item per batch;
    ``target`` and ``pack`` must be importable without Qt (the child imports their module).
    """

    def factory(should_stop: Callable[[], bool]) -> Generator[Any, None, Any]:
        context = mp.get_context("spawn")  # fork is unsafe in a process running Qt threads
        receive, send = context.Pipe(duplex=False)
        stop = context.Event()
        process = context.Process(target=_child, args=(target, args, send, stop, pack), daemon=True)
        process.start()
        send.close()
        try:
            while True:
                if should_stop() and not stop.is_set():
                    stop.set()
                if not receive.poll(0.05):
                    if not process.is_alive() and not receive.poll():
                        raise ChildProcessError_("the training process ended unexpectedly")
                    continue
                kind, payload = receive.recv()
                if kind == "records" and pack is not None:
                    yield payload
                elif kind == "records":
                    yield from payload
                elif kind == "result":
                    return payload
                else:
                    raise ChildProcessError_(str(payload))
        finally:
            stop.set()
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
            receive.close()

    return factory
