"""Invent the codes, names and geometry below Guazhou county's 15 real townships.

The domain notes name the county (620922) and its townships and give only totals below them:
83 villages/communities (村/社区) and 767 grids (网格). Routing a complaint by where it happened
still needs polygons and codes, so this script makes them up around the county's real location.
Everything is drawn from one seeded ``random.Random`` and never from set or dict iteration
order of strings, so hash randomisation cannot change the output and the committed
guazhou.json can be regenerated and compared byte for byte.

Run ``python -m yijian.jurisdiction.generate`` to rewrite guazhou.json.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shapely import Point, Polygon, union_all
from shapely.geometry.polygon import orient

from yijian.jurisdiction.schema import (
    GridData,
    JurisdictionData,
    Ring,
    TownshipData,
    VillageData,
)

SEED = 620922
COUNTY_CODE = "620922"
COUNTY_NAME = "瓜州县"
DATA_PATH = Path(__file__).with_name("guazhou.json")
# The county seat: the test that complaints from town land in a village depends on it.
SEAT_LON, SEAT_LAT = 95.78, 40.52
TOTAL_GRIDS = 767
MIN_GRIDS = 3
NOTICE = (
    "瓜州县及其15个乡镇的名称是真实的；乡镇、村（社区）和网格的代码，村（社区）和网格的名称"
    "以及全部地理边界均为程序生成的虚构数据。"
    "The names of Guazhou county and its 15 townships are real; the township, village and grid "
    "codes, the village and grid names and all geometry are generated and made up."
)

# (west, south, east, north) in degrees.
Box = tuple[float, float, float, float]

# Villages sit on the Shule river oasis belt; the rest of a township stays empty desert.
_OASIS_SOUTH, _OASIS_NORTH = 40.20, 40.80
_ZONE_INSET = 0.015
# A degree of longitude is ~0.76 of a degree of latitude at 40.5N; used to keep cells squarish.
_LON_SCALE = 0.76


@dataclass(frozen=True)
class _Plan:
    suffix: str
    name: str
    box: Box
    villages: int
    community_names: tuple[str, ...] = ()
    communities: int = 0
    zone: Box | None = None
    cells: tuple[int, int] | None = None  # (columns, rows) of village cells
    centre: tuple[float, float] | None = None  # (lon, lat) the communities crowd around


# Township boxes tile the county: seven columns along the oasis belt and 柳园镇 across the north
# Gobi. Towns (镇) take codes 1xx and townships (乡) 2xx, as real Chinese codes do.
_PLANS: tuple[_Plan, ...] = (
    _Plan(
        "100",
        "渊泉镇",
        (95.65, 40.42, 95.92, 40.85),
        12,
        ("人民路", "解放路", "文化", "新城", "府前", "迎宾路"),
        4,
        # One 0.08-degree cell is centred on the seat, so margins can never push it out.
        zone=(95.66, 40.48, 95.90, 40.80),
        cells=(3, 4),
        centre=(SEAT_LON, SEAT_LAT),
    ),
    _Plan(
        "101",
        "柳园镇",
        (94.90, 40.85, 96.90, 41.90),
        4,
        ("站前", "铁路", "矿区", "新区"),
        2,
        # The railway town far north of the oasis; villages only around it.
        zone=(95.25, 41.00, 95.55, 41.20),
        centre=(95.40, 41.10),
    ),
    _Plan("102", "三道沟镇", (95.05, 40.50, 95.40, 40.85), 7),
    _Plan("103", "南岔镇", (95.40, 40.45, 95.65, 40.85), 7),
    _Plan("104", "锁阳城镇", (96.20, 39.60, 96.55, 40.50), 6),
    _Plan("105", "瓜州镇", (96.20, 40.50, 96.55, 40.85), 6),
    _Plan("106", "西湖镇", (94.60, 39.90, 95.05, 40.85), 6),
    _Plan("107", "河东镇", (95.92, 40.55, 96.20, 40.85), 7),
    _Plan("108", "双塔镇", (96.55, 40.50, 97.10, 40.85), 5),
    _Plan("109", "腰站子东乡族镇", (95.40, 39.60, 95.65, 40.45), 5),
    _Plan("200", "布隆吉乡", (96.55, 39.75, 97.10, 40.50), 5),
    _Plan("201", "梁湖乡", (95.65, 39.60, 95.92, 40.42), 5),
    _Plan("202", "七墩回族东乡族乡", (95.05, 39.70, 95.40, 40.50), 3),
    _Plan("203", "沙河回族乡", (95.92, 40.35, 96.20, 40.55), 3),
    _Plan("204", "广至藏族乡", (95.92, 39.60, 96.20, 40.35), 2),
)

_FIXED_NAMES = (
    "新华", "红旗", "东风", "光明", "团结", "向阳", "胜利", "幸福", "和平", "民主",
    "建设", "前进", "五星", "红光", "先锋", "长丰", "丰收", "兴隆", "永丰", "太平",
    "三合", "四合", "联合", "新民", "新丰", "农丰", "安康",
)  # fmt: skip
_PREFIXES = "东西南北上下中新大小双红金青沙黄"
_STEMS = "泉渠墩堡庄滩井坝湾柳桥营沟园"
_PAIR = re.compile(r"\[\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\s*\]")


def _r(value: float) -> float:
    return round(value, 6)


def _ring(box: Box) -> Ring:
    west, south, east, north = box
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def _cuts(rng: random.Random, start: float, end: float, parts: int) -> list[float]:
    """Split [start, end] into ``parts`` uneven pieces; neighbours share the rounded cut."""
    step = (end - start) / parts
    inner = [_r(start + step * (i + rng.uniform(-0.25, 0.25))) for i in range(1, parts)]
    return [start, *inner, end]


def _zone(plan: _Plan) -> Box:
    if plan.zone is not None:
        return plan.zone
    west, south, east, north = plan.box
    return (
        west + _ZONE_INSET,
        max(south, _OASIS_SOUTH) + _ZONE_INSET,
        east - _ZONE_INSET,
        min(north, _OASIS_NORTH) - _ZONE_INSET,
    )


def _shape(count: int, width: float, height: float) -> tuple[int, int]:
    """Columns and rows so that ``count`` cells come out roughly square on the ground."""
    rows = max(1, min(count, round(math.sqrt(count * height / (width * _LON_SCALE)))))
    return math.ceil(count / rows), rows


def _cells(plan: _Plan) -> list[Box]:
    """Candidate village sites, north-west first, the way people read a map."""
    west, south, east, north = _zone(plan)
    cols, rows = plan.cells or _shape(plan.villages, east - west, north - south)
    width, height = (east - west) / cols, (north - south) / rows
    return [
        (west + c * width, north - (r + 1) * height, west + (c + 1) * width, north - r * height)
        for r in range(rows)
        for c in range(cols)
    ]


def _inset(rng: random.Random, cell: Box, low: float, high: float) -> Box:
    """Shrink a cell by random margins; the gap left is the desert between villages."""
    west, south, east, north = cell
    width, height = east - west, north - south
    return (
        _r(west + width * rng.uniform(low, high)),
        _r(south + height * rng.uniform(low, high)),
        _r(east - width * rng.uniform(low, high)),
        _r(north - height * rng.uniform(low, high)),
    )


def _village_names(rng: random.Random) -> list[str]:
    bases = {plan.name.removesuffix("镇").removesuffix("乡") for plan in _PLANS}
    fixed = [name for name in _FIXED_NAMES if name not in bases]
    combos = [p + s for p in _PREFIXES for s in _STEMS if p + s not in bases]
    rng.shuffle(fixed)
    rng.shuffle(combos)
    # Drawn about 3:7 from the two lists: the 1950s-60s collective names (红旗,
    # 东风 …) are common but a minority next to names from places (东渠, 双墩 …).
    names: list[str] = []
    while fixed and combos:
        names.append((fixed if rng.random() < 0.3 else combos).pop())
    return [name + "村" for name in names + fixed + combos]


def _grid_boxes(rng: random.Random, box: Box, count: int) -> list[Box]:
    """Cut a village into ``count`` rows-of-cells that tile it exactly, north-west first."""
    west, south, east, north = box
    _, rows = _shape(count, east - west, north - south)
    per_row = [count // rows + (1 if i < count % rows else 0) for i in range(rows)]
    rng.shuffle(per_row)
    ys = _cuts(rng, south, north, rows)
    boxes: list[Box] = []
    for row in reversed(range(rows)):
        xs = _cuts(rng, west, east, per_row[row])
        boxes.extend((xs[i], ys[row], xs[i + 1], ys[row + 1]) for i in range(per_row[row]))
    return boxes


@dataclass(frozen=True)
class _Site:
    code: str
    name: str
    box: Box
    community: bool


def _sites(rng: random.Random, plan: _Plan, names: list[str]) -> list[_Site]:
    """Place one township's villages, communities on the cells nearest its town centre."""
    cells = _cells(plan)
    chosen = sorted(rng.sample(range(len(cells)), plan.villages))
    lon, lat = plan.centre or (0.0, 0.0)

    def distance(index: int) -> float:
        west, south, east, north = cells[index]
        return math.hypot(((west + east) / 2 - lon) * _LON_SCALE, (south + north) / 2 - lat)

    town = sorted(chosen, key=distance)[: plan.communities]
    rural = [c for c in chosen if c not in town]
    labels = [n + "社区" for n in rng.sample(plan.community_names, plan.communities)]
    labels += [names.pop(0) for _ in rural]
    codes = [f"{i:03d}" for i in range(1, len(town) + 1)]
    codes += [f"{200 + i}" for i in range(1, len(rural) + 1)]
    # Town communities are built up edge to edge; rural villages are separated by desert.
    margins = [(0.03, 0.1)] * len(town) + [(0.08, 0.22)] * len(rural)
    return [
        _Site(COUNTY_CODE + plan.suffix + code, label, _inset(rng, cells[c], *margin), c in town)
        for code, label, c, margin in zip(codes, labels, town + rural, margins, strict=True)
    ]


def _grid_counts(rng: random.Random, sites: list[_Site]) -> list[int]:
    """Share the 767 grids out; dense town communities get more grids than rural villages."""
    weights = [4.0 if site.community else rng.uniform(0.6, 1.6) for site in sites]
    extra = Counter(rng.choices(range(len(sites)), weights, k=TOTAL_GRIDS - MIN_GRIDS * len(sites)))
    return [MIN_GRIDS + extra[i] for i in range(len(sites))]


def build() -> JurisdictionData:
    """The whole made-up jurisdiction; identical on every call."""
    rng = random.Random(SEED)
    names = _village_names(rng)
    per_township = [_sites(rng, plan, names) for plan in _PLANS]
    counts = iter(_grid_counts(rng, [site for sites in per_township for site in sites]))
    townships: list[TownshipData] = []
    for plan, sites in zip(_PLANS, per_township, strict=True):
        villages: list[VillageData] = []
        for site in sites:
            grids: list[GridData] = [
                {"code": f"{site.code}{i:03d}", "name": f"第{i}网格", "polygon": _ring(box)}
                for i, box in enumerate(_grid_boxes(rng, site.box, next(counts)), start=1)
            ]
            villages.append(
                {"code": site.code, "name": site.name, "polygon": _ring(site.box), "grids": grids}
            )
        code = COUNTY_CODE + plan.suffix
        townships.append(
            {"code": code, "name": plan.name, "polygon": _ring(plan.box), "villages": villages}
        )
    seat = Point(SEAT_LON, SEAT_LAT)
    if not any(Polygon(v["polygon"]).contains(seat) for v in townships[0]["villages"]):
        raise RuntimeError("the county seat must fall inside a village of 渊泉镇")
    return {
        "notice": NOTICE,
        "county": {"code": COUNTY_CODE, "name": COUNTY_NAME, "polygon": _county_ring()},
        "townships": townships,
    }


def _county_ring() -> Ring:
    union = union_all([Polygon(_ring(plan.box)) for plan in _PLANS])
    if not isinstance(union, Polygon) or union.interiors:
        raise RuntimeError("township boxes must tile one county polygon without holes")
    # simplify(0) drops the collinear vertices left where township edges meet.
    exterior = orient(union.simplify(0), 1.0).exterior
    return [[_r(x), _r(y)] for x, y in exterior.coords]


def render() -> str:
    """guazhou.json's exact text: indented for diffs, one [lon, lat] pair per line."""
    text = json.dumps(build(), ensure_ascii=False, indent=1)
    return _PAIR.sub(r"[\1,\2]", text) + "\n"


def main() -> None:
    DATA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {DATA_PATH}")


if __name__ == "__main__":
    main()
