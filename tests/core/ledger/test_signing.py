"""Tests of publisher keys: an Ed25519 key per user, kept in the config folder (mode 0600).

The key is created on first use and never overwritten: a file that cannot be
used is an error, not a reason to make a new identity.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from policyledger_core.canonical import sha256_hex
from policyledger_core.ledger.signing import (
    KEY_FILE,
    SIGNATURE_DOMAIN,
    Publisher,
    PublisherKeyError,
    key_id,
    verify_signature,
)
from policyledger_core.workspace.context import Context

HASH = sha256_hex(b"an entry body")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "config" / "nested"  # does not exist yet


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask: the key file must be private anyway."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_created_on_first_use_with_mode_0600(folder: Path, open_umask: None) -> None:
    assert not folder.exists()
    publisher = Publisher.load_or_create(folder)
    path = folder / KEY_FILE
    assert path.is_file()
    assert _mode(path) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [KEY_FILE]  # no temp file left behind
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert publisher.public_hex == raw.hex()


def test_key_reused_afterwards(folder: Path) -> None:
    first = Publisher.load_or_create(folder)
    data = (folder / KEY_FILE).read_bytes()
    second = Publisher.load_or_create(folder)
    assert second.key_id == first.key_id
    assert second.public_hex == first.public_hex
    assert (folder / KEY_FILE).read_bytes() == data
    # Both objects are the same identity: one's signature verifies as the other's.
    assert verify_signature(second.public_hex, HASH, first.sign(HASH))


def test_distinct_folders_distinct_keys(tmp_path: Path) -> None:
    a = Publisher.load_or_create(tmp_path / "a")
    b = Publisher.load_or_create(tmp_path / "b")
    assert a.key_id != b.key_id


def test_context_publisher_key_lives_in_the_config_dir(tmp_path: Path) -> None:
    root, config = tmp_path / "workspace", tmp_path / "config"
    ctx = Context.open(root, config)
    publisher = ctx.publisher
    assert (config / KEY_FILE).is_file()
    assert _mode(config / KEY_FILE) == 0o600
    assert not root.exists() or not any(p.suffix == ".pem" for p in root.rglob("*"))
    assert Context.open(root, config).publisher.key_id == publisher.key_id


def test_concurrent_first_use_makes_one_key(folder: Path) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        try:
            barrier.wait()
            ids.append(Publisher.load_or_create(folder).key_id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == 8 and len(set(ids)) == 1
    assert sorted(p.name for p in folder.iterdir()) == [KEY_FILE]


def _pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


CORRUPT = {
    "garbage": b"this is not a key\n",
    "empty": b"",
    "binary": bytes(range(256)),
    "truncated-pem": _pem(Ed25519PrivateKey.generate())[:60],
    "public-key-pem": Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    "ec-key": _pem(ec.generate_private_key(ec.SECP256R1())),
    "ed448-key": _pem(ed448.Ed448PrivateKey.generate()),
    "encrypted": Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")),
}


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_corrupt_key_file_is_an_error_and_not_overwritten(folder: Path, content: bytes) -> None:
    folder.mkdir(parents=True)
    path = folder / KEY_FILE
    path.write_bytes(content)
    os.chmod(path, 0o600)
    before = path.stat()
    with pytest.raises(PublisherKeyError, match="publisher key") as err:
        Publisher.load_or_create(folder)
    assert str(path) in str(err.value)
    assert path.read_bytes() == content
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in folder.iterdir()) == [KEY_FILE]
    with pytest.raises(PublisherKeyError):  # and again: still refused, still not replaced
        Publisher.load_or_create(folder)
    assert path.read_bytes() == content


def test_non_ed25519_key_says_so(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / KEY_FILE).write_bytes(CORRUPT["ec-key"])
    with pytest.raises(PublisherKeyError, match="not an Ed25519 private key"):
        Publisher.load_or_create(folder)


def test_key_path_is_a_folder(folder: Path) -> None:
    (folder / KEY_FILE).mkdir(parents=True)
    with pytest.raises(PublisherKeyError, match="unreadable"):
        Publisher.load_or_create(folder)
    assert (folder / KEY_FILE).is_dir()


def test_signature_verifies() -> None:
    publisher = Publisher.generate()
    signature = publisher.sign(HASH)
    assert len(signature) == 128
    assert signature == signature.lower()
    assert verify_signature(publisher.public_hex, HASH, signature)


def _flip(hex_text: str, bit: int) -> str:
    raw = bytearray.fromhex(hex_text)
    raw[bit // 8] ^= 1 << (bit % 8)
    return raw.hex()


@pytest.mark.parametrize("bit", [0, 7, 100, 255])
def test_flipped_bit_in_the_hash_fails(bit: int) -> None:
    publisher = Publisher.generate()
    signature = publisher.sign(HASH)
    assert not verify_signature(publisher.public_hex, _flip(HASH, bit), signature)


@pytest.mark.parametrize("bit", [0, 9, 255, 256, 511])
def test_flipped_bit_in_the_signature_fails(bit: int) -> None:
    publisher = Publisher.generate()
    signature = publisher.sign(HASH)
    assert not verify_signature(publisher.public_hex, HASH, _flip(signature, bit))


def test_another_key_fails() -> None:
    signer, other = Publisher.generate(), Publisher.generate()
    signature = signer.sign(HASH)
    assert not verify_signature(other.public_hex, HASH, signature)
    assert not verify_signature(other.public_hex, HASH, signer.sign(HASH))
    assert verify_signature(other.public_hex, HASH, other.sign(HASH))


@pytest.mark.parametrize(("public", "digest", "signature"), [
    ("zz" * 32, HASH, "00" * 64),
    ("00" * 31, HASH, "00" * 64),
    (None, "not hex", "00" * 64),
    (None, HASH, "not hex"),
    (None, HASH, "00" * 63),
    (None, HASH, ""),
])
def test_malformed_input_fails_without_raising(public: str | None, digest: str, signature: str) -> None:
    publisher = Publisher.generate()
    assert not verify_signature(public or publisher.public_hex, digest, signature)


def test_signature_is_domain_separated() -> None:
    """The signed message is the domain prefix plus the raw hash, nothing else."""
    private = Ed25519PrivateKey.generate()
    publisher = Publisher(private)
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(publisher.public_hex))
    signature = bytes.fromhex(publisher.sign(HASH))
    public.verify(signature, SIGNATURE_DOMAIN + bytes.fromhex(HASH))
    with pytest.raises(InvalidSignature):
        public.verify(signature, bytes.fromhex(HASH))
    # A raw signature over the hash (made for some other purpose) is not an entry signature.
    assert not verify_signature(publisher.public_hex, HASH, private.sign(bytes.fromhex(HASH)).hex())


def test_key_id_is_16_hex_of_sha256_of_the_raw_public_key() -> None:
    publisher = Publisher.generate()
    raw = bytes.fromhex(publisher.public_hex)
    assert len(raw) == 32
    assert publisher.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert key_id(publisher.public_hex) == publisher.key_id
    assert len(publisher.key_id) == 16
    assert all(c in "0123456789abcdef" for c in publisher.key_id)


def test_generate_touches_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Publisher.generate()
    assert list(tmp_path.iterdir()) == []
