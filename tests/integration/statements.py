"""What an engine sends to its database, for tests that count or inspect statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

Sent = tuple[str, Any]  # a statement as the driver receives it, and its parameters


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[Sent]]:
    """Every statement ``engine`` sends while the block runs, in order, with its parameters
    (SQLite's ``BEGIN`` among them); the caller may clear the list to start counting anew."""
    sent: list[Sent] = []

    def keep(
        connection: object, cursor: object, statement: str, parameters: Any, *_: object
    ) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)
