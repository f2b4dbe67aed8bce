"""The figures as CSV files a county office opens in Excel.

UTF-8 with a byte-order mark: without it Excel on a Chinese Windows reads the file as GBK
and shows the headers as mojibake. Rates are written as percentages ("66.7%"), which Excel
reads as numbers; a rate with nothing to divide by is left empty, not 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from services.routing.dashboard_scope import Period, Scope
from services.routing.dashboard_series import Day
from services.routing.stats import Figures, LevelFigures, UnitFigures

BOM = "\ufeff"
TOTAL = "合计"

FIGURE_HEADERS = (
    "区划代码",
    "区划名称",
    "层级",
    "受理数",
    "办结数",
    "办结率",
    "本级按期率",
    "按时办结率",
    "督办升级次数",
    "平均签收用时(分钟)",
    "满意率",
)
SERIES_HEADERS = ("日期", "受理数", "办结数", "按时办结数", "按时办结率", "督办升级次数")


def _percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _level_row(code: str, name: str, figure: LevelFigures) -> list[str]:
    return [
        code,
        name,
        figure.level.label,
        str(figure.received),
        str(figure.resolved),
        _percent(figure.resolution_rate),
        _percent(figure.on_time_rate),
        "",
        str(figure.escalations),
        _minutes(figure.mean_time_to_accept_seconds),
        "",
    ]


def _unit_rows(unit: UnitFigures) -> Iterable[list[str]]:
    for figure in unit.levels:
        yield _level_row(unit.code, unit.name, figure)
    yield [
        unit.code,
        unit.name,
        TOTAL,
        str(unit.received),
        str(unit.resolved),
        _percent(unit.resolution_rate),
        "",
        _percent(unit.on_time_rate),
        str(unit.escalations),
        "",
        _percent(unit.satisfied_rate),
    ]


def _render(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return (BOM + buffer.getvalue()).encode("utf-8")


def figures_csv(scope: Scope, figures: Figures) -> bytes:
    """A row per place per level, a total per place, then the scope's own rows.

    The places are the county's townships, or a township's villages.
    """
    units = figures.by_village if scope.township_code is not None else figures.by_township
    rows: list[list[str]] = []
    if scope.village_code is None:
        for unit in units:
            rows.extend(_unit_rows(unit))
    whole = UnitFigures(
        code=scope.org.code,
        name=scope.org.name,
        received=figures.received,
        resolved=figures.resolved,
        resolution_rate=figures.resolution_rate,
        escalations=figures.escalations,
        on_time_rate=figures.on_time_rate,
        satisfied_rate=figures.satisfaction.satisfied_rate if figures.satisfaction else None,
        levels=figures.levels,
    )
    rows.extend(_unit_rows(whole))
    return _render(FIGURE_HEADERS, rows)


def series_csv(days: Sequence[Day]) -> bytes:
    return _render(
        SERIES_HEADERS,
        (
            [
                day.day,
                str(day.received),
                str(day.resolved),
                str(day.resolved_on_time),
                _percent(day.on_time_rate),
                str(day.escalations),
            ]
            for day in days
        ),
    )


def filename(kind: str, scope: Scope, period: Period) -> str:
    """ASCII only, so every browser keeps it: yijian-stats-620922-20260201-20260302.csv."""
    first, last = period.days()[0], period.days()[-1]
    return f"yijian-{kind}-{scope.org.code}-{first:%Y%m%d}-{last:%Y%m%d}.csv"
