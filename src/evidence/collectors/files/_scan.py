"""What the scanner-file collectors (trivy, grype, sarif, gitleaks) share.

One file at a time, in name order:

1. hash it; a file whose SHA-256 an earlier run of this source already took in
   is skipped (listed in the envelope's ``query.skipped``), so re-collecting a
   folder of old reports adds nothing and cannot resurrect fixed findings;
2. parse it once, streaming (``_stream.split_document``): the finding arrays go
   to a spool file item by item, secret values dropped on the way, the rest is
   kept as a small skeleton;
3. build the records from skeleton + items into a second spool, checking every
   finding normalizes; a syntax error, a truncated file or a shape the format
   does not allow stops here, and the file's scope fails with its name and the
   reason: nothing of that file is yielded, nothing else is lost;
4. yield the records. Findings are grouped by scan (``scanner|target``), which
   is also their observation scope: a later report of the same target closes
   the findings it no longer lists, and only those.

Record: ``{"type": "finding"|"report", "format", "file", "file_sha256",
"scan": {scanner, scanner_version, db_version, target, artifact_digest,
generated_at}, ...}``; findings add the scanner's own item (minus secrets) and
what it needs from its context; reports add ``finding_counts`` and metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson
from pydantic import Field, field_validator

from evidence.collectors.base import CollectContext, Collector, CollectorOptions
from evidence.collectors.files._inputs import BlobLocation, InputFile, list_inputs
from evidence.collectors.files._normalize import SEVERITIES, parse_time
from evidence.collectors.files._stream import split_document
from evidence.domain.observation import Observation
from evidence.errors import CollectorError, InputError

# Scope used when a run takes in no new file: it succeeds, so the run is not
# failed, and it holds no observations, so nothing else is closed.
NO_NEW_FILES = "no-new-files"


class ScanOptions(CollectorOptions):
    path: str | list[str] = Field(
        description="file, folder, glob, or az://account/container/prefix/"
    )
    target: str = Field(
        default="",
        description="what was scanned, for files that do not say (gitleaks JSON, SARIF without "
        "versionControlProvenance); keeps findings comparable across report files",
    )
    skip_ingested: bool = True
    blob_account_url: str = Field(
        default="", description="default https://<account>.blob.core.windows.net"
    )
    blob_connection_string_env: str = Field(
        default="", description="environment variable with a storage connection string (Azurite)"
    )

    @field_validator("path")
    @classmethod
    def _some_path(cls, value: str | list[str]) -> str | list[str]:
        if not value or (
            isinstance(value, list) and not all(isinstance(v, str) and v for v in value)
        ):
            raise ValueError("name at least one file, folder, glob or az:// prefix")
        return value

    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


@dataclass(frozen=True)
class ScanFile:
    name: str
    sha256: str
    format: str


@dataclass
class Item:
    prefix: str
    where: tuple[int, ...]
    index: int
    value: Any


@dataclass
class _ScanTally:
    scan: dict[str, Any]
    metadata: dict[str, Any]
    counts: dict[str, int] = field(default_factory=lambda: _zero_counts())


def _zero_counts() -> dict[str, int]:
    return {**dict.fromkeys(SEVERITIES, 0), "suppressed": 0, "secrets": 0, "total": 0}


def scan_context(
    *,
    scanner: str,
    scanner_version: str = "",
    db_version: str = "",
    target: str,
    artifact_digest: str = "",
    generated_at: str | None = None,
) -> dict[str, Any]:
    return {
        "scanner": scanner or "unknown",
        "scanner_version": scanner_version,
        "db_version": db_version,
        "target": target,
        "artifact_digest": artifact_digest,
        "generated_at": generated_at,
    }


def scope_of(scan: dict[str, Any]) -> str:
    return bounded(f"{scan['scanner']}|{scan['target']}", SCOPE_LIMIT)


# The database keeps subjects up to 1000 characters and scopes up to 500; longer ones
# (deep paths, long image references) keep their start and a hash of the whole, so
# they stay unique and stable across runs.
SUBJECT_LIMIT, SCOPE_LIMIT = 1000, 500


def bounded_join(parts: list[str]) -> str:
    """A subject from its parts, ``|``-joined and bounded."""
    return bounded("|".join(parts))


def bounded(text: str, limit: int = SUBJECT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{text[: limit - 72]}~sha256:{digest}"


class ScanFileCollector(Collector):
    """Base for scanner-file collectors; subclasses describe their format."""

    version: ClassVar[str] = "1.0"
    options_model = ScanOptions
    options: ScanOptions
    # ijson prefixes of the finding arrays' items, read one at a time.
    streamed: ClassVar[frozenset[str]] = frozenset()
    # Keys whose values are skipped while the file is parsed (never built, never written
    # anywhere): secret values.
    secret_keys: ClassVar[frozenset[str]] = frozenset()
    # Scanners name packages and files, not people; e-mail addresses anywhere are
    # pseudonymized by the service all the same. gitleaks adds commit authors.
    personal_keys: ClassVar[frozenset[str]] = frozenset()

    # ---- what a format provides -------------------------------------------------------
    @abstractmethod
    def build(
        self, skeleton: Any, items: Iterator[Item], file: ScanFile
    ) -> Iterator[dict[str, Any]]:
        """Records of ``type`` ``finding`` (with ``scan``) and ``scan`` (declares one scan
        and its ``metadata``, even when it has no findings). Raise InputError on a shape
        the format does not allow."""

    @abstractmethod
    def observe_finding(self, record: dict[str, Any]) -> Observation:
        """The observation of one finding record."""

    def keep(self, prefix: str, value: Any) -> Any:
        """What of one streamed item is kept (default: all of it; None drops it)."""
        return value

    # ---- the shared flow -------------------------------------------------------------
    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        inputs = list_inputs(self.options.paths(), self.env.base_dir, blob_client=self._container)
        ctx.query["files"] = []
        ctx.query["skipped"] = []
        for source in inputs:
            yield from self._collect_file(ctx, source)
        if not ctx.ok_scopes() and (ctx.query["skipped"] or not ctx.scopes):
            # Files seen before are unchanged evidence: with new files failing the run
            # is partial, not failed; with no new file at all it is complete.
            ctx.start_scope(NO_NEW_FILES)

    def _collect_file(self, ctx: CollectContext, source: InputFile) -> Iterator[Any]:
        with contextlib.ExitStack() as stack:
            try:
                path = stack.enter_context(source.local())
                digest = _sha256_file(path)
                if self.options.skip_ingested and digest in ctx.ingested:
                    ctx.query["skipped"].append(
                        {"name": source.name, "sha256": digest, "reason": "already ingested"}
                    )
                    return
                work = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="evidence-scan-"))
                )
                file = ScanFile(source.name, digest, self.kind)
                scopes = self._prepare(path, file, work)
            except InputError as exc:
                ctx.fail_scope(source.name, f"{source.name}: {exc.message}", code="input-invalid")
                return
            except OSError as exc:
                reason = exc.strerror or str(exc)
                ctx.fail_scope(
                    source.name, f"{source.name}: cannot read: {reason}", code="input-unreadable"
                )
                return
            for scope, count in scopes.items():
                ctx.start_scope(scope)
                ctx.scopes[scope].records += count
            ctx.query["files"].append(
                {"name": source.name, "sha256": digest, "scans": sorted(scopes)}
            )
            with (work / "records.jsonl").open("rb") as records:
                for line in records:
                    yield orjson.loads(line)
            # Only a file yielded to the end counts as taken in.
            ctx.take_file(source.name, digest)
            ctx.page()

    def _prepare(self, path: Path, file: ScanFile, work: Path) -> dict[str, int]:
        """Passes 1 and 2: parse into an item spool, build records into a record spool.
        Returns records per scope. Raises InputError for a file that is not usable."""
        items_path = work / "items.jsonl"
        with path.open("rb") as handle, items_path.open("wb") as spool:

            def sink(prefix: str, where: tuple[int, ...], index: int, value: Any) -> None:
                kept = self.keep(prefix, value)
                if kept is not None:
                    # orjson escapes control characters, so a tab never occurs inside JSON.
                    head = orjson.dumps([prefix, where, index])
                    spool.write(head + b"\t" + orjson.dumps(kept) + b"\n")

            skeleton, digest = split_document(
                handle, file.name, self.streamed, sink, drop=self.secret_keys
            )
        if digest != file.sha256:
            raise InputError("the file changed while it was being read", where=file.name)
        with items_path.open("rb") as items, (work / "records.jsonl").open("wb") as out:
            scopes = self._write_records(skeleton, _read_items(items), file, out)
        items_path.unlink()
        return scopes

    def _write_records(
        self, skeleton: Any, items: Iterator[Item], file: ScanFile, out: IO[bytes]
    ) -> dict[str, int]:
        tallies: dict[str, _ScanTally] = {}
        scopes: dict[str, int] = {}
        base = {"format": file.format, "file": file.name, "file_sha256": file.sha256}
        for record in self.build(skeleton, items, file):
            scan = record["scan"]
            scope = scope_of(scan)
            tally = tallies.setdefault(scope, _ScanTally(scan=scan, metadata={}))
            if record["type"] == "scan":
                tally.metadata = record.get("metadata") or {}
                continue
            observation = self.observe_finding({**base, **record})
            _count(tally.counts, observation)
            out.write(orjson.dumps({**base, **record}) + b"\n")
            scopes[scope] = scopes.get(scope, 0) + 1
        for scope, tally in tallies.items():
            report = {
                **base,
                "type": "report",
                "scan": tally.scan,
                "finding_counts": tally.counts,
                "metadata": tally.metadata,
            }
            out.write(orjson.dumps(report) + b"\n")
            scopes[scope] = scopes.get(scope, 0) + 1
        if not tallies:
            raise InputError("no scan found in the file", where=file.name)
        return scopes

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        if record.get("type") == "report":
            scan = record["scan"]
            yield Observation(
                kind="scan.report",
                subject=scope_of(scan),
                attributes={
                    "scanner": scan["scanner"],
                    "scanner_version": scan["scanner_version"],
                    "target": scan["target"],
                    "file_sha256": record["file_sha256"],
                    "finding_counts": record["finding_counts"],
                    "generated_at": scan["generated_at"],
                },
                observed_at=parse_time(scan["generated_at"]),
                scope=scope_of(scan),
            )
        else:
            yield self.observe_finding(record)

    # ---- blob access -------------------------------------------------------------------
    def _container(self, where: BlobLocation) -> Any:
        from azure.storage.blob import ContainerClient

        env_name = self.options.blob_connection_string_env
        if env_name:
            conn = os.environ.get(env_name)
            if not conn:
                raise CollectorError(
                    f"environment variable {env_name} (blob_connection_string_env) is not set",
                    scope=where.container,
                )
            client = ContainerClient.from_connection_string(conn, where.container)
            if client.account_name != where.account:
                raise CollectorError(
                    f"the connection string in {env_name} is for account {client.account_name!r}, "
                    f"the path names {where.account!r}",
                    scope=where.container,
                )
            return client
        from evidence.collectors.azure._auth import open_access

        # The run's Azure identity from [azure] (managed identity in production).
        factory = self.env.credential_factory
        injected = factory() if factory else self.env.extra.get("credential")
        access = open_access(self.env.azure, credential=injected, base_dir=self.env.base_dir)
        account_url = (
            self.options.blob_account_url or f"https://{where.account}.blob.core.windows.net"
        )
        return ContainerClient(
            account_url,
            where.container,
            credential=access.credential,
            connection_verify=access.connection_verify,
            retry_total=access.retry_total,
        )


def _count(counts: dict[str, int], observation: Observation) -> None:
    counts["total"] += 1
    attrs = observation.attributes
    if attrs.get("suppressed"):
        counts["suppressed"] += 1
    elif observation.kind == "secret.finding":
        counts["secrets"] += 1
    else:
        counts[attrs.get("severity", "unknown")] += 1


def _read_items(spool: IO[bytes]) -> Iterator[Item]:
    for line in spool:
        head, _, value = line.partition(b"\t")
        prefix, where, index = orjson.loads(head)
        yield Item(prefix, tuple(where), index, orjson.loads(value))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def as_list(value: Any, what: str, file: ScanFile) -> list[Any]:
    """``value`` when it is a list, ``[]`` when null or absent, else an InputError."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{what} is not an array", where=file.name)
    return value


def as_dict(value: Any, what: str, file: ScanFile) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{what} is not an object", where=file.name)
    return value
