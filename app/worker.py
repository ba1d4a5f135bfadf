"""One worker for any core generator: runs it in a QThread, reports in batches.

The core's long work (training, audits, replays) is a generator that yields
small progress records and returns its result; stopping is cooperative (the
generator is handed a ``should_stop`` callable). Records are delivered in
batches at most every ``batch_seconds`` so a fast generator cannot flood the
event loop.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

GeneratorFactory = Callable[[Callable[[], bool]], Generator[Any, None, Any]]


class GeneratorWorker(QObject):
    """Runs ``factory(should_stop)`` to the end in its own thread."""

    progressed = Signal(list)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, factory: GeneratorFactory, batch_seconds: float = 0.03) -> None:
        super().__init__()
        self._factory = factory
        self._batch_seconds = batch_seconds
        self._stop = threading.Event()
        self.result: Any = None
        self.error: str | None = None

    def stop(self) -> None:
        """Ask the generator to finish after its current step (thread-safe)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @Slot()
    def run(self) -> None:
        batch: list[Any] = []
        last = time.monotonic()
        try:
            gen = self._factory(self._stop.is_set)
            while True:
                try:
                    batch.append(next(gen))
                except StopIteration as done:
                    self.result = done.value
                    break
                now = time.monotonic()
                if now - last >= self._batch_seconds:
                    self.progressed.emit(batch)
                    batch, last = [], now
            if batch:
                self.progressed.emit(batch)
            self.succeeded.emit(self.result)
        except Exception as exc:  # reported to the UI, never lost in the thread
            self.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            self.failed.emit(str(exc) or type(exc).__name__)
        finally:
            self.finished.emit()


class WorkerThread:
    """A started worker and its thread; ``stop_and_wait`` is safe from the GUI thread."""

    def __init__(self, worker: GeneratorWorker, parent: QObject | None = None) -> None:
        self.worker = worker
        self.thread = QThread(parent)
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)
        # Direct: quit() is thread-safe, and a queued quit would never run while the
        # GUI thread blocks in wait() (closeEvent).
        worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.start()

    def running(self) -> bool:
        return self.thread.isRunning()

    def stop_and_wait(self, timeout_ms: int = 60_000) -> bool:
        """Stop cooperatively and wait for the thread; True when it ended."""
        self.worker.stop()
        return self.thread.wait(timeout_ms)


def stoppable(run: Generator[Any, None, Any], should_stop: Callable[[], bool]) -> Generator[Any, None, Any]:
    """``run``, abandoned between two of its records when asked to stop; then it returns None.

    For core generators that take no ``should_stop`` themselves (a replay of
    waiting entries): what they finished before stopping is kept.
    """
    while True:
        try:
            record = next(run)
        except StopIteration as done:
            return done.value
        if should_stop():
            run.close()
            return None
        yield record


def one_step(call: Callable[[], Any]) -> Generator[None, None, Any]:
    """A plain call as a one-step generator, so GeneratorWorker can run it."""
    return call()
    yield  # makes this a generator


class BackgroundTask(QObject):
    """One call at a time off the GUI thread; its result goes to a callback on the GUI thread.

    The worker's signals reach bound methods of this object (which lives in the
    GUI thread), so the callbacks never run in the worker's thread.
    """

    changed = Signal()
    """A task started or ended (for enabling buttons)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._job: WorkerThread | None = None
        self._done: Callable[[Any], None] | None = None
        self._failed: Callable[[str], None] | None = None

    @property
    def busy(self) -> bool:
        return self._job is not None

    def start(self, call: Callable[[], Any], done: Callable[[Any], None],
              failed: Callable[[str], None]) -> None:
        """Run ``call()`` in a worker; then ``done(result)`` or ``failed(message)``."""
        worker = GeneratorWorker(lambda _stop: one_step(call))
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        self._done, self._failed = done, failed
        self._job = WorkerThread(worker, self)
        self.changed.emit()

    def _end(self) -> tuple[Callable[[Any], None] | None, Callable[[str], None] | None]:
        job, done, failed = self._job, self._done, self._failed
        self._job = self._done = self._failed = None
        if job is not None:
            job.thread.wait()  # the worker has emitted its last signal; its thread is ending
        self.changed.emit()
        return done, failed

    @Slot(object)
    def _on_worker_succeeded(self, result: Any) -> None:
        done, _ = self._end()
        if done is not None:
            done(result)

    @Slot(str)
    def _on_worker_failed(self, message: str) -> None:
        _, failed = self._end()
        if failed is not None:
            failed(message)

    def shutdown(self) -> None:
        """Stop and wait for a running task, dropping its callbacks (window closing)."""
        job, self._job, self._done, self._failed = self._job, None, None, None
        if job is not None:
            job.worker.succeeded.disconnect(self._on_worker_succeeded)
            job.worker.failed.disconnect(self._on_worker_failed)
            job.stop_and_wait()
