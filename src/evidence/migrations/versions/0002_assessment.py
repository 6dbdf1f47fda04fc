"""Assessment: findings kept as history, and exceptions (risk acceptances).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evidence.db.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "findings",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("framework", sa.String(50), nullable=False),
        sa.Column("control_id", sa.String(100), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("assessed_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("library_sha256", sa.String(71), nullable=False),
    )
    op.create_index("ix_findings_control_time", "findings", ["framework", "control_id", "as_of"])
    op.create_table(
        "exceptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("check_id", sa.String(200), nullable=False),
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
    op.create_index("ix_exceptions_check_id", "exceptions", ["check_id"])


def downgrade() -> None:
    op.drop_table("exceptions")
    op.drop_table("findings")
