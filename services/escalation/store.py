"""Escalation's tables and the queries on them: deadlines are rows, so they outlive any process.

A deadline row moves pending → fired or pending → cancelled, never back. Firing is claimed by
an UPDATE guarded on ``state = 'pending'``: whichever transaction flips the row owns it, so
several firing loops over one database still announce each deadline once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from services.escalation.domain import (
    ComplaintClock,
    DeadlineKind,
    DeadlineState,
    PlannedDeadline,
)
from yijian.bus.outbox import outbox_tables
from yijian.contracts.events import Stage
from yijian.db import UtcDateTime, one_of_ids
from yijian.level import Level

metadata = MetaData()

deadlines = Table(
    "deadlines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("complaint_id", String(64), nullable=False),
    Column("clock", Integer, nullable=False),
    Column("level", String(10), nullable=False),
    Column("stage", String(10), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("fire_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    # Kept so an overdue repeat can find its policy terms: complaint.overdue carries neither.
    Column("category", String(50)),
    Column("urgency", String(10), nullable=False),
    Column("state", String(10), nullable=False),
    Column("fired_at", UtcDateTime()),
    Column("started_at", UtcDateTime(), nullable=False),
    # The story this deadline belongs to, so what it fires shares the complaint's correlation.
    Column("correlation_id", String(36), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # In the order the firing loop claims them (fire_at, then id), so a batch of the due is
    # read straight off the index even when thousands share one instant (a holiday's backlog
    # all due at the next working day's 08:30): without id, every batch sorted all of them.
    # Only pending rows: fired and cancelled ones, the years of history, are never claimed.
    # Being partial also keeps it out of reach of statements that bind the state as a
    # parameter (see IS_PENDING).
    Index(
        "ix_deadlines_pending_due",
        "fire_at",
        "id",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index("ix_deadlines_complaint_state", "complaint_id", "state"),
    # What fired lately, for the operators' summary (api.py), without reading the history.
    Index(
        "ix_deadlines_fired_at",
        "fired_at",
        postgresql_where=text("state = 'fired'"),
        sqlite_where=text("state = 'fired'"),
    ),
)

# The newest clock scheduled per complaint, so an old replay cannot roll deadlines back.
complaint_clocks = Table(
    "complaint_clocks",
    metadata,
    Column("complaint_id", String(64), primary_key=True),
    Column("clock", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

PENDING = DeadlineState.PENDING.value
# "Pending" written into a statement's text rather than bound as a parameter, for the reads of
# the pending rows in time order: a database uses a partial index only where the statement
# itself proves the index's condition, and a plan PostgreSQL keeps for a prepared statement
# cannot look at a parameter's value. Statements that find rows by complaint or by id keep
# the state a parameter, which keeps ix_deadlines_pending_due out of their plans: with it in
# reach, the plan PostgreSQL cached while the table was still empty scanned every pending
# row for each complaint it cancelled (docs/performance.md, change 36).
IS_PENDING = deadlines.c.state == literal_column(f"'{PENDING}'")
IS_FIRED = deadlines.c.state == literal_column(f"'{DeadlineState.FIRED.value}'")


# Fixed statements, the values as parameters: compiled once, not rebuilt for every complaint.
_HIGHEST_CLOCK = select(complaint_clocks.c.clock).where(
    complaint_clocks.c.complaint_id == bindparam("complaint_id")
)
_ADD_DEADLINES = insert(deadlines)


async def highest_clock(connection: AsyncConnection, complaint_id: str) -> int | None:
    value = await connection.scalar(_HIGHEST_CLOCK, {"complaint_id": complaint_id})
    return None if value is None else int(value)


_ADD_CLOCK = insert(complaint_clocks)
_SET_CLOCK = update(complaint_clocks).where(
    complaint_clocks.c.complaint_id == bindparam("clock_of")
)


async def record_clock(
    connection: AsyncConnection, complaint_id: str, clock: int, now: datetime, *, first: bool
) -> None:
    """Keep ``clock`` as the complaint's highest; ``first`` when this transaction found none
    (``highest_clock``), which saves the update that would change nothing."""
    if not first:
        result = await connection.execute(
            _SET_CLOCK, {"clock_of": complaint_id, "clock": clock, "updated_at": now}
        )
        if result.rowcount:
            return
    await connection.execute(
        _ADD_CLOCK, {"complaint_id": complaint_id, "clock": clock, "updated_at": now}
    )


def deadline_row(owner: ComplaintClock, deadline: PlannedDeadline, now: datetime) -> dict[str, Any]:
    """The row a planned deadline is stored as: pending, owned by the complaint's clock."""
    return {
        "complaint_id": owner.complaint_id,
        "clock": owner.clock,
        "level": owner.level.value,
        "stage": deadline.stage.value,
        "kind": deadline.kind.value,
        "fire_at": deadline.fire_at,
        "due_at": deadline.due_at,
        "category": owner.category,
        "urgency": owner.urgency,
        "state": PENDING,
        "fired_at": None,
        "started_at": owner.started_at,
        "correlation_id": str(owner.correlation_id),
        "created_at": now,
    }


async def add_deadlines(
    connection: AsyncConnection,
    owner: ComplaintClock,
    planned: Sequence[PlannedDeadline],
    now: datetime,
) -> None:
    if not planned:
        return
    await connection.execute(
        _ADD_DEADLINES, [deadline_row(owner, deadline, now) for deadline in planned]
    )


async def cancel_pending(
    connection: AsyncConnection,
    complaint_id: str,
    *,
    stage: Stage | None = None,
    up_to_clock: int | None = None,
    started_by: datetime | None = None,
) -> int:
    """Cancel a complaint's pending rows: optionally only one stage's, only up to a clock
    number, or only of clocks that had started by ``started_by``."""
    statement = _cancelling(stage is not None, up_to_clock is not None, started_by is not None)
    parameters: dict[str, Any] = {"of_complaint": complaint_id}
    if stage is not None:
        parameters["of_stage"] = stage.value
    if up_to_clock is not None:
        parameters["up_to_clock"] = up_to_clock
    if started_by is not None:
        parameters["started_by"] = started_by
    result = await connection.execute(statement, parameters)
    return int(result.rowcount)


@cache
def _cancelling(by_stage: bool, by_clock: bool, by_start: bool) -> Update:
    """The cancelling statement with the filters asked for, built once for each set of them:
    one runs for every assigned complaint, and building it cost more than running it."""
    query = update(deadlines).where(
        deadlines.c.complaint_id == bindparam("of_complaint"), deadlines.c.state == PENDING
    )
    if by_stage:
        query = query.where(deadlines.c.stage == bindparam("of_stage"))
    if by_clock:
        query = query.where(deadlines.c.clock <= bindparam("up_to_clock"))
    if by_start:
        query = query.where(deadlines.c.started_at <= bindparam("started_by"))
    return query.values(state=DeadlineState.CANCELLED.value)


async def has_pending_repeat(connection: AsyncConnection, complaint_id: str, stage: Stage) -> bool:
    found = await connection.scalar(
        select(deadlines.c.id)
        .where(
            deadlines.c.complaint_id == complaint_id,
            deadlines.c.state == PENDING,
            deadlines.c.stage == stage.value,
            deadlines.c.kind == DeadlineKind.REPEAT.value,
        )
        .limit(1)
    )
    return found is not None


async def clock_of(
    connection: AsyncConnection, complaint_id: str, clock: int
) -> ComplaintClock | None:
    """What was recorded when a complaint's clock number ``clock`` started, if it ever did."""
    row = (
        await connection.execute(
            select(deadlines)
            .where(deadlines.c.complaint_id == complaint_id, deadlines.c.clock == clock)
            .order_by(deadlines.c.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else owner_of(row)


def owner_of(row: Row[Any]) -> ComplaintClock:
    return ComplaintClock(
        complaint_id=row.complaint_id,
        clock=row.clock,
        level=Level(row.level),
        category=row.category,
        urgency=row.urgency,
        started_at=row.started_at,
        correlation_id=UUID(row.correlation_id),
    )


# Pending rows whose time has come, oldest first (id breaks ties in planning order).
_DUE = (
    select(deadlines.c.id)
    .where(IS_PENDING, deadlines.c.fire_at <= bindparam("now"))
    .order_by(deadlines.c.fire_at, deadlines.c.id)
    .limit(bindparam("limit"))
)


async def due_ids(connection: AsyncConnection, now: datetime, limit: int) -> list[int]:
    """Pending rows whose time has come, oldest first."""
    rows = await connection.execute(_DUE, {"now": now, "limit": limit})
    return [int(row.id) for row in rows]


async def claim(connection: AsyncConnection, deadline_id: int, now: datetime) -> Row[Any] | None:
    """Mark one pending row fired; returns it only if this transaction is the one that did.

    On PostgreSQL a row another replica is firing is skipped rather than waited for. SQLite has
    no row locks (BEGIN IMMEDIATE already serialises writers), so the guarded UPDATE alone is
    the fence there; it is the fence on PostgreSQL too, should the lock be skipped.
    """
    query = select(deadlines).where(deadlines.c.id == deadline_id, deadlines.c.state == PENDING)
    if connection.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    result = await connection.execute(
        update(deadlines)
        .where(deadlines.c.id == deadline_id, deadlines.c.state == PENDING)
        .values(state=DeadlineState.FIRED.value, fired_at=now)
    )
    return row if result.rowcount == 1 else None


# Rows another replica holds are skipped, not waited for (SQLite has no row locks).
_DUE_SKIP_LOCKED = _DUE.with_for_update(skip_locked=True)
_FIRED = {"state": DeadlineState.FIRED.value, "fired_at": bindparam("fired_at_value")}
# On PostgreSQL the claimed ids travel as one array. Bound as a list of 500 parameters, the
# statement's text changed with the batch's size and PostgreSQL's plan cache, after five runs,
# now and then settled on a generic plan that compared every pending row with the whole list:
# the drain of 100,000 then took about a minute, four times as long (docs/performance.md,
# change 16).
_BATCH_PG, _BATCH_SQLITE = one_of_ids(deadlines.c.id)
_FLIP_PG = (
    update(deadlines)
    .where(_BATCH_PG, deadlines.c.state == PENDING)
    .values(_FIRED)
    .returning(*deadlines.c)
)
_FLIP_SQLITE = (
    update(deadlines)
    .where(_BATCH_SQLITE, deadlines.c.state == PENDING)
    .values(_FIRED)
    .returning(*deadlines.c)
)


async def claim_due(
    connection: AsyncConnection, now: datetime, limit: int, fired_at: datetime
) -> list[Row[Any]]:
    """Mark up to ``limit`` due rows fired at once, oldest first; returns those this
    transaction flipped. The same fence as ``claim``, for a whole batch: rows another replica
    holds are skipped (PostgreSQL), and only rows still pending are flipped and returned."""
    sqlite = connection.dialect.name == "sqlite"
    due = _DUE if sqlite else _DUE_SKIP_LOCKED
    ids = [int(row.id) for row in await connection.execute(due, {"now": now, "limit": limit})]
    if not ids:
        return []
    flipped = await connection.execute(
        _FLIP_SQLITE if sqlite else _FLIP_PG, {"ids": ids, "fired_at_value": fired_at}
    )
    return sorted(flipped, key=lambda row: (row.fire_at, row.id))


async def rows_of(connection: AsyncConnection, complaint_id: str, limit: int) -> list[Row[Any]]:
    rows = await connection.execute(
        select(deadlines)
        .where(deadlines.c.complaint_id == complaint_id)
        .order_by(deadlines.c.fire_at, deadlines.c.id)
        .limit(limit)
    )
    return list(rows)


async def pending_counts(connection: AsyncConnection) -> list[Row[Any]]:
    rows = await connection.execute(
        select(deadlines.c.level, deadlines.c.stage, func.count().label("count"))
        .where(IS_PENDING)
        .group_by(deadlines.c.level, deadlines.c.stage)
        .order_by(deadlines.c.level, deadlines.c.stage)
    )
    return list(rows)


async def next_fire_at(connection: AsyncConnection) -> datetime | None:
    # Through the column type, so the answer comes back aware like every other read.
    row = (
        await connection.execute(
            select(deadlines.c.fire_at).where(IS_PENDING).order_by(deadlines.c.fire_at).limit(1)
        )
    ).first()
    return None if row is None else row.fire_at


async def count_pending_before(connection: AsyncConnection, instant: datetime) -> int:
    value = await connection.scalar(
        select(func.count())
        .select_from(deadlines)
        .where(IS_PENDING, deadlines.c.fire_at <= instant)
    )
    return int(value or 0)


async def count_fired_since(connection: AsyncConnection, instant: datetime) -> int:
    value = await connection.scalar(
        select(func.count()).select_from(deadlines).where(IS_FIRED, deadlines.c.fired_at >= instant)
    )
    return int(value or 0)


# Every service database also holds the outbox and the processed-event table.
outbox_tables(metadata)
