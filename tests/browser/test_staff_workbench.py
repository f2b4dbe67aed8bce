"""The staff workbench in a real browser: sign in, find the complaint, act on it.

A village worker signs in on a phone, sees the new complaint in the inbox, accepts and
resolves it. A township supervisor signs in on a desktop and finds, in the 督办 list, a
complaint whose village let the acceptance deadline lapse. The server runs with
``YIJIAN_DEMO_USERS`` on a fake clock, so the lapse happens by moving the clock, not by
waiting; the browser itself runs in real time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from services.routing.users import DEMO_PASSWORD
from tests.browser.conftest import LiveServer, shoot
from tests.live import serve
from yijian.clock import FakeClock

TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, FakeClock]]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    with serve(
        tmp_path_factory.mktemp("workbench"), clock, demo_users=True, deadline_poll_seconds=0.05
    ) as live:
        yield live, clock


def _submit(client: httpx.Client, village: str, description: str) -> str:
    response = client.post(
        "/api/v1/complaints",
        json={
            "description": description,
            "category": "道路交通",
            "location": {"village_code": village},
            "contact": {"name": "王小明", "phone": "13912345678"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _wait_until(check: object, what: str) -> None:
    """The live server works in the background: poll (bounded) until ``check()`` holds."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _watch_console(page: Page) -> list[str]:
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # A 401 is how the page learns nobody is signed in (and how a wrong password ends).
        if message.type == "error" and "status of 401" not in message.text:
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _sign_in(page: Page, url: str, username: str, shot: str | None = None) -> None:
    page.goto(f"{url}/staff")
    expect(page.get_by_role("heading", name="工作人员登录")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
    if shot:
        shoot(page, shot)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#work-view")).to_be_visible(timeout=TIMEOUT_MS)


def test_a_village_worker_accepts_and_resolves_on_a_phone(
    server: tuple[LiveServer, FakeClock], phone: Page
) -> None:
    live, _ = server
    village = live.system.jurisdiction.villages("620922100")[0]
    token = {"Authorization": f"Bearer {live.staff_token(village.code)}"}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        complaint = _submit(client, village.code, "村口路灯坏了三天，晚上看不清路")
        _wait_until(
            lambda: client.get(f"/api/v1/cases/{complaint}", headers=token).status_code == 200,
            "routing opened the case",
        )
        tracking_no = client.get(f"/api/v1/cases/{complaint}", headers=token).json()["case"][
            "tracking_no"
        ]
    errors = _watch_console(phone)

    # A wrong password gets one clear message, whoever the user is.
    phone.goto(f"{live.url}/staff")
    phone.get_by_label("用户名", exact=True).fill(village.code)
    phone.get_by_label("密码", exact=True).fill("not-the-password")
    phone.get_by_role("button", name="登录").click()
    expect(phone.locator("#login-error")).to_have_text("用户名或密码错误", timeout=TIMEOUT_MS)

    _sign_in(phone, live.url, village.code, shot="staff-login-phone")
    expect(phone.locator("#who-org")).to_contain_text(village.name)
    row = phone.locator(f'.case[data-id="{complaint}"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    expect(row).to_contain_text(tracking_no)
    expect(row.locator(".countdown")).to_contain_text("签收时限 剩余")
    expect(row).to_have_attribute("data-urgency", "green")
    expect(phone.get_by_role("tab", name="督办")).to_be_hidden()  # villages supervise no one
    shoot(phone, "staff-inbox-phone")

    row.click()
    detail = phone.locator("#detail")
    expect(detail.get_by_role("heading", name=tracking_no)).to_be_visible(timeout=TIMEOUT_MS)
    expect(detail).to_contain_text("村口路灯坏了三天")
    expect(detail).to_contain_text("王**")  # plain staff see the contact masked
    expect(detail).to_contain_text("139****5678")
    expect(detail).not_to_contain_text("13912345678")
    expect(phone.locator("#lists")).to_be_hidden()  # on a phone the case replaces the list
    shoot(phone, "staff-detail-phone")

    detail.get_by_role("button", name="签收", exact=True).click()
    expect(detail.locator(".detail-title .status")).to_have_text("已签收", timeout=TIMEOUT_MS)
    detail.get_by_role("button", name="办结", exact=True).click()
    detail.get_by_label("办结情况说明").fill("已更换路灯灯泡，晚上恢复照明")
    detail.get_by_role("button", name="确认办结").click()
    expect(detail.locator(".detail-title .status")).to_have_text("已办结", timeout=TIMEOUT_MS)
    expect(detail.locator(".history")).to_contain_text("已更换路灯灯泡")
    expect(detail.get_by_role("button", name="回访", exact=True)).to_be_visible()
    shoot(phone, "staff-resolved-phone")

    with httpx.Client(base_url=live.url, timeout=10) as client:
        case = client.get(f"/api/v1/cases/{complaint}", headers=token).json()["case"]
    assert case["status"] == "resolved"
    assert errors == []


def test_a_township_supervisor_sees_what_it_supervises(
    server: tuple[LiveServer, FakeClock], desktop: Page, phone: Page
) -> None:
    live, clock = server
    township = live.system.jurisdiction.townships()[1]
    village = live.system.jurisdiction.villages(township.code)[0]
    token = {"Authorization": f"Bearer {live.staff_token(township.code)}"}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        late = _submit(client, village.code, "灌溉渠堵塞，地里浇不上水")
        _wait_until(
            lambda: client.get(f"/api/v1/cases/{late}", headers=token).status_code == 200,
            "routing opened the case",
        )
        clock.advance(timedelta(hours=3))  # nobody accepted within the two hours
        _wait_until(
            lambda: any(
                item["complaint_id"] == late
                for item in client.get(
                    "/api/v1/cases", params={"view": "supervised"}, headers=token
                ).json()["items"]
            ),
            "the township supervises the lapsed complaint",
        )
    errors = _watch_console(desktop)

    _sign_in(desktop, live.url, township.code, shot="staff-login-desktop")
    shoot(desktop, "staff-inbox-desktop")
    desktop.get_by_role("tab", name="督办").click()
    row = desktop.locator(f'.case[data-id="{late}"]')
    expect(row).to_be_visible(timeout=TIMEOUT_MS)
    expect(row).to_contain_text(village.name)
    expect(row.locator(".status")).to_have_text("督办中")
    shoot(desktop, "staff-supervised-desktop")

    row.click()
    detail = desktop.locator("#detail")
    expect(detail).to_contain_text("灌溉渠堵塞", timeout=TIMEOUT_MS)
    expect(detail).to_contain_text(f"{township.name} · 乡镇")
    expect(desktop.locator("#lists")).to_be_visible()  # side by side on a desktop
    # A township supervisor may reveal the contact; the reveal is audited.
    detail.get_by_role("button", name="查看完整联系方式").click()
    expect(detail).to_contain_text("13912345678", timeout=TIMEOUT_MS)
    shoot(desktop, "staff-detail-desktop")
    assert errors == []

    phone_errors = _watch_console(phone)
    _sign_in(phone, live.url, township.code)
    phone.get_by_role("tab", name="督办").click()
    expect(phone.locator(f'.case[data-id="{late}"]')).to_be_visible(timeout=TIMEOUT_MS)
    shoot(phone, "staff-supervised-phone")
    assert phone_errors == []

    admin = live.system.routing.tokens.issue("auditor", "620922", "admin")
    entries = [
        entry
        for entry in httpx.get(
            f"{live.url}/api/v1/staff/audit",
            params={"complaint_id": late},
            headers={"Authorization": f"Bearer {admin}"},
        ).json()
        if entry["action"] == "reveal_contact"
    ]
    assert [(e["username"], e["outcome"]) for e in entries] == [(township.code, "ok")]


def test_the_workbench_page_allows_no_inline_script(server: tuple[LiveServer, FakeClock]) -> None:
    live, _ = server
    response = httpx.get(f"{live.url}/staff")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in response.text  # only <script type="module" src=…>


def test_the_village_is_told_why_it_sees_no_contact(
    server: tuple[LiveServer, FakeClock], phone: Page
) -> None:
    live, _ = server
    township = live.system.jurisdiction.townships()[2]
    village = live.system.jurisdiction.villages(township.code)[0]
    token = {"Authorization": f"Bearer {live.staff_token(village.code)}"}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        response = client.post(
            "/api/v1/complaints",
            json={
                "description": "村委会账目不公开，不敢当面问",
                "location": {"village_code": village.code, "address": "村委会院里"},
                "contact": {"name": "王小明", "phone": "13912345678", "conceal_from_village": True},
            },
        )
        assert response.status_code == 201, response.text
        complaint = response.json()["id"]
        _wait_until(
            lambda: client.get(f"/api/v1/cases/{complaint}", headers=token).status_code == 200,
            "routing opened the case",
        )
    errors = _watch_console(phone)
    _sign_in(phone, live.url, village.code)
    phone.locator(f'.case[data-id="{complaint}"]').click()
    detail = phone.locator("#detail")
    expect(detail).to_contain_text("村委会账目不公开", timeout=TIMEOUT_MS)
    expect(detail.locator(".privacy-notice")).to_contain_text("群众要求不向所在村(社区)透露其身份")
    expect(detail.locator(".contact")).to_contain_text("联系方式和详细地址不在此显示")
    for trace in ("王小明", "王**", "13912345678", "139****5678", "村委会院里", "详细地址已隐藏"):
        expect(detail).not_to_contain_text(trace)
    expect(detail.get_by_role("button", name="查看完整联系方式")).to_have_count(0)
    shoot(phone, "staff-detail-concealed-village-phone")
    assert errors == []
