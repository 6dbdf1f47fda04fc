"""A reader that stops early (``evidence status | head -1``) is not an error of ours:
no traceback, exit 0."""

from __future__ import annotations

import subprocess
import sys


def test_status_into_a_closed_pipe_is_quiet(workspace):
    proc = subprocess.Popen(
        [sys.executable, "-m", "evidence.cli", "--config", str(workspace.config_path), "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line, as after `head -0`
    err = proc.stderr.read() if proc.stderr else b""
    code = proc.wait(timeout=120)
    assert b"Traceback" not in err, err.decode()
    assert code == 0
