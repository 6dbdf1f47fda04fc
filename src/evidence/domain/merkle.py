"""RFC 6962 Merkle trees: roots, inclusion proofs and consistency proofs.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right);
the tree over n leaves splits at the largest power of two below n. The
``MerkleBuilder`` computes a root while leaves stream in, holding only
O(log n) hashes. Verification functions raise ``ProofError``; they never
return a quiet False.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from typing import Protocol

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not prove what it claims."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hashes(items: Iterable[bytes]) -> list[bytes]:
    """``leaf_hash`` of each item (one list comprehension: the hot loop of verification)."""
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + item).digest() for item in items]


# extend() folds blocks of at most 2**MAX_BLOCK_HEIGHT leaves at a time.
MAX_BLOCK_HEIGHT = 10


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleBuilder:
    """Streaming root: add leaf hashes in order, read ``root()`` at any time."""

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        # _stack holds roots of perfect subtrees, largest first, as (height, hash).
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def copy(self) -> MerkleBuilder:
        twin = MerkleBuilder()
        twin._stack = list(self._stack)
        twin.size = self.size
        return twin

    def add_leaf_hash(self, digest: bytes) -> None:
        self._push(0, digest)

    def _push(self, height: int, current: bytes) -> None:
        """Add a perfect subtree of 2**height leaves; the size must be a multiple of that."""
        self.size += 1 << height
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            current = node_hash(left, current)
            height += 1
        self._stack.append((height, current))

    def extend(self, digests: Sequence[bytes]) -> None:
        """``add_leaf_hash`` of each digest in order, level by level where it can.

        A block of 2**h leaves that starts at a multiple of 2**h is a perfect
        subtree of the RFC 6962 tree, so its root is computed with one list
        comprehension per level and pushed as a whole.
        """
        sha256 = hashlib.sha256
        start, count = 0, len(digests)
        while start < count:
            room = count - start
            height = MAX_BLOCK_HEIGHT
            if self.size:
                height = min(height, (self.size & -self.size).bit_length() - 1)
            while (1 << height) > room:
                height -= 1
            level = digests[start : start + (1 << height)]
            for _ in range(height):
                level = [
                    sha256(b"\x01" + level[i] + level[i + 1]).digest()
                    for i in range(0, len(level), 2)
                ]
            self._push(height, level[0])
            start += 1 << height

    def add(self, data: bytes) -> bytes:
        digest = leaf_hash(data)
        self.add_leaf_hash(digest)
        return digest

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        current = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            current = node_hash(left, current)
        return current


class LineTreeLike(Protocol):
    """A Merkle tree over newline-terminated lines, fed in pieces of any size."""

    @property
    def count(self) -> int: ...

    @property
    def pending(self) -> int: ...

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def root(self) -> bytes: ...

    def copy(self) -> LineTreeLike: ...


class PyLineTree:
    """Pure-Python ``LineTree``: each line ending in ``\\n`` is a leaf (without the ``\\n``).

    The native module ``_linetree`` does the same in C without the GIL; this
    class is the fallback where it could not be built, and the reference the
    tests hold it to.
    """

    __slots__ = ("_tail", "_tree")

    def __init__(self) -> None:
        self._tree = MerkleBuilder()
        self._tail = b""

    @property
    def count(self) -> int:
        return self._tree.size

    @property
    def pending(self) -> int:
        return len(self._tail)

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        lines = bytes(data).split(b"\n")
        lines[0] = self._tail + lines[0]
        self._tail = lines.pop()
        self._tree.extend(leaf_hashes(lines))

    def root(self) -> bytes:
        return self._tree.root()

    def copy(self) -> PyLineTree:
        twin = PyLineTree()
        twin._tree = self._tree.copy()
        twin._tail = self._tail
        return twin


def _line_tree_class() -> type[LineTreeLike]:
    """The native tree when it was built, unless $EVIDENCE_PURE_PYTHON asks for Python."""
    if os.environ.get("EVIDENCE_PURE_PYTHON"):
        return PyLineTree
    try:
        from evidence.domain._linetree import LineTree as native
    except ImportError:
        return PyLineTree
    return native


LineTree = _line_tree_class()
NATIVE = LineTree is not PyLineTree


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    builder = MerkleBuilder()
    for digest in leaf_hashes:
        builder.add_leaf_hash(digest)
    return builder.root()


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree over ``leaf_hashes`` (RFC 6962 2.1.1)."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ProofError(f"leaf index {index} is outside a tree of size {n}")
    return _path(index, leaf_hashes)


def _path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return [*_path(index, leaves[:k]), root_of(leaves[k:])]
    return [*_path(index - k, leaves[k:]), root_of(leaves[:k])]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` sits at ``index`` of the tree of ``size`` with ``root``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, current = index, size - 1, leaf
    for sibling in proof:
        if len(sibling) != 32:
            raise ProofError("proof element is not a SHA-256 digest")
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if current != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves form a prefix (RFC 6962 2.1.2)."""
    n = len(leaf_hashes)
    if not 0 < old_size <= n:
        raise ProofError(f"cannot prove size {old_size} against a tree of size {n}")
    return _subproof(old_size, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_of(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root_of(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root_of(leaves[:k])]


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root)."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"sizes {old_size} -> {new_size} cannot be consistent")
    if any(len(p) != 32 for p in proof):
        raise ProofError("proof element is not a SHA-256 digest")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    nodes = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is itself a node
        nodes.insert(0, old_root)
    if not nodes:
        raise ProofError("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
