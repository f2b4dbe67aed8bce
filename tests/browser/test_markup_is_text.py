"""Markup a citizen or a member of staff types is shown as the characters they typed, on a
real page, and never runs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from services.routing.users import DEMO_PASSWORD
from tests.browser.conftest import shoot
from tests.live import LiveServer, serve

TIMEOUT_MS = 15_000
DESCRIPTION = '路灯坏了<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
REPLY = '<a href="javascript:window.pwned=3" id="lure">点这里</a> \'; DROP TABLE cases; --'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("markup"), demo_users=True) as live:
        yield live


def _case_with_markup(live: LiveServer, village: str) -> str:
    staff = {"Authorization": f"Bearer {live.staff_token(village)}"}
    with httpx.Client(base_url=live.url, timeout=10) as client:
        response = client.post(
            "/api/v1/complaints",
            json={"description": DESCRIPTION, "location": {"village_code": village}},
        )
        assert response.status_code == 201, response.text
        complaint = str(response.json()["id"])
        # The live server assigns in the background: poll, bounded, until the case exists.
        deadline = time.monotonic() + 20
        while client.get(f"/api/v1/cases/{complaint}", headers=staff).status_code != 200:
            assert time.monotonic() < deadline, "routing never opened the case"
            time.sleep(0.05)
        base = f"/api/v1/complaints/{complaint}"
        assert client.post(f"{base}/accept", headers=staff).status_code == 200
        reply = client.post(f"{base}/reply", json={"message": REPLY}, headers=staff)
        assert reply.status_code == 200, reply.text
    return complaint


def test_markup_in_a_complaint_and_a_reply_is_shown_as_text(
    server: LiveServer, desktop: Page
) -> None:
    village = server.system.jurisdiction.villages("620922100")[2].code
    complaint = _case_with_markup(server, village)

    desktop.goto(f"{server.url}/staff")
    desktop.get_by_label("用户名", exact=True).fill(village)
    desktop.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
    desktop.get_by_role("button", name="登录").click()
    desktop.locator(f'.case[data-id="{complaint}"]').click()
    detail = desktop.locator("#detail")
    expect(detail).to_contain_text(DESCRIPTION, timeout=TIMEOUT_MS)
    expect(detail.locator(".history")).to_contain_text(REPLY)
    shoot(desktop, "staff-detail-markup-desktop")

    assert detail.locator("img[src=x], script:not([src]), #lure").count() == 0
    assert desktop.evaluate("() => window.pwned") is None
