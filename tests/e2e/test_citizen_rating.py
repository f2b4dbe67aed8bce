"""Rating a resolved complaint: once per resolution; 不满意 reopens it, within the policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from services.routing.store import case_actions, cases
from tests.conftest import Harness


async def staff_do(harness: Harness, complaint: str, action: str, **body: str) -> None:
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint}/{action}",
        json=body or None,
        headers=harness.staff(harness.village_code),
    )
    assert response.status_code == 200, response.text
    await harness.settle()


async def resolve(harness: Harness, complaint: str) -> None:
    await staff_do(harness, complaint, "accept")
    await staff_do(harness, complaint, "resolve", message="已修好")


async def rate(harness: Harness, complaint: str, rating: str) -> tuple[int, dict[str, Any]]:
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint}/rating",
        json={"rating": rating},
        headers=harness.citizen(complaint),
    )
    await harness.settle()
    return response.status_code, response.json()


async def case_row(harness: Harness, complaint: str) -> Any:
    async with harness.system.routing.database.engine.connect() as connection:
        return (
            await connection.execute(select(cases).where(cases.c.complaint_id == complaint))
        ).one()


async def logged_actions(harness: Harness, complaint: str) -> list[tuple[str, str | None]]:
    async with harness.system.routing.database.engine.connect() as connection:
        rows = await connection.execute(
            select(case_actions.c.action, case_actions.c.note)
            .where(case_actions.c.complaint_id == complaint)
            .order_by(case_actions.c.id)
        )
        return [(row.action, row.note) for row in rows]


async def rated_events(harness: Harness, complaint: str) -> list[str]:
    from yijian.bus.sqllog import event_log
    from yijian.contracts import Envelope

    async with harness.sql_log.engine.connect() as connection:
        rows = await connection.execute(select(event_log.c.envelope))
        envelopes = [Envelope.model_validate_json(row.envelope) for row in rows]
    return [
        e.payload["rating"] for e in envelopes if e.type == "complaint.rated" and e.key == complaint
    ]


async def test_only_a_resolved_complaint_can_be_rated_and_only_once(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    status, body = await rate(harness, complaint, "satisfied")
    assert status == 409
    assert "resolved" in body["detail"]
    assert (await harness.view(complaint))["can_rate"] is False

    await resolve(harness, complaint)
    view = await harness.view(complaint)
    assert (view["status"], view["can_rate"], view["rating"]) == ("resolved", True, None)

    status, body = await rate(harness, complaint, "satisfied")
    assert status == 200, body
    assert body == {"rating": "satisfied", "rating_label": "满意", "reopen_expected": False}
    status, body = await rate(harness, complaint, "unsatisfied")
    assert status == 409
    assert "already" in body["detail"]

    view = await harness.view(complaint)
    assert (view["status"], view["rating"]) == ("resolved", "satisfied")
    assert view["rating_label"] == "满意"
    assert view["can_rate"] is False
    assert view["timeline"][-1]["kind"] == "rated"
    assert "满意" in view["timeline"][-1]["text"]
    assert await rated_events(harness, complaint) == ["satisfied"]
    row = await case_row(harness, complaint)
    assert (row.status, row.rating, row.reopens) == ("resolved", "satisfied", 0)


async def test_rating_needs_the_citizens_token_and_a_known_answer(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    other = (await harness.submit())["id"]
    await resolve(harness, complaint)
    stranger = await harness.client.post(
        f"/api/v1/complaints/{complaint}/rating",
        json={"rating": "unsatisfied"},
        headers=harness.citizen(other),
    )
    assert stranger.status_code == 404
    status, body = await rate(harness, complaint, "terrible")
    assert status == 422
    assert body["detail"]
    assert (await harness.view(complaint))["can_rate"] is True


async def test_unsatisfied_reopens_it_at_the_same_level_with_fresh_deadlines(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]
    await resolve(harness, complaint)
    await harness.advance(timedelta(hours=5))

    status, body = await rate(harness, complaint, "unsatisfied")
    assert status == 200
    assert body["reopen_expected"] is True

    view = await harness.view(complaint)
    assert view["status"] == "reopened"
    assert view["level"] == "village"
    assert view["assignee"]["code"] == harness.village_code
    assert [e["kind"] for e in view["timeline"]][-2:] == ["rated", "reopened"]
    # Two hours to 签收 again, counted from the reopening (Monday 09:00 + 5 h + 2 h, Beijing).
    assert view["deadlines"]["accept_by"] == "2026-03-02T08:00:00Z"
    assert view["can_rate"] is False
    row = await case_row(harness, complaint)
    assert (row.status, row.reopens, row.rating) == ("reopened", 1, "unsatisfied")

    # The village lets the new deadline pass: the township supervises, as for any case.
    await harness.advance(timedelta(hours=2))
    assert (await harness.view(complaint))["status"] == "escalated"


async def test_reopening_stops_at_the_policys_limit(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    limit = harness.system.policy.max_reopens
    assert limit == 2
    for round_no in range(1, limit + 1):
        await resolve(harness, complaint)
        status, body = await rate(harness, complaint, "unsatisfied")
        assert (status, body["reopen_expected"]) == (200, True)
        assert (await case_row(harness, complaint)).reopens == round_no

    await resolve(harness, complaint)
    status, body = await rate(harness, complaint, "unsatisfied")
    assert status == 200
    assert body["reopen_expected"] is False
    view = await harness.view(complaint)
    assert view["status"] == "resolved"  # recorded, and left resolved
    assert "达到上限" in view["timeline"][-1]["text"]
    assert [e["kind"] for e in view["timeline"]].count("reopened") == limit
    row = await case_row(harness, complaint)
    assert (row.status, row.reopens, row.rating) == ("resolved", limit, "unsatisfied")
    assert (await logged_actions(harness, complaint))[-1][0] == "reopen_refused"
    assert await rated_events(harness, complaint) == ["unsatisfied"] * (limit + 1)
    status, _ = await rate(harness, complaint, "satisfied")
    assert status == 409  # still once per resolution


async def test_an_archived_complaint_can_no_longer_be_rated(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    await resolve(harness, complaint)
    await staff_do(harness, complaint, "visit", note="电话回访，群众认可")
    await staff_do(harness, complaint, "close")
    status, body = await rate(harness, complaint, "satisfied")
    assert status == 409
    assert "closed" in body["detail"]


async def test_a_rating_delivered_twice_reopens_once(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    await resolve(harness, complaint)
    await rate(harness, complaint, "unsatisfied")
    from yijian.bus.sqllog import event_log
    from yijian.contracts import Envelope

    async with harness.sql_log.engine.connect() as connection:
        rows = await connection.execute(select(event_log.c.topic, event_log.c.envelope))
        rated = [
            (row.topic, Envelope.model_validate_json(row.envelope))
            for row in rows
            if '"complaint.rated"' in row.envelope
        ]
    assert len(rated) == 1
    await harness.sql_log.publish([rated[0]])  # the same event again
    await harness.settle()
    assert (await case_row(harness, complaint)).reopens == 1
    assert [e["kind"] for e in (await harness.view(complaint))["timeline"]].count("reopened") == 1
