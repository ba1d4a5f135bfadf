"""Work for the training child process in tests: importable without Qt (the child imports this module)."""

from __future__ import annotations

from collections.abc import Callable, Generator


class NeedsTwoArguments(Exception):
    """Cannot be rebuilt from its pickled args: it does not survive the trip to the parent."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def counts(n: int, should_stop: Callable[[], bool]) -> Generator[int, None, int]:
    yield from range(n)
    return n


def fails(message: str, should_stop: Callable[[], bool]) -> Generator[int, None, int]:
    yield 1
    raise ValueError(message)


def fails_oddly(should_stop: Callable[[], bool]) -> Generator[int, None, int]:
    yield 1
    raise NeedsTwoArguments("the thing", "it broke")
