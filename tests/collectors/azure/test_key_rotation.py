"""azure.key_rotation: vaults found through Resource Manager, keys read with the real
KeyClient over HTTPS, through Key Vault's 401 bearer challenge."""

from __future__ import annotations

import json

from evidence.sample.fakeazure import Response, forbidden, throttled
from evidence.sample.fakeazure.sample_env import CREATED, SUBSCRIPTIONS

from .conftest import collect, fixture

SUB_A, SUB_B = SUBSCRIPTIONS
DAY = 86400


def add_source(ws, **options):
    options.setdefault("subscriptions", list(SUBSCRIPTIONS))
    ws.add_source(name="keys", kind="azure.key_rotation", **options)


def vault_of(sample, sub):
    return f"sample-kv-{sub[-4:]}"


def by_subject(got):
    return {o["subject"]: o["attributes"] for o in got.observations}


def test_versions_and_rotation_policy_through_the_challenge(azure_ws, fake, sample):
    add_source(azure_ws)
    got = collect(azure_ws, "keys")
    assert got.result.status == "complete", got.errors
    url_a = sample.vault_urls[vault_of(sample, SUB_A)]
    keys = by_subject(got)
    signing = keys[f"{url_a}/keys/signing-key"]
    assert signing["version_count"] == 3
    created = [v["created"] for v in signing["versions"]]
    assert created == sorted(created)
    assert signing["current_created"] == created[-1]
    assert signing["rotation_policy"] == {
        "rotate_after": "P90D",
        "rotate_before_expiry": None,
        "notify_before_expiry": "P30D",
        "expiry_time": "P2Y",
    }
    assert len(keys) == 4
    # The first data-plane request went out without a token and met the challenge.
    data_plane = [r for r in fake.requests if r.path.startswith(f"/vaults/{vault_of(sample, SUB_A)}/")]
    first, later = data_plane[0], data_plane[1:]
    assert first.bearer == ""
    assert later
    assert all(r.bearer for r in later)
    scopes = {s["scope"] for s in got.envelope["scopes"]}
    assert scopes == {f"/subscriptions/{SUB_A}", f"/subscriptions/{SUB_B}", *sample.vault_urls.values()}
    assert got.envelope["provenance"]["api_versions"]["key_vault_data_plane"] == "7.5"
    assert all(r.query.get("api-version") == "7.5" for r in later)


def serve_key(fake, vault_name, key, versions_body, policy_body=None, policy_status=200):
    base = f"/vaults/{vault_name}"
    fake.json("GET", f"{base}/keys", {"value": [{"kid": f"https://x/keys/{key}"}], "nextLink": None})
    fake.json("GET", f"{base}/keys/{key}/versions", versions_body)
    if policy_body is not None:
        fake.json("GET", f"{base}/keys/{key}/rotationpolicy", policy_body, policy_status)


def test_corpus_recorded_versions_with_a_disabled_version(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    name = vault_of(sample, SUB_A)
    serve_key(
        fake, name, "key1",
        fixture("kv_key_versions_list_recorded_disabled_version_api-7.0.json"),
        fixture("kv_key_rotation_policy_recorded_p15d_p30d_api-7.5-preview.1.json"),
    )
    got = collect(azure_ws, "keys")
    assert got.result.status == "complete", got.errors
    (key,) = got.observations
    attrs = key["attributes"]
    assert [v["enabled"] for v in attrs["versions"]] == [True, False]
    assert attrs["enabled"] is False  # the newest version is the disabled one
    assert attrs["current_version"] == "b422274d5dcd48518323809fb03244e5"
    assert attrs["rotation_policy"]["rotate_after"] == "P15D"
    assert attrs["rotation_policy"]["notify_before_expiry"] == "P7D"
    assert attrs["rotation_policy"]["expiry_time"] == "P30D"
    assert attrs["expires"] is None  # no exp on the version: none is invented


def test_corpus_paged_versions_follow_next_link(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    name = vault_of(sample, SUB_A)
    url = sample.vault_urls[name]
    page = fixture("kv_key_versions_list_paged_nextlink_spec_7.5.json")
    rotated = fixture("kv_key_rotate_recorded_new_version_exp_in_past_api-7.5-preview.1.json")
    first = dict(page)
    first["nextLink"] = page["nextLink"].replace("https://myvault.vault.azure.net:443", url)
    second = {"value": [{"kid": rotated["key"]["kid"], "attributes": rotated["attributes"]}]}

    def versions(req):
        return Response(200, second if "$skiptoken" in req.query else first)

    fake.route("GET", f"/vaults/{name}/keys/listkeyversionstest/versions", versions)
    fake.json("GET", f"/vaults/{name}/keys", {"value": [{"kid": f"{url}/keys/listkeyversionstest"}]})
    fake.json(
        "GET",
        f"/vaults/{name}/keys/listkeyversionstest/rotationpolicy",
        fixture("kv_key_rotation_policy_get_p90d_p2y_spec_7.5.json"),
    )
    got = collect(azure_ws, "keys")
    assert got.result.status == "complete", got.errors
    (key,) = got.observations
    attrs = key["attributes"]
    assert attrs["version_count"] == len(page["value"]) + 1
    assert attrs["current_version"] == "c947ea436e28413f81578c4c58ef3c91"
    assert attrs["expires"] == "2023-12-06T12:57:30Z"  # already expired, reported as it is
    assert attrs["rotation_policy"]["expiry_time"] == "P2Y"
    # the SDK replaced the nextLink's api-version=7.2 with the one we asked for
    follow = [r for r in fake.requests_to("/listkeyversionstest/versions") if "$skiptoken" in r.query]
    assert follow
    assert follow[0].query["api-version"] == "7.5"


def test_key_without_rotation_policy(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    name = vault_of(sample, SUB_A)
    serve_key(
        fake, name, "plain",
        {"value": [{"kid": "https://x/keys/plain/0a", "attributes": {"enabled": True, "created": CREATED}}]},
        {"error": {"code": "KeyNotFound", "message": "no policy"}}, 404,
    )
    got = collect(azure_ws, "keys")
    assert got.result.status == "complete", got.errors
    (key,) = got.observations
    assert key["attributes"]["rotation_policy"] is None
    assert key["observed_at"] is not None


def test_forbidden_vault_fails_only_itself_and_keeps_its_facts(azure_ws, fake, sample):
    add_source(azure_ws)
    first = collect(azure_ws, "keys")
    assert first.result.status == "complete"
    name_b = vault_of(sample, SUB_B)
    url_b = sample.vault_urls[name_b]
    before = {o["subject"] for o in first.observations if o["scope"] == url_b}
    fake.fault("GET", f"^/vaults/{name_b}/.*", forbidden(), times=None)
    got = collect(azure_ws, "keys")
    assert got.result.status == "partial"
    assert got.error_codes() == {url_b: "AuthorizationFailed"}
    assert {o["subject"] for o in got.observations if o["scope"] == url_b} == before


def test_throttling_that_does_not_clear_fails_the_vault(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    name = vault_of(sample, SUB_A)
    fake.fault("GET", f"^/vaults/{name}/keys$", throttled(retry_after=5), times=None)
    got = collect(azure_ws, "keys")
    assert got.result.status == "partial"
    url = sample.vault_urls[name]
    assert got.error_codes() == {url: "TooManyRequests"}
    assert got.slept == [5.0, 5.0, 5.0]
    assert got.envelope["provenance"]["retries"] == 3


def test_401_without_challenge_is_an_authentication_error(azure_ws, fake, sample):
    add_source(azure_ws, subscriptions=[SUB_A])
    name = vault_of(sample, SUB_A)
    body = fixture("kv_data_plane_recorded_401_missing_bearer_challenge.json")
    fake.fault("GET", f"^/vaults/{name}/.*", Response(401, body), times=None)
    got = collect(azure_ws, "keys")
    assert got.result.status == "partial"
    (error,) = got.errors
    assert error["code"] == "Unauthorized"
    assert "authentication failed" in error["message"]


def test_challenge_resource_is_verified_by_default(azure_ws, fake, sample):
    azure_ws.extra_config = azure_ws.extra_config.replace(
        "verify_challenge_resource = false", "verify_challenge_resource = true"
    )
    add_source(azure_ws, subscriptions=[SUB_A])
    got = collect(azure_ws, "keys")
    assert got.result.status == "partial"
    (error,) = got.errors
    assert error["code"] == "challenge-resource-mismatch"
    # no token was ever sent to a host that is not the challenge's resource
    data_plane = [r for r in fake.requests if r.path.startswith("/vaults/")]
    assert data_plane
    assert not any(r.bearer for r in data_plane)


def test_vault_listing_forbidden_fails_the_subscription(azure_ws, fake, sample):
    add_source(azure_ws)
    fake.fault("GET", f"/subscriptions/{SUB_A}/resources", forbidden(), times=None)
    got = collect(azure_ws, "keys")
    assert got.result.status == "partial"
    assert got.error_codes() == {f"/subscriptions/{SUB_A}": "AuthorizationFailed"}
    assert json.dumps(got.envelope["query"]["vaults"]) == json.dumps(
        [sample.vault_urls[vault_of(sample, SUB_B)]]
    )
