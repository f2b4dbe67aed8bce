"""The API documentation page renders in a real browser (proves the browser set-up)."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import LiveServer, shoot


def test_the_api_docs_list_the_complaint_endpoints(live_server: LiveServer, desktop: Page) -> None:
    desktop.goto(f"{live_server.url}/redoc")
    desktop.get_by_text("/api/v1/complaints", exact=False).first.wait_for(timeout=15_000)
    shoot(desktop, "api-docs-desktop")
