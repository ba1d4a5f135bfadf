"""The byte layout of ``ledger.json`` and its fast scan.

Layout (valid JSON after every completed append)::

    {"format":"policyledger/ledger","version":1,"entries":[
    <entry 0 line>
    ,<entry 1 line>
    ]}

An append overwrites only the closing ``]}`` line with ``,<line>\\n]}\\n``,
so acknowledged bytes are never touched and the cost does not grow with the
ledger. A crash mid-append can only leave bytes after the last complete line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from policyledger_core.canonical import _HEX_DIGITS
from policyledger_core.ledger.entry import (
    _LINE_TAIL,
    ENTRY_DOMAIN,
    GENESIS,
    LINE_HEAD,
    MAX_LINE_BYTES,
    EntryError,
    split_line,
)

HEADER = b'{"format":"policyledger/ledger","version":1,"entries":[\n'
FOOTER = b"]}\n"
EMPTY = HEADER + FOOTER


@dataclass(frozen=True)
class Problem:
    """The first bad entry of a ledger and why; entries before it stay usable."""

    index: int
    reason: str

    def __str__(self) -> str:
        return f"entry {self.index}: {self.reason}"


class ScannedEntry:
    """What the fast scan knows of one complete entry line (treat as immutable)."""

    # A plain slotted class: one is built per entry on every open, and a frozen
    # dataclass costs four times as much to construct.
    __slots__ = ("_policy_hash", "end", "hash", "line")

    def __init__(self, line: bytes, hash: str, end: int) -> None:
        self.line = line
        self.hash = hash
        self.end = end
        """Offset just past this line's newline."""
        self._policy_hash: str | None = None

    @property
    def record(self) -> bytes:
        """The entry's object as it stands on its line: no separating comma, no newline (a leaf
        of the ledger's Merkle tree)."""
        return self.line[1:] if self.line[:1] == b"," else self.line

    @property
    def policy_hash(self) -> str:
        """The policy this entry records (read from the line, not parsed)."""
        if self._policy_hash is None:
            found = _field(self.line, b"policy_hash", quoted=True)
            self._policy_hash = (found or b"").decode("ascii", "replace")
        return self._policy_hash


@dataclass(frozen=True, eq=False)
class Scan:
    """Result of scanning a ledger file's bytes."""

    entries: list[ScannedEntry]
    problem: Problem | None
    torn_tail: bool
    """Bytes after the last complete entry that are neither an entry nor the closing line."""
    clean_end: bool
    """The file ends with the closing line right after the last entry (valid JSON)."""


def _field(body: bytes, key: bytes, quoted: bool) -> bytes | None:
    """A top-level scalar of canonical body bytes, found without parsing JSON."""
    marker = b'"' + key + b'":' + (b'"' if quoted else b"")
    start = body.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = body.find(b'"' if quoted else b",", start)
    return body[start:end] if end >= 0 else None


BOM = b"\xef\xbb\xbf"
CRLF_REASON = "lines end in CR LF: the file's line endings were converted (a ledger's lines end in LF)"


def check_line(line: bytes, index: int, prev: str) -> str:
    """Hash and link check of one line; returns its hash or raises EntryError."""
    if line.endswith(b"\r"):
        raise EntryError(CRLF_REASON)
    if index > 0 and not line.startswith(b","):
        raise EntryError("malformed: entries must be separated by commas")
    body, digest, _ = split_line(line[1:] if index > 0 else line)
    hasher = hashlib.sha256(ENTRY_DOMAIN)
    hasher.update(body)
    if hasher.hexdigest() != digest:
        raise EntryError("hash does not match its content (entry edited)")
    if _field(body, b"index", quoted=False) != str(index).encode():
        raise EntryError(f"index is not {index} (entries deleted, inserted or reordered)")
    if _field(body, b"prev", quoted=True) != prev.encode():
        raise EntryError("does not chain to the entry before it")
    return digest


def scan(data: bytes, base: int = 0, first_index: int = 0, prev: str = GENESIS) -> Scan:
    """Check header, hashes and links; entries before the first problem are kept.

    Only a final line that holds no complete entry (an append cut short by a
    crash) is a torn tail; any complete line that fails a check is damage,
    whoever reads the file and whatever they saw of it before. To continue an
    earlier scan, pass the file's bytes from ``base`` (the end of the last
    known entry) with that entry's successor index and hash.
    """
    if base == 0:
        if data.startswith(BOM):
            return Scan([], Problem(0, "the file starts with a byte-order mark (re-saved by an editor)"),
                        False, False)
        if data.startswith(HEADER[:-1] + b"\r\n"):
            return Scan([], Problem(0, CRLF_REASON), False, False)
        if not data.startswith(HEADER):
            return Scan([], Problem(0, "not a PolicyLedger ledger (bad header)"), False, False)
        pos = len(HEADER)
    else:
        pos = 0
    entries: list[ScannedEntry] = []
    size = len(data)
    while pos < size:
        pos, prev = _scan_intact(data, pos, base, first_index + len(entries), prev, entries)
        if pos >= size:
            break
        newline = data.find(b"\n", pos)
        line = data[pos:] if newline < 0 else data[pos:newline]
        if line == FOOTER[:-1] and newline >= 0:
            if newline + 1 == size:
                return Scan(entries, None, False, True)
            return Scan(entries, Problem(first_index + len(entries), "bytes after the closing line"),
                        False, False)
        index = first_index + len(entries)
        try:
            digest = check_line(line, index, prev)
        except EntryError as exc:
            if is_torn(data[pos:]):
                return Scan(entries, None, True, False)
            return Scan(entries, Problem(index, str(exc).removeprefix("entry: ")), False, False)
        # A whole entry whose newline never reached the disk is still a whole entry: kept.
        end = size + 1 if newline < 0 else newline + 1
        entries.append(ScannedEntry(line, digest, base + end))
        prev = digest
        pos = end
    return Scan(entries, None, True, False)  # the closing line is missing


_HASH_KEY, _SIGNATURE_KEY = b',"hash":"', b'","signature":"'
_INDEX_KEY, _PREV_KEY = b'"index":', b'"prev":"'
_FIRST_HEAD, _NEXT_HEAD = LINE_HEAD, b"," + LINE_HEAD


def _scan_intact(data: bytes, pos: int, base: int, index: int, prev: str,
                 entries: list[ScannedEntry]) -> tuple[int, str]:
    """Take the run of newline-terminated lines from ``pos`` that pass every check of
    ``check_line``; return where it stopped and the last hash.

    The same checks as ``check_line`` inlined, without building error messages: the
    ledger is opened by every command and the app, and at 100,000 entries each call
    and slice per line counts. The first line this does not accept (the closing
    line, damage, a torn tail) is judged by ``check_line``, which says why.
    """
    hasher = hashlib.sha256(ENTRY_DOMAIN)
    find, append, hex_digits = data.find, entries.append, _HEX_DIGITS
    prev_bytes = prev.encode()
    tail = _LINE_TAIL
    while True:
        newline = find(b"\n", pos)
        if newline < 0 or newline - pos > MAX_LINE_BYTES:
            return pos, prev
        line = data[pos:newline]
        head = len(_NEXT_HEAD) if index else len(_FIRST_HEAD)
        end = len(line) - tail
        if (end <= head or not line.startswith(_NEXT_HEAD if index else _FIRST_HEAD)
                or not line.startswith(_HASH_KEY, end) or not line.startswith(_SIGNATURE_KEY, end + 73)
                or not line.endswith(b'"}') or line[end + 88:-2].translate(None, hex_digits)):
            return pos, prev
        digest_bytes = line[end + 9:end + 73]
        body = memoryview(line)[head:end]
        copy = hasher.copy()
        copy.update(body)
        digest = copy.hexdigest()
        if digest.encode() != digest_bytes:
            return pos, prev
        found = line.find(_INDEX_KEY, head, end)
        if found < 0 or not line.startswith(b"%d," % index, found + 8):
            return pos, prev
        found = line.find(_PREV_KEY, head, end)
        if found < 0 or not line.startswith(prev_bytes + b'"', found + 8):
            return pos, prev
        pos = newline + 1
        append(ScannedEntry(line, digest, base + pos))
        prev, prev_bytes, index = digest, digest_bytes, index + 1


def is_torn(tail: bytes) -> bool:
    """Whether ``tail`` (the bytes from a failing line to the end) is an append cut short by a crash.

    An interrupted append leaves a prefix of ``,<entry line>\n]}\n`` where the
    closing line was, perhaps followed by what remains of that closing line, and
    perhaps zero-filled blocks. Anything holding a complete JSON value, more
    than one line, or bytes not shaped like the start of an entry, is damage.
    """
    body = tail.rstrip(b"\0")
    if FOOTER.startswith(body):
        return True  # the entry line is complete; only the closing line was cut
    for rest in (FOOTER[1:], FOOTER[2:]):  # a write of one or two bytes over the closing line
        if body.endswith(rest):
            body = body[:-len(rest)]
            break
    body = body.removeprefix(b",")
    if b"\n" in body or not (LINE_HEAD.startswith(body) or body.startswith(LINE_HEAD)):
        return False
    try:
        json.loads(body)
    except ValueError:
        return True  # cut short: no complete entry object
    return False


def append_bytes(line: bytes, first: bool) -> bytes:
    """What an append writes at the end of the last complete entry."""
    return (b"" if first else b",") + line + b"\n" + FOOTER


@dataclass(frozen=True)
class SetAside:
    """What can still be read of an entry at or after a ledger's first problem (for display)."""

    index: int
    timestamp: str | None
    policy_hash: str | None
    hash: str | None
    prev: str | None
    publisher: str | None
    mean: float | None
    ci95: float | None


def set_aside(data: bytes, first: int) -> list[SetAside]:
    """Best-effort summaries of the complete lines from entry ``first`` on; trusts nothing."""
    if not data.startswith(HEADER):
        return []
    lines = data[len(HEADER):].split(b"\n")[:-1]  # the part after the last newline is torn
    out = []
    for index, line in enumerate(lines[first:], start=first):
        if line == FOOTER[:-1]:
            break
        out.append(_summary(index, line.removeprefix(b",")))
    return out


def _summary(index: int, line: bytes) -> SetAside:
    def text(value: object) -> str | None:
        return value[:100] if isinstance(value, str) else None

    def number(value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > 1e12:
            return None
        return float(value)

    def obj(value: object) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    try:
        doc = obj(json.loads(line))
    except (ValueError, RecursionError):
        return SetAside(index, None, None, None, None, None, None, None)
    body = obj(doc.get("body"))
    v = obj(body.get("verification"))
    return SetAside(index, text(body.get("timestamp")), text(body.get("policy_hash")), text(doc.get("hash")),
                    text(body.get("prev")), text(body.get("publisher")), number(v.get("mean")),
                    number(v.get("ci95")))
