"""``azure.key_rotation``: key rotation history from Key Vault.

Vaults are found per subscription through Resource Manager (the listing, then
each vault's ``vaultUri``); each vault is then read with ``azure-keyvault-keys``:
every key, every version (created, updated, enabled, expires, not before) and
the key's rotation policy. Rotation is proven from the versions' creation
times, not from the policy. Each vault is a scope of its own: one vault that
refuses us (403) or throttles past the retry budget fails only itself.

Record (one per key): ``{"scope": <vault url>, "vault_url", "key_name",
"key": {...}, "versions": [...], "rotation_policy": {...} | None}`` with times
as ISO 8601 UTC text. Observation ``azure.key_rotation`` per key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

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
from evidence.domain.canonical import utc_text
from evidence.domain.observation import Observation

KEY_VAULT_ARM_API = "2024-11-01"
KEY_VAULT_DATA_API = "7.5"  # explicit, so the envelope names what was asked
MAX_VERSIONS = 100_000  # a key with more versions than this is reported, not looped over


class KeyRotationOptions(AzureScopeOptions):
    pass


class KeyRotationCollector(Collector):
    kind: ClassVar[str] = "azure.key_rotation"
    version: ClassVar[str] = "1.0"
    options_model = KeyRotationOptions
    observation_kinds = ("azure.key_rotation",)
    options: KeyRotationOptions

    def collect(self, ctx: CollectContext) -> Iterator[Any]:
        return with_access(self.env, self.options, ctx, self._collect)

    def _collect(self, access: AzureAccess, ctx: CollectContext) -> Iterator[Any]:
        ctx.provenance["api_versions"] = {
            "key_vault_arm": KEY_VAULT_ARM_API,
            "key_vault_data_plane": KEY_VAULT_DATA_API,
        }
        ctx.provenance["identity"] = access.identity()
        ctx.provenance["endpoint"] = access.resource_manager_url
        vaults_seen: list[str] = []
        ctx.query["vaults"] = vaults_seen
        for subscription in discover_subscriptions(access, self.options, ctx):
            scope = subscription_scope(subscription)
            ctx.start_scope(scope)
            for vault_url in self._vaults(access, ctx, subscription, scope):
                vaults_seen.append(vault_url)
                yield from self._vault(access, ctx, vault_url)

    def _vaults(
        self, access: AzureAccess, ctx: CollectContext, subscription: str, scope: str
    ) -> list[str]:
        from azure.mgmt.resource.resources import ResourceManagementClient

        client = ResourceManagementClient(access.credential, subscription, **access.arm_kwargs())
        urls: list[str] = []
        try:
            ids = sorted(
                r.id
                for r in client.resources.list(filter="resourceType eq 'Microsoft.KeyVault/vaults'")
                if r.id and (r.type or "").lower() == "microsoft.keyvault/vaults"
            )
            ctx.page()
            for vault_id in ids:
                vault = client.resources.get_by_id(vault_id, api_version=KEY_VAULT_ARM_API)
                uri = (vault.properties or {}).get("vaultUri")
                if isinstance(uri, str) and uri:
                    urls.append(uri.rstrip("/").lower())
                else:
                    ctx.fail_scope(
                        scope,
                        f"{vault_id}: no vaultUri in its properties",
                        code="vault-uri-missing",
                    )
        except azure_errors() as exc:
            code, message = error_code(exc)
            ctx.fail_scope(scope, f"{scope}: key vaults could not be listed: {message}", code=code)
        return urls

    def _vault(self, access: AzureAccess, ctx: CollectContext, vault_url: str) -> Iterator[Any]:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.keyvault.keys import KeyClient

        ctx.start_scope(vault_url)
        client = KeyClient(
            vault_url, access.credential, api_version=KEY_VAULT_DATA_API, **access.keyvault_kwargs()
        )
        count = 0
        try:
            names = sorted({k.name for k in client.list_properties_of_keys() if k.name})
            ctx.page()
            for name in names:
                versions = []
                for props in client.list_properties_of_key_versions(name):
                    versions.append(_version(props))
                    if len(versions) > MAX_VERSIONS:
                        raise ValueError(f"key {name} has more than {MAX_VERSIONS} versions")
                try:
                    policy = _policy(client.get_key_rotation_policy(name))
                except ResourceNotFoundError:
                    policy = None
                count += 1
                yield {
                    "scope": vault_url,
                    "vault_url": vault_url,
                    "key_name": name,
                    "versions": sorted(versions, key=lambda v: (v["created"] or "", v["version"])),
                    "rotation_policy": policy,
                }
        except azure_errors() as exc:
            code, message = error_code(exc)
            ctx.fail_scope(vault_url, f"{vault_url}: {message}", code=code)
            return
        ctx.scopes[vault_url].records = count

    def observe(self, record: Any, index: int) -> Iterable[Observation]:
        if not isinstance(record, dict) or not isinstance(record.get("versions"), list):
            return
        versions = [v for v in record["versions"] if isinstance(v, dict)]
        dated = [v for v in versions if v.get("created")]
        current: dict[str, Any] = max(dated, key=lambda v: str(v["created"])) if dated else {}
        if not current and versions:
            current = versions[-1]
        created = current.get("created")
        yield Observation(
            kind="azure.key_rotation",
            subject=f"{record['vault_url']}/keys/{record['key_name']}",
            attributes={
                "vault_url": record["vault_url"],
                "key_name": record["key_name"],
                "enabled": current.get("enabled"),
                "versions": versions,
                "version_count": len(versions),
                "current_version": current.get("version"),
                "current_created": created,
                "expires": current.get("expires"),
                "rotation_policy": record.get("rotation_policy"),
            },
            observed_at=_parse(created),
            scope=str(record.get("scope", "")),
            record_index=index,
        )


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        moment = value if value.utcoffset() is not None else value.replace(tzinfo=UTC)
        return utc_text(moment.astimezone(UTC))
    return None


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _version(props: Any) -> dict[str, Any]:
    return {
        "version": props.version,
        "created": _iso(props.created_on),
        "updated": _iso(props.updated_on),
        "enabled": props.enabled,
        "expires": _iso(props.expires_on),
        "not_before": _iso(props.not_before),
        "recovery_level": props.recovery_level,
    }


def _policy(policy: Any) -> dict[str, Any] | None:
    """The rotation policy as durations (ISO 8601 text, verbatim), or None when empty."""
    rotate_after = rotate_before = notify_before = None
    for action in policy.lifetime_actions or []:
        kind = str(getattr(action.action, "value", action.action) or "").lower()
        if kind == "rotate":
            rotate_after = rotate_after or action.time_after_create
            rotate_before = rotate_before or action.time_before_expiry
        elif kind == "notify":
            notify_before = notify_before or action.time_before_expiry
    found = {
        "rotate_after": rotate_after,
        "rotate_before_expiry": rotate_before,
        "notify_before_expiry": notify_before,
        "expiry_time": policy.expires_in,
    }
    return found if any(v is not None for v in found.values()) else None
