"""Where a new complaint goes: the village that owns the place, or a dispatch queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.routing.access import org_ref
from services.routing.repository import Place
from yijian.contracts.events import Org, ReportedLocation
from yijian.jurisdiction import Jurisdiction, Placement
from yijian.level import Level

Reason = Literal["located", "start_level", "outside", "unknown"]


@dataclass(frozen=True)
class FirstAssignment:
    place: Place
    assignee: Org
    pending: bool  # True: a person at ``assignee`` must pick the village (待分派)
    reason: Reason


def locate(jurisdiction: Jurisdiction, location: ReportedLocation) -> tuple[Placement, bool]:
    """The placement and whether the citizen named a code we do not know."""
    if location.grid_code is not None:
        found = jurisdiction.locate_code(location.grid_code)
        return found, found.village is None
    if location.village_code is not None:
        found = jurisdiction.locate_code(location.village_code)
        return found, found.village is None
    if location.lat is not None and location.lon is not None:
        return jurisdiction.locate(location.lat, location.lon), False
    return Placement(None, None, None, False), True


def first_assignment(
    jurisdiction: Jurisdiction, location: ReportedLocation, start_level: Level
) -> FirstAssignment:
    placement, unknown_code = locate(jurisdiction, location)
    place = Place(
        township_code=placement.township.code if placement.township else None,
        village_code=placement.village.code if placement.village else None,
        grid_code=placement.grid.code if placement.grid else None,
    )
    county = org_ref(jurisdiction, jurisdiction.county.code)
    township = org_ref(jurisdiction, place.township_code) if place.township_code else None
    village = org_ref(jurisdiction, place.village_code) if place.village_code else None
    assert county is not None

    if start_level == Level.COUNTY:
        return FirstAssignment(place, county, pending=False, reason="start_level")
    if start_level == Level.TOWNSHIP:
        if township is not None:
            return FirstAssignment(place, township, pending=False, reason="start_level")
        return FirstAssignment(place, county, pending=True, reason="unknown")
    if village is not None:
        return FirstAssignment(place, village, pending=False, reason="located")
    if township is not None:
        # Inside a township but in no village's area: the township decides who takes it.
        return FirstAssignment(place, township, pending=True, reason="outside")
    return FirstAssignment(
        place, county, pending=True, reason="unknown" if unknown_code else "outside"
    )
