"""The app's one way to run background work: a :class:`Task`, started by a :class:`TaskRunner`.

Shaped like superqt's ``thread_worker`` and Orange's ``ConcurrentMixin``:

* work is a generator factory (it is handed a ``should_stop`` callable, yields
  progress records and returns its result) or a plain call;
* it runs in its own thread and reports, on the GUI thread: started, progress
  (records in batches, at most one batch per ~30 ms, see :mod:`app.batching`),
  then exactly one of done(result), error(the exception object) or cancelled;
* :meth:`Task.cancel` abandons a generator between two of its records;
  :meth:`Task.stop` only makes ``should_stop()`` true, so work that checks it
  (training) ends by itself and still returns its result.

Work never touches the GUI's core objects: it opens its own
(:meth:`app.model.Place.open`) and returns plain values; the GUI then refreshes
from its own objects.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.batching import BATCH_SECONDS, Cancelled, drain

ShouldStop = Callable[[], bool]
GeneratorFactory = Callable[[ShouldStop], Generator[Any, None, Any]]
MAX_IN_FLIGHT = 8
"""Progress batches sent to the GUI thread and not yet handled, at most: when the GUI is busy the
work waits (a training process then waits on its pipe) rather than queueing without bound."""


def one_line(exc: BaseException) -> str:
    """The exception as one line for the UI: its message (its type's name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _call(call: Callable[[], Any]) -> Generator[Any, None, Any]:
    """A plain call as a generator without records."""
    yield from ()
    return call()


@dataclass(frozen=True)
class _Outcome:
    """How a run ended: "done" (``value`` is the result), "error" (the exception) or "cancelled"."""

    kind: str
    value: Any = None


class _Thread(QThread):
    """Runs the work; its signals reach the :class:`Task` (GUI thread) queued."""

    progressed = Signal(list)
    begun = Signal()
    ended = Signal(object)

    def __init__(self, factory: GeneratorFactory, batch_seconds: float, parent: QObject) -> None:
        super().__init__(parent)
        self.factory = factory
        self.batch_seconds = batch_seconds
        self.stop_event = threading.Event()
        self.cancel_event = threading.Event()
        self.outcome: _Outcome | None = None
        self.in_flight = 0
        self._handled = threading.Condition()

    def handled(self) -> None:
        """The GUI thread handled a batch (or dropped it): room for the next."""
        with self._handled:
            self.in_flight -= 1
            self._handled.notify()

    def _send(self, batch: list[Any]) -> None:
        with self._handled:
            # Once asked to stop, nothing waits: the work must reach its end (and its result).
            while self.in_flight >= MAX_IN_FLIGHT and not self.stop_event.is_set():
                self._handled.wait(0.05)
            self.in_flight += 1
        self.progressed.emit(batch)

    def run(self) -> None:
        self.begun.emit()
        try:
            work = self.factory(self.stop_event.is_set)
            result = drain(work, self._send, interval=self.batch_seconds, cancelled=self.cancel_event.is_set)
            outcome = _Outcome("done", result)
        except Cancelled:
            outcome = _Outcome("cancelled")
        except Exception as exc:  # handed to the GUI as the object; the trace goes to stderr
            traceback.print_exc()
            outcome = _Outcome("error", exc)
        self.outcome = outcome
        self.ended.emit(outcome)


class Task(QObject):
    """One run of background work. Lives in the GUI thread; its signals are emitted there.

    ``finished`` comes last, after exactly one of ``succeeded``, ``failed`` or
    ``cancelled``, once the thread has ended. After :meth:`detach` none is emitted.
    """

    started = Signal()
    progressed = Signal(list)
    """A batch of progress records, in order."""
    succeeded = Signal(object)
    failed = Signal(object)
    """The exception object (see :func:`one_line` for the UI's message)."""
    cancelled = Signal()
    finished = Signal()

    def __init__(self, factory: GeneratorFactory, parent: QObject | None = None,
                 batch_seconds: float = BATCH_SECONDS) -> None:
        super().__init__(parent)
        self.qthread = _Thread(factory, batch_seconds, self)
        self.qthread.begun.connect(self._on_thread_begun)
        self.qthread.progressed.connect(self._on_thread_progressed)
        self.qthread.ended.connect(self._on_thread_ended)
        self._detached = False

    @classmethod
    def of_call(cls, call: Callable[[], Any], parent: QObject | None = None,
                batch_seconds: float = BATCH_SECONDS) -> Task:
        """A task of one plain call (no progress; cancel cannot interrupt it)."""
        return cls(lambda _should_stop: _call(call), parent, batch_seconds)

    def start(self) -> None:
        self.qthread.start()

    def stop(self) -> None:
        """Ask the work to finish: ``should_stop()`` turns true (thread-safe); it returns what it has."""
        self.qthread.stop_event.set()

    def cancel(self) -> None:
        """Abandon the work after its current record (thread-safe); it ends as cancelled."""
        self.qthread.stop_event.set()
        self.qthread.cancel_event.set()

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the thread has ended; True when it did."""
        return bool(self.qthread.wait(timeout_ms))

    def detach(self) -> None:
        """Emit nothing more, even for signals already queued (the owner is going away)."""
        self._detached = True

    @property
    def result(self) -> Any:
        """The work's result once it ended well (after :meth:`wait`), else None."""
        outcome = self.qthread.outcome
        return outcome.value if outcome is not None and outcome.kind == "done" else None

    @Slot()
    def _on_thread_begun(self) -> None:
        if not self._detached:
            self.started.emit()

    @Slot(list)
    def _on_thread_progressed(self, batch: list[Any]) -> None:
        self.qthread.handled()
        if not self._detached:
            self.progressed.emit(batch)

    @Slot(object)
    def _on_thread_ended(self, outcome: _Outcome) -> None:
        self.qthread.wait()  # it emitted its last signal: returning from run() is all that is left
        if self._detached:
            return
        if outcome.kind == "done":
            self.succeeded.emit(outcome.value)
        elif outcome.kind == "error":
            self.failed.emit(outcome.value)
        else:
            self.cancelled.emit()
        self.finished.emit()


Callback = Callable[[Any], object]
Notice = Callable[[], object]
_STRANDED: list[Task] = []
"""Tasks whose thread outlived a shutdown's wait: kept, since destroying a running QThread aborts."""


@dataclass(frozen=True)
class _Callbacks:
    done: Callback
    error: Callback
    progress: Callback | None = None
    started: Notice | None = None
    cancelled: Notice | None = None


class TaskRunner(QObject):
    """One task at a time for one owner (a tab); its callbacks run in the GUI thread.

    The owner is busy from :meth:`start` until the task has ended; ``busy_changed``
    says so before a callback runs (so a callback may start the next task).
    """

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, batch_seconds: float = BATCH_SECONDS) -> None:
        super().__init__(parent)
        self.batch_seconds = batch_seconds
        self.task: Task | None = None
        self._callbacks: _Callbacks | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None

    def start(self, factory: GeneratorFactory, *, done: Callback, error: Callback,
              progress: Callback | None = None, started: Notice | None = None,
              cancelled: Notice | None = None) -> Task:
        """Run ``factory(should_stop)``'s generator in a thread: ``progress(batch)`` as it goes, then
        ``done(result)``, ``error(exception)`` or (after :meth:`cancel`) ``cancelled()``."""
        return self._run(Task(factory, self, self.batch_seconds),
                         _Callbacks(done, error, progress, started, cancelled))

    def call(self, call: Callable[[], Any], *, done: Callback, error: Callback,
             started: Notice | None = None) -> Task:
        """Run ``call()`` in a thread; then ``done(result)`` or ``error(exception)``."""
        return self._run(Task.of_call(call, self, self.batch_seconds), _Callbacks(done, error, None, started))

    def _run(self, task: Task, callbacks: _Callbacks) -> Task:
        if self.task is not None:
            raise RuntimeError("a task is already running here")
        self.task, self._callbacks = task, callbacks
        task.started.connect(self._on_task_started)
        task.progressed.connect(self._on_task_progressed)
        task.succeeded.connect(self._on_task_succeeded)
        task.failed.connect(self._on_task_failed)
        task.cancelled.connect(self._on_task_cancelled)
        self.busy_changed.emit(True)
        task.start()
        return task

    def stop(self) -> None:
        """Ask the running task to finish by itself (see :meth:`Task.stop`)."""
        if self.task is not None:
            self.task.stop()

    def cancel(self) -> None:
        """Abandon the running task after its current record (see :meth:`Task.cancel`)."""
        if self.task is not None:
            self.task.cancel()

    def shutdown(self, cancel: bool = True, timeout_ms: int = 60_000) -> Task | None:
        """Cancel (or only stop) the running task, wait for it, drop its callbacks: none fires after this.

        Returns the task, ended, so that its result can still be read (training keeps what it learned).
        """
        task, self.task, self._callbacks = self.task, None, None
        if task is None:
            return None
        task.detach()
        if cancel:
            task.cancel()
        else:
            task.stop()
        if task.wait(timeout_ms):
            task.deleteLater()
        else:  # never destroy a running thread: keep it until the process ends
            _STRANDED.append(task)
        self.busy_changed.emit(False)
        return task

    def _current(self) -> _Callbacks | None:
        """The callbacks, when the signal comes from the task running now."""
        return self._callbacks if self.task is not None and self.sender() is self.task else None

    def _end(self) -> _Callbacks | None:
        """The ended task's callbacks, once this runner is idle again (None: not the current task)."""
        callbacks, task = self._current(), self.task
        if callbacks is None or task is None:
            return None
        self.task, self._callbacks = None, None
        task.deleteLater()  # its thread has ended
        self.busy_changed.emit(False)
        return callbacks

    @Slot()
    def _on_task_started(self) -> None:
        callbacks = self._current()
        if callbacks is not None and callbacks.started is not None:
            callbacks.started()

    @Slot(list)
    def _on_task_progressed(self, batch: list[Any]) -> None:
        callbacks = self._current()
        if callbacks is not None and callbacks.progress is not None:
            callbacks.progress(batch)

    @Slot(object)
    def _on_task_succeeded(self, result: Any) -> None:
        callbacks = self._end()
        if callbacks is not None:
            callbacks.done(result)

    @Slot(object)
    def _on_task_failed(self, exc: Exception) -> None:
        callbacks = self._end()
        if callbacks is not None:
            callbacks.error(exc)

    @Slot()
    def _on_task_cancelled(self) -> None:
        callbacks = self._end()
        if callbacks is not None and callbacks.cancelled is not None:
            callbacks.cancelled()
