"""A background loop that waits for an event stops when it is cancelled, even at the moment
the event is set, and a writer cancelled as its lock is handed over does not take it (Python
3.11's ``wait_for`` dropped those cancellations)."""

from __future__ import annotations

import asyncio

import pytest

from yijian.waiting import acquired_within, set_within


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


@pytest.mark.parametrize("turns", range(4))
async def test_a_cancellation_as_the_lock_is_handed_over_gets_through(turns: int) -> None:
    lock, wrote = asyncio.Lock(), list[str]()
    await lock.acquire()  # another writer's turn

    async def writer() -> None:
        await acquired_within(lock, 3600)
        wrote.append("written")

    task = asyncio.create_task(writer())
    await asyncio.sleep(0)  # it waits for the lock
    lock.release()
    for _ in range(turns):  # the lock is handed over; the writer told or not yet
        await asyncio.sleep(0)
    told = task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if told:
        assert wrote == ["written"]
        assert lock.locked()
    else:
        assert task.cancelled()
        assert wrote == []
        assert not lock.locked()  # passed on, not kept by the cancelled writer


async def test_a_lock_not_given_in_time_is_a_timeout() -> None:
    lock = asyncio.Lock()
    await lock.acquire()
    with pytest.raises(TimeoutError):
        await acquired_within(lock, 0)
    lock.release()
    await acquired_within(lock, 3600)
    assert lock.locked()
