"""Witnessing: C2SP tlog-witness requests and Ed25519 tlog-cosignatures.

A cosignature is a note signature line ``— <name> base64(key ID || u64 timestamp || signature)``
where the key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4] and the signature is over
``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint's text. It says: at time t, this is the
largest checkpoint of that log the cosigner saw, consistent with every one it saw before.

This user's witness key is its own Ed25519 key (``witness-ed25519.pem`` in the config folder),
apart from the publisher key: one key per cosigner, as the format asks, since the cosigned message
does not name the cosigner.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policyledger_core.atomic import write_atomic
from policyledger_core.canonical import sha256_hex
from policyledger_core.ledger.chain import ORIGIN_PREFIX
from policyledger_core.ledger.merkle import HASH_SIZE
from policyledger_core.ledger.note import (
    DASH,
    Checkpoint,
    NoteError,
    Signature,
    Verifier,
    decimal,
    open_note,
    raw_public,
    split,
    utf8,
)
from policyledger_core.ledger.peers import Observation, Peers
from policyledger_core.ledger.signing import key_id, load_or_create_key

COSIGNATURE = b"\x04"

WITNESS_KEY_FILE = "witness-ed25519.pem"
MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 1 << 16
MAX_TIMESTAMP = (1 << 63) - 1


def cosigner_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE + public).digest()[:4]


def message(checkpoint_text: str, timestamp: int) -> bytes:
    """What an Ed25519 cosignature signs."""
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True)
class CosignerKey:
    """A cosigner's public key: the verifier key string ``<name>+<key ID>+<base64(0x04 || key)>``."""

    name: str
    public: bytes

    def __post_init__(self) -> None:
        Verifier(self.name, self.public)  # the same rules for names and key sizes

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.public)

    def text(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(COSIGNATURE + self.public).decode()}"

    @classmethod
    def parse(cls, text: str) -> CosignerKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("cosigner key: expected <name>+<key ID>+<key>")
        name, hex_id, encoded = parts
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("cosigner key: not base64") from None
        if key[:1] != COSIGNATURE or len(key) != 33:
            raise NoteError("cosigner key: not an Ed25519 cosignature key (type 0x04)")
        found = cls(name, key[1:])
        if found.key_id.hex() != hex_id.lower():
            raise NoteError("cosigner key: its key ID does not match its name and key")
        return found

    def timestamp(self, checkpoint_text: str, signature: Signature) -> int | None:
        """The time of ``signature`` if it is this cosigner's valid cosignature of the text."""
        if (signature.name, signature.key_id) != (self.name, self.key_id) or len(signature.signature) != 72:
            return None
        (when,) = struct.unpack(">Q", signature.signature[:8])
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature.signature[8:],
                                                                   message(checkpoint_text, when))
        except InvalidSignature:
            return None
        return when if when <= MAX_TIMESTAMP else None


class Cosigner:
    """This user's witness: its key and name."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._key = private
        public = raw_public(private.public_key())
        self.key = CosignerKey(f"policyledger-witness/{sha256_hex(public)[:16]}", public)

    @classmethod
    def load_or_create(cls, config_dir: Path) -> Cosigner:
        return cls(load_or_create_key(config_dir / WITNESS_KEY_FILE, "witness key"))

    def cosign(self, checkpoint_text: str, timestamp: int | None = None) -> str:
        """The cosignature line of a checkpoint's text."""
        when = int(time.time()) if timestamp is None else timestamp
        signed = struct.pack(">Q", when) + self._key.sign(message(checkpoint_text, when))
        return Signature(self.key.name, self.key.key_id, signed).line()


@dataclass(frozen=True)
class Request:
    """A tlog-witness add-checkpoint request body."""

    old: int
    proof: tuple[bytes, ...]
    note: str

    @classmethod
    def parse(cls, text: str) -> Request:
        if len(utf8(text, "request")) > MAX_REQUEST_BYTES:
            raise NoteError(f"request: larger than {MAX_REQUEST_BYTES} bytes")
        head, blank, note = text.partition("\n\n")
        lines = head.split("\n")
        if not blank or not lines[0].startswith("old "):
            raise NoteError("request: expected 'old N', the proof lines, a blank line and a checkpoint")
        old = decimal(lines[0][4:], "request: old size")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise NoteError(f"request: more than {MAX_PROOF_LINES} consistency proof lines")
        proof = []
        for line in lines[1:]:
            try:
                digest = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                raise NoteError("request: a consistency proof line is not base64") from None
            if len(digest) != HASH_SIZE:
                raise NoteError("request: a consistency proof hash is not 32 bytes")
            proof.append(digest)
        if old == 0 and proof:
            raise NoteError("request: a proof from size 0 must be empty")
        return cls(old, tuple(proof), note)


def witness(request: Request, verifiers: Sequence[Verifier], peers: Peers,
            cosigner: Cosigner) -> tuple[str, Observation]:
    """Check a request as a tlog witness does (the log's signature, the old size against the
    latest checkpoint this user cosigned of that log, the consistency proof from it; then against
    the latest seen), record the new checkpoint and return its cosignature line. Raises a one-line
    error otherwise."""
    text, signed = open_note(request.note, verifiers)
    head = Checkpoint.parse(text)
    if request.old > head.size:
        raise NoteError(f"request: old size {request.old} is larger than the checkpoint's {head.size}")
    signer = signed[0]
    if head.origin.startswith(ORIGIN_PREFIX):  # a PolicyLedger log is one key's: its origin names it
        named = head.origin.rpartition("/")[2]
        matching = [v for v in signed if key_id(v.public.hex()) == named]
        if not matching:
            raise NoteError(f"request: the origin {head.origin[:80]} names key {named[:16]}, the checkpoint "
                            f"is signed by {', '.join(v.name for v in signed)}")
        signer = matching[0]
    observed = peers.observe(request.note, signer, request.proof, request.old)
    return cosigner.cosign(text), observed


def cosignatures(note: str, keys: Sequence[CosignerKey]) -> list[tuple[CosignerKey, int]]:
    """The cosigners among ``keys`` whose valid cosignatures are on the note, with their times."""
    text, signatures = split(note)
    found = []
    for key in keys:
        times = [t for s in signatures if (t := key.timestamp(text, s)) is not None]
        if times:
            found.append((key, max(times)))
    return found


class Stored:
    """Cosignatures gathered for this user's checkpoints (``<config>/tlog/cosignatures``), by the
    checkpoint text they sign: a checkpoint is signed the same way every time (Ed25519 is
    deterministic), so proofs and bundles made while the ledger has not grown carry them."""

    def __init__(self, config_dir: Path) -> None:
        self.folder = config_dir / "tlog" / "cosignatures"

    def _path(self, checkpoint_text: str) -> Path:
        return self.folder / (sha256_hex(checkpoint_text.encode())[:32] + ".txt")

    def lines(self, checkpoint_text: str) -> list[str]:
        try:
            data = self._path(checkpoint_text).read_text("utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return []
        except (OSError, ValueError):
            return []  # unreadable: proofs go out without cosignatures, as before any were added
        return [line + "\n" for line in data.splitlines() if line.startswith(DASH + " ")]

    def add(self, note: str, lines: Sequence[str]) -> str:
        """Attach ``lines`` to the signed checkpoint ``note`` and keep them for its text."""
        cosigned = attach(note, [*self.lines(split(note)[0]), *lines])
        text, signatures = split(cosigned)
        kept = [s.line() for s in signatures if len(s.signature) == 72]  # 8-byte time + signature
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(text), "".join(kept).encode(), 0o600)
        return cosigned


def attach(note: str, lines: Sequence[str]) -> str:
    """The note with the cosignature lines added (each checked to be a signature line; a line
    already on the note is not repeated)."""
    split(note)
    have = set(note.splitlines())
    extra = []
    for line in lines:
        line = line.rstrip("\n")
        if line in have:  # already on it: the checkpoint's own signature, when given a cosigned copy
            continue
        fields = line.split(" ")
        if len(fields) != 3 or fields[0] != DASH:
            raise NoteError(f"cosignature: not a signature line: {line[:60]!r}")
        try:
            raw = base64.b64decode(fields[2], validate=True)
        except (binascii.Error, ValueError):
            raise NoteError("cosignature: not base64") from None
        if len(raw) != 4 + 8 + 64:
            raise NoteError(f"cosignature of {fields[1][:40]}: not an Ed25519 cosignature (key ID, time, "
                            "signature)")
        have.add(line)
        extra.append(line + "\n")
    result = note + "".join(extra)
    split(result)  # bounds (size, number of signatures) still hold
    return result
