"""The escalation service end to end on the embedded log: case events in, deadline events out.

Time only moves when a test moves the fake clock; everything else is real: SQLite files, the
SQL event log, the outbox and its relay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from services.escalation.app import EscalationService
from services.escalation.store import deadlines
from yijian.bus.relay import OutboxRelay
from yijian.bus.sqllog import SqlEventLog, SqlSubscription
from yijian.bus.sqllog import metadata as log_metadata
from yijian.clock import FakeClock
from yijian.contracts import Envelope, Payload
from yijian.contracts.events import (
    TOPIC_CASES,
    TOPIC_DEADLINES,
    ComplaintAccepted,
    ComplaintAssigned,
    ComplaintEscalated,
    ComplaintOverdue,
    ComplaintResolved,
    ComplaintReturned,
    DeadlineMissed,
    DeadlinesSet,
    Org,
    ReminderDue,
    Stage,
)
from yijian.db import create_engine, create_tables
from yijian.level import Level
from yijian.policy import SlaPolicy
from yijian.settings import Settings

pytestmark = pytest.mark.integration

POLICY = SlaPolicy.default()
VILLAGE = Org(code="620922101201", name="渊泉镇东街社区", level=Level.VILLAGE)
TOWNSHIP = Org(code="620922101", name="渊泉镇", level=Level.TOWNSHIP)
COUNTY = Org(code="620922", name="瓜州县平台", level=Level.COUNTY)


def assigned(complaint_id: str, clock: int = 1) -> ComplaintAssigned:
    return ComplaintAssigned(
        complaint_id=complaint_id,
        tracking_no="GZ2603020001",
        status="assigned",
        assignee=VILLAGE,
        level=Level.VILLAGE,
        reason="located",
        category="邻里纠纷",
        urgency="normal",
        clock=clock,
    )


def escalated(complaint_id: str, clock: int, level: Level) -> ComplaintEscalated:
    supervisor = COUNTY if level is Level.COUNTY else TOWNSHIP
    return ComplaintEscalated(
        complaint_id=complaint_id,
        tracking_no="GZ2603020001",
        from_level=Level.TOWNSHIP if level is Level.COUNTY else Level.VILLAGE,
        level=level,
        supervisor=supervisor,
        assignee=VILLAGE,
        cause="accept_overdue",
        category=None,
        urgency="normal",
        clock=clock,
    )


class World:
    """One escalation service over files in a temp dir, with the hands a test needs."""

    def __init__(self, folder: Path, clock: FakeClock) -> None:
        self.folder = folder
        self.clock = clock
        self.log = SqlEventLog(create_engine(f"sqlite+aiosqlite:///{folder / 'log.db'}"), clock)
        self.reader: SqlSubscription = self.log.subscribe("test", [TOPIC_DEADLINES])
        self.services: list[EscalationService] = []

    async def start_service(self) -> EscalationService:
        engine = create_engine(f"sqlite+aiosqlite:///{self.folder / 'escalation.db'}")
        service = EscalationService(
            settings=Settings(data_dir=self.folder),
            clock=self.clock,
            event_log=self.log,
            engine=engine,
            policy=POLICY,
        )
        await service.prepare()
        self.services.append(service)
        return service

    @property
    def service(self) -> EscalationService:
        return self.services[-1]

    def wrap(self, payload: Payload, occurred_at: datetime | None = None) -> Envelope:
        key = str(payload.model_dump()["complaint_id"])
        return Envelope.wrap(
            payload, key=key, producer="routing", occurred_at=occurred_at or self.clock.now()
        )

    async def deliver(self, *envelopes: Envelope) -> None:
        await self.log.publish([(TOPIC_CASES, envelope) for envelope in envelopes])
        while await self.service.consumers[0].consume_once():
            pass

    async def send(self, payload: Payload, occurred_at: datetime | None = None) -> Envelope:
        envelope = self.wrap(payload, occurred_at)
        await self.deliver(envelope)
        return envelope

    async def tick(self) -> int:
        return await self.service.tick()

    async def outbox(self) -> list[Envelope]:
        """What the service emitted and has not relayed yet, in the order it emitted it."""
        return [
            stored.envelope() for _, _, stored in await self.service.database.take_outbox(10_000)
        ]

    async def published(self) -> list[Envelope]:
        """Deadline events that reached the log since the last call."""
        await OutboxRelay(self.service.database, self.log).relay_once()
        deliveries = await self.reader.poll(10_000, 0)
        await self.reader.commit(deliveries)
        return [delivery.envelope for delivery in deliveries]

    async def api(self, path: str) -> httpx.Response:
        app = FastAPI()
        app.include_router(self.service.router)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    async def rows(self, complaint_id: str) -> list[dict[str, object]]:
        response = await self.api(f"/api/v1/escalation/deadlines?complaint_id={complaint_id}")
        assert response.status_code == 200
        rows: list[dict[str, object]] = response.json()
        return rows

    async def close(self) -> None:
        for service in self.services:
            await service.database.engine.dispose()
        await self.reader.close()
        await self.log.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    world = World(tmp_path, FakeClock())
    await create_tables(world.log.engine, log_metadata)
    await world.start_service()
    yield world
    await world.close()


def kinds(envelopes: list[Envelope]) -> list[tuple[str, str, str]]:
    """(event type, stage, complaint) for deadline events; DeadlinesSet shows as its clock."""
    found = []
    for envelope in envelopes:
        stage = str(envelope.payload.get("stage", envelope.payload["clock"]))
        if envelope.payload.get("overdue"):
            stage += "!"
        found.append((envelope.type, stage, envelope.key))
    return found


REMIND, MISSED, SET = ReminderDue.TYPE, DeadlineMissed.TYPE, DeadlinesSet.TYPE


async def test_reminder_then_missed_in_order_with_the_complaints_correlation(
    world: World,
) -> None:
    start = world.clock.now()
    cause = await world.send(assigned("c1"))
    [deadlines_set] = await world.published()
    shown = deadlines_set.parse(DeadlinesSet)
    assert (shown.accept_due_at, shown.resolve_due_at) == (
        start + timedelta(hours=2),
        start + timedelta(days=3),
    )

    world.clock.advance(timedelta(hours=1, minutes=29))
    assert await world.tick() == 0
    world.clock.advance(timedelta(minutes=1))
    assert await world.tick() == 1
    world.clock.advance(timedelta(minutes=30))
    assert await world.tick() == 1

    reminder, missed = await world.published()
    assert reminder.parse(ReminderDue) == ReminderDue(
        complaint_id="c1",
        level=Level.VILLAGE,
        stage=Stage.ACCEPT,
        due_at=start + timedelta(hours=2),
        clock=1,
        overdue=False,
    )
    assert missed.parse(DeadlineMissed).stage is Stage.ACCEPT
    assert missed.parse(DeadlineMissed).due_at == start + timedelta(hours=2)
    assert {e.correlation_id for e in (deadlines_set, reminder, missed)} == {cause.correlation_id}
    assert deadlines_set.causation_id == cause.id


async def test_late_delivery_counts_from_when_the_assignment_happened(world: World) -> None:
    await world.send(assigned("c1"), occurred_at=world.clock.now() - timedelta(hours=1))

    world.clock.advance(timedelta(minutes=30))
    assert await world.tick() == 1
    world.clock.advance(timedelta(minutes=30))
    assert await world.tick() == 1
    assert kinds(await world.published())[1:] == [
        (REMIND, "accept", "c1"),
        (MISSED, "accept", "c1"),
    ]


async def test_accepted_in_time_stops_the_accept_clock_but_not_the_resolve_clock(
    world: World,
) -> None:
    await world.send(assigned("c1"))
    world.clock.advance(timedelta(hours=1))
    await world.send(ComplaintAccepted(complaint_id="c1", by=VILLAGE, level=Level.VILLAGE, clock=1))

    world.clock.advance(timedelta(days=1))
    assert await world.tick() == 0
    states = {(row["stage"], row["kind"]): row["state"] for row in await world.rows("c1")}
    assert states == {
        ("accept", "remind"): "cancelled",
        ("accept", "due"): "cancelled",
        ("resolve", "remind"): "pending",
        ("resolve", "due"): "pending",
    }

    world.clock.advance(timedelta(days=2))
    assert await world.tick() == 2
    assert kinds(await world.published()) == [
        (SET, "1", "c1"),
        (REMIND, "resolve", "c1"),
        (MISSED, "resolve", "c1"),
    ]


async def test_resolved_complaint_fires_nothing(world: World) -> None:
    await world.send(assigned("c1"))
    world.clock.advance(timedelta(minutes=20))
    await world.send(
        ComplaintResolved(
            complaint_id="c1", tracking_no="GZ1", by=VILLAGE, level=Level.VILLAGE, on_time=True
        )
    )

    world.clock.advance(timedelta(days=10))
    assert await world.tick() == 0
    assert kinds(await world.published()) == [(SET, "1", "c1")]
    assert {row["state"] for row in await world.rows("c1")} == {"cancelled"}


async def test_the_same_assignment_twice_sets_one_set_of_deadlines(world: World) -> None:
    envelope = world.wrap(assigned("c1"))
    # Redelivered as is, and re-sent by its producer under a new event id.
    await world.deliver(envelope, envelope)
    await world.send(assigned("c1"))

    assert len(await world.rows("c1")) == 4
    world.clock.advance(timedelta(days=4))
    assert await world.tick() == 4
    assert await world.tick() == 0
    assert kinds(await world.published()) == [
        (SET, "1", "c1"),
        (REMIND, "accept", "c1"),
        (MISSED, "accept", "c1"),
        (REMIND, "resolve", "c1"),
        (MISSED, "resolve", "c1"),
    ]


async def test_an_old_clock_replayed_late_does_not_roll_deadlines_back(world: World) -> None:
    old = world.wrap(assigned("c1", clock=1))
    world.clock.advance(timedelta(hours=2))
    await world.send(escalated("c1", clock=2, level=Level.TOWNSHIP))
    await world.deliver(old)

    pending = [row for row in await world.rows("c1") if row["state"] == "pending"]
    assert {(row["clock"], row["level"]) for row in pending} == {(2, "township")}
    assert kinds(await world.published()) == [(SET, "2", "c1")]


async def test_a_clockless_stop_replayed_late_spares_the_newer_clock(world: World) -> None:
    await world.send(assigned("c1", clock=1))
    world.clock.advance(timedelta(minutes=10))
    returned = world.wrap(
        ComplaintReturned(complaint_id="c1", by=VILLAGE, level=Level.VILLAGE, returns=1)
    )
    world.clock.advance(timedelta(minutes=10))
    await world.send(assigned("c1", clock=2))
    await world.deliver(returned)  # e.g. a dead letter replayed after the reassignment

    pending = [row for row in await world.rows("c1") if row["state"] == "pending"]
    assert {row["clock"] for row in pending} == {2}
    assert len(pending) == 4


async def test_restart_in_the_middle_resumes_and_fires_each_deadline_once(world: World) -> None:
    await world.send(assigned("c1"))
    world.clock.advance(timedelta(hours=1, minutes=30))
    assert await world.tick() == 1
    await world.published()

    await world.service.database.engine.dispose()
    await world.start_service()

    assert await world.tick() == 0
    world.clock.advance(timedelta(minutes=30))
    assert await world.tick() == 1
    assert await world.tick() == 0
    assert kinds(await world.published()) == [(MISSED, "accept", "c1")]


async def test_two_services_ticking_together_fire_each_deadline_once(world: World) -> None:
    first = world.service
    complaints = [f"c{n}" for n in range(40)]
    await world.deliver(*(world.wrap(assigned(c)) for c in complaints))
    second = await world.start_service()

    world.clock.advance(timedelta(hours=2))
    counts = await asyncio.gather(first.tick(), second.tick(), first.tick(), second.tick())

    assert sum(counts) == 2 * len(complaints)
    fired = [k for k in kinds(await world.published()) if k[0] != SET]
    assert sorted(fired) == sorted(
        [(REMIND, "accept", c) for c in complaints] + [(MISSED, "accept", c) for c in complaints]
    )


async def test_clock_jump_forward_fires_everything_once_oldest_first_and_back_nothing(
    world: World,
) -> None:
    for complaint in ("c1", "c2", "c3"):
        await world.send(assigned(complaint))
        world.clock.advance(timedelta(minutes=10))
    await world.published()

    world.clock.advance(timedelta(days=1))
    assert await world.tick() == 6
    assert kinds(await world.outbox()) == [
        (REMIND, "accept", "c1"),
        (REMIND, "accept", "c2"),
        (REMIND, "accept", "c3"),
        (MISSED, "accept", "c1"),
        (MISSED, "accept", "c2"),
        (MISSED, "accept", "c3"),
    ]
    assert await world.tick() == 0

    world.clock.advance(timedelta(minutes=-1))
    assert await world.tick() == 0
    assert len(await world.published()) == 6


async def overdue_at_county(world: World) -> Envelope:
    """Escalate c1 to the county (Monday 09:00 Beijing) and let its 8h accept lapse."""
    start = world.clock.now()
    await world.send(escalated("c1", clock=3, level=Level.COUNTY))
    world.clock.advance(timedelta(hours=8))
    assert await world.tick() == 2  # the 2h reminder and the deadline itself
    overdue = ComplaintOverdue(
        complaint_id="c1",
        tracking_no="GZ1",
        assignee=VILLAGE,
        supervisor=COUNTY,
        level=Level.COUNTY,
        stage=Stage.ACCEPT,
        due_at=start + timedelta(hours=8),
        clock=3,
    )
    envelope = await world.send(overdue)
    await world.send(overdue)  # routing said it twice; one repeat chain is enough
    await world.published()
    return envelope


async def test_county_overdue_repeats_every_day_until_resolved(world: World) -> None:
    due_at = world.clock.now() + timedelta(hours=8)
    await overdue_at_county(world)

    for _ in range(2):
        world.clock.advance(timedelta(hours=23, minutes=59))
        assert await world.tick() == 0
        world.clock.advance(timedelta(minutes=1))
        assert await world.tick() == 1
    repeats = await world.published()
    assert [e.parse(ReminderDue) for e in repeats] == 2 * [
        ReminderDue(
            complaint_id="c1",
            level=Level.COUNTY,
            stage=Stage.ACCEPT,
            due_at=due_at,
            clock=3,
            overdue=True,
        )
    ]

    await world.send(
        ComplaintResolved(
            complaint_id="c1", tracking_no="GZ1", by=VILLAGE, level=Level.COUNTY, on_time=False
        )
    )
    world.clock.advance(timedelta(days=5))
    assert await world.tick() == 0
    assert await world.published() == []


async def test_county_overdue_after_an_outage_reminds_once_and_keeps_its_cadence(
    world: World,
) -> None:
    await overdue_at_county(world)
    first_beat = world.clock.now() + timedelta(days=1)

    world.clock.advance(timedelta(days=3, hours=1))
    assert await world.tick() == 1
    pending = [row for row in await world.rows("c1") if row["state"] == "pending"]
    next_beat = [row["fire_at"] for row in pending if row["kind"] == "repeat"]
    assert [datetime.fromisoformat(str(at)) for at in next_beat] == [first_beat + timedelta(days=3)]


async def test_deadlines_api_needs_a_complaint_and_lists_rows_in_firing_order(
    world: World,
) -> None:
    assert (await world.api("/api/v1/escalation/deadlines")).status_code == 422
    await world.send(assigned("c1"))

    rows = await world.rows("c1")
    assert [(row["stage"], row["kind"]) for row in rows] == [
        ("accept", "remind"),
        ("accept", "due"),
        ("resolve", "remind"),
        ("resolve", "due"),
    ]
    assert rows[0]["category"] == "邻里纠纷"
    assert await world.rows("nobody") == []


async def test_summary_counts_pending_by_level_and_stage_and_recent_firing(world: World) -> None:
    start = world.clock.now()
    await world.send(assigned("c1"))
    await world.send(escalated("c2", clock=2, level=Level.TOWNSHIP))
    world.clock.advance(timedelta(hours=1, minutes=30))
    assert await world.tick() == 1

    summary = (await world.api("/api/v1/escalation/summary")).json()
    pending = {(p["level"], p["stage"]): p["count"] for p in summary["pending"]}
    assert pending == {
        ("township", "accept"): 2,
        ("township", "resolve"): 2,
        ("village", "accept"): 1,
        ("village", "resolve"): 2,
    }
    assert summary["pending_total"] == 7
    assert summary["late"] == 0
    assert summary["fired_last_hour"] == 1
    assert datetime.fromisoformat(summary["next_fire_at"]) == start + timedelta(hours=2)


async def test_a_row_that_cannot_fire_stays_pending_and_holds_back_nothing(world: World) -> None:
    await world.send(assigned("c1"))
    await world.send(assigned("c2"))
    async with world.service.database.transaction() as tx:
        await tx.connection.execute(
            update(deadlines)
            .where(deadlines.c.complaint_id == "c1", deadlines.c.kind == "remind")
            .values(stage="sign")  # not a stage: announcing it fails
        )

    world.clock.advance(timedelta(hours=2))
    assert await world.tick() == 3
    assert await world.tick() == 0
    states = {(row["stage"], row["kind"]): row["state"] for row in await world.rows("c2")}
    assert states[("accept", "remind")] == "fired"
    fired_for_c1 = [k for k in kinds(await world.outbox()) if k[2] == "c1" and k[0] != SET]
    assert fired_for_c1 == [(MISSED, "accept", "c1")]
    async with world.service.database.engine.connect() as connection:
        stuck = await connection.scalar(
            select(deadlines.c.state).where(deadlines.c.stage == "sign")
        )
    assert stuck == "pending"
