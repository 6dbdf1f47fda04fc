"""The database schema. Migrations in ``migrations/versions`` create it; nothing else does.

The database is an index and a working set. What proves is in the store: the
artifacts, their envelopes, the ledger entries and the signed checkpoints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("collector", sa.String(200), nullable=False),
    sa.Column("collector_version", sa.String(50), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("record_count", sa.Integer, nullable=False, default=0),
    sa.Column("page_count", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.JSON, nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("envelope_sha256", sa.String(71)),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("envelope_sha256", sa.String(71), primary_key=True),
    sa.Column("content_sha256", sa.String(71), nullable=False, index=True),
    sa.Column("merkle_root", sa.String(71), nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("content_bytes", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("stored_at", UTCDateTime()),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_sha256", sa.String(71), nullable=False),
    sa.Column("envelope_sha256", sa.String(71), nullable=False, unique=True),
    sa.Column("prev_sha256", sa.String(71)),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("tree_size", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("checkpoint_sha256", sa.String(71), nullable=False),
    sa.Column("root", sa.String(71), nullable=False),
    sa.Column("signed_at", UTCDateTime(), nullable=False),
    sa.Column("key_id", sa.String(100), nullable=False),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(1000), nullable=False),
    sa.Column("scope", sa.String(500), nullable=False),
    sa.Column("observed_at", UTCDateTime()),
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("valid_from", UTCDateTime(), nullable=False),
    sa.Column("valid_to", UTCDateTime()),
    sa.Column("envelope_sha256", sa.String(71), nullable=False),
    sa.Column("record_index", sa.Integer),
    sa.Index("ix_observations_current", "source", "kind", "subject", "valid_to"),
    sa.Index("ix_observations_kind_time", "kind", "valid_from"),
)

pseudonyms = sa.Table(
    "pseudonyms",
    metadata,
    sa.Column("pseudonym", sa.String(100), primary_key=True),
    sa.Column("identity", sa.String(1000), nullable=False),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
)


# ---- assessment (migration 0002) --------------------------------------------------------
findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("framework", sa.String(50), nullable=False),
    sa.Column("control_id", sa.String(100), nullable=False),
    sa.Column("as_of", UTCDateTime(), nullable=False),
    sa.Column("assessed_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("library_sha256", sa.String(71), nullable=False),
    sa.Index("ix_findings_control_time", "framework", "control_id", "as_of"),
)

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("check_id", sa.String(200), nullable=False, index=True),
    sa.Column("subject_pattern", sa.String(1000), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("approver", sa.String(200), nullable=False),
    sa.Column("ticket", sa.String(200), nullable=False),
    sa.Column("starts_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
    sa.Column("revoked_by", sa.String(200)),
    sa.Column("revoke_reason", sa.Text),
)

# Input files a source took in, by content. A file collector skips a file whose
# hash is here for its source; the run that took it in is named.
ingested_files = sa.Table(
    "ingested_files",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("ingested_at", UTCDateTime(), nullable=False),
)
