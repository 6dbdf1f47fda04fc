"""Deterministic, realistic records for the benchmarks (about 1.5 KB each).

Shaped like a policy-state or vulnerability export: nested objects and arrays,
non-ASCII text, some floats, ISO timestamps, GUIDs. The same seed and index
always give the same record, so a re-collect sees unchanged data.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

WORDS = (
    "policy", "compliance", "Überprüfung", "résumé", "naïve", "storage", "vault", "key",
    "rotation", "access", "review", "Zugriff", "données", "sécurité", "東京", "日本語",
    "encryption", "network", "diagnostic", "retention", "backup", "Ελληνικά", "audit",
)
STATES = ("Compliant", "NonCompliant", "Unknown", "Exempt")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def record(index: int, seed: int = 7) -> dict[str, Any]:
    """Record number ``index``: always the same dict for the same (index, seed)."""
    rng = random.Random(seed * 1_000_003 + index)
    sub = _guid(rng)
    rg = f"rg-{rng.choice(WORDS)}-{rng.randint(1, 40)}"
    return {
        "id": f"rec-{index:09d}",
        "resourceId": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
        f"Microsoft.Storage/storageAccounts/st{index:09d}",
        "policyAssignmentId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
        f"policyAssignments/{_guid(rng)}",
        "complianceState": rng.choice(STATES),
        "timestamp": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        "isCompliant": rng.random() < 0.7,
        "score": round(rng.uniform(0, 100), 3),
        "weight": rng.choice([0.5, 1.0, 2.25, 1e-7, 3.0e21]),
        "count": rng.randint(0, 10_000),
        "description": _text(rng, 12),
        "owner": {"team": _text(rng, 2), "contact": None, "costCenter": rng.randint(1000, 9999)},
        "tags": {f"tag{j}": _text(rng, 2) for j in range(rng.randint(2, 5))},
        "findings": [
            {
                "ruleId": f"CVE-2026-{rng.randint(1000, 99999)}",
                "severity": rng.choice(SEVERITIES),
                "cvss": round(rng.uniform(0, 10), 1),
                "title": _text(rng, 6),
                "fixedVersion": f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                "references": [f"https://example.org/advisory/{rng.randint(1, 10**6)}"],
            }
            for _ in range(rng.randint(2, 3))
        ],
        "history": [rng.randint(0, 100) for _ in range(8)],
        "ratio": rng.random(),
    }


def records(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield record(index, seed)


def write_jsonl(path: Path, count: int, seed: int = 7) -> int:
    """Write ``count`` records as JSON lines; return the file's size in bytes."""
    size = 0
    with path.open("wb") as handle:
        for item in records(count, seed):
            line = orjson.dumps(item) + b"\n"
            handle.write(line)
            size += len(line)
    return size
