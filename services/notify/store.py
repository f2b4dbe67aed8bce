"""Notify's tables and the queries on them.

``recipients`` says who is told for each org, ``citizen_subscriptions`` which complaints'
citizens left a contact, and ``deliveries`` is the log of every message: pending ones wait
for ``tick()``, sent ones are history, dead ones are the dead-letter store an operator retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()

recipients = Table(
    "recipients",
    metadata,
    Column("recipient_key", String(100), primary_key=True),
    Column("org_code", String(32), nullable=False, index=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
)

citizen_subscriptions = Table(
    "citizen_subscriptions",
    metadata,
    Column("complaint_id", String(64), primary_key=True),
    Column("tracking_no", String(64), nullable=False),
    Column("recipient_key", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("subscribed_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("complaint_id", String(64), nullable=False, index=True),
    Column("tracking_no", String(64), nullable=False),
    Column("recipient_key", String(100), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("template", String(50), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # A re-delivered or replayed event must never message the same person twice.
    UniqueConstraint("event_id", "recipient_key", name="uq_deliveries_event_recipient"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
)

# Long enough to diagnose, short enough that a chatty error page cannot bloat the table.
ERROR_LIMIT = 1000


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True)
class Recipient:
    key: str
    org_code: str
    display_name: str
    role: str
    channel: str


@dataclass(frozen=True)
class Subscription:
    complaint_id: str
    recipient_key: str
    channel: str


@dataclass(frozen=True)
class Outgoing:
    """A message a handler decided to send, before it is a row."""

    recipient_key: str
    channel: str
    template: str
    text: str


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    event_id: str
    complaint_id: str
    tracking_no: str
    recipient_key: str
    channel: str
    template: str
    text: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def aware(instant: datetime) -> datetime:
    """SQLite hands datetimes back naive; every instant we store is UTC, so say so."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        event_id=row.event_id,
        complaint_id=row.complaint_id,
        tracking_no=row.tracking_no,
        recipient_key=row.recipient_key,
        channel=row.channel,
        template=row.template,
        text=row.text,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=aware(row.next_attempt_at),
        last_error=row.last_error,
        created_at=aware(row.created_at),
        sent_at=aware(row.sent_at) if row.sent_at is not None else None,
    )


async def recipients_of(connection: AsyncConnection, org_code: str) -> list[Recipient]:
    rows = await connection.execute(
        select(recipients)
        .where(recipients.c.org_code == org_code)
        .order_by(recipients.c.recipient_key)
    )
    return [
        Recipient(
            key=row.recipient_key,
            org_code=row.org_code,
            display_name=row.display_name,
            role=row.role,
            channel=row.channel,
        )
        for row in rows
    ]


def citizen_key(complaint_id: str) -> str:
    # The real phone/WeChat lookup happens at send time in a later issue; the key itself
    # names only the complaint, so no personal data is ever copied into notify.
    return f"citizen:{complaint_id}"


async def subscribe_citizen(
    connection: AsyncConnection,
    *,
    complaint_id: str,
    tracking_no: str,
    channel: str,
    now: datetime,
) -> None:
    existing = await connection.scalar(
        select(citizen_subscriptions.c.complaint_id).where(
            citizen_subscriptions.c.complaint_id == complaint_id
        )
    )
    if existing is not None:
        return
    await connection.execute(
        insert(citizen_subscriptions).values(
            complaint_id=complaint_id,
            tracking_no=tracking_no,
            recipient_key=citizen_key(complaint_id),
            channel=channel,
            subscribed_at=now,
        )
    )


async def citizen_subscription(
    connection: AsyncConnection, complaint_id: str
) -> Subscription | None:
    row = (
        await connection.execute(
            select(citizen_subscriptions).where(
                citizen_subscriptions.c.complaint_id == complaint_id
            )
        )
    ).first()
    if row is None:
        return None
    return Subscription(row.complaint_id, row.recipient_key, row.channel)


async def add_deliveries(
    connection: AsyncConnection,
    *,
    event_id: str,
    complaint_id: str,
    tracking_no: str,
    outgoing: Sequence[Outgoing],
    now: datetime,
) -> int:
    """Insert pending deliveries, skipping recipients this event already has one for.

    The consumer's processed-event table already stops most duplicates; this check (and the
    unique constraint behind it) also covers a replay that bypasses it. Returns rows added.
    """
    taken = set(
        (
            await connection.scalars(
                select(deliveries.c.recipient_key).where(deliveries.c.event_id == event_id)
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for message in outgoing:
        if message.recipient_key in taken:
            continue
        taken.add(message.recipient_key)
        rows.append(
            {
                "event_id": event_id,
                "complaint_id": complaint_id,
                "tracking_no": tracking_no,
                "recipient_key": message.recipient_key,
                "channel": message.channel,
                "template": message.template,
                "text": message.text,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    if rows:
        await connection.execute(insert(deliveries), rows)
    return len(rows)


async def due_deliveries(
    connection: AsyncConnection, now: datetime, limit: int
) -> list[DeliveryRecord]:
    rows = await connection.execute(
        select(deliveries)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
    )
    return [_record(row) for row in rows]


async def claim(
    connection: AsyncConnection, delivery_id: int, now: datetime, lease_until: datetime
) -> bool:
    """Push a due delivery's next attempt past the send, so no other replica sends it too.

    If this process dies mid-send, the lease runs out and the delivery is tried again: a
    message may then arrive twice (receivers de-duplicate on event_id), but is never lost.
    """
    result = await connection.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=lease_until)
    )
    return result.rowcount == 1


async def mark_sent(
    connection: AsyncConnection, delivery_id: int, attempts: int, now: datetime
) -> None:
    await connection.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(status=DeliveryStatus.SENT.value, attempts=attempts, sent_at=now)
    )


async def mark_failed(
    connection: AsyncConnection,
    delivery_id: int,
    *,
    attempts: int,
    error: str,
    retry_at: datetime | None,
) -> None:
    """Record a failed attempt; ``retry_at`` None means give up (dead letter)."""
    values: dict[str, Any] = {"attempts": attempts, "last_error": error[:ERROR_LIMIT]}
    if retry_at is None:
        values["status"] = DeliveryStatus.DEAD.value
    else:
        values["next_attempt_at"] = retry_at
    await connection.execute(
        update(deliveries).where(deliveries.c.id == delivery_id).values(**values)
    )


async def get_delivery(connection: AsyncConnection, delivery_id: int) -> DeliveryRecord | None:
    row = (
        await connection.execute(select(deliveries).where(deliveries.c.id == delivery_id))
    ).first()
    return None if row is None else _record(row)


async def list_deliveries(
    connection: AsyncConnection,
    *,
    complaint_id: str | None,
    status: DeliveryStatus | None,
    limit: int,
) -> list[DeliveryRecord]:
    query = select(deliveries).order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
    if complaint_id is not None:
        query = query.where(deliveries.c.complaint_id == complaint_id)
    if status is not None:
        query = query.where(deliveries.c.status == status.value)
    rows = await connection.execute(query.limit(limit))
    return [_record(row) for row in rows]


async def requeue_dead(connection: AsyncConnection, delivery_id: int, now: datetime) -> bool:
    """Give a dead delivery a fresh round of attempts; False when it is not dead.

    Attempts restart at zero because an operator retries after fixing the receiver, and
    one last try would waste the fix on a passing hiccup. ``last_error`` stays as history.
    """
    result = await connection.execute(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.status == DeliveryStatus.DEAD.value,
        )
        .values(status=DeliveryStatus.PENDING.value, attempts=0, next_attempt_at=now)
    )
    return result.rowcount == 1
