"""The ledger as a transparency log: its origin, its signed checkpoint, its proofs.

The origin names a ledger for its whole life: ``policyledger/ledger/`` and the first 16 hex
digits of its first entry's hash. A checkpoint is that origin, the number of entries and the
RFC 6962 root of their tree, signed as a C2SP note by the publisher's key
(``policyledger/<key id>``), so any tlog-checkpoint verifier can check it.
"""

from __future__ import annotations

from policyledger_core.errors import BadInput
from policyledger_core.ledger.chain import Ledger
from policyledger_core.ledger.merkle import root
from policyledger_core.ledger.note import Checkpoint
from policyledger_core.ledger.signing import Publisher

ORIGIN_PREFIX = "policyledger/ledger/"


class EmptyLog(BadInput):
    """An empty ledger has no origin yet (it is named by its first entry)."""


def origin(ledger: Ledger) -> str:
    if not len(ledger):
        raise EmptyLog("the ledger is empty: it gets its origin, and checkpoints, with its first entry")
    return ORIGIN_PREFIX + ledger.scanned()[0].hash[:16]


def checkpoint(ledger: Ledger, size: int | None = None) -> Checkpoint:
    """The tree head of the ledger's first ``size`` entries (default all)."""
    tree = ledger.tree()
    if size is None or size == tree.size:
        return Checkpoint(origin(ledger), tree.size, tree.root())
    if not 0 < size <= tree.size:
        raise BadInput(f"size {size}: the ledger has {tree.size} entries")
    return Checkpoint(origin(ledger), size, root(ledger.leaf_hashes()[:size]))


def signed_checkpoint(ledger: Ledger, publisher: Publisher) -> str:
    """The current checkpoint as a signed note."""
    return publisher.sign_note(checkpoint(ledger).text())
