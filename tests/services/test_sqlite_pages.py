"""A new SQLite database gets 16 KiB pages (large ingests write far fewer WAL frames);
an existing one keeps its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from evidence.db.session import make_engine


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_database_gets_16k_pages_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()
    assert _page_size(path) == 16384


def test_an_existing_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE t (x TEXT)")
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t VALUES ('a')"))
    engine.dispose()
    assert _page_size(path) == 4096
