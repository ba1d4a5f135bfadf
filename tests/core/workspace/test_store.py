"""Tests of the content-addressed policy store (``policies/<sha256>.json``).

A file's name is the SHA-256 of its bytes; reads check it; only names of
exactly 64 lowercase hex characters are ever turned into a path, so untrusted
text (an entry's policy_hash, a bundle) can never reach outside the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path

import pytest

from policyledger_core import atomic
from policyledger_core.canonical import canonical_bytes, is_hash
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim.config import preset
from policyledger_core.workspace.store import PolicyStore, StoreError
from tests.helpers.hostile import bounded, make_hostile


def make_policy(seed: int, preset_name: str = "short-burst") -> Policy:
    rng = random.Random(seed)
    return Policy(config=preset(preset_name), actions=tuple(rng.randrange(5) for _ in range(108)))


@pytest.fixture
def store(tmp_path: Path) -> PolicyStore:
    return PolicyStore(tmp_path / "workspace" / "policies")


def folder_names(store: PolicyStore) -> list[str]:
    return sorted(p.name for p in store.folder.iterdir())


def test_name_is_the_sha256_of_the_content(store: PolicyStore) -> None:
    policy = make_policy(1)
    digest = store.put(policy)
    path = store.folder / f"{digest}.json"
    assert digest == policy.hash
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_bytes() == policy.canonical_bytes()
    assert store.path_of(digest) == path
    assert store.contains(digest)
    assert store.read_bytes(digest) == policy.canonical_bytes()
    assert store.get(digest) == policy


def test_put_creates_the_folder(store: PolicyStore) -> None:
    assert not store.folder.exists()
    assert store.hashes() == []
    store.put(make_policy(1))
    assert store.folder.is_dir()


def test_put_is_idempotent(store: PolicyStore) -> None:
    policy = make_policy(2)
    first = store.put(policy)
    path = store.path_of(first)
    before = path.stat()
    second = store.put(policy)
    again = store.put(Policy.from_json(policy.canonical_bytes()))  # an equal policy, another object
    assert first == second == again
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert folder_names(store) == [f"{first}.json"]


def test_put_leaves_no_temp_files(store: PolicyStore) -> None:
    hashes = {store.put(make_policy(seed)) for seed in range(5)}
    store.put(make_policy(0))
    assert folder_names(store) == sorted(f"{h}.json" for h in hashes)
    assert store.hashes() == sorted(hashes)


def test_put_failing_midway_leaves_nothing(store: PolicyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy(3)

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        store.put(policy)
    assert folder_names(store) == []  # neither a temp file nor a half-written policy
    assert not store.contains(policy.hash)


def test_put_failing_keeps_the_old_file(store: PolicyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged file is replaced whole or not at all."""
    policy = make_policy(4)
    path = store.path_of(store.put(policy))
    path.write_bytes(b"damaged")

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", fail)
    with pytest.raises(OSError, match="Input/output"):
        store.put(policy)
    assert path.read_bytes() == b"damaged"
    assert folder_names(store) == [path.name]


def test_put_heals_an_edited_file(store: PolicyStore) -> None:
    policy = make_policy(5)
    path = store.path_of(store.put(policy))
    path.write_bytes(policy.canonical_bytes() + b" ")
    assert not store.contains(policy.hash)
    assert store.put(policy) == policy.hash
    assert path.read_bytes() == policy.canonical_bytes()
    assert store.contains(policy.hash)
    [kept] = [n for n in folder_names(store) if n != path.name]  # the damaged file is kept beside it
    assert re.fullmatch(rf"{path.name}\.damaged-\d{{8}}T\d{{6}}Z", kept)
    assert (store.folder / kept).read_bytes() == policy.canonical_bytes() + b" "
    assert store.hashes() == [policy.hash]


@pytest.mark.parametrize("edit", ["trailing-space", "action-changed", "truncated", "empty", "swapped"])
def test_reads_check_the_hash(store: PolicyStore, edit: str) -> None:
    policy = make_policy(6)
    other = make_policy(7)
    path = store.path_of(store.put(policy))
    store.put(other)
    data = policy.canonical_bytes()
    if edit == "trailing-space":
        path.write_bytes(data + b" ")
    elif edit == "action-changed":
        doc = json.loads(data)
        i = next(i for i in range(108) if i not in TERMINAL_OBSERVATIONS)
        doc["actions"][i] = (doc["actions"][i] + 1) % 5
        path.write_bytes(canonical_bytes(doc))  # a valid policy, just not this one
    elif edit == "truncated":
        path.write_bytes(data[:-10])
    elif edit == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(other.canonical_bytes())
    assert not store.contains(policy.hash)
    with pytest.raises(StoreError, match="content does not match its hash") as err:
        store.read_bytes(policy.hash)
    assert policy.hash[:12] in str(err.value)
    with pytest.raises(StoreError, match="content does not match its hash"):
        store.get(policy.hash)
    assert store.get(other.hash) == other


def test_missing_file(store: PolicyStore) -> None:
    digest = make_policy(8).hash
    assert not store.contains(digest)
    with pytest.raises(StoreError, match="file missing"):
        store.read_bytes(digest)
    with pytest.raises(StoreError, match="file missing"):
        store.get(digest)


def test_unreadable_file_is_a_store_error(store: PolicyStore) -> None:
    policy = make_policy(9)
    path = store.path_of(policy.hash)
    path.mkdir(parents=True)  # a folder where the file should be
    assert not store.contains(policy.hash)
    with pytest.raises(StoreError, match="cannot read"):
        store.read_bytes(policy.hash)


BAD_NAMES = [
    "../x",
    "../" + "a" * 61,
    "a" * 63,
    "a" * 65,
    "A" * 64,
    "ABCDEF" + "0" * 58,
    "g" * 64,
    "a" * 31 + "/" + "a" * 32,
    "/" + "a" * 63,
    "a" * 64 + "/",
    "a" * 64 + "\n",
    "\n" + "a" * 63,
    " " + "a" * 63,
    "a" * 64 + ".json",
    "\u0663" * 64,  # ARABIC-INDIC DIGIT THREE: a digit, but not an ASCII one
    "\uff41" * 64,  # FULLWIDTH LATIN SMALL LETTER A
    "a" * 63 + "\x00",
    "",
    ".",
    "..",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n)[:20] for n in BAD_NAMES])
def test_only_64_lowercase_hex_names(store: PolicyStore, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_hash(name)

    def touched(*args: object, **kwargs: object) -> None:
        raise AssertionError("the filesystem was touched for a bad name")

    with monkeypatch.context() as m:
        for method in ("read_bytes", "is_file", "exists", "stat", "open", "mkdir", "glob"):
            m.setattr(Path, method, touched)
        m.setattr(os, "open", touched)
        m.setattr(os, "stat", touched)
        for call in (store.path_of, store.read_bytes, store.get, store.contains):
            with pytest.raises(StoreError, match="expected 64 lowercase hex characters"):
                call(name)


@pytest.mark.parametrize("name", [None, 0, b"a" * 64, ["a" * 64], 1.5])
def test_non_string_names_are_refused(store: PolicyStore, name: object) -> None:
    assert not is_hash(name)
    with pytest.raises(StoreError):
        store.path_of(name)  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        store.get(name)  # type: ignore[arg-type]


def test_traversal_target_is_never_read(tmp_path: Path) -> None:
    """Even with a file sitting where '../x' would lead, the name is refused."""
    store = PolicyStore(tmp_path / "policies")
    store.folder.mkdir()
    secret = tmp_path / "x.json"
    secret.write_bytes(make_policy(10).canonical_bytes())
    for name in ("../x", "..%2fx", "..\\x"):
        with pytest.raises(StoreError):
            store.read_bytes(name)


def test_is_hash() -> None:
    assert is_hash("0123456789abcdef" * 4)
    assert is_hash(make_policy(0).hash)
    assert not is_hash("0123456789ABCDEF" * 4)


def _named_by_hash(store: PolicyStore, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    store.folder.mkdir(parents=True, exist_ok=True)
    (store.folder / f"{digest}.json").write_bytes(data)
    return digest


@pytest.mark.parametrize(("data", "reason"), [
    (b"not json", "not valid JSON"),
    (b"[]", "expected a JSON object"),
    (b'{"schema":"policyledger/policy"}', "missing"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"a":1,"a":2}', "duplicate key"),
])
def test_get_validates_the_policy(store: PolicyStore, data: bytes, reason: str) -> None:
    """A file whose name matches its bytes is still refused when it is not a valid policy."""
    digest = _named_by_hash(store, data)
    assert store.contains(digest)
    assert store.read_bytes(digest) == data  # the bytes check out...
    with pytest.raises(StoreError, match=reason) as err:  # ...the policy does not
        store.get(digest)
    assert digest[:12] in str(err.value)


def test_get_validates_field_values(store: PolicyStore) -> None:
    doc = make_policy(11).to_dict()
    doc["actions"][5] = 9
    digest = _named_by_hash(store, canonical_bytes(doc))
    with pytest.raises(StoreError, match=r"actions\[5\]"):
        store.get(digest)


def test_get_refuses_non_canonical_bytes(store: PolicyStore) -> None:
    policy = make_policy(12)
    pretty = json.dumps(policy.to_dict(), indent=2).encode()
    digest = _named_by_hash(store, pretty)
    assert Policy.from_json(pretty) == policy  # the same policy...
    with pytest.raises(StoreError, match="not canonical"):  # ...under a name that is not its hash
        store.get(digest)


def test_get_refuses_a_non_myopic_terminal_action(store: PolicyStore) -> None:
    """Terminal observations are forced to the myopic action, so such a file is not canonical."""
    doc = make_policy(13).to_dict()
    terminal = min(TERMINAL_OBSERVATIONS)
    doc["actions"][terminal] = (MYOPIC_ACTIONS[terminal] + 1) % 5
    digest = _named_by_hash(store, canonical_bytes(doc))
    with pytest.raises(StoreError, match="not canonical"):
        store.get(digest)


def test_hashes_lists_only_hash_names(store: PolicyStore) -> None:
    digest = store.put(make_policy(14))
    (store.folder / "notes.json").write_text("{}")
    (store.folder / f"{digest.upper()}.json").write_text("{}")
    (store.folder / f"{digest}.txt").write_text("")
    (store.folder / f".{digest}.json.abc.tmp").write_text("")
    assert store.hashes() == [digest]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "socket", "sparse"])
def test_a_file_that_is_not_a_policy_file_is_refused_at_once(store: PolicyStore, kind: str) -> None:
    """A FIFO, a device, a socket or a huge sparse file: one line, no hang, bounded memory."""
    policy = make_policy(15)
    path = store.path_of(policy.hash)
    reason = make_hostile(path, kind)
    assert not bounded(lambda: store.contains(policy.hash), fifo=path)
    for call in (store.read_bytes, store.get):
        with pytest.raises(StoreError) as err:
            bounded(lambda: call(policy.hash), fifo=path)  # noqa: B023 - called at once
        assert reason in str(err.value) and policy.hash[:12] in str(err.value)
        assert "\n" not in str(err.value)


def test_heal_says_whether_it_replaced_a_file(store: PolicyStore) -> None:
    policy = make_policy(16)
    assert store.heal(policy)  # missing: written
    assert not store.heal(policy)  # already right: untouched
    store.path_of(policy.hash).write_bytes(b"x")
    assert store.heal(policy) and store.heal(make_policy(17))
    assert len(folder_names(store)) == 3


def test_a_folder_where_the_file_should_be_is_moved_aside(store: PolicyStore) -> None:
    policy = make_policy(18)
    path = store.path_of(policy.hash)
    (path / "inside").mkdir(parents=True)
    assert store.heal(policy)
    assert path.read_bytes() == policy.canonical_bytes()
    [kept] = [store.folder / n for n in folder_names(store) if n != path.name]
    assert (kept / "inside").is_dir()


@pytest.mark.parametrize("kind", ["fifo", "socket", "sparse"])
def test_a_hostile_file_is_kept_aside_and_replaced(store: PolicyStore, kind: str) -> None:
    policy = make_policy(19)
    path = store.path_of(policy.hash)
    make_hostile(path, kind)
    assert bounded(lambda: store.heal(policy), fifo=path)
    assert store.get(policy.hash) == policy
    assert len(folder_names(store)) == 2


def test_a_failed_heal_leaves_the_damaged_file_alone(store: PolicyStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy(20)
    path = store.path_of(store.put(policy))
    path.write_bytes(b"damaged")

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        store.heal(policy)
    assert path.read_bytes() == b"damaged"
    assert folder_names(store) == [path.name]


def test_a_link_out_of_the_workspace_is_not_replaced(store: PolicyStore) -> None:
    policy = make_policy(21)
    path = store.path_of(policy.hash)
    make_hostile(path, "dev-zero")
    with pytest.raises(StoreError, match=r"resolves outside the workspace \(/dev/zero\)"):
        store.heal(policy)
    assert path.is_symlink() and folder_names(store) == [path.name]
