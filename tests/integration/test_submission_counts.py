"""The submission counters a batch of complaints takes, on PostgreSQL and on SQLite: each
counter's new total comes back, and a batch of any size costs one statement."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.submission_limits import count_many
from tests.conftest import MONDAY_MORNING
from tests.integration.statements import statements_sent

pytestmark = pytest.mark.integration


async def test_a_batch_of_counters_is_one_statement_and_each_total_comes_back(
    intake_engine: AsyncEngine,
) -> None:
    hour = MONDAY_MORNING
    next_hour = hour + timedelta(hours=1)
    with statements_sent(intake_engine) as sent:
        async with intake_engine.begin() as connection:
            first = await count_many(
                connection, {("ip:a", hour): 2, ("phone:b", hour): 1, ("ip:a", next_hour): 1}
            )
        # Given in another order, with a counter of its own: totals still by counter.
        batch = {(f"ip:{n}", hour): 1 for n in range(40)}
        batch.update({("phone:b", hour): 3, ("ip:a", hour): 1})
        async with intake_engine.begin() as connection:
            second = await count_many(connection, batch)
    statements = [statement for statement, _ in sent if "submission_counts" in statement]
    assert first == {("ip:a", hour): 2, ("phone:b", hour): 1, ("ip:a", next_hour): 1}
    assert second[("phone:b", hour)] == 4
    assert second[("ip:a", hour)] == 3
    assert all(second[(f"ip:{n}", hour)] == 1 for n in range(40))
    assert list(second) == list(batch)
    assert len(statements) == 2
