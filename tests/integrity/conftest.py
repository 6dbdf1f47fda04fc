"""Helpers for the integrity tests: a workspace with real collected runs, and the
tools an attacker with write access to the store and the database would use."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.db import tables as t


@dataclass
class Spine:
    """A workspace whose import.json source yields different records each run."""

    ws: Any
    data_dir: Path
    runs: int = 0

    def collect(self, runs: int = 1, records: int = 5) -> list[dict[str, Any]]:
        results = []
        for _ in range(runs):
            data = self.data_dir / "in.jsonl"
            lines = (
                json.dumps({"id": f"run{self.runs}-r{i}", "n": i, "run": self.runs})
                for i in range(records)
            )
            data.write_text("\n".join(lines) + "\n")
            result = self.ws.cli("collect", "--json")
            assert result.code == 0, result.err
            results.append(result.json()["runs"][0])
            self.runs += 1
        return results

    @property
    def store(self) -> Path:
        return Path(self.ws.store_dir)

    def path(self, key: str) -> Path:
        return self.store / key

    def store_keys(self, prefix: str = "") -> list[str]:
        out = []
        for path in sorted(self.store.rglob("*")):
            if path.is_file():
                key = path.relative_to(self.store).as_posix()
                if key.startswith(prefix) and not key.startswith("doctor/"):
                    out.append(key)
        return out

    def verify(self) -> tuple[int, dict[str, Any]]:
        result = self.ws.cli("verify", "--json")
        assert "Traceback" not in result.err, result.err
        return result.code, json.loads(result.out)

    def problems(self) -> list[tuple[str, str]]:
        _code, report = self.verify()
        return [(p["kind"], p["item"]) for p in report["problems"]]

    # ---- what an attacker does --------------------------------------------------
    @contextlib.contextmanager
    def writable(self, path: Path) -> Iterator[Path]:
        """Make a read-only store file writable for the edit, then read-only again."""
        mode = path.stat().st_mode
        os.chmod(path, mode | stat.S_IWUSR)
        try:
            yield path
        finally:
            os.chmod(path, mode)

    def rewrite(self, key: str, data: bytes) -> None:
        with self.writable(self.path(key)) as path:
            path.write_bytes(data)

    def flip_byte(self, key: str, position: int | None = None) -> bytes:
        original = self.path(key).read_bytes()
        at = len(original) // 2 if position is None else position
        changed = bytearray(original)
        changed[at] ^= 0x01
        self.rewrite(key, bytes(changed))
        return original

    def sql(self, statement: Any) -> None:
        engine = sa.create_engine(self.ws.settings().database_url())
        try:
            with engine.begin() as conn:
                conn.execute(statement)
        finally:
            engine.dispose()

    def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.ws.settings().database_url())
        try:
            with engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(sa.select(table))]
        finally:
            engine.dispose()

    def snapshot_database(self) -> dict[str, list[dict[str, Any]]]:
        return {table.name: self.rows(table) for table in t.metadata.sorted_tables}

    def restore_database(self, snapshot: dict[str, list[dict[str, Any]]]) -> None:
        engine = sa.create_engine(self.ws.settings().database_url())
        try:
            with engine.begin() as conn:
                for table in reversed(t.metadata.sorted_tables):
                    conn.execute(table.delete())
                for table in t.metadata.sorted_tables:
                    if snapshot[table.name]:
                        conn.execute(table.insert(), snapshot[table.name])
        finally:
            engine.dispose()


@pytest.fixture
def spine(workspace, tmp_path) -> Spine:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    workspace.add_source(name="manual", kind="import.json", path=str(data_dir / "in.jsonl"))
    return Spine(ws=workspace, data_dir=data_dir)
