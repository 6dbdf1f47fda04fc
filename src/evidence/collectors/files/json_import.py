"""``import.json``: JSON or JSON-lines files imported as records.

For manual evidence (a signed-off checklist, an export from a system with no
API) and the collector the spine is proven with. Each file is a scope, read and
parsed once: its records are handed on as they are parsed, and a file found
malformed on any line is discarded as a whole (``ctx.discard_scope`` takes back
what it yielded), so it contributes nothing and is reported with its line.

Record: ``{"file": name, "line": n, "data": <the JSON value>}``. Observation:
kind ``import.record`` (or ``observation_kind``), subject from ``subject_field``
of the data when present, else ``file#line``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import ijson
import orjson

from evidence.collectors.base import CollectContext, Collector, CollectorOptions
from evidence.collectors.files._paths import resolve_files
from evidence.domain.observation import Observation
from evidence.errors import InputError

READ_CHUNK = 8 * 1024 * 1024


class JsonImportOptions(CollectorOptions):
    path: str
    format: Literal["auto", "json", "jsonl"] = "auto"
    observation_kind: str = "import.record"
    subject_field: str = "id"
    observed_at_field: str = ""


class JsonImportCollector(Collector):
    kind: ClassVar[str] = "import.json"
    version: ClassVar[str] = "1.0"
    options_model = JsonImportOptions
    observation_kinds = ("import.record",)
    options: JsonImportOptions

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        files = resolve_files(self.options.path, self.env.base_dir)
        ctx.query["files"] = []
        for path in files:
            scope = path.name
            ctx.start_scope(scope)
            hasher = hashlib.sha256()
            count = 0
            try:
                for line, value in _read(path, self._format(path), hasher):
                    yield {"file": scope, "line": line, "data": value}
                    count += 1
            except InputError as exc:
                ctx.discard_scope(scope, exc.message, code="input-invalid")
                continue
            digest = hasher.hexdigest()
            ctx.query["files"].append({"name": scope, "sha256": digest, "records": count})
            ctx.page()
            ctx.scopes[scope].records = count

    def _format(self, path: Path) -> str:
        if self.options.format != "auto":
            return self.options.format
        return "jsonl" if path.suffix.lower() in {".jsonl", ".ndjson"} else "json"

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        # Called once per record of an import: a tuple, not a generator, and the
        # file#line subject only built when the data names none.
        data = record["data"]
        options = self.options
        subject: str | None = None
        observed_at = None
        if isinstance(data, dict):
            value = data.get(options.subject_field)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                subject = str(value)
            if options.observed_at_field:
                observed_at = _parse_time(data.get(options.observed_at_field))
        if subject is None:
            subject = f"{record['file']}#{record['line']}"
        attributes = data if isinstance(data, dict) else {"value": data}
        return (
            Observation(
                kind=options.observation_kind,
                subject=subject,
                attributes=attributes,
                observed_at=observed_at,
                scope=record["file"],
                record_index=index,
            ),
        )


def _read(path: Path, fmt: str, hasher: Any) -> Iterator[tuple[int, Any]]:
    """(line or item number, value) pairs; ``InputError`` names the file and place."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path.name}: {exc.strerror}", where=str(path)) from None
    with handle:
        if fmt == "jsonl":
            yield from _read_lines(path, handle, hasher)
        else:
            yield from _read_document(path, handle, hasher)


def _read_lines(path: Path, handle: Any, hasher: Any) -> Iterator[tuple[int, Any]]:
    """Lines in large reads (the hot loop of an import: no per-line read call).

    A file of more than one chunk is hashed on a thread of its own, a chunk at a
    time and in order, while the lines of the chunk before are parsed here:
    SHA-256 of a large buffer runs without the GIL. Chunks are large so that the
    thread needs the GIL (to take a chunk, and to hand back) only rarely."""
    number = 0
    tail = b""
    loads = orjson.loads
    with contextlib.ExitStack() as stack:
        hashing: ThreadPoolExecutor | None = None
        hashed: Future[None] | None = None
        while True:
            chunk = handle.read(READ_CHUNK)
            if hashed is not None:
                hashed.result()
            if hashing is None and len(chunk) == READ_CHUNK:
                hashing = stack.enter_context(ThreadPoolExecutor(1, "import-hash"))
            if hashing is None:
                hasher.update(chunk)
            else:
                hashed = hashing.submit(hasher.update, chunk)
            lines = chunk.split(b"\n")
            lines[0] = tail + lines[0]  # not tail + chunk: that copies the whole chunk
            tail = lines.pop() if chunk else b""
            for raw in lines:
                number += 1
                if not raw.strip():
                    continue
                try:
                    value = loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise InputError(
                        f"line {number}: not valid JSON ({exc})", where=path.name
                    ) from None
                yield number, value
            if not chunk:
                if hashed is not None:
                    hashed.result()
                return


class _HashingReader:
    """Feeds what ijson reads into the file hash as it goes."""

    def __init__(self, handle: Any, hasher: Any) -> None:
        self._handle, self._hasher = handle, hasher

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._handle.read(size)
        self._hasher.update(data)
        return data


def _read_document(path: Path, handle: Any, hasher: Any) -> Iterator[tuple[int, Any]]:
    head = handle.read(4096)
    handle.seek(0)
    stripped = head.lstrip()
    if not stripped:
        raise InputError("the file is empty", where=path.name)
    reader = _HashingReader(handle, hasher)
    try:
        if stripped[:1] == b"[":
            yield from enumerate(ijson.items(reader, "item", use_float=True), 1)
        else:
            values = list(ijson.items(reader, "", use_float=True, multiple_values=False))
            yield 1, values[0]
    except (ijson.JSONError, ijson.IncompleteJSONError, ValueError) as exc:
        raise InputError(f"not valid JSON ({exc})", where=path.name) from None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None
