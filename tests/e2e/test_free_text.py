"""Every field a person types — description, address, name, reply, return reason, visit
note — keeps markup, SQL, emoji and any script exactly as typed, and refuses what cannot be
stored (blank, too long, control characters, half a surrogate pair) with a 422 that
changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Harness

AS_TYPED = {
    "markup": '<img src=x onerror="alert(1)"><script>alert(2)</script>',
    "sql": "'; DROP TABLE cases; --",
    "emoji": "路灯坏了🚨💡👍🏽",
    "mixed scripts": "Лампа 路灯 lamp ئۇيغۇرچە ١٢٣ 한국어",
    "combining and zero-width": "e\u0301 路\u200b灯",
    "multi-line": "第一行\n第二行\t缩进",
}


def supervisor(harness: Harness, org: str) -> dict[str, str]:
    token = harness.system.routing.tokens.issue("supervisor", org, "supervisor")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("text", AS_TYPED.values(), ids=AS_TYPED.keys())
async def test_what_people_type_is_kept_as_typed_everywhere(harness: Harness, text: str) -> None:
    submitted = await harness.submit(
        description=text,
        location={"village_code": harness.village_code, "address": text},
        contact={"name": text[:50], "phone": "13912345678"},
    )
    complaint = submitted["id"]
    staff = harness.staff(harness.village_code)
    base = f"/api/v1/complaints/{complaint}"
    assert (await harness.client.post(f"{base}/accept", headers=staff)).status_code == 200
    reply = await harness.client.post(f"{base}/reply", json={"message": text}, headers=staff)
    assert reply.status_code == 200, reply.text
    await harness.settle()

    detail = await harness.client.get(f"/api/v1/cases/{complaint}", headers=staff)
    assert detail.status_code == 200
    body = detail.json()
    assert body["submission"]["description"] == text
    assert [a["note"] for a in body["actions"] if a["action"] == "reply"] == [text]
    revealed = await harness.client.post(
        f"/api/v1/cases/{complaint}/contact", headers=supervisor(harness, harness.village_code)
    )
    assert revealed.status_code == 200, revealed.text
    shown: dict[str, Any] = revealed.json()
    assert shown["name"] == text[:50].strip()
    assert shown["address"] == text


LONG = "路" * 2001
UNSTORABLE = {
    "NUL": "路灯\x00坏了",
    "bell": "路灯\x07坏了",
    "C1 control": "路灯\x85坏了",
}


def raw_json(body: str) -> dict[str, Any]:
    """Sent as bytes: httpx itself would refuse to encode half a surrogate pair."""
    return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}


@pytest.mark.parametrize(
    "text", [*UNSTORABLE.values(), "   ", LONG], ids=[*UNSTORABLE, "blank", "long"]
)
async def test_a_description_nobody_could_store_is_422(harness: Harness, text: str) -> None:
    response = await harness.client.post(
        "/api/v1/complaints",
        json={"description": text, "location": {"village_code": harness.village_code}},
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert await harness.settle() == 0  # nothing was published


async def test_half_a_surrogate_pair_is_422_in_every_citizen_field(harness: Harness) -> None:
    village = harness.village_code
    for body in (
        r'{"description": "a\ud800b", "location": {"village_code": "VILLAGE"}}',
        r'{"description": "ok", "location": {"village_code": "VILLAGE", "address": "\udfff"}}',
        r'{"description": "ok", "location": {"village_code": "VILLAGE"}, '
        r'"contact": {"name": "\ud83d"}}',
    ):
        body = body.replace("VILLAGE", village)
        response = await harness.client.post("/api/v1/complaints", **raw_json(body))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("action", "field", "text"),
    [
        ("reply", "message", "   "),
        ("reply", "message", "路" * 2001),
        ("reply", "message", "已处理\x00"),
        ("return", "reason", " \n "),
        ("return", "reason", "不\x1b[31m归我"),
        ("return", "reason", "路" * 501),
    ],
)
async def test_staff_text_that_cannot_be_stored_is_422_and_changes_nothing(
    harness: Harness, action: str, field: str, text: str
) -> None:
    complaint = (await harness.submit())["id"]
    staff = harness.staff(harness.village_code)
    base = f"/api/v1/complaints/{complaint}"
    if action == "reply":
        assert (await harness.client.post(f"{base}/accept", headers=staff)).status_code == 200
    before = (await harness.client.get(f"/api/v1/cases/{complaint}", headers=staff)).json()
    response = await harness.client.post(f"{base}/{action}", json={field: text}, headers=staff)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    after = (await harness.client.get(f"/api/v1/cases/{complaint}", headers=staff)).json()
    assert after["case"] == before["case"]
    assert after["actions"] == before["actions"]
