"""The ledger as a transparency log: its origin, its signed checkpoint, its proofs.

The origin names a ledger for its whole life: ``policyledger/ledger/`` and the first 16 hex
digits of its first entry's hash. A checkpoint is that origin, the number of entries and the
RFC 6962 root of their tree, signed as a C2SP note by the publisher's key
(``policyledger/<key id>``), so any tlog-checkpoint verifier can check it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from policyledger_core.errors import BadInput, Rejected
from policyledger_core.ledger.chain import ORIGIN_PREFIX, Ledger
from policyledger_core.ledger.merkle import ProofError, verify_consistency
from policyledger_core.ledger.note import Checkpoint, NoteError, Unsigned, Verifier, open_note, split
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.ledger.signing import Publisher, key_id

__all__ = ["ORIGIN_PREFIX", "EmptyLog", "UnknownSigner", "check_extends", "checkpoint",
           "consistency_request", "origin", "prove", "signed_checkpoint", "signer_key_id"]


class EmptyLog(Rejected):
    """An empty ledger has no origin yet (it is named by its first entry): nothing to sign or prove."""


class UnknownSigner(NoteError):
    """A checkpoint signed only by keys the check was not given (the message names them)."""


def origin(ledger: Ledger, key_id: str | None) -> str:
    """The origin of the ledger's log as signed by the key ``key_id``: the ledger's name and that
    key's id. Every copy of a workspace shares its first entry, hence its name; each signer's
    view of it is a log of its own, so a checkpoint (or a cosignature of one) can never stand for
    another signer's. ``None``: the name alone (for a view nobody signs)."""
    if not len(ledger):
        raise EmptyLog("the ledger is empty: it gets its origin, and checkpoints, with its first entry")
    return ledger.origin() if key_id is None else f"{ledger.origin()}/{key_id}"


def signer_key_id(verifier: Verifier) -> str:
    """The publisher key id of a note verifier (what its origins end with)."""
    return key_id(verifier.public.hex())


def checkpoint(ledger: Ledger, key_id: str | None) -> Checkpoint:
    """The tree head of the ledger's entries, in the log of the key ``key_id``."""
    tree = ledger.tree()
    return Checkpoint(origin(ledger, key_id), tree.size, tree.root())


def signed_checkpoint(ledger: Ledger, publisher: Publisher) -> str:
    """The current checkpoint as a signed note."""
    return publisher.sign_note(checkpoint(ledger, publisher.key_id).text())


def prove(ledger: Ledger, publisher: Publisher, index: int) -> TlogProof:
    """The tlog-proof of entry ``index`` in the ledger's current tree, with its signed checkpoint."""
    if not 0 <= index < len(ledger):
        raise BadInput(f"--index {index}: the ledger has {len(ledger)} entries")
    path = ledger.tree().inclusion_proof(index)  # O(log n) hashes: the subtrees are stored
    return TlogProof(index, tuple(path), signed_checkpoint(ledger, publisher))


def consistency_request(ledger: Ledger, publisher: Publisher, old: int) -> str:
    """A C2SP tlog-witness add-checkpoint request body: ``old N``, the consistency proof from the
    tree of ``old`` entries to now (one base64 hash a line), a blank line, the signed checkpoint."""
    size = len(ledger)
    if not 0 <= old <= size:
        raise BadInput(f"OLD_SIZE {old}: the ledger has {size} entries")
    proof = ledger.tree().consistency_proof(old)
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{signed_checkpoint(ledger, publisher)}"


def check_extends(ledger: Ledger, signed: str, verifiers: Sequence[Verifier]) -> Checkpoint:
    """Check that the ledger extends a signed checkpoint received from elsewhere: its signature
    by one of ``verifiers``, its origin, then a consistency proof from its tree to this one.
    Raises a one-line error naming the problem; returns the checkpoint."""
    try:
        text, signers = open_note(signed, verifiers)
    except Unsigned:
        names = sorted({s.name for s in split(signed)[1]})
        raise UnknownSigner(f"the checkpoint is signed by {', '.join(names)}, not by any key it was "
                            "checked against") from None
    head = Checkpoint.parse(text)
    if not len(ledger):
        raise Rejected(f"the checkpoint saw {head.size} entries of {head.origin}, this ledger is empty: "
                       "entries were removed here (truncated or rolled back)")
    by_id = {signer_key_id(v): v for v in signers}
    signer = by_id.get(head.origin.rpartition("/")[2], signers[0])  # the one its origin names
    here, size = origin(ledger, signer_key_id(signer)), len(ledger)
    if head.origin != here:
        if head.origin.startswith(ledger.origin() + "/"):
            raise Rejected(f"the checkpoint's origin {head.origin} names another key than its signer's "
                           f"({signer.name})")
        raise Rejected(f"the checkpoint is of another ledger: {head.origin} (this one is {here})")
    if head.size > size:
        raise Rejected(f"the checkpoint saw {head.size} entries, this ledger has {size}: "
                       "entries were removed here (truncated or rolled back)")
    tree = ledger.tree()
    proof = tree.consistency_proof(head.size, size)
    try:
        verify_consistency(head.size, size, head.root, tree.root(size), proof)
    except ProofError:
        raise Rejected(f"this ledger does not extend the checkpoint of {head.size} entries: "
                       "some of those entries were rewritten here, or it is a fork") from None
    return head
