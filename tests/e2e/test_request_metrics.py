"""Requests are timed under their route's template, never under a path holding an id."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.conftest import Harness


def timed(method: str, route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "yijian_http_request_seconds_count",
        {"method": method, "route": route, "status": status},
    )
    return value or 0.0


async def test_requests_are_counted_under_their_route_template(harness: Harness) -> None:
    submitted_before = timed("POST", "/api/v1/complaints", "201")
    viewed_before = timed("GET", "/api/v1/complaints/{complaint_id}", "200")
    missing_before = timed("GET", "unmatched", "404")

    complaint = await harness.submit()
    await harness.view(complaint["id"])
    assert (await harness.client.get("/no/such/page")).status_code == 404

    assert timed("POST", "/api/v1/complaints", "201") == submitted_before + 1
    assert timed("GET", "/api/v1/complaints/{complaint_id}", "200") == viewed_before + 1
    assert timed("GET", "unmatched", "404") == missing_before + 1
    for metric in REGISTRY.collect():
        if metric.name == "yijian_http_request_seconds":
            assert all(complaint["id"] not in s.labels["route"] for s in metric.samples)
