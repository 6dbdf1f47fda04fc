"""ArtifactWriter: lines written a block at a time, on the caller's thread or on a
background one, give exactly the bytes and digests of the records."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor

import pytest

from evidence.domain import artifact
from evidence.domain.artifact import ArtifactWriter
from evidence.domain.canonical import canonicalize
from evidence.domain.merkle import leaf_hashes, root_of


def _records(count: int) -> list[dict[str, object]]:
    return [{"n": i, "text": "é" * (i % 50), "x": i / 7} for i in range(count)]


@pytest.fixture(params=["caller", "background"])
def background(request: pytest.FixtureRequest) -> Iterator[Executor | None]:
    if request.param == "caller":
        yield None
    else:
        with ThreadPoolExecutor(1) as executor:
            yield executor


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks of a few records, so that a short test crosses many block boundaries.
    monkeypatch.setattr(artifact, "BLOCK_BYTES", 300)


def _expected(records: list[dict[str, object]]) -> tuple[bytes, str, bytes]:
    lines = [canonicalize(r) for r in records]
    content = b"".join(line + b"\n" for line in lines)
    return content, hashlib.sha256(content).hexdigest(), root_of(leaf_hashes(lines))


@pytest.mark.usefixtures("small_blocks")
def test_blocks_give_the_bytes_and_digests_of_the_records(background):
    records = _records(500)
    content, sha, root = _expected(records)
    sink = io.BytesIO()
    writer = ArtifactWriter(sink, background=background)
    for record in records:
        writer.add(record)
    assert writer.record_count == 500
    assert writer.bytes_written == len(content)
    assert writer.content_digest().hex == sha
    assert writer.merkle_root().raw == root
    assert sink.getvalue() == content


@pytest.mark.usefixtures("small_blocks")
def test_rewind_across_blocks(background):
    records = _records(200)
    sink = io.BytesIO()
    writer = ArtifactWriter(sink, background=background)
    for record in records[:77]:
        writer.add(record)
    mark = writer.mark()
    for record in _records(120):  # many blocks, then taken back
        writer.add({"dropped": record})
    writer.rewind(mark)
    for record in records[77:]:
        writer.add(record)
    writer.flush()
    content, sha, root = _expected(records)
    assert sink.getvalue() == content
    assert (writer.record_count, writer.bytes_written) == (200, len(content))
    assert writer.content_digest().hex == sha
    assert writer.merkle_root().raw == root


def test_nothing_reaches_the_sink_before_a_block_is_full_or_flushed():
    sink = io.BytesIO()
    writer = ArtifactWriter(sink)
    writer.add({"a": 1})
    assert sink.getvalue() == b""
    writer.flush()
    assert sink.getvalue() == b'{"a":1}\n'


class _FullDisk(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise OSError(28, "No space left on device")


def test_a_failed_block_write_is_raised_and_raised_again(background):
    writer = ArtifactWriter(_FullDisk(), background=background)
    for record in _records(3):  # under a block: nothing written yet
        writer.add(record)
    with pytest.raises(OSError, match="No space"):
        writer.flush()
    # No digest is ever handed out over content that was not written.
    with pytest.raises(OSError, match="No space"):
        writer.content_digest()
    with pytest.raises(OSError, match="No space"):
        writer.merkle_root()
    with pytest.raises(OSError, match="No space"):
        writer.mark()


@pytest.mark.usefixtures("small_blocks")
def test_a_failed_write_in_the_background_surfaces_in_the_caller():
    with ThreadPoolExecutor(1) as executor:
        writer = ArtifactWriter(_FullDisk(), background=executor)
        with pytest.raises(OSError, match="No space"):  # noqa: PT012 (raised by whichever add waits)
            for record in _records(50):
                writer.add(record)
            writer.flush()
        with pytest.raises(OSError, match="No space"):
            writer.flush()
