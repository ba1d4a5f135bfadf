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
