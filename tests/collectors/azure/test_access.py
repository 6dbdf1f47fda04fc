"""Credentials, endpoints and the fake itself: what every Azure collector relies on."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from evidence.collectors.azure._auth import build_credential, endpoints, open_access, token_identity
from evidence.config import AzureSettings
from evidence.domain.kinds import KINDS
from evidence.errors import ConfigError
from evidence.sample.fakeazure.sample_env import SUBSCRIPTIONS

from .conftest import collect


def test_client_secret_needs_its_environment():
    settings = AzureSettings(credential="client_secret")
    with pytest.raises(ConfigError) as caught:
        build_credential(settings, environ={"AZURE_TENANT_ID": "t"})
    assert "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET" in caught.value.message


def test_missing_ca_bundle_is_a_config_error(tmp_path):
    settings = AzureSettings(ca_bundle="nope.pem")
    with pytest.raises(ConfigError) as caught:
        open_access(settings, base_dir=tmp_path)
    assert "nope.pem" in caught.value.message


@pytest.mark.parametrize(
    ("cloud", "arm", "authority"),
    [
        ("public", "https://management.azure.com", "https://login.microsoftonline.com"),
        ("usgov", "https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
        ("china", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
    ],
)
def test_sovereign_cloud_endpoints(cloud, arm, authority):
    assert endpoints(AzureSettings(cloud=cloud)) == (arm, authority)


def test_explicit_endpoints_win_over_the_cloud_defaults():
    settings = AzureSettings(cloud="usgov", resource_manager_url="https://arm.example")
    assert endpoints(settings)[0] == "https://arm.example"


def test_token_identity_reads_ids_and_ignores_non_jwts():
    claims = {"oid": "o-1", "appid": "a-1", "tid": "t-1", "secret": "x"}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert token_identity(f"e30.{body}.sig") == {
        "object_id": "o-1",
        "app_id": "a-1",
        "tenant_id": "t-1",
    }
    assert token_identity("opaque-token") == {}
    assert token_identity("a.!!!.c") == {}


@pytest.mark.parametrize("kind", ["default", "managed_identity", "workload_identity", "azure_cli"])
def test_every_credential_kind_builds(kind, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", "72f988bf-0000-4000-8000-00000000fa4e")
    monkeypatch.setenv("AZURE_CLIENT_ID", "0b7b5b4e-0000-4000-8000-0000000c1e47")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/dev/null")
    credential = build_credential(AzureSettings(credential=kind))
    assert hasattr(credential, "get_token")


def test_a_wrong_secret_fails_the_run_without_leaking_it(azure_ws, fake, sample, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong-secret-value")
    azure_ws.add_source(
        name="policy", kind="azure.policy_states", subscriptions=list(SUBSCRIPTIONS)
    )
    got = collect(azure_ws, "policy")
    assert got.result.status == "failed"
    assert {e["code"] for e in got.errors} == {"authentication"}
    assert "wrong-secret-value" not in json.dumps(got.envelope)
    assert got.observations == []
    assert not fake.requests_to("/policyStates/")  # nothing was asked without a token


def test_untrusted_certificate_is_refused(azure_ws, fake, sample):
    azure_ws.extra_config = "\n".join(
        line for line in azure_ws.extra_config.splitlines() if not line.startswith("ca_bundle")
    )
    azure_ws.add_source(name="policy", kind="azure.policy_states", subscriptions=[SUBSCRIPTIONS[0]])
    got = collect(azure_ws, "policy")
    assert got.result.status == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in json.dumps(got.errors)


def test_fake_reads_headers_case_insensitively_and_requires_a_token(fake):
    context = ssl.create_default_context(cafile=str(Path(fake.ca_pem)))
    fake.json("GET", "/probe", {"ok": True})
    token = fake.issue_token()
    request = urllib.request.Request(
        f"{fake.base_url}/probe", headers={"authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, context=context) as response:
        assert json.loads(response.read()) == {"ok": True}
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{fake.base_url}/probe", context=context)
    assert caught.value.code == 401


def test_observations_use_exactly_the_contract_attributes(azure_ws, fake, sample):
    subs = list(SUBSCRIPTIONS)
    azure_ws.add_source(name="policy", kind="azure.policy_states", subscriptions=subs)
    azure_ws.add_source(name="retention", kind="azure.retention", subscriptions=subs)
    azure_ws.add_source(name="keys", kind="azure.key_rotation", subscriptions=subs)
    for name, kind in (
        ("policy", "azure.policy_state"),
        ("retention", "azure.retention_setting"),
        ("keys", "azure.key_rotation"),
    ):
        got = collect(azure_ws, name)
        assert got.result.status == "complete", got.errors
        assert got.observations
        for obs in got.observations:
            assert obs["kind"] == kind
            # a JSON object's member order carries no meaning (stored canonical, sorted)
            assert sorted(obs["attributes"]) == sorted(KINDS[kind].attributes)
