"""Prometheus metrics every process exposes at ``/metrics``.

Names follow Prometheus conventions; labels carry only service, consumer, event type,
route templates and status codes — never an id or anything a citizen typed.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_SECONDS = Histogram(
    "yijian_http_request_seconds",
    "HTTP request latency by route template.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PRODUCED = Counter(
    "yijian_events_produced_total", "Events moved from an outbox to the log.", ["producer"]
)
EVENTS_CONSUMED = Counter(
    "yijian_events_consumed_total",
    "Events a consumer settled, by outcome (applied, duplicate, ignored, failed, dead_lettered).",
    ["consumer", "outcome"],
)
CONSUMER_LAG = Gauge("yijian_consumer_lag", "Records appended but not yet consumed.", ["consumer"])
OUTBOX_BACKLOG = Gauge(
    "yijian_outbox_backlog", "Events committed but not yet on the log.", ["producer"]
)
DEADLINES_PENDING = Gauge("yijian_deadlines_pending", "Deadlines waiting to fire.")
DEADLINES_FIRED = Counter("yijian_deadlines_fired_total", "Deadlines fired, by kind.", ["kind"])
DELIVERIES = Counter(
    "yijian_deliveries_total",
    "Notification attempts, by channel and outcome.",
    ["channel", "outcome"],
)


def metrics_response(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestTimer:
    """Times each request under its route template (``/api/v1/complaints/{complaint_id}``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            REQUEST_SECONDS.labels(scope["method"], _route_of(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _route_of(scope: Scope) -> str:
    """The template of the route that took the request: Starlette's router notes the route it
    matched in the scope. (Matching every route again here cost about a tenth of intake's CPU
    a complaint, bench/intake.py.)"""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    return str(getattr(route, "path", "other"))
