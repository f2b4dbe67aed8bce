"""The embedded driver runs each statement in one trip to its connection's thread, and
behaves as SQLAlchemy's own aiosqlite adapter: rows, counts, ids and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

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
        handed.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return handed


async def test_a_statement_is_one_trip(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.begin() as connection:
        trips.clear()  # BEGIN was one trip too; count the statements alone
        await connection.execute(insert(notes), [{"text": "a"}, {"text": "b"}])
        added = await connection.execute(insert(notes).values(text="c"))
        rows = (await connection.execute(select(notes.c.text).order_by(notes.c.id))).all()
        changed = await connection.execute(update(notes).values(text=notes.c.text + "!"))
    assert trips == ["_run_many", "_run", "_run", "_run", "commit"]
    assert added.inserted_primary_key == (3,)
    assert [row.text for row in rows] == ["a", "b", "c"]
    assert changed.rowcount == 3


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
