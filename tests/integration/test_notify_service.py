"""The notify service end to end: events on the embedded log in, messages out, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from services.notify.app import NotifyService
from services.notify.channels import DeliveryFailed, OutboundMessage
from services.notify.handlers import NotifyHandlers
from services.notify.store import deliveries, recipients
from yijian.bus import sqllog
from yijian.bus.sqllog import SqlEventLog
from yijian.clock import FakeClock
from yijian.contracts import Envelope, Payload
from yijian.contracts.events import (
    TOPIC_OF,
    ComplaintAssigned,
    ComplaintEscalated,
    ComplaintOverdue,
    ComplaintReminded,
    ComplaintReplied,
    ComplaintResolved,
    ComplaintSubmitted,
    Org,
    ReportedLocation,
    Stage,
)
from yijian.db import create_engine, create_tables
from yijian.jurisdiction import Jurisdiction
from yijian.level import Level
from yijian.settings import Settings

pytestmark = pytest.mark.integration


class RecordingChannel:
    """A channel that fails its first ``failures`` sends, then takes every message."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("receiver down")
        self.sent.append(message)


@dataclass
class Harness:
    clock: FakeClock
    log: SqlEventLog
    service: NotifyService
    channel: RecordingChannel
    village: Org
    township: Org
    county: Org

    async def publish(self, payload: Payload, complaint_id: str) -> Envelope:
        envelope = Envelope.wrap(
            payload, key=complaint_id, producer="test", occurred_at=self.clock.now()
        )
        await self.publish_again(envelope)
        return envelope

    async def publish_again(self, envelope: Envelope) -> None:
        await self.log.publish([(TOPIC_OF[envelope.type], envelope)])

    async def consume(self) -> int:
        total = 0
        while settled := await self.service.consumers[0].consume_once():
            total += settled
        return total

    def api(self) -> httpx.AsyncClient:
        app = FastAPI()
        app.include_router(self.service.router)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture(scope="module")
def jurisdiction() -> Jurisdiction:
    return Jurisdiction.load()


@pytest.fixture
async def h(tmp_path: Path, jurisdiction: Jurisdiction) -> AsyncIterator[Harness]:
    clock = FakeClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    log_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'eventlog.db'}")
    await create_tables(log_engine, sqllog.metadata)
    event_log = SqlEventLog(log_engine, clock)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    channel = RecordingChannel()
    service = NotifyService(
        settings=Settings(notify_max_attempts=3, consumer_max_attempts=2),
        clock=clock,
        event_log=event_log,
        engine=engine,
        jurisdiction=jurisdiction,
        channels={"log": channel},
    )
    await service.prepare()
    village = jurisdiction.villages()[0]
    township = jurisdiction.get(village.parent_code or "")
    assert township is not None
    yield Harness(
        clock=clock,
        log=event_log,
        service=service,
        channel=channel,
        village=Org(code=village.code, name=village.name, level=Level.VILLAGE),
        township=Org(code=township.code, name=township.name, level=Level.TOWNSHIP),
        county=Org(code=jurisdiction.county.code, name="瓜州县", level=Level.COUNTY),
    )
    await service.close()
    await engine.dispose()
    await event_log.close()


def submitted(complaint_id: str, no: str, *, has_contact: bool, at: datetime) -> ComplaintSubmitted:
    return ComplaintSubmitted(
        complaint_id=complaint_id,
        tracking_no=no,
        category=None,
        urgency="normal",
        channel="web",
        location=ReportedLocation(),
        has_contact=has_contact,
        submitted_at=at,
    )


def assigned(complaint_id: str, no: str, to: Org, **changes: str) -> ComplaintAssigned:
    event = ComplaintAssigned(
        complaint_id=complaint_id,
        tracking_no=no,
        status="assigned",
        assignee=to,
        level=to.level,
        reason="located",
        category=None,
        urgency="normal",
        clock=1,
    )
    return event.model_copy(update=changes)


async def count_rows(h: Harness) -> int:
    async with h.service.database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(deliveries)) or 0)


async def test_prepare_seeds_one_duty_recipient_per_org_and_is_idempotent(h: Harness) -> None:
    await h.service.prepare()  # the fixture already ran it once
    async with h.service.database.engine.connect() as connection:
        rows = (await connection.execute(select(recipients))).all()
    assert len(rows) == 1 + 15 + 83
    county = next(r for r in rows if r.org_code == "620922")
    assert county.display_name == "瓜州县值班员"
    assert county.role == "duty"
    assert {r.channel for r in rows} == {"log"}


async def test_a_complaints_life_reaches_the_right_people(h: Harness) -> None:
    cid, no = uuid4().hex, "GZ260302-AAAAAA"
    await h.publish(submitted(cid, no, has_contact=True, at=h.clock.now()), cid)
    await h.publish(assigned(cid, no, h.village), cid)
    await h.publish(
        ComplaintEscalated(
            complaint_id=cid,
            tracking_no=no,
            from_level=Level.VILLAGE,
            level=Level.TOWNSHIP,
            supervisor=h.township,
            assignee=h.village,
            cause="accept_overdue",
            category=None,
            urgency="normal",
            clock=2,
        ),
        cid,
    )
    due = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    await h.publish(
        ComplaintReminded(
            complaint_id=cid,
            tracking_no=no,
            assignee=h.village,
            supervisor=h.township,
            level=Level.TOWNSHIP,
            stage=Stage.RESOLVE,
            due_at=due,
            overdue=False,
        ),
        cid,
    )
    await h.publish(
        ComplaintOverdue(
            complaint_id=cid,
            tracking_no=no,
            assignee=h.township,
            supervisor=h.county,
            level=Level.COUNTY,
            stage=Stage.RESOLVE,
            due_at=due,
            clock=3,
        ),
        cid,
    )
    await h.publish(
        ComplaintReplied(complaint_id=cid, tracking_no=no, by=h.village, level=Level.VILLAGE), cid
    )
    await h.publish(
        ComplaintResolved(
            complaint_id=cid, tracking_no=no, by=h.village, level=Level.VILLAGE, on_time=False
        ),
        cid,
    )
    assert await h.consume() == 7
    assert h.channel.sent == []  # handlers only queue; sending waits for tick()

    assert await h.service.tick() == 9
    village, township = f"duty:{h.village.code}", f"duty:{h.township.code}"
    citizen = f"citizen:{cid}"
    assert sorted((m.recipient_key, m.template) for m in h.channel.sent) == sorted(
        [
            (village, "new_assignment"),
            (citizen, "citizen_assigned"),
            (township, "supervision"),
            (village, "under_supervision"),
            (village, "reminder"),
            (township, "reminder"),
            ("duty:620922", "county_overdue"),
            (citizen, "citizen_replied"),
            (citizen, "citizen_resolved"),
        ]
    )
    texts = {(m.recipient_key, m.template): m.text for m in h.channel.sent}
    assert (
        texts[(citizen, "citizen_assigned")] == f"您的诉求（编号{no}）已转交{h.village.name}办理。"
    )
    assert "乡镇督办" in texts[(township, "supervision")]
    assert "2026-03-02 14:30" in texts[(village, "reminder")]
    assert all(m.tracking_no == no and m.complaint_id == cid for m in h.channel.sent)
    assert await h.service.tick() == 0  # nothing is sent twice

    async with h.api() as api:
        response = await api.get("/api/v1/notify/deliveries", params={"complaint_id": cid})
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 9
    assert {row["status"] for row in rows} == {"sent"}
    assert rows[0]["template"] == "citizen_resolved"  # newest first


async def test_a_citizen_without_contact_is_never_messaged(h: Harness) -> None:
    cid, no = uuid4().hex, "GZ260302-BBBBBB"
    await h.publish(submitted(cid, no, has_contact=False, at=h.clock.now()), cid)
    await h.publish(assigned(cid, no, h.village), cid)
    await h.publish(
        ComplaintResolved(
            complaint_id=cid, tracking_no=no, by=h.village, level=Level.VILLAGE, on_time=True
        ),
        cid,
    )
    await h.consume()
    assert await h.service.tick() == 1
    assert [m.recipient_key for m in h.channel.sent] == [f"duty:{h.village.code}"]


async def test_a_dispatch_queue_gets_the_pending_dispatch_notice_and_the_citizen_waits(
    h: Harness,
) -> None:
    cid, no = uuid4().hex, "GZ260302-CCCCCC"
    await h.publish(submitted(cid, no, has_contact=True, at=h.clock.now()), cid)
    await h.publish(assigned(cid, no, h.township, status="pending_dispatch"), cid)
    await h.consume()
    await h.service.tick()
    [message] = h.channel.sent
    assert message.recipient_key == f"duty:{h.township.code}"
    assert message.template == "pending_dispatch"
    assert "待分派" in message.text


async def test_a_redelivered_event_creates_one_delivery(h: Harness) -> None:
    cid, no = uuid4().hex, "GZ260302-DDDDDD"
    envelope = await h.publish(assigned(cid, no, h.village), cid)
    await h.publish_again(envelope)
    assert await h.consume() == 2
    assert await count_rows(h) == 1
    assert await h.service.tick() == 1
    assert len(h.channel.sent) == 1


async def test_applying_the_same_envelope_twice_past_the_processed_table_adds_nothing(
    h: Harness,
) -> None:
    cid, no = uuid4().hex, "GZ260302-EEEEEE"
    envelope = Envelope.wrap(
        assigned(cid, no, h.village), key=cid, producer="test", occurred_at=h.clock.now()
    )
    handle = NotifyHandlers(citizen_channel="log").by_type()[envelope.type]
    for _ in range(2):
        async with h.service.database.transaction() as tx:
            await handle(tx, envelope)
    assert await count_rows(h) == 1


async def test_the_database_itself_refuses_a_second_row_for_one_event_and_recipient(
    h: Harness,
) -> None:
    row = {
        "event_id": str(uuid4()),
        "complaint_id": "c",
        "tracking_no": "GZ260302-FFFFFF",
        "recipient_key": "duty:620922",
        "channel": "log",
        "template": "t",
        "text": "x",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": h.clock.now(),
        "created_at": h.clock.now(),
    }
    async with h.service.database.transaction() as tx:
        await tx.connection.execute(insert(deliveries).values(**row))
    with pytest.raises(IntegrityError):
        async with h.service.database.transaction() as tx:
            await tx.connection.execute(insert(deliveries).values(**row))


async def test_failures_back_off_then_dead_letter_and_an_operator_retries(h: Harness) -> None:
    h.channel.failures = 100
    cid, no = uuid4().hex, "GZ260302-GGGGGG"
    await h.publish(assigned(cid, no, h.village), cid)
    await h.consume()

    async def the_delivery() -> dict[str, object]:
        async with h.api() as api:
            response = await api.get("/api/v1/notify/deliveries", params={"complaint_id": cid})
        [row] = response.json()
        assert isinstance(row, dict)
        return row

    start = h.clock.now()
    assert await h.service.tick() == 1
    row = await the_delivery()
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "pending",
        1,
        "DeliveryFailed: receiver down",
    )
    assert row["next_attempt_at"] == (start + timedelta(seconds=30)).isoformat().replace(
        "+00:00", "Z"
    )
    assert await h.service.tick() == 0  # not due yet
    h.clock.advance(timedelta(seconds=29))
    assert await h.service.tick() == 0
    h.clock.advance(timedelta(seconds=1))
    assert await h.service.tick() == 1
    assert (await the_delivery())["attempts"] == 2
    h.clock.advance(timedelta(seconds=59))
    assert await h.service.tick() == 0  # the second wait is twice the first
    h.clock.advance(timedelta(seconds=1))
    assert await h.service.tick() == 1  # third failure: notify_max_attempts=3
    row = await the_delivery()
    assert (row["status"], row["attempts"]) == ("dead", 3)
    h.clock.advance(timedelta(days=1))
    assert await h.service.tick() == 0  # dead letters stay put
    assert h.channel.sent == []

    h.channel.failures = 0  # the receiver is fixed
    delivery_id = row["id"]
    async with h.api() as api:
        dead = await api.get("/api/v1/notify/deliveries", params={"status": "dead"})
        assert [r["id"] for r in dead.json()] == [delivery_id]
        retried = await api.post(f"/api/v1/notify/deliveries/{delivery_id}/retry")
        assert retried.status_code == 200
        assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
        assert await h.service.tick() == 1
        again = await api.post(f"/api/v1/notify/deliveries/{delivery_id}/retry")
        assert again.status_code == 409
    assert (await the_delivery())["status"] == "sent"
    assert len(h.channel.sent) == 1


async def test_api_rejects_bad_parameters_and_unknown_ids(h: Harness) -> None:
    async with h.api() as api:
        for params in ({"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"status": "lost"}):
            response = await api.get("/api/v1/notify/deliveries", params=params)
            assert response.status_code == 422, params
        assert (await api.get("/api/v1/notify/deliveries", params={"limit": "500"})).json() == []
        assert (await api.post("/api/v1/notify/deliveries/999/retry")).status_code == 404
        assert (await api.post("/api/v1/notify/deliveries/abc/retry")).status_code == 422
