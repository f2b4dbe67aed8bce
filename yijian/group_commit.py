"""Group commit: writes that arrive while one transaction commits share the next one.

A complaint's 201 waits for its transaction's commit, and on SQLite (``synchronous=FULL``)
every commit is an fsync; on PostgreSQL every statement is a round trip and a pass through
SQLAlchemy. One transaction per request caps a worker at what one commit costs. Here the
first write starts at once, alone; writes arriving while it commits queue, and the next
transaction takes all of them (up to ``max_batch``), with one multi-row statement per table.
Nothing waits for a timer, so a lone request is never slower than before, and a busy worker
does far less work per request. Each caller still gets its own answer after the commit that
holds its write: durability is unchanged.

The batch writer returns one outcome per item, in order: a result, or an exception that is
that item's alone. If the writer itself raises, every item of the batch gets the error.
No library does this for asyncio (aiodataloader batches reads and has no commit to share),
and it is small.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

BatchWriter = Callable[[Sequence[Item]], Awaitable[Sequence[Result | BaseException]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: BatchWriter[Item, Result], max_batch: int = 64) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        # shield: a caller that gives up (a client gone) must not cancel a write that other
        # callers' answers share; its item is written all the same.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            try:
                outcomes = await self._write([item for item, _ in batch])
            except asyncio.CancelledError:  # shutting down: nobody is left to wait
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as error:  # every item of this batch shares its fate
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def close(self) -> None:
        """Wait for the writes already queued (at shutdown, before the engine goes)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
