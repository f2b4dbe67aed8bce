"""The shape of guazhou.json, shared by the generator that writes it and the model that reads it.

Keeping one definition means mypy catches the two drifting apart.
"""

from __future__ import annotations

from typing import TypedDict

# A closed ring of [lon, lat] pairs: GeoJSON order, so the file can be pasted into map tools.
Ring = list[list[float]]


class GridData(TypedDict):
    code: str
    name: str
    polygon: Ring


class VillageData(TypedDict):
    code: str
    name: str
    polygon: Ring
    grids: list[GridData]


class TownshipData(TypedDict):
    code: str
    name: str
    polygon: Ring
    villages: list[VillageData]


class CountyData(TypedDict):
    code: str
    name: str
    polygon: Ring


class JurisdictionData(TypedDict):
    notice: str
    county: CountyData
    townships: list[TownshipData]
