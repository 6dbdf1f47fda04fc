"""``azure.access_reviews`` against the fake Graph over HTTPS, with the real azure-identity
credential and azure-core pipeline: the corpus payloads, paging, throttling, failing and
malformed pages, and the personal-data rule (pseudonyms, erasure, verify afterwards)."""

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
from evidence.domain.pseudonym import Pseudonymizer
from evidence.sample.fakeazure import FakeAzure, Response, forbidden, server_error, throttled
from evidence.sample.fakeazure.graph import definitions_path, install_access_reviews, raw_decisions
from evidence.services.collect import RunResult, run_source
from evidence.services.privacy import lookup, reveal_with_lookup

REVIEWS = Path(__file__).parent / "fixtures" / "access_reviews"
BASE = definitions_path()
DEF_A = "98dcebed-c7f6-46f4-bcf3-4a3fccdb3e2a"  # weekly, manager reviewers, no auto-apply
DEF_B = "cc701697-762c-439a-81f5-f58d680fde76"  # guests in M365 groups, auto-apply
INST_A = "7bc18cf4-3d70-4009-bc8e-a7c5adb30849"  # Applied
INST_B = "8d035c9d-798d-47fa-beb4-f986a4b8126f"
PEOPLE = [
    b"contoso.com",
    b"guest@guest.com",
    b"Christie Cline",
    b"Diego Siciliani",
    b"Johanna Lorenz",
    b"MOD Administrator",
    b"guest example",
]


def page(name: str) -> Any:
    return json.loads((REVIEWS / name).read_text())["value"]


def corpus_data() -> dict[str, Any]:
    definitions = page("graph_accessreview_definitions_list_weekly_manager_reviewers.json")
    definitions += page("graph_accessreview_definitions_list_all_m365_groups_guests_autoapply.json")
    (applied,) = page("graph_accessreview_instances_list_applied.json")
    in_progress = {
        "id": INST_B,
        "startDateTime": "2021-04-27T00:00:00Z",
        "endDateTime": "2021-05-22T00:00:00Z",
        "status": "InProgress",
    }
    decisions = page(
        "graph_accessreview_decisions_filterbycurrentuser_approved_against_deny_recommendation.json"
    ) + page("graph_accessreview_decisions_list_expand_insights_beta.json")
    return {
        "definitions": definitions,
        "instances": {DEF_A: [applied], DEF_B: [in_progress]},
        "decisions": {f"{DEF_B}/{INST_B}": decisions},
    }


@pytest.fixture
def fake() -> Iterator[FakeAzure]:
    with FakeAzure() as server:
        yield server


@pytest.fixture
def graph(workspace, fake, monkeypatch):
    """A workspace whose [azure] points at the fake, signed in with a client secret, and the
    corpus served page by page (one item a page), decisions of A byte for byte."""
    monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", fake.client_secret)
    workspace.extra_config = "\n".join(
        [
            "[azure]",
            'credential = "client_secret"',
            f'graph_url = "{fake.base_url}"',
            f'resource_manager_url = "{fake.base_url}"',
            f'authority_host = "{fake.base_url}"',
            f'ca_bundle = "{fake.ca_pem}"',
            "retry_total = 3",
        ]
    )
    install_access_reviews(fake, corpus_data(), page_size=1)
    duplicate_keys = REVIEWS / "graph_accessreview_decisions_list_notreviewed_duplicate_keys.json"
    raw_decisions(fake, DEF_A, INST_A, duplicate_keys.read_bytes())
    workspace.add_source(name="reviews", kind="azure.access_reviews", page_size=1)
    return workspace


def run(ws, slept: list[float] | None = None) -> RunResult:
    rt = ws.runtime()
    source = rt.settings.source("reviews")
    cls = get_collector(source.kind)
    extra = {"sleep": (slept if slept is not None else []).append}
    env = CollectorEnv(base_dir=rt.settings.base_dir, azure=rt.settings.azure, extra=extra)
    return run_source(
        rt, source, collector=cls(cls.options_model.model_validate(source.options), env)
    )


def reviews(ws) -> dict[str, dict[str, Any]]:
    rt = ws.runtime()
    with rt.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.observations).where(
                t.observations.c.source == "reviews", t.observations.c.valid_to.is_(None)
            )
        )
        return {r.subject: dict(r.attributes) | {"observed_at": r.observed_at} for r in rows}


def store_bytes(ws) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(ws.store_dir.rglob("*")) if p.is_file())


def pseudonym(ws, identity: str) -> str:
    return Pseudonymizer(ws.runtime().pseudonym_key).pseudonym(identity)


def test_corpus_reviews_through_the_fake_graph(graph, fake):
    result = graph.cli("collect", "--json")
    assert result.code == 0, result.out + result.err
    assert result.json()["runs"][0]["status"] == "complete"
    found = reviews(graph)
    assert set(found) == {f"{DEF_A}/{INST_A}", f"{DEF_B}/{INST_B}"}

    a = found[f"{DEF_A}/{INST_A}"]
    assert a["status"] == "Applied"
    assert a["completed_at"] == "2021-03-09T23:10:28.830000Z"
    assert a["observed_at"].isoformat().startswith("2021-03-09T23:10:28.83")
    assert a["auto_apply"] is False
    assert a["recurrence"]["pattern"]["type"] == "weekly"
    assert a["reviewers"] == [
        {"query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions"}
    ]
    assert a["decision_counts"] == {"approve": 0, "deny": 0, "not_reviewed": 2, "dont_know": 0}
    assert a["decisions_total"] == 2
    first, second = a["decisions"]
    assert first["reviewer"] is None  # Graph's zero-GUID placeholder: nobody reviewed
    # Duplicate keys in the second decision's reviewedBy: the last value wins, pseudonymized.
    assert second["reviewer"] == pseudonym(graph, "guest@guest.com")
    assert second["principal"] == pseudonym(graph, "JohannaL@contoso.com")
    assert second["principal_id"] == "11feb738-0039-4a6c-a045-dcb91a47969a"  # object ids stay

    b = found[f"{DEF_B}/{INST_B}"]
    assert b["status"] == "InProgress"
    assert b["completed_at"] is None
    assert b["auto_apply"] is True
    assert b["decision_counts"] == {"approve": 1, "deny": 0, "not_reviewed": 1, "dont_know": 0}
    approve = next(d for d in b["decisions"] if d["decision"] == "approve")
    assert approve["justification_present"] is True
    assert approve["principal"] == pseudonym(graph, "ChristieC@contoso.com")
    assert approve["reviewer"] == pseudonym(graph, "MOD Administrator")  # a name, not UPN-shaped
    assert approve["apply_result"] == "New"
    assert approve["applied_at"] is None
    insight = next(d for d in b["decisions"] if d["decision"] == "not_reviewed")
    assert insight["principal"] == "04777c4b-4d43-4d32-a2e7-1eba5d03f8cf"  # only an id was sent
    assert b["denials_applied"] is True

    # Paging: one item a page, so definitions and B's decisions took two pages each.
    assert len(fake.requests_to(BASE, "GET")) >= 2
    assert len([r for r in fake.requests_to(f"{INST_B}/decisions") if r.method == "GET"]) == 2
    # The real credential signed in against the fake's token endpoint, for Graph.
    assert fake.token_requests
    assert fake.token_requests[0]["scope"] == f"{fake.base_url}/.default"

    stored = store_bytes(graph)
    for name in PEOPLE:
        assert name not in stored, name
    rt = graph.runtime()
    with rt.engine.connect() as conn:
        names = lookup(conn, [pseudonym(graph, "ChristieC@contoso.com")])
    assert list(names.values()) == ["ChristieC@contoso.com"]


def test_throttled_definitions_are_retried_as_told(graph, fake):
    fake.fault("GET", BASE, throttled(retry_after=7), times=2)
    slept: list[float] = []
    result = run(graph, slept)
    assert result.status == "complete"
    assert slept == [7.0, 7.0]
    assert len(reviews(graph)) == 2
    envelope = graph.cli("verify", "--json")
    assert envelope.code == 0


def test_a_failing_decisions_page_fails_that_definition_only(graph, fake):
    fake.fault(
        "GET",
        f"{BASE}/{DEF_B}/instances/{INST_B}/decisions",
        server_error(500),
        times=None,
        query_contains="page2",
    )
    slept: list[float] = []
    result = run(graph, slept)
    assert result.status == "partial"
    (error,) = result.errors
    assert error["scope"] == f"accessReviews/definitions/{DEF_B}"
    assert error["code"] == "ServiceUnavailable"
    assert "page 2" in error["message"]
    # retry_total = 3: the page was asked for four times (first retry without back-off).
    page2 = [r for r in fake.requests_to(f"{INST_B}/decisions") if "page2" in r.raw_query]
    assert len(page2) == 4
    assert slept == [1.6, 3.2]
    assert set(reviews(graph)) == {f"{DEF_A}/{INST_A}"}  # A is kept, B has nothing half-read


def test_a_malformed_page_is_an_error_not_an_empty_list(graph, fake):
    fake.fault("GET", f"{BASE}/{DEF_A}/instances", Response(200, b'{"value": [{"id": tru'))
    result = run(graph)
    assert result.status == "partial"
    assert result.errors[0]["code"] == "malformed-response"
    assert set(reviews(graph)) == {f"{DEF_B}/{INST_B}"}


def test_no_definitions_listing_fails_the_run(graph, fake):
    fake.fault("GET", BASE, forbidden(), times=None)
    result = graph.cli("collect", "--json")
    assert result.code == 3
    run_json = result.json()["runs"][0]
    assert run_json["status"] == "failed"
    assert run_json["errors"][0]["code"] == "AuthorizationFailed"
    assert reviews(graph) == {}


def test_recollecting_unchanged_reviews_adds_nothing(graph):
    assert run(graph).observations_added == 2
    again = run(graph)
    assert again.status == "complete"
    assert again.observations_added == 0


def test_erasure_deletes_the_lookup_and_evidence_still_verifies(graph):
    assert graph.cli("collect").code == 0
    christie = pseudonym(graph, "ChristieC@contoso.com")
    rt = graph.runtime()
    with rt.engine.connect() as conn:
        before = reveal_with_lookup(conn, reviews(graph)[f"{DEF_B}/{INST_B}"]["decisions"])
    assert "ChristieC@contoso.com" in [d["principal"] for d in before]

    forgot = graph.cli("privacy", "forget", "christiec@CONTOSO.com", "--json")
    assert forgot.code == 0, forgot.err
    assert forgot.json() == {"forgotten": 1, "pseudonyms": [christie]}

    with rt.engine.connect() as conn:
        after = reveal_with_lookup(conn, reviews(graph)[f"{DEF_B}/{INST_B}"]["decisions"])
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(t.pseudonyms)
                .where(t.pseudonyms.c.pseudonym == christie)
            ).scalar()
            == 0
        )
    principals = [d["principal"] for d in after]
    assert christie in principals  # shown as the pseudonym now
    assert "ChristieC@contoso.com" not in principals
    shown = graph.cli("privacy", "lookup", christie, "--json").json()
    assert shown == {"identities": {christie: None}}

    verified = graph.cli("verify", "--json")
    assert verified.code == 0, verified.out
    assert verified.json()["ok"] is True
    again = graph.cli("privacy", "forget", "ChristieC@contoso.com", "--json")
    assert again.json()["forgotten"] == 0
    # A person's UPN and display name are separate pseudonyms: name both to forget both.
    both = graph.cli("privacy", "forget", "JohannaL@contoso.com", "Johanna Lorenz", "--json")
    assert both.json()["forgotten"] == 2
    assert graph.cli("verify").code == 0


def test_a_next_link_off_the_graph_endpoint_is_refused(graph, fake):
    """The bearer token is never sent to a host other than the configured Graph URL."""
    evil = {"value": [], "@odata.nextLink": "https://graph.example.net/v1.0/steal?$skiptoken=x"}
    fake.fault("GET", f"{BASE}/{DEF_A}/instances", Response(200, evil))
    result = run(graph)
    assert result.status == "partial"
    (error,) = result.errors
    assert error["code"] == "foreign-next-link"
    assert error["scope"] == f"accessReviews/definitions/{DEF_A}"


def test_a_credential_the_tenant_refuses_fails_the_run(graph, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    result = graph.cli("collect", "--json")
    assert result.code == 3
    run_json = result.json()["runs"][0]
    assert run_json["status"] == "failed"
    assert run_json["errors"][0]["code"] == "authentication"
    assert "not-the-secret" not in result.out


def _review_statuses(ws) -> dict[str, str]:
    from evidence.services.assess import status

    found: dict[str, str] = {}
    for fw in status(ws.runtime()).frameworks:
        for control in fw.controls:
            for check, _via in control.checks:
                found[check.check_id] = check.status
            if (fw.id, control.id) in {("soc2", "CC6.2"), ("iso27001", "A.5.18")}:
                found[f"{fw.id}:{control.id}"] = control.status
    return found


def test_a_failing_page_leaves_the_access_review_controls_in_error(graph, fake):
    fake.fault(
        "GET",
        f"{BASE}/{DEF_B}/instances/{INST_B}/decisions",
        server_error(500),
        times=None,
        query_contains="page2",
    )
    assert run(graph).status == "partial"
    found = _review_statuses(graph)
    assert found["access-review-recent"] == "error"
    assert found["soc2:CC6.2"] == "error"
    assert found["iso27001:A.5.18"] == "error"


def test_no_definitions_listing_leaves_the_controls_in_error(graph, fake):
    fake.fault("GET", BASE, forbidden(), times=None)
    assert run(graph).status == "failed"
    found = _review_statuses(graph)
    assert found["access-review-recent"] == "error"
    assert found["soc2:CC6.2"] == "error"
