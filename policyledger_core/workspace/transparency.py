"""The workspace's ledger as a transparency log, for bundles and the commands that prove things:
proofs carry the cosignatures gathered for their checkpoint; an entry received from elsewhere is
checked against its proof, and its checkpoint against what this user saw of that log before."""

from __future__ import annotations

from dataclasses import dataclass

from policyledger_core.canonical import is_hex
from policyledger_core.ledger import tlog
from policyledger_core.ledger.cosign import Stored, attach
from policyledger_core.ledger.entry import Entry
from policyledger_core.ledger.merkle import ProofError
from policyledger_core.ledger.note import BadSignature, Checkpoint, NoteError, Unsigned, Verifier, split
from policyledger_core.ledger.peers import Observation, Peers
from policyledger_core.ledger.proof import TlogProof
from policyledger_core.ledger.signing import key_id, note_verifier
from policyledger_core.workspace.context import Context


def proof(ctx: Context, index: int) -> TlogProof:
    """The tlog-proof of entry ``index`` in the current tree, with the cosignatures kept for
    that checkpoint (``checkpoint --cosignatures``)."""
    made = tlog.prove(ctx.ledger, ctx.publisher, index)
    text = split(made.checkpoint)[0]
    lines = Stored(ctx.config_dir).lines(text)
    if not lines:
        return made
    return TlogProof(made.index, made.hashes, attach(made.checkpoint, lines), made.extra)


@dataclass(frozen=True)
class Inclusion:
    """An entry shown to be in a signed checkpoint of its publisher's ledger."""

    index: int
    checkpoint: Checkpoint
    note: str
    verifier: Verifier
    signatures: int
    """Signature lines on the checkpoint (the publisher's and any cosignatures)."""

    def describe(self) -> str:
        return f"included in {self.checkpoint.origin} at size {self.checkpoint.size} (entry {self.index})"


def check_inclusion(entry: Entry, text: str) -> Inclusion:
    """Check that ``entry`` is leaf ``entry.index`` of the signed checkpoint in the tlog-proof
    ``text``, signed by the entry's publisher. Raises NoteError or ProofError naming the problem."""
    parsed = TlogProof.parse(text)
    if parsed.index != entry.index:
        raise ProofError(f"tlog-proof: it proves entry {parsed.index}, the entry is {entry.index}")
    verifier = note_verifier(entry.publisher)
    try:
        head = parsed.verify(entry.line(), [verifier])
    except NoteError as exc:
        said = str(exc).removeprefix("note: ").removeprefix("checkpoint: ")
        signer = " (not signed by the entry's publisher)" if isinstance(exc, Unsigned | BadSignature) else ""
        raise NoteError(f"tlog-proof checkpoint: {said}{signer}") from None
    name, _, signer = head.origin.rpartition("/")
    if not (name.startswith(tlog.ORIGIN_PREFIX) and is_hex(name[len(tlog.ORIGIN_PREFIX):].encode(), 16)):
        raise NoteError(f"tlog-proof: {head.origin[:60]!r} is not the origin of a PolicyLedger ledger")
    if signer != key_id(entry.publisher):
        raise NoteError(f"tlog-proof: its origin {head.origin[:80]} names another key than the entry's "
                        f"publisher ({key_id(entry.publisher)})")
    return Inclusion(parsed.index, head, parsed.checkpoint, verifier, len(split(parsed.checkpoint)[1]))


def seen_before(ctx: Context, inclusion: Inclusion) -> Observation:
    """How the proof's checkpoint relates to the latest one this user saw of that log (a fork
    raises ForkError, both checkpoints kept); nothing is remembered yet."""
    return Peers(ctx.config_dir).check(inclusion.note, inclusion.verifier)


def remember(ctx: Context, inclusion: Inclusion) -> Observation:
    """Remember the proof's checkpoint as seen (checked again: another import may have come
    between)."""
    return Peers(ctx.config_dir).observe(inclusion.note, inclusion.verifier)
