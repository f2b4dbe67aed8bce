"""Complaints filed at the same moment share one transaction and still each get their own
answer: a replay, a conflict, a refusal over a limit, or a new complaint of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.store import complaints
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(
        tmp_path, FakeClock(MONDAY_MORNING), submissions_per_phone_per_day=2
    )
    yield started
    await stop_harness(started)


def complaint(harness: Harness, phone: str, text: str = "路灯坏了") -> dict[str, Any]:
    return {
        "description": text,
        "location": {"village_code": harness.village_code},
        "category": "道路交通",
        "contact": {"phone": phone},
    }


@contextmanager
def counting_transactions(engine: AsyncEngine) -> Iterator[list[int]]:
    began: list[int] = []

    def count(_connection: object) -> None:
        began.append(1)

    event.listen(engine.sync_engine, "begin", count)
    try:
        yield began
    finally:
        event.remove(engine.sync_engine, "begin", count)


async def file_together(
    client: httpx.AsyncClient, bodies: list[dict[str, Any]], keys: list[str | None] | None = None
) -> list[httpx.Response]:
    keys = keys or [None] * len(bodies)
    return list(
        await asyncio.gather(
            *(
                client.post(
                    "/api/v1/complaints",
                    json=body,
                    headers={"Idempotency-Key": key} if key else {},
                )
                for body, key in zip(bodies, keys, strict=True)
            )
        )
    )


async def stored(harness: Harness) -> int:
    async with harness.system.intake.database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(complaints)) or 0)


async def test_complaints_filed_together_share_transactions(intake: Harness) -> None:
    bodies = [complaint(intake, f"1390000{n:04d}") for n in range(24)]
    with counting_transactions(intake.system.intake.database.engine) as began:
        answers = await file_together(intake.client, bodies)
    assert [answer.status_code for answer in answers] == [201] * 24
    assert len({answer.json()["id"] for answer in answers}) == 24
    assert await stored(intake) == 24
    # The first goes alone; those arriving while it commits share the next transaction.
    assert len(began) <= 4, len(began)
    # Each answer is for its own complaint: its citizen token opens it, and shows its text.
    view = await intake.client.get(
        answers[7].json()["url"],
        headers={"Authorization": f"Bearer {answers[7].json()['citizen_token']}"},
    )
    assert view.status_code == 200, view.text


async def test_the_same_body_twice_without_a_key_is_two_complaints(intake: Harness) -> None:
    answers = await file_together(intake.client, [complaint(intake, "13900000001")] * 2)
    assert [answer.status_code for answer in answers] == [201, 201]
    assert answers[0].json()["id"] != answers[1].json()["id"]
    assert await stored(intake) == 2


async def test_one_key_twice_in_a_batch_is_one_complaint_replayed(intake: Harness) -> None:
    body = complaint(intake, "13900000002")
    others = [complaint(intake, f"1380000{n:04d}") for n in range(6)]
    answers = await file_together(
        intake.client, [body, *others, body], ["key-1", *[None] * 6, "key-1"]
    )
    assert [answer.status_code for answer in answers] == [201] * 8
    first, again = answers[0], answers[-1]
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await stored(intake) == 7


async def test_one_key_for_two_bodies_in_a_batch_is_a_conflict(intake: Harness) -> None:
    answers = await file_together(
        intake.client,
        [complaint(intake, "13900000003"), complaint(intake, "13900000003", "另一件事")],
        ["key-2", "key-2"],
    )
    assert sorted(answer.status_code for answer in answers) == [201, 409]
    assert await stored(intake) == 1


async def test_a_sender_over_the_limit_in_a_batch_is_refused_alone(intake: Harness) -> None:
    busy = [complaint(intake, "13911112222") for _ in range(5)]
    others = [complaint(intake, f"1370000{n:04d}") for n in range(5)]
    answers = await file_together(intake.client, [*busy, *others])
    mine = [answer.status_code for answer in answers[:5]]
    assert sorted(mine) == [201, 201, 429, 429, 429], mine
    assert all("phone number" in a.json()["detail"] for a in answers[:5] if a.status_code == 429)
    assert [answer.status_code for answer in answers[5:]] == [201] * 5
    assert await stored(intake) == 7
