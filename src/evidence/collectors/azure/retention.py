"""``azure.retention``: data retention settings read through Azure Resource Manager.

Per subscription, one listing (``resources.list`` filtered to storage accounts,
Log Analytics workspaces and key vaults), then generic ARM reads with explicit
API versions (``ResourceManagementClient.send_request``):

* storage account: ``blobServices/default`` (blob and container soft delete,
  versioning), ``managementPolicies/default`` (lifecycle rules that delete; 404
  means no policy), ``blobServices/default/containers`` (immutability policy,
  legal hold, per container);
* Log Analytics workspace: the workspace (retention days) and its ``tables``
  (table-level retention overrides);
* key vault: the vault (soft delete days, purge protection).

Why ARM reads and not Azure Resource Graph: Resource Graph indexes the
resources' own properties but not the child settings this collector needs
(blob service properties, management policies, container immutability, table
retention); it could only replace the listing and the vault/workspace reads,
which are a minority of the requests. See the project notes for the measured
request counts.

Record (one per read): ``{"scope", "resource_id", "resource_type", "read",
"api_version", "status", "body"}`` with the body as the service sent it.
Observation ``azure.retention_setting`` per (resource, setting), typed values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from evidence.collectors.azure._auth import AzureAccess
from evidence.collectors.azure._common import (
    AzureScopeOptions,
    azure_errors,
    discover_subscriptions,
    error_code,
    subscription_scope,
    with_access,
)
from evidence.collectors.base import CollectContext, Collector
from evidence.domain.observation import Observation

STORAGE = "microsoft.storage/storageaccounts"
WORKSPACE = "microsoft.operationalinsights/workspaces"
VAULT = "microsoft.keyvault/vaults"
API_VERSIONS = {
    "resources": "2025-04-01",  # what azure-mgmt-resource 26 sends for resources.list
    "storage": "2024-01-01",
    "log_analytics": "2025-02-01",
    "key_vault": "2024-11-01",
}
# (resource type, read suffix, api key, a 404 is an answer rather than an error)
READS: dict[str, list[tuple[str, str, bool]]] = {
    STORAGE: [
        ("/blobServices/default", "storage", False),
        ("/managementPolicies/default", "storage", True),
        ("/blobServices/default/containers", "storage", False),
    ],
    WORKSPACE: [("", "log_analytics", False), ("/tables", "log_analytics", False)],
    VAULT: [("", "key_vault", False)],
}
MAX_PAGES = 1000  # a child listing longer than this is an error, not a loop


class RetentionOptions(AzureScopeOptions):
    pass


class RetentionCollector(Collector):
    kind: ClassVar[str] = "azure.retention"
    version: ClassVar[str] = "1.0"
    options_model = RetentionOptions
    observation_kinds = ("azure.retention_setting",)
    # systemData names people (createdBy "keyVaultUser1"); e-mails are caught anyway.
    personal_keys: ClassVar[frozenset[str]] = frozenset({"createdBy", "lastModifiedBy"})
    options: RetentionOptions

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        return with_access(self.env, self.options, ctx, self._collect)

    def _collect(self, access: AzureAccess, ctx: CollectContext) -> Iterator[Any]:
        ctx.provenance["api_versions"] = dict(API_VERSIONS)
        ctx.provenance["identity"] = access.identity()
        ctx.provenance["endpoint"] = access.resource_manager_url
        ctx.query["resource_types"] = sorted(READS)
        ctx.query["reads"] = {
            kind: [s or "(resource)" for s, _, _ in reads] for kind, reads in READS.items()
        }
        for subscription in discover_subscriptions(access, self.options, ctx):
            scope = subscription_scope(subscription)
            ctx.start_scope(scope)
            yield from self._subscription(access, ctx, subscription, scope)

    def _subscription(
        self, access: AzureAccess, ctx: CollectContext, subscription: str, scope: str
    ) -> Iterator[Any]:
        from azure.mgmt.resource.resources import ResourceManagementClient

        client = ResourceManagementClient(access.credential, subscription, **access.arm_kwargs())
        listing_api = getattr(getattr(client, "_config", None), "api_version", None)
        if isinstance(listing_api, str):
            ctx.provenance["api_versions"]["resources"] = listing_api
        wanted = " or ".join(f"resourceType eq '{t}'" for t in sorted(READS))
        try:
            resources = [
                (r.id, (r.type or "").lower())
                for r in client.resources.list(filter=wanted)
                if r.id and (r.type or "").lower() in READS
            ]
        except azure_errors() as exc:
            code, message = error_code(exc)
            ctx.fail_scope(scope, f"{scope}: resources could not be listed: {message}", code=code)
            return
        ctx.page()
        count = 0
        for resource_id, resource_type in sorted(resources):
            for suffix, api, missing_ok in READS[resource_type]:
                try:
                    for status, body in _read(client, resource_id + suffix, API_VERSIONS[api], ctx):
                        if status == 404 and not missing_ok:
                            raise _NotFound(body)
                        count += 1
                        yield {
                            "scope": scope,
                            "resource_id": resource_id,
                            "resource_type": resource_type,
                            "read": suffix or "(resource)",
                            "api_version": API_VERSIONS[api],
                            "status": status,
                            "body": body,
                        }
                except _NotFound as missing:
                    ctx.fail_scope(
                        scope, f"{resource_id}{suffix}: HTTP 404 {missing.code}", code=missing.code
                    )
                except _Malformed as bad:
                    ctx.fail_scope(
                        scope, f"{resource_id}{suffix}: {bad}", code="malformed-response"
                    )
                except azure_errors() as exc:
                    code, message = error_code(exc)
                    ctx.fail_scope(scope, f"{resource_id}{suffix}: {message}", code=code)
        if scope in ctx.scopes:
            ctx.scopes[scope].records = count

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        if not isinstance(record, dict) or not isinstance(record.get("body"), dict):
            return
        scope = str(record.get("scope", ""))
        subscription = scope.rsplit("/", 1)[-1]
        for resource_id, resource_type, setting, values, observed in _settings(record):
            yield Observation(
                kind="azure.retention_setting",
                subject=f"{resource_id.lower()}|{setting}",
                attributes={
                    "resource_id": resource_id,
                    "resource_type": resource_type,
                    "subscription_id": subscription,
                    "setting": setting,
                    "enabled": values.get("enabled"),
                    "days": values.get("days"),
                    "locked": values.get("locked"),
                    "details": values.get("details", {}),
                },
                observed_at=observed,
                scope=scope,
                record_index=index,
            )


class _NotFound(Exception):
    def __init__(self, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        self.code = str(error.get("code")) if isinstance(error, dict) else "NotFound"
        super().__init__(self.code)


class _Malformed(Exception):
    pass


def _read(
    client: Any, path: str, api_version: str, ctx: CollectContext
) -> Iterator[tuple[int, Any]]:
    """(status, body) per page of one generic GET; follows ``nextLink``. 404 is returned,
    other errors raise the SDK's exception (counted retries already happened)."""
    from azure.core.exceptions import DecodeError, HttpResponseError
    from azure.core.rest import HttpRequest

    url: str | None = f"{path}?api-version={api_version}"
    number = 0
    while url:
        number += 1
        if number > MAX_PAGES:
            raise _Malformed(f"more than {MAX_PAGES} pages")
        try:
            response = client.send_request(HttpRequest("GET", url))
        except DecodeError:
            raise _Malformed(f"page {number} is not valid JSON") from None
        if response.status_code == 404:
            yield 404, _json_or_none(response.content)
            return
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise _Malformed(f"page {number} is not valid JSON") from None
        if number > 1:
            ctx.page()
        yield response.status_code, body
        link = body.get("nextLink") if isinstance(body, dict) else None
        url = link if isinstance(link, str) and link else None


def _json_or_none(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


Setting = tuple[str, str, str, dict[str, Any], datetime | None]


def _settings(record: dict[str, Any]) -> Iterator[Setting]:
    """(resource id, type, setting, values, observed_at) for one read."""
    body: dict[str, Any] = record["body"]
    resource_id, resource_type = record["resource_id"], record["resource_type"]
    read = record["read"]
    props = _dict(body.get("properties"))
    modified = _time(_dict(body.get("systemData")).get("lastModifiedAt"))
    if read == "/blobServices/default":
        soft = _dict(props.get("deleteRetentionPolicy"))
        yield (
            resource_id,
            resource_type,
            "blob_soft_delete",
            {
                "enabled": _bool(soft.get("enabled")),
                "days": _int(soft.get("days")),
                "details": {"allow_permanent_delete": _bool(soft.get("allowPermanentDelete"))},
            },
            modified,
        )
        container = _dict(props.get("containerDeleteRetentionPolicy"))
        yield (
            resource_id,
            resource_type,
            "container_soft_delete",
            {
                "enabled": _bool(container.get("enabled")) if container else None,
                "days": _int(container.get("days")),
                "details": {"configured": bool(container)},
            },
            modified,
        )
        yield (
            resource_id,
            resource_type,
            "blob_versioning",
            {
                "enabled": _bool(props.get("isVersioningEnabled")),
                "details": {},
            },
            modified,
        )
    elif read == "/managementPolicies/default":
        yield (
            resource_id,
            resource_type,
            "lifecycle_delete",
            _lifecycle(record["status"], props),
            _time(props.get("lastModifiedTime")) or modified,
        )
    elif read == "/blobServices/default/containers":
        for item in body.get("value") or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                yield from _container(item)
    elif read == "(resource)" and resource_type == WORKSPACE:
        yield (
            resource_id,
            resource_type,
            "log_analytics_retention",
            {
                "enabled": None,
                "days": _int(props.get("retentionInDays")),
                "details": {"sku": _dict(props.get("sku")).get("name")},
            },
            modified,
        )
    elif read == "/tables":
        for item in body.get("value") or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                table = _dict(item.get("properties"))
                yield (
                    item["id"],
                    f"{WORKSPACE}/tables",
                    "log_analytics_table_retention",
                    {
                        "enabled": None,
                        "days": _int(table.get("retentionInDays")),
                        "details": {
                            "total_retention_in_days": _int(table.get("totalRetentionInDays")),
                            "archive_retention_in_days": _int(table.get("archiveRetentionInDays")),
                            "retention_in_days_as_default": _bool(
                                table.get("retentionInDaysAsDefault")
                            ),
                            "plan": table.get("plan"),
                        },
                    },
                    _time(_dict(item.get("systemData")).get("lastModifiedAt")),
                )
    elif read == "(resource)" and resource_type == VAULT:
        # Absent fields stay None: the service's defaults are not invented here.
        yield (
            resource_id,
            resource_type,
            "key_vault_soft_delete",
            {
                "enabled": _bool(props.get("enableSoftDelete")),
                "days": _int(props.get("softDeleteRetentionInDays")),
                "details": {"field_present": "enableSoftDelete" in props},
            },
            modified,
        )
        yield (
            resource_id,
            resource_type,
            "key_vault_purge_protection",
            {
                "enabled": _bool(props.get("enablePurgeProtection")),
                "details": {"field_present": "enablePurgeProtection" in props},
            },
            modified,
        )


def _container(item: dict[str, Any]) -> Iterator[Setting]:
    props = _dict(item.get("properties"))
    kind = "microsoft.storage/storageaccounts/blobservices/containers"
    modified = _time(props.get("lastModifiedTime"))
    policy = _dict(props.get("immutabilityPolicy"))
    policy_props = _dict(policy.get("properties"))
    state = policy_props.get("state")
    has_policy = _bool(props.get("hasImmutabilityPolicy"))
    yield (
        item["id"],
        kind,
        "immutability_policy",
        {
            "enabled": has_policy if has_policy is not None else bool(policy_props) or None,
            "days": _int(policy_props.get("immutabilityPeriodSinceCreationInDays")),
            "locked": (state == "Locked") if isinstance(state, str) else None,
            "details": {
                "state": state,  # verbatim (Locked, Unlocked, or anything new)
                "allow_protected_append_writes": _bool(
                    policy_props.get("allowProtectedAppendWrites")
                ),
                "allow_protected_append_writes_all": _bool(
                    policy_props.get("allowProtectedAppendWritesAll")
                ),
            },
        },
        modified,
    )
    hold = _dict(props.get("legalHold"))
    tags = [t.get("tag") for t in hold.get("tags") or [] if isinstance(t, dict)]
    yield (
        item["id"],
        kind,
        "legal_hold",
        {
            "enabled": _bool(props.get("hasLegalHold", hold.get("hasLegalHold"))),
            "details": {"tags": sorted(str(t) for t in tags if t)},
        },
        modified,
    )


_DELETE_DAYS = (
    "daysAfterModificationGreaterThan",
    "daysAfterCreationGreaterThan",
    "daysAfterLastAccessTimeGreaterThan",
    "daysAfterLastTierChangeGreaterThan",
)


def _lifecycle(status: int, props: dict[str, Any]) -> dict[str, Any]:
    """Lifecycle rules that delete data: enabled when any enabled rule deletes; days is the
    shortest age at which something is deleted."""
    if status == 404:
        return {"enabled": False, "days": None, "details": {"policy": "none", "rules": []}}
    rules = []
    for rule in _dict(props.get("policy")).get("rules") or []:
        if not isinstance(rule, dict):
            continue
        actions = _dict(_dict(rule.get("definition")).get("actions"))
        deletes = {}
        for target in ("baseBlob", "snapshot", "version"):
            delete = _dict(_dict(actions.get(target)).get("delete"))
            found = {k: _int(delete.get(k)) for k in _DELETE_DAYS}
            found = {k: v for k, v in found.items() if v is not None}
            if found:
                deletes[target] = found
        if deletes:
            rules.append(
                {
                    "name": rule.get("name"),
                    "enabled": rule.get("enabled", True) is not False,  # the API default is true
                    "deletes": deletes,
                    "prefix_match": _dict(_dict(rule.get("definition")).get("filters")).get(
                        "prefixMatch", []
                    ),
                }
            )
    live = [r for r in rules if r["enabled"]]
    days = [d for r in live for target in r["deletes"].values() for d in target.values()]
    return {
        "enabled": bool(live),
        "days": min(days) if days else None,
        "details": {"policy": "present", "rules": rules},
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # ARM writes up to 7 fractional digits; Python takes 6.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        tail = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tail}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.utcoffset() is not None else None
