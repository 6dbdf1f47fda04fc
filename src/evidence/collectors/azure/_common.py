"""What the Azure collectors share: scope options, subscription discovery, error codes.

A subscription (or vault) is a scope: its failure is recorded with the
service's own error code and the collector carries on with the next one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import orjson
from pydantic import Field, model_validator

from evidence.collectors.azure._auth import AzureAccess, open_access
from evidence.collectors.base import CollectContext, CollectorEnv, CollectorOptions
from evidence.errors import CollectorError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MANAGEMENT_GROUPS_API = "2023-04-01"  # what azure-mgmt-managementgroups 2.0 sends


class AzureScopeOptions(CollectorOptions):
    """``subscriptions = [...]`` or ``management_group = "<id>"`` (its subscriptions are
    found at run time)."""

    subscriptions: list[str] = Field(default_factory=list)
    management_group: str = ""
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    note: str = Field(default="", max_length=500, description="written into every envelope")

    @model_validator(mode="after")
    def _one_scope(self) -> AzureScopeOptions:
        if bool(self.subscriptions) == bool(self.management_group):
            raise ValueError("set either subscriptions or management_group (exactly one)")
        bad = [s for s in self.subscriptions if not _GUID.match(s)]
        if bad:
            raise ValueError(f"subscriptions must be subscription ids (GUIDs), got {bad}")
        return self


def subscription_scope(subscription_id: str) -> str:
    return f"/subscriptions/{subscription_id.lower()}"


class _TimedOptions(Protocol):
    timeout_seconds: float


def access_for(env: CollectorEnv, options: _TimedOptions) -> AzureAccess:
    """The run's Azure access, for every Azure and Graph collector. Tests may put
    ``sleep`` (a recorder) and ``credential`` in ``env.extra``; the service passes neither."""
    credential = env.credential_factory() if env.credential_factory else env.extra.get("credential")
    kwargs: dict[str, Any] = {"read_timeout": options.timeout_seconds, "base_dir": env.base_dir}
    if "sleep" in env.extra:
        kwargs["sleep"] = env.extra["sleep"]
    return open_access(env.azure, credential=credential, **kwargs)


def error_code(exc: BaseException) -> tuple[str, str]:
    """(service error code, message) for an Azure SDK exception, without secrets."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        DecodeError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, DecodeError):
        return "malformed-response", "the response was not valid JSON"
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # from azure-identity: no token could be had (bad secret, untrusted TLS, ...)
        return "authentication", f"no token: {_first_line(exc)}"
    if isinstance(exc, HttpResponseError):
        status = getattr(exc, "status_code", None)
        code = getattr(getattr(exc, "error", None), "code", None) or _body_code(exc)
        text = f"HTTP {status}" if status else "HTTP error"
        reason = getattr(exc, "reason", "") or ""
        message = getattr(getattr(exc, "error", None), "message", None) or reason
        code = code or (f"http-{status}" if status else "http-error")
        prefix = "authentication failed: " if isinstance(exc, ClientAuthenticationError) else ""
        return str(code), f"{prefix}{text} {code}: {message}".strip()
    if isinstance(exc, ServiceResponseError):
        return "timeout", f"no (complete) response: {_first_line(exc)}"
    if isinstance(exc, ServiceRequestError):
        return "connection", f"request could not be sent: {_first_line(exc)}"
    if isinstance(exc, ClientAuthenticationError):
        return "authentication", _first_line(exc)
    if isinstance(exc, ValueError) and "challenge resource" in str(exc):
        return "challenge-resource-mismatch", _first_line(exc)
    return type(exc).__name__, _first_line(exc)


def _body_code(exc: Any) -> str:
    response = getattr(exc, "response", None)
    if response is None:
        return ""
    try:
        body = orjson.loads(response.body())
    except Exception:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return str(error) if isinstance(error, str) else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def azure_errors() -> tuple[type[BaseException], ...]:
    from azure.core.exceptions import AzureError

    # ValueError: Key Vault's challenge check raises it (not an AzureError).
    return (AzureError, ValueError)


def discover_subscriptions(
    access: AzureAccess, options: AzureScopeOptions, ctx: CollectContext
) -> list[str]:
    """The subscriptions in scope, recorded in the envelope. A management group that cannot
    be read fails the whole run: with no list of subscriptions nothing can be claimed."""
    if options.subscriptions:
        found = [s.lower() for s in options.subscriptions]
        ctx.query["subscriptions"] = found
        return found
    from azure.mgmt.managementgroups import ManagementGroupsMgmtClient

    client = ManagementGroupsMgmtClient(access.credential, **access.arm_kwargs())
    found = []
    try:
        for item in client.management_groups.get_descendants(options.management_group):
            kind = (item.type or "").lower()
            if kind.endswith("/subscriptions") and item.name:
                found.append(item.name.lower())
    except azure_errors() as exc:
        code, message = error_code(exc)
        raise CollectorError(
            f"management group {options.management_group}: subscriptions could not be listed: "
            f"{message}",
            scope=f"/providers/Microsoft.Management/managementGroups/{options.management_group}",
            service_code=code,
        ) from None
    ctx.query["management_group"] = options.management_group
    ctx.query["subscriptions"] = sorted(set(found))
    api = getattr(getattr(client, "_config", None), "api_version", MANAGEMENT_GROUPS_API)
    ctx.provenance.setdefault("api_versions", {})["management_groups"] = str(api)
    return sorted(set(found))


def with_access(
    env: CollectorEnv,
    options: AzureScopeOptions,
    ctx: CollectContext,
    body: Callable[[AzureAccess, CollectContext], Iterator[Any]],
) -> Iterator[Any]:
    """Run ``body`` with the run's Azure access, and record what the pipeline counted
    however it ends (also when a scope or the whole run fails)."""
    access = access_for(env, options)
    try:
        yield from body(access, ctx)
    finally:
        finish(access, ctx, options.note)


def finish(access: AzureAccess, ctx: CollectContext, note: str = "") -> None:
    """Copy what the pipeline counted (and the source's note) into the run's notebook."""
    if note:
        ctx.provenance["note"] = note
    ctx.retries = access.retries.count
    if access.retries.reasons:
        ctx.provenance["retry_reasons"] = dict(access.retries.reasons)


class RawListDeserializer:
    """Stands in for an operation group's model deserializer for one listing type, so the
    SDK's own paging, auth, retries and error handling run unchanged while each page's
    items stay the JSON the service sent (unknown fields and enum values verbatim).
    Building msrest models we would throw away cost ~1.4 ms per policy state (measured),
    the largest part of a collection; other types still go to the SDK's deserializer."""

    def __init__(self, inner: Any, target: str, next_key: str) -> None:
        self._inner, self._target, self._next_key = inner, target, next_key

    def __call__(self, target: str, response: Any, *args: Any, **kwargs: Any) -> Any:
        if target != self._target:
            return self._inner(target, response, *args, **kwargs)
        from types import SimpleNamespace

        from azure.core.exceptions import DecodeError

        body = getattr(response, "context", {}).get("deserialized_data")
        if body is None:
            try:
                body = orjson.loads(response.http_response.body())
            except orjson.JSONDecodeError:
                raise DecodeError("the page is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise DecodeError("the page has no 'value' list")
        link = body.get(self._next_key)
        return SimpleNamespace(value=body["value"], next_link=link, odata_next_link=link)

    def __getattr__(self, name: str) -> Any:  # failsafe_deserialize and friends
        return getattr(self._inner, name)


def raw_listing(operations: Any, target: str, next_key: str) -> bool:
    """Install ``RawListDeserializer`` on an SDK operation group; False when the SDK's
    layout is not the generated one this relies on (then models are built as usual)."""
    inner = getattr(operations, "_deserialize", None)
    if inner is None or not callable(inner):
        return False
    operations._deserialize = RawListDeserializer(inner, target, next_key)
    return True


class RawPages:
    """Captures each page's JSON as the service sent it (``raw_response_hook``), so records
    are stored verbatim (unknown fields and enum values included), while the SDK's own
    paging, retries and deserialization still run."""

    def __init__(self) -> None:
        self.pages: list[Any] = []

    def __call__(self, response: Any) -> None:
        http = getattr(response, "http_response", None)
        if http is None or not 200 <= http.status_code < 300:
            return
        try:
            self.pages.append(orjson.loads(http.body()))
        except orjson.JSONDecodeError:
            self.pages.append(None)  # the SDK raises its DecodeError right after

    def take(self) -> Any:
        return self.pages.pop(0) if self.pages else None


def iter_values(page: Any, what: str, number: int) -> Iterator[Any]:
    if not isinstance(page, dict) or not isinstance(page.get("value"), list):
        raise ValueError(f"{what}: page {number} has no 'value' list")
    yield from page["value"]
