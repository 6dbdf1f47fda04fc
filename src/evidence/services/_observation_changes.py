"""Observations kept as changes: one run's observations applied to ``observations``.

While records stream, ``ObservationSpool`` writes the observations to a file in
the outbox, a batch at a time (the fields a row needs, and the attributes'
canonical JSON text, or only where that text stands in the run's content spool
when it is part of a record: an imported record's data is), so nothing touches
the database during collection and no more than a batch is held in memory.
Once the run's envelope, and so its hash, is known, ``apply_changes`` reads the
spool back batch by batch inside the run's final transaction:

* a fact new to the source opens a row (``valid_from`` = the run's time);
* a fact whose fingerprint changed closes its open row and opens a new one;
* an unchanged fact writes nothing;
* an open fact the run did not see, in a scope the run collected completely,
  is closed (``valid_to``); facts in failed scopes are left as they were;
* when a run repeats a subject, its last observation wins.

Re-collecting unchanged data therefore adds no rows. The open rows that match
are found by batched index lookups; the ones not seen are found with a bitmap
over row ids, so memory stays flat however many observations a run has.
"""

from __future__ import annotations

import hashlib
import marshal
from array import array
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from evidence.db import tables as t
from evidence.domain.observation import Observation, fingerprint_text

BATCH = 1000
READ_BUFFER = 1024 * 1024
ANALYZE_AFTER = 10_000


class _CanonicalJSON(sa.types.TypeDecorator[str]):
    """A JSON column written from text that is already canonical JSON (no re-encoding)."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


# The observations table as the bulk statements see it: attributes go in as text.
_rows = sa.table(
    "observations",
    sa.column("id", sa.BigInteger()),
    sa.column("source", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("scope", sa.String()),
    sa.column("observed_at", t.UTCDateTime()),
    sa.column("attributes", _CanonicalJSON()),
    sa.column("fingerprint", sa.String()),
    sa.column("valid_from", t.UTCDateTime()),
    sa.column("valid_to", t.UTCDateTime()),
    sa.column("envelope_sha256", sa.String()),
    sa.column("record_index", sa.Integer()),
)


class Spooled(NamedTuple):
    kind: str
    subject: str
    scope: str
    observed_at: datetime | None
    fingerprint: str
    record_index: int
    attributes: bytes  # canonical JSON (UTF-8), given to the database as text


class ObservationSpool:
    """Append-only file of one run's observations (see the module docstring).

    Each batch is one ``marshal`` blob of ``Spooled`` field tuples after its length
    (8 bytes): read back with one call per batch instead of a parse per line. The
    file is this process's own scratch space in the outbox, read only by it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._sink: IO[bytes] | None = None
        self._pending: list[tuple[Any, ...]] = []

    def __enter__(self) -> ObservationSpool:
        self._sink = self.path.open("wb")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sink is not None:
            try:
                if kind is None:
                    self._flush()
            finally:
                self._sink.close()
                self._sink = None

    def mark(self) -> tuple[int, int]:
        """Where the spool stands now, for ``rewind``."""
        self._flush()
        assert self._sink is not None
        return self._sink.tell(), self.count

    def rewind(self, mark: tuple[int, int]) -> None:
        """Take back every observation spooled since ``mark``."""
        assert self._sink is not None, "spool is not open"
        position, self.count = mark
        self._pending = []
        self._sink.seek(position)
        self._sink.truncate()

    def add(
        self, obs: Observation, attributes: bytes, record_index: int, at: int | None = None
    ) -> None:
        """Spool ``obs`` whose attributes' canonical bytes are ``attributes``.

        ``at``: where those bytes stand in the run's content spool, if they do;
        then only their place is spooled (``read_spool`` reads them there)."""
        observed = obs.observed_at.isoformat() if obs.observed_at is not None else None
        # Observation.fingerprint_of, without building a Digest per observation.
        fingerprint = hashlib.sha256(fingerprint_text(attributes, obs.observed_at, obs.scope))
        self._pending.append(
            (
                obs.kind,
                obs.subject,
                obs.scope,
                observed,
                fingerprint.hexdigest(),
                record_index,
                attributes if at is None else (at, len(attributes)),
            )
        )
        self.count += 1
        if len(self._pending) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        assert self._sink is not None, "spool is not open"
        if self._pending:
            blob = marshal.dumps(self._pending)
            self._sink.write(len(blob).to_bytes(8, "little") + blob)
            self._pending = []


def read_spool(path: Path, content: Path) -> Iterator[list[Spooled]]:
    """The spooled observations, in order, a batch (at most ``BATCH``) at a time.

    ``content``: the run's content spool, where attributes spooled by place are
    read (their places only grow, so it is read front to back)."""
    with path.open("rb") as handle, content.open("rb", buffering=READ_BUFFER) as records:
        while head := handle.read(8):
            blob = handle.read(int.from_bytes(head, "little"))
            batch = marshal.loads(blob)  # noqa: S302 (this run's own spool, written above)
            yield [_spooled(item, records) for item in batch]


def _spooled(item: tuple[Any, ...], records: IO[bytes]) -> Spooled:
    kind, subject, scope, observed, fingerprint, index, attributes = item
    if type(attributes) is tuple:
        at, size = attributes
        records.seek(at)
        attributes = records.read(size)
    return Spooled(
        kind,
        subject,
        scope,
        None if observed is None else datetime.fromisoformat(observed),
        fingerprint,
        index,
        attributes,
    )


class _Open(NamedTuple):
    id: int
    fingerprint: str
    envelope: str


def apply_changes(
    conn: Connection,
    *,
    source: str,
    spool: Path,
    content: Path,
    ok_scopes: set[str] | None,
    envelope: str,
    collected_at: datetime,
) -> tuple[int, int]:
    """Apply the spooled observations as changes; return (rows opened, rows closed).

    ``content``: the run's content spool, which ``spool`` may point into.
    ``ok_scopes``: the scopes collected completely (None: the run has no scopes,
    everything counts).
    """
    obs = t.observations
    open_now = sa.and_(obs.c.source == source, obs.c.valid_to.is_(None))
    low, high, open_count = conn.execute(
        sa.select(sa.func.min(obs.c.id), sa.func.max(obs.c.id), sa.func.count()).where(open_now)
    ).one()
    had_open = low is not None
    # One bit per open row id that existed before this run: set when the run saw it.
    seen = bytearray((high - low) // 8 + 1) if had_open else bytearray()
    base = low or 0
    added = closed = 0
    with _NewRows(conn, source, envelope, collected_at) as new_rows:
        for batch in read_spool(spool, content):
            latest: dict[tuple[str, str], Spooled] = {}
            for row in batch:
                if ok_scopes is None or row.scope in ok_scopes:
                    latest[(row.kind, row.subject)] = row
            if not latest:
                continue
            if had_open:
                new_rows.finish()  # the lookups below must see every row added
            current = _open_rows(conn, source, latest) if had_open else {}
            inserts: list[Spooled] = []
            replaces: list[tuple[int, Spooled]] = []
            closes: list[int] = []
            for key, row in latest.items():
                found = current.get(key)
                if found is None:
                    inserts.append(row)
                elif found.envelope == envelope:
                    replaces.append((found.id, row))  # a subject this run already observed
                else:
                    offset = found.id - base
                    seen[offset >> 3] |= 1 << (offset & 7)
                    if found.fingerprint != row.fingerprint:
                        closes.append(found.id)
                        inserts.append(row)
            closed += _close(conn, closes, collected_at)
            new_rows.add(inserts)
            added += len(inserts)
            if replaces:
                new_rows.finish()
                restored = _replace(conn, source, replaces, envelope, collected_at)
                added -= restored
                closed -= restored
    if not had_open:
        added -= _drop_repeats(conn, source, envelope)
    elif int.from_bytes(seen, "little").bit_count() < open_count:
        closed += _close_unseen(conn, source, seen, base, ok_scopes, envelope, collected_at)
    if added >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
        # Fresh statistics, so that the next run's lookups use the index at once.
        conn.exec_driver_sql("ANALYZE observations")
    return added, closed


def _open_rows(
    conn: Connection, source: str, keys: dict[tuple[str, str], Any]
) -> dict[tuple[str, str], _Open]:
    obs = t.observations
    by_kind: dict[str, list[str]] = {}
    for kind, subject in keys:
        by_kind.setdefault(kind, []).append(subject)
    found: dict[tuple[str, str], _Open] = {}
    for kind, subjects in by_kind.items():
        result = conn.execute(
            sa.select(obs.c.id, obs.c.subject, obs.c.fingerprint, obs.c.envelope_sha256).where(
                obs.c.source == source,
                obs.c.kind == kind,
                obs.c.subject.in_(subjects),
                obs.c.valid_to.is_(None),
            )
        )
        for row_id, subject, fingerprint, env in result:
            found[(kind, subject)] = _Open(int(row_id), str(fingerprint), str(env))
    return found


_INSERT_COLUMNS = (
    "source",
    "kind",
    "subject",
    "scope",
    "observed_at",
    "attributes",
    "fingerprint",
    "valid_from",
    "envelope_sha256",
    "record_index",
)


class _NewRows:
    """Inserts new rows with the driver's bulk path: the per-row cost of a generic
    executemany is most of an ingest otherwise.

    SQLite: one executemany per batch. PostgreSQL: COPY, kept open from batch to
    batch until ``finish()``, so that the server (its own process) stores rows
    while this one reads the next batch; any other statement on the connection
    must wait for ``finish()``."""

    def __init__(
        self, conn: Connection, source: str, envelope: str, collected_at: datetime
    ) -> None:
        self._conn, self._source, self._envelope = conn, source, envelope
        self._collected_at = collected_at
        raw = conn.connection.driver_connection
        assert raw is not None
        self._raw: Any = raw
        self._copy: ExitStack | None = None
        self._writer: Any = None

    def __enter__(self) -> _NewRows:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._copy is not None:
            copy, self._copy = self._copy, None
            copy.__exit__(kind, exc, tb)  # on an error, the COPY is abandoned

    def finish(self) -> None:
        """End the COPY in progress, if any: every row added is then in the table."""
        self.__exit__(None, None, None)

    def add(self, rows: list[Spooled]) -> None:
        if not rows:
            return
        if self._conn.dialect.name == "postgresql":
            self._copy_rows(rows)
        else:
            self._executemany(rows)

    def _copy_rows(self, rows: list[Spooled]) -> None:
        if self._copy is None:
            stack = ExitStack()
            cursor = stack.enter_context(self._raw.cursor())
            sql = f"COPY observations ({', '.join(_INSERT_COLUMNS)}) FROM STDIN"
            self._writer = stack.enter_context(cursor.copy(sql))
            self._copy = stack
        write_row = self._writer.write_row
        source, envelope, collected_at = self._source, self._envelope, self._collected_at
        for r in rows:
            write_row(
                (
                    source,
                    r.kind,
                    r.subject,
                    r.scope,
                    r.observed_at,
                    r.attributes.decode("utf-8"),
                    r.fingerprint,
                    collected_at,
                    envelope,
                    r.record_index,
                )
            )

    def _executemany(self, rows: list[Spooled]) -> None:
        dialect = self._conn.dialect
        # Times go in exactly as the UTCDateTime column type writes them.
        to_db = t.UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        stamp = to_db(self._collected_at) if to_db else self._collected_at
        columns = ", ".join(_INSERT_COLUMNS)
        # The attributes go in as their UTF-8 bytes, stored as TEXT by the CAST: no
        # decoding here and encoding again in the driver (1.5 KB of text a row). As a
        # bytearray: sqlite3 binds one directly, while for ``bytes`` it first looks
        # for an adapter and fails twice with an exception (measured: ~0.7 us a row).
        # A missing observed_at goes in as '' made NULL by NULLIF, for the same
        # reason: sqlite3 binds text directly, None after the lookups (~0.3 us).
        special = {"attributes": "CAST(? AS TEXT)", "observed_at": "NULLIF(?, '')"}
        marks = ", ".join(special.get(c, "?") for c in _INSERT_COLUMNS)
        source, envelope = self._source, self._envelope
        cursor = self._raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO observations ({columns}) VALUES ({marks})",  # noqa: S608 (fixed names)
                [
                    (
                        source,
                        r.kind,
                        r.subject,
                        r.scope,
                        ""
                        if r.observed_at is None
                        else to_db(r.observed_at) if to_db else r.observed_at,
                        bytearray(r.attributes),
                        r.fingerprint,
                        stamp,
                        envelope,
                        r.record_index,
                    )
                    for r in rows
                ],
            )
        finally:
            cursor.close()


def _replace(
    conn: Connection,
    source: str,
    rows: list[tuple[int, Spooled]],
    envelope: str,
    collected_at: datetime,
) -> int:
    """A subject this run observed before: its row from this run takes the later
    observation. If an earlier occurrence had closed the subject's previous row and
    the later one says the same as that row, the previous row is reopened instead
    (an unchanged fact makes no history). Returns how many rows were reopened."""
    obs = t.observations
    earlier: dict[tuple[str, str], tuple[int, str]] = {}
    by_kind: dict[str, list[str]] = {}
    for _, r in rows:
        by_kind.setdefault(r.kind, []).append(r.subject)
    for kind, subjects in by_kind.items():
        result = conn.execute(
            sa.select(obs.c.id, obs.c.subject, obs.c.fingerprint).where(
                obs.c.source == source,
                obs.c.kind == kind,
                obs.c.subject.in_(subjects),
                obs.c.valid_to == collected_at,
                obs.c.envelope_sha256 != envelope,
            )
        )
        for row_id, subject, fingerprint in result:
            earlier[(kind, subject)] = (int(row_id), str(fingerprint))
    updates: list[tuple[int, Spooled]] = []
    restores: list[tuple[int, int]] = []
    for row_id, r in rows:
        previous = earlier.get((r.kind, r.subject))
        if previous is not None and previous[1] == r.fingerprint:
            restores.append((row_id, previous[0]))
        else:
            updates.append((row_id, r))
    if updates:
        conn.execute(
            _rows.update()
            .where(_rows.c.id == sa.bindparam("row_id"))
            .values(
                scope=sa.bindparam("new_scope"),
                observed_at=sa.bindparam("new_observed_at"),
                attributes=sa.bindparam("new_attributes"),
                fingerprint=sa.bindparam("new_fingerprint"),
                record_index=sa.bindparam("new_record_index"),
            ),
            [
                {
                    "row_id": row_id,
                    "new_scope": r.scope,
                    "new_observed_at": r.observed_at,
                    "new_attributes": r.attributes.decode("utf-8"),
                    "new_fingerprint": r.fingerprint,
                    "new_record_index": r.record_index,
                }
                for row_id, r in updates
            ],
        )
    for ours, previous_id in restores:
        conn.execute(sa.delete(obs).where(obs.c.id == ours))
        conn.execute(sa.update(obs).where(obs.c.id == previous_id).values(valid_to=None))
    return len(restores)


def _close(conn: Connection, ids: list[int], at: datetime) -> int:
    if not ids:
        return 0
    conn.execute(
        _rows.update().where(_rows.c.id == sa.bindparam("row_id")).values(valid_to=at),
        [{"row_id": row_id} for row_id in ids],
    )
    return len(ids)


def _close_unseen(
    conn: Connection,
    source: str,
    seen: bytearray,
    base: int,
    ok_scopes: set[str] | None,
    envelope: str,
    at: datetime,
) -> int:
    """Close the open rows from before this run that it did not see, in its complete scopes."""
    obs = t.observations
    result = conn.execute(
        sa.select(obs.c.id, obs.c.scope).where(
            obs.c.source == source,
            obs.c.valid_to.is_(None),
            obs.c.envelope_sha256 != envelope,
        )
    )
    gone = array("q")
    for row_id, scope in result:
        offset = row_id - base
        if ok_scopes is not None and scope not in ok_scopes:
            continue
        if 0 <= offset < len(seen) * 8 and seen[offset >> 3] & (1 << (offset & 7)):
            continue
        gone.append(int(row_id))
    closed = 0
    for start in range(0, len(gone), BATCH):
        closed += _close(conn, list(gone[start : start + BATCH]), at)
    return closed


def _drop_repeats(conn: Connection, source: str, envelope: str) -> int:
    """On a source's first run rows are inserted without lookups; keep the last of repeats."""
    obs = t.observations
    # Every open row of the source is this run's here: the scan stays on the index.
    repeated = conn.execute(
        sa.select(obs.c.kind, obs.c.subject, sa.func.max(obs.c.id))
        .where(obs.c.source == source, obs.c.valid_to.is_(None))
        .group_by(obs.c.kind, obs.c.subject)
        .having(sa.func.count() > 1)
    ).all()
    dropped = 0
    for kind, subject, keep in repeated:
        dropped += conn.execute(
            sa.delete(obs).where(
                obs.c.source == source,
                obs.c.kind == kind,
                obs.c.subject == subject,
                obs.c.envelope_sha256 == envelope,
                obs.c.id != keep,
            )
        ).rowcount
    return dropped
