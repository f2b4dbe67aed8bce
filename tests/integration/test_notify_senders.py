"""Two notify senders over one PostgreSQL database, as two replicas run: every due delivery
is claimed by one of them, sent once, and recorded as sent with one attempt. A batch another
sender claimed is not claimed again while its lease runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import delivery_log
from services.notify.sending import LEASE, Sender
from services.notify.store import DeliveryStatus, deliveries, metadata
from tests.conftest import MONDAY_MORNING
from tests.integration.conftest import NewDatabase
from tests.integration.test_notify_service import RecordingChannel
from yijian.bus.outbox import ServiceDatabase
from yijian.clock import FakeClock
from yijian.db import create_engine, create_tables

pytestmark = pytest.mark.integration

DUE = 120


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_MORNING)


@pytest.fixture
async def engine(
    new_postgres_database: NewDatabase, clock: FakeClock
) -> AsyncIterator[AsyncEngine]:
    """Notify's tables on a fresh PostgreSQL database, with DUE deliveries due now."""
    created = create_engine(await new_postgres_database())
    await create_tables(created, metadata)
    await add_due(created, clock)
    yield created
    await created.dispose()


async def test_two_senders_send_each_due_delivery_once(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    database = ServiceDatabase(engine, metadata, producer="notify", clock=clock)
    channels = [RecordingChannel(), RecordingChannel()]
    senders = [
        Sender(database=database, channels={"log": channel}, max_attempts=3, batch=25)
        for channel in channels
    ]
    while sum(await asyncio.gather(*(sender.send_due() for sender in senders))):
        pass
    async with engine.connect() as connection:
        rows = (await connection.execute(select(deliveries))).all()
    sent = [message.event_id for channel in channels for message in channel.sent]
    assert sorted(sent) == sorted(f"event-{n}" for n in range(DUE))
    assert {(row.status, row.attempts, row.sent_at) for row in rows} == {
        (DeliveryStatus.SENT.value, 1, clock.now())
    }


async def test_a_claimed_batch_is_not_claimed_again_while_leased(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    now = clock.now()
    async with engine.connect() as connection:
        due = await delivery_log.due_deliveries(connection, now, 50)
    ids = [record.id for record in due]
    async with engine.begin() as connection:
        first = await delivery_log.claim(connection, ids, now, now + LEASE)
    async with engine.begin() as connection:
        second = await delivery_log.claim(connection, ids, now, now + LEASE)
    async with engine.begin() as connection:
        after_lease = await delivery_log.claim(connection, ids, now + LEASE, now + 2 * LEASE)
    assert len(ids) == 50
    assert first == set(ids)
    assert second == set()
    assert after_lease == set(ids)  # a sender that died mid-send leaves them to another


async def add_due(engine: AsyncEngine, clock: FakeClock) -> None:
    """DUE deliveries to as many duty lines, all due now."""
    async with engine.begin() as connection:
        await connection.execute(
            insert(deliveries),
            [
                {
                    "event_id": f"event-{n}",
                    "complaint_id": f"complaint-{n}",
                    "tracking_no": "GZ260302-AAAAAA",
                    "recipient_key": f"duty:{n}",
                    "channel": "log",
                    "template": "new_assignment",
                    "text": "新诉求待签收",
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": clock.now(),
                    "created_at": clock.now(),
                }
                for n in range(DUE)
            ],
        )
