"""Strict JSON input: one readable line for every kind of bad input."""

from __future__ import annotations

import pytest

from policyledger_core.canonical import JsonInputError, load_json_strict


@pytest.mark.parametrize(("data", "message"), [
    (b'"abc', "not valid JSON: Unterminated string starting at line 1 column 1"),
    (b'{"a": 1,', "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 9"),
    (b"[1, 2", "not valid JSON: Expecting ',' delimiter at line 1 column 6"),
])
def test_a_parse_error_says_where_once(data: bytes, message: str) -> None:
    with pytest.raises(JsonInputError) as caught:
        load_json_strict(data)
    assert str(caught.value) == message
    assert " at at " not in str(caught.value)
