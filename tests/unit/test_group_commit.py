"""The group commit's promises: order, one outcome per item, shared failure, no lost write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from yijian.group_commit import GroupCommit


class Refused(Exception):
    pass


async def test_items_queued_during_a_write_share_the_next_and_get_their_own_answer() -> None:
    batches: list[list[int]] = []
    began, release = asyncio.Event(), asyncio.Event()

    async def write(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        began.set()
        if len(batches) == 1:
            await release.wait()
        return [Refused(item) if item == 3 else item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write, max_batch=3)
    calls = [asyncio.create_task(group.submit(0))]
    await began.wait()  # the first write has begun, alone
    calls += [asyncio.create_task(group.submit(item)) for item in range(1, 6)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert batches == [[0], [1, 2, 3], [4, 5]]
    assert outcomes[:3] == [0, 10, 20]
    assert isinstance(outcomes[3], Refused)
    assert outcomes[4:] == [40, 50]


async def test_a_failed_write_fails_every_item_of_its_batch_only() -> None:
    async def write(items: Sequence[int]) -> list[int | BaseException]:
        if 1 in items:
            raise Refused("the database said no")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write)
    assert await group.submit(0) == 0
    together = [asyncio.create_task(group.submit(item)) for item in (1, 2)]
    for call in together:
        with pytest.raises(Refused):
            await call
    assert await group.submit(5) == 5


async def test_a_caller_that_gives_up_does_not_stop_the_write() -> None:
    written: list[int] = []
    release = asyncio.Event()

    async def write(items: Sequence[int]) -> list[int | BaseException]:
        await release.wait()
        written.extend(items)
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write)
    impatient = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    await group.close()
    assert written == [1]
