"""The scan's fast path judges exactly as the line-by-line checks do.

``ledgerfile.scan`` takes runs of intact lines with inlined checks and hands the
first line it does not accept to ``check_line``. These tests run the same bytes
through the scan with the fast path switched off and require the same result,
for the real ledger and for every single-byte edit, deletion and insertion at a
sample of positions across it.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from policyledger_core.ledger import layout as ledgerfile
from policyledger_core.ledger.entry import ENTRY_DOMAIN, GENESIS
from policyledger_core.ledger.layout import Scan, scan
from tests.helpers.ledger_builder import Built


def _summary(result: Scan) -> tuple[object, ...]:
    return ([(e.line, e.hash, e.end) for e in result.entries], result.problem, result.torn_tail,
            result.clean_end)


def _slow(data: bytes, monkeypatch: pytest.MonkeyPatch, base: int = 0, first_index: int = 0,
          prev: str = GENESIS) -> Scan:
    with monkeypatch.context() as patch:
        patch.setattr(ledgerfile, "_scan_intact", lambda data, pos, base, index, prev, entries: (pos, prev))
        return scan(data, base, first_index, prev)


def _variants(data: bytes, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = [data, data[:-1], data[:-3], data.replace(b"\n", b"\r\n"), data + b"x"]
    for _ in range(count):
        at = rng.randrange(len(data))
        byte = bytes([rng.choice(b'0123456789abcdef",:{}\n\r\x00 ')])
        out += [data[:at] + byte + data[at + 1:], data[:at] + data[at + 1:], data[:at] + byte + data[at:]]
    return out


def _rehashed(data: bytes, seed: int) -> list[bytes]:
    """Lines whose body was edited (index, prev, or any byte) and whose hash was recomputed,
    so only the link checks can catch them; also swapped and dropped lines."""
    rng = random.Random(seed)
    lines = data.split(b"\n")
    out = []
    for number in range(1, len(lines) - 2):
        for key in (b'"index":', b'"prev":"', b""):
            line = lines[number]
            at = line.find(key) + len(key) if key else rng.randrange(10, len(line) - 220)
            line = line[:at] + bytes([rng.choice(b"0123456789abcdef")]) + line[at + 1:]
            head = line.index(b'{"body":') + 8
            body = line[head:-218]
            digest = hashlib.sha256(ENTRY_DOMAIN + body).hexdigest().encode()
            line = line[:-209] + digest + line[-145:]
            out.append(b"\n".join([*lines[:number], line, *lines[number + 1:]]))
        out.append(b"\n".join(lines[:number] + lines[number + 1:]))
        if number + 1 < len(lines) - 2:
            out.append(b"\n".join([*lines[:number], lines[number + 1], lines[number], *lines[number + 2:]]))
    return out


def test_the_fast_path_accepts_the_real_ledger(template: Built) -> None:
    result = scan(template.data)
    assert result.problem is None and result.clean_end
    assert [e.hash for e in result.entries] == [e.hash for e in template.entries]


def test_every_edit_is_judged_as_the_line_checks_judge_it(template: Built,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    variants = _variants(template.data, 400, seed=7) + _rehashed(template.data, seed=3)
    differing = [v for v in variants if _summary(scan(v)) != _summary(_slow(v, monkeypatch))]
    assert differing == []
    # The sample really exercises damage, not only intact copies.
    assert sum(scan(v).problem is not None for v in variants) > 300


def test_continuing_from_an_offset_agrees_with_the_line_checks(template: Built,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan(template.data).entries[1]
    rest = template.data[first.end:]
    for variant in _variants(rest, 100, seed=11):
        assert _summary(scan(variant, first.end, 2, first.hash)) == \
            _summary(_slow(variant, monkeypatch, first.end, 2, first.hash))


def test_a_rehashed_line_is_caught_by_the_link_checks(template: Built) -> None:
    problems = [scan(v).problem for v in _rehashed(template.data, seed=3)]
    reasons = {p.reason.split(" ")[0] for p in problems if p is not None}
    assert {"index", "does"} <= reasons  # "index is not N" and "does not chain"
