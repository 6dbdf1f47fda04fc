"""azure.retention through the real ResourceManagementClient over HTTPS to the fake,
with the corpus payloads served for the reads."""

from __future__ import annotations

import pytest

from evidence.sample.fakeazure import Response, forbidden, throttled
from evidence.sample.fakeazure.sample_env import RESOURCES, SUBSCRIPTIONS, account_id

from .conftest import collect, fixture

SUB_A, SUB_B = SUBSCRIPTIONS


def add_source(ws, **options):
    options.setdefault("subscriptions", list(SUBSCRIPTIONS))
    ws.add_source(name="retention", kind="azure.retention", **options)


def vault_id(sub):
    return (
        f"/subscriptions/{sub}/resourceGroups/rg-data/providers/"
        f"Microsoft.KeyVault/vaults/sample-kv-{sub[-4:]}"
    )


def settings_of(got, resource_fragment=""):
    return {
        (o["attributes"]["setting"]): o["attributes"]
        for o in got.observations
        if resource_fragment.lower() in o["attributes"]["resource_id"].lower()
    }


def test_sample_environment_gives_every_setting(azure_ws, fake, sample):
    add_source(azure_ws)
    got = collect(azure_ws, "retention")
    assert got.result.status == "complete", got.errors
    settings = {o["attributes"]["setting"] for o in got.observations}
    assert settings == {
        "blob_soft_delete",
        "container_soft_delete",
        "blob_versioning",
        "lifecycle_delete",
        "immutability_policy",
        "legal_hold",
        "log_analytics_retention",
        "log_analytics_table_retention",
        "key_vault_soft_delete",
        "key_vault_purge_protection",
    }
    assert len(got.observations) == 20  # ten settings in each of two subscriptions
    lifecycle = settings_of(got, f"/subscriptions/{SUB_A}/")["lifecycle_delete"]
    assert lifecycle["enabled"] is True
    assert lifecycle["days"] == 2555
    immutability = settings_of(got, f"/subscriptions/{SUB_A}/")["immutability_policy"]
    assert (immutability["days"], immutability["locked"]) == (2555, True)
    env = got.envelope
    assert env["provenance"]["api_versions"]["storage"] == "2024-01-01"
    assert env["query"]["subscriptions"] == list(SUBSCRIPTIONS)
    # generic reads went out with explicit API versions
    reads = fake.requests_to("/blobServices/default")
    assert reads
    assert all(r.query["api-version"] == "2024-01-01" for r in reads)


def serve(fake, sub, path_suffix, body, status=200):
    fake.json("GET", account_id(sub, f"samplelogs{sub[-4:]}") + path_suffix, body, status)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "storage_blob_service_get_versioning_softdelete_300d_2024-01-01.json",
            {"blob_soft_delete": (True, 300), "blob_versioning": (True, None)},
        ),
        (
            "storage_blob_service_put_allow_permanent_delete_2024-01-01.json",
            {"blob_soft_delete": (True, 300), "container_soft_delete": (None, None)},
        ),
        (
            "storage_blob_service_recorded_container_retention_365d_2021-09-01.json",
            {"blob_soft_delete": (False, None), "container_soft_delete": (True, 365)},
        ),
        (
            "storage_blob_service_recorded_put_container_retention_disabled_no_days_no_sku_2021-09-01.json",
            {"container_soft_delete": (False, None), "blob_versioning": (None, None)},
        ),
        (
            "storage_blob_service_recorded_softdelete_disabled_no_container_policy_2021-09-01.json",
            {"blob_soft_delete": (False, None), "container_soft_delete": (None, None)},
        ),
    ],
)
def test_corpus_blob_service_payloads(azure_ws, fake, sample, name, expected):
    add_source(azure_ws, subscriptions=[SUB_A])
    serve(fake, SUB_A, "/blobServices/default", fixture(name))
    got = collect(azure_ws, "retention")
    assert got.result.status == "complete", got.errors
    found = settings_of(got, "/storageAccounts/")
    for setting, (enabled, days) in expected.items():
        assert (found[setting]["enabled"], found[setting]["days"]) == (enabled, days), setting


@pytest.mark.parametrize(
    ("name", "enabled", "days"),
    [
        ("storage_management_policy_get_lifecycle_2024-01-01.json", True, 30),
        ("storage_management_policy_set_last_access_time_2024-01-01.json", True, 30),
        ("storage_management_policy_set_snapshot_and_version_2024-01-01.json", True, 1000),
    ],
)
def test_corpus_lifecycle_payloads(azure_ws, fake, sample, name, enabled, days):
    add_source(azure_ws, subscriptions=[SUB_A])
    serve(fake, SUB_A, "/managementPolicies/default", fixture(name))
    got = collect(azure_ws, "retention")
    lifecycle = settings_of(got, "/storageAccounts/")["lifecycle_delete"]
    assert (lifecycle["enabled"], lifecycle["days"]) == (enabled, days)
    assert lifecycle["details"]["rules"]


def test_no_management_policy_is_an_answer_not_an_error(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    serve(fake, SUB_A, "/managementPolicies/default", {"error": {"code": "ManagementPolicyNotFound"}}, 404)
    got = collect(azure_ws, "retention")
    assert got.result.status == "complete", got.errors
    lifecycle = settings_of(got, "/storageAccounts/")["lifecycle_delete"]
    assert (lifecycle["enabled"], lifecycle["days"]) == (False, None)


def test_corpus_container_with_locked_policy_and_legal_hold(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    container = fixture("storage_container_get_locked_immutability_with_legal_hold_2024-01-01.json")
    serve(fake, SUB_A, "/blobServices/default/containers", {"value": [container]})
    got = collect(azure_ws, "retention")
    assert got.result.status == "complete", got.errors
    found = settings_of(got, "/containers/container1634")
    assert found["immutability_policy"]["locked"] is True
    assert found["immutability_policy"]["days"] == 100
    assert found["legal_hold"]["enabled"] is True
    assert found["legal_hold"]["details"]["tags"]


def test_corpus_log_analytics_workspace_and_table(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    workspace = (
        f"/subscriptions/{SUB_A}/resourceGroups/rg-data/providers/"
        f"Microsoft.OperationalInsights/workspaces/sample-ws-{SUB_A[-4:]}"
    )
    fake.json("GET", workspace, fixture("log_analytics_workspace_get_retention_30d_2025-02-01.json"))
    table = fixture("log_analytics_table_get_table_level_retention_2025-02-01.json")
    fake.json("GET", workspace + "/tables", {"value": [table]})
    got = collect(azure_ws, "retention")
    assert got.result.status == "complete", got.errors
    by_setting = {o["attributes"]["setting"]: o["attributes"] for o in got.observations}
    assert by_setting["log_analytics_retention"]["days"] == 30
    table = by_setting["log_analytics_table_retention"]
    assert table["days"] == 50
    assert table["details"]["total_retention_in_days"] is not None


@pytest.mark.parametrize(
    ("name", "soft_delete", "purge"),
    [
        ("keyvault_vault_get_softdelete_fields_absent_2024-11-01.json", (None, None), None),
        ("keyvault_vault_recorded_purge_protection_softdelete_7d_2023-02-01.json", (True, 7), True),
    ],
)
def test_corpus_key_vault_payloads(azure_ws, fake, sample, name, soft_delete, purge):
    add_source(azure_ws, subscriptions=[SUB_A])
    vault = vault_id(SUB_A)
    fake.json("GET", vault, fixture(name))
    got = collect(azure_ws, "retention")
    assert got.result.status == "complete", got.errors
    found = settings_of(got, "/vaults/")
    assert (found["key_vault_soft_delete"]["enabled"], found["key_vault_soft_delete"]["days"]) == soft_delete
    assert found["key_vault_purge_protection"]["enabled"] is purge
    # systemData names people: pseudonymized before storage, e-mails and names alike
    stored = str(got.records)
    assert "redacted-user@example.com" not in stored
    assert "keyVaultUser1" not in stored
    assert "pseud:" in stored


def test_vault_read_404_fails_the_subscription_with_the_service_code(azure_ws, fake, sample):
    add_source(azure_ws)
    vault = vault_id(SUB_B)
    fake.json("GET", vault, fixture("keyvault_vault_recorded_404_resource_not_found.json"), 404)
    got = collect(azure_ws, "retention")
    assert got.result.status == "partial"
    assert got.error_codes() == {f"/subscriptions/{SUB_B}": "ResourceNotFound"}
    assert {o["scope"] for o in got.observations} == {f"/subscriptions/{SUB_A}"}


def test_forbidden_listing_and_throttling_that_clears(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("GET", RESOURCES.replace("{sub}", SUB_A), forbidden(), times=None)
    fake.fault("GET", RESOURCES.replace("{sub}", SUB_B), throttled(retry_after=None), times=1)
    got = collect(azure_ws, "retention")
    assert got.result.status == "partial"
    assert got.error_codes() == {f"/subscriptions/{SUB_A}": "AuthorizationFailed"}
    assert got.envelope["provenance"]["retries"] == 1  # a GET 429 is retried even without Retry-After
    assert {o["scope"] for o in got.observations} == {f"/subscriptions/{SUB_B}"}


def test_malformed_child_listing_is_an_error(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    fake.route(
        "GET",
        account_id(SUB_A, f"samplelogs{SUB_A[-4:]}") + "/blobServices/default/containers",
        lambda req: Response(200, b"{not json"),
    )
    got = collect(azure_ws, "retention")
    assert got.result.status == "failed"
    assert got.errors[0]["code"] == "malformed-response"
    assert "page 1" in got.errors[0]["message"]
    assert got.observations == []
