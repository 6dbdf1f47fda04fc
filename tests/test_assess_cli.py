"""The assessment commands end to end through the CLI: an operator's custom CEL check over
import.json records, re-assessment after ``collect``, a broken collection turning into
``error``, and exceptions added, listed and revoked with who and when."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from evidence.db import tables as t

CUSTOM_CHECK = """\
checks:
  - id: training-completion
    title: At least 95% of assigned staff completed security training
    kind: import.record
    rule:
      type: cel
      expression: "double(attributes.completed) / double(attributes.assigned) >= 0.95"
    ttl_days: 100
    severity: medium
    controls:
      iso27001: {A.6.3: "Completion rate shows the training happened"}
      soc2: {CC1.4: "Training keeps staff competent"}
"""


def setup_training(workspace, tmp_path: Path, rows: list[dict]) -> Path:
    checks = tmp_path / "my-checks"
    checks.mkdir(exist_ok=True)
    (checks / "training.yaml").write_text(CUSTOM_CHECK)
    data = tmp_path / "training.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    workspace.extra_config = f'[assessment]\nextra_checks_paths = ["{checks}"]\n'
    workspace.add_source(name="training", kind="import.json", path=str(data))
    return data


def control(document: dict, framework: str, control_id: str) -> dict:
    fw = next(f for f in document["frameworks"] if f["id"] == framework)
    return next(c for c in fw["controls"] if c["id"] == control_id)


def test_custom_check_collect_reassesses_and_a_failed_collection_is_an_error(workspace, tmp_path):
    data = setup_training(
        workspace,
        tmp_path,
        [
            {"id": "Q1", "assigned": 40, "completed": 40},
            {"id": "Q2", "assigned": 40, "completed": 37},
        ],
    )
    collected = workspace.cli("collect", "--json")
    assert collected.code == 0, collected.err
    summary = collected.json()["assessment"]
    assert summary["recorded"] > 0
    assert summary["frameworks"]["iso27001"]["not-satisfied"] == 1
    envelope = collected.json()["runs"][0]["envelope"]

    status = workspace.cli("status", "--json", "--framework", "iso27001").json()
    a63 = control(status, "iso27001", "A.6.3")
    assert a63["status"] == "not-satisfied"
    assert a63["checks"] == [
        {
            "id": "training-completion",
            "status": "not-satisfied",
            "failing": ["Q2"],  # 37/40 = 92.5%
            "excepted": [],
            "evidence": [envelope],
        }
    ]
    with workspace.runtime().engine.connect() as conn:
        stored = (
            conn.execute(sa.select(t.findings.c.status).where(t.findings.c.control_id == "A.6.3"))
            .scalars()
            .all()
        )
    assert stored == ["not-satisfied"]

    # The file turns unreadable: the run fails, and the control is an error, not a pass.
    data.write_text('{"id": "Q1", "assigned": 40, "completed": 40}\n{not json\n')
    broken = workspace.cli("collect", "--json")
    assert broken.code == 3
    assert broken.json()["runs"][0]["status"] == "failed"
    status = workspace.cli("status", "--json", "--framework", "iso27001").json()
    assert control(status, "iso27001", "A.6.3")["status"] == "error"
    assert workspace.cli("status", "--framework", "iso27001", "--fail-on", "error").code == 1

    detail = workspace.cli("assess", "--json").json()
    check = control(detail, "iso27001", "A.6.3")["checks"][0]
    assert "failed" in check["reasons"][0]
    assert check["observations_total"] == 2


def test_exceptions_add_list_revoke(workspace, tmp_path):
    setup_training(workspace, tmp_path, [{"id": "Q2", "assigned": 40, "completed": 37}])
    assert workspace.cli("collect").code == 0
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    added = workspace.cli(
        "exceptions",
        "add",
        "--check",
        "training-completion",
        "--subject",
        "Q*",
        "--reason",
        "new hires still onboarding",
        "--owner",
        "hr-lead",
        "--approver",
        "ciso",
        "--ticket",
        "RISK-7",
        "--expires",
        expires,
        "--by",
        "alice",
        "--json",
    )
    assert added.code == 0, added.err
    row = added.json()
    assert row["state"] == "active"
    assert row["created_by"] == "alice"
    assert row["expires_at"] == f"{expires}T00:00:00Z"

    status = workspace.cli("status", "--json", "--framework", "iso27001").json()
    check = control(status, "iso27001", "A.6.3")["checks"][0]
    assert (check["status"], check["failing"], check["excepted"]) == ("satisfied", [], ["Q2"])
    detail = workspace.cli("assess", "--json").json()
    assert control(detail, "iso27001", "A.6.3")["checks"][0]["exceptions"] == [row["id"]]

    listed = workspace.cli("exceptions", "list", "--json").json()["exceptions"]
    assert [e["id"] for e in listed] == [row["id"]]

    revoked = workspace.cli(
        "exceptions", "revoke", row["id"], "--reason", "training done", "--by", "bob", "--json"
    )
    assert revoked.code == 0, revoked.err
    assert revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_by"] == "bob"
    assert workspace.cli("exceptions", "list", "--active", "--json").json()["exceptions"] == []
    status = workspace.cli("status", "--json", "--framework", "iso27001").json()
    assert control(status, "iso27001", "A.6.3")["status"] == "not-satisfied"
    again = workspace.cli("exceptions", "revoke", row["id"], "--reason", "x", "--by", "bob")
    assert again.code == 2
    assert "already revoked" in again.err


def test_exception_input_is_checked(workspace):
    base = [
        "exceptions",
        "add",
        "--subject",
        "*",
        "--reason",
        "r",
        "--owner",
        "o",
        "--approver",
        "a",
        "--ticket",
        "T",
        "--by",
        "me",
    ]
    unknown = workspace.cli(*base, "--check", "no-such-check", "--expires", "2999-01-01")
    assert unknown.code == 2
    assert "no check named 'no-such-check'" in unknown.err
    backwards = workspace.cli(
        *base, "--check", "vulnerability-sla", "--starts", "2030-01-02", "--expires", "2030-01-01"
    )
    assert backwards.code == 2
    assert "expires before it starts" in backwards.err
    naive = workspace.cli(*base, "--check", "vulnerability-sla", "--expires", "2030-01-01T00:00:00")
    assert naive.code == 2
    assert "has no zone" in naive.err
    garbage = workspace.cli(*base, "--check", "vulnerability-sla", "--expires", "next week")
    assert garbage.code == 2
    assert "not a time" in garbage.err
    with workspace.runtime().engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.exceptions)).scalar_one() == 0


def test_status_rejects_unknown_framework_and_recorded_view(workspace):
    bad = workspace.cli("status", "--framework", "pci")
    assert bad.code == 2
    assert "unknown framework pci" in bad.err
    assert workspace.cli("assess").code == 0
    recorded = workspace.cli("status", "--recorded", "--json", "--framework", "gdpr")
    assert recorded.code == 0
    document = recorded.json()
    assert {c["status"] for c in document["frameworks"][0]["controls"]} == {"not-assessed"}


def test_demo_appends_a_status_summary(tmp_path):
    from evidence.services.demo import run_demo

    result = run_demo(tmp_path / "demo")
    assert result.assessment is not None
    statuses = {(fw.id, c.id): c.status for fw in result.assessment.frameworks for c in fw.controls}
    # the bundled example checks over the sample import.json records
    # policies approved in 2026 pass a 365-day check until early 2027; either way they are judged
    assert statuses[("iso27001", "A.5.1")] in {"satisfied", "not-satisfied"}
    assert statuses[("soc2", "CC1.4")] == "satisfied"
    # the sample Azure tenant has unrotated keys and non-compliant resources: never a pass
    assert statuses[("gdpr", "Art.32(1)(a)")] == "not-satisfied"
    # breach notification has no check and no evidence: not assessed, not passed
    assert statuses[("gdpr", "Art.33")] == "not-assessed"
    assert result.to_json()["status"]["iso27001"]["satisfied"] >= 1


def test_exception_states_over_time(workspace):
    from evidence.assessment import load_library
    from evidence.services.exceptions import NewException, add_exception, list_exceptions

    rt = workspace.runtime()
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    new = NewException(
        "vulnerability-sla",
        "img|*",
        "r",
        "o",
        "a",
        "T-9",
        t0 + timedelta(days=1),
        t0 + timedelta(days=10),
    )
    row = add_exception(rt, load_library(), new, created_by="carol", now=t0)
    assert row["state"] == "pending"
    assert row["created_at"] == "2026-03-01T00:00:00Z"
    states = {
        n: list_exceptions(rt, now=t0 + timedelta(days=n))[0]["state"] for n in (0, 1, 9, 10, 30)
    }
    assert states == {0: "pending", 1: "active", 9: "active", 10: "expired", 30: "expired"}


def test_status_table_names_failing_subjects(workspace, tmp_path):
    setup_training(workspace, tmp_path, [{"id": "Q2", "assigned": 40, "completed": 37}])
    assert workspace.cli("collect").code == 0
    table = workspace.cli("status", "--framework", "iso27001")
    assert table.code == 0
    assert "A.6.3          not-satisfied" in table.out
    assert "training-completion: not-satisfied: Q2" in table.out


def test_a_source_that_never_succeeded_makes_its_kind_an_error(workspace, tmp_path):
    scan = tmp_path / "scan.json"
    scan.write_text("{ this is not json")
    workspace.add_source(
        name="trivy-upload",
        kind="import.json",
        path=str(scan),
        observation_kind="vulnerability.finding",
    )
    assert workspace.cli("collect").code == 3
    document = workspace.cli("status", "--json", "--framework", "iso27001").json()
    check = next(
        c
        for c in control(document, "iso27001", "A.8.8")["checks"]
        if c["id"] == "vulnerability-sla"
    )
    assert check["status"] == "error"  # a failed scan is never "no findings"
    assert control(document, "iso27001", "A.8.8")["status"] == "error"
    # the next scan succeeds and finds nothing: no open finding, on fresh evidence
    scan.write_text("[]")
    assert workspace.cli("collect").code == 0
    document = workspace.cli("status", "--json", "--framework", "iso27001").json()
    check = next(
        c
        for c in control(document, "iso27001", "A.8.8")["checks"]
        if c["id"] == "vulnerability-sla"
    )
    assert check["status"] == "satisfied"
    assert check["evidence"]  # the empty run's envelope is the proof
