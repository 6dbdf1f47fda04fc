"""Engines and migrations. Nothing connects at import; callers pass the URL."""

from __future__ import annotations

from importlib import resources
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from evidence.errors import DatabaseError


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so readers never block,
    and a new SQLite database 16 KiB pages."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60}, **options)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # Observation rows carry their attributes (often 1-2 KB), and one run may
            # add a million of them in one transaction. Each page read in WAL mode
            # searches the WAL index, whose cost grows with the frames (pages) the
            # transaction has written: on 16 KiB pages a 1M-row ingest has half the
            # frames of 8 KiB ones and inserts and checkpoints in about 60 % of the
            # time (4 KiB pages also leave a third of each page empty for such rows).
            # It applies only to a database not yet created, and must come before
            # WAL is switched on.
            cursor.execute("PRAGMA page_size=16384")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **options)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("evidence") / "migrations"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise DatabaseError(f"cannot connect to the database: {exc.orig}") from None


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every migration; return (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head_revision()


def require_current(engine: Engine) -> None:
    """Raise ``DatabaseError`` unless the schema is at the newest migration."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise DatabaseError(
            f"database schema is at {current or 'nothing'}, this version needs {head}",
            remedy="run 'evidence db upgrade'",
        )
