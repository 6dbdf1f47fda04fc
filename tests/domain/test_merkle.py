"""RFC 6962 Merkle trees: the Certificate Transparency reference vectors, every
valid proof in trees of 1..64 leaves, and systematic corruptions that must fail."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from evidence.domain.merkle import (
    EMPTY_ROOT,
    MerkleBuilder,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "merkle" / "rfc6962.json").read_text()
)
LEAVES = [leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"leaf %d" % i) for i in range(n)]


def _recursive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 section 2.1, as an independent check."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_recursive_root(leaves[:k]), _recursive_root(leaves[k:]))


def _flips(proof: list[bytes]) -> list[list[bytes]]:
    """Every proof with exactly one bit of one element flipped."""
    out = []
    for position, element in enumerate(proof):
        for bit in range(len(element) * 8):
            changed = bytearray(element)
            changed[bit // 8] ^= 1 << (bit % 8)
            out.append([*proof[:position], bytes(changed), *proof[position + 1 :]])
    return out


def _paddings(proof: list[bytes], *extra: bytes) -> list[list[bytes]]:
    out = []
    for item in (b"", bytes(32), SOME_HASH, *extra):
        out.append([*proof, item])
        out.append([item, *proof])
    if proof:
        out.append([proof[0], *proof])
        out.append([*proof, proof[-1]])
    if len(proof) > 1:
        out.append([proof[0], SOME_HASH, *proof[1:]])
        out.append(list(reversed(proof)))
    return out


def _truncations(proof: list[bytes]) -> list[list[bytes]]:
    return [proof[:cut] for cut in range(len(proof))] + [
        proof[cut:] for cut in range(1, len(proof) + 1)
    ]


# ---- reference vectors ----------------------------------------------------------


def test_reference_roots() -> None:
    assert EMPTY_ROOT.hex() == VECTORS["empty_root"]
    assert root_of([]) == EMPTY_ROOT
    for size in range(1, 9):
        assert root_of(LEAVES[:size]) == ROOTS[size - 1]
        assert _recursive_root(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(
    "vector", VECTORS["inclusion"], ids=lambda v: f"{v['leaf']}-of-{v['size']}"
)
def test_reference_inclusion_proofs(vector: dict[str, object]) -> None:
    index, size = int(vector["leaf"]) - 1, int(vector["size"])  # type: ignore[call-overload]
    proof = [bytes.fromhex(h) for h in vector["proof"]]  # type: ignore[attr-defined]
    assert inclusion_proof(LEAVES[:size], index) == proof
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(
    "vector", VECTORS["consistency"], ids=lambda v: f"{v['size1']}-to-{v['size2']}"
)
def test_reference_consistency_proofs(vector: dict[str, object]) -> None:
    old, new = int(vector["size1"]), int(vector["size2"])  # type: ignore[call-overload]
    proof = [bytes.fromhex(h) for h in vector["proof"]]  # type: ignore[attr-defined]
    assert consistency_proof(LEAVES[:new], old) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


# ---- every valid proof passes -------------------------------------------------------


def test_streaming_root_equals_recursive_root_for_sizes_0_to_300() -> None:
    leaves = _leaves(300)
    builder = MerkleBuilder()
    assert builder.root() == _recursive_root([])
    for size in range(1, 301):
        builder.add(b"leaf %d" % (size - 1))
        assert builder.size == size
        assert builder.root() == _recursive_root(leaves[:size]) == root_of(leaves[:size])


def test_every_inclusion_proof_verifies_for_sizes_1_to_64() -> None:
    leaves = _leaves(64)
    for size in range(1, 65):
        root = root_of(leaves[:size])
        for index in range(size):
            verify_inclusion(
                leaves[index], index, size, inclusion_proof(leaves[:size], index), root
            )


def test_every_consistency_proof_verifies_for_sizes_1_to_64() -> None:
    leaves = _leaves(64)
    roots = [root_of(leaves[:n]) for n in range(65)]
    for new in range(1, 65):
        for old in range(1, new + 1):
            proof = consistency_proof(leaves[:new], old)
            verify_consistency(old, new, roots[old], roots[new], proof)


# ---- corruptions fail -----------------------------------------------------------


def _rejects_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


def _path_shape(index: int, size: int) -> list[bool]:
    """Which side each sibling is on (RFC 6962 PATH); the only thing a size changes."""
    if size <= 1:
        return []
    k = 1
    while k * 2 < size:
        k *= 2
    if index < k:
        return [*_path_shape(index, k), True]
    return [*_path_shape(index - k, size - k), False]


@pytest.mark.parametrize("size", [*range(1, 18), 31, 32, 33])
def test_inclusion_corruptions_fail(size: int) -> None:
    leaves = _leaves(size)
    root = root_of(leaves)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        leaf = leaves[index]
        bad_proofs = _flips(proof) + _truncations(proof) + _paddings(proof, root, leaf)
        for bad in bad_proofs:
            _rejects_inclusion(leaf, index, size, bad, root)
        for other in [*range(-1, size + 2)]:
            if other != index:
                _rejects_inclusion(leaf, other, size, proof, root)
        # A tree size is bound by the signed checkpoint next to the root, not by
        # the proof: only a size with the very same path shape can pass.
        for other_size in range(0, 2 * size + 2):
            if other_size != size and _path_shape(index, other_size) != _path_shape(index, size):
                _rejects_inclusion(leaf, index, other_size, proof, root)
        _rejects_inclusion(leaf, index, size * 2, proof, root)  # one level deeper, always
        for bad_root in _flips([root]):
            _rejects_inclusion(leaf, index, size, proof, bad_root[0])
        for bad_leaf in _flips([leaf])[::7]:
            _rejects_inclusion(bad_leaf[0], index, size, proof, root)
        _rejects_inclusion(leaf, index, size, proof, EMPTY_ROOT)
        _rejects_inclusion(leaf, index, size, proof, b"WrongRoot")
        _rejects_inclusion(b"WrongLeaf", index, size, proof, root)


def test_inclusion_corruptions_of_the_reference_vectors_fail() -> None:
    for vector in VECTORS["inclusion"]:
        index, size = vector["leaf"] - 1, vector["size"]
        proof = [bytes.fromhex(h) for h in vector["proof"]]
        root, leaf = ROOTS[size - 1], LEAVES[index]
        for bad in _flips(proof) + _truncations(proof) + _paddings(proof, root):
            _rejects_inclusion(leaf, index, size, bad, root)
        for other in (index - 1, index + 1, index ^ 2):
            _rejects_inclusion(leaf, other, size, proof, root)
        for other_size in (size * 2, size // 2):
            _rejects_inclusion(leaf, index, other_size, proof, root)


def _rejects_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize("new", [*range(2, 18), 31, 32, 33])
def test_consistency_corruptions_fail(new: int) -> None:
    leaves = _leaves(new)
    roots = [root_of(leaves[:n]) for n in range(new + 1)]
    for old in range(1, new):
        proof = consistency_proof(leaves, old)
        r1, r2 = roots[old], roots[new]
        bad_proofs = _flips(proof) + _truncations(proof) + _paddings(proof, r1, r2) + [[]]
        for bad in bad_proofs:
            _rejects_consistency(old, new, r1, r2, bad)
        for other_old in range(0, new + 2):
            if other_old != old:
                _rejects_consistency(other_old, new, r1, r2, proof)
                _rejects_consistency(other_old, new, roots[min(other_old, new)], r2, proof)
        # As with inclusion, the sizes are bound by the signed checkpoints; a size
        # one level deeper or shallower always changes the proof's shape.
        for other_new in (new * 2, new // 2, old - 1, 0):
            if other_new != new:
                _rejects_consistency(old, other_new, r1, r2, proof)
        for bad_root in _flips([r1]):
            _rejects_consistency(old, new, bad_root[0], r2, proof)
        for bad_root in _flips([r2]):
            _rejects_consistency(old, new, r1, bad_root[0], proof)
        _rejects_consistency(old, new, r2, r1, proof)
        _rejects_consistency(old, new, b"WrongRoot", r2, proof)


def test_consistency_corruptions_of_the_reference_vectors_fail() -> None:
    for vector in VECTORS["consistency"]:
        old, new = vector["size1"], vector["size2"]
        proof = [bytes.fromhex(h) for h in vector["proof"]]
        r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
        for bad in _flips(proof) + _truncations(proof) + _paddings(proof, r1, r2) + [[]]:
            _rejects_consistency(old, new, r1, r2, bad)
        for other_old in (old - 1, old + 1, old ^ 2):
            _rejects_consistency(other_old, new, r1, r2, proof)
        for other_new in (new * 2, new // 2):
            _rejects_consistency(old, other_new, r1, r2, proof)
        _rejects_consistency(old, new, r2, r1, proof)


def test_equal_sizes_and_bad_arguments() -> None:
    leaves = _leaves(5)
    root = root_of(leaves)
    verify_consistency(5, 5, root, root, [])
    _rejects_consistency(5, 5, root, root, [root])
    _rejects_consistency(5, 5, root, EMPTY_ROOT, [])
    _rejects_consistency(0, 5, EMPTY_ROOT, root, [])
    _rejects_consistency(6, 5, root, root, [])
    with pytest.raises(ProofError):
        inclusion_proof(leaves, 5)
    with pytest.raises(ProofError):
        inclusion_proof(leaves, -1)
    with pytest.raises(ProofError):
        consistency_proof(leaves, 0)
    with pytest.raises(ProofError):
        consistency_proof(leaves, 6)
    verify_inclusion(leaves[0], 0, 1, [], leaves[0])
    _rejects_inclusion(leaves[0], 0, 0, [], leaves[0])
    _rejects_inclusion(leaves[0], 0, 1, [], b"")


def test_extend_in_any_batches_equals_leaf_by_leaf() -> None:
    import random

    rng = random.Random(6962)
    leaves = _leaves(3000)
    for _ in range(40):
        builder = MerkleBuilder()
        position = 0
        checkpoints = []
        while position < len(leaves):
            step = rng.choice([1, 2, 3, 7, 64, 255, 256, 1024, 1500, rng.randint(1, 3000)])
            builder.extend(leaves[position : position + step])
            position = min(len(leaves), position + step)
            checkpoints.append(position)
            assert builder.size == position
        assert builder.root() == root_of(leaves)
        for size in checkpoints[:5]:
            partial = MerkleBuilder()
            partial.extend(leaves[:size])
            assert partial.root() == _recursive_root(leaves[:size])


def test_leaf_hashes_match_leaf_hash() -> None:
    items = [b"", b"\x00", b"a" * 5000, b"line"]
    assert leaf_hashes(items) == [leaf_hash(item) for item in items]
