"""HTTP edges shared by every service: bounded bodies, security headers on every response,
no state change from another site, and errors that never leak internals."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from yijian.db import database_unavailable

log = structlog.get_logger(__name__)

# Metrics go to Prometheus (/metrics). FastAPI's native OpenTelemetry hooks, when not turned
# off, look up the global providers (reading the environment) on every request: ~3% of a
# complaint's CPU in the intake profiles, for nothing.
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, before anything parses them.

    Checks the declared length and counts the bytes actually received, so a chunked body
    without a Content-Length cannot slip past. ``larger`` names the few routes (path
    patterns, matched in full) that may take more, such as a photo upload; every other
    route keeps the small limit.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), limit) for pattern, limit in (larger or {}).items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.larger:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope["path"])
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await _too_large(max_bytes, send)
            return
        seen = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await _too_large(max_bytes, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(max_bytes: int, send: Send) -> None:
    body = f'{{"detail":"request body is larger than {max_bytes} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning("database unavailable", path=request.url.path, error=type(error).__name__)
        return JSONResponse(
            {"detail": "the service is briefly unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes each bad value back. Ours leaves it out: the sender
        # has it, it may be personal data, and half a surrogate pair cannot even be encoded.
        problems = [
            {key: value for key, value in problem.items() if key != "input"}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    async def _database_error(request: Request, error: Exception) -> JSONResponse:
        # A database that is down reaches us as more than OperationalError: asyncpg's socket
        # error when no connection opens, or a DBAPI error with a connection SQLSTATE. Those
        # are 503 too; any other database error is a fault of ours.
        if database_unavailable(error):
            return await _database_unavailable(request, error)
        return await _unexpected(request, error)

    for kind in (DBAPIError, ConnectionError, TimeoutError):
        app.add_exception_handler(kind, _database_error)


# Every page is our own static HTML with module scripts and stylesheets from this origin;
# photos are previewed from blob: URLs and icons may be data: URLs. Nothing else loads.
PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The offline API docs (fastapi-offline) start with one inline script, allowed below by its
# hash. ReDoc writes its styles at run time and searches in a blob: worker, so only these
# pages, which show no personal data, get inline styles and workers.
_DOCS_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'{hashes}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The citizen form offers "use my location" and the camera for photos; nothing else.
    "Permissions-Policy": "accelerometer=(), camera=(self), geolocation=(self), "
    "gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def served_over_tls(scope: Scope) -> bool:
    """Whether the browser reached us over https: directly, or through the gateway or an
    ingress that ended TLS and says so in ``X-Forwarded-Proto``.

    Trusting the header costs nothing: all it can do is add ``Secure`` and HSTS.
    """
    if scope.get("scheme") == "https":
        return True
    forwarded = Headers(scope=scope).get("x-forwarded-proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


def docs_policy(html: bytes) -> str:
    """The docs pages' policy, allowing exactly the inline scripts ``html`` holds."""
    hashes = "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return _DOCS_POLICY.format(hashes=hashes)


class SecurityHeaders:
    """Adds the security headers to every response, once, for every service's app.

    A route that needs something stricter sets its own header and keeps it (a stored photo
    is served with ``sandbox``); nothing may be looser except the API docs.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = served_over_tls(scope)
        if scope["path"] in DOCS_PATHS:
            await self._docs(scope, receive, send, tls)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(message, tls)
            await send(message)

        await self.app(scope, receive, secured)

    async def _docs(self, scope: Scope, receive: Receive, send: Send, tls: bool) -> None:
        """Hold the (small) docs page until its scripts can be hashed into the policy."""
        start: Message | None = None
        body = bytearray()

        async def held(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            MutableHeaders(scope=start)["Content-Security-Policy"] = docs_policy(bytes(body))
            _add_headers(start, tls)
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, held)


def install_security(app: FastAPI, open_prefixes: tuple[str, ...] = ()) -> None:
    """The security edges every service's app gets; call it after the other middleware, so
    these wrap them and even their refusals (a 413) carry the headers."""
    app.add_middleware(SameSiteWrites, open_prefixes=open_prefixes)
    app.add_middleware(SecurityHeaders)


_SECURITY_RAW = [
    (name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
]
_HSTS_RAW = (b"strict-transport-security", HSTS.encode())


def _add_headers(start: Message, tls: bool) -> None:
    # On the raw list, once: MutableHeaders scans and rebuilds the list for every header it
    # checks or sets, which was an eighth of intake's HTTP time for seven headers.
    raw = [(bytes(name).lower(), bytes(value)) for name, value in start.get("headers", ())]
    present = {name for name, _ in raw}
    raw.extend(header for header in _SECURITY_RAW if header[0] not in present)
    if tls:
        raw = [header for header in raw if header[0] != _HSTS_RAW[0]]
        raw.append(_HSTS_RAW)
    start["headers"] = raw


class SameSiteWrites:
    """Refuses (403) a state-changing request that a browser sent from another site.

    Browsers attach cookies and submit plain forms across sites without asking, so a page
    elsewhere could post to us in a signed-in user's name. ``Sec-Fetch-Site`` says where a
    request came from; browsers without it still send ``Origin``, compared with our host.
    Clients that are not browsers send neither and pass. ``open_prefixes`` are routes meant
    for other sites' clients (Open311, which authenticates with its own api_key).
    """

    def __init__(self, app: ASGIApp, open_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in _SAFE_METHODS
            and not scope["path"].startswith(self.open_prefixes)
            and _from_another_site(Headers(scope=scope))
        ):
            response = JSONResponse(
                {"detail": "cross-site request refused: send it from this site's own pages"},
                status_code=403,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _from_another_site(headers: Headers) -> bool:
    site = headers.get("sec-fetch-site")
    if site is not None:
        # "none" is a user's own navigation (typed, bookmarked); same-site is a sibling
        # host, which may be someone else's, and still gets SameSite cookies.
        return site not in {"same-origin", "none"}
    origin = headers.get("origin")
    if origin is None:
        return False
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    return origin.partition("://")[2] != host.split(",")[0].strip()
