"""The three levels that can be accountable for a complaint.

A complaint starts at the village (村/社区) that owns the place. When a level lets a deadline
lapse the next level supervises it (督办): village → township (乡镇) → county platform (县平台).
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def above(self) -> Level | None:
        """The level that supervises this one, or None at the county."""
        index = _ORDER.index(self)
        return _ORDER[index + 1] if index + 1 < len(_ORDER) else None

    def below(self) -> Level | None:
        index = _ORDER.index(self)
        return _ORDER[index - 1] if index > 0 else None

    @property
    def label(self) -> str:
        """The Chinese name staff and citizens read."""
        return _LABELS[self]


_ORDER: tuple[Level, ...] = (Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY)
_LABELS = {Level.VILLAGE: "村(社区)", Level.TOWNSHIP: "乡镇", Level.COUNTY: "县平台"}
