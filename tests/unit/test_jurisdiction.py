"""The jurisdiction data and model: real names, made-up but consistent codes and geometry."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from shapely import Point, Polygon, union_all

from yijian.jurisdiction import Jurisdiction, OrgKind, Placement, generate
from yijian.jurisdiction.schema import JurisdictionData

TOWNSHIPS = [
    "渊泉镇",
    "柳园镇",
    "三道沟镇",
    "南岔镇",
    "锁阳城镇",
    "瓜州镇",
    "西湖镇",
    "河东镇",
    "双塔镇",
    "腰站子东乡族镇",
    "布隆吉乡",
    "梁湖乡",
    "七墩回族东乡族乡",
    "沙河回族乡",
    "广至藏族乡",
]
SEAT = (40.52, 95.78)
BEIJING = (39.9, 116.4)
# Tolerance for areas in square degrees; a 1e-6 degree rounding sliver is far below it.
AREA_EPS = 1e-9


@pytest.fixture(scope="module")
def juris() -> Jurisdiction:
    return Jurisdiction.load()


@pytest.fixture(scope="module")
def data() -> JurisdictionData:
    loaded: JurisdictionData = json.loads(generate.DATA_PATH.read_text(encoding="utf-8"))
    return loaded


def _shape(ring: list[list[float]]) -> Polygon:
    return Polygon(ring)


def test_counts(juris: Jurisdiction) -> None:
    assert len(juris.townships()) == 15
    assert len(juris.villages()) == 83
    assert len(juris.grids()) == 767
    counts = juris.tree()["counts"]
    assert counts == {"townships": 15, "villages": 83, "grids": 767}


def test_every_township_and_village_has_enough_children(juris: Jurisdiction) -> None:
    for township in juris.townships():
        assert len(juris.villages(township.code)) >= 2, township.name
    for village in juris.villages():
        assert len(juris.grids(village.code)) >= 3, village.name
    seat_villages = len(juris.villages("620922100"))
    assert seat_villages == max(len(juris.villages(t.code)) for t in juris.townships())


def test_township_names_are_the_real_ones(juris: Jurisdiction) -> None:
    assert juris.county.name == "瓜州县"
    assert juris.county.code == "620922"
    assert [t.name for t in juris.townships()] == TOWNSHIPS


def test_village_names_are_unique_and_typed(juris: Jurisdiction) -> None:
    names = [v.name for v in juris.villages()]
    assert len(set(names)) == len(names)
    assert all(name.endswith(("村", "社区")) for name in names)
    community_towns = {
        t.name for t in juris.townships() for v in juris.villages(t.code) if v.name.endswith("社区")
    }
    assert community_towns == {"渊泉镇", "柳园镇"}


def test_codes_are_unique_and_prefixed(juris: Jurisdiction) -> None:
    orgs = [juris.county, *juris.townships(), *juris.villages(), *juris.grids()]
    codes = [org.code for org in orgs]
    assert len(set(codes)) == len(codes)
    lengths = {OrgKind.COUNTY: 6, OrgKind.TOWNSHIP: 9, OrgKind.VILLAGE: 12, OrgKind.GRID: 15}
    for org in orgs:
        assert org.code.isdigit()
        assert len(org.code) == lengths[org.kind], org
        if org.parent_code is not None:
            assert org.code.startswith(org.parent_code), org


def test_hierarchy_navigation(juris: Jurisdiction) -> None:
    grid = juris.grids("620922100001")[0]
    chain = juris.chain(grid.code)
    assert [org.kind for org in chain] == [
        OrgKind.GRID,
        OrgKind.VILLAGE,
        OrgKind.TOWNSHIP,
        OrgKind.COUNTY,
    ]
    assert [org.code for org in chain[1:]] == ["620922100001", "620922100", "620922"]
    assert juris.parent(grid.code) == juris.get("620922100001")
    assert juris.parent("620922") is None
    assert juris.get("nope") is None
    assert juris.chain("nope") == []
    assert juris.contains("620922100", grid.code)
    assert juris.contains(grid.code, grid.code)
    assert not juris.contains("620922101", grid.code)
    assert not juris.contains(grid.code, "620922100")
    assert juris.villages("620922100001") == []
    assert juris.grids("620922100") == []


def test_locate_code(juris: Jurisdiction) -> None:
    grid = juris.grids()[100]
    placement = juris.locate_code(grid.code)
    assert placement.grid == grid
    assert placement.village == juris.parent(grid.code)
    assert placement.township is not None
    assert placement.township.kind is OrgKind.TOWNSHIP
    assert placement.in_county
    village = juris.villages()[5]
    assert juris.locate_code(village.code) == Placement(
        None, village, juris.parent(village.code), True
    )
    assert juris.locate_code("999999999") == Placement(None, None, None, False)


def test_every_grid_locates_back_to_itself(juris: Jurisdiction) -> None:
    for grid in juris.grids():
        placement = juris.locate(*juris.point_in(grid.code))
        assert placement == juris.locate_code(grid.code), grid


def test_desert_locates_to_township_only(juris: Jurisdiction, data: JurisdictionData) -> None:
    for township in data["townships"]:
        villages = union_all([_shape(v["polygon"]) for v in township["villages"]])
        desert = _shape(township["polygon"]).difference(villages)
        assert desert.area > 0, township["name"]
        point = desert.representative_point()
        placement = juris.locate(point.y, point.x)
        assert placement.grid is None
        assert placement.village is None
        assert placement.township == juris.get(township["code"])
        assert placement.in_county


def test_far_away_is_not_in_county(juris: Jurisdiction) -> None:
    assert juris.locate(*BEIJING) == Placement(None, None, None, False)


def test_county_seat_is_in_a_village_of_yuanquan(juris: Jurisdiction) -> None:
    placement = juris.locate(*SEAT)
    assert placement.township is not None
    assert placement.township.name == "渊泉镇"
    assert placement.village is not None
    assert placement.grid is not None
    assert placement.in_county


def test_rings_are_closed_and_rounded(data: JurisdictionData) -> None:
    rings = [data["county"]["polygon"]]
    for township in data["townships"]:
        rings.append(township["polygon"])
        for village in township["villages"]:
            rings.append(village["polygon"])
            rings.extend(grid["polygon"] for grid in village["grids"])
    for ring in rings:
        assert ring[0] == ring[-1]
        assert all(round(c, 6) == c for point in ring for c in point)
        assert all(94.6 <= lon <= 97.1 and 39.6 <= lat <= 41.9 for lon, lat in ring)
        shape = _shape(ring)
        assert shape.is_valid
        assert shape.area > 0


def test_townships_tile_the_county(data: JurisdictionData) -> None:
    townships = [_shape(t["polygon"]) for t in data["townships"]]
    for a, b in itertools.combinations(townships, 2):
        assert a.intersection(b).area < AREA_EPS
    county = _shape(data["county"]["polygon"])
    assert county.symmetric_difference(union_all(townships)).area < AREA_EPS


def test_villages_lie_apart_inside_their_township(data: JurisdictionData) -> None:
    for township in data["townships"]:
        outer = _shape(township["polygon"])
        villages = [_shape(v["polygon"]) for v in township["villages"]]
        for village in villages:
            assert outer.contains(village)
        for a, b in itertools.combinations(villages, 2):
            assert a.intersection(b).area < AREA_EPS


def test_grids_tile_their_village(data: JurisdictionData) -> None:
    for township in data["townships"]:
        for village in township["villages"]:
            grids = [_shape(g["polygon"]) for g in village["grids"]]
            for a, b in itertools.combinations(grids, 2):
                assert a.intersection(b).area < AREA_EPS
            union = union_all(grids)
            assert union.symmetric_difference(_shape(village["polygon"])).area < AREA_EPS


def test_point_in_is_inside(juris: Jurisdiction, data: JurisdictionData) -> None:
    for township in data["townships"]:
        lat, lon = juris.point_in(township["code"])
        assert _shape(township["polygon"]).contains(Point(lon, lat))
    lat, lon = juris.point_in(juris.county.code)
    assert juris.locate(lat, lon).in_county


def test_tree_has_centroids_and_no_polygons(juris: Jurisdiction) -> None:
    text = json.dumps(juris.tree(), ensure_ascii=False)
    assert "polygon" not in text
    # Round-tripping proves the tree is JSON-ready and gives the test untyped access to it.
    tree: dict[str, Any] = json.loads(text)
    townships = tree["children"]
    assert [t["name"] for t in townships] == TOWNSHIPS
    seat = townships[0]
    assert seat["kind"] == "township"
    assert seat["counts"]["villages"] == len(seat["children"])
    centroid = seat["centroid"]
    assert 40.42 < centroid["lat"] < 40.85
    assert 95.65 < centroid["lon"] < 95.92
    assert round(centroid["lat"], 5) == centroid["lat"]
    village = seat["children"][0]
    assert village["kind"] == "village"
    assert set(village["centroid"]) == {"lat", "lon"}
    grid = village["children"][0]
    assert grid == {"code": grid["code"], "name": grid["name"], "kind": "grid"}
    total = sum(len(v["children"]) for t in townships for v in t["children"])
    assert total == 767


def test_generator_is_deterministic_and_matches_committed_file() -> None:
    first = generate.render()
    assert generate.render() == first
    assert generate.DATA_PATH.read_text(encoding="utf-8") == first


def test_notice_says_made_up(data: JurisdictionData) -> None:
    notice = data["notice"]
    assert "made up" in notice
    assert "虚构" in notice


def test_load_from_a_path(tmp_path: Path) -> None:
    copy = tmp_path / "copy.json"
    copy.write_text(generate.DATA_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = Jurisdiction.load(copy)
    assert len(loaded.grids()) == 767
