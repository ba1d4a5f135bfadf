"""Run a CPU-bound core generator in a child process, seen from the GUI side as a generator.

A training loop in a thread would hold the GIL almost all the time and starve
the GUI thread (measured: multi-second event-loop stalls). In a child process
it cannot. The child sends its records down a pipe in batches, through the same
helper as the thread worker (:func:`app.batching.drain`); the proxy generator,
run as an ordinary :class:`app.worker.Task`, yields them, passes a stop request
on, and returns the child's result. Stopping stays cooperative: the child
finishes its episode and returns what was learned.

The child imports this module, so it imports no Qt.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from app.batching import drain

Target = Callable[..., Generator[Any, None, Any]]
Pack = Callable[[list[Any]], Any]

RELAY_SECONDS = 0.0
"""How a task relays the packed batches of :func:`in_child_process`: each one as it arrives.

The child already sends at most one batch per interval. Batching them again by time in
the relaying thread holds back every batch that arrives a little early (pipe and GIL
jitter: about a third of them, measured) and merges it with the next one, so the GUI
gets a batch 60 ms apart at those points and the plots miss a refresh each time.
"""


class TrainingProcessFailed(RuntimeError):
    """The training child process died, or failed with an error that could not be sent back as it was."""


def _sendable(exc: Exception) -> Exception:
    """``exc`` itself when it survives the trip through the pipe, else its one-line description."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return TrainingProcessFailed(f"{type(exc).__name__}: {exc}")
    return exc


def _child(target: Target, args: tuple[Any, ...], conn: Connection, stop: Event, pack: Pack | None) -> None:
    try:
        gen = target(*args, should_stop=stop.is_set)
        result = drain(gen, lambda batch: conn.send(("records", pack(batch) if pack else batch)))
        conn.send(("result", result))
    except Exception as exc:  # the parent raises it again, as the task's error
        conn.send(("error", _sendable(exc)))
    finally:
        conn.close()


def in_child_process(target: Target, *args: Any, pack: Pack | None = None, patience: float = 10.0,
                     daemon: bool = True) -> Callable[[Callable[[], bool]], Generator[Any, None, Any]]:
    """A generator factory (for :meth:`app.worker.TaskRunner.start`) running ``target(*args)`` apart.

    With ``pack``, the child sends ``pack(batch)`` and the proxy yields one item per batch;
    ``target`` and ``pack`` must be importable without Qt (the child imports their module).
    Those items are already paced by the child (at most one per ``BATCH_SECONDS``): run the
    factory with ``batch_seconds=RELAY_SECONDS`` so that each is handed on as it arrives.
    A failure in the child is raised here as the same exception (or as
    :class:`TrainingProcessFailed` when it cannot be sent, or the child died). Once stopped, the
    child has ``patience`` seconds to end by itself before it is terminated. A child that starts
    processes of its own (a sweep's pool) cannot be a daemon: ``daemon=False``.
    """

    def factory(should_stop: Callable[[], bool]) -> Generator[Any, None, Any]:
        context = mp.get_context("spawn")  # fork is unsafe in a process running Qt threads
        receive, send = context.Pipe(duplex=False)
        stop = context.Event()
        process = context.Process(target=_child, args=(target, args, send, stop, pack), daemon=daemon)
        process.start()
        send.close()
        try:
            while True:
                if should_stop() and not stop.is_set():
                    stop.set()
                if not receive.poll(0.05):
                    if not process.is_alive() and not receive.poll():
                        raise TrainingProcessFailed("the training process ended unexpectedly")
                    continue
                try:
                    kind, payload = receive.recv()
                except EOFError:  # it died mid-message
                    raise TrainingProcessFailed("the training process ended unexpectedly") from None
                if kind == "records" and pack is not None:
                    yield payload
                elif kind == "records":
                    yield from payload
                elif kind == "result":
                    return payload
                elif isinstance(payload, Exception):
                    raise payload
                else:
                    raise TrainingProcessFailed(str(payload))
        finally:
            stop.set()
            process.join(timeout=patience)
            if process.is_alive():
                process.terminate()
            receive.close()

    return factory
