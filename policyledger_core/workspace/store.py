"""Content-addressed policy store: ``policies/<sha256>.json`` holds a policy's canonical bytes.

A file's name is the hash of its content. Only names of exactly 64 lowercase
hex characters are ever opened, so no path is built from untrusted text.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from policyledger_core.atomic import write_atomic
from policyledger_core.canonical import is_hash, sha256_hex
from policyledger_core.errors import Rejected
from policyledger_core.paths import outside_target
from policyledger_core.policy import MAX_POLICY_BYTES, AnyPolicy, PolicyError, policy_from_json
from policyledger_core.safeio import UnreadableFile, read_regular


class StoreError(Rejected):
    """A policy file that is missing, unreadable or not what its name says."""


class PolicyStore:
    """The ``policies/`` folder of a workspace (``root``, by default the folder's parent)."""

    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.folder = folder
        self.root = folder.parent if root is None else root

    def path_of(self, policy_hash: str) -> Path:
        """The file of a policy hash; refuses anything but a 64-hex name."""
        if not is_hash(policy_hash):
            raise StoreError(f"policy hash: expected 64 lowercase hex characters, got {policy_hash!r:.80}")
        return self.folder / f"{policy_hash}.json"

    def put(self, policy: AnyPolicy) -> str:
        """Store a policy (atomic, idempotent); returns its hash. See :meth:`heal`."""
        self.heal(policy)
        return policy.hash

    def heal(self, policy: AnyPolicy) -> bool:
        """Make the policy's file hold its bytes; True when it was missing or damaged.

        A damaged file is replaced atomically and kept beside it as
        ``<name>.damaged-<UTC time>``; when the write fails it stays as it was.
        """
        path = self.path_of(policy.hash)
        if path.is_file() and self._matches(path, policy.hash):
            return False
        self._check_inside(path)
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self._keep_damaged(path) if os.path.lexists(path) else None
        try:
            write_atomic(path, policy.canonical_bytes())
        except BaseException:
            if kept is not None:
                self._put_back(path, *kept)
            raise
        return True

    def _keep_damaged(self, path: Path) -> tuple[Path, bool]:
        """A second name for the damaged file; returns it and whether the file also stays in place."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while os.path.lexists(backup):
            backup = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
            n += 1
        try:
            # A hard link: the damaged file keeps its name until the atomic replace, and a FIFO,
            # a device or a huge file is never opened or copied.
            os.link(path, backup, follow_symlinks=False)
            return backup, True
        except OSError:
            os.rename(path, backup)  # a folder, or a file system without hard links
            return backup, False

    @staticmethod
    def _put_back(path: Path, backup: Path, linked: bool) -> None:
        """Undo :meth:`_keep_damaged` after a failed write: the folder is as it was."""
        try:
            if linked:
                os.unlink(backup)
            elif not os.path.lexists(path):
                os.rename(backup, path)
        except OSError:
            pass  # the damaged copy stays under its second name: nothing is lost

    def contains(self, policy_hash: str) -> bool:
        """True when the file exists and its content matches its name."""
        path = self.path_of(policy_hash)
        return path.is_file() and self._matches(path, policy_hash)

    def read_bytes(self, policy_hash: str) -> bytes:
        """The stored bytes, checked against the hash."""
        path = self.path_of(policy_hash)
        try:
            data = read_regular(path, MAX_POLICY_BYTES, f"policies/{path.name}")
        except FileNotFoundError:
            raise StoreError(f"policy {policy_hash[:12]}: file missing") from None
        except UnreadableFile as exc:
            raise StoreError(f"policy {policy_hash[:12]}: cannot read: {exc.reason}") from None
        except OSError as exc:
            raise StoreError(f"policy {policy_hash[:12]}: cannot read ({exc.strerror})") from None
        if sha256_hex(data) != policy_hash:
            raise StoreError(f"policy {policy_hash[:12]}: content does not match its hash")
        return data

    def get(self, policy_hash: str) -> AnyPolicy:
        """Load and validate a stored policy."""
        data = self.read_bytes(policy_hash)
        try:
            policy = policy_from_json(data)
        except PolicyError as exc:
            raise StoreError(f"policy {policy_hash[:12]}: {exc}") from None
        if policy.hash != policy_hash:
            raise StoreError(f"policy {policy_hash[:12]}: stored bytes are not canonical")
        return policy

    def hashes(self) -> list[str]:
        """Hashes of the files present (names only; contents not checked)."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json") if is_hash(p.stem))

    def _check_inside(self, path: Path) -> None:
        """Refuse to write through a link that leads out of the workspace (reading may follow it)."""
        for where, name in ((self.folder, self.folder.name), (path, f"{self.folder.name}/{path.name}")):
            target = outside_target(where, self.root)
            if target is not None:
                raise StoreError(f"{name} resolves outside the workspace ({target}): "
                                 "refusing to write through it")

    @staticmethod
    def _matches(path: Path, digest: str) -> bool:
        try:
            return sha256_hex(read_regular(path, MAX_POLICY_BYTES)) == digest
        except OSError:
            return False
