"""The embedded event log: topics, partitions and consumer groups in one SQL database.

It keeps Kafka's promises on a single machine, so the services cannot tell the two apart:
records are appended durably before ``publish`` returns, a key always maps to the same
partition (so one complaint's events stay in order), each consumer group has its own
committed offsets, and a record that keeps failing is parked in ``dead_letters`` with the
reason instead of blocking its partition for ever.
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import CompoundSelect, Select

from yijian.bus.protocol import DeadLetter, Delivery, StoredEnvelope
from yijian.clock import Clock
from yijian.contracts import Envelope
from yijian.db import UtcDateTime, reading
from yijian.waiting import set_within

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
metadata = MetaData()

event_log = Table(
    "event_log",
    metadata,
    Column("topic", String(100), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("offset", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),
    Column("key", String(100), nullable=False),
    Column("type", String(100), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("appended_at", UtcDateTime(), nullable=False),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group", String(100), primary_key=True),
    Column("topic", String(100), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", Integer, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group", String(100), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", Integer, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("type", String(100), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("dead_at", UtcDateTime(), nullable=False),
    Column("replayed_at", UtcDateTime(), nullable=True),
)


def partition_for(key: str, partitions: int) -> int:
    # crc32, not hash(): the mapping must not change between processes or restarts.
    return zlib.crc32(key.encode()) % partitions


# Fixed statements, the values as parameters: built once, not for every append.
_APPEND = insert(event_log)


@functools.cache
def _last_offsets(count: int) -> Select[int, Any] | CompoundSelect[int, Any]:
    """The last offset of ``count`` partitions, one statement for an append's partitions.
    Each part is its own ``max`` over the primary key, which SQLite answers from the index
    without reading the partition."""
    parts = [
        select(literal(n).label("slot"), func.max(event_log.c.offset).label("last")).where(
            event_log.c.topic == bindparam(f"topic_{n}"),
            event_log.c.partition == bindparam(f"partition_{n}"),
        )
        for n in range(count)
    ]
    return parts[0] if count == 1 else union_all(*parts)


# How often a consuming group's committed positions are written to ``consumer_offsets``.
# Between writes they are kept in memory: a crash re-delivers what was applied since the last
# write, and each consumer's processed-event table turns those deliveries into no-ops, as
# after a Kafka rebalance. Writing them at every commit was a write transaction, with its
# fsync, for each consumer batch: 7 of the log's 10 write transactions for a complaint in
# ``yijian run`` (docs/performance.md, change 31). ``close`` and ``lag`` write them at once.
SAVE_POSITIONS_EVERY_S = 1.0


class SqlEventLog:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        partitions: int = 3,
        *,
        save_positions_every: float = SAVE_POSITIONS_EVERY_S,
    ) -> None:
        self.engine = engine
        self._clock = clock
        self.partitions = partitions
        self.save_positions_every = save_positions_every
        self._appended: dict[str, list[asyncio.Event]] = {}
        # One appender at a time inside this process; SQLite serialises across processes.
        self._append_lock = asyncio.Lock()

    async def publish(self, envelopes: Sequence[tuple[str, Envelope | StoredEnvelope]]) -> None:
        if not envelopes:
            return
        placed = []
        for topic, given in envelopes:
            envelope = StoredEnvelope.of(given)
            placed.append((topic, partition_for(envelope.key, self.partitions), envelope))
        slots = list(dict.fromkeys((topic, partition) for topic, partition, _ in placed))
        parameters: dict[str, object] = {}
        for n, (topic, partition) in enumerate(slots):
            parameters.update({f"topic_{n}": topic, f"partition_{n}": partition})
        async with self._append_lock, self.engine.begin() as connection:
            last = await connection.execute(_last_offsets(len(slots)), parameters)
            next_offsets = {slots[row.slot]: -1 if row.last is None else row.last for row in last}
            rows = []
            for topic, partition, envelope in placed:
                slot = (topic, partition)
                next_offsets[slot] += 1
                rows.append(
                    {
                        "topic": topic,
                        "partition": partition,
                        "offset": next_offsets[slot],
                        "event_id": envelope.id,
                        "key": envelope.key,
                        "type": envelope.type,
                        "envelope": envelope.text,
                        "appended_at": self._clock.now(),
                    }
                )
            await connection.execute(_APPEND, rows)
        for topic in {topic for topic, _ in envelopes}:
            for waiter in self._appended.get(topic, []):
                waiter.set()

    def subscribe(self, group: str, topics: Sequence[str]) -> SqlSubscription:
        waiter = asyncio.Event()
        for topic in topics:
            self._appended.setdefault(topic, []).append(waiter)
        return SqlSubscription(self, group, list(topics), waiter)

    def _unsubscribe(self, waiter: asyncio.Event) -> None:
        for waiters in self._appended.values():
            if waiter in waiters:
                waiters.remove(waiter)

    async def dead_letters(
        self, group: str | None = None, include_replayed: bool = False
    ) -> list[DeadLetter]:
        query = select(dead_letters).order_by(dead_letters.c.id)
        if group:
            query = query.where(dead_letters.c.group == group)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        async with reading(self.engine) as connection:
            rows = (await connection.execute(query)).all()
        return [
            DeadLetter(
                id=row.id,
                group=row.group,
                topic=row.topic,
                partition=row.partition,
                offset=row.offset,
                envelope=Envelope.model_validate_json(row.envelope),
                error=row.error,
                attempts=row.attempts,
            )
            for row in rows
        ]

    async def replay_dead_letter(self, dead_letter_id: int) -> bool:
        """Append the parked event again; consumers see it as a new delivery of the same id.

        The group that failed it never marked it processed, so it applies it now; groups
        that did process it skip it by its event id.
        """
        async with reading(self.engine) as connection:
            row = (
                await connection.execute(
                    select(dead_letters).where(
                        dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None)
                    )
                )
            ).first()
        if row is None:
            return False
        await self.publish([(row.topic, Envelope.model_validate_json(row.envelope))])
        async with self.engine.begin() as connection:
            await connection.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id)
                .values(replayed_at=self._clock.now())
            )
        return True

    async def lag(self, group: str, topics: Sequence[str]) -> int:
        """Records appended but not yet committed by ``group``."""
        total = 0
        async with reading(self.engine) as connection:
            for topic in topics:
                for partition in range(self.partitions):
                    end = await connection.scalar(
                        select(func.coalesce(func.max(event_log.c.offset) + 1, 0)).where(
                            event_log.c.topic == topic, event_log.c.partition == partition
                        )
                    )
                    position = await connection.scalar(
                        select(consumer_offsets.c.next_offset).where(
                            consumer_offsets.c.group == group,
                            consumer_offsets.c.topic == topic,
                            consumer_offsets.c.partition == partition,
                        )
                    )
                    total += int(end or 0) - int(position or 0)
        return total

    async def close(self) -> None:
        await self.engine.dispose()


# A subscription's statements, fixed, the values as parameters: building each anew cost
# more than SQLite took to run it. (Parameters are not named like columns, which SQLAlchemy
# keeps for SET.)
def _reading_partitions(count: int) -> CompoundSelect[int, int, str]:
    """One statement reading ``count`` partitions from their positions, each up to a limit:
    a poll is one trip to SQLite's thread, not one per partition."""
    parts = [
        select(literal(n).label("slot"), event_log.c.offset, event_log.c.envelope)
        .where(
            event_log.c.topic == bindparam(f"topic_{n}"),
            event_log.c.partition == bindparam(f"partition_{n}"),
            event_log.c.offset >= bindparam(f"from_{n}"),
        )
        .order_by(event_log.c.offset)
        .limit(bindparam("limit"))
        .subquery()
        for n in range(count)
    ]
    return union_all(*(select(part) for part in parts))


def _saving_offsets(dialect_insert: Callable[[Table], Insert]) -> Insert:
    """Each row's offset, inserted or moved: a commit is one statement for all the
    partitions it moves, where an update (and an insert for a new partition) each were one."""
    statement = dialect_insert(consumer_offsets)
    return statement.on_conflict_do_update(  # type: ignore[attr-defined, no-any-return]
        index_elements=[
            consumer_offsets.c.group,
            consumer_offsets.c.topic,
            consumer_offsets.c.partition,
        ],
        set_={"next_offset": statement.excluded.next_offset},  # type: ignore[attr-defined]
    )


_SAVE_OFFSETS = {
    "sqlite": _saving_offsets(sqlite.insert),
    "postgresql": _saving_offsets(postgresql.insert),
}


def _past(deliveries: Sequence[Delivery]) -> dict[tuple[str, int], int]:
    """Per partition, the offset just past the last of ``deliveries``."""
    past: dict[tuple[str, int], int] = {}
    for delivery in deliveries:
        slot = (delivery.topic, delivery.partition)
        past[slot] = max(past.get(slot, 0), delivery.offset + 1)
    return past


class SqlSubscription:
    def __init__(
        self, log: SqlEventLog, group: str, topics: list[str], waiter: asyncio.Event
    ) -> None:
        self._log = log
        self._group = group
        self._topics = topics
        self._waiter = waiter
        self._positions: dict[tuple[str, int], int] | None = None
        self._read: CompoundSelect[int, int, str] | None = None
        # Committed positions not yet written to the log, and when to write them next.
        self._unsaved: dict[tuple[str, int], int] = {}
        self._save_after = 0.0
        # Where the last read ended, per partition, when it found the end of the log.
        self._read_up_to: dict[tuple[str, int], int] | None = None

    async def _load_positions(self) -> dict[tuple[str, int], int]:
        if self._positions is None:
            positions = {
                (topic, partition): 0
                for topic in self._topics
                for partition in range(self._log.partitions)
            }
            async with reading(self._log.engine) as connection:
                rows = await connection.execute(
                    select(consumer_offsets).where(
                        consumer_offsets.c.group == self._group,
                        consumer_offsets.c.topic.in_(self._topics),
                    )
                )
                for row in rows:
                    positions[(row.topic, row.partition)] = row.next_offset
            self._positions = positions
        return self._positions

    async def poll(self, max_records: int, timeout: float) -> list[Delivery]:
        waited = timeout > 0 and self._caught_up()
        if waited:
            # Nothing to read until an append wakes us, or ``timeout`` passes (another
            # process may append to the same file). Reading only to find the log's end again
            # was about a quarter of the log's transactions in ``yijian run``.
            await set_within(self._waiter, timeout)
        self._waiter.clear()  # before the read: an append from here on wakes the next poll
        deliveries = await self._fetch(max_records)
        if not deliveries and timeout > 0 and not waited:
            await set_within(self._waiter, timeout)
            self._waiter.clear()
            deliveries = await self._fetch(max_records)
        self._read_up_to = _past(deliveries) if len(deliveries) < max_records else None
        return deliveries

    def _caught_up(self) -> bool:
        """Whether the last read found the log's end and everything it brought is committed
        (a rewind or an uncommitted record means reading again at once)."""
        if self._read_up_to is None or self._positions is None:
            return False
        positions = self._positions
        return all(positions[slot] >= end for slot, end in self._read_up_to.items())

    async def _fetch(self, max_records: int) -> list[Delivery]:
        positions = await self._load_positions()
        slots = list(positions)
        if self._read is None:  # one read for each partition the group has a position in
            self._read = _reading_partitions(len(slots))
        parameters: dict[str, object] = {"limit": max_records}
        for n, ((topic, partition), position) in enumerate(positions.items()):
            parameters.update(
                {f"topic_{n}": topic, f"partition_{n}": partition, f"from_{n}": position}
            )
        async with reading(self._log.engine) as connection:
            result = await connection.execute(self._read, parameters)
            # By partition, then offset: each partition's records strictly in order.
            rows = sorted(result, key=lambda row: (row.slot, row.offset))
        deliveries: list[Delivery] = []
        for row in rows:
            topic, partition = slots[row.slot]
            envelope = Envelope.model_validate_json(row.envelope)
            deliveries.append(Delivery(topic, partition, row.offset, envelope))
        return deliveries

    def rewind(self, delivery: Delivery) -> None:
        if self._positions is not None:
            slot = (delivery.topic, delivery.partition)
            self._positions[slot] = min(self._positions[slot], delivery.offset)

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        """Move the group on past ``deliveries``; the new positions are written to the log
        now and then (``SAVE_POSITIONS_EVERY_S``), or by ``save_positions``."""
        if deliveries:
            positions = await self._load_positions()
            for slot, past in _past(deliveries).items():
                positions[slot] = max(positions[slot], past)
                self._unsaved[slot] = max(self._unsaved.get(slot, 0), past)
        if self._unsaved and asyncio.get_running_loop().time() >= self._save_after:
            await self.save_positions()

    async def save_positions(self) -> None:
        """Write the positions committed since the last write, in one statement."""
        if not self._unsaved:
            return
        async with self._log.engine.begin() as connection:
            saved = await self._save_in(connection)
        self._saved(saved)

    async def _save_in(
        self, connection: AsyncConnection, also: dict[tuple[str, int], int] | None = None
    ) -> dict[tuple[str, int], int]:
        """Write the unsaved positions, and ``also`` these, in ``connection``'s transaction."""
        saved = dict(self._unsaved)
        for slot, offset in (also or {}).items():
            saved[slot] = max(saved.get(slot, 0), offset)
        rows = [
            {"group": self._group, "topic": topic, "partition": partition, "next_offset": offset}
            for (topic, partition), offset in saved.items()
        ]
        # Empty when another write (the lag gauge's, a commit's) took them while this one
        # waited for its connection: an upsert of no rows is no statement at all.
        if rows:
            await connection.execute(_SAVE_OFFSETS[connection.dialect.name], rows)
        return saved

    def _saved(self, saved: dict[tuple[str, int], int]) -> None:
        """Forget what a committed transaction wrote, unless a commit since moved it on."""
        for slot, offset in saved.items():
            if self._unsaved.get(slot) == offset:
                del self._unsaved[slot]
        loop_time = asyncio.get_running_loop().time()
        self._save_after = loop_time + self._log.save_positions_every

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        """Park ``delivery`` and move past it, in one transaction: a parked record must not
        come back after a crash, as no processed-event row stands for it. The group moves on
        only once that transaction committed: a failed park leaves the record to come again."""
        positions = await self._load_positions()
        slot = (delivery.topic, delivery.partition)
        past = delivery.offset + 1
        async with self._log.engine.begin() as connection:
            await connection.execute(
                insert(dead_letters).values(
                    group=self._group,
                    topic=delivery.topic,
                    partition=delivery.partition,
                    offset=delivery.offset,
                    event_id=str(delivery.envelope.id),
                    type=delivery.envelope.type,
                    envelope=delivery.envelope.model_dump_json(),
                    error=error[:4000],
                    attempts=attempts,
                    dead_at=self._log_now(),
                )
            )
            saved = await self._save_in(connection, {slot: past})
        positions[slot] = max(positions[slot], past)
        self._saved(saved)

    def _log_now(self) -> datetime:
        return self._log._clock.now()

    async def lag(self) -> int:
        await self.save_positions()  # the lag from where the group really is
        return await self._log.lag(self._group, self._topics)

    async def close(self) -> None:
        self._log._unsubscribe(self._waiter)
        try:
            await self.save_positions()
        except Exception as error:  # the next start re-delivers, and consumers skip those
            log.warning("consumer positions not saved", group=self._group, error=str(error))
