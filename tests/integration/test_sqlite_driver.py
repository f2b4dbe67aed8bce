"""The embedded driver runs a read in one trip to its connection's thread and a write
transaction's statements in the event loop's thread, and behaves as SQLAlchemy's own
aiosqlite adapter: rows, counts, ids and errors. A process's writers take turns for the
write lock instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    text,
    update,
)
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


@dataclass
class Seen:
    """What SQLite ran, as its first words, and where: "here" in the event loop's thread,
    "away" in a connection's own."""

    loop_thread: int = field(default_factory=threading.get_ident)
    statements: list[tuple[str, str]] = field(default_factory=list)

    def note(self, sql: str) -> None:
        words = " ".join(sql.split()[:2]) if sql.startswith("BEGIN") else sql.split()[0]
        where = "here" if threading.get_ident() == self.loop_thread else "away"
        self.statements.append((words, where))

    def without_pragmas(self) -> list[tuple[str, str]]:
        return [seen for seen in self.statements if seen[0] != "PRAGMA"]


@pytest.fixture
async def seen(engine: AsyncEngine) -> Seen:
    watched = Seen()

    @event.listens_for(engine.sync_engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection._connection._conn.set_trace_callback(watched.note)

    await engine.dispose()  # the connections opened before were not traced
    return watched


async def test_a_write_transaction_runs_here_but_for_its_commit(
    engine: AsyncEngine, seen: Seen
) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(notes), [{"text": "a"}, {"text": "b"}])
        added = await connection.execute(insert(notes).values(text="c"))
        rows = (await connection.execute(select(notes.c.text).order_by(notes.c.id))).all()
        changed = await connection.execute(update(notes).values(text=notes.c.text + "!"))
    # The write lock held, nothing waits: only the commit (an fsync) goes to the thread.
    assert seen.without_pragmas() == [
        ("BEGIN IMMEDIATE", "here"),
        ("INSERT", "here"),
        ("INSERT", "here"),
        ("INSERT", "here"),
        ("SELECT", "here"),
        ("UPDATE", "here"),
        ("COMMIT", "away"),
    ]
    assert added.inserted_primary_key == (3,)
    assert [row.text for row in rows] == ["a", "b", "c"]
    assert changed.rowcount == 3


async def test_a_read_runs_in_the_connections_thread(engine: AsyncEngine, seen: Seen) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(notes), [{"text": "a"}, {"text": "b"}])
    seen.statements.clear()
    async with db.reading(engine) as connection:
        rows = (await connection.execute(select(notes.c.text).order_by(notes.c.id))).all()
        count = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar()
    # A long report read would hold up nothing else in the process.
    assert seen.without_pragmas() == [
        ("BEGIN", "here"),
        ("SELECT", "away"),
        ("SELECT", "away"),
        ("ROLLBACK", "here"),
    ]
    assert [row.text for row in rows] == ["a", "b"]
    assert count == 2


async def test_a_rollback_undoes_here_and_only_when_there_is_something_to_undo(
    engine: AsyncEngine, seen: Seen
) -> None:
    async with engine.connect() as connection:
        await connection.execute(insert(notes).values(text="a"))
        seen.statements.clear()
        await connection.rollback()
    async with db.reading(engine) as connection:
        assert (await connection.execute(select(notes))).all() == []
    # Not again as the pool took the connection back: the next is the reader's own.
    assert seen.without_pragmas() == [
        ("ROLLBACK", "here"),
        ("BEGIN", "here"),
        ("SELECT", "away"),
        ("ROLLBACK", "here"),
    ]


async def test_a_writer_waits_in_the_thread_while_another_process_holds_the_lock(
    engine: AsyncEngine, seen: Seen, tmp_path: Path
) -> None:
    async with engine.connect():
        pass  # opened before: opening a connection may wait for the lock too
    other = sqlite3.connect(tmp_path / "notes.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer
    try:
        writing = asyncio.create_task(_insert(engine, "mine"))
        for _ in range(50):  # the loop runs on while the writer waits
            await asyncio.sleep(0)
        assert not writing.done()
        other.execute("INSERT INTO notes (text) VALUES ('theirs')")
        other.execute("COMMIT")
        await writing
    finally:
        other.close()
    begins = [where for words, where in seen.statements if words == "BEGIN IMMEDIATE"]
    assert begins == ["here", "away"]  # tried without waiting, then waited in the thread
    async with engine.connect() as connection:
        texts = (await connection.execute(select(notes.c.text).order_by(notes.c.id))).scalars()
        assert list(texts) == ["theirs", "mine"]


async def _insert(engine: AsyncEngine, note: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(notes).values(text=note))


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
    engine: AsyncEngine, seen: Seen
) -> None:
    first_began, first_may_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with engine.begin() as connection:
            await connection.execute(insert(notes).values(text="first"))
            first_began.set()
            await first_may_commit.wait()

    async def second() -> None:
        await first_began.wait()
        await _insert(engine, "second")

    async with engine.connect(), engine.connect():
        pass  # two connections in the pool: neither writer waits for one to open
    seen.statements.clear()
    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_began.wait()
    for _ in range(20):  # let the second writer get as far as it can
        await asyncio.sleep(0)
    waiting = [words for words, _ in seen.without_pragmas()]
    first_may_commit.set()
    await asyncio.gather(*tasks)
    begun_or_done = [
        words for words, _ in seen.statements if words in {"BEGIN IMMEDIATE", "COMMIT"}
    ]
    assert waiting.count("BEGIN IMMEDIATE") == 1  # the second has not asked SQLite
    assert begun_or_done == ["BEGIN IMMEDIATE", "COMMIT"] * 2


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
