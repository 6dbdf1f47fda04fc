"""``run_source``: the one flow that turns a source into stored, recorded evidence.

The command line, the daemon and the API all call it. Order of effects, chosen
so that a crash at any point leaves nothing recorded as stored that is not:

1. the run is recorded as ``running``;
2. records stream into a spool file in the outbox (canonical lines, hashes,
   Merkle root) while their observations go to an observation spool file next
   to it (``_observation_changes``); the database is not touched meanwhile;
3. the envelope is written next to the spool file, then one transaction
   records the run's outcome, the artifact as ``pending`` and the observation
   changes (read back from the observation spool);
4. publishing puts the content and envelope in the store (write-once), appends
   to the ledger, signs a checkpoint, and marks the artifact ``stored``.

A crash before 3 commits leaves no observation changes; the next run marks the
run ``failed`` (interrupted) and removes its spool files. A crash after 3
leaves a pending artifact in the outbox that the next run publishes; ``verify``
counts it as pending, not as a problem. A crash inside 4 leaves blobs, or
ledger entries and a checkpoint, in the store but not in the database:
publishing again puts the same bytes (a no-op) and the ledger adopts what the
store already holds. When the store is unreachable, step 4 waits for the next
run; a pending artifact that cannot be published never blocks new runs.

A stop request (SIGTERM, SIGINT) raises ``Interrupted``: before 3, the run is
recorded ``failed`` with an ``interrupted`` error and its spool files go;
publishing (4) holds the request until it is done.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from evidence.collectors.base import CollectContext, Collector, CollectorEnv
from evidence.collectors.registry import get_collector
from evidence.config import SourceSettings, describe_validation
from evidence.db import tables as t
from evidence.domain.artifact import ArtifactWriter, Envelope, WriterMark
from evidence.domain.canonical import canonicalize, utc_text
from evidence.domain.digest import Digest
from evidence.domain.ledger import content_key, envelope_key
from evidence.domain.pseudonym import Pseudonymizer, may_hold_address
from evidence.errors import CanonicalizationError, ConfigError, EvidenceError, StoreError
from evidence.services import ledger
from evidence.services._locks import file_lock
from evidence.services._observation_changes import ObservationSpool, apply_changes
from evidence.services._signals import signals_deferred
from evidence.services.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_id: str
    source: str
    status: str
    records: int
    pages: int
    errors: list[dict[str, Any]]
    envelope: str | None
    stored: bool
    store_error: str = ""
    observations_added: int = 0
    observations_closed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "status": self.status,
            "records": self.records,
            "pages": self.pages,
            "errors": self.errors,
            "envelope": self.envelope,
            "stored": self.stored,
            "store_error": self.store_error,
            "observations_added": self.observations_added,
            "observations_closed": self.observations_closed,
        }


def collector_env(rt: Runtime) -> CollectorEnv:
    settings = rt.settings
    return CollectorEnv(base_dir=settings.base_dir, azure=settings.azure)


def build_collector(source: SourceSettings, env: CollectorEnv, where: str = "") -> Collector:
    """Instantiate the collector for ``source``, validating its options."""
    cls = get_collector(source.kind)
    try:
        options = cls.options_model.model_validate(source.options)
    except ValidationError as exc:
        prefix = Path(where or "config")
        text = describe_validation(exc, prefix, source.options)
        text = text.replace(f"{prefix}: ", f"{prefix}: source {source.name}: ")
        raise ConfigError(text) from None
    return cls(options, env)


def check_sources(rt_settings_sources: list[SourceSettings], env: CollectorEnv, where: str) -> None:
    """Validate every configured source's options (at start, before doing anything)."""
    for source in rt_settings_sources:
        build_collector(source, env, where)


def run_source(
    rt: Runtime,
    source: SourceSettings,
    *,
    collector: Collector | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Collect ``source`` once: store its artifact, record its run and observations."""
    where = str(rt.settings.config_path)
    collector = collector or build_collector(source, collector_env(rt), where)
    lock = rt.state_dir / "locks" / f"{source.name}.lock"
    with file_lock(lock, wait=False, what=f"collection of source {source.name}"):
        recover_interrupted(rt, source.name)
        flush_outbox(rt)
        try:
            return _run(rt, source, collector, now or datetime.now(UTC))
        except BaseException as exc:
            # With the source lock held, a run of this source still 'running' is this one.
            _record_interruption(rt, source.name, exc)
            raise


def _record_interruption(rt: Runtime, source: str, exc: BaseException) -> None:
    if isinstance(exc, KeyboardInterrupt):  # SIGINT, or Interrupted by SIGTERM
        message = f"the run was interrupted ({exc or 'SIGINT'})"
    else:
        message = f"the run stopped on an error: {type(exc).__name__}: {exc}"
    try:
        with signals_deferred():
            recover_interrupted(rt, source, message=message)
    except Exception:  # the database may be what failed; the next run recovers it
        log.warning("could not record the interruption of %s", source, exc_info=True)


def _run(rt: Runtime, source: SourceSettings, collector: Collector, started: datetime) -> RunResult:
    run_id = uuid.uuid4().hex
    with rt.engine.begin() as conn:
        conn.execute(
            t.runs.insert().values(
                id=run_id,
                source=source.name,
                collector=collector.kind,
                collector_version=collector.version,
                status="running",
                started_at=started,
                record_count=0,
                page_count=0,
                errors=[],
                scopes=[],
            )
        )
    rt.outbox.mkdir(parents=True, exist_ok=True)
    spool = rt.outbox / f"{run_id}.jsonl"
    pseudo = Pseudonymizer(rt.pseudonym_key)
    ctx = CollectContext(
        source=source.name, base_dir=rt.settings.base_dir, pseudonymize=pseudo.pseudonym
    )
    ctx.ingested = _ingested_files(rt, source.name)
    errors: list[dict[str, Any]] = []
    aborted = False
    observations = ObservationSpool(_observation_spool(rt, run_id))
    with (
        spool.open("wb") as sink,  # written a block (megabytes) at a time
        observations,
        ThreadPoolExecutor(1, thread_name_prefix="artifact") as background,
    ):
        writer = ArtifactWriter(
            sink, max_record_bytes=rt.settings.collect.max_record_bytes, background=background
        )
        savepoint = _ScopeSavepoint(writer, observations, pseudo)
        ctx.scope_started, ctx.scope_discarded = savepoint.start, savepoint.discard
        try:
            for record in collector.collect(ctx):
                _take(record, writer, collector, pseudo, observations)
        except EvidenceError as exc:
            aborted = True
            errors.append(_error_json(exc))
        except Exception as exc:  # a collector bug must not look like "nothing found"
            log.exception("collector %s failed", collector.kind)
            aborted = True
            message = f"{type(exc).__name__}: {exc}"
            errors.append({"scope": "", "code": "internal", "message": message})
        try:
            writer.flush()
            sink.flush()
        except OSError as exc:
            raise StoreError(f"cannot write the run's spool in the outbox: {exc}") from exc
        # The content spool must be on disk before the run is recorded (step 3); its
        # flush runs meanwhile, beside the database work, and is awaited before commit.
        content_durable = _BackgroundFsync(sink.fileno())
    errors[:0] = [
        {"scope": s.scope, "code": s.code or "scope-failed", "message": s.message}
        for s in ctx.failed_scopes()
    ]
    status = _status(ctx, aborted)
    finished = datetime.now(UTC)
    envelope = Envelope(
        source=source.name,
        collector=collector.kind,
        collector_version=collector.version,
        run_id=run_id,
        started_at=utc_text(started),
        finished_at=utc_text(finished),
        status=status,
        record_count=writer.record_count,
        page_count=ctx.pages,
        content_sha256=str(writer.content_digest()),
        merkle_root=str(writer.merkle_root()),
        content_bytes=writer.bytes_written,
        query={**collector.describe_query(), **ctx.query},
        scopes=[
            {"scope": s.scope, "ok": s.ok, "records": s.records} for s in ctx.scopes.values()
        ],
        errors=errors,
        provenance={"retries": ctx.retries, **ctx.provenance},
    )
    digest = envelope.digest()
    _write_durably(rt.outbox / f"{run_id}.envelope.json", envelope.canonical())
    with rt.engine.begin() as conn:
        added, closed = _apply_observations(
            conn, rt, source.name, run_id, ctx, status, str(digest), started
        )
        _store_pseudonyms(conn, pseudo, started)
        if status != "failed":
            _record_ingested_files(conn, source.name, run_id, ctx.taken_files, finished)
        conn.execute(
            t.artifacts.insert().values(
                envelope_sha256=str(digest),
                content_sha256=envelope.content_sha256,
                merkle_root=envelope.merkle_root,
                record_count=envelope.record_count,
                content_bytes=envelope.content_bytes,
                source=source.name,
                run_id=run_id,
                state="pending",
                created_at=finished,
            )
        )
        conn.execute(
            t.runs.update()
            .where(t.runs.c.id == run_id)
            .values(
                status=status,
                finished_at=finished,
                record_count=envelope.record_count,
                page_count=envelope.page_count,
                errors=errors,
                scopes=envelope.scopes,
                envelope_sha256=str(digest),
            )
        )
        content_durable.wait()  # raises, rolling all of it back, if the flush failed
    with contextlib.suppress(FileNotFoundError):
        observations.path.unlink()
    result = RunResult(
        run_id=run_id,
        source=source.name,
        status=status,
        records=envelope.record_count,
        pages=envelope.page_count,
        errors=errors,
        envelope=str(digest),
        stored=False,
        observations_added=added,
        observations_closed=closed,
    )
    try:
        publish(rt, run_id)
        result.stored = True
    except StoreError as exc:
        result.store_error = str(exc)
    return result


class _BackgroundFsync:
    """``os.fsync`` of an open file on a thread of its own (the call lets other
    threads run while the disk works); ``wait()`` returns once the file is durable
    and raises what the fsync raised."""

    def __init__(self, fileno: int) -> None:
        self._fd = os.dup(fileno)  # the caller may close its file meanwhile
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._flush, name="fsync", daemon=True)
        self._thread.start()

    def _flush(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._error = exc
        finally:
            os.close(self._fd)

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


class _ScopeSavepoint:
    """Where the current scope's records begin in all they went into (the artifact,
    the observation spool, the new pseudonyms), so that a scope the collector
    discards (``CollectContext.discard_scope``) contributes nothing."""

    def __init__(
        self, writer: ArtifactWriter, observations: ObservationSpool, pseudo: Pseudonymizer
    ) -> None:
        self._writer, self._observations, self._pseudo = writer, observations, pseudo
        self._mark: tuple[WriterMark, tuple[int, int], int] | None = None

    def start(self, scope: str) -> None:
        self._mark = (self._writer.mark(), self._observations.mark(), len(self._pseudo.seen))

    def discard(self, scope: str) -> None:
        assert self._mark is not None, "a scope is discarded before any started"
        writer_mark, spool_mark, known = self._mark
        self._writer.rewind(writer_mark)
        self._observations.rewind(spool_mark)
        # ``seen`` only grows, in insertion order: what came after the mark is the scope's.
        for pseudonym in list(self._pseudo.seen)[known:]:
            del self._pseudo.seen[pseudonym]


def _take(
    record: Any,
    writer: ArtifactWriter,
    collector: Collector,
    pseudo: Pseudonymizer,
    observations: ObservationSpool,
) -> None:
    line, members = _canonical_record(record)
    if collector.personal_keys or may_hold_address(line):
        record = pseudo.scrub(record, collector.personal_keys)
        line, members = _canonical_record(record)
    index = writer.record_count
    start = writer.bytes_written
    writer.add_canonical(line)
    for obs in collector.observe(record, index):
        attributes = obs.attributes
        position = index if obs.record_index is None else obs.record_index
        known = members.get(id(attributes))
        if known is not None and known[0] is attributes:
            # The attributes are part of the line just written: spool their place.
            observations.add(obs, known[1], position, at=start + known[2])
        else:
            observations.add(obs, canonicalize(attributes), position)


# Records with at most this many members are canonicalized member by member, so
# that an observation whose attributes are one of them (``data`` of an imported
# record, say), or the record itself, reuses those bytes instead of
# canonicalizing them again. This relies on the collector contract that
# ``observe()`` reads its record and never modifies it.
MEMBERWISE_MAX = 8


def _canonical_record(record: Any) -> tuple[bytes, dict[int, tuple[Any, bytes, int]]]:
    """The canonical bytes of ``record``, and those of its object members by ``id``
    with where they stand in the record's bytes.

    JCS writes an object as ``{`` + its members sorted by the UTF-16 code units
    of their names, each ``name:value`` in canonical form, joined by ``,`` + ``}``;
    assembling it from the members' canonical forms gives the same bytes.
    """
    if type(record) is not dict or not 0 < len(record) <= MEMBERWISE_MAX:
        return canonicalize(record), {}
    order = _member_order(record)
    if order is None:
        return canonicalize(record), {}  # raises, naming the key's path
    members: dict[int, tuple[Any, bytes, int]] = {}
    parts: list[bytes] = []
    offset = 1  # after "{"
    try:
        for key, name in order:
            value = record[key]
            text = canonicalize(value)
            if type(value) is dict:
                members[id(value)] = (value, text, offset + len(name))
            part = name + text
            parts.append(part)
            offset += len(part) + 1  # and the ","
    except CanonicalizationError:
        return canonicalize(record), {}  # raises again, naming the value's path
    line = b"{" + b",".join(parts) + b"}"
    members[id(record)] = (record, line, 0)
    return line, members


# A collector's records share a few sets of member names: their JCS order and
# canonical ``"name":`` prefixes are worked out once per set.
_ORDERS: dict[tuple[Any, ...], tuple[tuple[str, bytes], ...]] = {}


def _member_order(record: dict[Any, Any]) -> tuple[tuple[str, bytes], ...] | None:
    """``(name, canonical name + ":")`` in JCS order; None when a name is not a string."""
    names = tuple(record)
    order = _ORDERS.get(names)
    if order is None:
        if not all(type(name) is str for name in names):
            return None
        order = tuple((name, canonicalize(name) + b":") for name in sorted(names, key=_utf16))
        if len(_ORDERS) < 4096:
            _ORDERS[names] = order
    return order


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _observation_spool(rt: Runtime, run_id: str) -> Path:
    return rt.outbox / f"{run_id}.observations"


def _status(ctx: CollectContext, aborted: bool) -> str:
    failed = ctx.failed_scopes()
    if aborted:
        return "partial" if ctx.ok_scopes() and failed else "failed"
    if failed:
        return "partial" if ctx.ok_scopes() else "failed"
    return "complete"


def _error_json(exc: EvidenceError) -> dict[str, Any]:
    scope = getattr(exc, "scope", "") or ""
    code = getattr(exc, "service_code", "") or exc.code
    message = f"{exc.message} ({exc.remedy})" if exc.remedy else exc.message
    return {"scope": scope, "code": code, "message": message}


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _apply_observations(
    conn: Connection,
    rt: Runtime,
    source: str,
    run_id: str,
    ctx: CollectContext,
    status: str,
    envelope: str,
    collected_at: datetime,
) -> tuple[int, int]:
    """Turn the run's spooled observations into changes (``_observation_changes``):
    new and changed facts open a row, facts gone from a scope that was fully
    collected close theirs. A failed run changes nothing."""
    if status == "failed":
        return 0, 0
    return apply_changes(
        conn,
        source=source,
        spool=_observation_spool(rt, run_id),
        content=rt.outbox / f"{run_id}.jsonl",
        ok_scopes=set(ctx.ok_scopes()) if ctx.scopes else None,
        envelope=envelope,
        collected_at=collected_at,
    )


def _store_pseudonyms(conn: Connection, pseudo: Pseudonymizer, now: datetime) -> None:
    if not pseudo.seen:
        return
    known = {
        row[0]
        for row in conn.execute(
            sa.select(t.pseudonyms.c.pseudonym).where(t.pseudonyms.c.pseudonym.in_(list(pseudo.seen)))
        )
    }
    fresh = [
        {"pseudonym": p, "identity": i, "first_seen": now}
        for p, i in pseudo.seen.items()
        if p not in known
    ]
    if fresh:
        conn.execute(t.pseudonyms.insert(), fresh)


def _ingested_files(rt: Runtime, source: str) -> frozenset[str]:
    with rt.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.ingested_files.c.sha256).where(t.ingested_files.c.source == source)
        )
        return frozenset(row[0] for row in rows)


def _record_ingested_files(
    conn: Connection, source: str, run_id: str, files: list[dict[str, str]], now: datetime
) -> None:
    """Files whose observations this run applied; the same content twice counts once."""
    fresh: dict[str, dict[str, Any]] = {}
    for item in files:
        fresh.setdefault(
            item["sha256"],
            {"source": source, "sha256": item["sha256"], "name": item["name"][:1000],
             "run_id": run_id, "ingested_at": now},
        )
    if not fresh:
        return
    known = {
        row[0]
        for row in conn.execute(
            sa.select(t.ingested_files.c.sha256).where(
                t.ingested_files.c.source == source, t.ingested_files.c.sha256.in_(list(fresh))
            )
        )
    }
    rows = [row for sha, row in fresh.items() if sha not in known]
    if rows:
        conn.execute(t.ingested_files.insert(), rows)


def publish(rt: Runtime, run_id: str) -> None:
    """Put a pending artifact in the store and the ledger; mark it stored.

    Idempotent: every step may have happened already (a crash in the middle).
    Stop signals wait until it is done."""
    with signals_deferred():
        _publish(rt, run_id)


def _publish(rt: Runtime, run_id: str) -> None:
    with rt.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.artifacts.c.envelope_sha256, t.artifacts.c.content_sha256).where(
                t.artifacts.c.run_id == run_id
            )
        ).first()
    if row is None:
        raise StoreError(f"run {run_id} has no artifact to publish")
    digest = Digest.parse(row.envelope_sha256)
    ckey, ekey = content_key(Digest.parse(row.content_sha256)), envelope_key(digest)
    spool = rt.outbox / f"{run_id}.jsonl"
    envelope_file = rt.outbox / f"{run_id}.envelope.json"
    try:
        if spool.exists():
            rt.store.put_file(ckey, spool)
        elif not rt.store.exists(ckey):
            raise StoreError(f"the outbox copy of {ckey} (run {run_id}) is gone")
        if envelope_file.exists():
            envelope_bytes = envelope_file.read_bytes()
            if Digest.of(envelope_bytes) != digest:
                raise StoreError(f"the outbox envelope of run {run_id} does not match its record")
            rt.store.put(ekey, envelope_bytes)
        elif not rt.store.exists(ekey):
            raise StoreError(f"the outbox copy of {ekey} (run {run_id}) is gone")
        ledger.append(rt, digest)
    except StoreError:
        raise
    except OSError as exc:
        raise StoreError(f"store write failed: {exc}") from exc
    with rt.engine.begin() as conn:
        conn.execute(
            t.artifacts.update()
            .where(t.artifacts.c.envelope_sha256 == str(digest))
            .values(state="stored", stored_at=datetime.now(UTC))
        )
    _drop_spool(rt, run_id)


def _drop_spool(rt: Runtime, run_id: str) -> None:
    for suffix in (".jsonl", ".envelope.json", ".observations"):
        with contextlib.suppress(FileNotFoundError):
            (rt.outbox / f"{run_id}{suffix}").unlink()


def flush_outbox(rt: Runtime) -> int:
    """Publish every pending artifact; return how many were published.

    One that fails (store unreachable, outbox copy gone) stays pending and is
    logged; it never stops the others or the run that called this."""
    with rt.engine.connect() as conn:
        pending = [
            row.run_id
            for row in conn.execute(
                sa.select(t.artifacts.c.run_id)
                .where(t.artifacts.c.state == "pending")
                .order_by(t.artifacts.c.created_at)
            )
        ]
    published = 0
    for run_id in pending:
        try:
            publish(rt, run_id)
            published += 1
        except StoreError as exc:
            log.warning("artifact of run %s stays pending: %s", run_id, exc)
    _sweep_outbox(rt)
    return published


def _sweep_outbox(rt: Runtime) -> None:
    """Remove spool files of runs that finished and have nothing pending (a crash
    between marking an artifact stored and deleting its spool leaves them)."""
    if not rt.outbox.is_dir():
        return
    by_run: dict[str, list[Path]] = {}
    for path in rt.outbox.iterdir():
        by_run.setdefault(path.name.split(".", 1)[0], []).append(path)
    if not by_run:
        return
    with rt.engine.connect() as conn:
        finished = {
            row.id
            for row in conn.execute(
                sa.select(t.runs.c.id).where(
                    t.runs.c.id.in_(sorted(by_run)), t.runs.c.status != "running"
                )
            )
        }
        waiting = {
            row.run_id
            for row in conn.execute(
                sa.select(t.artifacts.c.run_id).where(
                    t.artifacts.c.run_id.in_(sorted(by_run)), t.artifacts.c.state == "pending"
                )
            )
        }
    for run_id in finished - waiting:
        for path in by_run[run_id]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def recover_interrupted(
    rt: Runtime, source: str, *, message: str = "the run was interrupted"
) -> list[str]:
    """Mark runs of ``source`` left ``running`` (by a dead or stopped process) as
    failed, and drop their spool files. Called with the source lock held, so none
    of them is still alive."""
    with rt.engine.begin() as conn:
        stale = [
            row.id
            for row in conn.execute(
                sa.select(t.runs.c.id).where(
                    t.runs.c.source == source, t.runs.c.status == "running"
                )
            )
        ]
        for run_id in stale:
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(
                    status="failed",
                    finished_at=datetime.now(UTC),
                    errors=[{"scope": "", "code": "interrupted", "message": message}],
                )
            )
    for run_id in stale:
        _drop_spool(rt, run_id)
    return stale


def iter_sources(rt: Runtime, names: list[str]) -> Iterator[SourceSettings]:
    if names:
        for name in names:
            yield rt.settings.source(name)
    else:
        yield from (s for s in rt.settings.sources if s.enabled)
