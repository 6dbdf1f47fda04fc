"""Credentials, endpoints and the HTTP pipeline every Azure collector shares.

``AzureAccess`` is built once per run from ``[azure]`` settings. It holds the
azure-identity credential (secrets only from the environment), the endpoints of
the configured cloud, the CA bundle to trust, and a retry policy that honours
``Retry-After``, is bounded by ``retry_total`` and counts every retry so the
count ends up in the run's envelope. ``client_kwargs()`` is what every SDK
client constructor receives; nothing here relaxes HTTPS or bearer checks.

Tests hand in a ``sleep`` callable to record back-off instead of waiting; the
service leaves it at ``time.sleep``.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import RequestsTransport

from evidence.errors import ConfigError

# Resource Manager and authority per cloud; `custom` takes the configured URLs.
CLOUDS: dict[str, tuple[str, str]] = {
    "public": ("https://management.azure.com", "https://login.microsoftonline.com"),
    "usgov": ("https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
    "china": ("https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
}
PUBLIC_ARM, PUBLIC_AUTHORITY = CLOUDS["public"]
KNOWN_AUTHORITIES = {authority for _, authority in CLOUDS.values()}
SECRET_ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")


class RetryCounter:
    """Counts retries across every client of a run, with the reason of each."""

    def __init__(self) -> None:
        self.count = 0
        self.reasons: dict[str, int] = {}

    def add(self, reason: str) -> None:
        self.count += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class CountingRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """azure-core's retry policy (Retry-After first, then back-off), counting each retry."""

    def __init__(self, counter: RetryCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counter = counter

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        # azure-core calls sleep() exactly when it has decided to try again.
        status = getattr(getattr(response, "http_response", None), "status_code", None)
        self._counter.add(str(status) if status else "connection")
        super().sleep(settings, transport, response=response)


class SleepHookTransport(RequestsTransport):  # type: ignore[misc]
    """The requests transport with a replaceable sleep (the retry policy sleeps through it)."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sleep = sleep

    def sleep(self, duration: float) -> None:
        self._sleep(duration)


@dataclass
class AzureAccess:
    """Everything a collector needs to build Azure SDK clients for one run."""

    credential: Any
    credential_kind: str
    resource_manager_url: str
    authority_host: str
    connection_verify: bool | str = True
    verify_challenge_resource: bool = True
    retry_total: int = 6
    read_timeout: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    retries: RetryCounter = field(default_factory=RetryCounter)

    @property
    def arm_scope(self) -> str:
        return f"{self.resource_manager_url}/.default"

    def transport(self) -> SleepHookTransport:
        return SleepHookTransport(
            sleep=self.sleep,
            connection_verify=self.connection_verify,
            read_timeout=self.read_timeout,
        )

    def retry_policy(self) -> CountingRetryPolicy:
        return CountingRetryPolicy(self.retries, retry_total=self.retry_total)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any azure-core based client (transport, retries, TLS)."""
        return {
            "transport": self.transport(),
            "retry_policy": self.retry_policy(),
            "connection_verify": self.connection_verify,
        }

    def arm_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Resource Manager clients (adds endpoint and token scope)."""
        return {
            **self.client_kwargs(),
            "base_url": self.resource_manager_url,
            "credential_scopes": [self.arm_scope],
        }

    def keyvault_kwargs(self) -> dict[str, Any]:
        return {**self.client_kwargs(), "verify_challenge_resource": self.verify_challenge_resource}

    def identity(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Who collected, for the envelope: ids only, never a secret or a token."""
        env = os.environ if environ is None else environ
        found: dict[str, Any] = {"credential": self.credential_kind}
        for key, name in (("AZURE_TENANT_ID", "tenant_id"), ("AZURE_CLIENT_ID", "client_id")):
            if env.get(key):
                found[name] = env[key]
        try:
            token = self.credential.get_token(self.arm_scope).token
        except Exception:  # the collection itself will report the authentication error
            return found
        found.update(token_identity(token))
        return found


def token_identity(token: str) -> dict[str, str]:
    """Object id, app id and tenant from a JWT's claims (read, not trusted; no signature check
    is needed because the service that accepted the token is what proves it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        return {}
    if not isinstance(claims, dict):
        return {}
    names = {"oid": "object_id", "appid": "app_id", "azp": "app_id", "tid": "tenant_id"}
    return {name: str(claims[k]) for k, name in names.items() if isinstance(claims.get(k), str)}


def endpoints(settings: Any) -> tuple[str, str]:
    """(resource manager URL, authority host) for the configured cloud. For a named cloud
    other than public the cloud's own endpoints win over the public defaults."""
    arm, authority = settings.resource_manager_url, settings.authority_host
    if settings.cloud in CLOUDS and settings.cloud != "public":
        cloud_arm, cloud_authority = CLOUDS[settings.cloud]
        arm = cloud_arm if arm == PUBLIC_ARM else arm
        authority = cloud_authority if authority == PUBLIC_AUTHORITY else authority
    return arm.rstrip("/"), authority.rstrip("/")


def build_credential(
    settings: Any, *, environ: Mapping[str, str] | None = None, connection_verify: bool | str = True
) -> Any:
    """The azure-identity credential ``[azure] credential`` names; secrets from the environment."""
    import azure.identity as identity

    env = os.environ if environ is None else environ
    _, authority = endpoints(settings)
    common: dict[str, Any] = {"authority": authority}
    if authority not in KNOWN_AUTHORITIES:
        # A private or test authority cannot be checked against Microsoft's instance list.
        common["disable_instance_discovery"] = True
    if connection_verify is not True:
        common["connection_verify"] = connection_verify
    kind = settings.credential
    if kind == "client_secret":
        missing = [name for name in SECRET_ENV if not env.get(name)]
        if missing:
            raise ConfigError(
                f"[azure] credential = 'client_secret' needs {', '.join(missing)} "
                "in the environment",
                remedy="set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
                where="azure.credential",
            )
        return identity.ClientSecretCredential(
            env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"], **common
        )
    if kind == "managed_identity":
        client_id = env.get("AZURE_CLIENT_ID") or None
        extra: dict[str, Any] = {}
        if connection_verify is not True:
            extra["connection_verify"] = connection_verify
        return identity.ManagedIdentityCredential(client_id=client_id, **extra)
    if kind == "workload_identity":
        return identity.WorkloadIdentityCredential(**common)
    if kind == "azure_cli":
        return identity.AzureCliCredential()
    return identity.DefaultAzureCredential(**common)


def open_access(
    settings: Any,
    *,
    credential: Any = None,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    read_timeout: float = 60.0,
    base_dir: Any = None,
) -> AzureAccess:
    """Build the run's ``AzureAccess`` from ``[azure]`` settings (``AzureSettings``).

    ``ca_bundle`` is a PEM file whose CAs are trusted *in addition to* nothing else:
    requests uses it instead of its default bundle, so it must contain every CA the
    endpoints need (relative paths resolve against ``base_dir``, the config's folder).
    """
    if settings is None:
        raise ConfigError("no [azure] settings were given to an Azure collector")
    verify: bool | str = True
    if settings.ca_bundle:
        path = os.path.join(str(base_dir), settings.ca_bundle) if base_dir else settings.ca_bundle
        if not os.path.isfile(path):
            raise ConfigError(f"[azure] ca_bundle {settings.ca_bundle} is not a readable file",
                              where="azure.ca_bundle")
        verify = path
    arm, authority = endpoints(settings)
    cred = credential or build_credential(settings, environ=environ, connection_verify=verify)
    return AzureAccess(
        credential=cred,
        credential_kind=settings.credential if credential is None else "injected",
        resource_manager_url=arm,
        authority_host=authority,
        connection_verify=verify,
        verify_challenge_resource=settings.verify_challenge_resource,
        retry_total=settings.retry_total,
        read_timeout=read_timeout,
        sleep=sleep,
    )
