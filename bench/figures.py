"""Figures, their baselines and targets, the table they print as and the JSON they are kept in.

The machine is shared and noisy, so no figure stands alone: each carries the baseline measured
in the same run, and the ratio between the two is what should be compared between runs.
Nothing here measures anything; it is plain data and formatting, tested without a clock.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Verdict = Literal["pass", "miss", "n/a"]


@dataclass(frozen=True)
class Target:
    """What a figure should reach: absolute bounds, and bounds on its ratio to the baseline."""

    at_least: float | None = None
    at_most: float | None = None
    ratio_at_least: float | None = None
    ratio_at_most: float | None = None

    def describe(self, unit: str) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f"≥ {number(self.at_least)} {unit}")
        if self.at_most is not None:
            parts.append(f"≤ {number(self.at_most)} {unit}")
        if self.ratio_at_least is not None:
            parts.append(f"≥ {percent(self.ratio_at_least)} of baseline")
        if self.ratio_at_most is not None:
            parts.append(f"≤ {percent(self.ratio_at_most)} of baseline")
        return ", ".join(parts) or "—"

    def verdict(self, value: float | None, ratio: float | None) -> Verdict:
        """pass when every bound holds; n/a without a target or without a value to judge."""
        checks: list[bool] = []
        if value is None:
            return "n/a"
        if self.at_least is not None:
            checks.append(value >= self.at_least)
        if self.at_most is not None:
            checks.append(value <= self.at_most)
        if self.ratio_at_least is not None or self.ratio_at_most is not None:
            if ratio is None:
                return "miss"  # a ratio target with no baseline cannot be said to hold
            if self.ratio_at_least is not None:
                checks.append(ratio >= self.ratio_at_least)
            if self.ratio_at_most is not None:
                checks.append(ratio <= self.ratio_at_most)
        if not checks:
            return "n/a"
        return "pass" if all(checks) else "miss"


@dataclass(frozen=True)
class Figure:
    """One measured figure, beside its baseline from the same run."""

    name: str
    unit: str
    value: float | None
    baseline: float | None
    baseline_name: str
    target: Target = Target()
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.baseline == 0:
            return None
        if not (math.isfinite(self.value) and math.isfinite(self.baseline)):
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> Verdict:
        return self.target.verdict(self.value, self.ratio)

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["target"] = {k: v for k, v in document["target"].items() if v is not None}
        document["target_text"] = self.target.describe(self.unit)
        document["ratio"] = self.ratio
        document["verdict"] = self.verdict
        return document


def number(value: float | None) -> str:
    """A figure as people read it: thousands separated, few decimals for small numbers."""
    if value is None or not math.isfinite(value):
        return "—"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.0f}%"


def times(ratio: float | None) -> str:
    """The ratio column: a percentage up to 10×, beyond that a multiple (easier to read)."""
    if ratio is None or ratio < 10:
        return percent(ratio)
    return f"{ratio:,.0f}×"


HEADER = ("figure", "value", "baseline", "ratio", "target", "result")


def rows_of(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for figure in figures:
        value = f"{number(figure.value)} {figure.unit}" if figure.value is not None else "—"
        baseline = number(figure.baseline)
        if figure.baseline is not None:
            baseline += f" ({figure.baseline_name})" if figure.baseline_name else ""
        rows.append(
            (
                figure.name,
                value,
                baseline,
                times(figure.ratio),
                figure.target.describe(figure.unit),
                figure.verdict,
            )
        )
    return rows


def render_table(figures: Sequence[Figure]) -> str:
    """A plain-text table, one figure a line, columns padded to their widest cell."""
    rows = [HEADER, *rows_of(figures)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def render_markdown(figures: Sequence[Figure]) -> str:
    """The same table for docs/performance.md."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows_of(figures)]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Enough about the machine to tell two runs' circumstances apart."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in load],
    }


def write_results(
    directory: Path,
    name: str,
    *,
    mode: str,
    figures: Sequence[Figure],
    details: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
    seconds: float | None = None,
) -> Path:
    """Write ``directory/<name>.json``: the figures with their ratios and verdicts."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "name": name,
        "mode": mode,
        "started_at": (started_at or datetime.now(UTC)).isoformat(),
        "seconds": seconds,
        "machine": machine(),
        "figures": [figure.as_json() for figure in figures],
        "details": dict(details or {}),
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_figures(path: Path) -> list[Figure]:
    """The figures of a results file, as written by ``write_results``."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [
        Figure(
            name=item["name"],
            unit=item["unit"],
            value=item["value"],
            baseline=item["baseline"],
            baseline_name=item["baseline_name"],
            target=Target(**item["target"]),
            note=item.get("note", ""),
        )
        for item in document["figures"]
    ]
