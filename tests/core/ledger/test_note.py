"""Signed notes and checkpoints in the C2SP formats: the Go implementation's published vector, round
trips, and what must be refused."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from policyledger_core.ledger.note import (
    Checkpoint,
    NoteError,
    Verifier,
    add_signatures,
    open_note,
    raw_public,
    sign,
    split,
)

# The example of golang.org/x/mod's sumdb/note: its keys, text and signed note.
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n\u2014 PeterNeumann "
           "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_the_go_implementations_note_byte_for_byte() -> None:
    verifier = Verifier.parse(GO_VERIFIER)
    assert verifier.name == "PeterNeumann" and verifier.text() == GO_VERIFIER
    key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert raw_public(key.public_key()) == verifier.public
    assert sign(GO_TEXT, "PeterNeumann", key) == GO_NOTE  # Ed25519 is deterministic
    text, signed = open_note(GO_NOTE, [verifier])
    assert text == GO_TEXT and signed == [verifier]


def test_a_changed_text_or_key_is_refused() -> None:
    verifier = Verifier.parse(GO_VERIFIER)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])
    stranger = Verifier("PeterNeumann", raw_public(Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(NoteError, match="not signed by any key"):
        open_note(GO_NOTE, [stranger])  # same name, another key: its signature is not this one's
    for broken in (GO_VERIFIER.replace("c74f20a3", "c74f20a4"), "PeterNeumann+c74f20a3", GO_VERIFIER + "x"):
        with pytest.raises(NoteError):
            Verifier.parse(broken)


def test_unknown_signatures_are_ignored_and_cosignatures_add_up() -> None:
    log_key, witness_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    log = Verifier("policyledger/log", raw_public(log_key.public_key()))
    witness = Verifier("example.org/witness", raw_public(witness_key.public_key()))
    text = Checkpoint("policyledger/abc", 3, bytes(range(32))).text()
    note = sign(text, log.name, log_key)
    cosigned = add_signatures(note, [split(sign(text, witness.name, witness_key))[1][0].line()])
    assert open_note(cosigned, [log])[1] == [log]  # the witness's signature is not known here: ignored
    assert open_note(cosigned, [log, witness])[1] == [log, witness]


def test_checkpoints_round_trip_and_refuse_what_is_not_one() -> None:
    checkpoint = Checkpoint("policyledger/0123456789abcdef", 1234, bytes(32))
    assert checkpoint.text() == "policyledger/0123456789abcdef\n1234\n" + "A" * 43 + "=\n"
    assert Checkpoint.parse(checkpoint.text()) == checkpoint
    for text in ("origin\n12\n", "origin\n012\nAAAA\n", "origin\n-1\n" + "A" * 43 + "=\n",
                 "origin\n\u00b9\n" + "A" * 43 + "=\n", "origin\n1\nAAAA\n", "origin\n1\n" + "A" * 43 + "=",
                 "\n1\n" + "A" * 43 + "=\n"):
        with pytest.raises(NoteError):
            Checkpoint.parse(text)


@pytest.mark.parametrize("size", ["9" * 5000, str(1 << 64)])
def test_a_tree_size_beyond_a_uint64_is_refused_in_one_line(size: str) -> None:
    with pytest.raises(NoteError, match=r"tree size .* is not a decimal number below 2\^64"):
        Checkpoint.parse(f"origin\n{size}\n" + "A" * 43 + "=\n")
    assert Checkpoint.parse(f"origin\n{(1 << 64) - 1}\n" + "A" * 43 + "=\n").size == (1 << 64) - 1


def test_a_note_that_is_not_utf8_is_refused_in_one_line() -> None:
    with pytest.raises(NoteError, match="not UTF-8"):
        split("text \ud800\n\n\u2014 name AAAAAAA=\n")  # a lone surrogate, as JSON can carry
    with pytest.raises(NoteError, match="not UTF-8"):
        split("text\n\n\u2014 n\udcff AAAAAAA=\n")
    with pytest.raises(NoteError, match="key name"):
        Verifier("n\udcff", bytes(32))  # a command-line argument of invalid bytes


def test_signature_lines_follow_the_format_as_strictly_as_the_text() -> None:
    """As Go's note.Open: no control character anywhere (an escape sequence in a signer's name would
    reach the terminal in a message), lines end at a newline only, and key names are valid."""
    sig = base64.b64encode(bytes(68)).decode()
    line = f"\u2014 name {sig}\n"
    assert split("text\n\n" + line)[1][0].name == "name"
    for bad in (f"\u2014 \x1b[31mname {sig}\n", f"\u2014 name {sig}\r\n", line + "\x00" + line):
        with pytest.raises(NoteError, match="control characters"):
            split("text\n\n" + bad)
    with pytest.raises(NoteError, match="not a signature line"):
        split("text\n\n" + line.replace("\n", "\u2028") + line)  # not a line break in a note
    with pytest.raises(NoteError, match="key name"):
        split("text\n\n" + line.replace("name", "a+b"))


def test_malformed_notes_name_their_problem() -> None:
    with pytest.raises(NoteError, match="blank line"):
        split("no signatures\n")
    with pytest.raises(NoteError, match="not a signature line"):
        split("text\n\n- name AAAA\n")
    with pytest.raises(NoteError, match="control characters"):
        sign("bell \x07\n", "name", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="spaces or"):
        sign("text\n", "two words", Ed25519PrivateKey.generate())


def test_a_verifier_key_whose_base64_holds_a_plus() -> None:
    key = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"  # transparency-dev/formats' tests
    verifier = Verifier.parse(key)
    assert verifier.name == "TEST" and verifier.text() == key
