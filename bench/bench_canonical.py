"""Canonicalization: records/s of ``canonicalize`` against the reference ``rfc8785.dumps``.

Target: at least 5x the reference while byte-identical to it (asserted on every
record). Usage: ``python bench/bench_canonical.py [RECORDS]`` (default 20,000,
or $BENCH_CANON_RECORDS). Rounds alternate between the two so machine load
drifts hit both alike; the best round of each counts.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import rfc8785

sys.path.insert(0, str(Path(__file__).parent))
from records import records

from evidence.domain.canonical import canonicalize

TARGET = 5.0
ROUNDS = 5


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else int(os.environ.get("BENCH_CANON_RECORDS", 20_000))
    data = list(records(count))
    size = sum(len(rfc8785.dumps(r)) for r in data[:1000]) / min(count, 1000)
    mismatches = sum(1 for r in data if canonicalize(r) != rfc8785.dumps(r))
    if mismatches:
        print(f"canonical: {mismatches} of {count} records differ from the reference: FAIL")
        return 1
    best = {"reference": float("inf"), "canonicalize": float("inf")}
    for _ in range(ROUNDS):  # bounded
        for name, fn in (("reference", rfc8785.dumps), ("canonicalize", canonicalize)):
            start = time.perf_counter()
            for item in data:
                fn(item)
            best[name] = min(best[name], time.perf_counter() - start)
    ref_rate = count / best["reference"]
    our_rate = count / best["canonicalize"]
    ratio = our_rate / ref_rate
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(
        f"canonical: {count} records of ~{size:.0f} B, byte-identical; "
        f"floor rfc8785 {ref_rate:,.0f} rec/s; canonicalize {our_rate:,.0f} rec/s; "
        f"ratio {ratio:.2f}x (target >= {TARGET:.0f}x) {verdict}"
    )
    return 0 if ratio >= TARGET else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
