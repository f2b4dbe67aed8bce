"""Submitting: idempotency, and bad input refused with a reason, changing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness


async def count_complaints(harness: Harness) -> int:
    from sqlalchemy import func, select

    from services.intake.store import complaints

    async with harness.system.intake.database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(complaints)) or 0)


async def test_same_idempotency_key_and_body_gives_the_same_complaint(harness: Harness) -> None:
    body = {"description": "垃圾没人清", "location": {"village_code": harness.village_code}}
    headers = {"Idempotency-Key": "mini-program-4711"}
    first = await harness.client.post("/api/v1/complaints", json=body, headers=headers)
    again = await harness.client.post("/api/v1/complaints", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await count_complaints(harness) == 1

    other = dict(body, description="另一件事")
    conflict = await harness.client.post("/api/v1/complaints", json=other, headers=headers)
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert await count_complaints(harness) == 1


async def test_a_new_complaint_without_a_key_is_a_new_complaint(harness: Harness) -> None:
    body = {"description": "垃圾没人清", "location": {"village_code": harness.village_code}}
    first = await harness.client.post("/api/v1/complaints", json=body)
    second = await harness.client.post("/api/v1/complaints", json=body)
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["tracking_no"] != second.json()["tracking_no"]


BAD_BODIES: list[tuple[str, Any]] = [
    ("no description", {"location": {"village_code": "620922100001"}}),
    ("blank description", {"description": "   \n ", "location": {"village_code": "620922100001"}}),
    ("description too long", {"description": "路" * 2001, "location": {"grid_code": "0" * 15}}),
    ("no location", {"description": "x"}),
    (
        "two locations",
        {
            "description": "x",
            "location": {"village_code": "620922100001", "lat": 40.5, "lon": 95.7},
        },
    ),
    ("lat without lon", {"description": "x", "location": {"lat": 40.5}}),
    ("lat out of range", {"description": "x", "location": {"lat": 140.5, "lon": 95.7}}),
    ("grid code not digits", {"description": "x", "location": {"grid_code": "abc"}}),
    (
        "unknown field",
        {"description": "x", "location": {"village_code": "620922100001"}, "priority": 1},
    ),
    (
        "bad urgency",
        {"description": "x", "location": {"village_code": "620922100001"}, "urgency": "now!"},
    ),
    (
        "bad channel",
        {"description": "x", "location": {"village_code": "620922100001"}, "channel": "fax"},
    ),
    (
        "bad phone",
        {
            "description": "x",
            "location": {"village_code": "620922100001"},
            "contact": {"phone": "call me maybe"},
        },
    ),
    ("description is a number", {"description": 42, "location": {"village_code": "1" * 12}}),
    ("body is a list", [1, 2, 3]),
]


@pytest.mark.parametrize(("why", "body"), BAD_BODIES, ids=[why for why, _ in BAD_BODIES])
async def test_bad_input_gets_422_with_a_reason_and_stores_nothing(
    harness: Harness, why: str, body: Any
) -> None:
    response = await harness.client.post("/api/v1/complaints", json=body)
    assert response.status_code == 422, (why, response.text)
    assert response.json()["detail"], why
    assert await count_complaints(harness) == 0


async def test_unknown_category_is_refused_and_the_known_ones_are_named(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/v1/complaints",
        json={"description": "x", "category": "外星人", "location": {"village_code": "1" * 12}},
    )
    assert response.status_code == 422
    assert "邻里纠纷" in response.json()["detail"]


async def test_malformed_json_and_oversized_bodies_are_refused(harness: Harness) -> None:
    broken = await harness.client.post(
        "/api/v1/complaints",
        content=b'{"description": ',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    huge = await harness.client.post(
        "/api/v1/complaints",
        content=b'{"description": "' + b"a" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert "larger than" in huge.json()["detail"]
    assert await count_complaints(harness) == 0


async def test_emoji_html_and_sql_are_stored_as_text(harness: Harness) -> None:
    text = "路灯坏了🚨 <script>alert(1)</script> '; DROP TABLE complaints; --"
    submitted = await harness.submit(description=text)
    from sqlalchemy import select

    from services.intake.store import complaints

    async with harness.system.intake.database.engine.connect() as connection:
        stored = await connection.scalar(
            select(complaints.c.description).where(complaints.c.id == submitted["id"])
        )
    assert stored == text


async def test_unknown_complaint_is_404(harness: Harness) -> None:
    response = await harness.client.get("/api/v1/complaints/does-not-exist")
    assert response.status_code == 404
    assert response.json()["detail"]


async def test_the_event_carries_no_personal_data(harness: Harness) -> None:
    phone, name, address = "13912345678", "张小明", "幸福路88号"
    await harness.submit(
        contact={"name": name, "phone": phone},
        location={"village_code": harness.village_code, "address": address},
    )
    from sqlalchemy import select

    from yijian.bus.sqllog import event_log

    async with harness.sql_log.engine.connect() as connection:
        everything = " ".join(
            row.envelope for row in await connection.execute(select(event_log.c.envelope))
        )
    assert everything  # events were written
    for secret in (phone, name, address):
        assert secret not in everything
