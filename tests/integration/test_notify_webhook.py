"""Signed webhooks against a real HTTP server on 127.0.0.1, checked the way a receiver would."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import SecretStr

from services.notify.app import NotifyService
from services.notify.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    OutboundMessage,
    WebhookChannel,
)
from services.notify.delivery_log import list_deliveries
from services.notify.sending import FIRST_RETRY
from yijian.bus import sqllog
from yijian.bus.sqllog import SqlEventLog
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, ComplaintAssigned, Org
from yijian.db import create_engine, create_tables
from yijian.jurisdiction import Jurisdiction
from yijian.level import Level
from yijian.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "receiver-shared-secret"


def receiver_accepts(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """The check a gateway runs, written from the spec rather than with notify's own code."""
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: answers 401 to a bad signature, ``status`` otherwise."""

    secret: bytes
    status: int = 200
    requests: list[Received] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Received(headers, body))
        signed = receiver_accepts(
            self.secret,
            headers.get(TIMESTAMP_HEADER.lower(), ""),
            body,
            headers.get(SIGNATURE_HEADER.lower(), ""),
        )
        status = self.status if signed else 401
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def jurisdiction() -> Jurisdiction:
    return Jurisdiction.load()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver(secret=SECRET.encode())
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver, f"http://127.0.0.1:{port}/hooks/yijian"
    server.close()
    await server.wait_closed()


MESSAGE = OutboundMessage(
    recipient_key="duty:620922",
    template="county_overdue",
    text="【县平台已超时，再次催办】诉求GZ260302-7K3Q9M的办结期限（2026-03-02 14:30）已过",
    complaint_id="c0ffee",
    tracking_no="GZ260302-7K3Q9M",
    event_id=str(uuid4()),
)


async def test_receiver_verifies_signature_and_timestamp(
    receiver: tuple[Receiver, str],
) -> None:
    server, url = receiver
    clock = FakeClock(datetime(2026, 3, 2, 6, 30, tzinfo=UTC))
    channel = WebhookChannel(url=url, secret=SECRET.encode(), clock=clock, timeout=5)
    try:
        await channel.send(MESSAGE)
    finally:
        await channel.close()
    [request] = server.requests
    assert request.headers[TIMESTAMP_HEADER.lower()] == str(int(clock.now().timestamp()))
    assert receiver_accepts(
        SECRET.encode(),
        request.headers[TIMESTAMP_HEADER.lower()],
        request.body,
        request.headers[SIGNATURE_HEADER.lower()],
    )
    assert json.loads(request.body.decode("utf-8"))["text"] == MESSAGE.text


async def test_a_wrong_secret_is_refused_by_the_receiver(receiver: tuple[Receiver, str]) -> None:
    server, url = receiver
    channel = WebhookChannel(url=url, secret=b"not-the-secret", clock=FakeClock())
    try:
        with pytest.raises(DeliveryFailed, match="HTTP 401"):
            await channel.send(MESSAGE)
    finally:
        await channel.close()
    assert len(server.requests) == 1


async def test_a_closed_port_fails_the_attempt() -> None:
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    channel = WebhookChannel(url=f"http://127.0.0.1:{port}/", secret=b"s", clock=FakeClock())
    try:
        with pytest.raises(DeliveryFailed, match="unreachable"):
            await channel.send(MESSAGE)
    finally:
        await channel.close()


async def test_service_configured_with_a_webhook_delivers_signed_messages(
    receiver: tuple[Receiver, str], tmp_path: Path, jurisdiction: Jurisdiction
) -> None:
    server, url = receiver
    clock = FakeClock()
    log_engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'eventlog.db'}")
    await create_tables(log_engine, sqllog.metadata)
    event_log = SqlEventLog(log_engine, clock)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    service = NotifyService(
        settings=Settings(notify_webhook_url=url, notify_webhook_secret=SecretStr(SECRET)),
        clock=clock,
        event_log=event_log,
        engine=engine,
        jurisdiction=jurisdiction,
    )
    try:
        await service.prepare()
        village = jurisdiction.villages()[0]
        cid = uuid4().hex
        event = ComplaintAssigned(
            complaint_id=cid,
            tracking_no="GZ260302-WWWWWW",
            status="assigned",
            assignee=Org(code=village.code, name=village.name, level=Level.VILLAGE),
            level=Level.VILLAGE,
            reason="located",
            category=None,
            urgency="normal",
            clock=1,
        )
        envelope = Envelope.wrap(event, key=cid, producer="routing", occurred_at=clock.now())
        await event_log.publish([(TOPIC_CASES, envelope)])
        assert await service.consumers[0].consume_once() == 1

        server.status = 503  # the gateway is down at first
        assert await service.tick() == 1
        assert await service.tick() == 0  # backing off, not hammering it
        server.status = 200
        clock.advance(FIRST_RETRY)
        assert await service.tick() == 1
        async with engine.connect() as connection:
            [record] = await list_deliveries(connection, complaint_id=cid, status=None, limit=10)
    finally:
        await service.close()
        await engine.dispose()
        await event_log.close()

    assert (record.status, record.attempts, record.channel) == ("sent", 2, "webhook")
    assert record.last_error == "DeliveryFailed: webhook answered HTTP 503"
    assert len(server.requests) == 2
    body = json.loads(server.requests[-1].body)
    assert body["recipient"] == f"duty:{village.code}"
    assert body["event_id"] == str(envelope.id)
    assert body["complaint_id"] == cid


async def test_a_webhook_without_a_secret_is_refused_at_startup(
    tmp_path: Path, jurisdiction: Jurisdiction
) -> None:
    event_log = SqlEventLog(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"), FakeClock())
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    with pytest.raises(ValueError, match="SECRET"):
        NotifyService(
            settings=Settings(notify_webhook_url="http://127.0.0.1:9/"),
            clock=FakeClock(),
            event_log=event_log,
            engine=engine,
            jurisdiction=jurisdiction,
        )
    await engine.dispose()
    await event_log.close()
