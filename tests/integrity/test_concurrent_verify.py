"""Verify while collections run in another process: never a false problem.

Verify takes its picture (store keys, index, witness) under the ledger lock and
lists the store before reading the index, so an artifact being published is
either not seen yet or already named by its pending row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

RUNS = 8
DEADLINE = 180

CHILD = textwrap.dedent(
    """
    import json, sys
    from evidence.cli import main
    config, data, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for round in range(runs):
        with open(data, "w") as out:
            for i in range(300):
                out.write(json.dumps({"id": f"r{i}", "round": round}) + "\\n")
        code = main(["--config", config, "collect"])
        if code != 0:
            sys.exit(code)
    """
)


def test_verify_during_collections_reports_no_problem(spine):
    spine.collect(1)
    child = subprocess.Popen(
        [
            sys.executable, "-c", CHILD, str(spine.ws.config_path),
            str(spine.data_dir / "in.jsonl"), str(RUNS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    verified = 0
    began = time.monotonic()
    try:
        while child.poll() is None and time.monotonic() - began < DEADLINE:
            result = spine.ws.cli("verify", "--json")
            report = json.loads(result.out)
            assert report["problems"] == [], json.dumps(report, indent=1)
            assert result.code == 0, report
            verified += 1
    finally:
        if child.poll() is None:
            child.kill()
        out, err = child.communicate(timeout=DEADLINE)
    assert child.returncode == 0, out.decode() + err.decode()
    assert verified >= 2
    code, report = spine.verify()
    assert (code, report["problems"]) == (0, [])
    assert report["checked"]["entries"] == RUNS + 1
