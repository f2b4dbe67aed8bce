"""A complaint's whole life through all four services, on the embedded bus, on a fake clock.

Default policy: a village has 2 h to 签收 (reminded 30 min before); the township (督办)
then has 4 working hours; the county 8 working hours and is reminded again when it misses.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import Harness, start_harness, stop_harness

MINUTE = timedelta(minutes=1)


def kinds(view: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in view["timeline"]]


async def deliveries(harness: Harness, complaint_id: str) -> list[dict[str, Any]]:
    response = await harness.client.get(
        "/api/v1/notify/deliveries",
        params={"complaint_id": complaint_id},
        headers=harness.staff("620922"),
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def test_operations_views_are_for_county_operators_only(harness: Harness) -> None:
    for path in ("/api/v1/notify/deliveries", "/api/v1/escalation/summary"):
        assert (await harness.client.get(path)).status_code == 401
        village = await harness.client.get(path, headers=harness.staff(harness.village_code))
        assert village.status_code == 403
        county = await harness.client.get(path, headers=harness.staff("620922"))
        assert county.status_code == 200, county.text


async def test_new_complaint_is_assigned_to_the_village_that_owns_the_place(
    harness: Harness,
) -> None:
    lat, lon = harness.system.jurisdiction.point_in(harness.village_code)
    submitted = await harness.submit(location={"lat": lat, "lon": lon})
    assert submitted["tracking_no"].startswith("GZ260302-")

    view = await harness.view(submitted["id"])
    assert view["status"] == "assigned"
    assert view["level"] == "village"
    assert view["assignee"]["code"] == harness.village_code
    assert view["deadlines"]["accept_by"] == "2026-03-02T03:00:00Z"
    assert kinds(view) == ["submitted", "assigned"]
    sent = await deliveries(harness, submitted["id"])
    assert any(d["recipient_key"] == f"duty:{harness.village_code}" for d in sent), sent


async def test_unanswered_complaint_climbs_to_township_then_county_with_reminders_first(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]

    await harness.advance(89 * MINUTE)
    assert "reminded" not in kinds(await harness.view(complaint))
    await harness.advance(1 * MINUTE)  # 30 minutes before the village's 签收 deadline
    view = await harness.view(complaint)
    assert kinds(view)[-1] == "reminded"
    assert view["level"] == "village"

    await harness.advance(30 * MINUTE)  # the village's deadline passes
    view = await harness.view(complaint)
    assert view["status"] == "escalated"
    assert view["level"] == "township"
    assert view["supervisor"]["code"] == harness.township_code
    assert view["assignee"]["code"] == harness.village_code  # the village keeps the work

    await harness.advance(4 * 60 * MINUTE)  # the township lets its 4 h lapse too
    view = await harness.view(complaint)
    assert view["level"] == "county"
    assert view["supervisor"]["code"] == "620922"
    assert kinds(view).count("escalated") == 2
    assert kinds(view).count("reminded") == 2  # one before each deadline

    await harness.advance(8 * 60 * MINUTE)  # the county misses: marked, not climbing
    view = await harness.view(complaint)
    assert view["level"] == "county"
    assert view["overdue"] is True
    await harness.advance(24 * 60 * MINUTE)
    view = await harness.view(complaint)
    assert kinds(view).count("reminded") >= 4  # reminded again while overdue

    sent = await deliveries(harness, complaint)
    templates = {d["template"] for d in sent}
    assert {"new_assignment", "reminder", "supervision", "county_overdue"} <= templates, templates


async def test_accepted_in_time_means_no_reminder_and_no_escalation(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    await harness.advance(60 * MINUTE)
    accepted = await harness.client.post(
        f"/api/v1/complaints/{complaint}/accept", headers=harness.staff(harness.village_code)
    )
    assert accepted.status_code == 200, accepted.text
    await harness.settle()

    await harness.advance(3 * 60 * MINUTE)  # well past the 2 h 签收 deadline
    view = await harness.view(complaint)
    assert view["status"] == "accepted"
    assert view["level"] == "village"
    assert "escalated" not in kinds(view)
    assert "reminded" not in kinds(view)
    assert view["deadlines"]["accept_by"] is None
    assert view["deadlines"]["resolve_by"] == "2026-03-05T01:00:00Z"

    resolved = await harness.client.post(
        f"/api/v1/complaints/{complaint}/resolve",
        json={"message": "已更换路灯"},
        headers=harness.staff(harness.village_code),
    )
    assert resolved.status_code == 200, resolved.text
    await harness.advance(10 * 24 * 60 * MINUTE)
    view = await harness.view(complaint)
    assert view["status"] == "resolved"
    assert "escalated" not in kinds(view)


async def test_restart_in_the_middle_resumes_the_deadlines(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    await harness.advance(100 * MINUTE)  # reminder sent, deadline not yet passed
    await stop_harness(harness)

    harness.clock.advance(30 * MINUTE)  # the deadline passes while nothing runs
    restarted = await start_harness(harness.data_dir, harness.clock)
    try:
        await restarted.settle()
        view = await restarted.view(complaint)
        assert view["status"] == "escalated"
        assert kinds(view).count("reminded") == 1  # not sent again after the restart
        assert kinds(view).count("escalated") == 1
    finally:
        await stop_harness(restarted)
        # The fixture's own teardown closes the first system again; closing twice is safe.
        harness.client = restarted.client


async def test_a_deadline_event_delivered_twice_escalates_once(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    await harness.advance(121 * MINUTE)
    log = harness.sql_log
    missed = [
        letter
        for letter in await _all_events(harness)
        if letter.type == "escalation.deadline_missed" and letter.key == complaint
    ]
    assert len(missed) == 1
    await log.publish([("yijian.deadlines.v1", missed[0])])  # the same event, again
    await harness.settle()
    view = await harness.view(complaint)
    assert kinds(view).count("escalated") == 1
    assert view["level"] == "township"


async def _all_events(harness: Harness) -> list[Any]:
    from sqlalchemy import select

    from yijian.bus.sqllog import event_log
    from yijian.contracts import Envelope

    async with harness.sql_log.engine.connect() as connection:
        rows = await connection.execute(
            select(event_log.c.envelope).order_by(event_log.c.appended_at)
        )
        return [Envelope.model_validate_json(row.envelope) for row in rows]
