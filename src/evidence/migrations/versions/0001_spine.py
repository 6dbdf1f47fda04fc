"""The spine: runs, artifacts, ledger index, checkpoints, observations, pseudonyms.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evidence.db.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(200), nullable=False, index=True),
        sa.Column("collector", sa.String(200), nullable=False),
        sa.Column("collector_version", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("page_count", sa.Integer, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("envelope_sha256", sa.String(71)),
    )
    op.create_table(
        "artifacts",
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
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entry_sha256", sa.String(71), nullable=False),
        sa.Column("envelope_sha256", sa.String(71), nullable=False, unique=True),
        sa.Column("prev_sha256", sa.String(71)),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("checkpoint_sha256", sa.String(71), nullable=False),
        sa.Column("root", sa.String(71), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(100), nullable=False),
    )
    op.create_table(
        "observations",
        sa.Column("id", BIGID, primary_key=True),
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
    )
    op.create_index(
        "ix_observations_current", "observations", ["source", "kind", "subject", "valid_to"]
    )
    op.create_index("ix_observations_kind_time", "observations", ["kind", "valid_from"])
    op.create_table(
        "pseudonyms",
        sa.Column("pseudonym", sa.String(100), primary_key=True),
        sa.Column("identity", sa.String(1000), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "pseudonyms",
        "observations",
        "checkpoints",
        "ledger_entries",
        "artifacts",
        "runs",
    ):
        op.drop_table(name)
