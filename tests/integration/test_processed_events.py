"""The processed-event table decides which deliveries a consumer applies, on SQLite and on
PostgreSQL alike (each has its own statement for recording a batch)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select

from tests.integration.conftest import NewDatabase
from tests.integration.event_logs import closed as closing
from yijian.bus.outbox import AlreadyProcessed, ServiceDatabase, outbox_tables
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.db import create_engine, create_tables

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, new_postgres_database: NewDatabase
) -> AsyncIterator[ServiceDatabase]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    else:
        url = await new_postgres_database()
    metadata = MetaData()
    outbox_tables(metadata)
    engine = create_engine(url)
    await create_tables(engine, metadata)
    try:
        yield ServiceDatabase(engine, metadata, producer="test", clock=FakeClock(NOW))
    finally:
        await engine.dispose()


def closed(key: str) -> Envelope:
    return Envelope.wrap(closing(key), key=key, producer="test", occurred_at=NOW)


async def recorded(database: ServiceDatabase, consumer: str) -> list[str]:
    table = database.processed
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            select(table.c.event_id).where(table.c.consumer == consumer)
        )
        return sorted(rows.scalars())


async def test_a_batch_yields_each_new_event_once_in_delivery_order(
    database: ServiceDatabase,
) -> None:
    earlier, first, second, third = (closed(k) for k in "abcd")
    async with database.consuming("routing", earlier):
        pass
    delivered = [third, earlier, first, third, second, earlier, first]

    async with database.consuming_batch("routing", delivered) as (_, fresh):
        assert fresh == [third, first, second]

    assert await recorded(database, "routing") == sorted(
        str(e.id) for e in (earlier, first, second, third)
    )
    async with database.consuming_batch("routing", delivered) as (_, fresh):
        assert fresh == []  # all seen: a redelivery of the whole poll changes nothing


async def test_consumers_record_the_same_event_each_for_itself(database: ServiceDatabase) -> None:
    event = closed("a")
    async with database.consuming("routing", event):
        pass
    with pytest.raises(AlreadyProcessed):
        async with database.consuming("routing", event):
            pytest.fail("a duplicate must not reach its handler")
    async with database.consuming_batch("notify", [event]) as (_, fresh):
        assert fresh == [event]


async def test_a_failed_batch_records_nothing(database: ServiceDatabase) -> None:
    events = [closed(k) for k in "abc"]
    with pytest.raises(RuntimeError):
        async with database.consuming_batch("routing", events):
            raise RuntimeError("a handler failed")
    assert await recorded(database, "routing") == []
    async with database.consuming_batch("routing", events) as (_, fresh):
        assert fresh == events
