"""Notify's tables, and the queries handlers run (delivery_log.py has the sender's).

``recipients`` says who is told for each org, ``citizen_subscriptions`` which complaints'
citizens left a contact, and ``deliveries`` is the log of every message: pending ones wait
for ``tick()``, sent ones are history, dead ones are the dead-letter store an operator retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from yijian.bus.outbox import outbox_tables
from yijian.db import UtcDateTime

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
    Column("subscribed_at", UtcDateTime(), nullable=False),
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
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    # A re-delivered or replayed event must never message the same person twice.
    UniqueConstraint("event_id", "recipient_key", name="uq_deliveries_event_recipient"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    # What one recipient was sent today, for the daily cap (sending.py).
    Index("ix_deliveries_recipient_sent", "recipient_key", "sent_at"),
)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    SUPPRESSED = "suppressed"  # over the recipient's daily cap: recorded, never sent


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


# Fixed statements, the values as parameters: built once, not for every event.
_RECIPIENTS_OF = (
    select(recipients)
    .where(recipients.c.org_code == bindparam("org_code"))
    .order_by(recipients.c.recipient_key)
)
_SUBSCRIPTION_OF = select(citizen_subscriptions).where(
    citizen_subscriptions.c.complaint_id == bindparam("complaint_id")
)
_DELIVERED_TO = select(deliveries.c.recipient_key).where(
    deliveries.c.event_id == bindparam("event_id")
)


async def recipients_of(connection: AsyncConnection, org_code: str) -> list[Recipient]:
    rows = await connection.execute(_RECIPIENTS_OF, {"org_code": org_code})
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


CITIZEN_PREFIX = "citizen:"


def citizen_key(complaint_id: str) -> str:
    # The real phone/WeChat lookup happens at send time in a later issue; the key itself
    # names only the complaint, so no personal data is ever copied into notify.
    return f"{CITIZEN_PREFIX}{complaint_id}"


# A fixed statement, the row as parameters: compiled once, not rebuilt for every complaint.
_SUBSCRIBE = insert(citizen_subscriptions)


async def subscribe_citizen(
    connection: AsyncConnection,
    *,
    complaint_id: str,
    tracking_no: str,
    channel: str,
    now: datetime,
) -> None:
    existing = (await connection.execute(_SUBSCRIPTION_OF, {"complaint_id": complaint_id})).first()
    if existing is not None:
        return
    await connection.execute(
        _SUBSCRIBE,
        {
            "complaint_id": complaint_id,
            "tracking_no": tracking_no,
            "recipient_key": citizen_key(complaint_id),
            "channel": channel,
            "subscribed_at": now,
        },
    )


async def citizen_subscription(
    connection: AsyncConnection, complaint_id: str
) -> Subscription | None:
    row = (await connection.execute(_SUBSCRIPTION_OF, {"complaint_id": complaint_id})).first()
    if row is None:
        return None
    return Subscription(row.complaint_id, row.recipient_key, row.channel)


_ADD_DELIVERIES = insert(deliveries)


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
    taken = set((await connection.scalars(_DELIVERED_TO, {"event_id": event_id})).all())
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
        await connection.execute(_ADD_DELIVERIES, rows)
    return len(rows)


# Every service database also holds the outbox and the processed-event table.
outbox_tables(metadata)
