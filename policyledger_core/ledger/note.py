"""Signed notes and checkpoints in the C2SP formats (signed-note, tlog-checkpoint), Ed25519 only.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(4-byte key ID || signature)``. The key ID of an Ed25519 key is the first
four bytes of SHA-256(name || 0x0A || 0x01 || public key); a verifier key is written
``<name>+<8 hex key ID>+<base64(0x01 || public key)>``. A checkpoint is a note whose text is the
log's origin, its tree size and its base64 root hash, one per line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from policyledger_core.errors import BadInput

ED25519 = b"\x01"
DASH = "\u2014"
MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 64
MAX_UINT64 = (1 << 64) - 1


class NoteError(BadInput):
    """A note, checkpoint or verifier key that cannot be trusted (one line saying why)."""


class Unsigned(NoteError):
    """A well-formed note that no key it was checked against signed."""


class BadSignature(NoteError):
    """A well-formed note whose signature by a key it was checked against fails."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what}: not base64") from None


def utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate (which JSON and command-line arguments can carry) is refused."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what}: not UTF-8 text") from None


def decimal(text: str, what: str) -> int:
    """A C2SP number: ASCII digits without a leading zero (unless it is 0), at most 2^64 - 1."""
    if not (text.isascii() and text.isdigit()) or (text != "0" and text.startswith("0")) \
            or len(text) > len(str(MAX_UINT64)) or int(text) > MAX_UINT64:
        raise NoteError(f"{what} {text[:30]!r} is not a decimal number below 2^64")
    return int(text)


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    utf8(name, f"key name {name!r}")


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 note key."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key that notes are checked against."""

    name: str
    public: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public) != 32:
            raise NoteError(f"verifier key {self.name}: an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public)

    def text(self) -> str:
        """The standard verifier key string."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(ED25519 + self.public)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # the base64 key may itself hold a '+'
        if len(parts) != 3:
            raise NoteError("verifier key: expected <name>+<key ID>+<key>")
        name, hex_id, encoded = parts
        key = _unb64(encoded, "verifier key")
        if key[:1] != ED25519 or len(key) != 33:
            raise NoteError("verifier key: not an Ed25519 key")
        verifier = cls(name, key[1:])
        if verifier.key_id.hex() != hex_id.lower():
            raise NoteError("verifier key: its key ID does not match its name and key")
        return verifier

    def verifies(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except InvalidSignature:
            return False
        return True


def sign(text: str, name: str, private: Ed25519PrivateKey) -> str:
    """The signed note of ``text`` (which must end in a newline), signed by ``name``."""
    _check_text(text)
    _check_name(name)
    signature = private.sign(text.encode())
    return f"{text}\n{DASH} {name} {_b64(key_id(name, raw_public(private.public_key())) + signature)}\n"


def add_signatures(note: str, lines: Sequence[str]) -> str:
    """The note with more signature lines (cosignatures) at its end."""
    return note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note: the text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note: control characters are not allowed")


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{DASH} {self.name} {_b64(self.key_id + self.signature)}\n"


def split(note: str) -> tuple[str, list[Signature]]:
    """A note's text and its signature lines, unchecked."""
    if len(utf8(note, "note")) > MAX_NOTE_BYTES:
        raise NoteError(f"note: larger than {MAX_NOTE_BYTES} bytes")
    if not note.endswith("\n"):
        raise NoteError("note: it must end with a newline")
    _check_text(note)  # the whole note, signature lines too, as Go's note.Open
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("note: no blank line before the signatures")
    text, lines = note[:cut + 1], note[cut + 2:].split("\n")[:-1]  # a line ends at a newline only
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError("note: it carries no signature" if not lines else "note: too many signatures")
    signatures = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] != DASH:
            raise NoteError(f"note: not a signature line: {line[:60]!r}")
        _check_name(fields[1])
        raw = _unb64(fields[2], "note signature")
        if len(raw) < 5:
            raise NoteError("note: a signature is too short")
        signatures.append(Signature(fields[1], raw[:4], raw[4:]))
    return text, signatures


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[str, list[Verifier]]:
    """The note's text and the verifiers whose signatures are on it, all checked. Signatures by
    unknown keys are ignored; one by a known key that fails, or none by a known key, refuses it."""
    text, signatures = split(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    signed: list[Verifier] = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verifies(text.encode(), signature.signature):
            raise BadSignature(f"note: the signature of {signature.name} does not verify")
        signed.append(verifier)
    if not signed:
        raise Unsigned("note: not signed by any key it is checked against")
    return text, signed


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head at a size (the text of a tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or any(not line for line in lines[:-1]):
            raise NoteError("checkpoint: expected origin, size and root hash lines")
        origin, size, root = lines[0], decimal(lines[1], "checkpoint: tree size"), lines[2]
        digest = _unb64(root, "checkpoint root hash")
        if len(digest) != 32:
            raise NoteError("checkpoint: the root hash is not 32 bytes")
        return cls(origin, size, digest, tuple(lines[3:-1]))
