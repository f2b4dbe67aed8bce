"""The submission counters a batch of complaints takes, on PostgreSQL and on SQLite: each
counter's new total comes back, and a batch of any size costs one statement."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.store import metadata
from services.intake.submission_limits import count_many
from tests.conftest import MONDAY_MORNING
from tests.integration.conftest import NewDatabase
from yijian.db import create_engine, create_tables

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(
    request: pytest.FixtureRequest, new_postgres_database: NewDatabase, tmp_path: Path
) -> AsyncEngine:
    if request.param == "postgresql":
        url = await new_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/intake.db"
    created = create_engine(url)
    await create_tables(created, metadata)
    return created


async def test_a_batch_of_counters_is_one_statement_and_each_total_comes_back(
    engine: AsyncEngine,
) -> None:
    hour = MONDAY_MORNING
    next_hour = hour + timedelta(hours=1)
    statements: list[str] = []

    def note(connection: object, cursor: object, statement: str, *rest: object) -> None:
        if "submission_counts" in statement:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        async with engine.begin() as connection:
            first = await count_many(
                connection, {("ip:a", hour): 2, ("phone:b", hour): 1, ("ip:a", next_hour): 1}
            )
        # Given in another order, with a counter of its own: totals still by counter.
        batch = {(f"ip:{n}", hour): 1 for n in range(40)}
        batch.update({("phone:b", hour): 3, ("ip:a", hour): 1})
        async with engine.begin() as connection:
            second = await count_many(connection, batch)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)
        await engine.dispose()
    assert first == {("ip:a", hour): 2, ("phone:b", hour): 1, ("ip:a", next_hour): 1}
    assert second[("phone:b", hour)] == 4
    assert second[("ip:a", hour)] == 3
    assert all(second[(f"ip:{n}", hour)] == 1 for n in range(40))
    assert list(second) == list(batch)
    assert len(statements) == 2
