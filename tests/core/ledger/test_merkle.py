"""The Merkle tree of RFC 6962: the published test trees, every size up to 1,000, and the stored
tree against the reference functions for every size, index and old size up to 300."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Sequence

import pytest

from policyledger_core.ledger import merkle
from policyledger_core.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    ProofError,
    Tree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The test tree published with Certificate Transparency's implementations: eight leaves, the
# roots of its first 1..8 leaves, and inclusion and consistency proofs between them.
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
INCLUSION = [  # (leaf number from 1, tree size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
HASHED = [leaf_hash(leaf) for leaf in LEAVES]


def test_the_published_roots() -> None:
    assert root([]) == EMPTY_ROOT == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    for n in range(1, 9):
        assert root(HASHED[:n]) == ROOTS[n - 1]


@pytest.mark.parametrize(("number", "size", "proof"), INCLUSION)
def test_the_published_inclusion_proofs(number: int, size: int, proof: list[str]) -> None:
    want = [bytes.fromhex(h) for h in proof]
    assert inclusion_proof(HASHED, number - 1, size) == want
    verify_inclusion(number - 1, size, HASHED[number - 1], want, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_the_published_consistency_proofs(old: int, new: int, proof: list[str]) -> None:
    want = [bytes.fromhex(h) for h in proof]
    assert consistency_proof(HASHED, old, new) == want
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], want)


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    changed = bytearray(proof[i])
    changed[i % 32] ^= 0x10
    return [*proof[:i], bytes(changed), *proof[i + 1:]]


def _refused(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except ProofError:
        return True
    return False


def test_every_size_to_1000_proves_and_nothing_else_does() -> None:
    rng = random.Random(6962)
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(1000)]
    frontier = Frontier()
    roots = [EMPTY_ROOT]
    for leaf in leaves:
        frontier.append(leaf)
        roots.append(frontier.root())
    assert roots[1000] == root(leaves)
    assert len(frontier.hashes) == bin(1000).count("1")  # O(log n) hashes kept
    for size in range(1, 1001):
        indexes = {0, size - 1, rng.randrange(size)} if size > 64 else set(range(size))
        for index in indexes:
            proof = inclusion_proof(leaves, index, size)
            verify_inclusion(index, size, leaves[index], proof, roots[size])
            if size > 1:
                assert _refused(verify_inclusion, (index + 1) % size, size, leaves[index], proof, roots[size])
                assert _refused(verify_inclusion, index, size, leaves[(index + 1) % size], proof, roots[size])
            if size < 1000:  # the proof of another size, against that size's real root
                assert _refused(verify_inclusion, index, size + 1, leaves[index], proof, roots[size + 1])
            assert _refused(verify_inclusion, index, size, leaves[index], proof, roots[size - 1])
            for i in range(len(proof)):
                assert _refused(verify_inclusion, index, size, leaves[index], _flip(proof, i), roots[size])
        olds = {1, size - 1, rng.randrange(1, size + 1)} if size > 64 else set(range(1, size + 1))
        for old in olds:
            proof = consistency_proof(leaves, old, size)
            verify_consistency(old, size, roots[old], roots[size], proof)
            if old < size:
                assert _refused(verify_consistency, old, size, roots[old - 1] if old > 1 else roots[size],
                                roots[size], proof)
                assert _refused(verify_consistency, old, size, roots[old], roots[size - 1], proof)
                if size < 1000:  # other sizes, against their real roots
                    assert _refused(verify_consistency, old + 1, size + 1, roots[old + 1], roots[size + 1],
                                    proof)
                    assert _refused(verify_consistency, old, size + 1, roots[old], roots[size + 1], proof)
                for i in range(len(proof)):
                    assert _refused(verify_consistency, old, size, roots[old], roots[size], _flip(proof, i))


def test_proofs_of_the_impossible_are_refused() -> None:
    assert _refused(verify_inclusion, 0, 0, HASHED[0], [], EMPTY_ROOT)
    assert _refused(verify_inclusion, 3, 2, HASHED[3], [], ROOTS[1])
    assert _refused(verify_consistency, 5, 4, ROOTS[4], ROOTS[3], [])
    assert _refused(verify_consistency, 4, 4, ROOTS[3], ROOTS[4], [])  # one size, two trees: a fork
    assert _refused(verify_consistency, 3, 5, ROOTS[2], ROOTS[4], [])  # no proof at all
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])  # the empty tree is a prefix of every tree
    assert node_hash(HASHED[0], HASHED[1]) == ROOTS[1]
    with pytest.raises(ValueError, match="subtree hashes"):
        Frontier(3, [HASHED[0]])


def test_the_stored_tree_gives_the_published_roots_and_proofs() -> None:
    tree = Tree(HASHED)
    assert Tree().root() == tree.root(0) == EMPTY_ROOT
    assert [tree.root(n) for n in range(1, 9)] == ROOTS
    for number, size, proof in INCLUSION:
        assert tree.inclusion_proof(number - 1, size) == [bytes.fromhex(h) for h in proof]
    for old, new, proof in CONSISTENCY:
        assert tree.consistency_proof(old, new) == [bytes.fromhex(h) for h in proof]


SIZES = 300


@pytest.fixture
def memoized_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference functions unchanged, their subtree hashes memoized: a pure function of
    (start, end) for the one leaf list used, so the outputs are the same, and the ~90,000
    reference proofs below take a second instead of a dozen."""
    real = merkle._subtree
    seen: dict[tuple[int, int], bytes] = {}

    def subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
        key = (start, end)
        if key not in seen:
            seen[key] = real(leaves, start, end)
        return seen[key]

    monkeypatch.setattr(merkle, "_subtree", subtree)


@pytest.mark.usefixtures("memoized_reference")
def test_the_stored_tree_equals_the_reference_at_every_size_index_and_old_size() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(SIZES)]
    growing, whole = Tree(), Tree(leaves)
    for size in range(SIZES + 1):
        if size:
            growing.append(leaves[size - 1])
        assert growing.size == size
        assert growing.root() == whole.root(size) == root(leaves[:size])
        for index in range(size):
            want = inclusion_proof(leaves, index, size)
            assert growing.inclusion_proof(index) == want
            assert whole.inclusion_proof(index, size) == want  # an earlier size of a larger tree
        for old in range(size + 1):
            want = consistency_proof(leaves, old, size)
            assert growing.consistency_proof(old) == want
            assert whole.consistency_proof(old, size) == want


def test_the_stored_tree_costs_about_two_hashes_a_leaf_and_refuses_what_it_lacks() -> None:
    tree = Tree(leaf_hash(i.to_bytes(4, "big")) for i in range(1000))
    held = sys.getsizeof(tree)
    assert 2 * 999 * HASH_SIZE <= held <= 1.3 * 2 * 1000 * HASH_SIZE  # 999 nodes above 1000 leaves
    for bad in ((lambda: tree.root(1001)), (lambda: tree.inclusion_proof(5, 5)),
                (lambda: tree.inclusion_proof(0, 1001)), (lambda: tree.consistency_proof(6, 5)),
                (lambda: tree.consistency_proof(0, 1001)), (lambda: tree.append(b"short"))):
        with pytest.raises(ValueError):
            bad()
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(1100)]

    def failing() -> Iterator[bytes]:
        yield from leaves[1000:1050]
        raise OSError("the leaves could not be read")

    with pytest.raises(ValueError):
        tree.extend([*leaves[1000:1050], b"short"])
    with pytest.raises(OSError):
        tree.extend(failing())
    assert tree.size == 1000 and tree.root() == root(leaves[:1000])  # all or nothing
    tree.extend(leaves[1000:])
    assert tree.root() == root(leaves) and tree.consistency_proof(1000) == consistency_proof(leaves, 1000)
