"""What an Open311 client's form carries as typed text — description, address_string,
first_name, last_name, phone, email — meets the rules of the JSON API: bounded, and refused
with a 400 in the GeoReport error format when it holds what no database or page should
(control characters, bytes that are not UTF-8, half a surrogate pair), storing nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from services.intake.contacts import contact_of
from services.intake.open311_catalog import Catalog
from services.intake.open311_form import TYPED_FIELDS, new_request
from services.intake.open311_format import Open311Error
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock

API_KEY = "county-issued-key"
# A request that is fine as it stands; each case below spoils one field of it.
GOOD = {
    "api_key": API_KEY,
    "service_code": "roads-traffic",
    "description": "村口路灯坏了三天",
    "address_string": "渊泉镇东街12号",
    "first_name": "小明",
    "last_name": "王",
    "phone": "13900001111",
    "email": "wang@example.cn",
}
UNSTORABLE = {"NUL": "\x00", "escape": "\x1b[31m", "bell": "\x07", "C1 control": "\x85"}


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(tmp_path, FakeClock(MONDAY_MORNING), open311_api_keys=API_KEY)
    yield started
    await stop_harness(started)


async def nothing_was_stored(harness: Harness) -> None:
    assert await harness.settle() == 0  # no event was published
    assert (await harness.client.get("/open311/v2/requests.json")).json() == []


async def test_control_characters_in_any_typed_field_are_400_naming_it(harness: Harness) -> None:
    for field in TYPED_FIELDS:
        for kind, bad in UNSTORABLE.items():
            # In the middle, where trimming cannot take it away.
            form = GOOD | {field: f"{GOOD[field][:2]}{bad}{GOOD[field][2:]}"}
            for fmt in ("json", "xml"):
                response = await harness.client.post(f"/open311/v2/requests.{fmt}", data=form)
                assert response.status_code == 400, (field, kind, fmt, response.text)
                if fmt == "json":
                    [error] = response.json()
                    code, description = error["code"], error["description"]
                else:
                    element = ET.fromstring(response.content).find("error")
                    assert element is not None
                    code = int(element.findtext("code") or 0)
                    description = element.findtext("description") or ""
                assert code == 400
                assert description.startswith(field), (field, description)
                assert "control characters" in description
    await nothing_was_stored(harness)


async def test_each_typed_field_is_bounded_like_the_json_api(harness: Harness) -> None:
    assert TYPED_FIELDS["description"] == 2000  # ComplaintIn.description
    assert TYPED_FIELDS["address_string"] == 200  # LocationIn.address
    for field, limit in TYPED_FIELDS.items():
        response = await harness.client.post(
            "/open311/v2/requests.json", data=GOOD | {field: "a" * (limit + 1)}
        )
        assert response.status_code == 400, (field, response.text)
        [error] = response.json()
        assert error["description"] == f"{field} is longer than {limit} characters"
    await nothing_was_stored(harness)


async def test_text_that_is_not_utf8_is_400_not_silently_replaced(harness: Harness) -> None:
    good = urlencode(GOOD)
    for spoiled in (
        good + "&description=%ED%A0%80",  # half a surrogate pair, encoded on its own
        good.replace("first_name=", "first_name=%FF"),
        good + "&last_name=\xe7\x8e\x8b",  # 王 as raw bytes, not percent-encoded
    ):
        response = await harness.client.post(
            "/open311/v2/requests.json",
            content=spoiled.encode("latin-1"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400, (spoiled, response.text)
        [error] = response.json()
        assert "UTF-8" in error["description"]
    in_the_query = await harness.client.post(
        "/open311/v2/requests.json?description=%ED%A0%80", data=GOOD
    )
    assert in_the_query.status_code == 400
    await nothing_was_stored(harness)


async def test_typed_text_as_sent_is_kept_trimmed(harness: Harness) -> None:
    """The check refuses only what cannot be stored: markup, emoji, tabs and the rest stay."""
    form = GOOD | {
        "description": '  <b>路灯</b>坏了🚨\n第二行\t"引号"  ',
        "address_string": "东街'; DROP TABLE complaints; --",
        "first_name": " 小明 ",
    }
    response = await harness.client.post("/open311/v2/requests.json", data=form)
    assert response.status_code == 200, response.text
    complaint = response.json()[0]["service_request_id"]
    await harness.settle()
    async with harness.system.intake.database.engine.connect() as connection:
        kept = await contact_of(connection, harness.system.intake.seal, complaint)
    assert kept is not None
    assert kept.address == "东街'; DROP TABLE complaints; --"
    assert kept.name == "王小明"
    service = {"Authorization": f"Bearer {harness.system.settings.secret_value('internal_token')}"}
    record = await harness.client.get(f"/internal/v1/complaints/{complaint}", headers=service)
    assert record.json()["description"] == '<b>路灯</b>坏了🚨\n第二行\t"引号"'


@pytest.mark.parametrize("field", sorted(TYPED_FIELDS))
def test_half_a_surrogate_pair_is_refused_in_every_typed_field(field: str) -> None:
    """No HTTP form decodes to a lone surrogate (see the test above); a caller in process
    could still hand one over, and gets the same 400."""
    with pytest.raises(Open311Error) as refused:
        new_request(GOOD | {field: "路灯\ud800坏了"}, Catalog(["道路交通"]))
    assert refused.value.status == 400
    assert refused.value.description.startswith(field)
    assert "broken Unicode" in refused.value.description
