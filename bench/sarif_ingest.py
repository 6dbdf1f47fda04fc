"""Benchmark: ingest one big SARIF file (default 500 MB) with bounded memory.

Generates a SARIF log of ``--mb`` megabytes (env ``SARIF_BENCH_MB``) in a temporary
folder, result by result (never built in memory), then ingests it through the real
flow (``evidence ingest --kind sarif``: stream, spool, canonicalize, hash, store,
ledger, observations in SQLite) in a child process, and reports:

* records/s of the ingest, and its time as a ratio to the floor measured in the same
  run: ``json.loads`` + SHA-256 over the same result bytes (no I/O, no storage);
* the child's peak RSS (target: under 256 MB), next to the peak RSS of a child that
  only imports the code and opens the runtime (the fixed cost).

Everything is deleted afterwards. Usage: ``python bench/sarif_ingest.py [--mb 500]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

RSS_LIMIT_MB = 256
RULES = 40


def result_bytes(i: int) -> bytes:
    """One realistic result (~2.5 KB): location, region with snippet, a short code flow."""
    steps = [
        {
            "location": {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": f"src/module{(i + k) % 997}/file{(i * 7 + k) % 4001}.py"
                    },
                    "region": {"startLine": 10 + k, "startColumn": 5, "endColumn": 42},
                },
                "message": {"text": f"step {k}: value flows from request parameter into a query"},
            }
        }
        for k in range(4)
    ]
    result = {
        "ruleId": f"py/rule-{i % RULES}",
        "ruleIndex": i % RULES,
        "message": {"text": f"Finding {i}: user-controlled data reaches a sensitive sink. " * 3},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": f"src/module{i % 997}/file{i % 4001}.py",
                        "uriBaseId": "%SRCROOT%",
                    },
                    "region": {
                        "startLine": i % 5000 + 1,
                        "startColumn": 1,
                        "endColumn": 80,
                        "snippet": {
                            "text": "cursor.execute('SELECT * FROM t WHERE id=' + args['id'])"
                        },
                    },
                }
            }
        ],
        "partialFingerprints": {"primaryLocationLineHash": f"{i:016x}:1"},
        "codeFlows": [{"threadFlows": [{"locations": steps}]}],
    }
    return json.dumps(result, separators=(",", ":")).encode()


def results(target_bytes: int) -> Iterator[bytes]:
    written, i = 0, 0
    while written < target_bytes:
        data = result_bytes(i)
        written += len(data) + 1
        i += 1
        yield data


def write_sarif(path: Path, target_bytes: int, lines: Path) -> tuple[int, int]:
    """The SARIF log, and the same result bytes one per line in ``lines`` (for the floor)."""
    rules = [
        {
            "id": f"py/rule-{r}",
            "defaultConfiguration": {"level": ("error", "warning", "note")[r % 3]},
            "properties": {"security-severity": str(round(2.0 + (r % 8), 1))},
        }
        for r in range(RULES)
    ]
    count = 0
    with path.open("wb") as out, lines.open("wb") as copy:
        out.write(b'{"version":"2.1.0","runs":[{"results":[')
        for data in results(target_bytes):
            if count:
                out.write(b",\n")
            out.write(data)
            copy.write(data + b"\n")
            count += 1
        tool = {"driver": {"name": "BenchScanner", "version": "1.0", "rules": rules}}
        out.write(b'],"tool":' + json.dumps(tool).encode() + b"}]}")
    return count, path.stat().st_size


def floor_seconds(lines: Path) -> float:
    """Read the same result bytes from disk, json.loads and SHA-256 each."""
    start = time.perf_counter()
    with lines.open("rb") as handle:
        for data in handle:
            json.loads(data)
            hashlib.sha256(data).digest()
    return time.perf_counter() - start


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from evidence.config import load_settings
from evidence.services.runtime import open_runtime
settings = load_settings(Path(sys.argv[1]))
rt = open_runtime(settings)
result = None
start = time.perf_counter()
if sys.argv[2] != "-":
    from evidence.services.ingest import ingest_files
    result = ingest_files(rt, "sarif", [Path(sys.argv[2])])
seconds = time.perf_counter() - start
rt.close()
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak_kb / 1024,
                  "status": result.status if result else None,
                  "records": result.records if result else 0}))
"""


def child(config: Path, sarif: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(config), sarif],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=float(os.environ.get("SARIF_BENCH_MB", "500")))
    args = parser.parse_args()
    target = int(args.mb * 1024 * 1024)
    from evidence.services import setup

    with tempfile.TemporaryDirectory(prefix="evidence-bench-sarif-") as tmp:
        root = Path(tmp)
        setup.init(root)
        config = root / "config.toml"
        from evidence.config import load_settings

        setup.db_upgrade(load_settings(config))
        sarif = root / "big.sarif"
        start = time.perf_counter()
        lines = root / "results.jsonl"
        count, size = write_sarif(sarif, target, lines)
        took = time.perf_counter() - start
        print(f"generated {size / 1e6:.0f} MB SARIF, {count} results, in {took:.1f} s")
        floor = floor_seconds(lines)
        lines.unlink()
        baseline = child(config, "-")
        run = child(config, str(sarif))
        if run["status"] != "complete" or run["records"] != count + 1:
            print(f"FAILED: ingest ended {run}")
            return 1
        seconds = float(run["seconds"])  # type: ignore[arg-type]
        peak = float(run["peak_mb"])  # type: ignore[arg-type]
        print(f"floor (read + json.loads + sha256 per result, same bytes): {floor:.1f} s")
        print(
            f"ingest: {seconds:.1f} s, {count / seconds:,.0f} records/s, "
            f"{size / 1e6 / seconds:.1f} MB/s; ratio to floor {seconds / floor:.1f}x"
        )
        print(
            f"peak RSS: {peak:.0f} MB (runtime alone {float(baseline['peak_mb']):.0f} MB); "  # type: ignore[arg-type]
            f"limit {RSS_LIMIT_MB} MB: {'OK' if peak < RSS_LIMIT_MB else 'OVER'}"
        )
        return 0 if peak < RSS_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
