"""Publisher keys: each user signs ledger entries with an Ed25519 key of their own.

The private key lives in the config folder (file mode 0600), created on first
use; the public key travels inside every entry, and its key id is a short
fingerprint of it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policyledger_core.atomic import fsync_dir
from policyledger_core.canonical import sha256_hex
from policyledger_core.errors import BadInput
from policyledger_core.ledger import note

KEY_FILE = "publisher-ed25519.pem"
SIGNATURE_DOMAIN = b"policyledger/entry-signature-v1\n"


class PublisherKeyError(BadInput):
    """The publisher key file exists but cannot be used."""


def key_id(public_hex: str) -> str:
    """Short fingerprint of a public key: the first 16 hex digits of its SHA-256."""
    return sha256_hex(bytes.fromhex(public_hex))[:16]


def note_verifier(public_hex: str) -> note.Verifier:
    """The note verifier of a publisher key: the name its checkpoints are signed under
    (``policyledger/<key id>``) and the key."""
    return note.Verifier(f"policyledger/{key_id(public_hex)}", bytes.fromhex(public_hex))


def _message(entry_hash: str) -> bytes:
    return SIGNATURE_DOMAIN + bytes.fromhex(entry_hash)


class Publisher:
    """The local user's signing identity."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
        self.public_hex = raw.hex()
        self.key_id = key_id(self.public_hex)

    def sign(self, entry_hash: str) -> str:
        """Hex signature over an entry hash (with a domain-separation prefix)."""
        return self._key.sign(_message(entry_hash)).hex()

    @property
    def note_name(self) -> str:
        """The name this key signs notes (checkpoints) under."""
        return note_verifier(self.public_hex).name

    def sign_note(self, text: str) -> str:
        """``text`` as a C2SP signed note, signed by this key under :attr:`note_name`."""
        return note.sign(text, self.note_name, self._key)

    def verifier(self) -> note.Verifier:
        """The note verifier key of this publisher."""
        return note_verifier(self.public_hex)

    @classmethod
    def generate(cls) -> Publisher:
        """A fresh key pair held in memory only (tests, tools)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_existing(cls, folder: Path) -> Publisher | None:
        """The key in ``folder`` if there is one (never creates it)."""
        return cls.load_or_create(folder) if (folder / KEY_FILE).exists() else None

    @classmethod
    def load_or_create(cls, folder: Path) -> Publisher:
        """The key in ``folder``; created (mode 0600) when there is none. Never overwritten."""
        return cls(load_or_create_key(folder / KEY_FILE, "publisher key"))


def load_or_create_key(path: Path, what: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path``; created (mode 0600) when there is none. Never overwritten."""
    if not path.exists():
        _create_key_file(path)
    try:
        data = path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PublisherKeyError(f"{what} {path}: unreadable ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PublisherKeyError(f"{what} {path}: not an Ed25519 private key")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key; if another process created one meanwhile, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(prefix=".key.", dir=path.parent)  # mkstemp files are 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic create-if-absent
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)


def verify_signature(public_hex: str, entry_hash: str, signature_hex: str) -> bool:
    """True when ``signature_hex`` is the publisher's signature over ``entry_hash``."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(bytes.fromhex(signature_hex), _message(entry_hash))
    except (ValueError, InvalidSignature):
        return False
    return True
