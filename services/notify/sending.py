"""Sends due deliveries, retries failures with backoff, and dead-letters the hopeless.

Time comes only from the injected clock and nothing sleeps: a delivery that failed simply
becomes due again later, and tests reach "later" by moving a fake clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import delivery_log
from services.notify.channels import Channel, OutboundMessage
from services.notify.delivery_log import DeliveryRecord
from services.notify.store import CITIZEN_PREFIX
from yijian.bus.outbox import ServiceDatabase
from yijian.metrics import DELIVERIES

log = structlog.get_logger(__name__)

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
# How long a claimed delivery is hidden from other senders; longer than any send can take
# (channels time out well before), short enough that a crashed sender's work resumes soon.
LEASE = timedelta(minutes=5)
BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_day_start(now: datetime) -> datetime:
    """The last midnight in Beijing, as a UTC instant: a citizen's "day" is their own."""
    local = now.astimezone(BEIJING)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 30 s, 1 min, 2 min … capped at 1 h.

    Doubling spares a receiver that is down from a storm of retries; the cap keeps a
    recovered receiver from waiting most of a day.
    """
    if attempts < 1:
        raise ValueError("backoff follows a failed attempt")
    # Capping the exponent first keeps a huge attempt count from overflowing timedelta.
    factor: int = 2 ** min(attempts - 1, 16)
    return min(FIRST_RETRY * factor, MAX_RETRY)


class Sender:
    def __init__(
        self,
        *,
        database: ServiceDatabase,
        channels: Mapping[str, Channel],
        max_attempts: int,
        batch: int = 50,
        citizen_daily_cap: int = 0,
        capped_channels: Collection[str] = (),
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._database = database
        self._channels = channels
        self._max_attempts = max_attempts
        self._batch = batch
        # Text messages and WeChat notices reach a citizen's phone, and each costs money:
        # however many events a complaint sees in a day, its citizen gets at most this
        # many (0: no cap). Staff duty lines are never capped: a suppressed 督办 notice
        # would defeat the deadlines the whole system exists to hold.
        self._citizen_daily_cap = citizen_daily_cap
        self._capped_channels = frozenset(capped_channels)

    async def send_due(self) -> int:
        """Try every delivery due now (up to a batch); returns how many were tried."""
        now = self._database.clock.now()
        claimed: list[DeliveryRecord] = []
        suppressed = 0
        async with self._database.transaction() as tx:
            taken: Counter[str] = Counter()  # sends to each recipient decided in this batch
            due = await delivery_log.due_deliveries(tx.connection, now, self._batch)
            ours = await delivery_log.claim(
                tx.connection, [record.id for record in due], now, now + LEASE
            )
            for record in due:
                if record.id not in ours:
                    continue  # another sender claimed it first
                if await self._over_cap(tx.connection, record, now, taken[record.recipient_key]):
                    await delivery_log.mark_suppressed(
                        tx.connection,
                        record.id,
                        f"not sent: the recipient's cap of {self._citizen_daily_cap} "
                        "messages a day was reached",
                        now,
                    )
                    DELIVERIES.labels(record.channel, "suppressed").inc()
                    log.info("delivery suppressed", delivery_id=record.id, channel=record.channel)
                    suppressed += 1
                    continue
                taken[record.recipient_key] += 1
                claimed.append(record)
        if not claimed:
            return suppressed
        # Concurrent sends: one slow receiver must not hold back the rest of the batch.
        errors = await asyncio.gather(*(self._attempt(record) for record in claimed))
        await self._settle(claimed, errors)
        return len(claimed) + suppressed

    async def _over_cap(
        self, connection: AsyncConnection, record: DeliveryRecord, now: datetime, taken: int
    ) -> bool:
        if (
            self._citizen_daily_cap <= 0
            or record.channel not in self._capped_channels
            or not record.recipient_key.startswith(CITIZEN_PREFIX)
        ):
            return False
        sent = await delivery_log.sent_since(
            connection, record.recipient_key, beijing_day_start(now)
        )
        return sent + taken >= self._citizen_daily_cap

    async def _attempt(self, record: DeliveryRecord) -> str | None:
        channel = self._channels.get(record.channel)
        if channel is None:
            return f"no channel {record.channel!r} configured"
        message = OutboundMessage(
            recipient_key=record.recipient_key,
            template=record.template,
            text=record.text,
            complaint_id=record.complaint_id,
            tracking_no=record.tracking_no,
            event_id=record.event_id,
        )
        try:
            await channel.send(message)
        except Exception as error:
            # Any failure, even a channel bug, is one failed attempt: it must not stop the
            # rest of the batch from being recorded.
            return f"{type(error).__name__}: {error}"
        return None

    async def _settle(self, claimed: list[DeliveryRecord], errors: list[str | None]) -> None:
        async with self._database.transaction() as tx:
            # The clock after sending, so backoff counts from when the failure was seen.
            now = tx.now
            sent: list[int] = []
            for record, error in zip(claimed, errors, strict=True):
                if error is None:
                    DELIVERIES.labels(record.channel, "sent").inc()
                    sent.append(record.id)
                    continue
                attempts = record.attempts + 1
                bound = log.bind(
                    delivery_id=record.id,
                    template=record.template,
                    channel=record.channel,
                    attempts=attempts,
                )
                DELIVERIES.labels(record.channel, "failed").inc()
                if attempts >= self._max_attempts:
                    bound.error("delivery dead-lettered", error=error)
                    retry_at = None
                else:
                    retry_at = now + backoff(attempts)
                    bound.warning("delivery failed; will retry", error=error)
                await delivery_log.mark_failed(
                    tx.connection, record.id, attempts=attempts, error=error, retry_at=retry_at
                )
            await delivery_log.mark_sent(tx.connection, sent, now)
