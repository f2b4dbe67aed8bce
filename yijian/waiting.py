"""Waiting at most so long for an event or a lock, in a way a cancellation always gets
through.

``asyncio.wait_for(event.wait(), seconds)`` in Python 3.11 returns normally when its task
is cancelled just as the event is set (the inner wait is done, so the cancellation is
dropped). A loop around it then never ends: ``Runtime.stop`` once waited for ever on an
outbox relay that a commit had woken at the moment it was cancelled. A lock acquired that
way has the same flaw: a writer cancelled as its turn came would go on to write.
``asyncio.timeout`` keeps count of cancellations and raises them.
"""

from __future__ import annotations

import asyncio


async def set_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` was set within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def acquired_within(lock: asyncio.Lock, seconds: float) -> None:
    """Acquire ``lock``, waiting at most ``seconds`` (else TimeoutError)."""
    async with asyncio.timeout(seconds):
        await lock.acquire()
