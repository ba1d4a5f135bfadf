"""The ledger's Merkle tree, as RFC 6962 (section 2.1) and RFC 9162 define it.

Leaf ``i`` is the exact bytes of entry ``i``; a leaf's hash is SHA-256(0x00 || bytes) and an
interior node's SHA-256(0x01 || left || right), so a root, an inclusion proof or a consistency
proof made here is checked by any other implementation of those RFCs, and theirs here.

:class:`Frontier` keeps the tree head of a growing ledger in O(log n) hashes (one per perfect
subtree of the size's binary decomposition): an append costs O(1) hashes amortised.
:class:`Tree` stores every leaf hash and every complete aligned subtree's hash (about 2n
hashes) and answers roots and proofs for any earlier size in O(log n) hash operations.
:func:`inclusion_proof` and :func:`consistency_proof` compute the same proofs from the leaf
hashes alone in O(n): the definition, kept as the reference the tree is tested against.
Proofs are checked without the leaves (:func:`verify_inclusion`, :func:`verify_consistency`).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence

from policyledger_core.errors import Rejected

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: the hash of nothing."""


class ProofError(Rejected):
    """A proof does not prove what it claims (one line saying why)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): where RFC 6962 splits a tree of n."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of these leaf hashes (MTH)."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def _subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of ``leaves[start:end]`` (non-empty)."""
    if end - start == 1:
        return leaves[start]
    k = _split(end - start)
    return node_hash(_subtree(leaves, start, start + k), _subtree(leaves, start + k, end))


class Frontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves, largest first."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1") or any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"frontier: a tree of {size} leaves has {bin(size).count('1')} subtree hashes")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash at the end."""
        self.hashes.append(leaf)
        # Each trailing 1 bit of the old size is a subtree the new leaf completes.
        size = self.size
        while size & 1:
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            size >>= 1
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        head = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            head = node_hash(left, head)
        return head

    def copy(self) -> Frontier:
        return Frontier(self.size, self.hashes)


class Tree:
    """An append-only RFC 6962 tree that keeps the hash of every complete aligned subtree.

    Level k holds, in order, the hashes of the perfect subtrees of 2^k leaves that start at a
    multiple of 2^k (level 0: the leaf hashes), packed 32 bytes each in one bytearray per level:
    n leaves cost about 2n x 32 bytes, with no per-hash object. Every subtree RFC 6962's
    recursion visits is either such a perfect subtree or a right edge made of O(log n) of them,
    so a root or a proof for any size up to :attr:`size` takes O(log n) hash operations.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaves)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0]) // HASH_SIZE

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash at the end: O(1) hashes amortised."""
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes at the end, then hash every subtree they complete. All or nothing:
        on any error (a leaf not 32 bytes, the iterable failing) the tree is as it was."""
        size = self.size
        try:
            self._extend(leaves)
        except BaseException:
            # Cut every level back to that size: a level left longer than the one below it
            # would answer queries from nodes that do not exist (an empty slice, not an error).
            for level, stored in enumerate(self._levels):
                del stored[HASH_SIZE * (size >> level):]
            raise

    def _extend(self, leaves: Iterable[bytes]) -> None:
        # Copied in one at a time, not gathered first: catching up 100,000 leaves then holds no
        # list of 100,000 hash objects (which would cost more than the whole tree).
        stored = self._levels[0]
        for leaf in leaves:
            if len(leaf) != HASH_SIZE:
                raise ValueError("tree: a leaf hash is 32 bytes")
            stored += leaf
        sha256 = hashlib.sha256
        level = 0
        while True:
            below = self._levels[level]
            want = len(below) // (2 * HASH_SIZE)  # complete pairs below: the nodes this level up holds
            if level + 1 == len(self._levels):
                if not want:
                    return
                self._levels.append(bytearray())
            above = self._levels[level + 1]
            done = len(above) // HASH_SIZE
            if want == done:
                return  # no node completed here: none can be above either
            for j in range(done, want):
                above += sha256(b"\x01" + below[2 * HASH_SIZE * j:2 * HASH_SIZE * (j + 1)]).digest()
            level += 1

    def _node(self, level: int, index: int) -> bytes:
        """The stored hash of leaves [index * 2^level, (index + 1) * 2^level)."""
        return bytes(self._levels[level][HASH_SIZE * index:HASH_SIZE * (index + 1)])

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end) (non-empty), for ``start`` a multiple of the smallest power
        of two >= end - start, as every subtree of RFC 6962's recursion is: the range is then
        perfect subtrees of decreasing size, each aligned and stored, folded from the right."""
        parts: list[bytes] = []
        while start < end:
            level = (end - start).bit_length() - 1
            parts.append(self._node(level, start >> level))
            start += 1 << level
        head = parts.pop()
        while parts:
            head = node_hash(parts.pop(), head)
        return head

    def root(self, size: int | None = None) -> bytes:
        """The tree head of the first ``size`` leaves (default all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"root: no tree of {size} in a tree of {self.size}")
        return self._subtree(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """As :func:`inclusion_proof` over this tree's leaf hashes, in O(log n) hashes: below the
        first left turn every sibling is a stored perfect subtree, so at most one (a right edge)
        is folded from parts."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"inclusion: no leaf {index} in a tree of {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start += k
        return path[::-1]

    def consistency_proof(self, old: int, size: int | None = None) -> list[bytes]:
        """As :func:`consistency_proof` over this tree's leaf hashes, in O(log n) hashes."""
        size = self.size if size is None else size
        if not 0 <= old <= size <= self.size:
            raise ValueError(f"consistency: sizes {old} and {size} do not fit a tree of {self.size}")
        if old in (0, size):
            return []
        proof: list[bytes] = []
        start, end, whole, m = 0, size, True, old  # SUBPROOF(m, D[start:end], whole), unrolled
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            proof.append(self._subtree(start, end))
        return proof[::-1]

    def __sizeof__(self) -> int:
        """Bytes held, levels included (what ``sys.getsizeof`` reports)."""
        return object.__sizeof__(self) + sys.getsizeof(self._levels) + sum(
            sys.getsizeof(level) for level in self._levels)


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaf hashes (PATH)."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"inclusion: no leaf {index} in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:  # from the root down; the path lists siblings from the leaf up
        k = _split(end - start)
        if index < start + k:
            path.append(_subtree(leaves, start + k, end))
            end = start + k
        else:
            path.append(_subtree(leaves, start, start + k))
            start += k
    return path[::-1]


def consistency_proof(leaves: Sequence[bytes], old: int, new: int | None = None) -> list[bytes]:
    """The proof that the tree of ``old`` leaves is a prefix of that of ``new`` (PROOF)."""
    new = len(leaves) if new is None else new
    if not 0 <= old <= new <= len(leaves):
        raise ValueError(f"consistency: sizes {old} and {new} do not fit a tree of {len(leaves)}")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    start, end, whole = 0, new, True  # SUBPROOF(m, D[start:end], whole), unrolled
    m = old
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(_subtree(leaves, start + k, end))
            end = start + k
        else:
            proof.append(_subtree(leaves, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(_subtree(leaves, start, end))
    return proof[::-1]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` gives for leaf hash ``leaf`` at ``index`` (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"inclusion: index {index} is outside a tree of {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("inclusion: every hash must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion: the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion: the proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     expected_root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` puts ``leaf`` at ``index`` of the tree ``expected_root``."""
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise ProofError(f"inclusion: leaf {index} is not in the tree of {size} with that root")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the tree ``old_root`` of ``old`` leaves
    to be a prefix of the tree ``new_root`` of ``new`` (RFC 9162, 2.1.4.2)."""
    if not 0 <= old <= new:
        raise ProofError(f"consistency: a tree of {new} cannot extend one of {old}")
    if any(len(h) != HASH_SIZE for h in (old_root, new_root, *proof)):
        raise ProofError("consistency: every hash must be 32 bytes")
    if old == new:
        if proof or old_root != new_root:
            raise ProofError(f"consistency: two different trees of the same size {old}")
        return
    if old == 0:
        if proof:
            raise ProofError("consistency: nothing to prove from the empty tree")
        return
    if not proof:
        raise ProofError("consistency: the proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency: the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError(f"consistency: the tree of {new} does not extend that tree of {old}")
