"""``import.json``: JSON or JSON-lines files imported as records.

For manual evidence (a signed-off checklist, an export from a system with no
API) and the collector the spine is proven with. Each file is a scope. A file
is read twice: once to validate every record (so a malformed file contributes
nothing and is reported with its line), once to yield; its SHA-256 must be the
same both times, or the run fails.

Record: ``{"file": name, "line": n, "data": <the JSON value>}``. Observation:
kind ``import.record`` (or ``observation_kind``), subject from ``subject_field``
of the data when present, else ``file#line``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import ijson
import orjson

from evidence.collectors.base import CollectContext, Collector, CollectorOptions
from evidence.collectors.files._paths import resolve_files
from evidence.domain.observation import Observation
from evidence.errors import CollectorError, InputError


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
            try:
                fmt = self._format(path)
                digest, count = self._validate(path, fmt)
            except InputError as exc:
                ctx.fail_scope(scope, exc.message, code="input-invalid")
                continue
            ctx.query["files"].append({"name": scope, "sha256": digest, "records": count})
            hasher = hashlib.sha256()
            for line, value in _read(path, fmt, hasher):
                yield {"file": scope, "line": line, "data": value}
            ctx.page()
            ctx.scopes[scope].records = count
            if hasher.hexdigest() != digest:
                raise CollectorError(f"{path.name} changed while it was being read", scope=scope)

    def _format(self, path: Path) -> str:
        if self.options.format != "auto":
            return self.options.format
        return "jsonl" if path.suffix.lower() in {".jsonl", ".ndjson"} else "json"

    def _validate(self, path: Path, fmt: str) -> tuple[str, int]:
        hasher = hashlib.sha256()
        count = 0
        for _ in _read(path, fmt, hasher):
            count += 1
        return hasher.hexdigest(), count

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        data = record["data"]
        subject = f"{record['file']}#{record['line']}"
        observed_at = None
        if isinstance(data, dict):
            value = data.get(self.options.subject_field)
            if isinstance(value, str | int) and not isinstance(value, bool):
                subject = str(value)
            if self.options.observed_at_field:
                observed_at = _parse_time(data.get(self.options.observed_at_field))
        attributes = data if isinstance(data, dict) else {"value": data}
        yield Observation(
            kind=self.options.observation_kind,
            subject=subject,
            attributes=attributes,
            observed_at=observed_at,
            scope=record["file"],
            record_index=index,
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
    for number, raw in enumerate(handle, start=1):
        hasher.update(raw)
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"line {number}: not valid JSON ({exc})", where=path.name) from None


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
