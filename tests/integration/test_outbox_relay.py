"""The outbox relay on PostgreSQL, where writers commit in any order: a row that commits
while the relay is publishing the rows after it is still published, never deleted unsent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import cast

import pytest
from sqlalchemy import MetaData

from tests.conftest import MONDAY_MORNING
from tests.integration.conftest import NewDatabase
from tests.integration.event_logs import closed
from tests.integration.statements import statements_sent
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog, StoredEnvelope
from yijian.bus.relay import OutboxRelay
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.db import create_engine, create_tables

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(new_postgres_database: NewDatabase) -> AsyncIterator[ServiceDatabase]:
    """A service database on PostgreSQL, where writers commit in any order, with its outbox."""
    engine = create_engine(await new_postgres_database())
    created = ServiceDatabase(engine, MetaData(), producer="test", clock=FakeClock(MONDAY_MORNING))
    await create_tables(engine, created.outbox.metadata)
    yield created
    await engine.dispose()


class SlowLog:
    """Records what is published; while the first batch is in flight, ``during`` runs."""

    def __init__(self, during: asyncio.Event, done: asyncio.Task[None]) -> None:
        self.published: list[str] = []
        self._during = during
        self._done = done

    async def publish(self, items: Sequence[tuple[str, Envelope | StoredEnvelope]]) -> None:
        self.published += [envelope.key for _, envelope in items]
        if not self._during.is_set():
            self._during.set()
            await self._done  # the older transaction commits while we publish


async def test_a_row_committed_during_a_publish_is_not_deleted_unsent(
    database: ServiceDatabase,
) -> None:
    emitted, may_commit = asyncio.Event(), asyncio.Event()

    async def older_transaction() -> None:
        async with database.transaction() as tx:
            await tx.emit(closed("older"), key="older")  # takes the lower id …
            emitted.set()
            await may_commit.wait()  # … and commits last

    older = asyncio.create_task(older_transaction())
    try:
        await emitted.wait()
        async with database.transaction() as tx:
            await tx.emit(closed("newer"), key="newer")
        log = SlowLog(may_commit, older)
        relay = OutboxRelay(database, cast(EventLog, log))
        await relay.relay_once()
        assert sorted(log.published) == ["newer", "older"]
        assert await database.outbox_backlog() == 0
    finally:
        may_commit.set()
        await older


async def test_forgetting_deletes_exactly_the_rows_named_gaps_and_all(
    database: ServiceDatabase,
) -> None:
    async with database.transaction() as tx:
        for n in range(10):
            await tx.emit(closed(f"c{n}"), key=f"c{n}")
    ids = [row_id for row_id, _, _ in await database.take_outbox(100)]
    # Runs, a lone id, and ids given out of order: what a relay that lost a race sends.
    await database.forget_outbox([ids[5], ids[0], ids[1], ids[2], ids[8], ids[7]])
    kept = await database.take_outbox(100, forget=[ids[9]])
    assert [row_id for row_id, _, _ in kept] == [ids[3], ids[4], ids[6]]
    assert [stored.key for _, _, stored in kept] == ["c3", "c4", "c6"]
    await database.take_outbox(100, forget=[row_id for row_id, _, _ in kept])
    assert await database.outbox_backlog() == 0


class CountingLog:
    """Records what is published and lets a test wait for the n-th event."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.changed = asyncio.Condition()

    async def publish(self, items: Sequence[tuple[str, Envelope | StoredEnvelope]]) -> None:
        async with self.changed:
            self.published += [envelope.key for _, envelope in items]
            self.changed.notify_all()

    async def holds(self, count: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: len(self.published) >= count)


async def test_a_running_relay_deletes_what_it_published_in_its_next_read(
    database: ServiceDatabase,
) -> None:
    log = CountingLog()
    relay = OutboxRelay(database, cast(EventLog, log))
    async with database.transaction() as tx:
        await tx.emit(closed("first"), key="first")
    running = asyncio.create_task(relay.run(idle_wait=3600))  # then only commits wake it
    try:
        await asyncio.wait_for(log.holds(1), 30)
        with statements_sent(database.engine) as sent:
            async with database.transaction() as tx:
                await tx.emit(closed("second"), key="second")
            await asyncio.wait_for(log.holds(2), 30)
        statements = [statement.split()[0] for statement, _ in sent]
        # The second wake deleted the first row in the transaction of its read: one
        # transaction, two statements (besides the writer's own insert).
        assert statements.count("DELETE") == 1
        assert statements.count("SELECT") == 1
        left = await database.take_outbox(10)
        assert [stored.key for _, _, stored in left] == ["second"]
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # Stopping relays once more (Runtime.stop), which leaves nothing published behind.
        assert await relay.relay_once() == 0
        assert await database.outbox_backlog() == 0
        assert log.published == ["first", "second"]
    finally:
        running.cancel()
