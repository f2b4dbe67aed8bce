"""The API documentation pages render in a real browser under their Content-Security-Policy."""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page

from tests.browser.conftest import LiveServer, shoot

# ReDoc's "API docs by Redocly" footer loads its maker's logo from a CDN. The policy refusing
# it is the point (the offline docs stay offline), so that one refusal is expected.
_REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _violations(page: Page) -> list[str]:
    """Console errors and script failures: a CSP refusal shows up as one of these."""
    seen: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and _REDOC_LOGO not in message.text:
            seen.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


@pytest.mark.parametrize("path", ["/redoc", "/docs"])
def test_the_api_docs_list_the_complaint_endpoints(
    live_server: LiveServer, desktop: Page, path: str
) -> None:
    problems = _violations(desktop)
    desktop.goto(f"{live_server.url}{path}")
    desktop.get_by_text("/api/v1/complaints", exact=False).first.wait_for(timeout=15_000)
    shoot(desktop, f"api-docs{path.replace('/', '-')}-desktop")
    assert problems == []
