"""The routes every process gives the ops team: liveness, readiness and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from yijian.db import reading
from yijian.metrics import metrics_response

Check = Callable[[], Awaitable[None]]


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with reading(engine) as connection:
            await connection.execute(text("SELECT 1"))

    return check


def operations_router(checks: Mapping[str, Check]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (restart it if this stops answering)."""
        return {"status": "ok"}

    @router.get("/readyz", response_model=None)
    async def readyz() -> dict[str, object] | JSONResponse:
        """Ready only when every database and, where used, Kafka answer."""
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as error:
                results[name] = type(error).__name__
        ready = all(value == "ok" for value in results.values())
        body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": results}
        return body if ready else JSONResponse(body, status_code=503)

    router.add_api_route("/metrics", metrics_response, include_in_schema=False)
    return router
