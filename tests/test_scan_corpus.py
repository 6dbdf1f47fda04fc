"""Every scanner file of the corpus, ingested through the real flow, and what it yields.

Each case runs ``evidence collect`` on one fixture file (copied from the shared
corpus, see fixtures/SOURCES.md) and checks the observations stored for it,
the odd files included: a ``null`` report, a legacy top-level array, SARIF with
several runs or none, results without a level, suppressions, unknown
severities. Then the stored artifact is searched for the secrets and
addresses the files contain: none may be there.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from evidence.db import tables as t

SCANS = Path(__file__).parent / "fixtures" / "vulnerability_scans"


def ingest(ws, kind: str, *files: Path, name: str = "scans", **options: Any):
    ws.add_source(name=name, kind=kind, path=[str(f) for f in files], **options)
    result = ws.cli("collect", "--source", name, "--json")
    return result


def current(ws, source: str = "scans", kind: str | None = None) -> list[Any]:
    rt = ws.runtime()
    query = sa.select(t.observations).where(
        t.observations.c.source == source, t.observations.c.valid_to.is_(None)
    )
    if kind:
        query = query.where(t.observations.c.kind == kind)
    with rt.engine.connect() as conn:
        return list(conn.execute(query))


def stored_content(ws) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((ws.store_dir / "content").rglob("*.jsonl")))


def by_id(rows, key: str = "vulnerability_id") -> dict[str, dict[str, Any]]:
    return {r.attributes[key]: r.attributes for r in rows if key in r.attributes}


def _check_trivy_suppressed(rows):
    vulns = by_id([r for r in rows if r.kind == "vulnerability.finding"])
    assert vulns["CVE-2017-16137"]["suppressed"] is True
    assert vulns["CVE-2017-16137"]["fix_state"] == "not-affected"  # the VEX statement
    assert vulns["CVE-2017-20165"]["suppressed"] is False
    assert vulns["CVE-2017-20165"]["severity"] == "high"
    report = next(r for r in rows if r.kind == "scan.report").attributes
    assert report["finding_counts"]["suppressed"] == 1
    assert report["finding_counts"]["high"] == 1


def _check_trivy_statuses(rows):
    vulns = by_id(rows)
    assert vulns["CVE-2011-3374"]["fix_state"] == "unknown"
    assert vulns["CVE-2019-18276"]["fix_state"] == "not-affected"
    assert vulns["TEMP-0841856-B18BAF"]["fix_state"] == "not-fixed"
    assert vulns["CVE-2018-1000876"]["fix_state"] == "fixed"
    assert vulns["CVE-2018-12697"]["fix_state"] == "not-fixed"  # under_investigation
    assert vulns["CVE-2018-12698"]["fix_state"] == "wont-fix"
    assert vulns["CVE-2018-12699"]["fix_state"] == "not-fixed"  # fix_deferred
    assert vulns["CVE-2018-12934"]["fix_state"] == "wont-fix"  # end_of_life
    assert {v["severity"] for v in vulns.values()} == {"low"}


def _check_centos(rows):
    vulns = [r for r in rows if r.kind == "vulnerability.finding"]
    assert {v.attributes["target"] for v in vulns} == {"testdata/fixtures/images/centos-7.tar.gz"}
    assert "wont-fix" in {v.attributes["fix_state"] for v in vulns}
    assert all(v.attributes["artifact_digest"].startswith("sha256:") for v in vulns)
    assert all(v.observed_at.isoformat().startswith("2021-08-25T12:20:30") for v in vulns)


def _check_empty_report(rows):
    (report,) = rows
    assert report.kind == "scan.report"
    assert report.attributes["finding_counts"]["total"] == 0


def _check_null_document(rows):
    (report,) = rows
    assert report.attributes["target"] == "trivy_legacy_no_vulnerabilities_null_document.json"
    assert report.attributes["finding_counts"]["total"] == 0


def _check_legacy_array(rows):
    vulns = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    bare = [v for v in vulns if v["package"] == "simplito/elliptic-php"]
    assert bare == [
        {**bare[0], "vulnerability_id": "", "severity": "unknown", "scanner_severity": ""}
    ]
    lodash = next(v for v in vulns if v["package"] == "lodash")
    assert lodash["target"].endswith("#node-app/package-lock.json")
    assert lodash["fix_state"] == "fixed"
    assert lodash["fixed_version"] == ">=4.17.11"


def _check_misconfig(rows):
    (vuln,) = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    assert vuln["vulnerability_id"] == "DS-0002"
    assert vuln["severity"] == "high"
    assert vuln["target"] == "testdata/fixtures/repo/dockerfile#Dockerfile"


def _check_unknown_severity(rows):
    vulns = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    unknown = [v for v in vulns if v["severity"] == "unknown"]
    assert len(unknown) == 4
    assert {v["scanner_severity"] for v in unknown} == {"UNKNOWN"}
    assert any(v["vulnerability_id"].startswith("GMS-") for v in unknown)


def _check_trivy_secrets(rows):
    secrets = sorted(
        (r.attributes for r in rows if r.kind == "secret.finding"), key=lambda a: a["line"]
    )
    assert [(s["rule"], s["file"], s["line"]) for s in secrets] == [
        ("aws-access-key-id", "deploy.sh", 3),
        ("mysecret", "deploy.sh", 7),
    ]


def _check_grype_zero(rows):
    (report,) = rows
    assert report.attributes["scanner_version"] == "0.7.0"


def _check_grype_negligible(rows):
    vulns = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    assert "negligible" in {v["severity"] for v in vulns}
    assert {"wont-fix", "not-fixed", "fixed"} <= {v["fix_state"] for v in vulns}
    assert all("2021-12-24T08:14:02Z" in v["db_version"] for v in vulns)
    report = next(r for r in rows if r.kind == "scan.report").attributes
    assert report["finding_counts"]["total"] == 6  # as the scanner reported them
    negligible = next(v for v in vulns if v["severity"] == "negligible")
    assert negligible["scanner_severity"] == "Negligible"


def _check_grype_directory(rows):
    vulns = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    assert {v["target"] for v in vulns} == {"."}
    assert Counter(v["fix_state"] for v in vulns) == {"unknown": 8, "not-fixed": 1}


def _check_grype_empty_state(rows):
    vulns = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    states = Counter(v["fix_state"] for v in vulns)
    assert states["unknown"] >= 13  # state "" and no fixed version
    assert {v["target"] for v in vulns} == {"busybox:1.32.1"}


def _check_grype_golden(rows):
    vulns = by_id(rows)
    assert vulns["CVE-1999-0002"]["severity"] == "critical"
    assert vulns["CVE-1999-0002"]["fix_state"] == "unknown"
    assert vulns["CVE-1999-0001"]["fix_state"] == "fixed"
    assert vulns["CVE-1999-0001"]["fixed_version"] == "1.2.1, 2.1.3, 3.4.0"
    assert vulns["CVE-1999-0001"]["artifact_digest"].startswith("sha256:ca738abb")


def _check_grype_unknown_target(rows):
    (report,) = rows
    assert report.attributes["target"] == "grype_presenter_golden_empty_minified.json"


def _check_codeql(rows):
    vulns = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    # No result has a level: every severity comes from its rule's default level.
    assert {v["scanner_severity"] for v in vulns} <= {"error", "warning", "note"}
    empty_except = [v for v in vulns if v["vulnerability_id"] == "py/empty-except"]
    assert empty_except
    assert {v["scanner_severity"] for v in empty_except} == {"note"}
    assert {v["severity"] for v in empty_except} == {"low"}
    assert Counter(v["severity"] for v in vulns) == {"low": 57, "high": 11, "medium": 4}


def _check_no_runs(rows):
    (report,) = rows
    assert report.attributes["scanner"] == "unknown"
    assert report.attributes["finding_counts"]["total"] == 0


def _check_multi_run(rows):
    reports = {r.attributes["scanner"] for r in rows if r.kind == "scan.report"}
    assert reports == {"LGTM.com", "CodeQL command-line toolchain"}
    vulns = [r for r in rows if r.kind == "vulnerability.finding"]
    assert len({v.subject for v in vulns}) == 3  # the same rule in two runs stays two findings


def _check_runs_without_results(rows):
    assert {r.attributes["scanner"] for r in rows} == {
        "CodeQL command-line toolchain",
        "ESLint",
        "unknown",  # name "" and name null
    }


def _check_semgrep(rows):
    (vuln,) = [r.attributes for r in rows if r.kind == "vulnerability.finding"]
    assert vuln["scanner_severity"] == "error"  # the rule's defaultConfiguration.level
    assert vuln["severity"] == "high"


def _check_suppressions(rows):
    vulns = by_id(rows)
    assert [vulns[f"TST000{i}"]["suppressed"] for i in range(1, 6)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def _check_gitleaks_sarif(rows):
    (leak,) = [r.attributes for r in rows if r.kind == "secret.finding"]
    assert (leak["rule"], leak["file"], leak["line"], leak["commit"]) == (
        "test-rule",
        "auth.py",
        1,
        "0000000000000000",
    )


def _check_gitleaks_single(rows):
    (leak,) = [r.attributes for r in rows if r.kind == "secret.finding"]
    assert leak["date"] == "2003-10-19T00:00:00Z"  # gitleaks' MM-DD-YYYY
    assert leak["commit"] == "0000000000000000"


def _check_gitleaks_v7(rows):
    leaks = [r.attributes for r in rows if r.kind == "secret.finding"]
    assert {leak["rule"] for leak in leaks} >= {"AWS Access Key", "Asymmetric Private Key"}
    assert all(leak["date"] and leak["date"].endswith("Z") for leak in leaks)


def _check_gitleaks_v8(rows):
    leaks = [r.attributes for r in rows if r.kind == "secret.finding"]
    blank = [leak for leak in leaks if leak["commit"] == ""]
    assert len(blank) == 1
    assert blank[0]["date"] is None


CASES = [
    (
        "trivy",
        "trivy_fs_npm_with_suppressed_findings.json",
        {"vulnerability.finding": 2},
        _check_trivy_suppressed,
    ),
    (
        "trivy",
        "trivy_image_all_status_values.json",
        {"vulnerability.finding": 8},
        _check_trivy_statuses,
    ),
    ("trivy", "trivy_image_centos7_will_not_fix.json", {"vulnerability.finding": 3}, _check_centos),
    ("trivy", "trivy_image_no_results_key.json", {}, _check_empty_report),
    ("trivy", "trivy_image_result_without_vulnerabilities.json", {}, _check_empty_report),
    ("trivy", "trivy_legacy_no_vulnerabilities_null_document.json", {}, _check_null_document),
    (
        "trivy",
        "trivy_legacy_top_level_array.json",
        {"vulnerability.finding": 7},
        _check_legacy_array,
    ),
    (
        "trivy",
        "trivy_repo_dockerfile_misconfig.json",
        {"vulnerability.finding": 1},
        _check_misconfig,
    ),
    (
        "trivy",
        "trivy_repo_gomod_unknown_severity.json",
        {"vulnerability.finding": 5},
        _check_unknown_severity,
    ),
    ("trivy", "trivy_repo_secrets_redacted.json", {"secret.finding": 2}, _check_trivy_secrets),
    ("grype", "grype_image_no_matches_v0.7.json", {}, _check_grype_zero),
    # six matches, five findings: grype lists GHSA-v6rh-hp5x-86rv in Django 3.2.9 twice
    (
        "grype",
        "grype_image_all_fields_wont_fix_negligible_v0.28.json",
        {"vulnerability.finding": 5},
        _check_grype_negligible,
    ),
    (
        "grype",
        "grype_directory_fix_state_unknown_v0.24.json",
        {"vulnerability.finding": 9},
        _check_grype_directory,
    ),
    (
        "grype",
        "grype_image_epss_empty_fix_state_v0.94.json",
        {"vulnerability.finding": 15},
        _check_grype_empty_state,
    ),
    (
        "grype",
        "grype_presenter_golden_kev_epss_risk.json",
        {"vulnerability.finding": 2},
        _check_grype_golden,
    ),
    ("grype", "grype_presenter_golden_empty_minified.json", {}, _check_grype_unknown_target),
    (
        "sarif",
        "sarif_codeql_2.5.4_python_codeflows_no_level.sarif.json",
        {"vulnerability.finding": 72},
        _check_codeql,
    ),
    ("sarif", "sarif_empty_runs_array.sarif.json", {}, _check_no_runs),
    (
        "sarif",
        "sarif_multi_run_lgtm_and_codeql.sarif.json",
        {"vulnerability.finding": 3, "scan.report": 2},
        _check_multi_run,
    ),
    (
        "sarif",
        "sarif_runs_without_results_null_tool_name.sarif.json",
        {"scan.report": 3},
        _check_runs_without_results,
    ),
    (
        "sarif",
        "sarif_semgrep_oss_level_from_rule_default.sarif.json",
        {"vulnerability.finding": 1},
        _check_semgrep,
    ),
    (
        "sarif",
        "sarif_results_with_suppressions.sarif.json",
        {"vulnerability.finding": 5},
        _check_suppressions,
    ),
    ("gitleaks", "gitleaks_report.sarif.json", {"secret.finding": 1}, _check_gitleaks_sarif),
    ("gitleaks", "gitleaks_report_empty.json", {}, _check_empty_report),
    ("gitleaks", "gitleaks_report_redacted_baseline.json", {"secret.finding": 2}, None),
    (
        "gitleaks",
        "gitleaks_report_single_finding.json",
        {"secret.finding": 1},
        _check_gitleaks_single,
    ),
    (
        "gitleaks",
        "gitleaks_v7_legacy_report_redacted.json",
        {"secret.finding": 8},
        _check_gitleaks_v7,
    ),
    ("gitleaks", "gitleaks_v8_multi_rule_redacted.json", {"secret.finding": 4}, _check_gitleaks_v8),
]

# Secret material (even redacted or fake) and addresses that are in the files and
# must not be in the store.
NEVER_STORED = [
    b"ghp_REDACTED_FAKE_TOKEN",
    b"AWS_ACCESS_KEY_ID=",
    b"REDACTED_SECRET",
    b"REDACTED_AWS_KEY_ID",
    b"REDACTED_PRIVATE_KEY_HEADER",
    b"line containing secret",
    b'"a secret"',
    b"johndoe@gmail.com",
    b"first.last@example.com",
    b"redacted@example.com",
    b"John Doe",
    b"Firstname Lastname",
    b"MYSUPERSECRETKEY",
]


def test_every_corpus_scan_file_is_a_case():
    on_disk = {
        p.name for kind in ("trivy", "grype", "sarif", "gitleaks") for p in (SCANS / kind).iterdir()
    }
    assert on_disk == {name for _, name, _, _ in CASES}


@pytest.mark.parametrize(("kind", "name", "counts", "check"), CASES, ids=[c[1] for c in CASES])
def test_corpus_file(workspace, kind, name, counts, check):
    result = ingest(workspace, kind, SCANS / kind / name)
    assert result.code == 0, result.out + result.err
    run = result.json()["runs"][0]
    assert run["status"] == "complete"
    rows = current(workspace)
    found = Counter(r.kind for r in rows)
    expected = {"scan.report": 1, **counts}
    assert dict(found) == expected
    for row in rows:
        assert row.attributes["scanner"]
        if row.kind == "vulnerability.finding":
            assert row.attributes["severity"] in {
                "critical",
                "high",
                "medium",
                "low",
                "negligible",
                "unknown",
            }
    if check is not None:
        check(rows)
    content = stored_content(workspace)
    for needle in NEVER_STORED:
        assert needle not in content, needle
