"""Paged JSON reads from Microsoft Graph and Resource Manager over an azure-core pipeline.

The same policy stack the Azure SDKs use (bearer token with caching, the run's
counting retry policy that honours ``Retry-After``, redirects, logging), with
the run's transport (TLS settings, timeouts, sleep hook) from ``AzureAccess``.
Graph has no light-weight SDK worth its size (msgraph-sdk is ~400 MB and async
only), and Defender for Cloud's listings need nothing an SDK adds, so both are
read as plain JSON pages: ``pages()`` follows next links, which must stay on
the configured endpoint (a token is never sent elsewhere), and raises
``RestError`` with the service's own error code when a page fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from evidence import __version__
from evidence.collectors.azure._auth import AzureAccess


class RestError(Exception):
    """A page could not be read: ``code`` is the service's error code (or ours)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class RestClient:
    def __init__(self, access: AzureAccess, base_url: str, scope: str) -> None:
        from azure.core import PipelineClient
        from azure.core.pipeline import policies

        self.base_url = base_url.rstrip("/")
        self._client: Any = PipelineClient(
            base_url=self.base_url,
            policies=[
                policies.RequestIdPolicy(),
                policies.HeadersPolicy({"Accept": "application/json"}),
                policies.UserAgentPolicy(base_user_agent=f"evidence-collector/{__version__}"),
                policies.RedirectPolicy(),
                access.retry_policy(),
                policies.BearerTokenCredentialPolicy(access.credential, scope),
                policies.HttpLoggingPolicy(),
            ],
            transport=access.transport(),
        )

    def close(self) -> None:
        self._client.close()

    def pages(
        self, path: str, params: Mapping[str, str] | None = None, *, next_key: str
    ) -> Iterator[list[Any]]:
        """Each page's ``value`` list, following ``next_key`` links until there is none."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        url: str | None = self._client.format_url(path)
        query: Mapping[str, str] | None = params
        number = 0
        while url:
            number += 1
            if not url.startswith(self.base_url + "/"):
                raise RestError(
                    "foreign-next-link", f"page {number}: next link leaves {self.base_url}"
                )
            try:
                response = self._client.send_request(HttpRequest("GET", url, params=query))
                body_bytes = response.read()
            except AzureError as exc:
                raise RestError(_error_kind(exc), f"page {number}: {_first_line(exc)}") from None
            if response.status_code >= 400:
                code, message = _service_error(body_bytes)
                raise RestError(
                    code or f"http-{response.status_code}",
                    f"page {number}: HTTP {response.status_code} {code}: {message}".rstrip(": "),
                    response.status_code,
                )
            body = _parse(body_bytes, number)
            yield body["value"]
            link = body.get(next_key)
            url = link if isinstance(link, str) and link else None
            query = None  # a next link is absolute and complete


def _parse(data: bytes, number: int) -> dict[str, Any]:
    try:
        # json.loads, not orjson: a duplicate key keeps its last value, as the services mean.
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RestError(
            "malformed-response", f"page {number}: the response is not valid JSON"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise RestError("malformed-response", f"page {number}: the response has no 'value' list")
    return body


def _service_error(data: bytes) -> tuple[str, str]:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "", ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    return (str(error), "") if isinstance(error, str) else ("", "")


def _error_kind(exc: BaseException) -> str:
    from azure.core.exceptions import ClientAuthenticationError, ServiceResponseError

    if isinstance(exc, ClientAuthenticationError):
        return "authentication"
    if isinstance(exc, ServiceResponseError):
        return "timeout"
    return "connection"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
