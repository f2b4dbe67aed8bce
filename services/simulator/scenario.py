"""The scenario file: who complains when and where, and how fast each level answers.

A scenario is TOML, checked here with pydantic; the shipped ones are in ``scenarios/``.
Every problem raises ``ScenarioError`` naming the file and the TOML path, e.g.
``month.toml: levels.village.accept.median: not a duration: "2x" (…)``. Format::

    name = "瓜州县 一个月"
    days = 30                       # days with arrivals
    follow_days = 7                 # optional: days more without arrivals, so the period's
                                    # complaints can finish (days + follow_days <= 366)
    start = 2026-03-02T00:00:00+08:00
    seed = 20260302                 # same seed, same complaints and same staff behaviour

    [arrivals]
    per_day = 60                    # mean complaints a day (Poisson)
    slot = "10m"                    # arrivals are submitted together at the start of a slot
    hourly = [ …24 weights, Beijing hours 0–23… ]
    weekdays = [1, 1, 1, 1, 1, 0.8, 0.7]    # optional, Monday first
    urgent_share = 0.03             # optional

    [categories]                    # weights; every name must be in the policy file
    "邻里纠纷" = 20

    [locations]
    spread = "uniform"              # over the 83 villages, or "by_township" with weights:
    [locations.townships]           # township name or code → weight; unlisted ones get none
    "渊泉镇" = 30

    [levels.village]                # and [levels.township], [levels.county]
    responds = 0.96                 # chance the level acts on a complaint at all
    calendar = "natural"            # or "workday": its delays only run on working days
    accept = { median = "30m", spread = 0.8 }    # lognormal: median, and sigma of ln(delay)
    reply = { median = "2h", spread = 0.8 }      # optional; after accepting
    resolve = { median = "18h", spread = 0.9 }   # after replying (or accepting)
"""

from __future__ import annotations

import math
import random
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from yijian.calendar import CalendarKind, parse_duration
from yijian.jurisdiction import Jurisdiction
from yijian.level import Level
from yijian.policy import SlaPolicy

SCENARIOS = Path(__file__).parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "guazhou-month.toml"
# A drawn delay longer than the longest run means "never, in practice"; capping it keeps
# the datetime arithmetic finite whatever spread a file asks for.
LONGEST_DELAY = timedelta(days=366)
MAX_DAYS = 366  # the longest period the statistics answer for


class ScenarioError(ValueError):
    """The scenario file is malformed or does not fit the policy or the jurisdiction."""


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Delay(_Strict):
    """A lognormal delay: half of the draws are shorter than ``median``."""

    median: Duration
    spread: float = Field(default=0.8, ge=0, le=3, description="sigma of ln(delay)")

    def draw(self, rng: random.Random) -> timedelta:
        if self.spread == 0:
            return self.median
        seconds = rng.lognormvariate(math.log(self.median.total_seconds()), self.spread)
        return min(timedelta(seconds=round(seconds)), LONGEST_DELAY)


class Behaviour(_Strict):
    """How one level's staff answer the complaints it becomes accountable for."""

    responds: float = Field(ge=0, le=1)
    calendar: CalendarKind = CalendarKind.NATURAL
    accept: Delay
    reply: Delay | None = None
    resolve: Delay


class Levels(_Strict):
    village: Behaviour
    township: Behaviour
    county: Behaviour

    def of(self, level: Level) -> Behaviour:
        behaviour: Behaviour = getattr(self, level.value)
        return behaviour


class Arrivals(_Strict):
    per_day: float = Field(gt=0, le=5000)
    slot: Duration = timedelta(minutes=10)
    hourly: list[Annotated[float, Field(ge=0)]] = Field(min_length=24, max_length=24)
    weekdays: list[Annotated[float, Field(ge=0)]] = Field(
        default=[1.0] * 7, min_length=7, max_length=7
    )
    urgent_share: float = Field(default=0.0, ge=0, le=1)

    @field_validator("slot")
    @classmethod
    def _slot_divides_the_hour(cls, slot: timedelta) -> timedelta:
        seconds = slot.total_seconds()
        if not 60 <= seconds <= 3600 or 3600 % seconds:
            raise ValueError("slot must divide an hour evenly, from 1m to 1h (e.g. 10m, 15m)")
        return slot

    @field_validator("hourly")
    @classmethod
    def _some_hour(cls, hourly: list[float]) -> list[float]:
        if sum(hourly) <= 0:
            raise ValueError("at least one hour needs a positive weight")
        return hourly


class Locations(_Strict):
    spread: Literal["uniform", "by_township"] = "uniform"
    townships: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weights_fit_the_spread(self) -> Locations:
        if self.spread == "by_township" and sum(self.townships.values()) <= 0:
            raise ValueError('spread = "by_township" needs positive weights in townships')
        if self.spread == "uniform" and self.townships:
            raise ValueError('townships weights only apply with spread = "by_township"')
        return self


class Scenario(_Strict):
    name: str = Field(min_length=1, max_length=200)
    days: int = Field(ge=1, le=MAX_DAYS)
    follow_days: int = Field(default=0, ge=0, le=MAX_DAYS)
    start: datetime
    seed: int
    arrivals: Arrivals
    categories: dict[str, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    locations: Locations = Locations()
    levels: Levels

    @field_validator("start")
    @classmethod
    def _aware(cls, start: datetime) -> datetime:
        if start.tzinfo is None:
            raise ValueError("start needs an offset, e.g. 2026-03-02T00:00:00+08:00")
        return start

    @field_validator("categories")
    @classmethod
    def _some_category(cls, categories: dict[str, float]) -> dict[str, float]:
        if sum(categories.values()) <= 0:
            raise ValueError("at least one category needs a positive weight")
        return categories

    @model_validator(mode="after")
    def _fits_the_dashboard(self) -> Scenario:
        if self.days + self.follow_days > MAX_DAYS:
            raise ValueError(f"days + follow_days must be at most {MAX_DAYS}")
        return self

    @property
    def end(self) -> datetime:
        """When arrivals stop."""
        return self.start + timedelta(days=self.days)

    @property
    def finish(self) -> datetime:
        """When the replay stops: the figures cover ``start`` up to here."""
        return self.end + timedelta(days=self.follow_days)

    def township_weights(self, jurisdiction: Jurisdiction) -> dict[str, float]:
        """Township code → weight, for ``by_township``; names and codes both accepted."""
        by_name = {t.name: t.code for t in jurisdiction.townships()}
        codes = set(by_name.values())
        weights: dict[str, float] = {}
        for key, weight in self.locations.townships.items():
            code = key if key in codes else by_name.get(key)
            if code is None:
                raise ScenarioError(
                    f"locations.townships: {key!r} is not a township of "
                    f"{jurisdiction.county.name} (e.g. {next(iter(by_name))})"
                )
            weights[code] = weights.get(code, 0.0) + weight
        return weights

    def check_against(self, policy: SlaPolicy, jurisdiction: Jurisdiction) -> None:
        """Raise ScenarioError when the scenario names what the policy or the map lacks."""
        unknown = [name for name in self.categories if name not in policy.categories]
        if unknown:
            raise ScenarioError(
                f"categories: {', '.join(unknown)} not in the policy {policy.source} "
                f"(it has {', '.join(policy.categories)})"
            )
        if self.arrivals.urgent_share and "urgent" not in policy.urgencies:
            raise ScenarioError(f"arrivals.urgent_share: the policy {policy.source} has no urgent")
        self.township_weights(jurisdiction)


def load_scenario(path: Path) -> Scenario:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read it: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path.name}: not valid TOML: {error}") from None
    try:
        return Scenario.model_validate(document)
    except ValidationError as error:
        raise ScenarioError(f"{path.name}: {_explain(error)}") from None


def _explain(error: ValidationError) -> str:
    """One line per problem: the TOML path, then what is wrong with it."""
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "; ".join(lines)
