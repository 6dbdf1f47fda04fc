"""Benchmark: assess N observations (default 1,000,000) across every built-in check, against
the floor of one pass reading the same rows from the database.

    .venv/bin/python bench/assess.py                 # full size, SQLite in a temp folder
    .venv/bin/python bench/assess.py --rows 20000    # small
    BENCH_ASSESS_ROWS=20000 .venv/bin/python bench/assess.py
    .venv/bin/python bench/assess.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Rows are spread over every observation kind the checks read, with realistic attributes;
vulnerability and Defender subjects get earlier history rows so the SLA rules walk history.
The floor selects the same columns of every row once, through the same SQLAlchemy types.
The assessment reads the current rows of each kind once (history for SLA kinds, ordered),
judges every check and rolls up every control of the three frameworks. Printed: both times,
rows per second, and the ratio assess / floor.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from evidence.assessment import load_library
from evidence.assessment.evaluate import roll_up
from evidence.config import settings_from_dict
from evidence.db import tables as t
from evidence.db.session import make_engine, upgrade
from evidence.services.assess import OBSERVATION_COLUMNS, evaluate_checks
from evidence.services.runtime import Runtime
from evidence.store.memory import MemoryStore

NOW = datetime(2026, 6, 1, tzinfo=UTC)
# share of rows per kind
SHARES = {
    "azure.policy_state": 0.30,
    "vulnerability.finding": 0.25,
    "azure.retention_setting": 0.10,
    "azure.key_rotation": 0.08,
    "azure.access_review": 0.08,
    "defender.assessment": 0.12,
    "secret.finding": 0.035,
    "scan.report": 0.035,
}
SETTINGS = [
    "blob_soft_delete",
    "lifecycle_delete",
    "immutability_policy",
    "log_analytics_retention",
    "key_vault_purge_protection",
]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def attributes(kind: str, i: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    if kind == "azure.policy_state":
        state = "NonCompliant" if rng.random() < 0.02 else "Compliant"
        rid = f"/subscriptions/s{i % 50}/resourcegroups/rg{i % 300}/providers/x/r{i}"
        return f"{rid}|pa{i % 40}|pd{i % 200}|", {
            "resource_id": rid,
            "resource_type": "x",
            "resource_group": f"rg{i % 300}",
            "subscription_id": f"s{i % 50}",
            "policy_assignment_id": f"pa{i % 40}",
            "policy_assignment_name": "a",
            "policy_definition_id": f"pd{i % 200}",
            "policy_definition_name": "d",
            "policy_definition_reference_id": "",
            "policy_set_definition_id": "",
            "compliance_state": state,
            "is_compliant": state == "Compliant",
        }
    if kind == "vulnerability.finding":
        sev = rng.choice(["critical", "high", "medium", "low", "low", "medium"])
        subject = f"img{i % 500}|CVE-2026-{i}|pkg{i % 900}|1.{i % 7}"
        return subject, {
            "scanner": "trivy",
            "scanner_version": "0.50",
            "db_version": "2",
            "target": f"img{i % 500}",
            "artifact_digest": "sha256:" + "0" * 64,
            "vulnerability_id": f"CVE-2026-{i}",
            "package": f"pkg{i % 900}",
            "installed_version": f"1.{i % 7}",
            "fixed_version": "2.0",
            "severity": sev,
            "scanner_severity": sev.upper(),
            "fix_state": "fixed",
            "suppressed": False,
        }
    if kind == "azure.retention_setting":
        setting = SETTINGS[i % len(SETTINGS)]
        return f"/r/{i}|{setting}", {
            "resource_id": f"/r/{i}",
            "resource_type": "x",
            "subscription_id": "s",
            "setting": setting,
            "enabled": rng.random() > 0.01,
            "days": rng.choice([7, 14, 365, 400, 3000]),
            "locked": rng.random() > 0.01,
            "details": {},
        }
    if kind == "azure.key_rotation":
        created = NOW - timedelta(days=rng.randint(1, 400))
        return f"https://v{i % 100}.vault/keys/k{i}", {
            "vault_url": f"https://v{i % 100}.vault",
            "key_name": f"k{i}",
            "enabled": True,
            "versions": [],
            "version_count": 1,
            "current_version": "v1",
            "current_created": iso(created),
            "expires": None,
            "rotation_policy": {"rotate_after": "P365D", "rotate_before_expiry": None}
            if rng.random() > 0.1
            else None,
        }
    if kind == "azure.access_review":
        done = NOW - timedelta(days=rng.randint(1, 120))
        return f"def{i % 2000}/inst{i}", {
            "definition_id": f"def{i % 2000}",
            "definition_name": "d",
            "scope": "s",
            "reviewers": [],
            "recurrence": "quarterly",
            "auto_apply": True,
            "instance_start": iso(done - timedelta(days=14)),
            "instance_end": iso(done),
            "status": "Completed",
            "completed_at": iso(done),
            "decision_counts": {"approve": 3, "deny": 1, "not_reviewed": 0, "dont_know": 0},
            "decisions_total": 4,
            "denials_applied": rng.random() > 0.02,
            "decisions": [],
        }
    if kind == "defender.assessment":
        status = "Unhealthy" if rng.random() < 0.3 else "Healthy"
        return f"/r/{i}/assessments/a{i % 80}", {
            "resource_id": f"/r/{i}",
            "assessment_name": f"a{i % 80}",
            "display_name": "x",
            "status": status,
            "severity": rng.choice(["High", "Medium", "Low"]),
            "cause": "",
        }
    if kind == "secret.finding":
        return f"repo{i % 50}|rule|f{i}|{i % 400}|c{i}", {
            "scanner": "gitleaks",
            "scanner_version": "8",
            "target": f"repo{i % 50}",
            "rule": "generic-api-key",
            "file": f"f{i}",
            "line": i % 400,
            "commit": f"c{i}",
            "date": iso(NOW),
            "suppressed": rng.random() > 0.001,
        }
    return f"trivy|img{i}", {
        "scanner": "trivy",
        "scanner_version": "0.50",
        "target": f"img{i}",
        "file_sha256": "0" * 64,
        "finding_counts": {"critical": 0},
        "generated_at": iso(NOW),
    }


def populate(engine: sa.Engine, rows: int, seed: int = 7) -> int:
    """Insert ``rows`` observation rows (and a complete run per source); return the count."""
    rng = random.Random(seed)
    run_time = NOW - timedelta(hours=2)
    envelope = "sha256:" + "e" * 64
    with engine.begin() as conn:
        for kind in SHARES:
            conn.execute(
                t.runs.insert().values(
                    id=kind.replace(".", "-"),
                    source=f"src-{kind}",
                    collector="bench",
                    collector_version="1",
                    status="complete",
                    started_at=run_time,
                    finished_at=run_time,
                    record_count=0,
                    page_count=0,
                    errors=[],
                    scopes=[],
                    envelope_sha256=envelope,
                )
            )
    written = 0
    batch: list[dict[str, Any]] = []
    for kind, share in SHARES.items():
        count = int(rows * share)
        if kind == "scan.report":
            count = rows - written - len(batch)  # the remainder, so the total is exact
        history = kind in ("vulnerability.finding", "defender.assessment")
        i = 0
        while i < count:
            subject, attrs = attributes(kind, i, rng)
            base = {
                "source": f"src-{kind}",
                "kind": kind,
                "subject": subject,
                "scope": "",
                "observed_at": NOW - timedelta(days=1),
                "fingerprint": "f" * 64,
                "envelope_sha256": envelope,
                "record_index": i,
            }
            if history and i + 1 < count and rng.random() < 0.1:
                # an earlier, changed version of the same open finding, closed when it changed
                changed = NOW - timedelta(days=rng.randint(5, 60))
                opened = changed - timedelta(days=rng.randint(1, 30))
                batch.append(
                    {
                        **base,
                        "attributes": {**attrs, "fix_state": "old"},
                        "valid_from": opened,
                        "valid_to": changed,
                    }
                )
                batch.append({**base, "attributes": attrs, "valid_from": changed, "valid_to": None})
                i += 2
            else:
                batch.append(
                    {
                        **base,
                        "attributes": attrs,
                        "valid_from": run_time - timedelta(days=rng.randint(0, 30)),
                        "valid_to": None,
                    }
                )
                i += 1
            if len(batch) >= 10000:
                with engine.begin() as conn:
                    conn.execute(t.observations.insert(), batch)
                written += len(batch)
                batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(t.observations.insert(), batch)
        written += len(batch)
    return written


def floor_pass(engine: sa.Engine) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    with engine.connect() as conn:
        for _row in conn.execution_options(yield_per=5000).execute(sa.select(*OBSERVATION_COLUMNS)):
            n += 1
    return time.perf_counter() - start, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=int(os.environ.get("BENCH_ASSESS_ROWS", "1000000"))
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_ASSESS_DATABASE_URL", ""))
    parser.add_argument("--repeat", type=int, default=2, help="best of N for each timing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-assess-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        with engine.connect() as conn:
            existing = conn.execute(
                sa.select(sa.func.count()).select_from(t.observations)
            ).scalar_one()
        if existing:
            print(
                f"the database already holds {existing} observations; use an empty one",
                file=sys.stderr,
            )
            return 2
        started = time.perf_counter()
        total = populate(engine, args.rows)
        print(
            f"populated {total} observation rows in {time.perf_counter() - started:.1f}s "
            f"({engine.dialect.name})"
        )
        settings = settings_from_dict(
            {"database": {"url": "sqlite:///unused.db"}}, Path(tmp) / "config.toml"
        )
        rt = Runtime(
            settings=settings,
            engine=engine,
            store=MemoryStore(),
            state_dir=Path(tmp),
            signing_key=None,
        )
        library = load_library()
        floors, runs = [], []
        results: Any = None
        for _ in range(args.repeat):
            seconds, seen = floor_pass(engine)
            assert seen == total
            floors.append(seconds)
            start = time.perf_counter()
            results = evaluate_checks(rt, library, NOW)
            frameworks = roll_up(library, results)
            runs.append(time.perf_counter() - start)
        floor, assess = min(floors), min(runs)
        judged = sum(r.observations_total for r in results.values())
        controls = sum(len(f.controls) for f in frameworks)
        print(
            f"checks {len(results)}, judgements {judged} (a row is judged once per check "
            f"on its kind), controls {controls}"
        )
        print(f"floor  (one pass reading {total} rows): {floor:.2f}s  {total / floor:,.0f} rows/s")
        print(f"assess (every check, every control):  {assess:.2f}s  {total / assess:,.0f} rows/s")
        print(f"ratio assess / floor: {assess / floor:.2f}")
        engine.dispose()
        if args.database_url:
            with make_engine(url).begin() as conn:
                for table in (t.observations, t.runs):
                    conn.execute(table.delete())
    return 0


if __name__ == "__main__":
    sys.exit(main())
