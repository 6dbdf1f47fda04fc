"""Shared fixtures: a workspace (config, keys, database, store) on SQLite and on PostgreSQL.

Every test that takes ``workspace`` runs twice: once on a SQLite file, once on
the PostgreSQL server at 127.0.0.1:5432 (override with EVIDENCE_TEST_POSTGRES_URL).
A real part that is missing skips the test locally and fails it when CI=true.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.cli import main as cli_main
from evidence.config import Settings, load_settings
from evidence.db.session import make_engine, upgrade
from evidence.services import setup
from evidence.services.runtime import Runtime, open_runtime
from realparts import CI, need  # noqa: F401  (re-exported for tests)

PG_URL = os.environ.get(
    "EVIDENCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str | None:
    engine = make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception:
        return None
    finally:
        engine.dispose()
    return PG_URL


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str | None) -> Iterator[str | None]:
    """A database of our own on the server for this session, migrated once."""
    if postgres_admin_url is None:
        yield None
        return
    name = f"evidence_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        names = [
            r[0]
            for r in conn.execute(
                sa.text(
                    "select tablename from pg_tables where schemaname = 'public' "
                    "and tablename <> 'alembic_version'"
                )
            )
        ]
        if names:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    database_backend: str, postgres_database: str | None, tmp_path: Path
) -> str:
    if database_backend == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'evidence.db'}"
    if postgres_database is None:
        need(f"PostgreSQL is not reachable at {PG_URL}")
    assert postgres_database is not None
    _truncate_all(postgres_database)
    return postgres_database


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


@dataclass
class Workspace:
    """A deployment in a temporary folder: config, keys, migrated database, filesystem store."""

    root: Path
    database_url: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    extra_config: str = ""
    _runtimes: list[Runtime] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def store_dir(self) -> Path:
        return self.root / "var" / "store"

    @property
    def state_dir(self) -> Path:
        return self.root / "var" / "state"

    def write_config(self) -> Path:
        lines = [
            "[database]",
            f'url = "{self.database_url}"',
            "[store]",
            'kind = "filesystem"',
            'path = "var/store"',
            "[signing]",
            'key_path = "var/signing-key.pem"',
            "[state]",
            'path = "var/state"',
            "[privacy]",
            'pseudonym_key_path = "var/pseudonym.key"',
            self.extra_config,
        ]
        for source in self.sources:
            lines.append("[[sources]]")
            for key, value in source.items():
                lines.append(f"{key} = {_toml(value)}")
        self.config_path.write_text("\n".join(lines) + "\n")
        return self.config_path

    def add_source(self, **source: Any) -> None:
        self.sources.append(source)
        self.write_config()

    def settings(self) -> Settings:
        return load_settings(self.write_config())

    def runtime(self, **kwargs: Any) -> Runtime:
        rt = open_runtime(self.settings(), **kwargs)
        self._runtimes.append(rt)
        return rt

    def cli(self, *args: str) -> CliResult:
        """Run the command line in-process with this workspace's config."""
        argv = ["--config", str(self.config_path), *args]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_main(argv)
            except SystemExit as exc:
                code = int(exc.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    def close(self) -> None:
        for rt in self._runtimes:
            rt.close()


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> Iterator[Workspace]:
    root = tmp_path
    setup.init(root)
    ws = Workspace(root=root, database_url=database_url)
    ws.write_config()
    setup.db_upgrade(ws.settings())
    yield ws
    ws.close()


def shell(*parts: str) -> str:
    return " ".join(shlex.quote(p) for p in parts)
