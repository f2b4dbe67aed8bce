"""The embedded driver runs a read in one trip to its connection's thread and a write
transaction's statements in the event loop's thread, and behaves as SQLAlchemy's own
aiosqlite adapter: rows, counts, ids and errors. A process's
writers take turns for the write lock instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from yijian import db
from yijian.db import create_engine, create_tables

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(20), nullable=False, unique=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    created = create_engine(f"sqlite+aiosqlite:///{tmp_path}/notes.db")
    await create_tables(created, metadata)
    yield created
    await created.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions handed to connections' threads, by name."""
    handed: list[str] = []
    original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fn, "__name__", repr(fn))
        handed.append(f"{name} {args[1]}" if name == "_run" and "BEGIN" in args[1] else name)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_a_write_transaction_trips_to_begin_and_commit_only(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as connection:
        assert trips == ["_run BEGIN IMMEDIATE"]
        trips.clear()
        await connection.execute(insert(notes), [{"text": "a"}, {"text": "b"}])
        added = await connection.execute(insert(notes).values(text="c"))
        rows = (await connection.execute(select(notes.c.text).order_by(notes.c.id))).all()
        changed = await connection.execute(update(notes).values(text=notes.c.text + "!"))
        assert trips == []  # run in the event loop's thread, the write lock held
    assert trips == ["commit"]
    assert added.inserted_primary_key == (3,)
    assert [row.text for row in rows] == ["a", "b", "c"]
    assert changed.rowcount == 3


async def test_a_read_outside_a_write_transaction_is_one_trip(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(notes), [{"text": "a"}, {"text": "b"}])
    trips.clear()
    async with db.reading(engine) as connection:
        rows = (await connection.execute(select(notes.c.text).order_by(notes.c.id))).all()
        count = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar()
    # A long report read here would hold up nothing else in the process.
    assert trips == ["_run BEGIN", "_run", "_run", "rollback"]
    assert [row.text for row in rows] == ["a", "b"]
    assert count == 2


async def test_a_rollback_is_a_trip_only_when_there_is_something_to_undo(
    engine: AsyncEngine, trips: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(notes).values(text="a"))
        trips.clear()
        await connection.rollback()
    async with engine.connect() as connection:
        assert (await connection.execute(select(notes))).all() == []
    assert trips[0] == "rollback"


async def test_results_and_errors_are_as_before(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(notes).values(text="a"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(insert(notes).values(text="b"))
            await connection.execute(insert(notes).values(text="a"))
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT id, text FROM notes"))
        assert list(result.keys()) == ["id", "text"]
        assert result.all() == [(1, "a")]  # the failed transaction left nothing
        assert (await connection.execute(text("SELECT 1 WHERE 0"))).first() is None


async def test_a_writer_asks_sqlite_only_when_the_one_before_has_committed(
    engine: AsyncEngine, trips: list[str]
) -> None:
    first_began, first_may_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with engine.begin() as connection:
            await connection.execute(insert(notes).values(text="first"))
            first_began.set()
            await first_may_commit.wait()

    async def second() -> None:
        await first_began.wait()
        async with engine.begin() as connection:
            await connection.execute(insert(notes).values(text="second"))

    async with engine.connect(), engine.connect():
        pass  # two connections in the pool: neither writer waits for one to open
    trips.clear()
    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_began.wait()
    for _ in range(20):  # let the second writer get as far as it can
        await asyncio.sleep(0)
    waiting = list(trips)
    first_may_commit.set()
    await asyncio.gather(*tasks)
    begun_or_done = [trip for trip in trips if trip in {"_run BEGIN IMMEDIATE", "commit"}]
    assert waiting.count("_run BEGIN IMMEDIATE") == 1  # the second has not asked SQLite
    assert begun_or_done == ["_run BEGIN IMMEDIATE", "commit"] * 2


async def test_a_turn_not_given_in_time_is_a_locked_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/notes.db")
    await create_tables(engine, metadata)
    try:
        async with engine.begin() as holder:
            await holder.execute(insert(notes).values(text="held"))
            with pytest.raises(OperationalError, match="database is locked"):
                async with engine.begin() as connection:
                    await connection.execute(insert(notes).values(text="late"))
        async with engine.begin() as connection:  # the turn came back after the failure
            await connection.execute(insert(notes).values(text="later"))
    finally:
        await engine.dispose()
