"""The transactional outbox: a service's state change and its events commit together.

Every service database holds two tables from here: ``outbox`` (events written in the same
transaction as the change that caused them, moved to the event log by the relay) and
``processed_events`` (which events each consumer has already applied, so a re-delivery
changes nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from yijian.bus.protocol import StoredEnvelope
from yijian.clock import Clock
from yijian.contracts import Envelope, Payload
from yijian.contracts.events import TOPIC_OF
from yijian.db import UtcDateTime, reading


def outbox_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the two tables to a service's metadata, once however many times it is wired."""
    if "outbox" in metadata.tables:
        return metadata.tables["outbox"], metadata.tables["processed_events"]
    outbox = Table(
        "outbox",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("topic", String(100), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("processed_at", UtcDateTime(), nullable=False),
    )
    return outbox, processed


class Transaction:
    """One database transaction of a service, with the events it will publish."""

    def __init__(self, connection: AsyncConnection, database: ServiceDatabase) -> None:
        self.connection = connection
        self._database = database
        self.emitted: list[Envelope] = []
        self._written = 0  # how many of ``emitted`` are in the outbox already

    @property
    def now(self) -> datetime:
        return self._database.clock.now()

    async def emit(
        self,
        payload: Payload,
        *,
        key: str,
        causation: Envelope | None = None,
        correlation_id: UUID | None = None,
    ) -> Envelope:
        envelope = Envelope.wrap(
            payload,
            key=key,
            producer=self._database.producer,
            occurred_at=self.now,
            causation=causation,
            correlation_id=correlation_id,
        )
        self.emitted.append(envelope)
        return envelope

    def outbox_rows(self) -> list[dict[str, Any]]:
        """The outbox rows of what was emitted and not yet written, taken: for a caller that
        writes them itself (intake's batch, with its other rows in one statement on
        PostgreSQL), so that the commit does not write them again."""
        now = self.now
        rows = [
            {
                "topic": TOPIC_OF[envelope.type],
                "envelope": envelope.model_dump_json(),
                "created_at": now,
            }
            for envelope in self.emitted[self._written :]
        ]
        self._written = len(self.emitted)
        return rows

    async def write_outbox(self) -> None:
        """Write what was emitted, all in one statement, just before the commit: a
        transaction that emits many events (a batch of complaints) pays one round trip."""
        if len(self.emitted) == self._written:
            return
        # The same statement every time, the rows as parameters: SQLAlchemy finds it compiled
        # at once, where a fresh ``.values(...)`` is rebuilt and re-keyed for each event.
        await self.connection.execute(self._database.add_to_outbox, self.outbox_rows())


async def _record_once(connection: AsyncConnection, table: Table, row: dict[str, object]) -> bool:
    """Insert ``row`` unless its key is there already; whether it was inserted.

    One statement on PostgreSQL and SQLite (``ON CONFLICT DO NOTHING``): a savepoint around
    a plain insert costs two more round trips per consumed event (bench/transport.py measured
    it). A concurrent insert of the same key waits for the other transaction, as before.
    """
    dialect = connection.dialect.name
    if dialect in {"postgresql", "sqlite"}:
        statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        result = await connection.execute(statement.values(row).on_conflict_do_nothing())
        return bool(result.rowcount)
    try:
        async with connection.begin_nested():
            await connection.execute(insert(table).values(row))
    except IntegrityError:
        return False
    return True


def _runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted ids as (first, last) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for row_id in ids:
        if runs and runs[-1][1] == row_id - 1:
            runs[-1] = (runs[-1][0], row_id)
        else:
            runs.append((row_id, row_id))
    return runs


class AlreadyProcessed(Exception):
    """The consumer applied this event before; the delivery is a duplicate."""


class ServiceDatabase:
    """A service's own database: its engine, its outbox and its processed-event table."""

    def __init__(
        self, engine: AsyncEngine, metadata: MetaData, *, producer: str, clock: Clock
    ) -> None:
        self.engine = engine
        self.metadata = metadata
        self.producer = producer
        self.clock = clock
        self.outbox, self.processed = outbox_tables(metadata)
        self.add_to_outbox = insert(self.outbox)
        self._record_processed_pg = (
            postgresql.insert(self.processed)
            .from_select(
                ["consumer", "event_id", "processed_at"],
                select(
                    bindparam("consumer", type_=String),
                    func.unnest(bindparam("ids", type_=postgresql.ARRAY(String))),
                    bindparam("processed_at", type_=UtcDateTime()),
                ),
            )
            .on_conflict_do_nothing()
            .returning(self.processed.c.event_id)
        )
        self._record_processed_sqlite = (
            sqlite.insert(self.processed)
            .on_conflict_do_nothing()
            .returning(self.processed.c.event_id)
        )
        # The relay's two statements, built once: constructing them cost ~25% of its CPU.
        self._oldest = (
            select(self.outbox.c.id, self.outbox.c.topic, self.outbox.c.envelope)
            .order_by(self.outbox.c.id)
            .limit(bindparam("limit"))
        )
        self._forget_run = delete(self.outbox).where(
            self.outbox.c.id.between(bindparam("first"), bindparam("last"))
        )
        # Set after a commit that wrote outbox rows, so the relay moves them at once.
        self.outbox_ready = asyncio.Event()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.engine.begin() as connection:
            tx = Transaction(connection, self)
            yield tx
            await tx.write_outbox()
        if tx.emitted:
            self.outbox_ready.set()

    @asynccontextmanager
    async def consuming(self, consumer: str, envelope: Envelope) -> AsyncIterator[Transaction]:
        """A transaction that records ``envelope`` as processed by ``consumer``.

        Raises AlreadyProcessed, before the handler runs, when it was applied before.
        """
        async with self.consuming_batch(consumer, [envelope]) as (tx, fresh):
            if not fresh:
                raise AlreadyProcessed(str(envelope.id))
            yield tx

    @asynccontextmanager
    async def consuming_batch(
        self, consumer: str, envelopes: Sequence[Envelope]
    ) -> AsyncIterator[tuple[Transaction, list[Envelope]]]:
        """One transaction that records all of ``envelopes`` as processed by ``consumer``;
        yields it with the envelopes not processed before, in their order, each once: the
        caller applies those.

        One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for the lot, instead of a statement
        and a commit per event.
        """
        ids = [str(envelope.id) for envelope in envelopes]
        async with self.transaction() as tx:
            # Sorted: two replicas recording overlapping batches (a rebalance) take the row
            # locks in the same order, so they wait for each other instead of deadlocking.
            recorded = await self._record_processed(tx, consumer, sorted(set(ids)))
            fresh: list[Envelope] = []
            for event_id, envelope in zip(ids, envelopes, strict=True):
                if event_id in recorded:
                    recorded.discard(event_id)  # a second copy later in the batch is a duplicate
                    fresh.append(envelope)
            yield tx, fresh

    async def _record_processed(self, tx: Transaction, consumer: str, ids: list[str]) -> set[str]:
        """Insert the processed-event rows that are not there yet; the ids inserted."""
        if not ids:
            return set()
        connection = tx.connection
        dialect = connection.dialect.name
        if dialect == "postgresql":
            # The ids as one array parameter: SQLAlchemy's multi-row VALUES binds three
            # parameters a row, ~25 µs of the consumer's CPU per event (bench/transport.py).
            returned = await connection.execute(
                self._record_processed_pg,
                {"consumer": consumer, "ids": ids, "processed_at": tx.now},
            )
            return set(returned.scalars())
        rows = [{"consumer": consumer, "event_id": i, "processed_at": tx.now} for i in ids]
        if dialect == "sqlite":
            returned = await connection.execute(self._record_processed_sqlite, rows)
            return set(returned.scalars())
        return {
            str(row["event_id"])
            for row in rows
            if await _record_once(connection, self.processed, row)
        }

    async def take_outbox(
        self, limit: int, *, forget: Sequence[int] = ()
    ) -> list[tuple[int, str, StoredEnvelope]]:
        """The oldest ``limit`` rows: id, topic, and the envelope as the text written.

        ``forget`` (rows the log has confirmed) are deleted in the same transaction, before
        the read: the relay's next take then costs one connection and one commit, not two.
        """
        # Nothing to delete: a plain read, which on SQLite takes no write lock from the
        # submissions committing beside it.
        session = self.engine.begin() if forget else reading(self.engine)
        async with session as connection:
            if forget:
                await self._forget(connection, forget)
            rows = await connection.execute(self._oldest, {"limit": limit})
            return [(row.id, row.topic, StoredEnvelope.from_text(row.envelope)) for row in rows]

    async def forget_outbox(self, ids: Sequence[int]) -> None:
        """Delete exactly the rows that were published (``take_outbox`` can do it too)."""
        if ids:
            async with self.engine.begin() as connection:
                await self._forget(connection, ids)

    async def _forget(self, connection: AsyncConnection, ids: Sequence[int]) -> None:
        """Delete exactly ``ids``. Not ``id <= the last one``: on PostgreSQL a transaction
        holding a lower id may commit while we publish, and its row — not yet read, never
        sent — would go with the others.

        Runs of consecutive ids become ``BETWEEN`` ranges, which hold no other row (ids are
        unique): a batch is usually one run, and binding 500 ids one by one in an ``IN`` list
        cost the relay ~6 µs an event.
        """
        runs = _runs(sorted(ids))
        if len(runs) == 1:
            [(first, last)] = runs
            await connection.execute(self._forget_run, {"first": first, "last": last})
            return
        ranges = [self.outbox.c.id.between(first, last) for first, last in runs]
        await connection.execute(delete(self.outbox).where(or_(*ranges)))

    async def outbox_backlog(self) -> int:
        async with reading(self.engine) as connection:
            count = await connection.scalar(select(func.count()).select_from(self.outbox))
            return int(count or 0)
