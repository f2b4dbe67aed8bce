"""Fixtures that start the real embedded system on a fake clock, in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.embedded import System, build_system, create_app
from yijian.bus.sqllog import SqlEventLog
from yijian.clock import FakeClock
from yijian.settings import Settings

# Monday 2026-03-02, 09:00 in Beijing: an ordinary working day.
MONDAY_MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class Harness:
    """The whole system, an HTTP client on it, and the clock it runs on."""

    system: System
    clock: FakeClock
    client: httpx.AsyncClient
    data_dir: Path
    # The citizen token each submit handed back, as the citizen's phone would keep it.
    citizen_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def sql_log(self) -> SqlEventLog:
        """The embedded event log the harness runs on (tests read it directly)."""
        assert isinstance(self.system.event_log, SqlEventLog)
        return self.system.event_log

    async def settle(self) -> int:
        return await self.system.runtime.drain()

    async def advance(self, span: timedelta) -> None:
        """Move time and let every service do what became due, in order."""
        self.clock.advance(span)
        await self.settle()

    def staff(self, org_code: str, user: str = "tester") -> dict[str, str]:
        token = self.system.routing.tokens.issue(user, org_code)
        return {"Authorization": f"Bearer {token}"}

    def citizen(self, complaint_id: str) -> dict[str, str]:
        """The citizen's credential for a complaint: the token its submit returned, or (for a
        complaint filed another way, or before a restart) one issued as lookup would."""
        token = self.citizen_tokens.get(complaint_id)
        if token is None:
            token = self.system.intake.citizen_access.tokens.issue(complaint_id)
        return {"Authorization": f"Bearer {token}"}

    async def submit(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "description": "村口路灯坏了三天，晚上看不清路",
            "location": {"village_code": self.village_code},
            "category": "道路交通",
        }
        body.update(overrides)
        response = await self.client.post("/api/v1/complaints", json=body)
        assert response.status_code == 201, response.text
        await self.settle()
        result: dict[str, Any] = response.json()
        self.citizen_tokens[result["id"]] = result["citizen_token"]
        return result

    async def view(self, complaint_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/complaints/{complaint_id}", headers=self.citizen(complaint_id)
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    @property
    def village_code(self) -> str:
        return self.system.jurisdiction.villages("620922100")[0].code

    @property
    def township_code(self) -> str:
        return "620922100"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "auth_secret": "test-only-secret-key-of-enough-length-32b",
        "consumer_max_attempts": 3,
    }
    values.update(overrides)
    return Settings(**values)


async def start_harness(data_dir: Path, clock: FakeClock, **overrides: Any) -> Harness:
    system = build_system(make_settings(data_dir, **overrides), clock)
    await system.prepare()
    app = create_app(system, background=False)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://yijian.test"
    )
    return Harness(system, clock, client, data_dir)


async def stop_harness(harness: Harness) -> None:
    await harness.client.aclose()
    await harness.system.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(tmp_path, FakeClock(MONDAY_MORNING))
    yield started
    await stop_harness(started)
