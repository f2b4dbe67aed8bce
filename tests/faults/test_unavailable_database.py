"""A database that does not answer is an outage, not a bad request or a poison event: fast
checks of the two answers to it that the PostgreSQL fault test found missing.

- a request gets 503 with Retry-After, whatever form the driver's error takes (asyncpg raises
  the socket's own ConnectionRefusedError when no connection opens), and other database
  errors stay 500;
- a consumer waits for the database however many polls it takes, and does not dead-letter
  the events that arrive meanwhile.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.integration.event_logs import world_on
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, ComplaintClosed
from yijian.db import database_unavailable
from yijian.http import install_error_handlers


class _PostgresError(Exception):
    """What asyncpg's errors carry, as SQLAlchemy's asyncpg adapter passes them on."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


FAILURES: dict[str, Exception] = {
    "refused": ConnectionRefusedError(111, "Connect call failed"),
    "starting-up": DBAPIError("SELECT 1", {}, _PostgresError("57P03")),
    "too-many": DBAPIError("SELECT 1", {}, _PostgresError("53300")),
    "gone-mid-query": DBAPIError(
        "SELECT 1", {}, _PostgresError("XX000"), connection_invalidated=True
    ),
    "a-bug": IntegrityError("INSERT", {}, _PostgresError("23505")),
}


@pytest.fixture
async def failing_app() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/fail/{kind}")
    async def fail(kind: str) -> None:
        raise FAILURES[kind]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        yield client


@pytest.mark.parametrize("kind", ["refused", "starting-up", "too-many", "gone-mid-query"])
async def test_an_unreachable_database_is_a_503_with_retry_after(
    failing_app: httpx.AsyncClient, kind: str
) -> None:
    assert database_unavailable(FAILURES[kind])
    answer = await failing_app.post(f"/fail/{kind}")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    assert answer.json()["detail"]


async def test_any_other_database_error_stays_a_500(failing_app: httpx.AsyncClient) -> None:
    assert not database_unavailable(FAILURES["a-bug"])
    answer = await failing_app.post("/fail/a-bug")
    assert answer.status_code == 500
    assert "Retry-After" not in answer.headers


async def test_a_consumer_waits_out_an_outage_without_dead_lettering(tmp_path: Path) -> None:
    async with world_on("embedded", tmp_path) as world:
        outage = {"polls left": 7}  # more failed polls than max_attempts allows a poison event

        async def apply(tx: Transaction, envelope: Envelope) -> None:
            if outage["polls left"] > 0:
                outage["polls left"] -= 1
                raise ConnectionRefusedError(111, "Connect call failed")
            await tx.connection.execute(
                insert(world.applied).values(key=envelope.key, event_id=str(envelope.id))
            )

        consumer = Consumer(
            name="g",
            database=world.database,
            event_log=world.log,
            topics=[TOPIC_CASES],
            handlers={ComplaintClosed.TYPE: apply},
            max_attempts=3,
        )
        world.consumers.append(consumer)
        sent = world.envelope("complaint-1")
        await world.publish([sent])
        for _ in range(7):
            assert await world.once(consumer) == 0  # not settled: it waits
        assert await world.log.dead_letters("g") == []
        assert await world.once(consumer) == 1
        assert await world.applied_rows() == [("complaint-1", str(sent.id))]
        assert await world.lag("g") == 0
