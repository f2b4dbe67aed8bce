"""A citizen complaining about their own village committee may keep their identity from it.

With ``contact.conceal_from_village`` the village (community) never sees who complained —
not masked, not on request, not the address — whatever the role of its staff; the township
and the county still may reveal it, audited; notify tells the village nothing about them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.intake.contacts import contact_of
from services.notify.store import deliveries
from services.routing.users import Role
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from tests.e2e.test_personal_data import every_row
from yijian.clock import FakeClock

PHONE = "13987654321"
NAME = "欧阳娜娜"
ADDRESS = "渊泉镇柳树巷17号"
# What a masked view would show: none of it may reach the village either.
TRACES = (PHONE, NAME, ADDRESS, "139****", "欧*", "4321", "柳树巷")
COMPLAINT = "村委会挪用了修路的钱，不敢当面说"


def headers(harness: Harness, org: str, role: Role, user: str) -> dict[str, str]:
    token = harness.system.routing.tokens.issue(user, org, role.value)
    return {"Authorization": f"Bearer {token}"}


async def submit_concealed(harness: Harness, conceal: bool = True) -> str:
    submitted = await harness.submit(
        description=COMPLAINT,
        category="其他",
        contact={"name": NAME, "phone": PHONE, "conceal_from_village": conceal},
        location={"village_code": harness.village_code, "address": ADDRESS},
    )
    complaint_id: str = submitted["id"]
    return complaint_id


async def case_view(harness: Harness, complaint: str, who: dict[str, str]) -> dict[str, Any]:
    response = await harness.client.get(f"/api/v1/cases/{complaint}", headers=who)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_village_staff_see_nothing_even_as_supervisors(harness: Harness) -> None:
    complaint = await submit_concealed(harness)
    village = harness.village_code
    for role in (Role.STAFF, Role.SUPERVISOR, Role.ADMIN):
        who = headers(harness, village, role, f"村{role.value}")
        response = await harness.client.get(f"/api/v1/cases/{complaint}", headers=who)
        assert response.status_code == 200, response.text
        for trace in TRACES:
            assert trace not in response.text, (role, trace)
        detail = response.json()
        shown = detail["submission"]
        assert shown["description"] == COMPLAINT  # the work itself is not hidden
        assert shown["contact"] is None
        assert shown["contact_withheld"] is True
        assert shown["address_hidden"] is False
        assert shown["location"]["address"] is None
        assert detail["can_reveal_contact"] is False
        # The village is told why, so nobody thinks the citizen left no contact.
        assert "不向所在村(社区)透露其身份" in detail["privacy_notice"]
        assert "乡镇" in detail["privacy_notice"]

        refused = await harness.client.post(f"/api/v1/cases/{complaint}/contact", headers=who)
        assert refused.status_code == 403, (role, refused.text)
        reason = refused.json()["detail"]
        assert ("supervisors" if role == Role.STAFF else "not learn who they are") in reason
        for trace in TRACES:
            assert trace not in refused.text, (role, trace)

    entries = await harness.system.routing.audit.entries(complaint)
    outcomes = {(e["username"], e["outcome"]) for e in entries if e["action"] == "reveal_contact"}
    assert outcomes == {
        ("村staff", "refused:403"),  # plain staff: refused for their role already
        ("村supervisor", "refused:403:withheld"),
        ("村admin", "refused:403:withheld"),
    }


async def test_the_township_and_county_may_still_reveal_audited(harness: Harness) -> None:
    complaint = await submit_concealed(harness)
    township = headers(harness, harness.township_code, Role.SUPERVISOR, "镇主任")
    detail = await case_view(harness, complaint, township)
    assert detail["submission"]["contact"] == {"name": "欧***", "phone": "139****4321"}
    assert detail["submission"]["contact_withheld"] is False
    assert detail["can_reveal_contact"] is True
    # Told too, so that the township does not pass the contact down to the village.
    assert "请勿" in detail["privacy_notice"]
    revealed = await harness.client.post(
        f"/api/v1/cases/{complaint}/contact",
        headers={**township, "X-Request-ID": "reveal-township-1"},
    )
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["phone"] == PHONE
    assert revealed.json()["address"] == ADDRESS

    county_code = harness.system.jurisdiction.county.code
    county = headers(harness, county_code, Role.SUPERVISOR, "县平台")
    assert (
        await harness.client.post(f"/api/v1/cases/{complaint}/contact", headers=county)
    ).status_code == 200
    plain = headers(harness, harness.township_code, Role.STAFF, "镇干事")
    masked = await case_view(harness, complaint, plain)
    assert masked["submission"]["contact"]["phone"] == "139****4321"
    assert masked["can_reveal_contact"] is False

    entries = await harness.system.routing.audit.entries(complaint)
    reveals = [(e["username"], e["outcome"]) for e in entries if e["action"] == "reveal_contact"]
    assert ("镇主任", "ok") in reveals
    assert ("县平台", "ok") in reveals


async def test_without_the_choice_a_village_supervisor_may_reveal(harness: Harness) -> None:
    complaint = await submit_concealed(harness, conceal=False)
    chief = headers(harness, harness.village_code, Role.SUPERVISOR, "村主任")
    detail = await case_view(harness, complaint, chief)
    assert detail["privacy_notice"] is None
    assert detail["submission"]["contact"]["phone"] == "139****4321"
    assert detail["can_reveal_contact"] is True
    revealed = await harness.client.post(f"/api/v1/cases/{complaint}/contact", headers=chief)
    assert revealed.status_code == 200
    assert revealed.json()["phone"] == PHONE


async def test_the_choice_stays_in_intake_and_the_village_is_notified_of_nothing_personal(
    harness: Harness,
) -> None:
    complaint = await submit_concealed(harness)
    async with harness.system.intake.database.engine.connect() as connection:
        kept = await contact_of(connection, harness.system.intake.seal, complaint)
    assert kept is not None
    assert kept.conceal_from_village is True
    assert kept.phone == PHONE

    # Nobody accepts: the township supervises, and both levels are told.
    await harness.advance(timedelta(hours=2, minutes=5))
    async with harness.system.notify.database.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(deliveries.c.recipient_key, deliveries.c.text).where(
                    deliveries.c.complaint_id == complaint
                )
            )
        ).all()
    to_village = [row.text for row in rows if row.recipient_key.endswith(harness.village_code)]
    to_township = [row.text for row in rows if row.recipient_key.endswith(harness.township_code)]
    assert len(to_village) >= 2  # the assignment, then the notice of supervision
    assert to_township
    for text in to_village + to_township:
        for trace in TRACES:
            assert trace not in text, (trace, text)

    # The choice never travels: events carry no trace of it, nor of the contact.
    logged = await every_row(harness.sql_log.engine)
    assert complaint in logged
    for trace in ("conceal", PHONE, NAME, ADDRESS):
        assert trace not in logged, trace


async def test_a_malformed_choice_is_refused_and_nothing_is_stored(harness: Harness) -> None:
    for bad in ("maybe", {"yes": True}, [True]):
        response = await harness.client.post(
            "/api/v1/complaints",
            json={
                "description": COMPLAINT,
                "location": {"village_code": harness.village_code},
                "contact": {"phone": PHONE, "conceal_from_village": bad},
            },
        )
        assert response.status_code == 422, (bad, response.text)
        assert "conceal_from_village" in response.text
    await harness.settle()
    inbox = await harness.client.get("/api/v1/cases", headers=harness.staff(harness.village_code))
    assert inbox.json()["total"] == 0


async def test_an_open311_client_can_ask_for_it_with_an_attribute(tmp_path: Path) -> None:
    harness = await start_harness(tmp_path, FakeClock(MONDAY_MORNING), open311_api_keys="k")
    try:
        definition = (await harness.client.get("/open311/v2/services/other.json")).json()
        [offered] = [a for a in definition["attributes"] if a["code"] == "conceal_from_village"]
        assert {v["key"] for v in offered["values"]} == {"true", "false"}
        form = {
            "api_key": "k",
            "service_code": "other",
            "description": COMPLAINT,
            "attribute[village_code]": harness.village_code,
            "address_string": ADDRESS,
            "first_name": "娜娜",
            "last_name": "欧阳",
            "phone": PHONE,
        }
        wrong = await harness.client.post(
            "/open311/v2/requests.json", data=form | {"attribute[conceal_from_village]": "yes"}
        )
        assert wrong.status_code == 400
        assert "conceal_from_village" in wrong.json()[0]["description"]

        created = await harness.client.post(
            "/open311/v2/requests.json", data=form | {"attribute[conceal_from_village]": "true"}
        )
        assert created.status_code == 200, created.text
        complaint = created.json()[0]["service_request_id"]
        await harness.settle()
        chief = headers(harness, harness.village_code, Role.SUPERVISOR, "村主任")
        response = await harness.client.get(f"/api/v1/cases/{complaint}", headers=chief)
        assert response.status_code == 200
        assert response.json()["submission"]["contact_withheld"] is True
        for trace in TRACES:
            assert trace not in response.text, trace
        refused = await harness.client.post(f"/api/v1/cases/{complaint}/contact", headers=chief)
        assert refused.status_code == 403
    finally:
        await stop_harness(harness)
