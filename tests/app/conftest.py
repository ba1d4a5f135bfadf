"""Fixtures shared by the app tests: the marketplace's background replay, held where a test wants it."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from app import marketplace_tab
from policyledger_core.workspace.reproduced import ReproduceProgress, ReproduceReport

HOLD_SECONDS = 20.0
"""A held replay goes on by itself after this long, so a failing test cannot hang its teardown."""


@dataclass
class HeldReplay:
    """The marketplace's replays: the entry indexes each was asked for; ``release`` lets them go on."""

    release: threading.Event = field(default_factory=threading.Event)
    runs: list[list[int]] = field(default_factory=list)


@pytest.fixture
def held_replay(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldReplay]:
    """The core's ``reproduce`` as the marketplace calls it, stopped after its first record until released.

    So a test sees the tab while entries are waiting (nothing is replayed before the release).
    """
    held = HeldReplay()
    real = marketplace_tab.reproduce

    def reproduce(ledger: Any, store: Any, reproductions: Any,
                  indexes: Sequence[int]) -> Generator[ReproduceProgress, None, ReproduceReport]:
        held.runs.append(list(indexes))
        run = real(ledger, store, reproductions, indexes)
        yield next(run)
        held.release.wait(HOLD_SECONDS)
        return (yield from run)

    monkeypatch.setattr(marketplace_tab, "reproduce", reproduce)
    yield held
    held.release.set()
