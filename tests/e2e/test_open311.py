"""Open311 GeoReport v2, driven the way a GeoReport v2 client drives any city's endpoint.

``GeoReportClient`` knows nothing of yijian: it reads discovery, lists services, fetches a
definition, POSTs a form with ``api_key`` and ``jurisdiction_id``, and follows the request,
in JSON or XML. Every answer is checked against the GeoReport v2 field lists.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake.contacts import contact_of
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock

API_KEY = "county-issued-key"
JURISDICTION = "620922"

DISCOVERY_FIELDS = {"changeset", "contact", "key_service", "endpoints"}
ENDPOINT_FIELDS = {"specification", "url", "changeset", "type", "formats"}
SERVICE_FIELDS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
ATTRIBUTE_FIELDS = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}
CREATED_FIELDS = {"service_request_id", "service_notice", "account_id"}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(
        tmp_path, FakeClock(MONDAY_MORNING), open311_api_keys=f"other-key, {API_KEY}"
    )
    yield started
    await stop_harness(started)


def from_xml(element: ET.Element) -> Any:
    """XML back to plain data the way GeoReport v2 XML nests: lists of same-named children."""
    children = list(element)
    if not children:
        return element.text
    names = [child.tag for child in children]
    if len(set(names)) == 1 and names[0] in {
        "endpoint",
        "format",
        "attribute",
        "value",
        "service",
        "request",
        "error",
    }:
        return [from_xml(child) for child in children]
    return {child.tag: from_xml(child) for child in children}


class GeoReportClient:
    """A generic GeoReport v2 client: form-encoded POSTs, format suffixes, jurisdiction_id."""

    def __init__(self, http: httpx.AsyncClient, fmt: str, root: str = "/open311/v2/") -> None:
        self.http = http
        self.fmt = fmt
        self.root = root

    async def call(
        self, method: str, resource: str, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = f"{self.root}{resource}.{self.fmt}"
        query = {"jurisdiction_id": JURISDICTION, **(params or {})}
        if method == "POST":
            response = await self.http.post(url, data=query)
        else:
            response = await self.http.get(url, params=query)
        if self.fmt == "json":
            assert response.headers["content-type"].startswith("application/json")
            return response.status_code, response.json()
        assert response.headers["content-type"].startswith("text/xml")
        assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
        root = ET.fromstring(response.content)
        return response.status_code, (root.tag, from_xml(root))

    def unwrap(self, body: Any, root: str) -> Any:
        if self.fmt == "json":
            return body
        tag, data = body
        assert tag == root
        return data


def w3(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def check_request_shape(request: dict[str, Any]) -> None:
    assert set(request) >= REQUEST_FIELDS, REQUEST_FIELDS - set(request)
    assert request["status"] in {"open", "closed"}
    w3(request["requested_datetime"])
    for name in ("updated_datetime", "expected_datetime"):
        if request[name]:
            w3(request[name])


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_a_standard_client_reports_and_follows_a_request(harness: Harness, fmt: str) -> None:
    client = GeoReportClient(harness.client, fmt)

    status, body = await client.call("GET", "discovery")
    assert status == 200
    discovery = client.unwrap(body, "discovery")
    assert set(discovery) == DISCOVERY_FIELDS
    [endpoint] = discovery["endpoints"]
    assert set(endpoint) == ENDPOINT_FIELDS
    assert endpoint["url"].endswith("/open311/v2/")
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}

    status, body = await client.call("GET", "services")
    services = client.unwrap(body, "services")
    assert status == 200
    assert len(services) == len(harness.system.policy.categories_named())
    for service in services:
        assert set(service) == SERVICE_FIELDS
        assert service["type"] in {"realtime", "batch", "blackbox"}
        assert service["metadata"] in (True, "true")
    roads = next(s for s in services if s["service_name"] == "道路交通")

    status, body = await client.call("GET", f"services/{roads['service_code']}")
    assert status == 200
    definition = client.unwrap(body, "service_definition")
    assert definition["service_code"] == roads["service_code"]
    for attribute in definition["attributes"]:
        assert set(attribute) == ATTRIBUTE_FIELDS
        assert attribute["datatype"] in DATATYPES
    urgency = next(a for a in definition["attributes"] if a["code"] == "urgency")
    assert {v["key"] for v in urgency["values"]} == {"normal", "urgent"}

    lat, lon = harness.system.jurisdiction.point_in(harness.village_code)
    status, body = await client.call(
        "POST",
        "requests",
        {
            "api_key": API_KEY,
            "service_code": roads["service_code"],
            "lat": f"{lat:.6f}",
            "long": f"{lon:.6f}",
            "description": "村口路灯坏了三天，晚上看不清路",
            "first_name": "小明",
            "last_name": "王",
            "phone": "13800000000",
            "email": "wang@example.cn",
            "attribute[urgency]": "urgent",
            "media_url": "https://example.cn/photo.jpg",
        },
    )
    assert status == 200, body
    [created] = client.unwrap(body, "service_requests")
    assert set(created) == CREATED_FIELDS
    request_id = created["service_request_id"]
    assert "GZ" in created["service_notice"]
    await harness.settle()

    status, body = await client.call("GET", f"requests/{request_id}")
    assert status == 200
    [request] = client.unwrap(body, "service_requests")
    check_request_shape(request)
    village = harness.system.jurisdiction.get(harness.village_code)
    assert village is not None
    assert request["status"] == "open"
    assert request["agency_responsible"] == village.name
    assert request["service_code"] == roads["service_code"]
    # The deadline in force: urgent at the village resolves within 1 day (the policy).
    assert w3(request["expected_datetime"]) == MONDAY_MORNING + timedelta(days=1)

    for action in ("accept", "resolve"):
        reply = await harness.client.post(
            f"/api/v1/complaints/{request_id}/{action}",
            json={"message": "已修好"} if action == "resolve" else None,
            headers=harness.staff(harness.village_code),
        )
        assert reply.status_code == 200, reply.text
    await harness.settle()
    status, body = await client.call("GET", "requests", {"status": "closed"})
    [request] = client.unwrap(body, "service_requests")
    assert request["service_request_id"] == request_id
    assert request["status"] == "closed"
    assert not request["expected_datetime"]


async def test_the_contact_is_kept_but_never_listed(harness: Harness) -> None:
    lat, lon = harness.system.jurisdiction.point_in(harness.village_code)
    created = await harness.client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "service_code": "sanitation",
            "lat": f"{lat:.6f}",
            "long": f"{lon:.6f}",
            "address_string": "渊泉镇东街12号",
            "description": "张三家门口的垃圾堆了一周",
            "first_name": "Li",
            "last_name": "Wei",
            "phone": "13900001111",
            "email": "li.wei@example.cn",
        },
    )
    assert created.status_code == 200, created.text
    request_id = created.json()[0]["service_request_id"]
    await harness.settle()
    async with harness.system.intake.database.engine.connect() as connection:
        row = await contact_of(connection, harness.system.intake.seal, request_id)
    assert row is not None  # kept sealed; opened here with intake's key
    assert (row.name, row.phone, row.email) == ("Li Wei", "13900001111", "li.wei@example.cn")
    assert row.address == "渊泉镇东街12号"

    for fmt in ("json", "xml"):
        for url in (f"requests.{fmt}?extensions=true", f"requests/{request_id}.{fmt}"):
            response = await harness.client.get(f"/open311/v2/{url}")
            assert response.status_code == 200
            for secret in ("张三", "Li Wei", "Wei", "13900001111", "li.wei", "东街12号"):
                assert secret not in response.text, (url, secret)
    [listed] = (await harness.client.get(f"/open311/v2/requests/{request_id}.json")).json()
    assert listed["description"] is None
    assert listed["address"] is None
    assert listed["lat"] == round(lat, 2)  # about 1 km: the village, not the house
    assert listed["long"] == round(lon, 2)


async def test_extensions_show_the_level_and_the_supervision(harness: Harness) -> None:
    complaint = (await harness.submit())["id"]
    plain = (await harness.client.get(f"/open311/v2/requests/{complaint}.json")).json()[0]
    assert "extended_attributes" not in plain  # standard clients see standard documents
    extended = (
        await harness.client.get(f"/open311/v2/requests/{complaint}.json?extensions=true")
    ).json()[0]["extended_attributes"]
    assert extended["level"] == "village"
    assert extended["supervised"] is False
    assert extended["supervised_by"] is None

    await harness.advance(timedelta(hours=2, minutes=1))  # the village let 签收 lapse
    township = harness.system.jurisdiction.get(harness.township_code)
    assert township is not None
    [request] = (
        await harness.client.get(f"/open311/v2/requests/{complaint}.json?extensions=true")
    ).json()
    assert request["status"] == "open"
    assert "督办" in request["status_notes"]
    assert request["extended_attributes"]["level"] == "township"
    assert request["extended_attributes"]["level_label"] == "乡镇"
    assert request["extended_attributes"]["supervised"] is True
    assert request["extended_attributes"]["supervised_by"] == township.name
    assert request["extended_attributes"]["supervised_by_code"] == harness.township_code
    assert request["extended_attributes"]["yijian_status"] == "escalated"

    xml = await harness.client.get(f"/open311/v2/requests/{complaint}.xml?extensions=true")
    element = ET.fromstring(xml.content).find("request/extended_attributes")
    assert element is not None
    assert element.findtext("level") == "township"
    assert element.findtext("supervised") == "true"
    assert element.findtext("supervised_by") == township.name


async def test_an_address_alone_goes_to_the_county_dispatch_queue(harness: Harness) -> None:
    created = await harness.client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "service_code": "water-power",
            "address_string": "瓜州县城北",
            "description": "整条街停水两天了",
        },
    )
    assert created.status_code == 200, created.text
    [body] = created.json()
    assert "县平台" in body["service_notice"]
    await harness.settle()
    [request] = (
        await harness.client.get(
            f"/open311/v2/requests/{body['service_request_id']}.json?extensions=true"
        )
    ).json()
    assert request["agency_responsible"] == harness.system.jurisdiction.county.name
    assert request["extended_attributes"]["yijian_status"] == "pending_dispatch"
    assert request["lat"] is None


async def test_get_requests_filters(harness: Harness) -> None:
    first = (await harness.submit(category="道路交通"))["id"]
    harness.clock.advance(timedelta(days=2))
    second = (await harness.submit(category="环境卫生"))["id"]
    harness.clock.advance(timedelta(minutes=1))
    third = (await harness.submit(category="环境卫生"))["id"]
    resolved = await harness.client.post(
        f"/api/v1/complaints/{third}/accept", headers=harness.staff(harness.village_code)
    )
    assert resolved.status_code == 200
    resolved = await harness.client.post(
        f"/api/v1/complaints/{third}/resolve",
        json={"message": "已清理"},
        headers=harness.staff(harness.village_code),
    )
    assert resolved.status_code == 200
    await harness.settle()

    async def ids(**params: str) -> list[str]:
        response = await harness.client.get("/open311/v2/requests.json", params=params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    assert await ids() == [third, second, first]  # newest first
    assert await ids(service_code="sanitation") == [third, second]
    assert await ids(service_code="sanitation,roads-traffic") == [third, second, first]
    assert await ids(status="open") == [second, first]
    assert await ids(status="closed") == [third]
    assert await ids(status="open,closed") == [third, second, first]
    day_two = (MONDAY_MORNING + timedelta(days=1)).isoformat()
    assert await ids(start_date=day_two) == [third, second]
    assert await ids(end_date=day_two) == [first]
    assert await ids(start_date="2026-03-01T00:00:00Z", end_date="2026-03-02T10:00:00+08:00") == [
        first
    ]
    # service_request_id overrides every other filter, as the spec says.
    assert await ids(service_request_id=f"{first},{third}", status="open") == [third, first]
    assert await ids(page_size="2") == [third, second]
    assert await ids(page_size="2", page="2") == [first]

    # By default: the last 90 days only.
    harness.clock.advance(timedelta(days=89))
    assert await ids() == [third, second]
    assert await ids(service_request_id=first) == [first]


async def test_a_wrong_api_key_is_403_in_the_open311_error_format(harness: Harness) -> None:
    form = {"service_code": "other", "description": "x", "address_string": "县城"}
    keys: list[dict[str, str]] = [{}, {"api_key": "guessed"}, {"api_key": ""}]
    keys.append({"api_key": API_KEY + "x"})
    for fmt in ("json", "xml"):
        for key in keys:
            response = await harness.client.post(f"/open311/v2/requests.{fmt}", data=form | key)
            assert response.status_code == 403, (fmt, key)
            if fmt == "json":
                [error] = response.json()
            else:
                [error] = from_xml(ET.fromstring(response.content))
            assert int(error["code"]) == 403
            assert "api_key" in error["description"]
    assert (await harness.client.get("/open311/v2/requests.json")).json() == []


async def test_posting_is_off_without_configured_keys(tmp_path: Path) -> None:
    harness = await start_harness(tmp_path, FakeClock(MONDAY_MORNING))
    try:
        response = await harness.client.post(
            "/open311/v2/requests.json",
            data={"api_key": "", "service_code": "other", "description": "x"},
        )
        assert response.status_code == 403
        listing = await harness.client.get("/open311/v2/services.json")
        assert listing.status_code == 200  # reading needs no key
    finally:
        await stop_harness(harness)


BAD_POSTS: list[tuple[dict[str, str], str]] = [
    ({"description": "路灯坏了", "lat": "40.5", "long": "95.7"}, "service_code is required"),
    ({"service_code": "potholes", "description": "x", "lat": "40.5", "long": "95.7"}, "not found"),
    ({"service_code": "other", "lat": "40.5", "long": "95.7"}, "description is required"),
    ({"service_code": "other", "description": "x", "lat": "40.5"}, "both lat and long"),
    ({"service_code": "other", "description": "x", "lat": "north", "long": "95"}, "number"),
    ({"service_code": "other", "description": "x", "lat": "91", "long": "95"}, "lat"),
    ({"service_code": "other", "description": "x"}, "a location is required"),
    ({"service_code": "other", "description": "x", "address_id": "77"}, "address_id"),
    (
        {"service_code": "other", "description": "x", "attribute[village_code]": "12"},
        "village_code",
    ),
    (
        {"service_code": "other", "description": "x", "attribute[colour]": "red"},
        "unknown attribute",
    ),
    (
        {"service_code": "other", "description": "x", "address_string": "县城", "phone": "call me"},
        "phone",
    ),
    (
        {"service_code": "other", "description": "x", "address_string": "县城", "email": "nope"},
        "email",
    ),
    (
        {
            "service_code": "other",
            "description": "x",
            "address_string": "县城",
            "attribute[urgency]": "yesterday",
        },
        "urgency",
    ),
    ({"service_code": "other", "description": "长" * 2001, "address_string": "县城"}, "2000"),
]


async def test_bad_input_is_400_with_a_description(harness: Harness) -> None:
    # One system for every case (each would otherwise start its own): the case is in the
    # assertion message.
    for form, reason in BAD_POSTS:
        response = await harness.client.post(
            "/open311/v2/requests.json", data={"api_key": API_KEY, **form}
        )
        assert response.status_code == 400, (form, response.text)
        [error] = response.json()
        assert error["code"] == 400
        assert reason in error["description"], (form, error)
    assert (await harness.client.get("/open311/v2/requests.json")).json() == []


BAD_QUERIES: list[tuple[str, int, str]] = [
    ("requests.json?start_date=yesterday", 400, "start_date"),
    ("requests.json?status=pending", 400, "status"),
    ("requests.json?service_code=potholes", 400, "potholes"),
    ("requests.json?page_size=5000", 400, "page_size"),
    (
        "requests.json?start_date=2026-03-02T00:00:00Z&end_date=2026-03-01T00:00:00Z",
        400,
        "after",
    ),
    ("requests/0123456789abcdef0123456789abcdef.json", 404, "no service request"),
    ("services/potholes.xml", 404, "potholes"),
    ("services.csv", 404, "json or .xml"),
]


async def test_bad_queries_are_refused_in_the_error_format(harness: Harness) -> None:
    for url, status, reason in BAD_QUERIES:
        response = await harness.client.get(f"/open311/v2/{url}")
        assert response.status_code == status, url
        if url.split("?")[0].endswith(".xml"):
            [error] = from_xml(ET.fromstring(response.content))
        else:
            [error] = response.json()
        assert int(error["code"]) == status
        assert reason in error["description"], (url, error)


async def test_a_json_body_is_refused_with_the_reason(harness: Harness) -> None:
    response = await harness.client.post(
        "/open311/v2/requests.json",
        content=json.dumps({"api_key": API_KEY, "service_code": "other"}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "form-encoded" in response.json()[0]["description"]
    with_file = await harness.client.post(
        "/open311/v2/requests.json",
        data={"api_key": API_KEY, "service_code": "other", "description": "x"},
        files={"media": ("photo.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert with_file.status_code == 400
    assert "no files" in with_file.json()[0]["description"]
