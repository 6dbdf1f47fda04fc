"""Artifacts: a run's records as canonical JSON lines, and the envelope that names them.

``ArtifactWriter`` streams records to a file object it is handed, one canonical
line each, while it keeps the SHA-256 of the content and the RFC 6962 Merkle
root over per-record leaves. It never holds more than a block of a run in
memory. ``mark()`` and ``rewind()`` take back the records written since a mark
(a scope that turned out bad halfway contributes nothing). The envelope's
canonical bytes hash to the artifact's identity.

Lines are gathered into blocks of ``BLOCK_BYTES``; each block is hashed (both
hashes) and written as one. Given an executor, the writer does that on the
executor's thread while the caller gathers the next block: the hashes and the
write run without the GIL, so on a second core they cost the caller almost
nothing. Blocks are large because that thread needs the GIL to start and end
each one, and each time it waits for the caller's thread to let go of it. At
most one block is in flight.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import IO, Any

from evidence.domain.canonical import canonicalize
from evidence.domain.digest import Digest
from evidence.domain.merkle import LineTree, LineTreeLike

ENVELOPE_SCHEMA = "evidence.envelope/1"
MAX_RECORD_BYTES = 16 * 1024 * 1024
BLOCK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class WriterMark:
    """Where an ``ArtifactWriter`` stood: enough to take back what came after."""

    bytes_written: int
    content: Any  # a copy of the content's hashlib object
    tree: LineTreeLike


class ArtifactWriter:
    """Write canonical lines to ``sink`` (seekable, from its start); read the digests when done.

    What was added reaches ``sink`` a block at a time: ``flush()`` (or reading a
    digest) puts all of it there. ``background``: an executor to hash and write
    the blocks on (see the module docstring); without one, the caller's thread
    does. Once a write has failed (a full disk), every later call that waits for
    the blocks raises that error: no digest is handed out over content that was
    not all written."""

    def __init__(
        self,
        sink: IO[bytes],
        *,
        max_record_bytes: int = MAX_RECORD_BYTES,
        background: Executor | None = None,
    ) -> None:
        self._sink = sink
        self._content = hashlib.sha256()
        self._tree = LineTree()  # leaves are the lines: it is fed what is written
        self._background = background
        self._in_flight: Future[None] | None = None
        self._failed: OSError | None = None
        self._block: list[bytes] = []
        self._block_bytes = 0
        self.max_record_bytes = max_record_bytes
        self.bytes_written = 0  # including the block not yet written
        self.record_count = 0

    def add(self, record: Any) -> bytes:
        """Append one record; return its canonical bytes (without the newline)."""
        line = canonicalize(record)
        self.add_canonical(line)
        return line

    def add_canonical(self, line: bytes) -> None:
        size = len(line)
        if size > self.max_record_bytes:
            from evidence.errors import InputError

            raise InputError(
                f"record {self.record_count + 1} is {size} bytes, over the limit of "
                f"{self.max_record_bytes}",
                remedy="split it, or raise [collect] max_record_bytes",
            )
        self._block.append(line)
        self._block_bytes += size + 1
        self.bytes_written += size + 1
        self.record_count += 1
        if self._block_bytes >= BLOCK_BYTES:
            self._hand_on()

    def flush(self) -> None:
        """Hash and write everything added so far, and wait until that is done."""
        self._hand_on()
        self._wait()

    def mark(self) -> WriterMark:
        """The writer's state now, for ``rewind`` (O(log n): the tree keeps log n hashes)."""
        self.flush()  # so that the hashes and the tree hold every record added
        return WriterMark(self.bytes_written, self._content.copy(), self._tree.copy())

    def rewind(self, mark: WriterMark) -> None:
        """Take back every record written since ``mark``: the sink, hashes and count."""
        self._wait()
        self._block, self._block_bytes = [], 0
        self._sink.seek(mark.bytes_written)
        self._sink.truncate()
        self.bytes_written = mark.bytes_written
        self._content = mark.content.copy()
        self._tree = mark.tree.copy()
        self.record_count = self._tree.count

    def content_digest(self) -> Digest:
        self.flush()
        return Digest(self._content.hexdigest())

    def merkle_root(self) -> Digest:
        self.flush()
        return Digest.from_bytes(self._tree.root())

    def _hand_on(self) -> None:
        if not self._block:
            return
        self._block.append(b"")  # so that the join ends the last line too
        block = b"\n".join(self._block)
        self._block, self._block_bytes = [], 0
        self._wait()  # the block before is done: one in flight at most
        if self._background is None:
            self._absorb(block)
        else:
            self._in_flight = self._background.submit(self._absorb, block)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()
        if self._failed is not None:
            raise self._failed

    def _absorb(self, block: bytes) -> None:
        self._tree.update(block)
        self._content.update(block)
        try:
            self._sink.write(block)
        except OSError as exc:
            self._failed = exc
            raise


@dataclass(frozen=True)
class Envelope:
    """What a run collected, from where, how, and the hashes that pin it down."""

    source: str
    collector: str
    collector_version: str
    run_id: str
    started_at: str
    finished_at: str
    status: str
    record_count: int
    page_count: int
    content_sha256: str
    merkle_root: str
    content_bytes: int
    query: dict[str, Any] = field(default_factory=dict)
    scopes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    schema: str = ENVELOPE_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "source": self.source,
            "collector": self.collector,
            "collector_version": self.collector_version,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "record_count": self.record_count,
            "page_count": self.page_count,
            "content_sha256": self.content_sha256,
            "merkle_root": self.merkle_root,
            "content_bytes": self.content_bytes,
            "query": self.query,
            "scopes": self.scopes,
            "errors": self.errors,
            "provenance": self.provenance,
        }

    def canonical(self) -> bytes:
        return canonicalize(self.to_json())

    def digest(self) -> Digest:
        return Digest.of(self.canonical())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Envelope:
        """Rebuild from parsed JSON; raises KeyError/TypeError when fields are missing."""
        return cls(
            schema=str(data["schema"]),
            source=str(data["source"]),
            collector=str(data["collector"]),
            collector_version=str(data["collector_version"]),
            run_id=str(data["run_id"]),
            started_at=str(data["started_at"]),
            finished_at=str(data["finished_at"]),
            status=str(data["status"]),
            record_count=int(data["record_count"]),
            page_count=int(data["page_count"]),
            content_sha256=str(data["content_sha256"]),
            merkle_root=str(data["merkle_root"]),
            content_bytes=int(data["content_bytes"]),
            query=dict(data.get("query") or {}),
            scopes=list(data.get("scopes") or []),
            errors=list(data.get("errors") or []),
            provenance=dict(data.get("provenance") or {}),
        )
