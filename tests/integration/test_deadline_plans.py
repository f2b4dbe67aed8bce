"""The plans the databases choose for escalation's two hot statements, on the tables its
migrations build: cancelling a complaint's pending deadlines finds them by complaint, and the
firing loop reads the due off the partial index of pending deadlines.

On PostgreSQL the plan checked is the generic one, the plan a prepared statement keeps once
PostgreSQL stops planning it for each call, made here while the table is empty, as a
service's first statements are. Such a plan used to read the cancel through the index of
pending deadlines in time order, and then scanned every pending row for each complaint it
cancelled (docs/performance.md, change 36).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.escalation import store
from services.escalation.app import MIGRATIONS
from tests.conftest import MONDAY_MORNING
from tests.integration.statements import Sent, statements_sent
from yijian.db import create_engine
from yijian.migrate import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
async def escalation_engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    """Escalation's tables as its migrations build them, empty."""
    engine = create_engine(store_url)
    await migrate(engine, store.metadata, MIGRATIONS)
    yield engine
    await engine.dispose()


async def first_statement(
    engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[object]]
) -> Sent:
    """The first statement ``work`` sends, as the driver receives it (past the BEGIN that
    yijian's SQLite connections send for a write)."""
    with statements_sent(engine) as sent:
        async with engine.connect() as connection:
            await work(connection)
    return next(sent_ for sent_ in sent if not sent_[0].startswith("BEGIN"))


def as_literal(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, str) and "'" not in value:
        return f"'{value}'"
    raise TypeError(f"no literal for {value!r} in this test")


async def plan_of(engine: AsyncEngine, sent: Sent) -> str:
    statement, parameters = sent
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = await connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", tuple(parameters)
            )
            return "\n".join(str(row[-1]) for row in rows)
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.execute(f"PREPARE probe AS {statement}")
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        arguments = ", ".join(as_literal(value) for value in parameters)
        rows = await driver.fetch(f"EXPLAIN EXECUTE probe({arguments})")
        await driver.execute("DEALLOCATE probe")
        await driver.execute("RESET plan_cache_mode")
        return "\n".join(str(row[0]) for row in rows)


async def test_cancelling_finds_a_complaints_deadlines_by_complaint(
    escalation_engine: AsyncEngine,
) -> None:
    sent = await first_statement(
        escalation_engine, lambda connection: store.cancel_pending(connection, "C-1")
    )
    plan = await plan_of(escalation_engine, sent)
    assert "ix_deadlines_complaint_state" in plan, plan
    assert "ix_deadlines_pending_due" not in plan, plan
    if escalation_engine.dialect.name == "postgresql":
        # Both columns looked up in the index; nothing read and then thrown away.
        assert "Index Cond: (((complaint_id)::text = ($" in plan, plan
        assert "Filter" not in plan, plan


async def test_the_firing_loop_reads_the_due_off_the_index_of_pending_deadlines(
    escalation_engine: AsyncEngine,
) -> None:
    sent = await first_statement(
        escalation_engine,
        lambda connection: store.claim_due(connection, MONDAY_MORNING, 500, MONDAY_MORNING),
    )
    plan = await plan_of(escalation_engine, sent)
    assert "ix_deadlines_pending_due" in plan, plan
    # In time order straight from the index: no sort of every due row.
    assert "Sort" not in plan, plan
    assert "TEMP B-TREE" not in plan, plan
