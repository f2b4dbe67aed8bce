"""Two escalation replicas over one PostgreSQL database: thousands of deadlines come due at the
same instant, both replicas fire at once, and each deadline is announced exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import func, select, text

from services.escalation import store
from services.escalation.app import EscalationService
from services.escalation.domain import ComplaintClock, DeadlineKind, PlannedDeadline
from tests.conftest import MONDAY_MORNING
from tests.integration.conftest import NewDatabase
from tests.integration.statements import statements_sent
from yijian.bus.sqllog import SqlEventLog
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.contracts.events import DeadlineMissed, ReminderDue, Stage
from yijian.db import create_engine
from yijian.level import Level
from yijian.policy import SlaPolicy
from yijian.settings import Settings

pytestmark = pytest.mark.integration

COMPLAINTS = 1000  # two deadlines each, 2000 in all: a reminder and the deadline itself


def replica(url: str, clock: FakeClock, tmp_path: Path, number: int) -> EscalationService:
    """One escalation process: its own engine (connection pool) on the shared database."""
    unused_log = SqlEventLog(create_engine(f"sqlite+aiosqlite:///{tmp_path}/log{number}.db"), clock)
    return EscalationService(
        settings=Settings(),
        clock=clock,
        event_log=unused_log,
        engine=create_engine(url),
        policy=SlaPolicy.default(),
    )


def village_clock(complaint_id: str, clock: FakeClock) -> ComplaintClock:
    """A complaint's first clock at village level, started now."""
    return ComplaintClock(
        complaint_id=complaint_id,
        clock=1,
        level=Level.VILLAGE,
        category=None,
        urgency="normal",
        started_at=clock.now(),
        correlation_id=uuid4(),
    )


async def commit_without_waiting_for_the_disk(url: str) -> None:
    """Thousands of one-row transactions would each wait for a WAL flush on a busy CI disk;
    what this test checks is the locking between replicas, which this setting leaves alone."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            name = await connection.scalar(select(func.current_database()))
            await connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    finally:
        await engine.dispose()


async def test_two_replicas_fire_each_of_thousands_of_deadlines_once(
    new_postgres_database: NewDatabase, tmp_path: Path
) -> None:
    url = await new_postgres_database()
    await commit_without_waiting_for_the_disk(url)
    clock = FakeClock(MONDAY_MORNING)
    first, second = replica(url, clock, tmp_path, 1), replica(url, clock, tmp_path, 2)
    await first.prepare()
    await second.prepare()
    try:
        due = clock.now() + timedelta(hours=2)
        async with first.database.engine.begin() as connection:
            for number in range(COMPLAINTS):
                owner = village_clock(f"complaint-{number:05}", clock)
                planned = [
                    PlannedDeadline(
                        Stage.ACCEPT, DeadlineKind.REMIND, due - timedelta(hours=1), due
                    ),
                    PlannedDeadline(Stage.ACCEPT, DeadlineKind.DUE, due, due),
                ]
                await store.add_deadlines(connection, owner, planned, clock.now())

        clock.advance(timedelta(hours=2, minutes=1))  # every one of them is due now
        fired = await asyncio.gather(first.tick(), second.tick(), first.tick(), second.tick())
        assert sum(fired) == 2 * COMPLAINTS
        assert fired[0] + fired[2] > 0, "the second replica fired everything"
        assert fired[1] + fired[3] > 0, "the first replica fired everything"
        assert await first.tick() + await second.tick() == 0  # nothing left to fire

        async with first.database.engine.connect() as connection:
            rows = (await connection.execute(select(first.database.outbox.c.envelope))).all()
            pending = await connection.scalar(
                select(func.count())
                .select_from(store.deadlines)
                .where(store.deadlines.c.state == "pending")
            )
        announced = Counter(
            (envelope.key, envelope.type)
            for envelope in (Envelope.model_validate_json(row.envelope) for row in rows)
        )
        assert pending == 0
        assert len(announced) == 2 * COMPLAINTS
        assert set(announced.values()) == {1}  # none twice
        assert {event_type for _, event_type in announced} == {
            ReminderDue.TYPE,
            DeadlineMissed.TYPE,
        }
    finally:
        for service in (first, second):
            await service.database.engine.dispose()


async def test_claims_of_any_size_send_postgresql_one_statement(
    new_postgres_database: NewDatabase, tmp_path: Path
) -> None:
    """The ids a batch claims travel as one array parameter. When the statement's text grew
    with the batch, PostgreSQL's plan cache could settle on a generic plan that compared every
    pending row with the whole list, and a drain of 100,000 took a minute instead of seconds."""
    url = await new_postgres_database()
    clock = FakeClock(MONDAY_MORNING)
    service = replica(url, clock, tmp_path, 1)
    await service.prepare()
    engine = service.database.engine
    try:
        owner = village_clock("complaint-1", clock)
        due = clock.now() - timedelta(minutes=1)
        planned = [PlannedDeadline(Stage.ACCEPT, DeadlineKind.DUE, due, due)] * 10
        async with engine.begin() as connection:
            await store.add_deadlines(connection, owner, planned, clock.now())
        claimed = []
        with statements_sent(engine) as sent:
            for limit in (3, 7):
                async with engine.begin() as connection:
                    claimed.append(
                        await store.claim_due(connection, clock.now(), limit, clock.now())
                    )
    finally:
        await engine.dispose()
    flips = [statement for statement, _ in sent if statement.startswith("UPDATE deadlines")]
    assert [len(rows) for rows in claimed] == [3, 7]
    assert len(flips) == 2
    assert flips[0] == flips[1]
