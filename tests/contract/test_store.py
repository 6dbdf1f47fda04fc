"""One contract, every store backend: write-once puts, reads, listing, bad keys."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from evidence.errors import NotFound, StoreError, WriteOnceViolation
from evidence.store import EvidenceStore, FilesystemStore, MemoryStore


@pytest.fixture(params=["filesystem", "memory"])
def store(request, tmp_path) -> EvidenceStore:
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "store")
    return MemoryStore()


def test_put_then_get(store):
    assert store.put("content/ab/one.jsonl", b"hello\n") is True
    assert store.get("content/ab/one.jsonl") == b"hello\n"
    with store.open("content/ab/one.jsonl") as handle:
        assert handle.read() == b"hello\n"
    assert store.exists("content/ab/one.jsonl")


def test_put_same_bytes_is_a_no_op(store):
    store.put("a/b.json", b"{}")
    assert store.put("a/b.json", b"{}") is False
    assert store.get("a/b.json") == b"{}"


def test_put_different_bytes_is_refused(store):
    store.put("a/b.json", b"{}")
    with pytest.raises(WriteOnceViolation):
        store.put("a/b.json", b"[]")
    assert store.get("a/b.json") == b"{}"


def test_put_file(store, tmp_path):
    source = tmp_path / "spool.jsonl"
    source.write_bytes(b"x" * (3 * 1024 * 1024 + 5))
    assert store.put_file("content/big.jsonl", source) is True
    assert store.get("content/big.jsonl") == source.read_bytes()
    assert store.put_file("content/big.jsonl", source) is False
    other = tmp_path / "other.jsonl"
    other.write_bytes(b"x" * (3 * 1024 * 1024 + 4) + b"y")
    with pytest.raises(WriteOnceViolation):
        store.put_file("content/big.jsonl", other)
    assert store.get("content/big.jsonl") == source.read_bytes()


def test_put_bytes_then_put_file_with_different_bytes(store, tmp_path):
    store.put("k/v", b"one")
    source = tmp_path / "f"
    source.write_bytes(b"two")
    with pytest.raises(WriteOnceViolation):
        store.put_file("k/v", source)


def test_missing_key_is_not_found(store):
    with pytest.raises(NotFound):
        store.get("nope/nothing")
    with pytest.raises(NotFound):
        store.open("nope/nothing")
    assert store.exists("nope/nothing") is False
    assert isinstance(NotFound("x"), StoreError)


def test_list_with_prefix(store):
    for key in ("ledger/entries/000000000000.json", "ledger/checkpoints/000000000001.json", "x/y"):
        store.put(key, b"1")
    assert sorted(store.list()) == [
        "ledger/checkpoints/000000000001.json",
        "ledger/entries/000000000000.json",
        "x/y",
    ]
    assert list(store.list("ledger/entries/")) == ["ledger/entries/000000000000.json"]
    assert list(store.list("none/")) == []


def test_empty_store_lists_nothing(store):
    assert list(store.list()) == []


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "../up", "A/upper", "a//b", "a/", "sp ace", "a/.hidden", "ü"]
)
def test_invalid_keys_are_rejected(store, key):
    with pytest.raises(StoreError):
        store.put(key, b"x")
    with pytest.raises(StoreError):
        store.get(key)


def test_writable_check(store):
    assert "writable" in store.check_writable()


# ---- filesystem specifics -------------------------------------------------------------
def test_filesystem_files_are_read_only(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    store.put("a/b", b"1")
    source = tmp_path / "src"
    source.write_bytes(b"2")
    store.put_file("a/c", source)
    for name in ("b", "c"):
        mode = stat.S_IMODE((tmp_path / "store" / "a" / name).stat().st_mode)
        assert mode & 0o222 == 0, oct(mode)


def test_filesystem_takes_a_handed_over_file_in_place(tmp_path):
    """On the same file system the spool itself becomes the stored file: no copy."""
    store = FilesystemStore(tmp_path / "store")
    spool = tmp_path / "outbox" / "run.jsonl"
    spool.parent.mkdir()
    spool.write_bytes(b'{"a":1}\n' * 1000)
    assert store.put_file("content/ab/run.jsonl", spool) is True
    stored = tmp_path / "store" / "content" / "ab" / "run.jsonl"
    assert stored.stat().st_ino == spool.stat().st_ino
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    spool.unlink()  # what publishing does next: the store keeps the only name
    assert store.get("content/ab/run.jsonl") == b'{"a":1}\n' * 1000
    assert list(store.list("content/")) == ["content/ab/run.jsonl"]
    assert not list((tmp_path / "store").rglob(".tmp-*"))


def test_filesystem_copies_a_file_from_another_file_system(tmp_path):
    elsewhere = Path("/dev/shm")
    if not elsewhere.is_dir() or elsewhere.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to hand a file over from")
    store = FilesystemStore(tmp_path / "store")
    with tempfile.NamedTemporaryFile(dir=elsewhere) as handle:
        handle.write(b"x" * 70_000)
        handle.flush()
        assert store.put_file("content/cd/run.jsonl", Path(handle.name)) is True
        stored = tmp_path / "store" / "content" / "cd" / "run.jsonl"
        assert stored.stat().st_ino != os.stat(handle.name).st_ino
        assert stored.read_bytes() == b"x" * 70_000
        assert stat.S_IMODE(stored.stat().st_mode) == 0o444


def test_filesystem_leaves_no_partial_file_under_a_final_name(tmp_path):
    """A put that fails midway (here: the source vanishes) leaves nothing visible."""
    store = FilesystemStore(tmp_path / "store")
    with pytest.raises((StoreError, OSError)):
        store.put_file("a/missing", tmp_path / "does-not-exist")
    assert not store.exists("a/missing")
    assert list(store.list()) == []
    leftovers = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert leftovers == []


def test_filesystem_ignores_temporary_files(tmp_path):
    """What a crash mid-put leaves (a .tmp- file) is never listed as a key."""
    store = FilesystemStore(tmp_path / "store")
    store.put("a/b", b"1")
    (tmp_path / "store" / "a" / ".tmp-crashed").write_bytes(b"half")
    assert list(store.list()) == ["a/b"]


def test_filesystem_put_does_not_follow_a_replaced_file(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    store.put("a/b", b"1")
    path = tmp_path / "store" / "a" / "b"
    os.chmod(path, 0o644)
    path.write_bytes(b"2")  # tampered behind the store's back
    with pytest.raises(WriteOnceViolation):
        store.put("a/b", b"1")


def test_filesystem_store_root_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = FilesystemStore(blocker / "store")
    with pytest.raises(StoreError):
        store.put("a/b", b"1")
    with pytest.raises(StoreError):
        store.check_writable()


def test_memory_tamper_hooks():
    store = MemoryStore()
    store.put("a/b", b"1")
    store.tamper_replace("a/b", b"2")
    assert store.get("a/b") == b"2"
    store.tamper_delete("a/b")
    assert not store.exists("a/b")
    store.tamper_add("c/d", b"3")
    assert list(store.list()) == ["c/d"]


def test_filesystem_open_unreadable_is_store_error(tmp_path):
    store = FilesystemStore(tmp_path / "store")
    (tmp_path / "store" / "a" / "dir").mkdir(parents=True)
    with pytest.raises(StoreError):
        store.get("a/dir")
    with pytest.raises(StoreError):
        store.open("a/dir")
    assert isinstance(Path, type)
