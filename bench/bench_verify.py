"""Verify: ``evidence verify`` over a store against plain SHA-256 of the same stored bytes.

Target: verify at least half the speed of the floor (the floor reads every file
in the store and hashes it; verify also splits lines, builds Merkle trees,
checks the ledger, signatures and the database index). It measures whichever
leaf hasher runs (native unless $EVIDENCE_PURE_PYTHON is set) and says which. Uses the deployment in
``--workdir`` (e.g. one kept by ``bench_ingest.py --keep``), or builds one by
collecting ``--records`` records (default 1,000,000, or $BENCH_VERIFY_RECORDS)
twice. Rounds alternate floor and verify; the best of each counts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _workspace
from records import write_jsonl

from evidence.config import load_settings
from evidence.domain.merkle import NATIVE
from evidence.services.collect import run_source
from evidence.services.runtime import open_runtime
from evidence.services.verify import verify

TARGET = 0.5
ROUNDS = 3
CHUNK = 1024 * 1024


def floor_seconds(store: Path) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    for folder, _dirs, files in os.walk(store):
        for name in files:
            digest = hashlib.sha256()
            with open(os.path.join(folder, name), "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    total += len(chunk)
    return time.perf_counter() - start, total


def build(root: Path, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    data = root / "records.jsonl"
    write_jsonl(data, count)
    settings = _workspace.make_workspace(root, _workspace.create_database("sqlite", root), data)
    rt = open_runtime(settings)
    for _ in range(2):
        run_source(rt, settings.source("bench"))
    rt.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--records", type=int, default=int(os.environ.get("BENCH_VERIFY_RECORDS", 1_000_000))
    )
    args = parser.parse_args(argv[1:])
    temporary = None
    root = args.workdir
    if root is None:
        temporary = Path(tempfile.mkdtemp(prefix="evidence-bench-verify-"))
        root = temporary / "deployment"
        build(root, args.records)
    try:
        settings = load_settings(root / "config.toml")
        rt = open_runtime(settings)
        store = settings.resolve(settings.store.path)
        best_floor = best_verify = float("inf")
        size = 0
        for _ in range(ROUNDS):  # bounded
            seconds, size = floor_seconds(store)
            best_floor = min(best_floor, seconds)
            start = time.perf_counter()
            result = verify(rt, remember=False)
            best_verify = min(best_verify, time.perf_counter() - start)
            if not result.ok:
                print(f"verify: the store did not verify: {result.to_json()}")
                return 1
        rt.close()
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    speed = best_floor / best_verify
    mb = size / 1e6
    verdict = "ok" if speed >= TARGET else "BELOW TARGET"
    route = "native leaf hashing" if NATIVE else "pure-Python leaf hashing"
    print(
        f"verify ({route}): {mb:,.0f} MB in the store, {result.checked['records']:,} records; "
        f"floor SHA-256 {mb / best_floor:,.0f} MB/s; verify {mb / best_verify:,.0f} MB/s; "
        f"{speed:.2f}x the floor's speed (target >= {TARGET}x) {verdict}"
    )
    return 0 if speed >= TARGET else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
