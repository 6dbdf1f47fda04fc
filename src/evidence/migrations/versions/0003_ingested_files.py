"""Input files taken in, by content hash, per source (scanner files are not ingested twice).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from evidence.db.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingested_files",
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingested_files")
