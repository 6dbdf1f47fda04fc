"""Ingest and steady state: ``import.json`` records through ``run_source``.

For each size (default 100,000 and 1,000,000 records of ~1.3-1.5 KB; set
$BENCH_INGEST_RECORDS or ``--records 50000,100000``) this writes a JSON-lines
file, measures the floor (``json.loads`` + SHA-256 over the same bytes, in this
process), then runs a child process that collects the file into a fresh
deployment (stored artifact + ledger + signed checkpoint + observations) and
collects it a second time, unchanged. It does this ``--rounds`` times (default
3, or $BENCH_INGEST_ROUNDS), floor and child alike, and compares the fastest of
each: the machine is shared and its speed drifts. It prints:

* ingest: records/s and the ratio of the first run's time to the floor
  (target: within 3x);
* memory: the child's peak RSS (target: under 256 MB, flat from 100k to 1M);
* steady state: observation rows before and after the re-collect (must be
  equal) and what the store grew by (must be the envelope, the ledger entry
  and the checkpoint only: the content is deduplicated).

``--database postgresql`` runs against $EVIDENCE_BENCH_POSTGRES_URL (default
the loopback server) in a database of its own, dropped afterwards. ``--keep
DIR`` leaves the largest deployment in DIR (``bench_verify.py`` can use it).
Everything stays on this machine; every loop is bounded by the record count.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import _workspace
from records import write_jsonl

INGEST_TARGET = 3.0
RSS_TARGET_MB = 256
DEFAULT_SIZES = "100000,1000000"


def floor_seconds(path: Path) -> float:
    """``json.loads`` of every line plus SHA-256 of all the bytes: the floor."""
    start = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
            digest.update(line)
    return time.perf_counter() - start


def store_usage(store: Path) -> dict[str, int]:
    """Bytes in the store by top-level kind of key (content, envelopes, ledger)."""
    usage: dict[str, int] = {}
    for folder, _dirs, files in os.walk(store):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), store).replace(os.sep, "/")
            kind = "/".join(rel.split("/")[:2]) if rel.startswith("ledger/") else rel.split("/")[0]
            usage[kind] = usage.get(kind, 0) + os.path.getsize(os.path.join(folder, name))
    return usage


def child(root: Path, data: Path, url: str) -> None:
    """Run in the child process: collect twice, print one JSON document."""
    import sqlalchemy as sa

    from evidence.db import tables as t
    from evidence.services.collect import run_source
    from evidence.services.runtime import open_runtime

    settings = _workspace.make_workspace(root, url, data)
    rt = open_runtime(settings)
    source = settings.source("bench")

    def rows() -> int:
        with rt.engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(t.observations))
            return int(count.scalar_one())

    out: dict[str, Any] = {}
    for name in ("first", "second"):
        before_rows, before_store = rows(), store_usage(rt.settings.resolve(rt.settings.store.path))
        start = time.perf_counter()
        result = run_source(rt, source)
        seconds = time.perf_counter() - start
        after_store = store_usage(rt.settings.resolve(rt.settings.store.path))
        out[name] = {
            "seconds": seconds,
            "status": result.status,
            "stored": result.stored,
            "records": result.records,
            "added": result.observations_added,
            "closed": result.observations_closed,
            "rows_before": before_rows,
            "rows_after": rows(),
            "store_growth": {
                k: after_store.get(k, 0) - before_store.get(k, 0)
                for k in sorted(after_store)
                if after_store.get(k, 0) != before_store.get(k, 0)
            },
        }
    rt.close()
    print(json.dumps(out))


def run_size(count: int, backend: str, workdir: Path, rounds: int) -> dict[str, Any]:
    """``rounds`` times: the floor, then a child collecting into a fresh deployment.

    The machine is shared and its speed drifts by tens of percent within minutes,
    so both sides are measured in every round and the fastest of each is compared
    (the floor is also measured once more at the end)."""
    base = workdir / f"ingest-{count}"
    base.mkdir(parents=True)
    data = base / "records.jsonl"
    size = write_jsonl(data, count)
    floors: list[float] = []
    runs: list[dict[str, Any]] = []
    for number in range(rounds):  # bounded
        floors.append(floor_seconds(data))
        root = base / f"round-{number}"
        root.mkdir()
        url = _workspace.create_database(backend, root)
        try:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", str(root), str(data), url],
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None
            output = proc.stdout.read()
            _pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise SystemExit(f"ingest child failed with exit code {proc.returncode}")
            run: dict[str, Any] = json.loads(output)
        finally:
            _workspace.drop_database(url)
        run.update(rss_mb=usage.ru_maxrss / 1024, root=str(root))
        runs.append(run)
    floors.append(floor_seconds(data))
    best = min(runs, key=lambda r: float(r["first"]["seconds"]))
    return {
        **best,
        "count": count,
        "bytes": size,
        "floor": min(floors),
        "floors": (min(floors), max(floors)),
        "rounds": rounds,
        "firsts": [r["first"]["seconds"] for r in runs],
        # Every round must hold the steady state and the memory bound, not just the best.
        "steady_all": all(r["second"]["rows_before"] == r["second"]["rows_after"] for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
    }


def report(results: list[dict[str, Any]], backend: str) -> bool:
    ok = True
    for r in results:
        first, second = r["first"], r["second"]
        ratio = first["seconds"] / r["floor"]
        good = ratio <= INGEST_TARGET and first["status"] == "complete" and first["stored"]
        ok &= good
        print(
            f"ingest[{backend}] {r['count']:,} records ({r['bytes'] / r['count']:.0f} B avg): "
            f"floor {r['count'] / r['floor']:,.0f} rec/s "
            f"(slowest {r['count'] / r['floors'][1]:,.0f}); run_source "
            f"{r['count'] / first['seconds']:,.0f} rec/s (best of {r['rounds']}, slowest "
            f"{r['count'] / max(r['firsts']):,.0f}); {ratio:.2f}x the floor's "
            f"time (target <= {INGEST_TARGET:.0f}x) {'ok' if good else 'ABOVE TARGET'}"
        )
        print(
            f"  re-collect unchanged: {r['count'] / second['seconds']:,.0f} rec/s "
            f"({second['seconds'] / r['floor']:.2f}x the floor); observation rows "
            f"{second['rows_before']:,} -> {second['rows_after']:,}; added {second['added']}, "
            f"closed {second['closed']}; store grew by {second['store_growth']}"
        )
        steady = (
            r["steady_all"]
            and second["rows_before"] == second["rows_after"]
            and second["added"] == 0
            and "content" not in second["store_growth"]
        )
        ok &= steady
        print(f"  steady state: {'ok' if steady else 'FAIL'}")
        rss_ok = r["rss_mb"] < RSS_TARGET_MB
        ok &= rss_ok
        print(
            f"  peak RSS of the collecting process: {r['rss_mb']:.0f} MB "
            f"(target < {RSS_TARGET_MB} MB) {'ok' if rss_ok else 'ABOVE TARGET'}"
        )
    if len(results) > 1:
        small, large = results[0], results[-1]
        growth = large["rss_mb"] / small["rss_mb"]
        flat = growth < 1.25
        ok &= flat
        print(
            f"memory: peak RSS {small['rss_mb']:.0f} MB at {small['count']:,} -> "
            f"{large['rss_mb']:.0f} MB at {large['count']:,} records ({growth:.2f}x) "
            f"{'flat' if flat else 'NOT FLAT'}"
        )
    return ok


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--child":
        child(Path(argv[2]), Path(argv[3]), argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--records", default=os.environ.get("BENCH_INGEST_RECORDS", DEFAULT_SIZES)
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--keep", type=Path, help="leave the largest deployment here")
    parser.add_argument(
        "--rounds", type=int, default=int(os.environ.get("BENCH_INGEST_ROUNDS", 3))
    )
    args = parser.parse_args(argv[1:])
    sizes = sorted(int(n) for n in args.records.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="evidence-bench-"))
    try:
        results = [run_size(n, args.database, workdir, args.rounds) for n in sizes]
        ok = report(results, args.database)
        if args.keep:
            shutil.move(results[-1]["root"], args.keep)
            print(f"kept the {sizes[-1]:,}-record deployment in {args.keep}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
