"""Canonical JSON: the one byte form that hashes, digests and signatures cover."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from policyledger_core.errors import Rejected


def canonical_bytes(value: Any) -> bytes:
    """Serialise ``value`` as sorted, compact, ASCII-only JSON with no NaN or Infinity.

    Two equal values always give the same bytes, on every machine, so a hash of
    these bytes identifies the value itself.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


_HEX_DIGITS = b"0123456789abcdef"


HASH_RE = re.compile(r"[0-9a-f]{64}")


def is_hash(text: object) -> bool:
    """True for exactly 64 lowercase hexadecimal characters (a SHA-256 as written)."""
    return isinstance(text, str) and HASH_RE.fullmatch(text) is not None


def is_hex(data: bytes, length: int) -> bool:
    """True for exactly ``length`` lowercase hex digits (fast: no regex, no decoding)."""
    return len(data) == length and not data.translate(None, _HEX_DIGITS)


def sha256_hex(data: bytes) -> str:
    """Lower-case hexadecimal SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def field_problem(where: str, data: object, expected: set[str]) -> str | None:
    """Why a parsed JSON object does not have exactly ``expected`` fields, or None."""
    if not isinstance(data, Mapping):
        return f"{where}: expected an object"
    unknown = sorted(set(data) - expected)
    if unknown:
        return f"{where}: unknown field {unknown[0]!r}"
    missing = sorted(expected - set(data))
    return f"{missing[0]}: missing" if missing else None


class JsonInputError(Rejected, ValueError):
    """Input that is not acceptable JSON for PolicyLedger; the message says why."""


def _reject_constant(name: str) -> Any:
    raise JsonInputError(f"non-finite number {name} is not allowed")


def _key_before(text: str, position: int) -> str | None:
    """The object key a value at ``position`` belongs to, for error messages."""
    keys = list(re.finditer(r'"((?:[^"\\]|\\.)*)"\s*:\s*', text[:position]))
    return keys[-1].group(1) if keys and keys[-1].end() == position else None


MAX_INT_DIGITS = 19  # |n| < 10**19: every count, index and seed fits, no number can bloat a line


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonInputError(f"integer with {len(text.lstrip('-'))} digits is too large")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"number {text[:20]} is out of range")
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonInputError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``, stopping early once past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def load_json_strict(data: bytes, max_bytes: int = 1 << 20, max_depth: int | None = 16) -> Any:
    """Parse untrusted JSON: bounded size and depth, UTF-8, no NaN/Infinity, no duplicate keys.

    ``max_depth=None`` skips the depth walk, for callers that check every field's shape anyway.
    """
    if len(data) > max_bytes:
        raise JsonInputError(f"too large: {len(data)} bytes (limit {max_bytes})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonInputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant,
                           parse_int=_parse_int, parse_float=_parse_float)
    except JsonInputError as exc:
        found = re.search(r"(?<![\w\"])(-?Infinity|NaN)(?![\w\"])", text)
        key = _key_before(text, found.start()) if found else None
        raise JsonInputError(f"{key}: {exc}" if key else str(exc)) from None
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" themselves ("Unterminated string starting at").
        where = f"line {exc.lineno} column {exc.colno}"
        raise JsonInputError(f"not valid JSON: {exc.msg.removesuffix(' at')} at {where}") from None
    except ValueError as exc:  # e.g. Python's limit on integer digits
        raise JsonInputError(f"not acceptable JSON: {exc}") from None
    except RecursionError:
        raise JsonInputError(f"nested deeper than {max_depth} levels") from None
    if max_depth is not None and _depth(value, max_depth) > max_depth:
        raise JsonInputError(f"nested deeper than {max_depth} levels")
    return value

