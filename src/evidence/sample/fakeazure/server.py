"""``FakeAzure``: a small HTTPS server on 127.0.0.1 that plays Azure for tests and the demo.

It speaks just enough of Microsoft Entra ID (the OpenID configuration and the
OAuth2 token endpoint, so the real ``ClientSecretCredential`` signs in),
Resource Manager, Policy Insights and the Key Vault data plane for the real SDK
clients to work against it unchanged. Every request must carry a bearer token
the fake issued; Key Vault paths answer a missing token with the 401
``WWW-Authenticate`` challenge the real service sends.

API (small on purpose, so other collectors' tests can add their routes):

* ``with FakeAzure() as fake:`` starts it (``fake.base_url``, ``fake.ca_pem``);
* ``fake.route(method, "/subscriptions/{sub}/...", handler)``: ``handler(request)``
  returns a ``Response``; ``{name}`` segments land in ``request.params``;
* ``fake.json(method, pattern, body, status=200)``: a fixed JSON answer;
* ``fake.paged(method, pattern, page_count=..., items=..., next_key=...)``: a
  listing split into pages with absolute next links pointing at the fake,
  items generated on demand, optional ``malformed_pages``;
* ``fake.fault(method, pattern, Response, times=1)``: answer the next ``times``
  matching requests with this (``times=None``: always) before the route runs;
  ``throttled()``, ``server_error()``, ``slow()``, ``forbidden()``,
  ``not_found()`` build the usual faults;
* ``fake.keyvault_prefix(prefix)``: requests under ``prefix`` get the Key Vault
  challenge; ``fake.requests`` lists everything received (``Request``).
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from evidence.sample.fakeazure.tls import make_server_context

TENANT_ID = "72f988bf-0000-4000-8000-00000000fa4e"
CLIENT_ID = "0b7b5b4e-0000-4000-8000-0000000c1e47"
CLIENT_SECRET = "fakeazure-sample-secret-not-a-real-one"  # noqa: S105 (the fake's own test value)
OBJECT_ID = "5f1c7e0a-0000-4000-8000-00000000b0b0"
MAX_DELAY = 10.0  # seconds: slow() answers are bounded so a test can never hang


@dataclass
class Request:
    """One request as the fake received it. ``headers`` look up case-insensitively."""

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    base_url: str = ""  # the listener it arrived on (each fake vault has its own port)
    wire_path: str = ""  # the path as sent; ``path`` has the listener's mount prefix added

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def bearer(self) -> str:
        value = self.headers.get("Authorization") or ""
        return value[7:] if value.lower().startswith("bearer ") else ""


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able value, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (the timeout fault)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return b"" if self.body is None else json.dumps(self.body).encode()


Handler = Callable[[Request], Response]


def arm_error(status: int, code: str, message: str, **headers: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message}}, dict(headers))


def throttled(retry_after: float | None = 2) -> Response:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return arm_error(429, "TooManyRequests", "Rate limit exceeded (fake)", **headers)


def server_error(status: int = 503) -> Response:
    return arm_error(status, "ServiceUnavailable", "The service is unavailable (fake)")


def forbidden() -> Response:
    return arm_error(
        403, "AuthorizationFailed", "The client does not have authorization to perform (fake)"
    )


def not_found(code: str = "ResourceNotFound") -> Response:
    return arm_error(404, code, "The resource was not found (fake)")


def slow(seconds: float, then: Response | None = None) -> Response:
    """Answer after ``seconds`` (capped at MAX_DELAY): longer than a client's read timeout."""
    late = then or Response(200, {"value": []})
    return Response(late.status, late.body, late.headers, delay=min(seconds, MAX_DELAY))


@dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler


@dataclass
class _Fault:
    method: str
    regex: re.Pattern[str]
    response: Response
    remaining: int | None
    query_contains: str = ""


def _compile(pattern: str) -> re.Pattern[str]:
    """``/subscriptions/{sub}/x`` -> a case-insensitive regex with named groups (ARM paths
    are case-insensitive). A pattern starting with ``^`` is used as a regex as it is."""
    if pattern.startswith("^"):
        return re.compile(pattern, re.IGNORECASE)
    parts = re.split(r"(\{\w+\})", pattern)
    regex = "".join(
        f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") and p.endswith("}") else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{regex}/?$", re.IGNORECASE)


def _fake_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.fakeazure"


class FakeAzure:
    """The fake. Not thread-safe to reconfigure while a client is mid-request."""

    def __init__(
        self,
        *,
        tenant_id: str = TENANT_ID,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        folder: Path | None = None,
        record: bool = True,
    ) -> None:
        self.tenant_id, self.client_id, self.client_secret = tenant_id, client_id, client_secret
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="fakeazure-")
        self.folder = folder or Path(self._tmp.name)  # type: ignore[union-attr]
        self.record = record
        self.requests: list[Request] = []
        self.token_requests: list[dict[str, str]] = []
        self._routes: list[_Route] = []
        self._faults: list[_Fault] = []
        self._tokens: set[str] = set()
        self._vault_prefixes: list[str] = []
        self._lock = threading.Lock()
        self._listeners: list[tuple[ThreadingHTTPServer, threading.Thread]] = []
        self._context: Any = None
        self.ca_pem: Path = self.folder / "fakeazure-ca.pem"
        self.base_url = ""
        self._install_identity_routes()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FakeAzure:
        self._context, self.ca_pem = make_server_context(self.folder)
        self.base_url = self._listen("")
        self.port = int(self.base_url.rsplit(":", 1)[1])
        return self

    def add_vault(self, name: str, *, port: int = 0) -> str:
        """A Key Vault of its own (own port: the SDK wants a bare host as vault URL). Its
        requests are routed as ``/vaults/<name>/...`` and get the Key Vault challenge.
        ``port``: a preferred port (the demo keeps vault URLs stable across runs); when it
        is taken, any free port is used."""
        prefix = f"/vaults/{name}"
        self.keyvault_prefix(prefix)
        if port:
            try:
                return self._listen(prefix, port)
            except OSError:
                pass
        return self._listen(prefix)

    def _listen(self, prefix: str, port: int = 0) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self, prefix))
        httpd.daemon_threads = True
        httpd.socket = self._context.wrap_socket(httpd.socket, server_side=True)
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeazure", daemon=True
        )
        thread.start()
        self._listeners.append((httpd, thread))
        return f"https://127.0.0.1:{httpd.server_address[1]}"

    def stop(self) -> None:
        for httpd, thread in self._listeners:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)
        self._listeners = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FakeAzure:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -------------------------------------------------------------

    @property
    def authority(self) -> str:
        return self.base_url

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Later routes win over earlier ones for the same request."""
        with self._lock:
            self._routes.insert(0, _Route(method.upper(), _compile(pattern), handler))

    def json(self, method: str, pattern: str, body: Any, status: int = 200) -> None:
        self.route(method, pattern, lambda _req: Response(status, body))

    def fault(
        self,
        method: str,
        pattern: str,
        response: Response,
        *,
        times: int | None = 1,
        query_contains: str = "",
    ) -> None:
        with self._lock:
            self._faults.append(
                _Fault(method.upper(), _compile(pattern), response, times, query_contains)
            )

    def keyvault_prefix(self, prefix: str) -> None:
        """Requests under ``prefix`` without a token get Key Vault's 401 challenge."""
        self._vault_prefixes.append(prefix.rstrip("/"))

    def issue_token(self, scope: str = "") -> str:
        token = _fake_jwt(
            {
                "oid": OBJECT_ID,
                "appid": self.client_id,
                "tid": self.tenant_id,
                "aud": scope,
                "jti": uuid.uuid4().hex,
            }
        )
        with self._lock:
            self._tokens.add(token)
        return token

    def paged(
        self,
        method: str,
        pattern: str,
        *,
        page_count: int,
        items: Callable[[int], Iterable[Any]] | list[list[Any]],
        next_key: str = "nextLink",
        extra: dict[str, Any] | None = None,
        malformed_pages: Iterable[int] = (),
        render: Callable[[int], bytes] | None = None,
    ) -> None:
        """A listing of ``page_count`` pages (numbered from 1). ``items(n)`` gives page n's
        items (or pass a list of lists). Page n>1 is asked for with ``$skiptoken=page<n>``;
        the next link is absolute, at the fake, keeping the request's other parameters.
        ``render(n)`` may produce a page's bytes directly (fast path for big benchmarks)."""
        bad = set(malformed_pages)

        def page_of(req: Request) -> Response:
            token = req.query.get("$skiptoken", "page1")
            number = int(token[4:]) if token.startswith("page") and token[4:].isdigit() else 0
            if not 1 <= number <= page_count:
                return arm_error(400, "InvalidSkipToken", f"unknown $skiptoken {token!r}")
            if number in bad:
                return Response(200, b'{"value": [{"broken": tru')
            following = ""
            if number < page_count:
                keep = {k: v for k, v in req.query.items() if k != "$skiptoken"}
                keep["$skiptoken"] = f"page{number + 1}"
                following = f"{req.base_url}{req.wire_path}?{urlencode(keep, safe='$')}"
            if render is not None:
                return Response(200, _splice_next(render(number), next_key, following))
            values = items[number - 1] if isinstance(items, list) else list(items(number))
            body: dict[str, Any] = dict(extra or {})
            body["value"] = values
            if following:
                body[next_key] = following
            return Response(200, body)

        self.route(method, pattern, page_of)

    def requests_to(self, fragment: str, method: str | None = None) -> list[Request]:
        return [
            r
            for r in list(self.requests)
            if fragment.lower() in r.path.lower() and (method is None or r.method == method)
        ]

    # -- dispatch --------------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        if self.record:
            self.requests.append(req)
        if not req.path.lower().startswith(f"/{self.tenant_id}/"):
            denied = self._check_token(req)
            if denied is not None:
                return denied
        fault = self._take_fault(req)
        if fault is not None:
            return fault
        for item in list(self._routes):
            if item.method != req.method:
                continue
            match = item.regex.match(req.path)
            if match:
                req.params = {k: v for k, v in match.groupdict().items() if v is not None}
                return item.handler(req)
        return arm_error(404, "NotFound", f"the fake has no route for {req.method} {req.path}")

    def _check_token(self, req: Request) -> Response | None:
        token = req.bearer
        if token and token in self._tokens:
            return None
        in_vault = any(req.path.startswith(p + "/") or req.path == p for p in self._vault_prefixes)
        if in_vault:
            challenge = (
                f'Bearer authorization="{self.authority}/{self.tenant_id}", '
                'resource="https://vault.azure.net"'
            )
            message = "AKV10000: Request is missing a Bearer or PoP token."
            body = {"error": {"code": "Unauthorized", "message": message}}
            return Response(401, body, {"WWW-Authenticate": challenge})
        return arm_error(
            401,
            "AuthenticationFailed" if not token else "InvalidAuthenticationToken",
            "Authentication failed: no valid bearer token (fake)",
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    def _take_fault(self, req: Request) -> Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.method != req.method or not fault.regex.match(req.path):
                    continue
                if fault.query_contains and fault.query_contains not in req.raw_query:
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                return fault.response
        return None

    # -- identity (Entra ID) -------------------------------------------------------------

    def _install_identity_routes(self) -> None:
        tenant = self.tenant_id

        def openid(_req: Request) -> Response:
            base = f"{self.base_url}/{tenant}"
            return Response(
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                    "jwks_uri": f"{base}/discovery/v2.0/keys",
                    "tenant_region_scope": "NA",
                },
            )

        def token(req: Request) -> Response:
            form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
            self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
            secret_ok = form.get("client_secret") == self.client_secret
            if form.get("client_id") != self.client_id or not secret_ok:
                return Response(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret (fake).",
                        "error_codes": [7000215],
                    },
                )
            scope = form.get("scope", "")
            return Response(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": self.issue_token(scope),
                },
            )

        self.route("GET", f"/{tenant}/v2.0/.well-known/openid-configuration", openid)
        self.route("POST", f"/{tenant}/oauth2/v2.0/token", token)


def _splice_next(page: bytes, next_key: str, following: str) -> bytes:
    """Add the next link to a pre-rendered page that ends with ``}``."""
    if not following:
        return page
    link = json.dumps(following).encode()
    return page[:-1].rstrip() + b', "' + next_key.encode() + b'": ' + link + b"}"


def _handler_class(fake: FakeAzure, prefix: str) -> type[BaseHTTPRequestHandler]:
    base_holder: list[str] = []

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are written separately; without this every keep-alive
        # request waits ~40 ms on Nagle + delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            if not base_holder:
                port = self.server.server_address[1]  # type: ignore[index]
                base_holder.append(f"https://127.0.0.1:{port}")
            req = Request(
                self.command, prefix + parts.path, parts.query, query, self.headers, body,
                base_url=base_holder[0], wire_path=parts.path,
            )
            try:
                response = fake.dispatch(req)
            except Exception as exc:  # a broken test handler shows up as a 500, not a hang
                response = arm_error(500, "FakeHandlerError", f"{type(exc).__name__}: {exc}")
            if response.delay:
                time.sleep(response.delay)
            data = response.payload()
            try:
                self.send_response(response.status)
                headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("x-ms-request-id", uuid.uuid4().hex)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a timeout test)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return _Handler
