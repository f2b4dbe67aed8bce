"""The workbench API: the inbox and its deadlines, the case view, the return visit, the audit.

Runs the whole embedded system; routing reads the citizen's submission from intake's
internal API in process, as ``make run`` does.
"""

from __future__ import annotations

import ast
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.routing.intake_client import IntakeClient
from services.routing.users import DEMO_PASSWORD, Role
from tests.conftest import Harness, start_harness, stop_harness
from yijian.clock import FakeClock

ROUTING = Path(__file__).resolve().parents[2] / "services" / "routing"


async def inbox(harness: Harness, org: str, **params: Any) -> dict[str, Any]:
    response = await harness.client.get("/api/v1/cases", params=params, headers=harness.staff(org))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(
    harness: Harness, complaint: str, action: str, org: str, **body: Any
) -> httpx.Response:
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint}/{action}", json=body or None, headers=harness.staff(org)
    )
    await harness.settle()
    return response


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_inbox_puts_the_nearest_deadline_first_with_its_colour(
    harness: Harness,
) -> None:
    village = harness.village_code
    normal = (await harness.submit())["id"]
    done = (await harness.submit())["id"]
    assert (await act(harness, done, "accept", village)).status_code == 200
    assert (await act(harness, done, "resolve", village, message="已修好")).status_code == 200
    await harness.advance(timedelta(minutes=10))
    urgent = (await harness.submit(urgency="urgent"))["id"]  # 30 minutes to sign, not 2 hours

    body = await inbox(harness, village)
    items = body["items"]
    assert [item["complaint_id"] for item in items] == [urgent, normal, done]
    assert body["total"] == 3
    first = items[0]
    # The deadline is the one escalation set, as the citizen sees it too.
    citizen = await harness.view(urgent)
    assert when(first["deadline"]["due_at"]) == when(citizen["deadlines"]["accept_by"])
    assert first["deadline"]["stage"] == "accept"
    assert first["deadline"]["seconds_left"] == 30 * 60
    assert [item["deadline"]["colour"] for item in items[:2]] == ["green", "green"]
    assert items[2]["deadline"] is None  # resolved: waits for 回访 and 归档, no clock

    await harness.advance(timedelta(minutes=20))
    items = (await inbox(harness, village))["items"]
    assert [item["deadline"]["colour"] for item in items[:2]] == ["amber", "green"]

    accepted = await act(harness, urgent, "accept", village)
    assert accepted.status_code == 200
    items = (await inbox(harness, village))["items"]
    assert [item["complaint_id"] for item in items] == [normal, urgent, done]
    assert items[1]["deadline"]["stage"] == "resolve"


async def test_a_lapsed_county_deadline_shows_red(harness: Harness) -> None:
    major = (await harness.submit(category="重大矛盾纠纷"))["id"]
    county = harness.system.jurisdiction.county.code
    item = (await inbox(harness, county))["items"][0]
    assert (item["complaint_id"], item["deadline"]["colour"]) == (major, "green")
    await harness.advance(timedelta(days=1))
    item = (await inbox(harness, county))["items"][0]
    assert item["overdue"] is True
    assert item["deadline"]["colour"] == "red"
    assert item["deadline"]["seconds_left"] < 0


async def test_supervision_lists_what_lapsed_below(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    village, township = harness.village_code, harness.township_code
    assert (await inbox(harness, township, view="supervised"))["items"] == []
    await harness.advance(timedelta(hours=2, minutes=1))

    supervised = (await inbox(harness, township, view="supervised"))["items"]
    assert [item["complaint_id"] for item in supervised] == [complaint]
    item = supervised[0]
    assert (item["status"], item["supervisor"]["code"]) == ("escalated", township)
    # The new clock's deadline replaced the village's: the township's four hours.
    assert item["deadline"]["seconds_left"] == 4 * 3600
    citizen = await harness.view(complaint)
    assert when(item["deadline"]["due_at"]) == when(citizen["deadlines"]["accept_by"])
    assert (await inbox(harness, township))["items"] == []  # not assigned to the township
    mine = (await inbox(harness, village))["items"]
    assert [(i["complaint_id"], i["supervisor"]["code"]) for i in mine] == [(complaint, township)]
    # Once the case is dispatched down to another village, nobody supervises it any more.
    other = harness.system.jurisdiction.villages(township)[3].code
    moved = await act(harness, complaint, "dispatch", township, org_code=other)
    assert moved.status_code == 200, moved.text
    assert (await inbox(harness, township, view="supervised"))["items"] == []
    moved_item = (await inbox(harness, other))["items"][0]
    assert moved_item["deadline"]["stage"] == "accept"
    assert moved_item["deadline"]["seconds_left"] == 2 * 3600


async def test_the_inbox_pages_and_filters(harness: Harness) -> None:
    village = harness.village_code
    ids = [(await harness.submit())["id"] for _ in range(3)]
    assert (await act(harness, ids[1], "accept", village)).status_code == 200
    first = await inbox(harness, village, limit=2)
    second = await inbox(harness, village, limit=2, offset=2)
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2
    assert len(second["items"]) == 1
    paged = [item["complaint_id"] for item in first["items"] + second["items"]]
    assert sorted(paged) == sorted(ids)
    accepted = await inbox(harness, village, status="accepted")
    assert [item["complaint_id"] for item in accepted["items"]] == [ids[1]]
    both = await inbox(harness, village, status=["accepted", "assigned"])
    assert both["total"] == 3
    for bad in ({"status": "lost"}, {"limit": 0}, {"limit": 201}, {"view": "all"}):
        response = await harness.client.get(
            "/api/v1/cases", params=bad, headers=harness.staff(village)
        )
        assert response.status_code == 422, bad


async def test_the_case_view_joins_what_the_citizen_sent_masked_for_plain_staff(
    harness: Harness,
) -> None:
    complaint = (
        await harness.submit(
            contact={"name": "张三", "phone": "13812345678"},
            location={"village_code": harness.village_code},
        )
    )["id"]
    headers = harness.staff(harness.village_code)
    response = await harness.client.get(f"/api/v1/cases/{complaint}", headers=headers)
    assert response.status_code == 200
    detail = response.json()
    assert detail["submission"]["description"] == "村口路灯坏了三天，晚上看不清路"
    assert detail["submission"]["contact"] == {"name": "张*", "phone": "138****5678"}
    assert "13812345678" not in response.text
    assert detail["can_reveal_contact"] is False
    assert detail["available_actions"] == ["accept", "return"]
    assert detail["place"]["village"] == harness.system.jurisdiction.villages("620922100")[0].name
    assert detail["submission_notice"] is None

    refused = await harness.client.post(f"/api/v1/cases/{complaint}/contact", headers=headers)
    assert refused.status_code == 403
    assert "138" not in refused.text

    supervisor = {
        "Authorization": "Bearer "
        + harness.system.routing.tokens.issue("主任", harness.township_code, Role.SUPERVISOR.value)
    }
    view = (await harness.client.get(f"/api/v1/cases/{complaint}", headers=supervisor)).json()
    assert view["can_reveal_contact"] is True
    assert view["submission"]["contact"]["phone"] == "138****5678"  # still masked until asked
    revealed = await harness.client.post(
        f"/api/v1/cases/{complaint}/contact",
        headers={**supervisor, "X-Request-ID": "req-reveal-1"},
    )
    assert revealed.status_code == 200
    assert revealed.json()["phone"] == "13812345678"
    assert revealed.json()["name"] == "张三"

    entries = await harness.system.routing.audit.entries(complaint)
    reveals = [(e["username"], e["outcome"], e["request_id"]) for e in entries]
    assert ("主任", "ok", "req-reveal-1") in reveals
    assert ("tester", "refused:403", reveals[-1][2]) in reveals


async def test_the_case_view_still_works_when_intake_is_down(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    headers = harness.staff(harness.village_code)
    routing = harness.system.routing

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy error</html>")

    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    for handler in (broken, garbled, failing):
        routing.intake.connect(
            IntakeClient(
                httpx.AsyncClient(
                    transport=httpx.MockTransport(handler), base_url="http://intake.test"
                )
            )
        )
        response = await harness.client.get(f"/api/v1/cases/{complaint}", headers=headers)
        assert response.status_code == 200, handler.__name__
        detail = response.json()
        assert detail["case"]["complaint_id"] == complaint
        assert detail["submission"] is None
        assert detail["submission_notice"], handler.__name__
        assert detail["available_actions"] == ["accept", "return"]
    # The work goes on without intake.
    assert (await act(harness, complaint, "accept", harness.village_code)).status_code == 200


async def test_archiving_follows_a_recorded_return_visit(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    village = harness.village_code
    assert (await act(harness, complaint, "visit", village, note="太早了")).status_code == 409
    for action, body in (("accept", {}), ("resolve", {"message": "已修好"})):
        assert (await act(harness, complaint, action, village, **body)).status_code == 200
    missing_note = await act(harness, complaint, "visit", village)
    assert missing_note.status_code == 422
    visited = await act(harness, complaint, "visit", village, note="群众说路灯亮了", satisfied=True)
    assert visited.status_code == 200
    assert visited.json()["visited"] is True
    again = await act(harness, complaint, "visit", village, note="再问一次")
    assert again.status_code == 409
    detail = (
        await harness.client.get(f"/api/v1/cases/{complaint}", headers=harness.staff(village))
    ).json()
    assert detail["visit"]["satisfied"] is True
    assert detail["available_actions"] == ["close"]
    assert detail["actions"][-1]["note"] == "群众说路灯亮了"
    assert (await act(harness, complaint, "close", village)).status_code == 200
    assert (await harness.view(complaint))["status"] == "closed"


async def test_every_staff_action_and_sign_in_is_audited(harness: Harness) -> None:
    await harness.system.routing.users.add(
        "cun", harness.village_code, Role.STAFF, "a good password", must_change_password=False
    )
    complaint = (await harness.submit())["id"]
    login = await harness.client.post(
        "/api/v1/staff/login", json={"username": "cun", "password": "a good password"}
    )
    csrf = {"X-CSRF-Token": login.json()["csrf_token"], "X-Request-ID": "trace-42"}
    url = f"/api/v1/complaints/{complaint}"
    assert (await harness.client.post(f"{url}/accept", headers=csrf)).status_code == 200
    assert (await harness.client.post(f"{url}/accept", headers=csrf)).status_code == 409
    await harness.client.post(f"{url}/resolve", json={"message": "修好了"}, headers=csrf)
    await harness.client.post("/api/v1/staff/logout", headers=csrf)

    entries = list(reversed(await harness.system.routing.audit.entries()))
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("login", "ok"),
        ("accept", "ok"),
        ("accept", "refused:409"),
        ("resolve", "ok"),
        ("logout", "ok"),
    ]
    assert {(e["username"], e["org_code"], e["role"]) for e in entries} == {
        ("cun", harness.village_code, "staff")
    }
    assert [e["request_id"] for e in entries[1:]] == ["trace-42"] * 4
    assert all(e["complaint_id"] == complaint for e in entries[1:4])
    # Only the county platform's administrators read the log.
    admin = harness.system.routing.tokens.issue("admin", "620922", "admin")
    read = await harness.client.get(
        "/api/v1/staff/audit", headers={"Authorization": f"Bearer {admin}"}
    )
    assert read.status_code == 200
    assert len(read.json()) == 5
    refused = await harness.client.get(
        "/api/v1/staff/audit", headers=harness.staff(harness.village_code)
    )
    assert refused.status_code == 403


def test_the_audit_log_is_only_ever_inserted_into() -> None:
    """No code path updates or deletes audit rows (a static check over routing's modules)."""
    writers = []
    for path in ROUTING.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"insert", "update", "delete"}
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "audit_log"
            ):
                writers.append((path.name, node.func.id))
    assert writers == [("audit.py", "insert")]


async def test_demo_users_exist_only_when_asked_for(tmp_path: Path) -> None:
    plain = await start_harness(tmp_path / "plain", FakeClock())
    try:
        refused = await plain.client.post(
            "/api/v1/staff/login", json={"username": "620922", "password": DEMO_PASSWORD}
        )
        assert refused.status_code == 401
    finally:
        await stop_harness(plain)
    demo = await start_harness(tmp_path / "demo", FakeClock(), demo_users=True)
    try:
        accounts = await demo.system.routing.users.all()
        assert len(accounts) == 1 + 15 + 83
        login = await demo.client.post(
            "/api/v1/staff/login", json={"username": "620922100", "password": DEMO_PASSWORD}
        )
        assert login.status_code == 200
        assert login.json()["user"]["role"] == "supervisor"
        assert login.json()["user"]["org"]["name"] == "渊泉镇"
    finally:
        await stop_harness(demo)
