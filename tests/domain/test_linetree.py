"""The line tree: Merkle root over newline-terminated lines, native and pure Python.

Both routes are held to the RFC 6962 vectors and to the leaf-by-leaf
``MerkleBuilder``, fed in pieces cut anywhere (inside a line, on a newline,
empty pieces), so that where a chunk boundary falls never changes a root.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.domain.merkle import EMPTY_ROOT, NATIVE, LineTreeLike, PyLineTree, leaf_hash, root_of
from realparts import need

VECTORS = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "merkle" / "rfc6962.json").read_text()
)


try:
    from evidence.domain._linetree import LineTree as NativeLineTree
except ImportError:
    NativeLineTree = None


def _native_class() -> type[LineTreeLike]:
    if NativeLineTree is None:
        need("evidence.domain._linetree was not built (no compiler or no OpenSSL headers)")
    return NativeLineTree


@pytest.fixture(params=["python", "native"])
def tree_class(request: pytest.FixtureRequest) -> type[LineTreeLike]:
    return PyLineTree if request.param == "python" else _native_class()


def test_the_native_module_is_built_here() -> None:
    """These machines have gcc and OpenSSL headers: the install must have built it."""
    _native_class()
    assert NATIVE or os.environ.get("EVIDENCE_PURE_PYTHON")


def test_rfc6962_vectors(tree_class: type[LineTreeLike]) -> None:
    leaves = [bytes.fromhex(h) for h in VECTORS["leaves"]]
    assert not any(b"\n" in leaf for leaf in leaves)
    tree = tree_class()
    assert tree.root() == EMPTY_ROOT == bytes.fromhex(VECTORS["empty_root"])
    for size, leaf in enumerate(leaves, start=1):
        tree.update(leaf + b"\n")
        assert tree.count == size
        assert tree.root().hex() == VECTORS["roots"][size - 1]


def test_an_unterminated_line_is_pending_not_a_leaf(tree_class: type[LineTreeLike]) -> None:
    tree = tree_class()
    tree.update(b"one\ntw")
    assert (tree.count, tree.pending) == (1, 2)
    assert tree.root() == leaf_hash(b"one")
    tree.update(b"o\n")
    assert (tree.count, tree.pending) == (2, 0)
    assert tree.root() == root_of([leaf_hash(b"one"), leaf_hash(b"two")])


def test_empty_lines_are_leaves(tree_class: type[LineTreeLike]) -> None:
    tree = tree_class()
    tree.update(b"\n\n")
    assert tree.count == 2
    assert tree.root() == root_of([leaf_hash(b""), leaf_hash(b"")])


def test_it_takes_any_buffer(tree_class: type[LineTreeLike]) -> None:
    data = b"alpha\nbeta\ngamma\n"
    roots = set()
    for piece in (data, bytearray(data), memoryview(data)):
        tree = tree_class()
        tree.update(piece)
        roots.add(tree.root())
    assert len(roots) == 1


def test_the_native_tree_refuses_what_is_not_bytes() -> None:
    tree = _native_class()()
    with pytest.raises(TypeError):
        tree.update("text")  # type: ignore[arg-type]


cut_points = st.lists(st.integers(min_value=0), max_size=12)
lines = st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")), max_size=300)


@settings(max_examples=150, deadline=None)
@given(lines=lines, cuts=cut_points, tail=st.binary(max_size=9))
def test_both_routes_agree_with_the_leaf_by_leaf_tree(
    lines: list[bytes], cuts: list[int], tail: bytes
) -> None:
    tail = tail.replace(b"\n", b"")
    data = b"".join(line + b"\n" for line in lines) + tail
    expected = root_of([leaf_hash(line) for line in lines])
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    trees: list[LineTreeLike] = [PyLineTree()]
    if NativeLineTree is not None:  # its absence is reported by the tests above
        trees.append(NativeLineTree())
    for tree in trees:
        view = memoryview(data)
        for start, end in itertools.pairwise(points):
            tree.update(view[start:end])
        tree.update(b"")
        assert tree.root() == expected
        assert (tree.count, tree.pending) == (len(lines), len(tail))


def test_large_trees_agree(tree_class: type[LineTreeLike]) -> None:
    """Sizes around powers of two, where the stack of subtrees folds."""
    for size in (1023, 1024, 1025, 4097):
        data = b"".join(b"record %d\n" % i for i in range(size))
        tree = tree_class()
        for start in range(0, len(data), 4093):
            tree.update(data[start : start + 4093])
        assert tree.root() == root_of([leaf_hash(b"record %d" % i) for i in range(size)])


def test_threads_hash_separate_trees_at_once() -> None:
    """update() runs without the GIL: trees on several threads must not mix."""
    native = _native_class()
    data = b"".join(b"line %d of a long enough record\n" % i for i in range(20_000))
    expected = root_of([leaf_hash(line) for line in data.split(b"\n")[:-1]])
    roots: list[bytes] = []

    def work() -> None:
        tree = native()
        for start in range(0, len(data), 65_536):
            tree.update(data[start : start + 65_536])
        roots.append(tree.root())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert roots == [expected] * 4


@pytest.mark.parametrize(("value", "expected"), [("1", "PyLineTree"), ("", "native")])
def test_evidence_pure_python_selects_the_route(value: str, expected: str) -> None:
    code = "from evidence.domain import merkle; print(merkle.LineTree.__name__, merkle.NATIVE)"
    env = {**os.environ, "EVIDENCE_PURE_PYTHON": value}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    if expected == "native":
        _native_class()
        assert out == ["LineTree", "True"]
    else:
        assert out == ["PyLineTree", "False"]


def test_a_copy_goes_on_independently(tree_class: type[LineTreeLike]) -> None:
    tree = tree_class()
    tree.update(b"a\nb\nhalf")
    saved = tree.copy()
    tree.update(b" a line\nc\n")
    assert (saved.count, saved.pending) == (2, 4)
    assert saved.root() == root_of([leaf_hash(b"a"), leaf_hash(b"b")])
    saved.update(b"\n")
    assert saved.root() == root_of([leaf_hash(x) for x in (b"a", b"b", b"half")])
    assert tree.root() == root_of([leaf_hash(x) for x in (b"a", b"b", b"half a line", b"c")])
