"""Who owns a place in Guazhou county: the county → township → village → grid hierarchy.

Complaints are routed to the village (村/社区) that owns the place they were made about, so the
model answers two questions: what is above or below an org (for supervision and dashboards) and
which orgs contain a point (for routing a complaint from a map pin).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path

from shapely import Point, Polygon, STRtree

from yijian.jurisdiction.schema import JurisdictionData, Ring


class OrgKind(StrEnum):
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"
    GRID = "grid"


# Finer orgs win when a point hits several polygons.
_DEPTH = {OrgKind.COUNTY: 0, OrgKind.TOWNSHIP: 1, OrgKind.VILLAGE: 2, OrgKind.GRID: 3}


@dataclass(frozen=True)
class Org:
    code: str
    name: str
    kind: OrgKind
    parent_code: str | None


@dataclass(frozen=True)
class Placement:
    """Where a point or code falls; levels the point is not inside are None.

    A point can be in a township yet in no village (the desert between oases): such a
    complaint has no village owner and the township must take it.
    """

    grid: Org | None
    village: Org | None
    township: Org | None
    in_county: bool


_NOWHERE = Placement(grid=None, village=None, township=None, in_county=False)


class Jurisdiction:
    """The loaded hierarchy with polygons; immutable after construction, so safe to share."""

    def __init__(self, data: JurisdictionData) -> None:
        self._orgs: dict[str, Org] = {}
        self._shapes: dict[str, Polygon] = {}
        self._children: dict[str, list[str]] = {}
        county = data["county"]
        self._county_code = county["code"]
        self._add(county["code"], county["name"], OrgKind.COUNTY, None, county["polygon"])
        for township in data["townships"]:
            code = township["code"]
            self._add(code, township["name"], OrgKind.TOWNSHIP, county["code"], township["polygon"])
            for village in township["villages"]:
                v_code = village["code"]
                self._add(v_code, village["name"], OrgKind.VILLAGE, code, village["polygon"])
                for grid in village["grids"]:
                    self._add(grid["code"], grid["name"], OrgKind.GRID, v_code, grid["polygon"])
        # The county polygon is left out of the index: a point outside every township but
        # inside the county is rare enough to test directly.
        self._indexed = tuple(
            code for code, org in self._orgs.items() if org.kind is not OrgKind.COUNTY
        )
        self._index = STRtree([self._shapes[code] for code in self._indexed])

    def _add(self, code: str, name: str, kind: OrgKind, parent: str | None, ring: Ring) -> None:
        if code in self._orgs:
            raise ValueError(f"duplicate org code {code}")
        self._orgs[code] = Org(code=code, name=name, kind=kind, parent_code=parent)
        self._shapes[code] = Polygon(ring)
        self._children[code] = []
        if parent is not None:
            self._children[parent].append(code)

    @classmethod
    def load(cls, path: Path | None = None) -> Jurisdiction:
        """Read a jurisdiction file; by default the made-up Guazhou data shipped in the package."""
        if path is None:
            text = (
                resources.files("yijian.jurisdiction").joinpath("guazhou.json").read_text("utf-8")
            )
        else:
            text = path.read_text(encoding="utf-8")
        data: JurisdictionData = json.loads(text)
        return cls(data)

    @property
    def county(self) -> Org:
        return self._orgs[self._county_code]

    def townships(self) -> list[Org]:
        return self._kids(self._county_code)

    def villages(self, township_code: str | None = None) -> list[Org]:
        """Villages of one township, or of the whole county when no township is given."""
        if township_code is not None:
            return self._kids(township_code) if self._is(township_code, OrgKind.TOWNSHIP) else []
        return [v for t in self.townships() for v in self._kids(t.code)]

    def grids(self, village_code: str | None = None) -> list[Org]:
        """Grids of one village, or of the whole county when no village is given."""
        if village_code is not None:
            return self._kids(village_code) if self._is(village_code, OrgKind.VILLAGE) else []
        return [g for v in self.villages() for g in self._kids(v.code)]

    def get(self, code: str) -> Org | None:
        return self._orgs.get(code)

    def parent(self, code: str) -> Org | None:
        org = self._orgs.get(code)
        if org is None or org.parent_code is None:
            return None
        return self._orgs[org.parent_code]

    def chain(self, code: str) -> list[Org]:
        """The org and everything above it up to the county; empty for an unknown code."""
        chain: list[Org] = []
        org = self._orgs.get(code)
        while org is not None:
            chain.append(org)
            org = self.parent(org.code)
        return chain

    def contains(self, ancestor_code: str, code: str) -> bool:
        """Whether ``code`` is ``ancestor_code`` or sits below it: can that level see it?"""
        return any(org.code == ancestor_code for org in self.chain(code))

    def locate(self, lat: float, lon: float) -> Placement:
        """The orgs owning a point; points on a shared edge go to the lowest code."""
        point = Point(lon, lat)
        hits = [self._indexed[i] for i in self._index.query(point, predicate="intersects")]
        if not hits:
            in_county = bool(self._shapes[self._county_code].intersects(point))
            return Placement(grid=None, village=None, township=None, in_county=in_county)
        finest = min(hits, key=lambda code: (-_DEPTH[self._orgs[code].kind], code))
        return self._placement(finest)

    def locate_code(self, code: str) -> Placement:
        """The placement implied by an org code, e.g. a grid chosen from a list instead of a map."""
        if code not in self._orgs:
            return _NOWHERE
        return self._placement(code)

    def point_in(self, code: str) -> tuple[float, float]:
        """(lat, lon) of a point guaranteed inside the org, unlike its centroid."""
        point = self._shapes[code].representative_point()
        return float(point.y), float(point.x)

    def tree(self) -> dict[str, object]:
        """The hierarchy without polygons, small enough to send to a browser."""
        return self._node(self._county_code)

    def _node(self, code: str) -> dict[str, object]:
        org = self._orgs[code]
        node: dict[str, object] = {"code": org.code, "name": org.name, "kind": str(org.kind)}
        if org.kind is OrgKind.GRID:
            return node
        # Grids are too small to label on a county map, so only larger orgs get a centroid.
        centroid = self._shapes[code].centroid
        node["centroid"] = {"lat": round(float(centroid.y), 5), "lon": round(float(centroid.x), 5)}
        node["counts"] = self._counts(org)
        node["children"] = [self._node(child) for child in self._children[code]]
        return node

    def _counts(self, org: Org) -> dict[str, int]:
        if org.kind is OrgKind.COUNTY:
            return {
                "townships": len(self.townships()),
                "villages": len(self.villages()),
                "grids": len(self.grids()),
            }
        if org.kind is OrgKind.TOWNSHIP:
            villages = self.villages(org.code)
            return {
                "villages": len(villages),
                "grids": sum(len(self.grids(v.code)) for v in villages),
            }
        return {"grids": len(self.grids(org.code))}

    def _kids(self, code: str) -> list[Org]:
        return [self._orgs[child] for child in self._children.get(code, [])]

    def _is(self, code: str, kind: OrgKind) -> bool:
        org = self._orgs.get(code)
        return org is not None and org.kind is kind

    def _placement(self, code: str) -> Placement:
        found = {org.kind: org for org in self.chain(code)}
        return Placement(
            grid=found.get(OrgKind.GRID),
            village=found.get(OrgKind.VILLAGE),
            township=found.get(OrgKind.TOWNSHIP),
            in_county=True,
        )
