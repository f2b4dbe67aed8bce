"""Every endpoint that names a complaint, found in the published OpenAPI, refuses anyone
but those the complaint belongs to: a neighbouring village in any role, another complaint's
citizen, nobody at all, and anyone guessing ids. A refusal is 401, 403 or 404 and says
nothing about the complaint; nothing changes.

The list of endpoints comes from the app itself, so a new one is covered the day it is
added — and fails here until it is given a request body below.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import uuid4

import pytest

from tests.conftest import Harness

# What each kind of endpoint is sent: valid requests, so only access can refuse them.
BODIES: dict[str, dict[str, Any]] = {
    "accept": {},
    "reply": {"json": {"message": "已安排人员处理"}},
    "resolve": {"json": {"message": "已修好"}},
    "return": {"json": {"reason": "不在本村范围"}},
    "dispatch": {"json": {"org_code": "620922100002"}},
    "visit": {"json": {"note": "群众满意"}},
    "close": {},
    "contact": {},
    "rating": {"json": {"rating": "unsatisfied"}},
    "photos": {"files": {"photo": ("p.png", b"\x89PNG\r\n\x1a\n" + os.urandom(64), "image/png")}},
}
ROLES = ("staff", "supervisor", "admin")


async def complaint_operations(harness: Harness) -> list[tuple[str, str]]:
    schema = (await harness.client.get("/openapi.json")).json()
    found = [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if "{complaint_id}" in path and not path.startswith("/internal/")
        for method in operations
    ]
    assert len(found) >= 14, found  # the casework, case, photo and rating endpoints
    return found


def request_for(method: str, path: str, complaint: str) -> tuple[str, str, dict[str, Any]]:
    url = path.replace("{complaint_id}", complaint).replace("{photo_id}", "p" * 32)
    if method == "GET":
        return method, url, {}
    last = path.rstrip("/").split("/")[-1]
    assert last in BODIES, f"give {method} {path} a request body in BODIES"
    return method, url, BODIES[last]


def leaks(text: str, submitted: dict[str, Any]) -> bool:
    return any(
        secret in text
        for secret in (submitted["tracking_no"], "路灯", "13812345678", "张三", "assignee")
    )


@pytest.fixture
async def submitted(harness: Harness) -> dict[str, Any]:
    return await harness.submit(contact={"name": "张三", "phone": "13812345678"})


async def test_a_neighbouring_village_in_any_role_is_refused_everywhere(
    harness: Harness, submitted: dict[str, Any]
) -> None:
    neighbour = harness.system.jurisdiction.villages(harness.township_code)[1].code
    for role in ROLES:
        token = harness.system.routing.tokens.issue(f"neighbour-{role}", neighbour, role)
        for method, path in await complaint_operations(harness):
            method, url, body = request_for(method, path, submitted["id"])
            answer = await harness.client.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, **body
            )
            assert answer.status_code in (401, 403, 404), (role, method, path, answer.text)
            assert not leaks(answer.text, submitted), (role, method, path)
    await assert_untouched(harness, submitted)


async def test_another_citizen_and_nobody_are_refused_everywhere(
    harness: Harness, submitted: dict[str, Any]
) -> None:
    other = await harness.submit(description="另一件事：垃圾没人清运")
    for headers in (harness.citizen(other["id"]), {}):
        for method, path in await complaint_operations(harness):
            method, url, body = request_for(method, path, submitted["id"])
            answer = await harness.client.request(method, url, headers=headers, **body)
            assert answer.status_code in (401, 403, 404), (headers, method, path, answer.text)
            assert not leaks(answer.text, submitted), (method, path)
    await assert_untouched(harness, submitted)


async def test_a_guessed_id_is_answered_as_a_hidden_one_is(
    harness: Harness, submitted: dict[str, Any]
) -> None:
    neighbour = harness.system.jurisdiction.villages(harness.township_code)[1].code
    headers = harness.staff(neighbour)
    for method, path in await complaint_operations(harness):
        answers = []
        for complaint in (submitted["id"], uuid4().hex):
            method, url, body = request_for(method, path, complaint)
            answer = await harness.client.request(method, url, headers=headers, **body)
            answers.append((answer.status_code, answer.text.replace(complaint, "<id>")))
        assert answers[0] == answers[1], (method, path)


async def assert_untouched(harness: Harness, submitted: dict[str, Any]) -> None:
    owner = harness.staff(harness.village_code)
    case = await harness.client.get(f"/api/v1/cases/{submitted['id']}", headers=owner)
    assert case.json()["case"]["status"] == "assigned"
    assert case.json()["actions"] == []
    assert case.json()["submission"]["photos"] == []
    assert (await harness.view(submitted["id"]))["rating"] is None
