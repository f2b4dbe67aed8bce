"""Every response carries the security headers; another site cannot change anything.

The headers are set once, in the kernel, for the all-in-one app and for each service's own
app; the pages keep working under the policy (tests/browser checks that in a browser).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from services.intake.store import complaints
from services.process import create_service_app
from services.routing.users import Role
from tests.conftest import Harness, make_settings
from yijian.settings import SERVICES

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy, response.url
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "geolocation=(self)" in response.headers["permissions-policy"]
    assert "microphone=()" in response.headers["permissions-policy"]


def body(village: str, **extra: object) -> dict[str, object]:
    return {
        "description": "路灯坏了",
        "location": {"village_code": village},
        "category": "道路交通",
        **extra,
    }


async def stored(harness: Harness) -> int:
    async with harness.system.intake.database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(complaints)) or 0)


async def test_every_kind_of_response_carries_the_headers(harness: Harness) -> None:
    client = harness.client
    submitted = await harness.submit()
    responses = [
        await client.get("/"),
        await client.get("/citizen/main.js"),
        await client.get("/staff"),
        await client.get("/staff/dashboard"),
        await client.get("/api/v1/categories"),
        await client.get("/api/v1/complaints/nothing-here"),  # 404
        await client.post("/api/v1/complaints", json={"description": ""}),  # 422
        await client.post("/api/v1/complaints", content=b"x" * 70_000),  # 413 from BodyLimit
        await client.get(
            f"/api/v1/complaints/{submitted['id']}", headers=harness.citizen(submitted["id"])
        ),
        await client.get("/healthz"),
        await client.get("/metrics"),
    ]
    for response in responses:
        assert_secured(response)
    assert [r.status_code for r in responses[5:8]] == [404, 422, 413]
    page = responses[0].headers["content-security-policy"]
    assert "script-src 'self';" in page
    assert "style-src 'self';" in page
    assert all("strict-transport-security" not in r.headers for r in responses)


async def test_hsts_and_a_secure_cookie_only_when_served_over_tls(harness: Harness) -> None:
    await harness.system.routing.users.add(
        "tls.user",
        harness.village_code,
        Role.STAFF,
        "correct horse battery",
        must_change_password=False,
    )
    login = {"username": "tls.user", "password": "correct horse battery"}
    plain = await harness.client.post("/api/v1/staff/login", json=login)
    assert plain.status_code == 200
    assert "strict-transport-security" not in plain.headers
    cookie = plain.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "secure" not in cookie

    forwarded = await harness.client.post(
        "/api/v1/staff/login", json=login, headers={"X-Forwarded-Proto": "https"}
    )
    assert forwarded.headers["strict-transport-security"].startswith("max-age=31536000")
    cookie = forwarded.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "; secure" in cookie


async def test_a_route_that_needs_a_stricter_policy_keeps_its_own(harness: Harness) -> None:
    submitted = await harness.submit()
    citizen = harness.citizen(submitted["id"])
    added = await harness.client.post(
        f"/api/v1/complaints/{submitted['id']}/photos",
        files={"photo": ("p.png", PNG, "image/png")},
        headers=citizen,
    )
    assert added.status_code == 201, added.text
    photo = await harness.client.get(added.json()["url"], headers=citizen)
    assert photo.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert photo.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_api_docs_allow_exactly_their_own_inline_script(
    harness: Harness, path: str
) -> None:
    page = await harness.client.get(path)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    script_src = policy.split("script-src")[1].split(";")[0]
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in script_src
    assert script_src.count("sha256-") == len(scripts)
    assert "unsafe-inline" not in script_src
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    # The relaxed policy is for the docs only, not for what they describe.
    spec = await harness.client.get("/openapi.json")
    assert "worker-src" not in spec.headers["content-security-policy"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://elsewhere.example"},
        {"Origin": "null"},
    ],
)
async def test_a_post_from_another_site_is_refused_and_stores_nothing(
    harness: Harness, headers: dict[str, str]
) -> None:
    response = await harness.client.post(
        "/api/v1/complaints", json=body(harness.village_code), headers=headers
    )
    assert response.status_code == 403
    assert "cross-site" in response.json()["detail"]
    assert_secured(response)
    assert await stored(harness) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://yijian.test"},
        {"Origin": "http://yijian.test"},
        {"Origin": "http://public.example", "X-Forwarded-Host": "public.example"},
        {},  # not a browser: the mini-program's wx.request, curl, a server
    ],
)
async def test_a_post_from_our_own_pages_or_a_non_browser_passes(
    harness: Harness, headers: dict[str, str]
) -> None:
    response = await harness.client.post(
        "/api/v1/complaints", json=body(harness.village_code), headers=headers
    )
    assert response.status_code == 201, response.text


async def test_open311_clients_on_other_sites_may_post(harness: Harness) -> None:
    response = await harness.client.post(
        "/open311/v2/requests.json",
        data={"service_code": "roads-traffic", "description": "路灯坏了"},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example"},
    )
    # Refused by Open311's own api_key check, not by the cross-site guard.
    assert response.status_code in (400, 403)
    assert "cross-site" not in response.text


async def test_a_cross_site_staff_form_post_is_refused_even_with_the_cookie(
    harness: Harness,
) -> None:
    submitted = await harness.submit()
    await harness.system.routing.users.add(
        "victim",
        harness.village_code,
        Role.STAFF,
        "correct horse battery",
        must_change_password=False,
    )
    login = await harness.client.post(
        "/api/v1/staff/login", json={"username": "victim", "password": "correct horse battery"}
    )
    csrf = login.json()["csrf_token"]
    forged = await harness.client.post(
        f"/api/v1/complaints/{submitted['id']}/accept",
        headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf},
    )
    assert forged.status_code == 403
    case = await harness.client.get(f"/api/v1/cases/{submitted['id']}")
    assert case.json()["case"]["status"] == "assigned"


@pytest.mark.parametrize("name", SERVICES)
async def test_each_service_app_of_the_production_shape_sets_them_too(
    tmp_path: Path, name: str
) -> None:
    app = create_service_app(name, make_settings(tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        alive = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        cross = await client.post(
            "/api/v1/anything", headers={"Sec-Fetch-Site": "cross-site"}, json={}
        )
    assert_secured(alive)
    assert "strict-transport-security" in alive.headers
    assert cross.status_code == 403
