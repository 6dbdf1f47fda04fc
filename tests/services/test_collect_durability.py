"""The content spool is flushed to disk beside the run's database work (on a thread
of its own); the run is recorded only once that flush succeeded."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
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


# The real command line in a child process whose files may not grow beyond a limit
# (RLIMIT_FSIZE: a write past it fails with EFBIG, as on a full disk; Python
# ignores the SIGXFSZ that comes with it).
_LIMITED_CLI = (
    "import resource, sys\n"
    "limit = int(sys.argv[1])\n"
    "resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
    "from evidence.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE (POSIX)")
def test_a_spool_that_cannot_be_written_fails_the_run_with_a_clear_error(workspace, tmp_path):
    data = tmp_path / "big.jsonl"
    with data.open("w") as out:
        for i in range(20_000):  # about 6 MB: past the limit, and over a read chunk
            out.write(f'{{"id": "r{i}", "pad": "{"x" * 300}"}}\n')
    workspace.add_source(name="src", kind="import.json", path=str(data))
    workspace.write_config()
    limit = 2 * 1024 * 1024
    assert os.path.getsize(data) > 2 * limit

    child = subprocess.run(
        [sys.executable, "-c", _LIMITED_CLI, str(limit), "--config",
         str(workspace.config_path), "collect"],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert child.returncode == 3, child.stderr
    assert "cannot write the run's spool in the outbox" in child.stderr
    assert "Traceback" not in child.stderr
    rt = workspace.runtime()
    with rt.engine.connect() as conn:
        runs = conn.execute(sa.select(t.runs.c.status, t.runs.c.errors)).all()
        artifacts = conn.execute(sa.select(sa.func.count()).select_from(t.artifacts)).scalar()
    assert [status for status, _ in runs] == ["failed"]
    assert "cannot write the run's spool" in runs[0].errors[0]["message"]
    assert artifacts == 0
    assert list((rt.state_dir / "outbox").iterdir()) == []  # its spool files are gone
    # Without the limit, the next run completes and the store verifies clean.
    assert workspace.cli("collect").code == 0
    assert workspace.cli("verify").code == 0
