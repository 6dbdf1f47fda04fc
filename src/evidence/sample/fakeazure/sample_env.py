"""The bundled SAMPLE environment the fake serves: two subscriptions under one
management group, with policy states, storage/Log Analytics/Key Vault retention
settings and keys with rotation history. Everything here is invented sample
data (deterministic, so re-collecting it changes nothing).

``install(fake)`` registers the routes and returns a ``SampleEnv`` describing
what was installed; tests override single routes afterwards (later routes win).
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from evidence.sample.fakeazure.server import FakeAzure, Request, Response

MANAGEMENT_GROUP = "sample-mg"
SUBSCRIPTIONS = (
    "5a3f0c1e-5a3f-4c1e-8a3f-00000000a001",
    "5a3f0c1e-5a3f-4c1e-8a3f-00000000b002",
)
STATES = ("Compliant", "NonCompliant", "Exempt", "Compliant", "Conflict", "Unknown")
EVALUATED = "2026-01-15T06:00:00Z"
POLICY_STATES = (
    "/subscriptions/{sub}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults"
)
SUMMARIZE = "/subscriptions/{sub}/providers/Microsoft.PolicyInsights/policyStates/latest/summarize"
RESOURCES = "/subscriptions/{sub}/resources"
CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z


@dataclass
class SampleEnv:
    fake: FakeAzure
    subscriptions: tuple[str, ...]
    management_group: str = MANAGEMENT_GROUP
    vault_urls: dict[str, str] = field(default_factory=dict)  # vault name -> URL
    states: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def policy_state(sub: str, index: int, compliance: str | None = None) -> dict[str, Any]:
    """One invented policy state in the service's JSON shape."""
    assignment = (
        f"/subscriptions/{sub}/providers/Microsoft.Authorization/policyAssignments/a{index % 3}"
    )
    definition = f"/providers/Microsoft.Authorization/policyDefinitions/d{index % 4}"
    state = compliance or STATES[index % len(STATES)]
    return {
        "@odata.id": None,
        "timestamp": EVALUATED,
        "resourceId": f"/subscriptions/{sub}/resourceGroups/rg{index % 2}/providers/"
        f"Microsoft.Storage/storageAccounts/sample{index}",
        "policyAssignmentId": assignment,
        "policyDefinitionId": definition,
        "effectiveParameters": "",
        "isCompliant": state == "Compliant",
        "subscriptionId": sub,
        "resourceType": "Microsoft.Storage/storageAccounts",
        "resourceLocation": "westeurope",
        "resourceGroup": f"rg{index % 2}",
        "policyAssignmentName": f"a{index % 3}",
        "policyAssignmentScope": f"/subscriptions/{sub}",
        "policyDefinitionName": f"d{index % 4}",
        "policyDefinitionAction": "audit",
        "policySetDefinitionId": "/providers/Microsoft.Authorization/policySetDefinitions/"
        "sample-initiative"
        if index % 2
        else "",
        "policyDefinitionReferenceId": f"ref{index % 4}" if index % 2 else "",
        "complianceState": state,
        "policyDefinitionGroupNames": ["sample"],
    }


def summary_of(states: list[dict[str, Any]]) -> dict[str, Any]:
    """A summarize response whose per-(assignment, definition) resource counts match ``states``."""
    groups: dict[str, dict[str, Counter[str]]] = {}
    for s in states:
        per = groups.setdefault(str(s.get("policyAssignmentId")), {})
        state = str(s.get("complianceState") or "unknown").lower()
        per.setdefault(str(s.get("policyDefinitionId")), Counter())[state] += 1
    assignments = []
    for assignment, definitions in sorted(groups.items()):
        assignments.append(
            {
                "policyAssignmentId": assignment,
                "policySetDefinitionId": "",
                "results": {"nonCompliantResources": 0, "nonCompliantPolicies": 0},
                "policyDefinitions": [
                    {
                        "policyDefinitionId": definition,
                        "effect": "audit",
                        "results": {
                            "nonCompliantResources": counts.get("noncompliant", 0),
                            "resourceDetails": [
                                {"complianceState": k, "count": v}
                                for k, v in sorted(counts.items())
                            ],
                        },
                    }
                    for definition, counts in sorted(definitions.items())
                ],
            }
        )
    return {
        "@odata.count": 1,
        "value": [
            {
                "results": {"nonCompliantResources": 0, "nonCompliantPolicies": 0},
                "policyAssignments": assignments,
            }
        ],
    }


def apply_filter(states: list[dict[str, Any]], req: Request) -> list[dict[str, Any]]:
    """The little of OData ``$filter`` the sample understands: ComplianceState eq '...'."""
    text = req.query.get("$filter", "")
    marker = "ComplianceState eq '"
    if marker in text:
        wanted = text.split(marker, 1)[1].split("'", 1)[0]
        return [s for s in states if s["complianceState"] == wanted]
    return states


def install(
    fake: FakeAzure,
    *,
    subscriptions: tuple[str, ...] = SUBSCRIPTIONS,
    states_per_subscription: int = 6,
    page_size: int = 4,
    stable_vault_ports: bool = False,
) -> SampleEnv:
    """``stable_vault_ports``: prefer a fixed port per vault, so vault URLs (part of the
    key observations' subjects) stay the same from one demo run to the next."""
    env = SampleEnv(fake=fake, subscriptions=subscriptions)
    env.states = {
        sub: [policy_state(sub, i) for i in range(states_per_subscription)] for sub in subscriptions
    }
    fake.json(
        "GET",
        f"/providers/Microsoft.Management/managementGroups/{MANAGEMENT_GROUP}/descendants",
        {
            "value": [
                {
                    "id": f"/subscriptions/{sub}",
                    "type": "Microsoft.Management/managementGroups/subscriptions",
                    "name": sub,
                    "properties": {"displayName": f"sample subscription {n}"},
                }
                for n, sub in enumerate(subscriptions, 1)
            ]
        },
    )
    _install_policy(fake, env, page_size)
    for sub in subscriptions:
        _install_resources(fake, env, sub, stable_vault_ports)
    return env


def _install_policy(fake: FakeAzure, env: SampleEnv, page_size: int) -> None:
    def states_page(req: Request) -> Response:
        states = apply_filter(env.states.get(req.params["sub"].lower(), []), req)
        token = req.query.get("$skiptoken", "page1")
        number = int(token[4:]) if token[4:].isdigit() else 1
        chunk = states[(number - 1) * page_size : number * page_size]
        body: dict[str, Any] = {"@odata.count": len(chunk), "value": chunk}
        if number * page_size < len(states):
            keep = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            from urllib.parse import urlencode

            keep["$skiptoken"] = f"page{number + 1}"
            body["@odata.nextLink"] = f"{req.base_url}{req.wire_path}?{urlencode(keep, safe='$')}"
        return Response(200, body)

    def summarize(req: Request) -> Response:
        states = apply_filter(env.states.get(req.params["sub"].lower(), []), req)
        return Response(200, summary_of(states))

    fake.route("POST", POLICY_STATES, states_page)
    fake.route("POST", SUMMARIZE, summarize)


def account_id(sub: str, name: str) -> str:
    group = f"/subscriptions/{sub}/resourceGroups/rg-data"
    return f"{group}/providers/Microsoft.Storage/storageAccounts/{name}"


def _install_resources(fake: FakeAzure, env: SampleEnv, sub: str, stable_port: bool) -> None:
    short = sub[-4:]
    account = account_id(sub, f"samplelogs{short}")
    workspace = (
        f"/subscriptions/{sub}/resourceGroups/rg-data/providers/"
        f"Microsoft.OperationalInsights/workspaces/sample-ws-{short}"
    )
    vault_name = f"sample-kv-{short}"
    vault = f"/subscriptions/{sub}/resourceGroups/rg-data/providers/Microsoft.KeyVault/vaults/"
    vault += vault_name
    # Below Linux's ephemeral range (32768+), so no client socket or random test
    # server holds it: the vault URL, and so the key subjects, stay the same across runs.
    port = 12000 + zlib.crc32(vault_name.encode()) % 8000 if stable_port else 0
    vault_url = fake.add_vault(vault_name, port=port)
    env.vault_urls[vault_name] = vault_url
    listing = [
        {"id": account, "name": f"samplelogs{short}", "type": "Microsoft.Storage/storageAccounts"},
        {
            "id": workspace,
            "name": f"sample-ws-{short}",
            "type": "Microsoft.OperationalInsights/workspaces",
        },
        {"id": vault, "name": vault_name, "type": "Microsoft.KeyVault/vaults"},
    ]
    fake.json("GET", RESOURCES.replace("{sub}", sub), {"value": listing})
    fake.json(
        "GET",
        f"{account}/blobServices/default",
        {
            "id": f"{account}/blobServices/default",
            "name": "default",
            "type": "Microsoft.Storage/storageAccounts/blobServices",
            "properties": {
                "deleteRetentionPolicy": {
                    "enabled": True,
                    "days": 30,
                    "allowPermanentDelete": False,
                },
                "containerDeleteRetentionPolicy": {"enabled": True, "days": 30},
                "isVersioningEnabled": True,
            },
        },
    )
    fake.json(
        "GET",
        f"{account}/managementPolicies/default",
        {
            "id": f"{account}/managementPolicies/default",
            "name": "DefaultManagementPolicy",
            "properties": {
                "lastModifiedTime": "2025-06-01T10:00:00Z",
                "policy": {
                    "rules": [
                        {
                            "enabled": True,
                            "name": "delete-after-7y",
                            "type": "Lifecycle",
                            "definition": {
                                "filters": {"blobTypes": ["blockBlob"], "prefixMatch": ["audit/"]},
                                "actions": {
                                    "baseBlob": {
                                        "delete": {"daysAfterModificationGreaterThan": 2555}
                                    }
                                },
                            },
                        }
                    ]
                },
            },
        },
    )
    fake.json(
        "GET",
        f"{account}/blobServices/default/containers",
        {
            "value": [
                {
                    "id": f"{account}/blobServices/default/containers/evidence",
                    "name": "evidence",
                    "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
                    "properties": {
                        "lastModifiedTime": "2025-06-01T10:00:00Z",
                        "hasImmutabilityPolicy": True,
                        "hasLegalHold": False,
                        "immutabilityPolicy": {
                            "properties": {
                                "immutabilityPeriodSinceCreationInDays": 2555,
                                "state": "Locked",
                                "allowProtectedAppendWrites": False,
                            }
                        },
                        "legalHold": {"hasLegalHold": False, "tags": []},
                    },
                }
            ]
        },
    )
    fake.json(
        "GET",
        workspace,
        {
            "id": workspace,
            "name": f"sample-ws-{short}",
            "type": "Microsoft.OperationalInsights/workspaces",
            "properties": {"retentionInDays": 90, "sku": {"name": "PerGB2018"}},
        },
    )
    fake.json(
        "GET",
        f"{workspace}/tables",
        {
            "value": [
                {
                    "id": f"{workspace}/tables/AzureActivity",
                    "name": "AzureActivity",
                    "properties": {
                        "retentionInDays": 365,
                        "totalRetentionInDays": 730,
                        "archiveRetentionInDays": 365,
                        "retentionInDaysAsDefault": False,
                        "plan": "Analytics",
                    },
                }
            ]
        },
    )
    fake.json(
        "GET",
        vault,
        {
            "id": vault,
            "name": vault_name,
            "type": "Microsoft.KeyVault/vaults",
            "properties": {
                "vaultUri": vault_url + "/",
                "enableSoftDelete": True,
                "softDeleteRetentionInDays": 90,
                "enablePurgeProtection": True,
            },
        },
    )
    install_keys(fake, vault_name, vault_url, {"signing-key": 3, "backup-key": 1})


def install_keys(fake: FakeAzure, vault_name: str, vault_url: str, keys: dict[str, int]) -> None:
    """Keys with ``n`` versions each, one version per 90 days, and a rotation policy."""
    base = f"/vaults/{vault_name}"
    fake.json(
        "GET",
        f"{base}/keys",
        {
            "value": [
                {"kid": f"{vault_url}/keys/{name}", "attributes": {"enabled": True}}
                for name in keys
            ],
            "nextLink": None,
        },
    )
    for name, count in keys.items():
        versions = [
            {
                "kid": f"{vault_url}/keys/{name}/{n:032x}",
                "attributes": {
                    "enabled": True,
                    "created": CREATED + n * 90 * 86400,
                    "updated": CREATED + n * 90 * 86400,
                    "exp": CREATED + (n + 8) * 90 * 86400,
                    "recoveryLevel": "Recoverable",
                },
            }
            for n in range(count)
        ]
        fake.json("GET", f"{base}/keys/{name}/versions", {"value": versions, "nextLink": None})
        fake.json(
            "GET",
            f"{base}/keys/{name}/rotationpolicy",
            {
                "id": f"{vault_url}/keys/{name}/rotationpolicy",
                "lifetimeActions": [
                    {"trigger": {"timeAfterCreate": "P90D"}, "action": {"type": "Rotate"}},
                    {"trigger": {"timeBeforeExpiry": "P30D"}, "action": {"type": "Notify"}},
                ],
                "attributes": {"expiryTime": "P2Y", "created": CREATED, "updated": CREATED},
            },
        )
