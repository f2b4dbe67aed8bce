"""The life of a delivery after a handler queued it: due, claimed, sent, failed or dead.

Handlers write deliveries through ``store.add_deliveries``; everything here serves the
sender loop and the operator's API. Timestamps come back aware in UTC (``UtcDateTime``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningUpdate, Update
from sqlalchemy.sql.elements import ColumnElement

from services.notify.store import DeliveryStatus, deliveries
from yijian.db import one_of_ids

# Long enough to diagnose, short enough that a chatty error page cannot bloat the table.
ERROR_LIMIT = 1000


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
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


# The sender's statements, fixed, the values as parameters: built once, not for every
# delivery (building a statement and its cache key cost more than running it on SQLite).
_DUE = (
    select(deliveries)
    .where(
        deliveries.c.status == DeliveryStatus.PENDING.value,
        deliveries.c.next_attempt_at <= bindparam("now"),
    )
    .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
    .limit(bindparam("limit"))
)
_BATCH_PG, _BATCH_SQLITE = one_of_ids(deliveries.c.id)


def _claiming(batch: ColumnElement[bool]) -> ReturningUpdate[int]:
    return (
        update(deliveries)
        .where(
            batch,
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= bindparam("now"),
        )
        .values(next_attempt_at=bindparam("lease_until"))
        .returning(deliveries.c.id)
    )


def _marking_sent(batch: ColumnElement[bool]) -> Update:
    # Each claimed row was tried once more: its attempts go up by one.
    return (
        update(deliveries)
        .where(batch)
        .values(
            status=DeliveryStatus.SENT.value,
            attempts=deliveries.c.attempts + 1,
            sent_at=bindparam("sent_now"),
        )
    )


_CLAIM_PG = _claiming(_BATCH_PG)
_CLAIM_SQLITE = _claiming(_BATCH_SQLITE)
_MARK_SENT_PG = _marking_sent(_BATCH_PG)
_MARK_SENT_SQLITE = _marking_sent(_BATCH_SQLITE)


async def due_deliveries(
    connection: AsyncConnection, now: datetime, limit: int
) -> list[DeliveryRecord]:
    rows = await connection.execute(_DUE, {"now": now, "limit": limit})
    return [_record(row) for row in rows]


async def claim(
    connection: AsyncConnection, delivery_ids: Sequence[int], now: datetime, lease_until: datetime
) -> set[int]:
    """Push due deliveries' next attempt past the send, so no other replica sends them too;
    the ids this transaction claimed, in one statement for the batch.

    If this process dies mid-send, the lease runs out and the delivery is tried again: a
    message may then arrive twice (receivers de-duplicate on event_id), but is never lost.
    """
    if not delivery_ids:
        return set()
    statement = _CLAIM_SQLITE if connection.dialect.name == "sqlite" else _CLAIM_PG
    claimed = await connection.scalars(
        statement, {"ids": list(delivery_ids), "now": now, "lease_until": lease_until}
    )
    return set(claimed)


async def mark_sent(
    connection: AsyncConnection, delivery_ids: Sequence[int], now: datetime
) -> None:
    """Record one more, successful, attempt for each of ``delivery_ids`` (claimed ones)."""
    if not delivery_ids:
        return
    statement = _MARK_SENT_SQLITE if connection.dialect.name == "sqlite" else _MARK_SENT_PG
    await connection.execute(statement, {"ids": list(delivery_ids), "sent_now": now})


async def sent_since(connection: AsyncConnection, recipient_key: str, since: datetime) -> int:
    """How many messages ``recipient_key`` was sent from ``since`` on."""
    count = await connection.scalar(
        select(func.count())
        .select_from(deliveries)
        .where(
            deliveries.c.recipient_key == recipient_key,
            deliveries.c.status == DeliveryStatus.SENT.value,
            deliveries.c.sent_at >= since,
        )
    )
    return int(count or 0)


async def mark_suppressed(
    connection: AsyncConnection, delivery_id: int, reason: str, now: datetime
) -> None:
    """Record that a delivery will not be sent (over its recipient's daily cap)."""
    await connection.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=DeliveryStatus.SUPPRESSED.value,
            last_error=reason[:ERROR_LIMIT],
            next_attempt_at=now,
        )
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
