"""A complete entry is never discarded: damage is damage for every user, torn bytes are kept.

Each case is checked for the ledger's owner (whose checkpoint has seen every
entry) and for a user without a checkpoint (a colleague, a fresh install, a
second machine): only a final line cut short by a crash may be treated as a
torn tail, and even those bytes are saved beside the ledger before an append
overwrites them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from policyledger_core.ledger.chain import LedgerError
from policyledger_core.ledger.layout import FOOTER, HEADER
from policyledger_core.paths import LEDGER_FILE
from policyledger_core.workspace.context import Context
from tests.helpers.ledger_builder import (
    N_ENTRIES,
    Built,
    edit_mean,
    entry_lines,
    fields_for,
    ledger_bytes,
    make_policy,
    save,
    tampered,
)

Damage = Callable[[Built], bytes]


def _crlf(b: Built) -> bytes:
    return b.data.replace(b"\n", b"\r\n")


def _crlf_last_line_only(b: Built) -> bytes:
    lines = entry_lines(b.data)
    return ledger_bytes(lines).replace(lines[-1] + b"\n", lines[-1] + b"\r\n")


def _bom(b: Built) -> bytes:
    return b"\xef\xbb\xbf" + b.data


def _edited_last(b: Built) -> bytes:
    lines = entry_lines(b.data)
    lines[-1] = tampered(lines[-1], edit_mean)
    return ledger_bytes(lines)


def _edited_last_no_newline(b: Built) -> bytes:
    """The last entry edited in place, the closing line and the newline removed."""
    return _edited_last(b).removesuffix(b"\n" + FOOTER)


def _edited_middle(b: Built) -> bytes:
    lines = entry_lines(b.data)
    lines[2] = tampered(lines[2], edit_mean)
    return ledger_bytes(lines)


def _byte_flip_last(b: Built) -> bytes:
    data = bytearray(b.data)
    at = data.rindex(b'"timestamp":"') + len(b'"timestamp":"') + 3
    data[at] = ord("7") if data[at] != ord("7") else ord("8")
    return bytes(data)


def _junk_after_closing(b: Built) -> bytes:
    return b.data + b"," + entry_lines(b.data)[0] + b"\n"


DAMAGES: dict[str, tuple[Damage, int, str]] = {
    "crlf": (_crlf, 0, "CR LF"),
    "crlf-last-line": (_crlf_last_line_only, N_ENTRIES - 1, "CR LF"),
    "bom": (_bom, 0, "byte-order mark"),
    "last-entry-edited": (_edited_last, N_ENTRIES - 1, "hash does not match"),
    "last-entry-edited-no-newline": (_edited_last_no_newline, N_ENTRIES - 1, "hash does not match"),
    "middle-entry-edited": (_edited_middle, 2, "hash does not match"),
    "last-entry-byte-flip": (_byte_flip_last, N_ENTRIES - 1, ""),
    "entry-after-closing-line": (_junk_after_closing, N_ENTRIES, "after the closing line"),
}


@pytest.mark.parametrize("user", ["owner", "no-checkpoint"])
@pytest.mark.parametrize("name", list(DAMAGES))
def test_a_complete_damaged_line_is_damage_for_every_user(built: Built, tmp_path: Path, name: str,
                                                           user: str) -> None:
    damage, index, fragment = DAMAGES[name]
    damaged = damage(built)
    built.path.write_bytes(damaged)
    config = built.config if user == "owner" else tmp_path / "fresh-config"
    ctx = Context.open(built.root, config)
    problem = ctx.ledger.problem
    assert problem is not None, "the damage was taken for a torn append"
    assert problem.index == index, problem
    assert fragment in problem.reason, problem
    assert not ctx.ledger.torn_tail
    assert ctx.ledger.read_only
    assert [e.hash for e in ctx.ledger.entries()] == built.hashes[:index]
    with pytest.raises(LedgerError, match="read-only until repaired"):
        ctx.ledger.append(fields_for(make_policy(100)), ctx.publisher)
    assert built.path.read_bytes() == damaged, "a refused append changed the file"


def test_a_torn_tail_is_saved_before_an_append_overwrites_it(built: Built, tmp_path: Path) -> None:
    lines = entry_lines(built.data)
    torn = b"," + lines[0][:200]  # an append cut short: no complete entry object
    built.path.write_bytes(ledger_bytes(lines).removesuffix(FOOTER) + torn)
    ctx = Context.open(built.root, tmp_path / "fresh-config")
    assert ctx.ledger.problem is None and ctx.ledger.torn_tail
    entry = save(ctx, 100)
    assert entry.index == N_ENTRIES
    kept = sorted(built.root.glob(f"{LEDGER_FILE}.torn-*"))
    assert [p.read_bytes() for p in kept] == [torn]


def test_zero_filled_blocks_after_a_crash_are_a_torn_tail(built: Built, tmp_path: Path) -> None:
    lines = entry_lines(built.data)
    built.path.write_bytes(ledger_bytes(lines).removesuffix(FOOTER) + b",{\"body\":{\"con" + b"\0" * 4096)
    ctx = Context.open(built.root, tmp_path / "fresh-config")
    assert ctx.ledger.problem is None and ctx.ledger.torn_tail and len(ctx.ledger) == N_ENTRIES


def test_a_whole_entry_missing_only_its_newline_is_kept_and_continued(built: Built, tmp_path: Path) -> None:
    built.path.write_bytes(built.data.removesuffix(b"\n" + FOOTER))
    ctx = Context.open(built.root, tmp_path / "fresh-config")
    assert ctx.ledger.problem is None and len(ctx.ledger) == N_ENTRIES
    entry = save(ctx, 100)
    assert entry.index == N_ENTRIES and entry.prev == built.hashes[-1]
    assert built.path.read_bytes() == ledger_bytes([*entry_lines(built.data), entry.line()])


def test_an_empty_entry_list_with_crlf_header_is_damage(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / LEDGER_FILE).write_bytes(HEADER.replace(b"\n", b"\r\n") + FOOTER.replace(b"\n", b"\r\n"))
    ctx = Context.open(root, tmp_path / "config")
    assert ctx.ledger.problem is not None and ctx.ledger.problem.index == 0

