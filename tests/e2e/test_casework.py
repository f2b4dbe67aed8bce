"""Staff act on cases only inside their jurisdiction and only when the state allows."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Harness


async def act(
    harness: Harness, complaint: str, action: str, org: str, **body: str
) -> tuple[int, dict[str, object]]:
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint}/{action}",
        json=body or None,
        headers=harness.staff(org),
    )
    await harness.settle()
    return response.status_code, response.json()


async def test_no_token_is_401_and_a_forged_token_is_401(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    missing = await harness.client.post(f"/api/v1/complaints/{complaint}/accept")
    assert missing.status_code == 401
    forged = await harness.client.post(
        f"/api/v1/complaints/{complaint}/accept",
        headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    )
    assert forged.status_code == 401


async def test_an_expired_token_is_refused(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    headers = harness.staff(harness.village_code)
    harness.clock.advance(timedelta(hours=13))
    response = await harness.client.post(f"/api/v1/complaints/{complaint}/accept", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_another_village_cannot_act_and_a_township_can_only_act_on_its_own(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]
    neighbour = harness.system.jurisdiction.villages(harness.township_code)[1].code
    other_township = harness.system.jurisdiction.townships()[1].code

    status, body = await act(harness, complaint, "accept", neighbour)
    assert status == 404  # answered as a complaint that does not exist
    assert body["detail"] == "no complaint with this id"
    status, _ = await act(harness, complaint, "accept", other_township)
    assert status == 404
    detail = await harness.client.get(
        f"/api/v1/cases/{complaint}", headers=harness.staff(neighbour)
    )
    assert detail.status_code == 404  # no hint that the id exists

    status, body = await act(harness, complaint, "accept", harness.township_code)
    assert status == 200
    assert body["status"] == "accepted"


async def test_illegal_transitions_are_409_with_the_reason(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    village = harness.village_code
    status, body = await act(harness, complaint, "resolve", village, message="好了")
    assert status == 409
    assert "assigned" in str(body["detail"])
    assert (await act(harness, complaint, "accept", village))[0] == 200
    status, _ = await act(harness, complaint, "accept", village)
    assert status == 409
    status, _ = await act(harness, complaint, "close", village)
    assert status == 409
    assert (await act(harness, complaint, "reply", village, message="已安排电工"))[0] == 200
    assert (await act(harness, complaint, "resolve", village, message="已修好"))[0] == 200
    status, body = await act(harness, complaint, "close", village)
    assert status == 409  # 归档 waits for the return visit
    assert "回访" in str(body["detail"])
    status, body = await act(harness, complaint, "visit", village, note="群众表示路灯已亮")
    assert (status, body["visited"], body["status"]) == (200, True, "resolved")
    assert (await act(harness, complaint, "close", village))[0] == 200
    view = await harness.view(complaint)
    assert view["status"] == "closed"
    assert [e["kind"] for e in view["timeline"]][-4:] == [
        "accepted",
        "replied",
        "resolved",
        "closed",
    ]


async def test_a_return_goes_to_the_township_queue_and_the_township_dispatches(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]
    status, body = await act(harness, complaint, "return", harness.village_code, reason="不在本村")
    assert status == 200
    assert body["status"] == "pending_dispatch"
    assert body["assignee"]["code"] == harness.township_code  # type: ignore[index]

    other_village = harness.system.jurisdiction.villages(harness.township_code)[2].code
    status, body = await act(
        harness, complaint, "dispatch", harness.township_code, org_code=other_village
    )
    assert status == 200, body
    view = await harness.view(complaint)
    assert view["status"] == "assigned"
    assert view["assignee"]["code"] == other_village
    assert view["deadlines"]["accept_by"] is not None


async def test_a_return_needs_a_reason_and_only_the_assignee_returns(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    status, _ = await act(harness, complaint, "return", harness.village_code)
    assert status == 422
    status, _ = await act(harness, complaint, "return", harness.township_code, reason="不归我们")
    assert status == 403


async def test_too_many_returns_send_it_to_the_county_for_a_decision(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    villages = [v.code for v in harness.system.jurisdiction.villages(harness.township_code)]
    current = harness.village_code
    for attempt in range(3):  # the default policy allows 2 returns
        status, body = await act(harness, complaint, "return", current, reason="不在本村")
        assert status == 200, body
        if attempt < 2:
            assert body["assignee"]["code"] == harness.township_code  # type: ignore[index]
            current = villages[attempt + 1]
            status, _ = await act(
                harness, complaint, "dispatch", harness.township_code, org_code=current
            )
            assert status == 200
    assert body["status"] == "pending_dispatch"
    assert body["assignee"]["code"] == "620922"  # type: ignore[index]


async def test_dispatch_only_goes_down_inside_the_jurisdiction(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    elsewhere = harness.system.jurisdiction.villages(
        harness.system.jurisdiction.townships()[3].code
    )[0].code
    status, _ = await act(harness, complaint, "dispatch", harness.township_code, org_code=elsewhere)
    assert status == 403
    status, body = await act(
        harness, complaint, "dispatch", harness.village_code, org_code=harness.township_code
    )
    assert status == 403  # up is not a dispatch
    status, body = await act(harness, complaint, "dispatch", "620922", org_code="999999999")
    assert status == 422, body


async def test_places_outside_any_village_or_the_county_go_to_a_dispatch_queue(
    harness: Harness,
) -> None:
    beijing = await harness.submit(location={"lat": 39.9, "lon": 116.4})
    view = await harness.view(beijing["id"])
    assert (view["status"], view["assignee"]["code"]) == ("pending_dispatch", "620922")

    unknown = await harness.submit(location={"grid_code": "620922999999999"})
    view = await harness.view(unknown["id"])
    assert (view["status"], view["assignee"]["code"]) == ("pending_dispatch", "620922")


async def test_a_major_dispute_starts_at_the_county(harness: Harness) -> None:
    submitted = await harness.submit(category="重大矛盾纠纷")
    view = await harness.view(submitted["id"])
    assert view["level"] == "county"
    assert view["status"] == "assigned"
    assert view["assignee"]["code"] == "620922"


async def test_figures_per_level(harness: Harness) -> None:
    quick = (await harness.submit())["id"]
    slow = (await harness.submit())["id"]
    await harness.advance(timedelta(minutes=30))
    assert (await act(harness, quick, "accept", harness.village_code))[0] == 200
    assert (await act(harness, quick, "resolve", harness.village_code, message="好了"))[0] == 200
    await harness.advance(timedelta(hours=2))  # the slow one climbs to the township
    assert (await act(harness, slow, "accept", harness.township_code))[0] == 200
    assert (await act(harness, slow, "resolve", harness.township_code, message="好了"))[0] == 200

    county_staff = harness.staff("620922")
    response = await harness.client.get("/api/v1/stats", headers=county_staff)
    assert response.status_code == 200
    figures = response.json()
    village, township, county = figures["levels"]
    assert (village["received"], village["resolved"], village["escalations"]) == (2, 1, 1)
    assert village["mean_time_to_accept_seconds"] == 1800.0
    assert (township["received"], township["resolved"]) == (1, 1)
    assert county["received"] == 0
    assert figures["resolved"] == 2
    assert figures["share_resolved_at_village"] == 0.5

    other = await harness.client.get(
        "/api/v1/stats", params={"org": "620922101"}, headers=county_staff
    )
    assert other.json()["received"] == 0
    bad = await harness.client.get("/api/v1/stats", params={"org": "123"}, headers=county_staff)
    assert bad.status_code == 422
