"""What this user has seen of other people's ledgers: for each log, the latest signed checkpoint.

A log is an origin signed by one key: every copy of the shipped workspace shares the shipped
ledger's first entry, hence its origin, so two people's ledgers are told apart by the key that
signs their checkpoints. A checkpoint of a known log that is smaller than the one seen, of the
same size with another root, or that comes with a consistency proof that fails, is a fork of that
log (or a rollback): it is refused, and both signed checkpoints are kept as evidence in the
config folder. A larger one with no proof is taken as the latest (nothing here can show it is
not an extension) and the one it replaces stays in the log's history.

As a witness this user also keeps, per log, the latest checkpoint it cosigned: a request must
start from that size and prove consistency from that checkpoint (C2SP tlog-witness), so every
checkpoint cosigned extends every one cosigned before, whatever was taken in without a proof.

Checking and recording happen under one lock, so two imports (or a cosigning and an import) never
both pass against the same old checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from policyledger_core.atomic import write_atomic
from policyledger_core.canonical import sha256_hex
from policyledger_core.errors import Rejected
from policyledger_core.ledger.merkle import ProofError, verify_consistency
from policyledger_core.ledger.note import Checkpoint, NoteError, Verifier, open_note

LOCK_TIMEOUT = 30.0
MAX_HISTORY = 64
"""Earlier checkpoints kept per log (the latest is what is checked against)."""


class ForkError(Rejected):
    """A checkpoint inconsistent with the one seen before for its log; ``evidence`` holds both."""

    def __init__(self, message: str, evidence: Path | None) -> None:
        super().__init__(message)
        self.evidence = evidence


@dataclass(frozen=True)
class Seen:
    """A signed checkpoint of a log, as recorded."""

    note: str
    """The signed note, verbatim."""
    checkpoint: Checkpoint
    verifier: Verifier
    when: float


@dataclass(frozen=True)
class Observation:
    """The outcome of taking a checkpoint in: ``relation`` is ``first``, ``same`` or ``newer``."""

    relation: str
    checkpoint: Checkpoint
    previous: Seen | None
    proved: bool
    """True when a consistency proof from the previous checkpoint was checked."""

    def describe(self) -> str:
        head = self.checkpoint
        if self.previous is None:
            return f"first checkpoint seen of {head.origin}"
        if self.relation == "same":
            return f"the checkpoint already seen of {head.origin}"
        how = "proved consistent with" if self.proved else "newer than"
        return f"{how} the checkpoint seen before ({self.previous.checkpoint.size} entries)"


class Peers:
    """The latest checkpoint seen per log, in ``<config>/tlog/logs``."""

    def __init__(self, config_dir: Path) -> None:
        self.folder = config_dir / "tlog" / "logs"
        self.forks = config_dir / "tlog" / "forks"
        self._lock = config_dir / "tlog-logs.lock"  # beside, so that a check alone creates no folder

    def _path(self, origin: str, verifier: Verifier) -> Path:
        return self.folder / (sha256_hex(f"{origin}\n{verifier.text()}".encode())[:32] + ".json")

    def latest(self, origin: str, verifier: Verifier) -> Seen | None:
        """The latest checkpoint recorded for the log ``origin`` signed by ``verifier``."""
        data = self._read(self._path(origin, verifier))
        return None if data is None else _seen(data["latest"], verifier)

    def verifiers(self, origin: str) -> list[Verifier]:
        """The signers whose checkpoints of ``origin`` this user has seen."""
        found = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else ():
            try:
                data = json.loads(path.read_bytes())
                if isinstance(data, dict) and data.get("origin") == origin:
                    found.append(Verifier.parse(str(data["verifier"])))
            except (OSError, ValueError, KeyError, NoteError):
                continue  # a damaged record names no signer; observing that log reports it
        return found

    def observe(self, note: str, verifier: Verifier, proof: Sequence[bytes] | None = None,
                old_size: int | None = None) -> Observation:
        """Check the signed checkpoint ``note`` (by ``verifier``) against the latest one seen of its
        log and record it. ``old_size`` and ``proof`` are a witness request's: the size of the latest
        checkpoint this user cosigned of that log (0 if none) and a consistency proof from it; the
        checkpoint is then also recorded as cosigned. Raises ForkError (evidence kept), NoteError,
        or Rejected for a request that does not start where this user's cosignatures do."""
        with self.taking(note, verifier, proof, old_size) as observation:
            return observation

    def check(self, note: str, verifier: Verifier) -> Observation:
        """What :meth:`observe` would say of ``note``, recording nothing (a fork still raises
        ForkError, its evidence kept): an import checks first, saves, then observes."""
        with self.taking(note, verifier, keep=False) as observation:
            return observation

    @contextlib.contextmanager
    def taking(self, note: str, verifier: Verifier, proof: Sequence[bytes] | None = None,
               old_size: int | None = None, keep: bool = True) -> Iterator[Observation]:
        """:meth:`observe`, recording only if the block exits cleanly (and ``keep``); the log's
        record is locked meanwhile, so keep the block short."""
        text, _signed = open_note(note, [verifier])
        head = Checkpoint.parse(text)
        path = self._path(head.origin, verifier)
        self._lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._lock), timeout=LOCK_TIMEOUT):
            data = self._read(path)
            previous = None if data is None else _seen(data["latest"], verifier)
            cosigned = None if data is None or data.get("cosigned") is None \
                else _seen(data["cosigned"], verifier)
            proved = False
            if old_size is not None:  # a witness request: its proof is from the checkpoint cosigned
                base = self._extends_cosigned(cosigned, head, note, proof or (), old_size)
                proved = base is not None and previous is not None and base.checkpoint == previous.checkpoint
            relation = self._relate(previous, head, note)
            yield Observation(relation, head, previous, proved)
            if not keep or (relation == "same" and old_size is None):
                return  # nothing (new) to remember
            now = {"note": note, "when": time.time()}
            kept: dict[str, Any] = data or {"history": [], "cosigned": None}
            record = {"origin": head.origin, "verifier": verifier.text(),
                      "latest": kept["latest"] if relation == "same" else now,
                      "history": kept["history"] if relation == "same" or data is None
                      else [*kept["history"], kept["latest"]][-MAX_HISTORY:],
                      "cosigned": now if old_size is not None else kept.get("cosigned")}
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(record, indent=1).encode() + b"\n", 0o600)

    def _extends_cosigned(self, cosigned: Seen | None, head: Checkpoint, note: str, proof: Sequence[bytes],
                          old_size: int) -> Seen | None:
        """Check a witness request against the latest checkpoint this user cosigned of that log (it
        must start from its size, and prove consistency from it); returns that checkpoint."""
        seen_size = 0 if cosigned is None else cosigned.checkpoint.size
        if old_size != seen_size:
            raise Rejected(f"the request starts from {old_size} entries of {head.origin}; "
                           f"this user last cosigned {seen_size}")
        if cosigned is None:
            return None
        before = cosigned.checkpoint
        if head.size == before.size and head.root != before.root:
            self._fork(cosigned, note, f"same size ({head.size}) as the one cosigned before, another root")
        if head.size == before.size and proof:
            raise Rejected("the request's consistency proof between trees of the same size must be empty")
        try:
            verify_consistency(before.size, head.size, before.root, head.root, proof)
        except ProofError:
            self._fork(cosigned, note, f"its consistency proof from the {before.size} entries cosigned "
                                       "before does not verify")
        return cosigned

    def _relate(self, previous: Seen | None, head: Checkpoint, note: str) -> str:
        """How ``head`` relates to the latest checkpoint seen (``first``, ``same`` or ``newer``);
        a smaller one, or another root at the same size, is a fork."""
        if previous is None:
            return "first"
        before = previous.checkpoint
        if head.size < before.size:
            self._fork(previous, note, f"it has {head.size} entries, fewer than the {before.size} "
                                       "seen before (rolled back, or an older view)")
        if head.size == before.size:
            if head.root != before.root:
                self._fork(previous, note, f"same size ({head.size}) as the one seen before, another root")
            return "same"
        return "newer"  # nothing here shows it is not an extension: no proof from the latest seen

    def _fork(self, previous: Seen, note: str, why: str) -> None:
        origin = previous.checkpoint.origin
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = f"fork-{stamp}-{sha256_hex(note.encode())[:12]}.txt"
        evidence: Path | None = self.forks / name
        text = (f"Fork of {origin} signed by {previous.verifier.text()}\n{why}\n\n"
                f"# Seen before\n{previous.note}\n# Now\n{note}")
        try:
            self.forks.mkdir(parents=True, exist_ok=True)
            write_atomic(self.forks / name, text.encode(), 0o600)
        except OSError:
            evidence = None  # the refusal stands; only the copy of the evidence is missing
        kept = f"; both checkpoints kept in {evidence}" if evidence else ""
        raise ForkError(f"fork of {origin} (signer {previous.verifier.name}): {why}{kept}", evidence)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as exc:
            raise Rejected(f"the checkpoints remembered in {path} cannot be read ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("latest"), dict) \
                or not isinstance(data.get("history"), list) \
                or not isinstance(data.get("cosigned"), dict | None):
            raise Rejected(f"the checkpoints remembered in {path} are damaged")
        return data


def _seen(record: Any, verifier: Verifier) -> Seen:
    try:
        text, _signed = open_note(str(record["note"]), [verifier])
        return Seen(str(record["note"]), Checkpoint.parse(text), verifier, float(record["when"]))
    except (KeyError, TypeError, ValueError, NoteError) as exc:
        raise Rejected(f"a remembered checkpoint is damaged ({exc})") from None
