"""The app's one task mechanism: results, errors as objects, progress in batches, cancel and shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication

from app.process_runner import TrainingProcessFailed, in_child_process
from app.worker import MAX_IN_FLIGHT, Task, TaskRunner, one_line
from tests.app.tasks import targets

TIMEOUT_MS = 20_000


class Seen:
    """What a runner's callbacks received, in order, and in which thread."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[threading.Thread] = set()

    def __call__(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.threads.add(threading.current_thread())
            self.events.append((name, args[0] if args else None))
        return record

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def start(self, runner: TaskRunner, factory: Any) -> Task:
        return runner.start(factory, done=self("done"), error=self("error"), progress=self("progress"),
                            started=self("started"), cancelled=self("cancelled"))


@pytest.fixture
def runner(qtbot: Any) -> Generator[TaskRunner, None, None]:
    made = TaskRunner()
    yield made
    made.shutdown()


def test_a_call_hands_its_result_to_done_in_the_gui_thread(qtbot: Any, runner: TaskRunner) -> None:
    seen = Seen()
    ran_in: list[threading.Thread] = []

    def work() -> int:
        ran_in.append(threading.current_thread())
        return 42

    runner.call(work, done=seen("done"), error=seen("error"), started=seen("started"))
    assert runner.busy
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_MS)
    assert seen.events == [("started", None), ("done", 42)]
    assert ran_in and ran_in[0] is not threading.main_thread()
    assert seen.threads == {threading.main_thread()}


@pytest.mark.parametrize("kind", ["call", "generator"])
def test_an_error_arrives_as_the_exception_object(qtbot: Any, runner: TaskRunner, kind: str) -> None:
    raised = LookupError("entry 7:\n  no such policy")
    seen = Seen()

    def call() -> None:
        raise raised

    def factory(_should_stop: Callable[[], bool]) -> Generator[int, None, None]:
        yield 1
        raise raised

    if kind == "call":
        runner.call(call, done=seen("done"), error=seen("error"))
    else:
        seen.start(runner, factory)
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_MS)
    [(name, exc)] = [event for event in seen.events if event[0] in ("done", "error", "cancelled")]
    assert name == "error" and exc is raised  # the object itself, not a string
    assert one_line(exc) == "entry 7: no such policy"  # what the UI shows: one line made from it
    assert one_line(RuntimeError()) == "RuntimeError"


def test_task_signals_carry_the_exception_object(qtbot: Any) -> None:
    raised = KeyError("missing")

    def call() -> None:
        raise raised

    task = Task.of_call(call)
    with qtbot.waitSignal(task.failed, timeout=TIMEOUT_MS) as blocker:
        task.start()
    assert blocker.args[0] is raised
    task.wait()


def test_progress_comes_in_order_in_batches(qtbot: Any, runner: TaskRunner) -> None:
    count = 3_000

    def factory(_should_stop: Callable[[], bool]) -> Generator[int, None, str]:
        for i in range(count):
            if i % 100 == 0:
                time.sleep(0.002)
            yield i
        return "end"

    seen = Seen()
    begun = time.monotonic()
    seen.start(runner, factory)
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_MS)
    elapsed = time.monotonic() - begun
    batches = [batch for name, batch in seen.events if name == "progress"]
    assert [r for batch in batches for r in batch] == list(range(count))
    assert len(batches) <= elapsed / runner.batch_seconds + 2  # at most one batch per ~30 ms
    assert seen.names()[0] == "started" and seen.events[-1] == ("done", "end")


def test_cancel_stops_a_generator_between_yields(qtbot: Any, runner: TaskRunner) -> None:
    produced: list[int] = []
    closed = threading.Event()

    def factory(_should_stop: Callable[[], bool]) -> Generator[int, None, str]:
        try:
            n = 0
            while True:  # never ends by itself: only a cancel ends it
                produced.append(n)
                yield n
                n += 1
                time.sleep(0.001)
        finally:
            closed.set()

    seen = Seen()
    seen.start(runner, factory)
    qtbot.waitUntil(lambda: len(produced) > 20, timeout=TIMEOUT_MS)
    runner.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_MS)
    assert closed.is_set()
    assert seen.names()[-1] == "cancelled" and "done" not in seen.names() and "error" not in seen.names()
    stopped_at = len(produced)
    time.sleep(0.05)
    assert len(produced) == stopped_at  # the generator went no further


def test_stop_lets_the_work_end_by_itself_with_its_result(qtbot: Any, runner: TaskRunner) -> None:
    def factory(should_stop: Callable[[], bool]) -> Generator[int, None, str]:
        n = 0
        while not should_stop():
            yield n
            n += 1
            time.sleep(0.001)
        return f"stopped after {n}"

    seen = Seen()
    seen.start(runner, factory)
    qtbot.waitUntil(lambda: "progress" in seen.names(), timeout=TIMEOUT_MS)
    runner.stop()
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_MS)
    name, result = seen.events[-1]
    assert name == "done" and result.startswith("stopped after ")


def test_no_callback_fires_after_shutdown(qtbot: Any) -> None:
    runner = TaskRunner(batch_seconds=0.0)  # a batch per record: plenty queued for the GUI thread
    queued, release = threading.Event(), threading.Event()

    def factory(_should_stop: Callable[[], bool]) -> Generator[int, None, str]:
        yield from range(MAX_IN_FLIGHT)  # as many as may wait unhandled
        queued.set()
        release.wait(5)
        yield -1  # the cancel takes effect here
        return "end"

    seen = Seen()
    task = seen.start(runner, factory)
    assert queued.wait(5)  # started, and its batches wait in the GUI thread's queue: none delivered yet
    threading.Timer(0.1, release.set).start()
    ended = runner.shutdown()  # cancels after the record under way, and waits
    assert ended is task and not task.qthread.isRunning() and not runner.busy
    outcome = task.qthread.outcome
    assert outcome is not None and outcome.kind == "cancelled"
    for _ in range(20):  # everything still queued is delivered now, to nobody
        QApplication.processEvents()
        qtbot.wait(10)
    assert seen.events == []


def test_a_second_task_is_refused_while_one_runs(qtbot: Any, runner: TaskRunner) -> None:
    release = threading.Event()
    runner.call(lambda: release.wait(5), done=lambda _r: None, error=lambda _e: None)
    with pytest.raises(RuntimeError):
        runner.call(lambda: None, done=lambda _r: None, error=lambda _e: None)
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT_MS)


# -- the training child process -------------------------------------------------------------------


def test_a_child_process_relays_records_and_result(qtbot: Any, runner: TaskRunner) -> None:
    seen = Seen()
    seen.start(runner, in_child_process(targets.counts, 500))
    qtbot.waitUntil(lambda: not runner.busy, timeout=60_000)
    records = [r for name, batch in seen.events if name == "progress" for r in batch]
    assert records == list(range(500)) and seen.events[-1] == ("done", 500)


def test_a_child_process_failure_arrives_as_the_exception_object(qtbot: Any, runner: TaskRunner) -> None:
    seen = Seen()
    seen.start(runner, in_child_process(targets.fails, "bad configuration"))
    qtbot.waitUntil(lambda: not runner.busy, timeout=60_000)
    name, exc = seen.events[-1]
    assert name == "error" and type(exc) is ValueError and str(exc) == "bad configuration"


def test_a_child_process_error_that_cannot_travel_is_described(qtbot: Any, runner: TaskRunner) -> None:
    seen = Seen()
    seen.start(runner, in_child_process(targets.fails_oddly))
    qtbot.waitUntil(lambda: not runner.busy, timeout=60_000)
    name, exc = seen.events[-1]
    assert name == "error" and isinstance(exc, TrainingProcessFailed)
    assert one_line(exc) == "NeedsTwoArguments: the thing: it broke"


def test_a_busy_gui_makes_the_work_wait_instead_of_queueing(qtbot: Any, runner: TaskRunner) -> None:
    """Batches the GUI has not handled yet are bounded: the work waits for the GUI (a training
    process then waits on its pipe) instead of piling up progress in memory."""
    produced: list[int] = []
    received: list[list[Any]] = []

    def work(should_stop: Callable[[], bool]) -> Generator[int, None, int]:
        while not should_stop():
            produced.append(len(produced))
            yield produced[-1]
            time.sleep(0.002)
        return len(produced)

    runner.start(work, done=lambda _n: None, error=lambda _e: None, progress=received.append)
    task = runner.task
    assert task is not None
    time.sleep(1.0)  # the GUI thread is busy: nothing it was sent is handled
    stalled = len(produced)
    time.sleep(0.3)
    assert task.qthread.in_flight == MAX_IN_FLIGHT
    assert len(produced) - stalled <= 1  # the work waits for the GUI
    qtbot.waitUntil(lambda: len(received) > 3 * MAX_IN_FLIGHT, timeout=10_000)  # and goes on after
    with qtbot.waitSignal(task.finished, timeout=10_000):
        runner.stop()
