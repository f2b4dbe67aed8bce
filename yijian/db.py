"""Async database engines and the transaction boundary every service writes through.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed transaction survives a
power cut: a 201 to a citizen means the complaint is on disk. PostgreSQL needs no tuning here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    TypeDecorator,
    any_,
    bindparam,
    event,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.elements import ColumnElement

from yijian.sqlite_driver import WriteTurns, one_trip_driver


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# SQLSTATE classes that say the server is not there for us right now, whatever we asked:
# 08 connection exception, 53 insufficient resources (too many connections), 57P operator
# intervention (shutting down, starting up).
_UNAVAILABLE_STATES = ("08", "53", "57P")
# SQLite's transient refusals; its other OperationalErrors (no such table…) are our mistakes.
_SQLITE_BUSY = ("database is locked", "database is busy", "unable to open database")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached, not that the statement or
    the data was wrong: the same work will succeed once it is back.

    Callers answer 503 for it, or retry without counting it against an event. asyncpg raises
    the socket's own error (``ConnectionRefusedError``, ``TimeoutError``) when no connection
    can be opened at all, before SQLAlchemy could wrap it.
    """
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    if isinstance(error, OperationalError) and "sqlite" in type(error.orig).__module__:
        return any(words in str(error.orig) for words in _SQLITE_BUSY)
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated or isinstance(error, InterfaceError | OperationalError):
        return True
    state = getattr(error.orig, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


# How long a writer waits for SQLite's write lock before "database is locked".
BUSY_TIMEOUT_S = 30


def create_engine(url: str) -> AsyncEngine:
    """An engine for one service's database, with the durability settings we rely on."""
    if not is_sqlite(url):
        engine = create_async_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
        event.listen(engine.sync_engine, "checkout", _hand_out_only_open)
        return engine
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's message must not carry what a citizen typed into
    # the logs or the dead-letter store.
    engine = create_async_engine(
        url,
        module=one_trip_driver(),
        # The driver runs a write transaction's statements in the event loop's thread, the
        # connection being made (and committed) in aiosqlite's: it is never used by both at
        # once (yijian/sqlite_driver.py).
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        hide_parameters=True,
    )
    turns = WriteTurns(BUSY_TIMEOUT_S)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy issue BEGIN itself, so a transaction really spans every statement.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        if connection.get_execution_options().get(_READING):
            # A reader in WAL mode sees a snapshot and blocks no writer: no lock to take.
            connection.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front, so two writers queue instead of failing
        # half-way with "database is locked" on upgrade from a read lock; and this process's
        # writers queue for their turn before they ask SQLite (yijian/sqlite_driver.py).
        turns.take(connection.connection.dbapi_connection)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            connection.connection.dbapi_connection.rollback()  # gives the turn back
            raise

    return engine


def _hand_out_only_open(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Before the pool hands out a PostgreSQL connection: one the server closed (a restart,
    an idle timeout) is thrown away and another opened in its place.

    The server's close reaches asyncpg as soon as the event loop reads the socket, so this
    asks nothing of the server. SQLAlchemy's ``pool_pre_ping`` asked every time: three
    round trips on asyncpg (``BEGIN``, ``;``, ``ROLLBACK``) for each connection taken, 2.3 a
    complaint across the services. A connection that died without a word (a cable pulled)
    fails at its first statement instead, which every caller treats as the database being
    away: a 503 to retry, or an event that waits.
    """
    if dbapi_connection._connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def one_of_ids(column: Column[int]) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """``column`` is one of a batch's ids, the ``ids`` parameter: as one array on PostgreSQL,
    so the statement's text is the same for any batch and the plan cache keeps one plan (a
    list of parameters once let it settle on a plan that scanned every row), and as a list
    on SQLite. Returns the condition for each; build a statement with each, and run the one
    for the connection's dialect."""
    on_postgresql = column == any_(bindparam("ids", type_=postgresql.ARRAY(Integer)))
    return on_postgresql, column.in_(bindparam("ids", expanding=True))


_READING = "yijian_reading"


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only. On SQLite its transaction takes no write lock, so a
    relay or a page polling the database never holds up a citizen's submission (a write
    through it could meet "database is locked": write in a transaction). On PostgreSQL it is
    an ordinary connection."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execution_options(**{_READING: True})
        yield connection


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create what is missing. Versioned migrations arrive with the production transport."""
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that comes back timezone-aware in UTC on SQLite as on PostgreSQL.

    SQLite keeps no zone; without this a stored deadline would come back naive and compare
    wrongly with the clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
