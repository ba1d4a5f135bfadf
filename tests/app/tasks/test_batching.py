"""The batching helper shared by the thread worker and the training child process (no Qt)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Generator, Iterator

import pytest

from app import process_runner
from app.batching import Batcher, Cancelled, drain

INTERVAL = 0.03


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def timed_records(clock: FakeClock, steps: list[float]) -> Generator[int, None, str]:
    """Yields 0, 1, 2...; before each record the clock moves on by the next step."""
    for i, step in enumerate(steps):
        clock.now += step
        yield i
    return "result"


def steps_of(seed: int, count: int) -> list[float]:
    """Irregular gaps between records: bursts far below the interval, and pauses above it."""
    gaps = [0.0005] * 40 + [0.001, 0.004, 0.012, 0.029, 0.03, 0.031, 0.07, 0.2]
    return [gaps[(seed * 7 + i * i * 3 + i) % len(gaps)] for i in range(count)]


@pytest.mark.parametrize("seed", range(5))
def test_every_record_arrives_in_order_and_at_most_one_batch_per_interval(seed: int) -> None:
    clock = FakeClock()
    sent: list[tuple[float, list[int]]] = []
    steps = steps_of(seed, 2_000)
    result = drain(timed_records(clock, steps), lambda batch: sent.append((clock.now, batch)),
                   interval=INTERVAL, clock=clock)
    assert result == "result"
    assert [r for _, batch in sent for r in batch] == list(range(len(steps)))  # all, in order, once
    assert all(batch for _, batch in sent)  # never an empty batch
    times = [t for t, _ in sent][:-1]  # the last one is the flush at the end, when the run is over
    # Every other batch comes at least one interval after the one before it.
    assert all(b - a >= INTERVAL for a, b in itertools.pairwise(times))
    elapsed = clock.now - 100.0
    assert len(sent) <= elapsed / INTERVAL + 2
    assert len(sent) < len(steps) / 4  # bursts really are gathered


def test_the_first_record_goes_out_at_once_and_the_rest_at_the_end() -> None:
    clock = FakeClock()
    sent: list[list[int]] = []
    batcher: Batcher[int] = Batcher(sent.append, INTERVAL, clock)
    batcher.add(1)
    assert sent == [[1]]  # nothing to wait for: a progress display shows the start at once
    clock.now += 0.001
    batcher.add(2)
    batcher.add(3)
    assert sent == [[1]]
    batcher.flush()
    assert sent == [[1], [2, 3]]
    batcher.flush()
    assert sent == [[1], [2, 3]]  # nothing gathered: nothing sent


def test_cancel_closes_the_generator_between_two_records() -> None:
    closed: list[bool] = []
    produced: list[int] = []

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            closed.append(True)

    sent: list[list[int]] = []
    with pytest.raises(Cancelled):
        drain(endless(), sent.append, interval=0.0, cancelled=lambda: len(produced) >= 5)  # type: ignore[arg-type]
    assert closed == [True]
    assert produced == [0, 1, 2, 3, 4]  # not one record more after the cancel
    assert [r for batch in sent for r in batch] == [0, 1, 2, 3]


def test_the_child_process_batches_with_the_same_helper() -> None:
    assert process_runner.drain is drain


def test_the_child_side_imports_no_qt() -> None:
    """The training child process imports process_runner and the batching helper: no Qt may come along."""
    code = ("import sys, app.process_runner, app.episode_relay; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "[]"
