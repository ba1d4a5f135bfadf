"""Inclusion proofs in the C2SP tlog-proof format: an entry's index, its audit path and the
signed checkpoint of the tree it is in, checkable offline by anyone with the signer's key.

```
c2sp.org/tlog-proof@v1
index 2
<base64 hash>            (from the leaf's sibling up to the root's child)

<signed checkpoint, verbatim>
```
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from policyledger_core.ledger.merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from policyledger_core.ledger.note import Checkpoint, NoteError, Verifier, decimal, open_note, utf8

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_BYTES = 1 << 16
MAX_PATH = 64


@dataclass(frozen=True)
class TlogProof:
    """A tlog-proof: ``hashes`` is the audit path of entry ``index`` in ``checkpoint``'s tree."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    """The signed checkpoint note, verbatim."""
    extra: bytes | None = None

    def text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        if len(utf8(text, "tlog-proof")) > MAX_PROOF_BYTES:
            raise NoteError(f"tlog-proof: larger than {MAX_PROOF_BYTES} bytes")
        head, blank, checkpoint = text.partition("\n\n")
        lines = head.split("\n")
        if not blank or lines[0] != HEADER:
            raise NoteError(f"tlog-proof: expected {HEADER!r}, then the proof, a blank line and a checkpoint")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _b64(rest.pop(0)[6:], "extra data")
        if not rest or not rest[0].startswith("index "):
            raise NoteError("tlog-proof: no index line")
        index = decimal(rest.pop(0)[6:], "tlog-proof: index")
        if len(rest) > MAX_PATH:
            raise NoteError("tlog-proof: the inclusion proof is longer than any tree is deep")
        hashes = tuple(_b64(line, "inclusion proof") for line in rest)
        if any(len(h) != HASH_SIZE for h in hashes):
            raise NoteError("tlog-proof: an inclusion proof hash is not 32 bytes")
        return cls(index, hashes, checkpoint, extra)

    def verify(self, record: bytes, verifiers: Sequence[Verifier]) -> Checkpoint:
        """Check that ``record`` (an entry's bytes) is leaf ``index`` of the tree of the signed
        checkpoint; returns that checkpoint. Raises NoteError or ProofError naming the problem."""
        text, _signed = open_note(self.checkpoint, verifiers)
        head = Checkpoint.parse(text)
        try:
            verify_inclusion(self.index, head.size, leaf_hash(record), self.hashes, head.root)
        except ProofError as exc:
            raise ProofError(f"tlog-proof: {exc}") from None
        return head


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"tlog-proof: {what} is not base64") from None
