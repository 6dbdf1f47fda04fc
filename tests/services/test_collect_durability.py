"""The content spool is flushed to disk beside the run's database work (on a thread
of its own); the run is recorded only once that flush succeeded."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.db import tables as t
from evidence.services import collect
from evidence.services.collect import run_source


def test_a_content_spool_that_cannot_be_flushed_records_nothing(workspace, tmp_path, monkeypatch):
    """A failed flush rolls the run's transaction back: no artifact, no observations,
    and the run is recorded as failed."""
    def failing_flush(self: Any) -> None:
        os.close(self._fd)
        self._error = OSError(errno.EIO, "I/O error")

    (tmp_path / "a.jsonl").write_text('{"id": "a1"}\n')
    workspace.add_source(name="src", kind="import.json", path=str(tmp_path / "a.jsonl"))
    rt = workspace.runtime()
    monkeypatch.setattr(collect._BackgroundFsync, "_flush", failing_flush)

    with pytest.raises(OSError, match="I/O error"):
        run_source(rt, workspace.settings().source("src"))

    def count(table: sa.Table) -> int:
        with rt.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    assert (count(t.artifacts), count(t.observations)) == (0, 0)
    with rt.engine.connect() as conn:
        assert conn.execute(sa.select(t.runs.c.status)).scalars().all() == ["failed"]
