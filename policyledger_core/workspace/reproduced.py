"""Which entries this user has reproduced by replay on this machine, remembered across runs.

The marketplace ranks an entry only once its figures were reproduced here: a
replay is deterministic and an entry's hash binds its policy hash and every
figure it records, so "reproduced" is a property of the entry hash alone and
is recorded once per user, in ``reproduced.log`` in the config folder (one
entry hash per line, append-only). What fails to reproduce is not recorded
here: it becomes a problem of the ledger, remembered like any other.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from policyledger_core.canonical import is_hex
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.layout import Problem
from policyledger_core.safeio import read_regular
from policyledger_core.workspace.audit import check_entry
from policyledger_core.workspace.store import PolicyStore

log = logging.getLogger(__name__)
FILE_NAME = "reproduced.log"
MAX_BYTES = 256 << 20
"""About 3.9 million entries; a larger file is not read (nothing counts as reproduced)."""


class Reproductions:
    """The entry hashes this user has seen reproduced."""

    def __init__(self, config_dir: Path) -> None:
        self.path = config_dir / FILE_NAME
        self._hashes: set[str] | None = None
        self.warnings: list[str] = []
        """Why a result could not be remembered (a read-only or full config folder)."""

    def _known(self) -> set[str]:
        if self._hashes is None:
            self._hashes = set()
            try:
                data = read_regular(self.path, MAX_BYTES, self.path.name)
            except FileNotFoundError:
                data = b""
            except OSError as exc:
                log.warning("%s: %s; every entry is replayed again", self.path, exc)
                data = b""
            complete = data[:data.rfind(b"\n") + 1]  # the part after the last newline is torn
            self._hashes.update(line.decode("ascii") for line in complete.split(b"\n")
                                if is_hex(line, 64))
        return self._hashes

    def __contains__(self, entry_hash: object) -> bool:
        return entry_hash in self._known()

    def record(self, hashes: Sequence[str]) -> None:
        """Remember that these entries were reproduced (kept in memory if the file cannot be written)."""
        new = [h for h in hashes if h not in self._known()]
        if not new:
            return
        self._known().update(new)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, "".join(f"{h}\n" for h in new).encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            self.warnings.append(f"cannot remember reproduced entries in {self.path.parent} "
                                 f"({exc.strerror or exc}); they will be replayed again next time")


def pending(ledger: Ledger, reproductions: Reproductions) -> list[int]:
    """Indexes of the entries the marketplace would show (each policy's first) not yet reproduced here."""
    scanned = ledger.scanned()  # a copy per call: taken once
    firsts: dict[str, int] = {}
    for i, line in enumerate(scanned):
        firsts.setdefault(line.policy_hash, i)
    return sorted(i for i in firsts.values() if scanned[i].hash not in reproductions)


@dataclass(frozen=True)
class ReproduceProgress:
    """Entries replayed so far of those asked for."""

    done: int
    total: int


@dataclass(frozen=True)
class ReproduceReport:
    """What reproducing entries found: how many were reproduced, and the first problem."""

    reproduced: int
    problem: Problem | None


def reproduce(ledger: Ledger, store: PolicyStore, reproductions: Reproductions,
              indexes: Sequence[int]) -> Generator[ReproduceProgress, None, ReproduceReport]:
    """Check and replay each entry (every check of a full verification); remember those reproduced.

    The first entry that fails becomes the ledger's problem (read-only until a
    repair), as when a full verification finds it, and the run stops there.
    """
    done = 0
    scanned = ledger.scanned()
    for n, index in enumerate(indexes):
        yield ReproduceProgress(n, len(indexes))
        if index >= len(ledger):
            break  # cut off by a problem found meanwhile
        reason = check_entry(ledger, store, index)
        if reason is not None:
            problem = Problem(index, reason)
            ledger.mark_problem(problem)
            return ReproduceReport(done, problem)
        reproductions.record([scanned[index].hash])
        done += 1
    yield ReproduceProgress(len(indexes), len(indexes))
    return ReproduceReport(done, None)
