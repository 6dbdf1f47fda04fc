"""``azure.defender`` against the fake Resource Manager: the corpus assessments and
sub-assessments, paged, one subscription failing (the run is partial, the others kept)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.collectors.base import CollectorEnv
from evidence.collectors.registry import get_collector
from evidence.db import tables as t
from evidence.sample.fakeazure import FakeAzure, server_error
from evidence.services.collect import run_source

DEFENDER = Path(__file__).parent / "fixtures" / "vulnerability_scans" / "defender_for_cloud"
SUB1 = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
SUB2 = "00000000-0000-4000-8000-0000000000b2"
SUB3 = "00000000-0000-4000-8000-0000000000b3"


def body(name: str) -> Any:
    return json.loads((DEFENDER / name).read_text())["responses"]["200"]["body"]


def listing(sub: str, what: str) -> str:
    return f"/subscriptions/{sub}/providers/Microsoft.Security/{what}"


@pytest.fixture
def fake() -> Iterator[FakeAzure]:
    with FakeAzure() as server:
        yield server


@pytest.fixture
def defender(workspace, fake, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", fake.client_secret)
    workspace.extra_config = "\n".join(
        [
            "[azure]",
            'credential = "client_secret"',
            f'resource_manager_url = "{fake.base_url}"',
            f'authority_host = "{fake.base_url}"',
            f'ca_bundle = "{fake.ca_pem}"',
            "retry_total = 1",
        ]
    )
    listed = body("defender_assessments_list_healthy_and_notapplicable_2025-05-04.json")["value"]
    fake.paged("GET", listing(SUB1, "assessments"), page_count=2, items=[[v] for v in listed])
    subs = body("defender_subassessments_list_subscription_container_vuln_2019-01-01-preview.json")
    sql = body("defender_subassessments_list_sql_va_healthy_2019-01-01-preview.json")
    fake.paged(
        "GET", listing(SUB1, "subAssessments"), page_count=2, items=[subs["value"], sql["value"]]
    )
    fake.fault("GET", listing(SUB2, "assessments"), server_error(500), times=None)
    risky = body("defender_assessment_get_with_risk_2025-05-04.json")
    risky = {**risky, "id": risky["id"].replace(SUB1, SUB3)}
    fake.json("GET", listing(SUB3, "assessments"), {"value": [risky]})
    fake.json("GET", listing(SUB3, "subAssessments"), {"value": []})
    workspace.add_source(name="defender", kind="azure.defender", subscriptions=[SUB1, SUB2, SUB3])
    return workspace


def run(ws):
    rt = ws.runtime()
    source = rt.settings.source("defender")
    cls = get_collector(source.kind)
    env = CollectorEnv(
        base_dir=rt.settings.base_dir, azure=rt.settings.azure, extra={"sleep": lambda _s: None}
    )
    options = cls.options_model.model_validate(source.options)
    return run_source(rt, source, collector=cls(options, env))


def rows(ws, kind: str) -> list[Any]:
    rt = ws.runtime()
    with rt.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.observations).where(
                    t.observations.c.kind == kind, t.observations.c.valid_to.is_(None)
                )
            )
        )


def test_assessments_and_sub_assessments(defender):
    result = run(defender)
    assert result.status == "partial"
    (error,) = result.errors
    assert error["scope"] == f"/subscriptions/{SUB2}"
    assert error["code"] == "ServiceUnavailable"

    assessments = {r.subject: r.attributes for r in rows(defender, "defender.assessment")}
    assert len(assessments) == 5  # 2 + 2 in SUB1, 1 in SUB3, none from the failed SUB2
    statuses = sorted(a["status"] for a in assessments.values())
    assert statuses == ["Healthy", "Healthy", "NotApplicable", "NotApplicable", "Unhealthy"]
    vmss2 = next(a for s, a in assessments.items() if "vmss2" in s and SUB1 in s)
    assert vmss2["cause"] == "OffByPolicy"
    assert vmss2["resource_id"].endswith("/virtualMachineScaleSets/vmss2")
    sql = next(
        a
        for a in assessments.values()
        if a["assessment_name"] == "8fbe5054-e97c-3a7a-fda7-c8308ca8d3cf"
    )
    assert (sql["status"], sql["severity"], sql["cause"]) == ("Healthy", "High", "Unknown")

    (finding,) = [r.attributes for r in rows(defender, "vulnerability.finding")]
    assert finding["scanner"] == "defender"
    assert finding["vulnerability_id"] == "CVE-2019-12345"
    assert finding["severity"] == "high"
    assert finding["fix_state"] == "fixed"  # patchable
    assert finding["artifact_digest"] == "c186fc44-3154-4ce2-ba18-b719d895c3b0"
    assert "/repository/myRepo/imageDigest/" in finding["target"]


def test_unchanged_defender_state_adds_no_rows(defender):
    first = run(defender)
    second = run(defender)
    assert first.observations_added == 6
    assert second.observations_added == 0
