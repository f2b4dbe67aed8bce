"""The county dashboard in a real browser: the cards show the figures, the charts draw.

Three complaints are filed through the API (two in one township, one in another) and the
first village resolves one of them; then a county user opens /staff/dashboard with the
sign-in cookie the workbench sets, at desktop and at phone size.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from services.routing.dashboard_scope import BEIJING
from tests.browser.conftest import LiveServer, shoot

COUNTY = "620922"
SESSION_COOKIE = "yijian_staff"


def _wait_for_case(client: httpx.Client, complaint: str, headers: dict[str, str]) -> None:
    """The live server routes in the background: wait (bounded) until routing has the case."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if client.get(f"/api/v1/cases/{complaint}", headers=headers).status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"routing never opened case {complaint}")


@pytest.fixture(scope="module")
def seeded(live_server: LiveServer) -> LiveServer:
    places = live_server.system.jurisdiction
    township_1, township_2 = (t.code for t in places.townships()[:2])
    village_1, village_2 = (v.code for v in places.villages(township_1)[:2])
    village_3 = places.villages(township_2)[0].code
    county = {"Authorization": f"Bearer {live_server.staff_token(COUNTY)}"}
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        filed = []
        for village in (village_1, village_2, village_3):
            response = client.post(
                "/api/v1/complaints",
                json={
                    "description": "村口路灯坏了三天，晚上看不清路",
                    "category": "道路交通",
                    "location": {"village_code": village},
                },
            )
            assert response.status_code == 201, response.text
            filed.append(response.json()["id"])
        for complaint in filed:
            _wait_for_case(client, complaint, county)
        village_staff = {"Authorization": f"Bearer {live_server.staff_token(village_1)}"}
        for action, body in (("accept", None), ("resolve", {"message": "路灯已修好"})):
            response = client.post(
                f"/api/v1/complaints/{filed[0]}/{action}", json=body, headers=village_staff
            )
            assert response.status_code == 200, response.text
    return live_server


def _sign_in(page: Page, server: LiveServer, org: str) -> list[str]:
    """Carry the session cookie a workbench sign-in would set; collect console errors."""
    page.context.add_cookies(
        [
            {
                "name": SESSION_COOKIE,
                "value": server.staff_token(org),
                "url": server.url,
                "httpOnly": True,
                "sameSite": "Strict",
            }
        ]
    )
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def today_label() -> str:
    """Today in Beijing as the charts label a day: 3/2."""
    today = datetime.now(BEIJING).date()
    return f"{today.month}/{today.day}"


def _figure(page: Page, key: str) -> str:
    return page.locator(f'[data-figure="{key}"]').inner_text()


def test_the_county_dashboard_shows_the_figures_and_charts_on_a_desktop(
    seeded: LiveServer, desktop: Page, tmp_path: Path
) -> None:
    errors = _sign_in(desktop, seeded, COUNTY)
    desktop.goto(f"{seeded.url}/staff/dashboard")
    expect(desktop.locator("#board")).to_be_visible(timeout=15_000)
    expect(desktop.locator("#scope-name")).to_have_text("瓜州县")

    assert _figure(desktop, "received") == "3件"
    assert _figure(desktop, "resolved") == "1件"
    assert _figure(desktop, "on_time_rate") == "100.0%"
    assert _figure(desktop, "escalations") == "0次"
    assert _figure(desktop, "village.received") == "3件"
    assert _figure(desktop, "village.resolution_rate") == "33.3%"
    assert _figure(desktop, "township.received") == "0件"

    bars = desktop.locator("#chart-rate svg g.bar")
    expect(bars).to_have_count(15)
    first_township = seeded.system.jurisdiction.townships()[0].name
    expect(desktop.locator("#chart-rate svg")).to_contain_text(f"{first_township}")
    expect(desktop.locator("#chart-rate svg")).to_contain_text("50.0% (1/2)")
    assert desktop.locator("#chart-rate svg rect.mark").count() == 2  # two townships with data
    assert "各乡镇办结率" in (desktop.locator("#chart-rate svg title").first.text_content() or "")
    expect(desktop.locator("#chart-escalations svg path.line")).to_have_count(1)
    escalations = desktop.locator("#chart-escalations svg")
    expect(escalations.locator("text.axis").last).to_have_text(today_label())
    assert "没有数据" in (escalations.locator("desc").text_content() or "")  # none escalated
    expect(desktop.locator("#chart-ontime svg circle.dot")).to_have_count(1)  # one day resolved
    shoot(desktop, "dashboard-desktop")

    with desktop.expect_download() as download_info:
        desktop.get_by_role("button", name="导出统计表 (CSV)").click()
    download = download_info.value
    assert download.suggested_filename.startswith("yijian-stats-620922-")
    saved = tmp_path / "stats.csv"
    download.save_as(saved)
    content = saved.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    assert "瓜州县,合计,3,1,33.3%" in content.decode("utf-8-sig")

    # The county narrows to one township: its villages take the chart.
    desktop.get_by_label("范围", exact=True).select_option(label=first_township)
    expect(desktop.locator("#scope-name")).to_have_text(first_township)
    expect(desktop.locator("#rate-title")).to_have_text("各村(社区)办结率")
    expect(desktop.locator('[data-figure="received"]')).to_have_text("2件")
    assert errors == []


def test_a_township_can_narrow_the_period_and_sees_its_villages(
    seeded: LiveServer, desktop: Page
) -> None:
    township = seeded.system.jurisdiction.townships()[0]
    errors = _sign_in(desktop, seeded, township.code)
    desktop.goto(f"{seeded.url}/staff/dashboard")
    expect(desktop.locator("#scope-name")).to_have_text(township.name, timeout=15_000)
    expect(desktop.locator("#rate-title")).to_have_text("各村(社区)办结率")
    assert _figure(desktop, "received") == "2件"
    desktop.get_by_role("button", name="近7天").click()
    expect(desktop.locator("#chart-escalations svg circle.dot")).to_have_count(7)
    assert "from=" in desktop.url
    shoot(desktop, "dashboard-township-desktop")
    assert errors == []


def test_without_a_sign_in_the_page_sends_you_to_sign_in_and_back(
    seeded: LiveServer, desktop: Page
) -> None:
    response = desktop.goto(f"{seeded.url}/staff/dashboard")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    desktop.wait_for_url("**/staff?next=%2Fstaff%2Fdashboard", timeout=15_000)


def test_the_dashboard_reads_on_a_phone(seeded: LiveServer, phone: Page) -> None:
    errors = _sign_in(phone, seeded, COUNTY)
    phone.goto(f"{seeded.url}/staff/dashboard")
    expect(phone.locator("#board")).to_be_visible(timeout=15_000)
    expect(phone.locator("#chart-rate svg g.bar")).to_have_count(15)
    assert _figure(phone, "received") == "3件"
    # Nothing wider than the screen: no sideways scrolling on a phone.
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shoot(phone, "dashboard-phone")
    assert errors == []
