"""The public front door when the services run as separate processes (``make up``).

Citizens, the mini-program and staff keep one address (http://127.0.0.1:8000, as with
``make run``); each request goes to the service that owns its route. The route table is read
from the services' own routers, so a new endpoint needs no change here. In Kubernetes an
Ingress with the same prefixes does this job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.routing import BaseRoute, Match

from services.embedded import build_system
from services.intake.internal_api import INTERNAL_PREFIX
from yijian.http import NO_OPENTELEMETRY, SecurityHeaders
from yijian.settings import SERVICES, Settings

# Headers that describe one hop, not the message (RFC 9110 §7.6.1).
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@dataclass(frozen=True)
class Destination:
    service: str
    routes: tuple[BaseRoute, ...]


def route_table(settings: Settings) -> list[Destination]:
    """Each service with the routes it answers, straight from its own router."""
    system = build_system(settings)
    return [
        Destination(service.name, tuple(service.router.routes))
        for service in system.runtime.services
    ]


def upstreams(settings: Settings) -> dict[str, str]:
    found = {name: getattr(settings, f"{name}_url") for name in SERVICES}
    missing = [name for name, url in found.items() if not url]
    if missing:
        raise ValueError(f"set YIJIAN_{missing[0].upper()}_URL (the gateway needs every service)")
    return {name: str(url).rstrip("/") for name, url in found.items()}


def pick(table: list[Destination], method: str, path: str) -> str | None:
    """The service that answers ``method path``; None for unknown and internal paths.

    Matching goes through the routes' own ``matches``, as the services' apps would, so
    path parameters, mounts and nested routers behave exactly as they do in the service.
    A path whose route exists with another method still goes there, for its 405.
    """
    if path.startswith(INTERNAL_PREFIX):
        return None  # service-to-service only: never reachable from the public address
    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    partial: str | None = None
    for destination in table:
        for route in destination.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return destination.service
            if match is Match.PARTIAL and partial is None:
                partial = destination.service
    return partial


def create_gateway(settings: Settings) -> FastAPI:
    table = route_table(settings)
    targets = upstreams(settings)
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(
        title="yijian gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_OPENTELEMETRY,
    )
    # The services set these on what they answer; this covers the gateway's own answers.
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False, response_model=None)
    async def readyz() -> dict[str, object] | JSONResponse:
        """Ready when every service behind it answers its own liveness check."""
        results: dict[str, str] = {}
        for name, base in targets.items():
            try:
                answer = await client.get(f"{base}/healthz", timeout=2.0)
                results[name] = "ok" if answer.status_code == 200 else str(answer.status_code)
            except httpx.TransportError as error:
                results[name] = type(error).__name__
        ready = all(value == "ok" for value in results.values())
        body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": results}
        return body if ready else JSONResponse(body, status_code=503)

    @app.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def forward(request: Request, path: str) -> Response:
        service = pick(table, request.method, request.url.path)
        if service is None and request.url.path in {"/docs", "/openapi.json", "/redoc"}:
            service = "intake"
        if service is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        client_host = request.client.host if request.client else ""
        headers["x-forwarded-for"] = client_host
        headers["x-forwarded-proto"] = request.url.scheme
        # The service compares a browser's Origin with the host the browser asked for.
        headers["x-forwarded-host"] = request.headers.get("host", "")
        upstream = client.build_request(
            request.method,
            targets[service] + request.url.path,
            params=request.query_params,
            headers=headers,
            content=request.stream(),
        )
        try:
            answer = await client.send(upstream, stream=True)
        except httpx.TransportError:
            return JSONResponse(
                {"detail": f"the {service} service is not answering; try again shortly"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            headers=kept,
            background=BackgroundTask(answer.aclose),
        )

    return app
