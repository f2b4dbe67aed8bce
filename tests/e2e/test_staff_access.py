"""Staff see and act only inside their jurisdiction; tokens, sessions and CSRF hold.

Every refusal is a 401, 403 or 404 that carries no data about the complaint.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest

from services.routing.users import Role
from tests.conftest import Harness
from yijian.auth import key_id

PASSWORD = "correct horse battery"
ACTIONS: list[tuple[str, dict[str, Any] | None]] = [
    ("accept", None),
    ("reply", {"message": "已安排"}),
    ("resolve", {"message": "已修好"}),
    ("return", {"reason": "不在本村"}),
    ("dispatch", {"org_code": "620922100002"}),
    ("visit", {"note": "群众满意"}),
    ("close", None),
]


async def add_user(
    harness: Harness, username: str, org: str, role: Role = Role.STAFF, **options: Any
) -> None:
    options.setdefault("must_change_password", False)
    await harness.system.routing.users.add(username, org, role, PASSWORD, **options)


async def sign_in(harness: Harness, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in through the API; the client keeps the session cookie it sets."""
    harness.client.cookies.clear()
    response = await harness.client.post(
        "/api/v1/staff/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def leaks(text: str, submitted: dict[str, Any]) -> bool:
    return submitted["tracking_no"] in text or "路灯" in text or "assignee" in text


@pytest.fixture
def villages(harness: Harness) -> tuple[str, str]:
    mine, neighbour = harness.system.jurisdiction.villages(harness.township_code)[:2]
    return mine.code, neighbour.code


async def test_a_village_cannot_see_or_act_on_another_villages_complaint(
    harness: Harness, villages: tuple[str, str]
) -> None:
    mine, neighbour = villages
    submitted = await harness.submit(contact={"name": "张三", "phone": "13812345678"})
    complaint = submitted["id"]
    await add_user(harness, "neighbour", neighbour, Role.SUPERVISOR)
    login = await sign_in(harness, "neighbour")
    csrf = {"X-CSRF-Token": login["csrf_token"]}

    detail = await harness.client.get(f"/api/v1/cases/{complaint}")
    assert detail.status_code == 404
    assert not leaks(detail.text, submitted)
    for view in ("assigned", "supervised"):
        listed = await harness.client.get("/api/v1/cases", params={"view": view})
        assert listed.status_code == 200
        assert listed.json()["items"] == []
    for action, body in ACTIONS:
        response = await harness.client.post(
            f"/api/v1/complaints/{complaint}/{action}", json=body, headers=csrf
        )
        assert response.status_code in (403, 404), (action, response.text)
        assert not leaks(response.text, submitted), action
    reveal = await harness.client.post(f"/api/v1/cases/{complaint}/contact", headers=csrf)
    assert reveal.status_code == 404
    assert "138" not in reveal.text
    photo = await harness.client.get(f"/api/v1/cases/{complaint}/photos/p1")
    assert photo.status_code == 404

    # Nothing happened to the case, and the owner still sees it untouched.
    owner = await harness.client.get(f"/api/v1/cases/{complaint}", headers=harness.staff(mine))
    assert owner.json()["case"]["status"] == "assigned"
    assert owner.json()["actions"] == []


async def test_a_guessed_id_gets_the_same_answer_as_a_hidden_one(
    harness: Harness, villages: tuple[str, str]
) -> None:
    mine, neighbour = villages
    submitted = await harness.submit()
    headers = harness.staff(neighbour)
    hidden = await harness.client.get(f"/api/v1/cases/{submitted['id']}", headers=headers)
    guessed = await harness.client.get(f"/api/v1/cases/{uuid4().hex}", headers=headers)
    assert (hidden.status_code, hidden.json()) == (guessed.status_code, guessed.json())
    acted = await harness.client.post(
        f"/api/v1/complaints/{uuid4().hex}/accept", headers=harness.staff(mine)
    )
    assert acted.status_code == 404


async def test_a_township_sees_only_its_own_villages(harness: Harness) -> None:
    townships = harness.system.jurisdiction.townships()
    own, other = townships[0].code, townships[1].code
    submitted = await harness.submit()
    complaint = submitted["id"]
    await harness.advance(timedelta(hours=3))  # the village lets it lapse: 督办 by its township

    def ids(body: dict[str, Any]) -> list[str]:
        return [item["complaint_id"] for item in body["items"]]

    supervised = await harness.client.get(
        "/api/v1/cases", params={"view": "supervised"}, headers=harness.staff(own)
    )
    assert ids(supervised.json()) == [complaint]
    stranger = harness.staff(other)
    for view in ("assigned", "supervised"):
        listed = await harness.client.get("/api/v1/cases", params={"view": view}, headers=stranger)
        assert ids(listed.json()) == []
    hidden = await harness.client.get(f"/api/v1/cases/{complaint}", headers=stranger)
    assert hidden.status_code == 404
    acted = await harness.client.post(f"/api/v1/complaints/{complaint}/accept", headers=stranger)
    assert acted.status_code in (403, 404)
    assert not leaks(acted.text, submitted)
    # The county sees what its townships supervise.
    county = await harness.client.get(
        "/api/v1/cases", params={"view": "supervised"}, headers=harness.staff("620922")
    )
    assert ids(county.json()) == [complaint]


def _token(
    claims: dict[str, Any], key: str, algorithm: str = "HS256", kid: str | None = None
) -> str:
    """Signed outside StaffTokens; names the key ``key`` (or ``kid``) the way StaffTokens does."""
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid or key_id(key)})


@pytest.mark.filterwarnings("ignore:The HMAC key")  # the HS512 forgery's key is short
async def test_expired_forged_and_other_algorithm_tokens_are_401(harness: Harness) -> None:
    secret = harness.system.settings.auth_secret_value()
    now = int(harness.clock.now().timestamp())
    good = {"sub": "x", "org": harness.village_code, "role": "admin", "exp": now + 3600}
    expired = harness.system.routing.tokens.issue("x", harness.village_code)
    harness.clock.advance(timedelta(hours=13))
    now = int(harness.clock.now().timestamp())
    good["exp"] = now + 3600
    bad_tokens = {
        "expired": expired,
        "wrong key": _token(good, "not-the-secret-but-just-as-long-as-it"),
        "HS512": _token(good, secret, "HS512"),
        "none": jwt.encode(good, "", algorithm="none", headers={"kid": key_id(secret)}),
        "no key id": jwt.encode(good, secret, algorithm="HS256"),
        "wrong key, current key id": _token(good, "not-the-secret-but-long", kid=key_id(secret)),
        "no org": _token({"sub": "x", "exp": now + 3600}, secret),
        "garbage": "not.a.token",
    }
    for why, token in bad_tokens.items():
        harness.client.cookies.clear()
        as_bearer = await harness.client.get(
            "/api/v1/cases", headers={"Authorization": f"Bearer {token}"}
        )
        assert as_bearer.status_code == 401, why
        harness.client.cookies.set("yijian_staff", token)
        as_cookie = await harness.client.get("/api/v1/cases")
        assert as_cookie.status_code == 401, why
        assert "required" not in as_cookie.json()["detail"]  # the cookie was read, and refused
    harness.client.cookies.clear()
    fine = await harness.client.get(
        "/api/v1/cases", headers={"Authorization": f"Bearer {_token(good, secret)}"}
    )
    assert fine.status_code == 200  # the same claims, properly signed, pass
    harness.client.cookies.set("yijian_staff", _token(good, secret))
    assert (await harness.client.get("/api/v1/cases")).status_code == 200


async def test_cookie_changes_need_the_csrf_token_and_bearer_calls_do_not(
    harness: Harness,
) -> None:
    complaint = (await harness.submit())["id"]
    await add_user(harness, "cun", harness.village_code)
    login = await sign_in(harness, "cun")
    url = f"/api/v1/complaints/{complaint}/accept"

    assert (await harness.client.get("/api/v1/cases")).status_code == 200  # reads need none
    missing = await harness.client.post(url)
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json()["detail"]
    wrong = await harness.client.post(url, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    cross_site = await harness.client.post(
        url, headers={"X-CSRF-Token": login["csrf_token"], "Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    case = await harness.client.get(f"/api/v1/cases/{complaint}")
    assert case.json()["case"]["status"] == "assigned"  # none of those did anything

    done = await harness.client.post(url, headers={"X-CSRF-Token": login["csrf_token"]})
    assert done.status_code == 200
    harness.client.cookies.clear()
    bearer = await harness.client.post(
        f"/api/v1/complaints/{complaint}/reply",
        json={"message": "已安排电工"},
        headers={"Authorization": f"Bearer {login['token']}"},
    )
    assert bearer.status_code == 200


async def test_sign_in_does_not_tell_whether_a_user_exists(harness: Harness) -> None:
    await add_user(harness, "cun", harness.village_code)
    await add_user(harness, "gone", harness.village_code)
    await harness.system.routing.users.set_disabled("gone", True)
    answers = []
    for username, password in (
        ("nobody", PASSWORD),
        ("cun", "wrong password"),
        ("gone", PASSWORD),
        ("bad name with spaces", PASSWORD),
    ):
        response = await harness.client.post(
            "/api/v1/staff/login", json={"username": username, "password": password}
        )
        answers.append(
            (response.status_code, response.json(), response.cookies.get("yijian_staff"))
        )
    assert answers == [(401, {"detail": "wrong username or password"}, None)] * 4
    entries = await harness.system.routing.audit.entries()
    assert [(e["action"], e["outcome"]) for e in entries] == [("login", "failed")] * 4


async def test_signing_out_ends_the_session_before_the_token_expires(harness: Harness) -> None:
    await add_user(harness, "cun", harness.village_code)
    login = await sign_in(harness, "cun")
    bearer = {"Authorization": f"Bearer {login['token']}"}
    assert (await harness.client.get("/api/v1/cases", headers=bearer)).status_code == 200
    out = await harness.client.post(
        "/api/v1/staff/logout", headers={"X-CSRF-Token": login["csrf_token"]}
    )
    assert out.status_code == 204
    assert "yijian_staff" not in harness.client.cookies
    again = await harness.client.get("/api/v1/cases", headers=bearer)
    assert again.status_code == 401
    assert "ended" in again.json()["detail"]


async def test_disabling_a_user_ends_their_sessions(harness: Harness) -> None:
    await add_user(harness, "cun", harness.village_code)
    login = await sign_in(harness, "cun")
    bearer = {"Authorization": f"Bearer {login['token']}"}
    await harness.system.routing.users.set_disabled("cun", True)
    assert (await harness.client.get("/api/v1/cases", headers=bearer)).status_code == 401


async def test_a_temporary_password_must_be_changed_before_any_work(harness: Harness) -> None:
    await add_user(harness, "new", harness.village_code, must_change_password=True)
    login = await sign_in(harness, "new")
    assert login["user"]["must_change_password"] is True
    csrf = {"X-CSRF-Token": login["csrf_token"]}
    blocked = await harness.client.get("/api/v1/cases")
    assert blocked.status_code == 403
    assert "password" in blocked.json()["detail"]
    same = await harness.client.post(
        "/api/v1/staff/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=csrf,
    )
    assert same.status_code == 422
    changed = await harness.client.post(
        "/api/v1/staff/password",
        json={"current_password": PASSWORD, "new_password": "a much better one"},
        headers=csrf,
    )
    assert changed.status_code == 204
    assert (await harness.client.get("/api/v1/cases")).status_code == 200
    me = await harness.client.get("/api/v1/staff/me")
    assert me.json()["must_change_password"] is False
    await sign_in(harness, "new", "a much better one")
