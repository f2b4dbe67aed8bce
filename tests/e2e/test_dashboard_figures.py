"""The dashboard's figures: exact numbers for a known week, the CSV exports, and who sees what.

The scenario, in Beijing time, on the fake clock:
- Mon 09:00  A (township 1, village 1), B (township 1, village 2), C (township 2) arrive.
- Mon 09:30  village 1 accepts and resolves A: on time.
- Mon 11:00  B and C lapse their villages' 2-hour accept deadline: both go to township 督办.
- Mon 11:30  township 1 and township 2 accept B and C.
- Tue 10:00  township 1 resolves B — in its own time, but late for the citizen; D arrives
             in township 2.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from services.routing.dashboard_csv import FIGURE_HEADERS, SERIES_HEADERS
from tests.conftest import Harness

COUNTY = "620922"


@dataclass(frozen=True)
class Week:
    township_1: str
    township_2: str
    village_1: str
    village_2: str
    village_3: str


async def act(harness: Harness, complaint: str, action: str, org: str, **body: str) -> None:
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint}/{action}", json=body or None, headers=harness.staff(org)
    )
    assert response.status_code == 200, response.text
    await harness.settle()


async def play_the_week(harness: Harness) -> Week:
    places = harness.system.jurisdiction
    township_1, township_2 = (t.code for t in places.townships()[:2])
    village_1, village_2 = (v.code for v in places.villages(township_1)[:2])
    village_3 = places.villages(township_2)[0].code
    week = Week(township_1, township_2, village_1, village_2, village_3)

    a = (await harness.submit(location={"village_code": village_1}))["id"]
    b = (await harness.submit(location={"village_code": village_2}))["id"]
    c = (await harness.submit(location={"village_code": village_3}))["id"]
    await harness.advance(timedelta(minutes=30))
    await act(harness, a, "accept", village_1)
    await act(harness, a, "resolve", village_1, message="路灯已修好")
    await harness.advance(timedelta(minutes=90))
    assert (await harness.view(b))["status"] == "escalated"
    assert (await harness.view(c))["status"] == "escalated"
    await harness.advance(timedelta(minutes=30))
    await act(harness, b, "accept", township_1)
    await act(harness, c, "accept", township_2)
    await harness.advance(timedelta(hours=22, minutes=30))
    await act(harness, b, "resolve", township_1, message="已协调供电所修复")
    await harness.submit(location={"village_code": village_3})
    return week


async def stats(
    harness: Harness, staff: str = COUNTY, path: str = "/api/v1/stats", **params: str
) -> Any:
    response = await harness.client.get(path, params=params, headers=harness.staff(staff))
    assert response.status_code == 200, response.text
    return response.json() if path == "/api/v1/stats" else response


def by_code(units: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {unit["code"]: unit for unit in units}


async def test_the_county_sees_exact_figures_per_level_township_and_day(harness: Harness) -> None:
    week = await play_the_week(harness)
    figures = await stats(harness)

    assert figures["scope"] == {"code": COUNTY, "name": "瓜州县", "kind": "county"}
    assert (figures["received"], figures["resolved"], figures["escalations"]) == (4, 2, 2)
    assert figures["resolution_rate"] == 0.5
    assert figures["on_time_rate"] == 0.5  # A on time; B late, whoever resolved it
    assert figures["share_resolved_at_village"] == 0.5
    village, township, county = figures["levels"]
    assert village == {
        "level": "village",
        "received": 4,
        "resolved": 1,
        "resolution_rate": 0.25,
        "on_time_rate": 1.0,
        "escalations": 2,
        "mean_time_to_accept_seconds": 1800.0,
    }
    assert (township["received"], township["resolved"], township["escalations"]) == (2, 1, 0)
    assert township["on_time_rate"] == 1.0  # the township kept its own deadlines
    assert township["mean_time_to_accept_seconds"] == 1800.0
    assert (county["received"], county["resolution_rate"]) == (0, None)

    townships = by_code(figures["by_township"])
    assert len(townships) == 15
    first = townships[week.township_1]
    assert (first["received"], first["resolved"], first["escalations"]) == (2, 2, 1)
    assert (first["resolution_rate"], first["on_time_rate"]) == (1.0, 0.5)
    assert [(lv["received"], lv["resolved"]) for lv in first["levels"]] == [(2, 1), (1, 1), (0, 0)]
    second = townships[week.township_2]
    assert (second["received"], second["resolved"], second["escalations"]) == (2, 0, 1)
    assert (second["resolution_rate"], second["on_time_rate"]) == (0.0, None)
    quiet = [
        unit for code, unit in townships.items() if code not in (week.township_1, week.township_2)
    ]
    assert all(unit["received"] == 0 and unit["resolution_rate"] is None for unit in quiet)
    assert figures["by_village"] == []  # the county breaks down by township

    days = {day["day"]: day for day in figures["series"]}
    assert len(figures["series"]) == figures["period"]["days"] == 30
    assert figures["series"][-1]["day"] == "2026-03-03"
    assert days["2026-03-02"] == {
        "day": "2026-03-02",
        "received": 3,
        "resolved": 1,
        "resolved_on_time": 1,
        "escalations": 2,
        "on_time_rate": 1.0,
    }
    assert days["2026-03-03"] == {
        "day": "2026-03-03",
        "received": 1,
        "resolved": 1,
        "resolved_on_time": 0,
        "escalations": 0,
        "on_time_rate": 0.0,
    }
    assert days["2026-02-02"]["received"] == 0
    assert days["2026-02-02"]["on_time_rate"] is None


async def test_a_period_counts_what_began_in_it_and_the_series_what_happened(
    harness: Harness,
) -> None:
    await play_the_week(harness)
    tuesday = await stats(harness, **{"from": "2026-03-03T00:00:00+08:00"})
    assert tuesday["period"]["to"] == "2026-03-04T00:00:00+08:00"  # the end of today
    assert tuesday["received"] == 1  # only D reached a level on Tuesday
    assert [lv["received"] for lv in tuesday["levels"]] == [1, 0, 0]
    assert tuesday["series"] == [
        {
            "day": "2026-03-03",
            "received": 1,
            "resolved": 1,  # B's resolution happened on Tuesday
            "resolved_on_time": 0,
            "escalations": 0,
            "on_time_rate": 0.0,
        }
    ]
    monday = await stats(
        harness, **{"from": "2026-03-02T00:00:00+08:00", "to": "2026-03-03T00:00:00+08:00"}
    )
    assert (monday["received"], monday["resolved"]) == (3, 2)
    assert [day["day"] for day in monday["series"]] == ["2026-03-02"]


async def test_the_figures_csv_opens_in_excel_with_chinese_headers(harness: Harness) -> None:
    week = await play_the_week(harness)
    response = await stats(harness, path="/api/v1/stats.csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="yijian-stats-620922-20260202-20260303.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == FIGURE_HEADERS
    assert rows[0][:6] == ["区划代码", "区划名称", "层级", "受理数", "办结数", "办结率"]
    assert len(rows) == 1 + 15 * 4 + 4  # 3 levels and a total per township, then the county
    name_1 = harness.system.jurisdiction.get(week.township_1)
    assert name_1 is not None
    assert [
        week.township_1,
        name_1.name,
        "村(社区)",
        "2",
        "1",
        "50.0%",
        "100.0%",
        "",
        "1",
        "30.0",
        "",
    ] in rows
    total_1 = [week.township_1, name_1.name, "合计", "2", "2", "100.0%", "", "50.0%", "1", "", ""]
    assert total_1 in rows
    assert rows[-1] == [COUNTY, "瓜州县", "合计", "4", "2", "50.0%", "", "50.0%", "2", "", ""]
    assert rows[-4][:5] == [COUNTY, "瓜州县", "村(社区)", "4", "1"]


async def test_the_series_csv_has_a_row_per_day(harness: Harness) -> None:
    await play_the_week(harness)
    response = await stats(harness, path="/api/v1/stats/series.csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert "yijian-series-620922-" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == SERIES_HEADERS
    assert len(rows) == 31
    assert ["2026-03-02", "3", "1", "1", "100.0%", "2"] in rows
    assert rows[-1] == ["2026-03-03", "1", "1", "0", "0.0%", "0"]
    assert rows[1] == ["2026-02-02", "0", "0", "0", "", "0"]


async def test_a_township_sees_its_own_figures_by_village_and_nothing_else(
    harness: Harness,
) -> None:
    week = await play_the_week(harness)
    own = await stats(harness, staff=week.township_1)
    assert own["scope"]["code"] == week.township_1
    assert (own["received"], own["resolved"], own["on_time_rate"]) == (2, 2, 0.5)
    assert [unit["code"] for unit in own["by_township"]] == [week.township_1]
    villages = by_code(own["by_village"])
    assert len(villages) == len(harness.system.jurisdiction.villages(week.township_1))
    assert (villages[week.village_1]["received"], villages[week.village_1]["resolved"]) == (1, 1)
    assert villages[week.village_2]["escalations"] == 1
    assert sum(day["received"] for day in own["series"]) == 2

    one_village = await stats(harness, staff=week.township_1, org=week.village_1)
    assert one_village["received"] == 1

    for org in (week.township_2, week.village_3, COUNTY):
        response = await harness.client.get(
            "/api/v1/stats", params={"org": org}, headers=harness.staff(week.township_1)
        )
        assert response.status_code == 403, org
        assert "received" not in response.text

    csv_rows = (await stats(harness, staff=week.township_1, path="/api/v1/stats.csv")).text
    assert week.township_2 not in csv_rows
    assert week.village_1 in csv_rows


async def test_a_village_sees_only_itself(harness: Harness) -> None:
    week = await play_the_week(harness)
    own = await stats(harness, staff=week.village_2)
    assert own["scope"] == {
        "code": week.village_2,
        "name": own["by_village"][0]["name"],
        "kind": "village",
    }
    # B was filed here: the township resolved it, late, but it counts for this place.
    assert (own["received"], own["resolved"], own["escalations"]) == (1, 1, 1)
    assert own["on_time_rate"] == 0.0
    assert [lv["resolved"] for lv in own["levels"]] == [0, 1, 0]
    assert [unit["code"] for unit in own["by_village"]] == [week.village_2]
    assert own["by_township"][0]["received"] == 1  # its township, counted for this village only
    for org in (week.village_1, week.township_1, COUNTY):
        response = await harness.client.get(
            "/api/v1/stats.csv", params={"org": org}, headers=harness.staff(week.village_2)
        )
        assert response.status_code == 403, org


@pytest.mark.parametrize("path", ["/api/v1/stats", "/api/v1/stats.csv", "/api/v1/stats/series.csv"])
async def test_the_figures_need_a_staff_sign_in(harness: Harness, path: str) -> None:
    assert (await harness.client.get(path)).status_code == 401
    grid = harness.system.jurisdiction.grids(harness.village_code)[0].code
    response = await harness.client.get(path, headers=harness.staff(grid))
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "2026-03-02T00:00:00"}, "timezone"),
        ({"from": "2026-03-03T00:00:00+08:00", "to": "2026-03-01T00:00:00+08:00"}, "before"),
        ({"from": "2024-01-01T00:00:00+08:00", "to": "2026-01-01T00:00:00+08:00"}, "366"),
        ({"from": "yesterday"}, "datetime"),
        ({"org": "620922999"}, "unknown org"),
        ({"org": "62"}, "pattern"),
    ],
)
async def test_bad_filters_get_a_reason(
    harness: Harness, params: dict[str, str], reason: str
) -> None:
    response = await harness.client.get(
        "/api/v1/stats.csv", params=params, headers=harness.staff(COUNTY)
    )
    assert response.status_code == 422
    assert reason in response.text


async def test_satisfaction_counts_the_citizens_latest_ratings(harness: Harness) -> None:
    places = harness.system.jurisdiction
    village = places.villages(places.townships()[0].code)[0].code
    filed = [await harness.submit(location={"village_code": village}) for _ in range(3)]
    before = await stats(harness)
    assert before["satisfaction"] == {
        "rated": 0,
        "counts": {"satisfied": 0, "basically_satisfied": 0, "unsatisfied": 0},
        "satisfied_rate": None,
    }
    for complaint, rating in zip(filed[:2], ("basically_satisfied", "unsatisfied"), strict=True):
        await act(harness, complaint["id"], "accept", village)
        await act(harness, complaint["id"], "resolve", village, message="已处理")
        response = await harness.client.post(
            f"/api/v1/complaints/{complaint['id']}/rating",
            json={"rating": rating},
            headers={"X-Citizen-Token": complaint["citizen_token"]},
        )
        assert response.status_code == 200, response.text
        await harness.settle()

    figures = await stats(harness)
    assert figures["satisfaction"] == {
        "rated": 2,
        "counts": {"satisfied": 0, "basically_satisfied": 1, "unsatisfied": 1},
        "satisfied_rate": 0.5,
    }
    # 不满意 reopened the second one at the village: a new stint, the same complaint, and
    # its resolution no longer stands — though the village did resolve it once.
    village_level = figures["levels"][0]
    assert (village_level["received"], village_level["resolved"]) == (4, 2)
    assert (figures["received"], figures["resolved"], figures["resolution_rate"]) == (3, 1, 0.3333)
    assert figures["by_township"][0]["resolved"] == 1
    assert figures["by_township"][0]["satisfied_rate"] == 0.5
    assert figures["by_township"][1]["satisfied_rate"] is None
    elsewhere = await stats(harness, org=places.townships()[1].code)
    assert elsewhere["satisfaction"]["rated"] == 0
