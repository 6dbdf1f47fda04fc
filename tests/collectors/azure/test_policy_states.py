"""azure.policy_states through the real PolicyInsightsClient over HTTPS to the fake."""

from __future__ import annotations

import json

import pytest

from evidence.sample.fakeazure import forbidden, sample_env, server_error, slow, throttled
from evidence.sample.fakeazure.sample_env import POLICY_STATES, SUBSCRIPTIONS, SUMMARIZE

from .conftest import collect, fixture

SUB_A, SUB_B = SUBSCRIPTIONS


def add_source(ws, **options):
    options.setdefault("subscriptions", list(SUBSCRIPTIONS))
    ws.add_source(name="policy", kind="azure.policy_states", **options)


def test_all_pages_collected_and_complete(azure_ws, fake, sample):
    add_source(azure_ws)
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    env = got.envelope
    assert env["record_count"] == 12
    assert env["page_count"] == 4  # two pages per subscription
    assert env["provenance"]["completeness"] == {
        f"/subscriptions/{SUB_A}": {"summarized": 6, "collected": 6, "pages": 2},
        f"/subscriptions/{SUB_B}": {"summarized": 6, "collected": 6, "pages": 2},
    }
    assert env["provenance"]["api_versions"] == {"policy_insights": "2019-10-01"}
    identity = env["provenance"]["identity"]
    assert identity["credential"] == "client_secret"
    assert identity["client_id"] == fake.client_id
    assert identity["object_id"]
    assert fake.client_secret not in str(env)
    assert env["query"]["from"] < env["query"]["to"]
    assert {s["scope"] for s in env["scopes"]} == {
        f"/subscriptions/{SUB_A}", f"/subscriptions/{SUB_B}"
    }
    # The real ClientSecretCredential signed in against the fake's token endpoint.
    assert fake.token_requests and fake.token_requests[0]["grant_type"] == "client_credentials"
    assert all(r.bearer for r in fake.requests_to("/policyStates/"))
    states = {o["attributes"]["compliance_state"] for o in got.observations}
    assert states == {"Compliant", "NonCompliant", "Exempt", "Conflict", "Unknown"}
    assert len(got.observations) == 12


def sub_scope(sub):
    return f"/subscriptions/{sub}"


def open_subjects(got, sub):
    return {o["subject"] for o in got.observations if o["scope"] == sub_scope(sub)}


def test_throttling_with_retry_after_is_retried_and_counted(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("POST", POLICY_STATES, throttled(retry_after=30), times=2)
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    assert got.slept == [30.0, 30.0]  # Retry-After honoured, recorded instead of slept
    assert got.envelope["provenance"]["retries"] == 2
    assert got.envelope["provenance"]["retry_reasons"] == {"429": 2}
    assert got.envelope["record_count"] == 12


def test_throttling_without_retry_after_fails_only_that_subscription(azure_ws, fake, sample):
    # azure-core does not retry a POST answered 429 without Retry-After.
    add_source(azure_ws)
    first = collect(azure_ws, "policy")
    assert first.result.status == "complete"
    before_b = open_subjects(first, SUB_B)
    assert before_b
    fake.fault("POST", POLICY_STATES.replace("{sub}", SUB_B), throttled(retry_after=None), times=None)
    sample.states[SUB_A] = sample.states[SUB_A][:3]  # A changed: three states are gone
    sample.states[SUB_B] = sample.states[SUB_B][:1]  # B changed too, but B cannot be read
    got = collect(azure_ws, "policy")
    assert got.result.status == "partial"
    assert got.error_codes() == {sub_scope(SUB_B): "TooManyRequests"}
    assert got.envelope["provenance"]["completeness"][sub_scope(SUB_B)]["collected"] == 0
    # B's facts stay as they were (not closed, not replaced): assessment sees them as
    # belonging to a failed scope; A's vanished states were closed.
    assert open_subjects(got, SUB_B) == before_b
    assert len(open_subjects(got, SUB_A)) == 3
    scopes = {s["scope"]: s["ok"] for s in got.envelope["scopes"]}
    assert scopes == {sub_scope(SUB_A): True, sub_scope(SUB_B): False}


def test_server_errors_are_retried_with_backoff(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("POST", SUMMARIZE, server_error(503), times=2)
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    assert got.envelope["provenance"]["retries"] == 2
    assert got.slept == [1.6]  # back-off 0 then 1.6 s (factor 0.8), recorded, not slept


def test_server_errors_that_do_not_clear_fail_the_scope(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("POST", SUMMARIZE.replace("{sub}", SUB_A), server_error(500), times=None)
    got = collect(azure_ws, "policy")
    assert got.result.status == "partial"
    assert got.error_codes() == {sub_scope(SUB_A): "ServiceUnavailable"}
    assert got.envelope["provenance"]["retries"] == 3  # retry_total = 3, then it gave up
    assert open_subjects(got, SUB_A) == set()  # nothing written for the failed scope
    assert len(open_subjects(got, SUB_B)) == 6


def test_a_timeout_fails_the_scope(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("POST", POLICY_STATES.replace("{sub}", SUB_A), slow(3), times=None)
    got = collect(azure_ws, "policy", timeout=0.5)
    assert got.result.status == "partial"
    assert got.error_codes() == {sub_scope(SUB_A): "timeout"}
    assert "page 1" in got.errors[0]["message"]


def test_a_malformed_page_in_the_middle_is_an_error_naming_the_page(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.paged(
        "POST",
        POLICY_STATES.replace("{sub}", SUB_A),
        page_count=3,
        items=lambda n: [sample_env.policy_state(SUB_A, n * 10 + i) for i in range(2)],
        next_key="@odata.nextLink",
        malformed_pages=[2],
    )
    got = collect(azure_ws, "policy")
    assert got.result.status == "partial"
    (error,) = got.errors
    assert error["scope"] == sub_scope(SUB_A)
    assert error["code"] == "malformed-response"
    assert "page 2" in error["message"]
    assert open_subjects(got, SUB_A) == set()
    # what was read before the bad page is kept in the artifact, marked by its page
    assert [r["page"] for r in got.records if r["scope"] == sub_scope(SUB_A)] == [1, 1]


def test_forbidden_subscription_does_not_stop_the_others(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("POST", SUMMARIZE.replace("{sub}", SUB_B), forbidden(), times=None)
    got = collect(azure_ws, "policy")
    assert got.result.status == "partial"
    assert got.error_codes() == {sub_scope(SUB_B): "AuthorizationFailed"}
    assert got.envelope["record_count"] == 6
    assert len(open_subjects(got, SUB_A)) == 6
    assert open_subjects(got, SUB_B) == set()


def test_every_subscription_failing_fails_the_run(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("POST", SUMMARIZE, forbidden(), times=None)
    got = collect(azure_ws, "policy")
    assert got.result.status == "failed"
    assert set(got.error_codes().values()) == {"AuthorizationFailed"}
    assert got.observations == []


def test_count_mismatch_with_summary_is_an_error(azure_ws, fake, sample):
    add_source(azure_ws)
    summary = sample_env.summary_of(sample.states[SUB_A] + [sample_env.policy_state(SUB_A, 99)])
    fake.json("POST", SUMMARIZE.replace("{sub}", SUB_A), summary)
    got = collect(azure_ws, "policy")
    assert got.result.status == "partial"
    assert got.error_codes() == {sub_scope(SUB_A): "count-mismatch"}
    assert "collected 6 policy states but the service summarizes 7" in got.errors[0]["message"]
    assert got.envelope["provenance"]["completeness"][sub_scope(SUB_A)] == {
        "summarized": 7, "collected": 6, "pages": 2,
    }
    assert open_subjects(got, SUB_A) == set()


def test_management_group_subscriptions_are_discovered(azure_ws, fake, sample):
    azure_ws.add_source(
        name="policy", kind="azure.policy_states", management_group=sample.management_group
    )
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    assert got.envelope["query"]["management_group"] == "sample-mg"
    assert got.envelope["query"]["subscriptions"] == sorted(SUBSCRIPTIONS)
    assert fake.requests_to("/managementGroups/sample-mg/descendants")


def test_unreadable_management_group_fails_the_run(azure_ws, fake, sample):
    azure_ws.add_source(name="policy", kind="azure.policy_states", management_group="other-mg")
    got = collect(azure_ws, "policy")
    assert got.result.status == "failed"
    assert got.errors[0]["code"] == "NotFound"
    assert "other-mg" in got.errors[0]["scope"]


def test_filter_goes_on_the_wire_and_into_the_envelope(azure_ws, fake, sample):
    add_source(azure_ws, only_non_compliant=True, initiatives=["sample-initiative"])
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    expected = "ComplianceState eq 'NonCompliant' and (PolicySetDefinitionName eq 'sample-initiative')"
    assert got.envelope["query"]["filter"] == expected
    assert got.envelope["query"]["only_non_compliant"] is True
    sent = fake.requests_to("/policyStates/latest/queryResults")[0]
    assert sent.query["$filter"] == expected
    assert {o["attributes"]["compliance_state"] for o in got.observations} == {"NonCompliant"}


def test_unknown_options_are_config_errors(azure_ws, sample):
    add_source(azure_ws, only_noncompliant=True)
    result = azure_ws.cli("collect", "--json")
    assert result.code == 2
    assert "only_noncompliant" in result.err


CORPUS_LISTS = [
    "policy_states_list_subscription_noncompliant_2024-10-01.json",
    "policy_states_list_resource_group_skiptoken_mixed_compliance_2024-10-01.json",
    "policy_states_list_resource_expand_evaluation_details_2024-10-01.json",
    "policy_states_list_subscription_no_nextlink_key_2019-10-01.json",
    "policy_states_groupby_aggregate_partial_fields_2019-10-01.json",
]


@pytest.mark.parametrize("name", CORPUS_LISTS)
def test_every_corpus_list_payload_is_parsed(azure_ws, fake, sample, name):
    body = fixture(name)
    body.pop("@odata.nextLink", None)  # the recorded link points at the real service
    add_source(azure_ws, subscriptions=[SUB_A])
    fake.json("POST", POLICY_STATES.replace("{sub}", SUB_A), body)
    fake.json("POST", SUMMARIZE.replace("{sub}", SUB_A), sample_env.summary_of(body["value"]))
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    assert [r["state"] for r in got.records] == body["value"]  # stored verbatim
    assert len(got.observations) == len(body["value"])
    for obs in got.observations:
        attrs = obs["attributes"]
        state = next(
            v
            for v in body["value"]
            if v["resourceId"] == attrs["resource_id"]
            and v["policyDefinitionId"] == attrs["policy_definition_id"]
        )
        if "complianceState" in state:
            expected = state["complianceState"]
        elif "isCompliant" in state:
            expected = "Compliant" if state["isCompliant"] else "NonCompliant"
        else:
            expected = "Unknown"  # an aggregate row: no state given, none invented
        assert attrs["compliance_state"] == expected


def test_corpus_summary_counts_states_per_assignment_and_definition():
    from types import SimpleNamespace

    from azure.mgmt.policyinsights.models import SummarizeResults

    from evidence.collectors.azure.policy_states import summary_total

    body = fixture("policy_states_summarize_rg_policy_assignment_2024-10-01.json")
    model = SummarizeResults.deserialize(body)
    assert summary_total(model) == 147  # 140 compliant + 7 non-compliant
    assert summary_total(SimpleNamespace(value=[])) is None


def test_unknown_states_and_missing_fields_are_kept(azure_ws, fake, sample):
    weird = sample_env.policy_state(SUB_A, 1, compliance="Protected")
    bare = {
        "resourceId": f"/subscriptions/{SUB_A}/resourceGroups/x/providers/A.B/c/d",
        "policyAssignmentId": "/a",
        "policyDefinitionId": "/d",
    }
    sample.states[SUB_A] = [weird, bare]
    add_source(azure_ws, subscriptions=[SUB_A])
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    states = sorted(o["attributes"]["compliance_state"] for o in got.observations)
    assert states == ["Protected", "Unknown"]
    bare_obs = next(o for o in got.observations if o["attributes"]["policy_assignment_id"] == "/a")
    assert bare_obs["observed_at"] is None
    assert bare_obs["attributes"]["is_compliant"] is None


def test_emails_in_states_are_pseudonymized_before_storage(azure_ws, fake, sample):
    state = sample_env.policy_state(SUB_A, 0)
    state["policyAssignmentOwner"] = "alice.auditor@contoso.example"
    sample.states[SUB_A] = [state]
    add_source(azure_ws, subscriptions=[SUB_A])
    got = collect(azure_ws, "policy")
    assert got.result.status == "complete", got.errors
    owner = got.records[0]["state"]["policyAssignmentOwner"]
    assert owner.startswith("pseud:")
    assert "contoso" not in json.dumps(got.records)


def test_recollecting_unchanged_states_adds_nothing(azure_ws, fake, sample):
    add_source(azure_ws)
    first = collect(azure_ws, "policy")
    second = collect(azure_ws, "policy")
    assert first.result.observations_added == 12
    assert second.result.observations_added == 0
    assert second.result.observations_closed == 0
