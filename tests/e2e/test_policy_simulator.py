"""``yijian simulate``: a replay of complaints against a policy, and the figures it reports.

The small scenario below runs the real system for a couple of days. Its categories all start
at the village, so every complaint a township or the county received reached it by 督办.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.simulator.arrivals import arrivals
from services.simulator.figures import Report
from services.simulator.scenario import DEFAULT_SCENARIO, Delay, Scenario, load_scenario
from services.simulator.simulation import simulate
from yijian.calendar import SHANGHAI
from yijian.jurisdiction import Jurisdiction

SMALL = """
name = "two quiet days"
days = 2
follow_days = 3
start = 2026-03-02T00:00:00+08:00
seed = 7

[arrivals]
per_day = 10
slot = "15m"
hourly = [0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 2, 2, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0]

[categories]
"邻里纠纷" = 1
"环境卫生" = 1
"道路交通" = 1

[locations]
spread = "by_township"

[locations.townships]
"渊泉镇" = 2
"620922101" = 1

[levels.village]
responds = 0.9
accept = { median = "50m", spread = 0.9 }
reply = { median = "2h", spread = 0.5 }
resolve = { median = "20h", spread = 0.9 }

[levels.township]
responds = 0.95
calendar = "workday"
accept = { median = "2h", spread = 0.8 }
resolve = { median = "1d", spread = 0.8 }

[levels.county]
responds = 1.0
calendar = "workday"
accept = { median = "3h", spread = 0.5 }
resolve = { median = "1d", spread = 0.5 }
"""

DEFAULT_POLICY = Path(__file__).parents[2] / "yijian" / "policies" / "default.toml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def hurried_policy(folder: Path) -> Path:
    """The default policy, except that a village has 30 minutes to 签收 instead of 2 hours."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    village = text.index("[levels.village]")
    head, tail = text[:village], text[village:]
    tail = tail.replace('accept = "2h"', 'accept = "30m"', 1)
    tail = tail.replace('remind_before = "30m"', 'remind_before = "10m"', 1)
    return write(folder, "hurried.toml", head + tail)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["simulate", *args])
    # Typer draws errors in a box; keep the words, whatever the terminal width.
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
    return result.exit_code, words


def test_the_figures_of_a_small_run_add_up(tmp_path: Path) -> None:
    scenario = write(tmp_path, "small.toml", SMALL)
    out = tmp_path / "figures.json"

    code, output = invoke("--scenario", str(scenario), "--json", str(out))

    assert code == 0, output
    for row in ("village", "township", "county"):
        assert re.search(rf"{row} \d+ \d+", output), output
    figures = json.loads(out.read_text(encoding="utf-8"))
    village, township, county = figures["levels"]
    assert figures["received"] == figures["run"]["submitted"] > 5  # every complaint, once
    assert figures["resolved"] + figures["open"] == figures["received"]
    assert figures["resolved"] == sum(level["resolved"] for level in figures["levels"])
    assert village["received"] == figures["received"]
    # Nothing starts above the village here, so whatever climbed is what a level received.
    assert township["received"] == village["escalated_up"] == figures["escalations_to_township"]
    assert county["received"] == township["escalated_up"] == figures["escalations_to_county"]
    assert figures["share_resolved_at_village"] == village["share_of_resolved"]
    shares = [level["share_of_resolved"] or 0 for level in figures["levels"]]
    assert sum(shares) == pytest.approx(1.0, abs=0.001)
    assert figures["run"]["refused_steps"] == 0  # the staff never tried what the system forbids
    assert figures["reminders"] == sum(level["reminders"] for level in figures["levels"])


async def test_a_shorter_village_deadline_sends_more_to_the_township(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "small.toml", SMALL))

    default = await simulate(scenario, DEFAULT_POLICY)
    hurried = await simulate(scenario, hurried_policy(tmp_path))

    assert hurried.received == default.received  # the same complaints, the same staff
    assert hurried.escalations_to_township > default.escalations_to_township
    assert hurried.share_resolved_at_village is not None
    assert default.share_resolved_at_village is not None
    assert hurried.share_resolved_at_village < default.share_resolved_at_village
    assert "hurried.toml" in hurried.policy


async def test_the_same_seed_gives_the_same_figures(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "small.toml", SMALL))
    one_day = Scenario.model_validate({**scenario.model_dump(), "days": 1, "follow_days": 1})

    first, second = await simulate(one_day), await simulate(one_day)

    def figures(report: Report) -> dict[str, object]:
        values = asdict(report)
        values.pop("run")  # the wall-clock time differs, of course
        return values

    assert figures(first) == figures(second)
    assert first.received > 0


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda text: text.replace("[arrivals]", "[arrivals"), "not valid TOML"),
        (
            lambda text: text.replace('median = "50m"', 'median = "50x"'),
            "levels.village.accept.median",
        ),
        (lambda text: text.replace("per_day = 10", "per_day = -3"), "arrivals.per_day"),
        (lambda text: text.replace('"邻里纠纷" = 1', '"打麻将" = 1'), "打麻将 not in the policy"),
        (lambda text: text.replace('"渊泉镇" = 2', '"桃花镇" = 2'), "'桃花镇' is not a township"),
        (lambda text: text.replace("responds = 0.9\n", ""), "levels.village.responds"),
        (lambda text: text.replace('slot = "15m"', 'slot = "7m"'), "slot must divide an hour"),
    ],
)
def test_a_bad_scenario_is_refused_with_a_reason(
    tmp_path: Path, change: Callable[[str], str], complaint: str
) -> None:
    scenario = write(tmp_path, "bad.toml", change(SMALL))

    code, output = invoke("--scenario", str(scenario))

    assert code == 2, output
    assert "Invalid value for --scenario" in output
    assert complaint in output
    assert "Traceback" not in output


def test_bad_options_and_policies_are_refused_with_a_reason(tmp_path: Path) -> None:
    scenario = str(write(tmp_path, "small.toml", SMALL))
    broken = write(tmp_path, "broken.toml", "[rules]\nmax_returns = 2\n")

    for args, reason in [
        (["--scenario", str(tmp_path / "missing.toml")], "does not exist"),
        (["--scenario", scenario, "--days", "400"], "--days"),
        (["--scenario", scenario, "--policy", str(broken)], "Invalid value for --policy"),
    ]:
        code, output = invoke(*args)
        assert code == 2, output
        assert reason in output
        assert "Traceback" not in output


def test_arrivals_follow_the_day_and_the_seed() -> None:
    month = load_scenario(DEFAULT_SCENARIO)
    jurisdiction = Jurisdiction.load()

    came = arrivals(month, jurisdiction)

    expected = month.arrivals.per_day * month.days
    assert 0.85 * expected < len(came) < 1.15 * expected
    hours = [arrival.at.astimezone(SHANGHAI).hour for arrival in came]
    night = sum(1 for hour in hours if hour < 6)
    morning = sum(1 for hour in hours if 9 <= hour < 12)
    assert morning > 10 * night
    assert {arrival.category for arrival in came} == set(month.categories)
    in_seat = sum(1 for arrival in came if arrival.village_code.startswith("620922100"))
    assert 0.15 < in_seat / len(came) < 0.30  # 渊泉镇 carries 167 of the 767 grid weights
    assert arrivals(month, jurisdiction) == came
    reseeded = arrivals(month.model_copy(update={"seed": month.seed + 1}), jurisdiction)
    assert reseeded != came


def test_a_delay_draw_has_the_median_it_was_given() -> None:
    delay = Delay(median=timedelta(hours=2), spread=0.8)
    rng = random.Random(1)
    draws = sorted(delay.draw(rng) for _ in range(4001))
    assert timedelta(minutes=110) < draws[2000] < timedelta(minutes=130)
    assert delay.model_copy(update={"spread": 0}).draw(rng) == timedelta(hours=2)
