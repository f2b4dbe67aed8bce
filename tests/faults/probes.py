"""What a fault test looks at from outside: readiness, metrics, staff sign-in, bounded waits."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import create_async_engine

from deploy.local.stack import ROOT, eventually
from services.routing.users import DEMO_PASSWORD
from tests.faults.checker import Figures

__all__ = [
    "SOAK_MARKS",
    "count",
    "eventually",
    "in_thread",
    "longer",
    "metric",
    "readiness",
    "report",
    "sign_in",
    "until",
]
T = TypeVar("T")
ARTIFACTS = ROOT / "test-artifacts" / "faults"

# The fault tests that would take ``make test`` past a few minutes: ``make soak`` runs them
# (YIJIAN_SOAK=1 pytest -m soak); elsewhere they are skipped, saying so.
SOAK_MARKS = (
    pytest.mark.soak,
    pytest.mark.skipif(
        os.environ.get("YIJIAN_SOAK") != "1", reason="a longer fault test: `make soak` runs it"
    ),
)
Test = TypeVar("Test", bound=Callable[..., Awaitable[None]])


def longer(test: Test) -> Test:
    """Mark a test as one of the longer fault tests (see SOAK_MARKS)."""
    for mark in SOAK_MARKS:
        test = mark(test)
    return test


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait, bounded, for something that background work (load, a server) makes true."""

    async def check() -> bool:
        return condition()

    await eventually(check, what, timeout)


async def readiness(client: httpx.AsyncClient, url: str) -> tuple[int, dict[str, Any]]:
    """``/readyz``'s status and body; (0, {}) when the process does not answer at all."""
    try:
        answer = await client.get(f"{url}/readyz", timeout=10)
    except httpx.TransportError:
        return 0, {}
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


async def metric(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    """The value of one sample of ``/metrics`` (0 when it has not been recorded yet)."""
    text = (await client.get(f"{url}/metrics", timeout=10)).text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{re.escape(name)}(?:{{(.*)}})? (\S+)", line)
        if found and ",".join(sorted((found.group(1) or "").split(","))) == wanted:
            return float(found.group(2))
    return 0.0


async def sign_in(client: httpx.AsyncClient, routing_url: str, org_code: str) -> dict[str, str]:
    """The bearer header of ``org_code``'s demo user (YIJIAN_DEMO_USERS=1); sign in shortly
    before use, as a session ends after a day of the test's clock."""
    answer = await client.post(
        f"{routing_url}/api/v1/staff/login",
        json={"username": org_code, "password": DEMO_PASSWORD},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


async def in_thread(work: Callable[[], T]) -> T:
    """Run blocking work (a server's stop script) without stopping the load beside it."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


def report(title: str, figures: Figures, **notes: object) -> str:
    """Print the checker's table (``pytest -s`` shows it) and keep it under test-artifacts/."""
    lines = [
        figures.table(title),
        *(f"  {key.replace('_', ' ')}: {value}" for key, value in notes.items()),
    ]
    text = "\n".join(lines)
    print(text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    (ARTIFACTS / f"{slug}.txt").write_text(text + "\n", encoding="utf-8")
    return text


async def count(url: str, query: Select[int]) -> int:
    """One ``SELECT count(…)`` on a service's database, for a test waiting on its progress."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(query) or 0)
    finally:
        await engine.dispose()
