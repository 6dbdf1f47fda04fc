"""Benchmark: policy states from the fake Azure, through the real PolicyInsightsClient,
into stored evidence (artifact in the store, ledger entry, observations in SQLite).

Prints records/s, the floor (``json.loads`` over the same page bytes, measured in
the same run) and the ratio, and the peak RSS of the collecting process at two
sizes, to show memory stays flat as the page count grows.

    python bench/azure_policy_states.py                       # 1,000 pages x 1,000 states
    python bench/azure_policy_states.py --pages 20 --per-page 500

Sizes also come from EVIDENCE_BENCH_PAGES / EVIDENCE_BENCH_PER_PAGE. The fake server
runs in a separate process so its memory and CPU are not counted as the collector's.
Each size runs in a fresh worker process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SUB = "5a3f0c1e-5a3f-4c1e-8a3f-00000000a001"
PATH = f"/subscriptions/{SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
SUMMARIZE = f"/subscriptions/{SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize"


def page_items(number: int, per_page: int) -> list[dict[str, Any]]:
    from evidence.sample.fakeazure.sample_env import policy_state

    first = (number - 1) * per_page
    return [policy_state(SUB, first + i) for i in range(per_page)]


def page_bytes(number: int, per_page: int) -> bytes:
    return json.dumps({"value": page_items(number, per_page)}).encode()


def serve(pages: int, per_page: int, conn: Any) -> None:
    """The fake, in its own process, until told to stop."""
    from evidence.sample.fakeazure import FakeAzure, Response

    with FakeAzure(record=False) as fake:
        fake.paged(
            "POST",
            PATH,
            page_count=pages,
            items=[],
            next_key="@odata.nextLink",
            render=lambda n: page_bytes(n, per_page),
        )
        total = pages * per_page
        summary = {
            "value": [
                {
                    "policyAssignments": [
                        {
                            "policyAssignmentId": "/bench",
                            "policyDefinitions": [
                                {
                                    "policyDefinitionId": "/bench",
                                    "results": {
                                        "resourceDetails": [
                                            {"complianceState": "all", "count": total}
                                        ]
                                    },
                                }
                            ],
                        }
                    ]
                }
            ]
        }
        fake.route("POST", SUMMARIZE, lambda _req: Response(200, summary))
        conn.send(
            (fake.base_url, str(fake.ca_pem), fake.tenant_id, fake.client_id, fake.client_secret)
        )
        conn.recv()  # stop


def worker(pages: int, per_page: int) -> dict[str, Any]:
    from evidence.config import load_settings
    from evidence.services import setup
    from evidence.services.collect import run_source
    from evidence.services.runtime import open_runtime

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(pages, per_page, child), daemon=True
    )
    server.start()
    base_url, ca_pem, tenant, client, secret = parent.recv()
    os.environ.update(AZURE_TENANT_ID=tenant, AZURE_CLIENT_ID=client, AZURE_CLIENT_SECRET=secret)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-policy-") as tmp:
            root = Path(tmp)
            config = (
                setup.STARTER_CONFIG
                + f"""
[azure]
credential = "client_secret"
resource_manager_url = "{base_url}"
authority_host = "{base_url}"
ca_bundle = "{ca_pem}"

[[sources]]
name = "bench-policy"
kind = "azure.policy_states"
subscriptions = ["{SUB}"]
"""
            )
            setup.init(root, config_text=config)
            settings = load_settings(root / "config.toml")
            setup.db_upgrade(settings)
            rt = open_runtime(settings)
            try:
                started = time.perf_counter()
                result = run_source(rt, settings.source("bench-policy"))
                elapsed = time.perf_counter() - started
            finally:
                rt.close()
        # The collector alone (SDK, HTTPS, paging, observe), without storing: how the
        # time splits between fetching and the evidence pipeline.
        from evidence.collectors.base import CollectContext
        from evidence.services.collect import build_collector

        with tempfile.TemporaryDirectory(prefix="bench-policy-") as tmp:
            setup.init(Path(tmp), config_text=config)
            settings = load_settings(Path(tmp) / "config.toml")
            source = settings.source("bench-policy")
            collector = build_collector(source, collector_env_for(settings))
            ctx = CollectContext(source=source.name, base_dir=Path(tmp), pseudonymize=str)
            started = time.perf_counter()
            seen = 0
            for index, record in enumerate(collector.collect(ctx)):
                seen += sum(1 for _ in collector.observe(record, index))
            fetch_only = time.perf_counter() - started
    finally:
        parent.send("stop")
        server.join(10)
    if result.status != "complete" or not result.stored:
        raise SystemExit(f"bench run did not complete: {result.status} {result.errors}")
    # Floor: parse the very same page bytes with json.loads.
    floor = 0.0
    for number in range(1, pages + 1):
        data = page_bytes(number, per_page)
        t0 = time.perf_counter()
        json.loads(data)
        floor += time.perf_counter() - t0
    records = result.records
    return {
        "pages": pages,
        "records": records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed),
        "floor_seconds": round(floor, 3),
        "floor_records_per_s": round(records / floor),
        "ratio_to_floor": round(elapsed / floor, 1),
        "collector_only_records_per_s": round(seen / fetch_only),
        "collector_only_ratio_to_floor": round(fetch_only / floor, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def collector_env_for(settings: Any) -> Any:
    from evidence.collectors.base import CollectorEnv

    return CollectorEnv(base_dir=settings.base_dir, azure=settings.azure)


def run_worker(pages: int, per_page: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "--pages", str(pages), "--per-page", str(per_page)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pages", type=int, default=int(os.environ.get("EVIDENCE_BENCH_PAGES", 1000))
    )
    parser.add_argument(
        "--per-page", type=int, default=int(os.environ.get("EVIDENCE_BENCH_PER_PAGE", 1000))
    )
    parser.add_argument("--small-pages", type=int, default=0, help="the smaller size (pages/10)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.pages <= 100_000 or not 1 <= args.per_page <= 5_000:
        raise SystemExit("--pages must be 1..100000 and --per-page 1..5000")
    if args.worker:
        print(json.dumps(worker(args.pages, args.per_page)))
        return
    small = args.small_pages or max(1, args.pages // 10)
    results = [run_worker(small, args.per_page), run_worker(args.pages, args.per_page)]
    for r in results:
        print(
            f"{r['pages']:>6} pages {r['records']:>9} states: {r['records_per_s']:>8} records/s "
            f"(floor json.loads {r['floor_records_per_s']} records/s, "
            f"ratio {r['ratio_to_floor']}x), "
            f"{r['seconds']} s, peak RSS {r['peak_rss_mb']} MB; collector alone "
            f"{r['collector_only_records_per_s']} records/s "
            f"(ratio {r['collector_only_ratio_to_floor']}x)"
        )
    growth = results[1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    print(f"peak RSS ratio {results[1]['pages']} vs {results[0]['pages']} pages: {growth:.2f}")
    print(json.dumps({"runs": results, "rss_growth": round(growth, 2)}))


if __name__ == "__main__":
    main()
