"""A batch of complaints' rows, written in one statement on PostgreSQL.

A group commit batch (services/intake/submission.py) writes six tables: complaints, their
contacts, the citizen's view, the timeline, the Idempotency-Keys and the outbox (the
complaints' events); and it adds to its senders' counters (submission_limits.py). One
multi-row statement a table was six round trips to PostgreSQL, and each waited for a turn
of an event loop busy with other requests' HTTP work: at 1,000 complaints a second, about a
millisecond a turn, so most of a batch's 10 ms went in waiting for them (docs/performance.md,
changes 35 and 37). PostgreSQL takes them all in one statement: each table's rows go as one
array a column, ``unnest`` turns them back into rows, in order, the inserts are
data-modifying ``WITH`` parts, and the counters' upsert is the statement itself, returning
each counter's new total. The statement is the same for every batch size, so it is compiled
once. PostgreSQL checks the foreign keys at the statement's end, once every part has
inserted.

SQLite cannot modify data in ``WITH``, and gains nothing from it: inside a write transaction
its statements run in the event loop's thread with no trip to wait for (yijian/sqlite_driver.py).
It keeps a multi-row statement a table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from services.intake.store import (
    complaint_views,
    complaints,
    contacts,
    idempotency_keys,
    metadata,
    timeline,
)
from services.intake.submission_limits import (
    COUNT_MANY_PG,
    Slot,
    count_arrays,
    count_many,
    totals_of,
)

Rows = Mapping[str, Sequence[Mapping[str, Any]]]

# The columns each table's rows give, in the order the batch writes the tables; the others
# take their defaults (the view's assignee is not known yet, the timeline's id is a serial).
COLUMNS: dict[Table, tuple[str, ...]] = {
    complaints: tuple(column.name for column in complaints.columns),
    contacts: tuple(column.name for column in contacts.columns),
    complaint_views: ("complaint_id", "status", "clock", "deadline_clock", "overdue", "updated_at"),
    timeline: ("complaint_id", "at", "kind", "text"),
    idempotency_keys: tuple(column.name for column in idempotency_keys.columns),
    # The batch's events (yijian.bus.outbox.Transaction.outbox_rows), oldest first.
    metadata.tables["outbox"]: ("topic", "envelope", "created_at"),
}


async def insert_rows(
    connection: AsyncConnection, rows: Rows, counts: Mapping[Slot, int] | None = None
) -> dict[Slot, int]:
    """Insert a batch's rows, given by table name (a table may have none), and add
    ``counts`` to the senders' counters; returns each of those counters' new total."""
    for table, columns in COLUMNS.items():
        given = rows.get(table.name, ())
        if given and set(given[0]) != set(columns):
            raise ValueError(f"{table.name} rows give {sorted(given[0])}, not {sorted(columns)}")
    counts = counts or {}
    if connection.dialect.name == "postgresql":
        returned = await connection.execute(_all_in_one(), _as_arrays(rows) | count_arrays(counts))
        return totals_of(returned, counts)
    totals = await count_many(connection, counts) if counts else {}
    for table in COLUMNS:
        if rows.get(table.name):
            await connection.execute(_one_table(table), list(rows[table.name]))
    return totals


def _as_arrays(rows: Rows) -> dict[str, list[Any]]:
    return {
        _array_name(table, column): [row[column] for row in rows.get(table.name, ())]
        for table, columns in COLUMNS.items()
        for column in columns
    }


def _array_name(table: Table, column: str) -> str:
    return f"{table.name}__{column}"


@cache
def _one_table(table: Table) -> Insert:
    return insert(table)


@cache
def _all_in_one() -> ReturningInsert[str, datetime, int]:
    return COUNT_MANY_PG.add_cte(
        *(_from_arrays(table).cte(f"new_{table.name}") for table in COLUMNS)
    )


def _from_arrays(table: Table) -> Insert:
    """``INSERT INTO table (columns) SELECT … FROM unnest(one array a column)``."""
    columns = COLUMNS[table]
    arrays = [
        bindparam(_array_name(table, column), type_=ARRAY(table.c[column].type))
        for column in columns
    ]
    given = func.unnest(*arrays).table_valued(*columns).render_derived()
    # Columns left out take their server defaults; the Python-side ones would need parameters.
    return insert(table).from_select(
        list(columns), select(*(given.c[c] for c in columns)), include_defaults=False
    )
