"""A throwaway deployment for the benchmarks: config, keys, migrated database, store.

SQLite by default; ``postgresql`` uses $EVIDENCE_BENCH_POSTGRES_URL (default the
loopback server) and a fresh database that ``drop_database`` removes.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from evidence.config import Settings, load_settings
from evidence.db.session import make_engine
from evidence.services import setup

PG_URL = os.environ.get(
    "EVIDENCE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def create_database(backend: str, root: Path) -> str:
    if backend == "sqlite":
        return "sqlite:///var/evidence.db"  # relative to the config: the folder can move
    name = f"evidence_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_workspace(root: Path, database_url: str, import_path: Path) -> Settings:
    """Init ``root`` with one ``import.json`` source named ``bench`` reading ``import_path``."""
    setup.init(root)
    if import_path.is_relative_to(root):
        import_path = import_path.relative_to(root)
    (root / "config.toml").write_text(
        "\n".join(
            [
                "[database]",
                f'url = "{database_url}"',
                "[store]",
                'kind = "filesystem"',
                'path = "var/store"',
                "[signing]",
                'key_path = "var/signing-key.pem"',
                "[state]",
                'path = "var/state"',
                "[privacy]",
                'pseudonym_key_path = "var/pseudonym.key"',
                "[[sources]]",
                'name = "bench"',
                'kind = "import.json"',
                f'path = "{import_path}"',
                "",
            ]
        )
    )
    settings = load_settings(root / "config.toml")
    setup.db_upgrade(settings)
    return settings
