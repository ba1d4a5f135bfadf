"""Running a training generator to its end in tests."""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

from policyledger_core.learn.single import TrainingResult

R = TypeVar("R")


def collect(gen: Generator[R, None, TrainingResult]) -> tuple[list[R], TrainingResult]:
    """All records (or batches) a training generator yields, and the result it returns."""
    records: list[R] = []
    while True:
        try:
            records.append(next(gen))
        except StopIteration as done:
            return records, done.value
