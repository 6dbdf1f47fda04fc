"""How scanner files move through the flow: bad files, files seen before, ageing across
runs, the push command, and files from an Azure Blob prefix (Azurite)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.db import tables as t
from evidence.db.ageing import get_first_seen, list_open_findings
from evidence.services.collect import run_source
from realparts import need

SCANS = Path(__file__).parent / "fixtures" / "vulnerability_scans"
CENTOS = SCANS / "trivy" / "trivy_image_centos7_will_not_fix.json"
GRYPE = SCANS / "grype" / "grype_presenter_golden_kev_epss_risk.json"
AZURITE = Path(__file__).parents[1] / "node_modules" / ".bin" / "azurite-blob"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def open_rows(ws, source: str = "scans", kind: str | None = None) -> list[Any]:
    rt = ws.runtime()
    query = sa.select(t.observations).where(
        t.observations.c.source == source, t.observations.c.valid_to.is_(None)
    )
    if kind:
        query = query.where(t.observations.c.kind == kind)
    with rt.engine.connect() as conn:
        return list(conn.execute(query))


def envelope_of(ws, run: dict[str, Any]) -> dict[str, Any]:
    digest = run["envelope"].split(":", 1)[1]
    return json.loads((ws.store_dir / "envelopes" / digest[:2] / f"{digest}.json").read_text())


def test_bad_files_fail_their_scope_and_nothing_else(workspace, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-good.json").write_bytes(CENTOS.read_bytes())
    data = CENTOS.read_bytes()
    (folder / "b-truncated.json").write_bytes(data[: len(data) * 2 // 3])
    (folder / "c-not-json.json").write_text("Trivy version 0.50: scan failed\n")
    (folder / "d-grype.json").write_bytes(GRYPE.read_bytes())  # valid JSON, not a Trivy report
    (folder / "e-empty.json").write_bytes(b"")
    workspace.add_source(name="scans", kind="trivy", path=str(folder / "*.json"))

    result = workspace.cli("collect", "--json")
    assert result.code == 3
    run = result.json()["runs"][0]
    assert run["status"] == "partial"
    errors = {e["scope"]: e for e in run["errors"]}
    assert set(errors) == {"b-truncated.json", "c-not-json.json", "d-grype.json", "e-empty.json"}
    assert "truncated" in errors["b-truncated.json"]["message"]
    assert errors["b-truncated.json"]["message"].startswith("b-truncated.json: ")
    assert "not valid JSON" in errors["c-not-json.json"]["message"]
    assert "invalid char" in errors["c-not-json.json"]["message"]
    assert "not a Trivy report" in errors["d-grype.json"]["message"]
    assert "empty" in errors["e-empty.json"]["message"]
    assert {e["code"] for e in run["errors"]} == {"input-invalid"}
    # The good file is complete: three findings and its report; nothing from the others.
    kinds = sorted(r.kind for r in open_rows(workspace))
    assert kinds == ["scan.report"] + ["vulnerability.finding"] * 3
    assert run["records"] == 4
    assert workspace.cli("verify").code == 0


def test_a_run_of_only_bad_files_fails(workspace, tmp_path):
    bad = tmp_path / "broken.sarif"
    bad.write_text('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [')
    workspace.add_source(name="scans", kind="sarif", path=str(bad))
    result = workspace.cli("collect", "--json")
    assert result.code == 3
    assert result.json()["runs"][0]["status"] == "failed"
    assert open_rows(workspace) == []


def test_files_already_ingested_are_skipped_and_listed(workspace, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "one.json").write_bytes(CENTOS.read_bytes())
    workspace.add_source(name="scans", kind="trivy", path=str(folder))
    first = workspace.cli("collect", "--json").json()["runs"][0]
    assert first["records"] == 4
    (folder / "copy-of-one.json").write_bytes(CENTOS.read_bytes())  # same content, new name
    second = workspace.cli("collect", "--json").json()["runs"][0]
    assert second["status"] == "complete"
    assert second["records"] == 0
    assert second["observations_closed"] == 0  # nothing vanished: the file was not re-read
    skipped = envelope_of(workspace, second)["query"]["skipped"]
    assert sorted(s["name"] for s in skipped) == ["copy-of-one.json", "one.json"]
    assert {s["reason"] for s in skipped} == {"already ingested"}
    assert len(open_rows(workspace)) == 4

    newer = json.loads(CENTOS.read_text())
    newer["CreatedAt"] = "2026-02-01T00:00:00Z"
    (folder / "two.json").write_text(json.dumps(newer))
    third = workspace.cli("collect", "--json").json()["runs"][0]
    assert third["records"] == 4  # only the new file was read
    assert len(envelope_of(workspace, third)["query"]["skipped"]) == 2


def _report(vulns: list[int], created: str, tmp: Path, name: str) -> Path:
    doc = json.loads(CENTOS.read_text())
    doc["CreatedAt"] = created
    result = doc["Results"][0]
    result["Vulnerabilities"] = [result["Vulnerabilities"][i] for i in vulns]
    path = tmp / name
    path.write_text(json.dumps(doc))
    return path


def test_first_seen_survives_rescans_and_fixed_findings_close(workspace, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    workspace.add_source(name="scans", kind="trivy", path=str(folder))
    rt = workspace.runtime()
    source = rt.settings.source("scans")
    doc = json.loads(CENTOS.read_text())
    ids = [v["VulnerabilityID"] for v in doc["Results"][0]["Vulnerabilities"]]
    x, y, z = ids

    _report([0, 1], "2026-01-01T00:00:00Z", folder, "2026-01-01.json")
    day1 = datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert run_source(rt, source, now=day1).status == "complete"
    _report([0, 2], "2026-03-01T00:00:00Z", folder, "2026-03-01.json")
    day60 = datetime(2026, 3, 1, 6, tzinfo=UTC)
    later = run_source(rt, source, now=day60)
    assert later.status == "complete"

    with rt.engine.connect() as conn:
        open_now = {
            f.subject.split("|")[1]: f.first_seen
            for f in list_open_findings(conn, kind="vulnerability.finding", source="scans")
        }
        assert open_now == {x: day1, z: day60}  # y was fixed: its row closed
        subject = next(r.subject for r in open_rows(workspace) if f"|{x}|" in r.subject)
        assert (
            get_first_seen(conn, source="scans", kind="vulnerability.finding", subject=subject)
            == day1
        )
        # As of a day in January, y was open too, seen since day 1.
        jan = datetime(2026, 1, 15, tzinfo=UTC)
        open_in_jan = {
            f.subject.split("|")[1]
            for f in list_open_findings(
                conn, kind="vulnerability.finding", source="scans", as_of=jan
            )
        }
        assert open_in_jan == {x, y}


def test_ingest_pushes_files_through_the_same_flow(workspace, tmp_path):
    result = workspace.cli("ingest", "--kind", "grype", str(GRYPE), "--json")
    assert result.code == 0, result.err
    run = result.json()["runs"][0]
    assert (run["source"], run["status"], run["records"]) == ("ingest-grype", "complete", 3)
    again = workspace.cli("ingest", "--kind", "grype", str(GRYPE), "--json")
    assert again.code == 0
    assert again.json()["runs"][0]["records"] == 0  # the same content is not ingested twice
    assert len(open_rows(workspace, source="ingest-grype")) == 3

    bad = tmp_path / "bad.json"
    bad.write_text("{")
    failed = workspace.cli("ingest", "--kind", "trivy", str(bad), "--json")
    assert failed.code == 3
    assert failed.json()["runs"][0]["errors"][0]["scope"] == "bad.json"

    missing = workspace.cli("ingest", "--kind", "trivy", str(tmp_path / "nope.json"))
    assert missing.code == 2
    assert "not a file" in missing.err
    wrong = workspace.cli("ingest", "--kind", "azure.defender", str(GRYPE))
    assert wrong.code == 2
    unknown = workspace.cli("ingest", "--kind", "nessus", str(GRYPE))
    assert unknown.code == 2
    assert workspace.cli("verify").code == 0


def test_a_big_generated_sarif_streams_whole(workspace, tmp_path):
    results = [
        {
            "ruleId": f"R{i % 7}",
            "message": {"text": f"finding {i}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f"src/f{i}.py"},
                        "region": {"startLine": i, "snippet": {"text": "password = 'hunter2'"}},
                    }
                }
            ],
        }
        for i in range(3000)
    ]
    rules = [{"id": f"R{i}", "defaultConfiguration": {"level": "error"}} for i in range(7)]
    log = {
        "version": "2.1.0",
        "runs": [{"results": results, "tool": {"driver": {"name": "gen", "rules": rules}}}],
    }
    path = tmp_path / "big.sarif"
    path.write_text(json.dumps(log))
    result = workspace.cli("ingest", "--kind", "sarif", str(path), "--json")
    assert result.code == 0
    assert result.json()["runs"][0]["records"] == 3001
    findings = open_rows(workspace, source="ingest-sarif", kind="vulnerability.finding")
    assert len(findings) == 3000
    assert {f.attributes["severity"] for f in findings} == {"high"}  # tool info came after results
    stored = b"".join(p.read_bytes() for p in (workspace.store_dir / "content").rglob("*.jsonl"))
    assert b"hunter2" not in stored


# ---- Azure Blob (Azurite) -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def azurite() -> Iterator[str]:
    if not AZURITE.exists():
        need(f"Azurite is not installed at {AZURITE} (npm install azurite)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--extentMemoryLimit",
            "64",
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"Azurite did not start: {output[-500:]}")
            time.sleep(0.1)
    yield (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    proc.terminate()
    proc.wait(10)


def test_scan_files_from_a_blob_prefix(workspace, azurite, monkeypatch):
    from azure.storage.blob import BlobServiceClient

    container = f"scans{os.getpid()}{int(time.time() * 1000) % 100000}"
    service = BlobServiceClient.from_connection_string(azurite)
    client = service.create_container(container)
    client.upload_blob("ci/2026-01-01/centos.json", CENTOS.read_bytes())
    client.upload_blob("ci/2026-01-02/broken.json", CENTOS.read_bytes()[:500])
    client.upload_blob("other/ignored.json", b"{}")
    monkeypatch.setenv("SCANS_BLOB", azurite)
    workspace.add_source(
        name="scans",
        kind="trivy",
        path=f"az://devstoreaccount1/{container}/ci/",
        blob_connection_string_env="SCANS_BLOB",
    )
    result = workspace.cli("collect", "--json")
    run = result.json()["runs"][0]
    assert run["status"] == "partial"
    assert [e["scope"] for e in run["errors"]] == ["ci/2026-01-02/broken.json"]
    assert len(open_rows(workspace, kind="vulnerability.finding")) == 3
    envelope = envelope_of(workspace, run)
    assert [f["name"] for f in envelope["query"]["files"]] == ["ci/2026-01-01/centos.json"]

    again = workspace.cli("collect", "--json").json()["runs"][0]
    skipped = envelope_of(workspace, again)["query"]["skipped"]
    assert [s["name"] for s in skipped] == ["ci/2026-01-01/centos.json"]

    assert again["status"] == "partial"  # the broken blob still fails; the rest is unchanged
    workspace.sources[0]["path"] = f"az://otheraccount/{container}/ci/"
    workspace.write_config()
    wrong = workspace.cli("collect", "--json").json()["runs"][0]
    assert wrong["status"] == "failed"
    assert "otheraccount" in wrong["errors"][0]["message"]


def test_very_long_targets_are_bounded_not_rejected(workspace, tmp_path):
    doc = json.loads(CENTOS.read_text())
    doc["ArtifactName"] = "registry.example.com/" + "deep/" * 400 + "image:1"
    path = tmp_path / "long.json"
    path.write_text(json.dumps(doc))
    result = workspace.cli("ingest", "--kind", "trivy", str(path), "--json")
    assert result.code == 0, result.out
    rows = open_rows(workspace, source="ingest-trivy")
    assert len(rows) == 4
    assert all(len(r.subject) <= 1000 and len(r.scope) <= 500 for r in rows)
    assert len({r.subject for r in rows}) == 4
    assert all(r.attributes["target"] == doc["ArtifactName"] for r in rows)


def test_ingest_into_a_configured_source_keeps_its_options(workspace, tmp_path):
    workspace.add_source(name="ci-sarif", kind="sarif", path="unused/*.sarif", target="repo-x")
    sarif = SCANS / "sarif" / "sarif_semgrep_oss_level_from_rule_default.sarif.json"
    result = workspace.cli(
        "ingest", "--kind", "sarif", "--source", "ci-sarif", str(sarif), "--json"
    )
    assert result.code == 0, result.out
    (row,) = open_rows(workspace, source="ci-sarif", kind="vulnerability.finding")
    assert row.attributes["target"] == "repo-x"
    wrong = workspace.cli("ingest", "--kind", "trivy", "--source", "ci-sarif", str(sarif))
    assert wrong.code == 2
    assert "is of kind 'sarif'" in wrong.err


WRONG_SHAPES = [
    (
        "trivy",
        {
            "SchemaVersion": 2,
            "ArtifactName": "x",
            "Results": [{"Target": "t", "Vulnerabilities": "none"}],
        },
        "Results[0].Vulnerabilities is not an array",
    ),
    (
        "trivy",
        {"SchemaVersion": 2, "ArtifactName": "x", "Results": {"Target": "t"}},
        "Results is not an array",
    ),
    ("grype", {"matches": {}, "source": {}, "descriptor": {}}, "'matches' array"),
    ("sarif", {"version": "2.1.0", "runs": None}, "'runs' is not an array"),
    (
        "sarif",
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": {}}]},
        "runs[0].results is not an array",
    ),
    ("gitleaks", {"findings": []}, "array of findings"),
]


@pytest.mark.parametrize(("kind", "doc", "reason"), WRONG_SHAPES)
def test_a_findings_list_of_the_wrong_shape_is_rejected_not_read_as_empty(
    workspace, tmp_path, kind, doc, reason
):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(doc))
    result = workspace.cli("ingest", "--kind", kind, str(path), "--json")
    assert result.code == 3
    run = result.json()["runs"][0]
    assert run["status"] == "failed"
    assert reason in run["errors"][0]["message"]
    assert run["errors"][0]["scope"] == "odd.json"


def test_a_finding_that_comes_back_is_first_seen_again(workspace, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    workspace.add_source(name="scans", kind="trivy", path=str(folder))
    rt = workspace.runtime()
    source = rt.settings.source("scans")
    x = json.loads(CENTOS.read_text())["Results"][0]["Vulnerabilities"][0]["VulnerabilityID"]
    days = [datetime(2026, 1, d, 6, tzinfo=UTC) for d in (1, 2, 3)]
    for day, vulns in zip(days, ([0], [1], [0]), strict=True):
        _report(vulns, day.isoformat().replace("+00:00", "Z"), folder, f"{day.date()}.json")
        assert run_source(rt, source, now=day).status == "complete"
    with rt.engine.connect() as conn:
        facts = list_open_findings(conn, kind="vulnerability.finding", source="scans")
    (back,) = [f for f in facts if f"|{x}|" in f.subject]
    assert back.first_seen == days[2]  # it was fixed on day 2, so its age starts again
