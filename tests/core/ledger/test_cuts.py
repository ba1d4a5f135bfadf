"""An entry cut short: with the checkpoint a cut, without it a torn append."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from policyledger_core.ledger.layout import FOOTER
from policyledger_core.paths import LEDGER_FILE
from policyledger_core.workspace.context import Context
from tests.helpers.ledger_builder import (
    LEDGER_LOG,
    N_ENTRIES,
    Built,
    assert_clean,
    assert_valid_json,
    cut_inside,
    entry_lines,
    expect_problem,
    ledger_bytes,
    save,
)


@pytest.mark.parametrize("index", [0, 3, N_ENTRIES - 1])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_cut_mid_entry_caught_by_the_witness(built: Built, index: int, where: str) -> None:
    length = len(entry_lines(built.data)[index]) + (1 if index else 0)
    keep = {"start": 1, "middle": length // 2, "end": length}[where]  # "end": line complete, no newline
    cut_inside(built, index, keep)
    if where != "end":
        expect_problem(built, index, "truncated or rolled back")
    elif index < N_ENTRIES - 1:  # a whole entry without its newline is kept; the rest is missing
        expect_problem(built, index + 1, "truncated or rolled back")
    else:
        ledger = built.open()
        assert ledger.problem is None and ledger.torn_tail and len(ledger) == N_ENTRIES


@pytest.mark.parametrize("where", ["comma", "middle", "no-newline", "no-footer", "half-footer"])
def test_cut_mid_entry_without_witness_is_a_torn_append(
        built: Built, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str) -> None:
    last = N_ENTRIES - 1
    length = len(entry_lines(built.data)[last]) + 1
    if where == "no-footer":
        built.path.write_bytes(built.data.removesuffix(FOOTER))
        kept = N_ENTRIES
    elif where == "half-footer":
        built.path.write_bytes(built.data.removesuffix(FOOTER) + FOOTER[:1])
        kept = N_ENTRIES
    else:
        keep = {"comma": 1, "middle": length // 2, "no-newline": length}[where]
        cut_inside(built, last, keep)
        kept = N_ENTRIES if where == "no-newline" else last  # a whole entry is never dropped
    torn_bytes = built.path.read_bytes()[len(ledger_bytes(entry_lines(built.data)[:kept])) - len(FOOTER):]
    fresh = tmp_path / "fresh-config"
    caplog.set_level(logging.WARNING, logger=LEDGER_LOG)
    ctx = Context.open(built.root, fresh)
    assert ctx.ledger.problem is None
    assert ctx.ledger.torn_tail
    assert not ctx.ledger.read_only
    assert [e.hash for e in ctx.ledger.entries()] == built.hashes[:kept]
    assert any("incomplete trailing entry" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    # Still usable: the next append replaces the torn bytes and continues the chain.
    entry = save(ctx, 100)
    assert entry.index == kept
    assert entry.prev == built.hashes[kept - 1]
    saved = sorted(built.root.glob(f"{LEDGER_FILE}.torn-*"))
    if where in ("comma", "middle"):  # bytes of an entry were overwritten: kept beside the ledger first
        assert any("discarding the incomplete trailing bytes" in r.getMessage() for r in caplog.records)
        assert [p.read_bytes() for p in saved] == [torn_bytes]
    else:
        assert saved == []
    assert_valid_json(built, [*built.hashes[:kept], entry.hash])
    assert built.path.read_bytes().startswith(ledger_bytes(entry_lines(built.data)[:kept])[:-len(FOOTER)])
    assert_clean(built.root, fresh, kept + 1)


# -- a problem is read-only; repair ---------------------------------------------------------------
