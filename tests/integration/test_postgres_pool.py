"""A PostgreSQL connection the server closed is never handed out: the next caller gets a
fresh one, and no round trip is spent checking connections that are fine."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.integration.conftest import NewDatabase
from tests.integration.statements import statements_sent
from yijian.db import create_engine

pytestmark = pytest.mark.integration


async def test_a_connection_the_server_closed_is_replaced_without_asking_the_others(
    new_postgres_database: NewDatabase,
) -> None:
    url = await new_postgres_database()
    engine, admin = create_engine(url), create_engine(url)
    try:
        async with engine.connect() as connection:
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
        assert driver is not None
        async with admin.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(500):  # the server's goodbye reaches asyncpg when the loop reads it
            if driver.is_closed():
                break
            await asyncio.sleep(0.01)
        with statements_sent(engine) as sent:
            async with engine.connect() as connection:
                answered = await connection.scalar(text("SELECT pg_backend_pid()"))
            async with engine.connect() as connection:
                await connection.scalar(text("SELECT 1"))
    finally:
        await engine.dispose()
        await admin.dispose()
    assert answered != pid
    # The callers' own statements, no more.
    assert [statement for statement, _ in sent] == ["SELECT pg_backend_pid()", "SELECT 1"]
