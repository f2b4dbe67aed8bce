"""The gateway's route table: every public path reaches its service, internal ones none."""

from __future__ import annotations

from pathlib import Path

from services.gateway import pick, route_table
from tests.conftest import make_settings


def test_public_paths_go_to_the_service_that_owns_them(tmp_path: Path) -> None:
    table = route_table(make_settings(tmp_path))
    assert pick(table, "POST", "/api/v1/complaints") == "intake"
    assert pick(table, "GET", "/") == "intake"
    assert pick(table, "POST", "/api/v1/complaints/abc/accept") == "routing"
    assert pick(table, "GET", "/staff") == "routing"
    assert pick(table, "GET", "/api/v1/escalation/summary") == "escalation"
    # A known path with another method still reaches its service, which answers 405.
    assert pick(table, "DELETE", "/api/v1/complaints") == "intake"
    assert pick(table, "GET", "/no/such/page") is None


def test_service_to_service_routes_are_not_reachable_through_the_gateway(
    tmp_path: Path,
) -> None:
    table = route_table(make_settings(tmp_path))
    assert pick(table, "GET", "/internal/v1/complaints/abc") is None
    assert pick(table, "GET", "/internal/v1/complaints/abc/wechat-recipient") is None
