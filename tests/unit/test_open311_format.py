"""Open311 documents: XML that any parser reads back, JSON with the same fields."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from services.intake.open311_catalog import Catalog, service_code
from services.intake.open311_format import (
    Open311Error,
    Value,
    error_response,
    parse_format,
    respond,
    w3_datetime,
)
from yijian.policy import SlaPolicy

NASTY = "a & b < c > d \"e\" 'f' ]]> 村口&amp;"


def test_xml_escapes_markup_and_drops_what_xml_cannot_carry() -> None:
    body: Value = [{"service_name": NASTY + "\x00\x07\x1b", "metadata": True, "group": None}]
    response = respond("xml", "services", "service", body)
    text = bytes(response.body).decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n<services>')
    service = ET.fromstring(response.body).find("service")
    assert service is not None
    assert service.findtext("service_name") == NASTY  # control characters dropped
    assert service.findtext("metadata") == "true"
    assert service.findtext("group") == ""  # <group />: present, empty
    assert response.media_type == "text/xml; charset=utf-8"


def test_json_and_xml_carry_the_same_fields() -> None:
    body: Value = {
        "changeset": "2026-03-01T00:00:00+08:00",
        "endpoints": [{"url": "http://x/", "formats": ["text/xml", "application/json"]}],
    }
    as_json = json.loads(bytes(respond("json", "discovery", None, body).body))
    root = ET.fromstring(respond("xml", "discovery", None, body).body)
    assert as_json == body
    assert root.findtext("changeset") == "2026-03-01T00:00:00+08:00"
    formats = [f.text for f in root.iterfind("endpoints/endpoint/formats/format")]
    assert formats == ["text/xml", "application/json"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_errors_use_the_georeport_error_format(fmt: str) -> None:
    response = error_response(parse_format(fmt), Open311Error(403, "invalid api_key & <no> entry"))
    assert response.status_code == 403
    if fmt == "json":
        assert json.loads(bytes(response.body)) == [
            {"code": 403, "description": "invalid api_key & <no> entry"}
        ]
    else:
        error = ET.fromstring(response.body).find("error")
        assert error is not None
        assert error.findtext("code") == "403"
        assert error.findtext("description") == "invalid api_key & <no> entry"


def test_only_json_and_xml_are_formats() -> None:
    assert parse_format("json") == "json"
    assert parse_format("xml") == "xml"
    with pytest.raises(Open311Error, match=r"json or \.xml"):
        parse_format("csv")


def test_times_are_w3_with_the_beijing_offset() -> None:
    assert w3_datetime(datetime(2026, 3, 2, 1, 0, 30, 999, tzinfo=UTC)) == (
        "2026-03-02T09:00:30+08:00"
    )
    assert w3_datetime(None) is None


def test_every_shipped_category_has_a_stable_ascii_code() -> None:
    catalog = Catalog(SlaPolicy.default().categories_named())
    codes = [service.code for service in catalog.services]
    assert len(set(codes)) == len(codes)
    assert all(code.isascii() and " " not in code for code in codes)
    assert catalog.get("roads-traffic") is not None
    assert catalog.code_of("道路交通") == "roads-traffic"


def test_a_countys_own_category_gets_a_code_that_survives_reordering() -> None:
    first = Catalog(["其他", "草场纠纷"])
    second = Catalog(["草场纠纷", "其他"])
    assert first.code_of("草场纠纷") == second.code_of("草场纠纷") == service_code("草场纠纷")
    assert service_code("草场纠纷").startswith("c-")
    with pytest.raises(KeyError, match="nope"):
        first.categories_of(["other", "nope"])
