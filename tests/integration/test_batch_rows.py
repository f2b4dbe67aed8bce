"""A batch of complaints' rows and events: one statement on PostgreSQL, a statement a table
on SQLite, the same rows either way; and complaints filed together through intake on
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.batch_rows import insert_rows
from services.intake.store import (
    complaint_views,
    complaints,
    contacts,
    idempotency_keys,
    metadata,
    submission_counts,
    timeline,
)
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from tests.integration.conftest import NewDatabase
from tests.integration.statements import statements_sent
from yijian.clock import FakeClock

pytestmark = pytest.mark.integration

outbox = metadata.tables["outbox"]


def batch(ids: list[str], *, with_contact: set[str], with_key: set[str]) -> dict[str, Any]:
    at = MONDAY_MORNING
    return {
        "complaints": [
            {
                "id": id_,
                "tracking_no": f"GZ{n:08d}",
                "description": f"路灯坏了 {n}",
                "category": "道路交通" if n % 2 else None,
                "urgency": "normal",
                "channel": "web",
                "grid_code": None,
                "village_code": "620922100001",
                "lat": 40.5 if n % 2 else None,
                "lon": 95.8 if n % 2 else None,
                "submitted_at": at + timedelta(seconds=n),
            }
            for n, id_ in enumerate(ids)
        ],
        "contacts": [
            {
                "complaint_id": id_,
                "name": None,
                "phone": "sealed-phone",
                "address": None,
                "email": None,
                "wechat_openid": None,
                "sealed_with": "k1",
                "openid_digest": None,
                "conceal_from_village": True,
            }
            for id_ in ids
            if id_ in with_contact
        ],
        "complaint_views": [
            {
                "complaint_id": id_,
                "status": "submitted",
                "clock": 0,
                "deadline_clock": 0,
                "overdue": False,
                "updated_at": at,
            }
            for id_ in ids
        ],
        "timeline": [
            {"complaint_id": id_, "at": at, "kind": "submitted", "text": "诉求已提交"}
            for id_ in ids
        ],
        "idempotency_keys": [
            {"key": f"key-{id_}", "fingerprint": "f" * 64, "complaint_id": id_, "created_at": at}
            for id_ in ids
            if id_ in with_key
        ],
        "outbox": [
            {"topic": "intake", "envelope": f'{{"for": "{id_}"}}', "created_at": at} for id_ in ids
        ],
    }


async def test_a_batch_is_one_statement_on_postgresql_and_the_rows_are_the_same(
    intake_engine: AsyncEngine,
) -> None:
    ids = [f"c{n:031d}" for n in range(5)]
    with statements_sent(intake_engine) as sent:
        async with intake_engine.begin() as connection:
            totals = await insert_rows(
                connection,
                batch(ids, with_contact={ids[1], ids[3]}, with_key={ids[0]}),
                {("phone:a", MONDAY_MORNING): 2, ("ip:b", MONDAY_MORNING): 1},
            )
    inserts = [s for s, _ in sent if s.lstrip().upper().startswith(("INSERT", "WITH"))]
    # On SQLite a statement a table, and one for the senders' counters.
    assert len(inserts) == (1 if intake_engine.dialect.name == "postgresql" else 7), inserts
    assert totals == {("phone:a", MONDAY_MORNING): 2, ("ip:b", MONDAY_MORNING): 1}
    async with intake_engine.connect() as connection:
        stored = (await connection.execute(select(complaints).order_by(complaints.c.id))).all()
        views = (await connection.execute(select(complaint_views))).all()
        kept = (await connection.execute(select(contacts))).all()
        keys = (await connection.execute(select(idempotency_keys))).all()
        entries = await connection.scalar(select(func.count()).select_from(timeline))
        events = (await connection.execute(select(outbox).order_by(outbox.c.id))).all()
    assert [row.id for row in stored] == ids
    assert stored[1].lat == 40.5
    assert stored[0].lat is None
    assert stored[0].category is None
    assert stored[3].submitted_at == MONDAY_MORNING + timedelta(seconds=3)
    assert stored[3].submitted_at.tzinfo is not None
    assert {row.complaint_id for row in kept} == {ids[1], ids[3]}
    assert all(row.conceal_from_village for row in kept)
    assert [row.key for row in keys] == [f"key-{ids[0]}"]
    # The columns the batch does not give take their defaults.
    assert {(row.status, row.level, row.reopens) for row in views} == {("submitted", None, 0)}
    assert entries == 5
    # The events keep their order: the relay publishes the outbox oldest first.
    assert [row.envelope for row in events] == [f'{{"for": "{id_}"}}' for id_ in ids]


async def test_a_batch_that_breaks_a_constraint_writes_nothing(intake_engine: AsyncEngine) -> None:
    ids = [f"d{n:031d}" for n in range(3)]
    rows = batch(ids, with_contact=set(), with_key=set())
    rows["complaints"][2]["tracking_no"] = rows["complaints"][0]["tracking_no"]
    with pytest.raises(IntegrityError):
        async with intake_engine.begin() as connection:
            await insert_rows(connection, rows)
    async with intake_engine.connect() as connection:
        for table in (complaints, complaint_views, timeline):
            assert await connection.scalar(select(func.count()).select_from(table)) == 0


async def test_rows_that_miss_a_column_are_refused_before_anything_is_sent(
    intake_engine: AsyncEngine,
) -> None:
    rows = batch(["e" * 32], with_contact=set(), with_key=set())
    del rows["timeline"][0]["kind"]
    async with intake_engine.begin() as connection:
        with pytest.raises(ValueError, match="timeline rows give"):
            await insert_rows(connection, rows)


@pytest.fixture
async def intake_on_postgres(
    tmp_path: Path, new_postgres_database: NewDatabase
) -> AsyncIterator[Harness]:
    started = await start_harness(
        tmp_path,
        FakeClock(MONDAY_MORNING),
        intake_database_url=await new_postgres_database(),
        submissions_per_phone_per_day=2,
    )
    yield started
    await stop_harness(started)


def complaint(harness: Harness, n: int, phone: str | None = None) -> dict[str, Any]:
    return {
        "description": f"路灯坏了 {n}",
        "location": {"village_code": harness.village_code},
        "category": "道路交通",
        "contact": {"phone": phone or f"1390000{n:04d}"},
    }


async def test_complaints_filed_together_on_postgresql_each_get_their_own(
    intake_on_postgres: Harness,
) -> None:
    harness = intake_on_postgres

    async def file(n: int, key: str) -> httpx.Response:
        return await harness.client.post(
            "/api/v1/complaints", json=complaint(harness, n), headers={"Idempotency-Key": key}
        )

    answers = await asyncio.gather(*(file(n, f"k{n}") for n in range(24)))
    assert [answer.status_code for answer in answers] == [201] * 24
    replayed = await file(7, "k7")
    assert replayed.status_code == 201
    assert replayed.json()["id"] == answers[7].json()["id"]
    view = await harness.client.get(
        answers[7].json()["url"],
        headers={"Authorization": f"Bearer {answers[7].json()['citizen_token']}"},
    )
    assert view.status_code == 200, view.text
    assert view.json()["timeline"][0]["kind"] == "submitted"
    async with harness.system.intake.database.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(complaints)) == 24
        assert await connection.scalar(select(func.count()).select_from(contacts)) == 24
        assert await connection.scalar(select(func.count()).select_from(idempotency_keys)) == 24
        envelopes = (await connection.execute(select(outbox.c.envelope))).scalars().all()
    # Each complaint's event is in the outbox once: written with the batch, not again at commit.
    submitted = [json.loads(envelope)["payload"]["complaint_id"] for envelope in envelopes]
    assert sorted(submitted) == sorted(answer.json()["id"] for answer in answers)


async def test_a_sender_over_the_limit_among_complaints_filed_together_on_postgresql(
    intake_on_postgres: Harness,
) -> None:
    # The batch's statement counts its senders; one of them passing the limit of two a day
    # rolls the batch back, and the others are stored all the same.
    harness = intake_on_postgres
    busy = [complaint(harness, n, "13911112222") for n in range(4)]
    others = [complaint(harness, 10 + n) for n in range(4)]
    answers = await asyncio.gather(
        *(harness.client.post("/api/v1/complaints", json=body) for body in [*busy, *others])
    )
    assert sorted(answer.status_code for answer in answers[:4]) == [201, 201, 429, 429]
    assert [answer.status_code for answer in answers[4:]] == [201] * 4
    async with harness.system.intake.database.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(complaints)) == 6
        counted = (await connection.execute(select(submission_counts.c["count"]))).scalars()
        assert sorted(counted) == [1, 1, 1, 1, 2]
