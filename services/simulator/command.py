"""``yijian simulate``: the policy simulator on the command line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import Annotated

import structlog
import typer
from pydantic import ValidationError

from services.simulator.figures import render
from services.simulator.scenario import (
    DEFAULT_SCENARIO,
    MAX_DAYS,
    Scenario,
    ScenarioError,
    load_scenario,
)
from services.simulator.simulation import Progress
from services.simulator.simulation import simulate as replay
from yijian.policy import PolicyError

_FILE = {"exists": True, "dir_okay": False, "readable": True}


def simulate(
    scenario: Annotated[
        Path, typer.Option(help="the scenario TOML (arrivals, categories, places, staff)", **_FILE)
    ] = DEFAULT_SCENARIO,
    policy: Annotated[
        Path | None,
        typer.Option(help="the SLA policy TOML to try; default the shipped one", **_FILE),
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, max=MAX_DAYS, help="days of arrivals, not the file's")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed, instead of the file's")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", dir_okay=False, help="also write the figures here")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="keep the simulated system's databases in this new or empty folder "
            "(default: a temporary folder, removed afterwards)",
        ),
    ] = None,
) -> None:
    """Replay a day or a month of complaints against a policy, on a fake clock, and report.

    Same scenario and seed, same complaints and same staff: run it once per policy and compare.
    """
    chosen = _scenario(scenario, days, seed)
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise typer.BadParameter(
            "must be a new or empty folder, never a real system's data", param_hint="--data-dir"
        )
    try:
        with _warnings_only():
            result = asyncio.run(replay(chosen, policy, data_dir, _progress(perf_counter())))
    except PolicyError as error:
        raise typer.BadParameter(str(error), param_hint="--policy") from None
    except ScenarioError as error:
        raise typer.BadParameter(str(error), param_hint="--scenario") from None
    typer.echo(render(result))
    if json_out is not None:
        figures = json.dumps(result.as_json(), ensure_ascii=False, indent=2)
        json_out.write_text(figures + "\n", encoding="utf-8")
        typer.echo(f"figures written to {json_out}")


def _progress(started: float) -> Progress:
    def tell(done: int, total: int) -> None:
        # On stderr, so the table on stdout stays clean for a pipe or a file.
        typer.echo(f"  day {done} of {total} ({perf_counter() - started:.0f} s)", err=True)

    return tell


@contextmanager
def _warnings_only() -> Iterator[None]:
    """Only warnings and errors while it runs, then the logging as it was.

    The system logs every notification it sends, which would bury the table. Only the
    level changes, and only for the run, so a caller in the same process (a test, the
    benchmarks) keeps its own logging afterwards.
    """
    previous = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(wrapper_class=previous)


def _scenario(path: Path, days: int | None, seed: int | None) -> Scenario:
    try:
        scenario = load_scenario(path)
    except ScenarioError as error:
        raise typer.BadParameter(str(error), param_hint="--scenario") from None
    changes = {key: value for key, value in (("days", days), ("seed", seed)) if value is not None}
    if not changes:
        return scenario
    try:
        # Validated again, so --days is held to the same limits as the file's own days.
        return Scenario.model_validate({**scenario.model_dump(), **changes})
    except ValidationError as error:
        problems = "; ".join(problem["msg"] for problem in error.errors(include_url=False))
        raise typer.BadParameter(problems, param_hint="--days") from None
