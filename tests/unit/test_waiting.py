"""A background loop that waits for an event stops when it is cancelled, even at the moment
the event is set (Python 3.11's ``wait_for`` dropped that cancellation)."""

from __future__ import annotations

import asyncio

import pytest

from yijian.waiting import set_within


async def waiting_loop(event: asyncio.Event, woken: list[bool]) -> None:
    """As the relay, the consumers' polls and the runtime's ticks wait."""
    while True:
        woken.append(await set_within(event, 3600))
        event.clear()


async def test_a_cancellation_as_the_event_is_set_stops_the_loop() -> None:
    event, woken = asyncio.Event(), list[bool]()
    task = asyncio.create_task(waiting_loop(event, woken))
    await asyncio.sleep(0)  # it waits
    event.set()
    await asyncio.sleep(0)  # the wait is over, the loop not yet told
    task.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert task.done()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_answer_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await set_within(event, 0) is False
    event.set()
    assert await set_within(event, 3600) is True
