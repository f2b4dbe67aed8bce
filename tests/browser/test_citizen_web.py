"""The citizen web form in a real browser: submit on a phone, follow it, rate it, find it again.

Staff act through the API (their workbench has its own tests); the citizen's page must notice
by itself, without a reload, because it polls the citizen view.
"""

from __future__ import annotations

import re
import struct
import zlib

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import LiveServer, shoot

TOWNSHIP = "620922100"  # 渊泉镇
WAIT_MS = 20_000  # the page polls every 4 s; routing and escalation run in the background


def tiny_png(width: int = 48, height: int = 32) -> bytes:
    """A real (decodable) PNG, so the page can show a thumbnail of it."""
    rows = b"".join(b"\x00" + bytes([200, 60, 40]) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def problems(phone: Page, desktop: Page) -> list[str]:
    """Console errors (a CSP violation shows up here) on either page; must stay empty."""
    seen: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.append(f"{message.text} at {message.location.get('url')}")

    for page in (phone, desktop):
        page.on("console", listen)
        page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def staff_act(server: LiveServer, complaint_id: str, action: str, **body: str) -> None:
    village = server.system.jurisdiction.villages(TOWNSHIP)[0].code
    response = httpx.post(
        f"{server.url}/api/v1/complaints/{complaint_id}/{action}",
        json=body or None,
        headers={"Authorization": f"Bearer {server.staff_token(village)}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def accept_and_resolve(server: LiveServer, complaint_id: str) -> None:
    staff_act(server, complaint_id, "accept")
    staff_act(server, complaint_id, "resolve", message="已更换路灯")


def fill_and_submit(page: Page, server: LiveServer, name: str, *, photo: bool) -> str:
    """Fill the form as a citizen would and submit it; returns the complaint id."""
    page.goto(f"{server.url}/")
    form = page.locator("#complaint-form")
    form.locator(".chip label", has_text="道路交通").click()
    form.get_by_label("发生了什么").fill("村口路灯坏了三天，晚上看不清路")
    form.get_by_label("乡镇").select_option(label="渊泉镇")
    village = server.system.jurisdiction.villages(TOWNSHIP)[0]
    form.get_by_label("村(社区)", exact=True).select_option(value=village.code)
    if photo:
        page.locator("#photos").set_input_files(
            {"name": "street.png", "mimeType": "image/png", "buffer": tiny_png()}
        )
        expect(page.locator("#photo-list img")).to_have_count(1)
    form.get_by_label("手机号").fill("13912345678")
    shoot(page, f"citizen-form-{name}")
    form.get_by_role("button", name="提交").click()

    expect(page.locator("#tracking-no")).to_have_text(re.compile(r"^GZ\d{6}-[0-9A-Z]{6}$"))
    match = re.search(r"#/c/([0-9a-f]{32})$", page.url)
    assert match, page.url
    expect(page.locator("#status")).to_have_text("已分派", timeout=WAIT_MS)
    expect(page.locator("#timeline")).to_contain_text(f"已分派至{village.name}办理")
    expect(page.locator("#facts")).to_contain_text("签收时限")
    return match.group(1)


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_a_citizen_submits_follows_and_rates_satisfied(
    live_server: LiveServer, phone: Page, desktop: Page, problems: list[str], device: str
) -> None:
    page = phone if device == "phone" else desktop
    page.goto(f"{live_server.url}/")
    expect(page.locator(".chip label")).to_have_count(
        len(live_server.system.policy.categories_named())
    )
    complaint_id = fill_and_submit(page, live_server, device, photo=True)
    expect(page.locator("#upload-status")).to_have_text("1 张照片已上传", timeout=WAIT_MS)
    expect(page.locator("#result-photos img")).to_have_count(1, timeout=WAIT_MS)
    shoot(page, f"citizen-result-{device}")

    page.evaluate("window.notReloaded = true")
    accept_and_resolve(live_server, complaint_id)
    expect(page.locator("#status")).to_have_text("已办结", timeout=WAIT_MS)
    expect(page.locator("#rating")).to_be_visible()
    assert page.evaluate("window.notReloaded === true")  # it came by polling
    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("已签收")
    expect(timeline).to_contain_text("已办结")
    shoot(page, f"citizen-resolved-{device}")

    page.get_by_role("button", name="满意", exact=True).click()
    expect(page.locator("#rated")).to_have_text("您的评价：满意", timeout=WAIT_MS)
    expect(page.locator("#rating")).to_be_hidden()
    expect(timeline).to_contain_text("您的评价：满意")
    shoot(page, f"citizen-rated-{device}")
    assert problems == []


def test_unsatisfied_reopens_it_and_the_page_says_so(
    live_server: LiveServer, phone: Page, problems: list[str]
) -> None:
    complaint_id = fill_and_submit(phone, live_server, "phone-second", photo=False)
    accept_and_resolve(live_server, complaint_id)
    expect(phone.locator("#rating")).to_be_visible(timeout=WAIT_MS)
    phone.get_by_role("button", name="不满意").click()
    expect(phone.locator("#status")).to_have_text("已重办", timeout=WAIT_MS)
    expect(phone.locator("#timeline")).to_contain_text("已申请重新办理")
    expect(phone.locator("#timeline li.latest")).to_contain_text("已重新交由")
    expect(phone.locator("#facts")).to_contain_text("签收时限")  # a fresh deadline
    expect(phone.locator("#rating")).to_be_hidden()
    shoot(phone, "citizen-reopened-phone")
    assert problems == []


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_a_citizen_finds_a_complaint_by_tracking_number_and_phone(
    live_server: LiveServer, phone: Page, desktop: Page, problems: list[str], device: str
) -> None:
    page = phone if device == "phone" else desktop
    filed = httpx.post(
        f"{live_server.url}/api/v1/complaints",
        json={
            "description": "垃圾三天没人清运",
            "category": "环境卫生",
            "location": {
                "village_code": live_server.system.jurisdiction.villages(TOWNSHIP)[1].code
            },
            "contact": {"phone": "138 0000 4321"},
        },
        timeout=10,
    ).json()
    page.goto(f"{live_server.url}/#/lookup")
    lookup = page.locator("#lookup-form")
    lookup.get_by_label("受理编号").fill(filed["tracking_no"].lower())
    lookup.get_by_label("手机号后四位").fill("1234")
    lookup.get_by_role("button", name="查询").click()
    expect(page.locator("#lookup-error")).to_contain_text("没有找到")
    shoot(page, f"citizen-lookup-{device}")

    lookup.get_by_label("手机号后四位").fill("4321")
    lookup.get_by_role("button", name="查询").click()
    expect(page.locator("#tracking-no")).to_have_text(filed["tracking_no"])
    expect(page.locator("#facts")).to_contain_text("环境卫生", timeout=WAIT_MS)
    # The page remembers it on this device; the token never appears in the address.
    page.goto(f"{live_server.url}/")
    expect(page.locator("#mine-list")).to_contain_text(filed["tracking_no"])
    shoot(page, f"citizen-form-remembered-{device}")
    assert filed["citizen_token"] not in page.url
    # The browser logs the deliberate miss (a 404 from lookup), and nothing else.
    assert len(problems) == 1
    assert "404" in problems[0]
    assert "/api/v1/complaints/lookup" in problems[0]


def test_the_form_works_at_320_pixels_and_shows_what_is_missing(
    live_server: LiveServer, phone: Page, problems: list[str]
) -> None:
    phone.set_viewport_size({"width": 320, "height": 640})
    phone.goto(f"{live_server.url}/")
    expect(phone.locator(".chip label").first).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    phone.get_by_role("button", name="提交").click()
    expect(phone.locator("#form-error")).to_have_text("请选择问题类别")
    phone.locator(".chip label", has_text="其他").click()
    phone.get_by_role("button", name="提交").click()
    expect(phone.locator("#form-error")).to_have_text("请写一下发生了什么")
    phone.locator("#description").fill("<img src=x onerror=alert(1)>")
    phone.get_by_role("button", name="提交").click()
    expect(phone.locator("#form-error")).to_contain_text("选择乡镇和村(社区)")
    phone.locator("#photos").set_input_files(
        {"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"GIF89a not a photo"}
    )
    expect(phone.locator("#photo-error")).to_contain_text("不是 JPEG、PNG 或 WebP")
    shoot(phone, "citizen-form-errors-320")
    assert problems == []


def test_the_page_sends_a_strict_content_security_policy(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/", timeout=10)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # no inline script to allow
    script = httpx.get(f"{live_server.url}/citizen/main.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{live_server.url}/citizen/..%2Fapi.py", timeout=10).status_code == 404
    assert httpx.get(f"{live_server.url}/citizen/nothing.js", timeout=10).status_code == 404


def test_the_citizen_can_keep_their_identity_from_the_village(
    live_server: LiveServer, phone: Page, problems: list[str]
) -> None:
    phone.goto(f"{live_server.url}/")
    form = phone.locator("#complaint-form")
    choice = form.get_by_label("不向所在村(社区)透露我的身份")
    # Nothing to keep from anyone until a contact is given.
    expect(choice).to_be_hidden()
    form.locator(".chip label", has_text="其他").click()
    form.get_by_label("发生了什么").fill("村委会账目不公开，不敢当面问")
    form.get_by_label("乡镇").select_option(label="渊泉镇")
    village = live_server.system.jurisdiction.villages(TOWNSHIP)[2]
    form.get_by_label("村(社区)", exact=True).select_option(value=village.code)
    form.get_by_label("具体地点").fill("村委会院里")
    form.get_by_label("手机号").fill("13700001234")
    expect(choice).to_be_visible()
    expect(choice).not_to_be_checked()
    expect(phone.locator("#conceal-hint")).to_contain_text("乡镇和县平台仍可查看")
    form.get_by_label("手机号").fill("")
    expect(choice).to_be_hidden()
    form.get_by_label("手机号").fill("13700001234")
    choice.check()
    choice.scroll_into_view_if_needed()
    shoot(phone, "citizen-form-conceal-from-village")
    form.get_by_role("button", name="提交").click()

    expect(phone.locator("#tracking-no")).to_have_text(re.compile(r"^GZ\d{6}-[0-9A-Z]{6}$"))
    match = re.search(r"#/c/([0-9a-f]{32})$", phone.url)
    assert match, phone.url
    complaint_id = match.group(1)
    token = live_server.system.settings.secret_value("internal_token")
    record = httpx.get(
        f"{live_server.url}/internal/v1/complaints/{complaint_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert record["conceal_from_village"] is True
    assert record["contact"]["phone"] == "13700001234"
    # The form is ready for the next complaint: no number, so no choice either.
    phone.goto(f"{live_server.url}/#/")
    expect(form.get_by_label("手机号")).to_have_value("")
    expect(choice).to_be_hidden()
    assert problems == []
