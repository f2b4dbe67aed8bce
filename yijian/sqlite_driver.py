"""The embedded (SQLite) driver: a read in one trip to its connection's thread, a write
transaction's statements in the event loop's thread.

aiosqlite runs every connection in a thread of its own and hands it each call. SQLAlchemy's
adapter makes one call to open a cursor, one to execute, one to fetch the rows and one to
close it, so every statement crossed between threads three or four times, each crossing a
wake-up of the other thread and of the event loop. In ``yijian run`` those wake-ups were
the event loop's largest cost (``perf``: about a quarter of its thread's cycles in waking
threads; docs/performance.md, change 20). Here a statement's whole life, cursor to close, is
one function run in the connection's thread; its rows, description and counts come back
together. Transactions and errors are SQLite's as before; one engine's writers take turns
in the process (``WriteTurns``) before they ask SQLite for its write lock.

Inside a write transaction a statement needs no trip at all: it runs in the event loop's
thread (``OneTripCursor._here``). The transaction holds SQLite's write lock, so nothing
there waits for another connection, and it holds every other writer up, so its statements
are short by design (a row by its key, a batch by its ids). Its ``BEGIN IMMEDIATE`` is tried
there without waiting, and so are a reader's ``BEGIN`` and a rollback, which take no lock.
What may wait stays in the thread: ``BEGIN IMMEDIATE`` while another process holds the lock,
the commit (an fsync), and every read outside a write transaction (a long report never
stalls the loop). On a virtual machine each trip was two context switches, which with the
wake-ups cost the embedded process about a quarter of its CPU (``perf``,
docs/performance.md, change 29).

No driver on PyPI does this for SQLAlchemy's asyncio extension, and the adapter is small: it
keeps SQLAlchemy's ``aiosqlite`` dialect and changes only the cursor it uses. It relies on
aiosqlite's ``Connection._execute`` (queue a function for the thread) and ``_conn``, as
SQLAlchemy's own adapter relies on ``_tx`` and ``_conn``; the lock file pins aiosqlite.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

from yijian.waiting import acquired_within

T = TypeVar("T")

# What one trip brings back: description, rowcount, lastrowid, rows.
_Outcome = tuple[Any, int, int | None, list[Any]]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """In the connection's thread: a statement from cursor to close."""
    cursor = connection.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, operation: str, rows: Sequence[Any]) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(operation, rows)
        return cursor.description, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


def _begin_unless_busy(
    connection: sqlite3.Connection, operation: str, parameters: Any
) -> _Outcome | None:
    """``BEGIN IMMEDIATE`` if no other process holds the write lock; None if one does,
    without waiting (the caller then waits in the connection's thread)."""
    [(waits,)] = connection.execute("PRAGMA busy_timeout").fetchall()
    connection.execute("PRAGMA busy_timeout=0")
    try:
        return _run(connection, operation, parameters)
    except sqlite3.OperationalError as error:
        if connection.in_transaction or "locked" not in str(error):
            raise
        return None
    finally:
        connection.execute(f"PRAGMA busy_timeout={int(waits)}")


async def _at_once(run: Callable[..., T], *arguments: Any) -> T:
    """``run`` in the event loop's thread, as an awaitable: SQLAlchemy's asyncio extension
    insists that a statement awaits something (a guard against blocking drivers), and this
    completes without giving the loop a turn."""
    return run(*arguments)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor that holds a statement's outcome instead of a cursor in the thread."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # Not the base class's: that opens an aiosqlite cursor, a trip of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._outcome: _Outcome = (None, -1, None, [])

    def _here(self, operation: str) -> bool:
        """Whether to run ``operation`` in this thread, when no call is in the connection's:
        a reader's ``BEGIN`` (it takes no lock), and any statement of a write transaction
        (this connection holds the process's write turn) but the ``BEGIN IMMEDIATE`` that
        may wait for another process (``execute`` tries that without waiting first)."""
        adapted = self._adapt_connection
        if not isinstance(adapted, _Connection) or adapted._execute_mutex.locked():
            return False
        if operation.startswith("BEGIN"):
            return operation == "BEGIN"
        return adapted.turn is not None

    def _hold(self, outcome: _Outcome) -> None:
        self._outcome = outcome
        self._rows = collections.deque(outcome[3])

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        if operation == "BEGIN IMMEDIATE" and not self._adapt_connection._execute_mutex.locked():
            try:
                begun = await_(
                    _at_once(_begin_unless_busy, self._connection._conn, operation, parameters)
                )
            except Exception as error:
                self._adapt_connection._handle_exception(error)
            if begun is not None:
                self._hold(begun)
                return None
        if not self._here(operation):
            return super().execute(operation, parameters)
        try:
            self._hold(await_(_at_once(_run, self._connection._conn, operation, parameters)))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return None

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        if not self._here(operation):
            return super().executemany(operation, seq_of_parameters)
        try:
            self._hold(
                await_(_at_once(_run_many, self._connection._conn, operation, seq_of_parameters))
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        return None

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[1]

    @property
    def lastrowid(self) -> Any:
        return self._outcome[2]

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._hold(
                await self._connection._execute(_run, self._connection._conn, operation, parameters)
            )

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._hold(
                await self._connection._execute(
                    _run_many, self._connection._conn, operation, seq_of_parameters
                )
            )

    async def _async_soft_close(self) -> None:
        return None  # nothing is open in the thread

    def close(self) -> None:
        self._rows.clear()


class WriteTurns:
    """Whose turn it is to write, among one engine's connections in this process.

    SQLite lets one transaction write at a time. A second ``BEGIN IMMEDIATE`` used to wait in
    SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms between tries, however
    soon the lock is free: in ``yijian run`` those sleeps held submissions up behind the
    consumers writing the same file. Writers here wait for their turn instead and start the
    moment the one before commits. Other processes on the same file still meet SQLite's own
    lock and busy handler. The wait is bounded like SQLite's (``busy_timeout``), and ends the
    same way: ``database is locked``.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _lock_of_this_loop(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a lock serves one event loop
            self._lock, self._loop = asyncio.Lock(), loop
        return self._lock

    def take(self, connection: Any) -> None:
        """Wait for the turn (inside SQLAlchemy's greenlet), then hold it on ``connection``,
        our driver connection, until its commit or rollback."""
        assert isinstance(connection, _Connection)
        lock = self._lock_of_this_loop()
        try:
            if lock.locked():
                await_(acquired_within(lock, self._timeout))
            else:
                await_(lock.acquire())  # free: taken at once, without a task for a timeout
        except TimeoutError as error:
            # As SQLAlchemy wraps SQLite's own, so callers answer it the same way (a 503, an
            # event that waits): this runs before SQLAlchemy's statement handling would.
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("BEGIN IMMEDIATE", None, locked) from error
        connection.turn = lock


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("turn",)
    _cursor_cls: type[AsyncAdapt_aiosqlite_cursor] = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.turn: asyncio.Lock | None = None

    def _end_turn(self) -> None:
        turn, self.turn = self.turn, None
        if turn is not None:
            turn.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_turn()

    def rollback(self) -> None:
        try:
            # The pool rolls back every connection it takes back, after each commit too.
            # sqlite3 does nothing then when no transaction is open; neither does this,
            # without the trip. (The flag is SQLite's own, safe to read while the thread is
            # idle, as it is whenever SQLAlchemy rolls back.)
            connection = self._connection._connection
            if connection is not None and not connection.in_transaction:
                return
            if connection is not None and not self._execute_mutex.locked():
                # Undoing waits for nothing (no lock to take, no fsync): no trip either.
                try:
                    connection.rollback()
                except Exception as error:
                    self._handle_exception(error)
                return
            super().rollback()
        finally:
            self._end_turn()

    def close(self) -> None:
        self._end_turn()
        super().close()

    def terminate(self) -> None:
        self._end_turn()
        super().terminate()


class _Driver(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _Connection(self, adapted._connection)


def one_trip_driver() -> Any:
    """The ``module`` for ``create_async_engine`` on a ``sqlite+aiosqlite`` URL."""
    return _Driver(aiosqlite, sqlite3)
