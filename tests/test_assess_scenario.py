"""A 120-day time line through the real spine: observations arrive from two sources, a key is
rotated late, a vulnerability breaches its SLA, an exception is granted and expires, a
collection fails, collections pause; ``status --as-of`` answers each chosen day as known then.

The observations come from a collector defined only here and run through ``run_source``, so
the runs, artifacts, ledger entries and observation rows are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from evidence.collectors.base import CollectContext, Collector, CollectorEnv, CollectorOptions
from evidence.config import SourceSettings
from evidence.db import tables as t
from evidence.domain.observation import Observation
from evidence.services.assess import assess, daily_status, end_of_day, recorded_findings
from evidence.services.collect import run_source
from evidence.services.exceptions import NewException, add_exception

BASE = datetime(2025, 1, 1, tzinfo=UTC)
VAULT = "https://vault-a.vault.azure.net"
KEY = f"{VAULT}/keys/k1"
CVE = "registry/app:1.0|CVE-2025-0001|openssl|3.0.1"
LOW = "registry/app:1.0|CVE-2025-0002|zlib|1.2"


def day(n: float) -> datetime:
    return BASE + timedelta(days=n)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Timeline(Collector):
    """Yields the records it is given, per scope; fails the scopes it is told to."""

    kind: ClassVar[str] = "test.timeline"
    observation_kinds = ("azure.key_rotation", "azure.retention_setting", "vulnerability.finding")

    def __init__(self, records: list[dict[str, Any]], fail: bool = False) -> None:
        super().__init__(CollectorOptions(), CollectorEnv(base_dir=Path(".")))
        self.records, self.fail = records, fail

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        ctx.start_scope("main")
        if self.fail:
            ctx.fail_scope("main", "service unavailable (HTTP 503)", code="http-503")
            return
        yield from self.records
        ctx.page()

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        observed = record.get("observed_at")
        yield Observation(
            kind=record["kind"],
            subject=record["subject"],
            attributes=record["attributes"],
            observed_at=datetime.fromisoformat(observed) if observed else None,
            scope="main",
        )


def vault_records(n: int) -> list[dict[str, Any]]:
    created = day(80) if n >= 80 else day(-300)  # rotated late, on day 80
    return [
        {
            "kind": "azure.key_rotation",
            "subject": KEY,
            "observed_at": created.isoformat(),
            "attributes": {
                "vault_url": VAULT,
                "key_name": "k1",
                "enabled": True,
                "versions": [],
                "version_count": 2 if n >= 80 else 1,
                "current_version": "v2" if n >= 80 else "v1",
                "current_created": iso(created),
                "expires": None,
                "rotation_policy": {"rotate_after": "P365D", "rotate_before_expiry": None},
            },
        },
        {
            "kind": "azure.retention_setting",
            "subject": f"{VAULT}|key_vault_purge_protection",
            "attributes": {
                "resource_id": VAULT,
                "resource_type": "Microsoft.KeyVault/vaults",
                "subscription_id": "sub",
                "setting": "key_vault_purge_protection",
                "enabled": True,
                "days": None,
                "locked": None,
                "details": {},
            },
        },
    ]


def finding(subject: str, severity: str) -> dict[str, Any]:
    target, vuln, package, version = subject.split("|")
    return {
        "kind": "vulnerability.finding",
        "subject": subject,
        "attributes": {
            "scanner": "trivy",
            "scanner_version": "0.50",
            "db_version": "2",
            "target": target,
            "artifact_digest": "sha256:" + "0" * 64,
            "vulnerability_id": vuln,
            "package": package,
            "installed_version": version,
            "fixed_version": "9",
            "severity": severity,
            "scanner_severity": severity.upper(),
            "fix_state": "fixed",
            "suppressed": False,
        },
    }


def scanner_records(n: int) -> list[dict[str, Any]]:
    records = [finding(LOW, "low")]
    if 10 <= n < 50:  # the critical finding is open from day 10 until it is fixed on day 50
        records.append(finding(CVE, "critical"))
    return records


VAULT_DAYS = [*range(0, 90, 5), 90, 95, 100, 115, 120]  # day 90 fails; nothing 101..114
SCANNER_DAYS = list(range(0, 121, 5))


def build_timeline(workspace):
    rt = workspace.runtime()
    library = _library()
    vault = SourceSettings(name="vault", kind="test.timeline")
    scanner = SourceSettings(name="scanner", kind="test.timeline")
    for n in sorted({*VAULT_DAYS, *SCANNER_DAYS, 28}):
        if n in VAULT_DAYS:
            result = run_source(
                rt, vault, collector=Timeline(vault_records(n), fail=n == 90), now=day(n)
            )
            assert result.status == ("failed" if n == 90 else "complete")
        if n in SCANNER_DAYS:
            run_source(rt, scanner, collector=Timeline(scanner_records(n)), now=day(n))
        if n == 28:  # granted once the SLA was already breached; expires at the start of day 40
            add_exception(
                rt,
                library,
                NewException(
                    check_id="vulnerability-sla",
                    subject_pattern="registry/app:1.0|CVE-2025-0001|*",
                    reason="vendor patch pending; WAF rule in place",
                    owner="app-team",
                    approver="ciso",
                    ticket="RISK-42",
                    starts_at=day(28),
                    expires_at=day(40),
                ),
                created_by="alice",
                now=day(28) + timedelta(hours=1),
            )
        # the daemon re-assesses after each collection; stamp it with the simulated time
        stamp = day(n) + timedelta(hours=1)
        assess(rt, as_of=stamp, now=stamp, library=library)
    return workspace, rt


def _library():
    from evidence.assessment import load_library

    return load_library()


def status_on(ws, n: int, framework: str) -> dict[str, Any]:
    result = ws.cli(
        "status",
        "--json",
        "--framework",
        framework,
        "--as-of",
        (BASE.date() + timedelta(days=n)).isoformat(),
    )
    assert result.code == 0, result.err
    document = result.json()
    assert document["as_of"] == iso(end_of_day(BASE.date() + timedelta(days=n)))
    return {c["id"]: c for c in document["frameworks"][0]["controls"]}


def check_of(control: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in control["checks"] if c["id"] == check_id)


KEY_DAYS = {
    30: "satisfied",
    64: "satisfied",  # 364 days and 23:59:59 old: at the limit
    65: "not-satisfied",  # past 365 days: rotated late
    75: "not-satisfied",
    80: "satisfied",  # rotated
    90: "error",  # the newest run of the vault source failed
    96: "satisfied",
    106: "satisfied",  # newest confirmation (day 100) 6.99 days old
    107: "stale",  # 7.99 days old, TTL 7
    116: "satisfied",
}


def check_key_rotation_time_line(timeline):
    ws, _rt = timeline
    for n, expected in KEY_DAYS.items():
        iso_controls = status_on(ws, n, "iso27001")
        gdpr_controls = status_on(ws, n, "gdpr")
        assert check_of(iso_controls["A.8.24"], "key-rotation-max-age")["status"] == expected, n
        assert iso_controls["A.8.24"]["status"] == expected, n
        assert gdpr_controls["Art.32(1)(a)"]["status"] == expected, n
    late = check_of(status_on(ws, 65, "iso27001")["A.8.24"], "key-rotation-max-age")
    assert late["failing"] == [KEY]
    assert late["evidence"]
    assert all(e.startswith("sha256:") for e in late["evidence"])


def check_vulnerability_sla_exception_granted_and_expiring(timeline):
    ws, _rt = timeline
    expected = {
        24: ("satisfied", [], []),  # open 14.99 days
        26: ("not-satisfied", [CVE], []),  # over 15 days
        30: ("satisfied", [], [CVE]),  # excepted from day 28
        39: ("satisfied", [], [CVE]),
        40: ("not-satisfied", [CVE], []),  # the exception expired at the start of day 40
        50: ("satisfied", [], []),  # fixed
    }
    for n, (status, failing, excepted) in expected.items():
        soc2 = status_on(ws, n, "soc2")
        check = check_of(soc2["CC7.1"], "vulnerability-sla")
        assert (check["status"], check["failing"], check["excepted"]) == (
            status,
            failing,
            excepted,
        ), n
        if status == "not-satisfied":
            assert soc2["CC7.1"]["status"] == "not-satisfied"
            gdpr = status_on(ws, n, "gdpr")
            assert gdpr["Art.32(1)(d)"]["status"] == "not-satisfied"
            assert (
                gdpr["Art.32"]["status"] == "not-satisfied"
            )  # a paragraph's failure shows on its article
        else:
            # other checks of CC7.1 (policy states, scan reports, Defender) have no evidence:
            # the control is not assessed, never satisfied
            assert soc2["CC7.1"]["status"] == "not-assessed"


def check_status_before_any_evidence_and_json_shape(timeline):
    ws, _rt = timeline
    result = ws.cli("status", "--json", "--as-of", iso(day(-1)))
    document = result.json()
    assert set(document) == {"as_of", "frameworks"}
    assert [f["id"] for f in document["frameworks"]] == ["gdpr", "iso27001", "soc2"]
    for framework in document["frameworks"]:
        assert set(framework) == {"id", "version", "controls"}
        for control in framework["controls"]:
            assert set(control) == {"id", "title", "status", "checks"}
            assert control["status"] == "not-assessed"
            for check in control["checks"]:
                assert set(check) == {"id", "status", "failing", "excepted", "evidence"}


def check_fail_on_gates(timeline):
    ws, _rt = timeline
    on = lambda n: (BASE.date() + timedelta(days=n)).isoformat()  # noqa: E731
    assert (
        ws.cli(
            "status", "--framework", "gdpr", "--as-of", on(65), "--fail-on", "not-satisfied"
        ).code
        == 1
    )
    assert (
        ws.cli(
            "status", "--framework", "gdpr", "--as-of", on(30), "--fail-on", "not-satisfied"
        ).code
        == 0
    )
    assert (
        ws.cli("status", "--framework", "gdpr", "--as-of", on(90), "--fail-on", "error").code == 1
    )
    assert ws.cli("status", "--framework", "gdpr", "--as-of", on(30), "--fail-on", "any").code == 1
    assert ws.cli("status", "--as-of", on(30), "--fail-on", "broken").code == 2


def check_daily_status_over_a_period(timeline):
    _ws, rt = timeline
    days = daily_status(
        rt, framework="iso27001", start=date(2025, 3, 2), end=date(2025, 3, 8), controls=["A.8.24"]
    )
    # day 60 is 2025-03-02; the key passes 365 days during day 65 (2025-03-07)
    assert days == {
        "A.8.24": [
            (date(2025, 3, 2), "satisfied"),
            (date(2025, 3, 3), "satisfied"),
            (date(2025, 3, 4), "satisfied"),
            (date(2025, 3, 5), "satisfied"),
            (date(2025, 3, 6), "satisfied"),
            (date(2025, 3, 7), "not-satisfied"),
            (date(2025, 3, 8), "not-satisfied"),
        ]
    }


def check_findings_history_answers_what_was_recorded_then(timeline):
    _ws, rt = timeline
    with rt.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.findings.c.as_of, t.findings.c.status)
            .where(t.findings.c.framework == "iso27001", t.findings.c.control_id == "A.8.24")
            .order_by(t.findings.c.id)
        ).all()
    statuses = [r.status for r in rows]
    assert statuses[0] == "satisfied"
    assert "not-satisfied" in statuses
    assert "error" in statuses
    then = recorded_findings(rt, as_of=day(91))
    assert then[("iso27001", "A.8.24")]["status"] == "error"
    assert recorded_findings(rt, as_of=day(70))[("iso27001", "A.8.24")]["status"] == "not-satisfied"
    detail = then[("iso27001", "A.8.24")]["detail"]
    rotation = next(c for c in detail["checks"] if c["id"] == "key-rotation-max-age")
    assert "failed" in rotation["reasons"][0]
    # history is stored as changes: unchanged controls add no rows between assessments
    with rt.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(t.findings)).scalar_one()
    controls = 61 + 93 + 40
    assert total < controls * 4


def check_as_known_then_ignores_exceptions_recorded_later(timeline):
    ws, rt = timeline
    # An exception recorded now, back-dated to start on day 20, does not rewrite day 26.
    add_exception(
        rt,
        _library(),
        NewException("vulnerability-sla", "*", "late paperwork", "o", "a", "T-1", day(20), day(45)),
        created_by="bob",
    )
    check = check_of(status_on(ws, 26, "soc2")["CC7.1"], "vulnerability-sla")
    assert check["status"] == "not-satisfied"


def test_time_line(workspace):
    """Built once per database backend (it takes ~50 collections); each part checks one story."""
    timeline = build_timeline(workspace)
    check_status_before_any_evidence_and_json_shape(timeline)
    check_key_rotation_time_line(timeline)
    check_vulnerability_sla_exception_granted_and_expiring(timeline)
    check_fail_on_gates(timeline)
    check_daily_status_over_a_period(timeline)
    check_findings_history_answers_what_was_recorded_then(timeline)
    check_as_known_then_ignores_exceptions_recorded_later(timeline)  # last: it adds an exception
