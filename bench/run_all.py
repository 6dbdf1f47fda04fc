"""Run every benchmark at the sizes the issue names (or smaller, see each script).

    python bench/run_all.py            # full size: 100k and 1M records (long)
    BENCH_SMALL=1 python bench/run_all.py   # 5k/20k records, for a quick look

Each script prints its figures as ratios against a floor measured in the same
run; this exits non-zero when any target is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    small = os.environ.get("BENCH_SMALL") == "1"
    sizes = "5000,20000" if small else os.environ.get("BENCH_INGEST_RECORDS", "100000,1000000")
    canon = "5000" if small else os.environ.get("BENCH_CANON_RECORDS", "20000")
    python = sys.executable
    failed = []
    with tempfile.TemporaryDirectory(prefix="evidence-bench-all-") as tmp:
        kept = Path(tmp) / "largest"
        steps = [
            ("canonical", [python, str(HERE / "bench_canonical.py"), canon]),
            (
                "ingest",
                [python, str(HERE / "bench_ingest.py"), "--records", sizes, "--keep", str(kept)],
            ),
            ("verify", [python, str(HERE / "bench_verify.py"), "--workdir", str(kept)]),
        ]
        if os.environ.get("BENCH_POSTGRES") == "1":
            largest = sizes.split(",")[-1]
            steps.append(
                (
                    "ingest-postgresql",
                    [
                        python,
                        str(HERE / "bench_ingest.py"),
                        "--records",
                        largest,
                        "--database",
                        "postgresql",
                    ],
                )
            )
        for name, command in steps:  # bounded: a fixed list
            print(f"== {name}", flush=True)
            if subprocess.call(command) != 0:
                failed.append(name)
    print(f"== targets missed: {', '.join(failed)}" if failed else "== all targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
