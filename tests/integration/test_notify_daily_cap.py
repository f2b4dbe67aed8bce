"""A citizen gets at most a few text or WeChat messages a day; the rest are suppressed.

Suppressed deliveries stay in the log with the reason, so an operator sees what was held
back; staff duty lines are never capped. Days are Beijing days, moved on a fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import select

from services.notify import store
from services.notify.channels import LOG, WEBHOOK, OutboundMessage
from services.notify.sending import Sender, beijing_day_start
from services.notify.store import DeliveryStatus, deliveries, metadata
from yijian.bus.outbox import ServiceDatabase
from yijian.clock import FakeClock
from yijian.db import create_engine, create_tables

pytestmark = pytest.mark.integration

CITIZEN = store.citizen_key("c1")
DUTY = "duty:620922100001"


class Recording:
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> None:
        self.sent.append(message)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[ServiceDatabase]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await create_tables(engine, metadata)
    # Monday 08:00 in Beijing.
    yield ServiceDatabase(
        engine, metadata, producer="notify", clock=FakeClock(datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    )
    await engine.dispose()


async def queue(database: ServiceDatabase, recipient: str, channel: str, count: int) -> None:
    async with database.transaction() as tx:
        for _ in range(count):
            await store.add_deliveries(
                tx.connection,
                event_id=str(uuid4()),
                complaint_id="c1",
                tracking_no="GZ260302-AAAAAA",
                outgoing=[store.Outgoing(recipient, channel, "citizen_replied", "已答复")],
                now=tx.now,
            )


async def statuses(database: ServiceDatabase, recipient: str) -> list[str]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            select(deliveries.c.status, deliveries.c.last_error)
            .where(deliveries.c.recipient_key == recipient)
            .order_by(deliveries.c.id)
        )
        return [row.status for row in rows]


def sender(database: ServiceDatabase, channel: Recording, cap: int = 3) -> Sender:
    return Sender(
        database=database,
        channels={WEBHOOK: channel, LOG: channel},
        max_attempts=3,
        citizen_daily_cap=cap,
        capped_channels={WEBHOOK},
    )


async def test_over_the_daily_cap_a_citizen_message_is_suppressed(
    database: ServiceDatabase,
) -> None:
    channel = Recording()
    await queue(database, CITIZEN, WEBHOOK, 5)
    await sender(database, channel).send_due()  # all five due in one batch
    assert len(channel.sent) == 3
    assert await statuses(database, CITIZEN) == ["sent"] * 3 + ["suppressed"] * 2
    async with database.engine.connect() as connection:
        reasons = (
            await connection.scalars(
                select(deliveries.c.last_error).where(
                    deliveries.c.status == DeliveryStatus.SUPPRESSED.value
                )
            )
        ).all()
    assert all("cap of 3 messages a day" in str(reason) for reason in reasons)

    # Later the same Beijing day: still capped, and nothing suppressed is ever sent.
    clock = database.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(hours=15, minutes=59))  # 23:59 in Beijing
    await queue(database, CITIZEN, WEBHOOK, 1)
    await sender(database, channel).send_due()
    assert len(channel.sent) == 3
    # After midnight in Beijing the citizen may be told again.
    clock.advance(timedelta(minutes=1))
    await queue(database, CITIZEN, WEBHOOK, 1)
    await sender(database, channel).send_due()
    assert len(channel.sent) == 4


async def test_staff_and_development_log_messages_are_never_capped(
    database: ServiceDatabase,
) -> None:
    channel = Recording()
    await queue(database, DUTY, WEBHOOK, 5)
    await queue(database, "citizen:c2", LOG, 5)
    await sender(database, channel).send_due()
    assert len(channel.sent) == 10


async def test_a_cap_of_zero_means_no_cap(database: ServiceDatabase) -> None:
    channel = Recording()
    await queue(database, CITIZEN, WEBHOOK, 5)
    await sender(database, channel, cap=0).send_due()
    assert len(channel.sent) == 5


def test_the_day_is_the_beijing_day() -> None:
    assert beijing_day_start(datetime(2026, 3, 2, 15, 59, tzinfo=UTC)) == datetime(
        2026, 3, 1, 16, 0, tzinfo=UTC
    )
    assert beijing_day_start(datetime(2026, 3, 2, 16, 0, tzinfo=UTC)) == datetime(
        2026, 3, 2, 16, 0, tzinfo=UTC
    )
