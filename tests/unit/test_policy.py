"""The SLA policy file: layering, start levels, validation and the shipped default."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from yijian.calendar import CalendarKind
from yijian.level import Level
from yijian.policy import LevelTerms, PolicyError, SlaPolicy

BASE = """
[rules]
max_returns = 2
max_reopens = 1

[levels.village]
accept = "2h"
resolve = "3d"
remind_before = "30m"
calendar = "natural"

[levels.township]
accept = "4h"
resolve = "5d"
remind_before = "1h"
calendar = "workday"

[levels.county]
accept = "8h"
resolve = "7d"
remind_before = "2h"
calendar = "workday"
overdue_repeat = "12h"
"""

LAYERED = """
[categories.C]
accept = "3h"
[categories.C.levels.township]
accept = "5h"
resolve = "6d"

[urgencies.U]
accept = "1h"
remind_before = "10m"
calendar = "natural"
[urgencies.U.levels.county]
accept = "20m"
"""

PRODUCT_CATEGORIES = [
    "邻里纠纷",
    "婚恋家庭",
    "征地拆迁",
    "环境卫生",
    "道路交通",
    "水电供应",
    "治安隐患",
    "重大矛盾纠纷",
    "其他",
]


def load(text: str) -> SlaPolicy:
    return SlaPolicy.from_toml(text, source="sla.toml")


def edited(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_level_defaults_are_read() -> None:
    policy = load(BASE)
    assert policy.terms(Level.VILLAGE) == LevelTerms(
        accept=timedelta(hours=2),
        resolve=timedelta(days=3),
        remind_before=timedelta(minutes=30),
        calendar=CalendarKind.NATURAL,
        overdue_repeat=timedelta(days=1),  # not in the file: the documented default
    )
    assert policy.terms(Level.TOWNSHIP).calendar is CalendarKind.WORKDAY
    assert policy.terms(Level.COUNTY).overdue_repeat == timedelta(hours=12)
    assert (policy.max_returns, policy.max_reopens) == (2, 1)
    assert policy.source == "sla.toml"
    assert policy.categories_named() == []


def test_category_overrides_every_level_then_one_level() -> None:
    policy = load(BASE + LAYERED)
    assert policy.terms(Level.VILLAGE, "C").accept == timedelta(hours=3)
    assert policy.terms(Level.COUNTY, "C").accept == timedelta(hours=3)
    township = policy.terms(Level.TOWNSHIP, "C")
    assert township.accept == timedelta(hours=5)
    assert township.resolve == timedelta(days=6)
    # What no layer touches still comes from the level.
    assert township.remind_before == timedelta(hours=1)
    assert township.calendar is CalendarKind.WORKDAY


def test_urgency_beats_category_and_its_per_level_beats_its_every_level() -> None:
    policy = load(BASE + LAYERED)
    # Urgency (every level) wins over the category's per-level township override…
    assert policy.terms(Level.TOWNSHIP, "C", "U").accept == timedelta(hours=1)
    # …but leaves the keys it does not set to the category.
    assert policy.terms(Level.TOWNSHIP, "C", "U").resolve == timedelta(days=6)
    assert policy.terms(Level.VILLAGE, "C", "U").accept == timedelta(hours=1)
    assert policy.terms(Level.COUNTY, "C", "U").accept == timedelta(minutes=20)
    assert policy.terms(Level.COUNTY, None, "U").accept == timedelta(minutes=20)
    assert policy.terms(Level.COUNTY, None, "U").calendar is CalendarKind.NATURAL
    assert policy.terms(Level.COUNTY, "C").accept == timedelta(hours=3)


def test_unknown_category_or_urgency_is_a_key_error() -> None:
    policy = load(BASE + LAYERED)
    with pytest.raises(KeyError, match="unknown category 'nope'"):
        policy.terms(Level.VILLAGE, "nope")
    with pytest.raises(KeyError, match="unknown urgency 'nope'"):
        policy.terms(Level.VILLAGE, "C", "nope")
    with pytest.raises(KeyError, match="unknown category 'nope'"):
        policy.start_level("nope")


def test_start_level_defaults_to_village() -> None:
    policy = load(
        BASE + '[categories."乙"]\nstart_level = "township"\n[categories."甲"]\n'
        '[categories.big]\nstart_level = "county"\n'
    )
    assert policy.start_level(None) is Level.VILLAGE
    assert policy.start_level("甲") is Level.VILLAGE
    assert policy.start_level("乙") is Level.TOWNSHIP
    assert policy.start_level("big") is Level.COUNTY
    # File order, not sorted order: it is the order the product offers them in.
    assert policy.categories_named() == ["乙", "甲", "big"]


def test_policy_mappings_are_read_only() -> None:
    policy = load(BASE)
    with pytest.raises(TypeError):
        policy.levels[Level.VILLAGE] = policy.levels[Level.COUNTY]  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            edited('accept = "2h"', 'accept = "2x"'),
            'sla.toml: levels.village.accept: unknown unit in "2x"',
            id="bad-duration",
        ),
        pytest.param(
            edited('accept = "2h"', 'accept = "0s"'),
            'sla.toml: levels.village.accept: zero duration "0s"',
            id="zero-duration",
        ),
        pytest.param(
            edited('accept = "2h"', "accept = 2"),
            'sla.toml: levels.village.accept: expected a duration string like "2h", got 2',
            id="duration-not-a-string",
        ),
        pytest.param(
            edited('calendar = "natural"', 'calendar = "lunar"'),
            "sla.toml: levels.village.calendar: unknown calendar 'lunar'",
            id="bad-calendar",
        ),
        pytest.param(
            edited('calendar = "natural"', 'calendar = "natural"\nsign = "1h"'),
            "sla.toml: levels.village.sign: unknown key",
            id="unknown-level-key",
        ),
        pytest.param(
            BASE + "[extra]\n",
            "sla.toml: extra: unknown key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            edited("max_reopens = 1", "max_reopens = 1\nmax_escalations = 3"),
            "sla.toml: rules.max_escalations: unknown key",
            id="unknown-rules-key",
        ),
        pytest.param(
            BASE + '[levels.city]\naccept = "1h"\n',
            "sla.toml: levels.city: unknown level 'city'",
            id="unknown-level",
        ),
        pytest.param(
            BASE + '[categories.C.levels.province]\naccept = "1h"\n',
            "sla.toml: categories.C.levels.province: unknown level 'province'",
            id="unknown-level-in-category",
        ),
        pytest.param(
            BASE + '[categories.C]\nstart_level = "city"\n',
            "sla.toml: categories.C.start_level: unknown level 'city'",
            id="unknown-start-level",
        ),
        pytest.param(
            BASE + '[urgencies.U]\nstart_level = "county"\n',
            "sla.toml: urgencies.U.start_level: unknown key",
            id="start-level-on-urgency",
        ),
        pytest.param(
            BASE + '[categories.C.levels.county]\nstart_level = "county"\n',
            "sla.toml: categories.C.levels.county.start_level: unknown key",
            id="start-level-per-level",
        ),
        pytest.param(
            BASE.split("[levels.township]")[0],
            "sla.toml: levels.township: missing table",
            id="missing-level",
        ),
        pytest.param(
            edited('resolve = "7d"\n', ""),
            "sla.toml: levels.county.resolve: missing",
            id="missing-level-key",
        ),
        pytest.param(
            edited("[rules]\nmax_returns = 2\nmax_reopens = 1\n", ""),
            "sla.toml: rules: missing table",
            id="missing-rules",
        ),
        pytest.param(
            edited("max_returns = 2\n", ""),
            "sla.toml: rules.max_returns: missing",
            id="missing-rule",
        ),
        pytest.param(
            edited("max_returns = 2", "max_returns = -1"),
            "sla.toml: rules.max_returns: expected a whole number >= 0, got -1",
            id="negative-rule",
        ),
        pytest.param(
            edited("max_returns = 2", "max_returns = true"),
            "sla.toml: rules.max_returns: expected a whole number >= 0, got True",
            id="boolean-rule",
        ),
        pytest.param(
            edited("max_reopens = 1", 'max_reopens = "1"'),
            "sla.toml: rules.max_reopens: expected a whole number >= 0, got '1'",
            id="string-rule",
        ),
        pytest.param(
            edited('remind_before = "30m"', 'remind_before = "2h"'),
            "sla.toml: levels.village: remind_before (2h) must be shorter than accept (2h)"
            " at village",
            id="remind-not-before-accept",
        ),
        pytest.param(
            edited('resolve = "3d"', 'resolve = "1h"'),
            "sla.toml: levels.village: accept (2h) must be no longer than resolve (1h) at village",
            id="accept-after-resolve",
        ),
        pytest.param(
            BASE + '[categories."重大矛盾纠纷"]\naccept = "20m"\n',
            'sla.toml: categories."重大矛盾纠纷": remind_before (30m) must be shorter than'
            ' accept (20m) at village with category "重大矛盾纠纷"',
            id="category-breaks-level",
        ),
        pytest.param(
            # Each layer is fine alone; only the combination clashes.
            BASE + '[categories.C.levels.county]\nremind_before = "3h"\n'
            '[urgencies.U.levels.county]\naccept = "3h"\n',
            "sla.toml: urgencies.U.levels.county: remind_before (3h) must be shorter than"
            ' accept (3h) at county with category "C" and urgency "U"',
            id="urgency-level-breaks-category",
        ),
        pytest.param(
            edited(
                BASE[BASE.index("[levels.village]") : BASE.index("[levels.township]")],
                '[levels]\nvillage = "2h"\n',
            ),
            "sla.toml: levels.village: expected a table, got str",
            id="level-not-a-table",
        ),
        pytest.param(
            BASE + '[categories." "]\n',
            'sla.toml: categories." ": name must not be blank',
            id="blank-category",
        ),
        pytest.param(
            BASE + "[levels.village\n",
            "sla.toml: not valid TOML: ",
            id="not-toml",
        ),
    ],
)
def test_invalid_policies_name_file_and_path(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match="^" + re.escape(message)):
        load(text)


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_load_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(BASE + LAYERED, encoding="utf-8")
    assert SlaPolicy.load(good).source == str(good)
    assert SlaPolicy.load(good).terms(Level.COUNTY, "C", "U").accept == timedelta(minutes=20)
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.replace('accept = "2h"', 'accept = "2x"'), encoding="utf-8")
    with pytest.raises(PolicyError, match="^" + re.escape(f"{bad}: levels.village.accept: ")):
        SlaPolicy.load(bad)


# --- the shipped default ----------------------------------------------------------------------


def test_default_policy_has_the_agreed_level_terms() -> None:
    policy = SlaPolicy.default()
    assert policy.source.endswith("default.toml")
    assert set(policy.levels) == set(Level)
    assert policy.terms(Level.VILLAGE) == LevelTerms(
        timedelta(hours=2),
        timedelta(days=3),
        timedelta(minutes=30),
        CalendarKind.NATURAL,
        timedelta(days=1),
    )
    township = policy.terms(Level.TOWNSHIP)
    assert (township.accept, township.resolve, township.remind_before) == (
        timedelta(hours=4),
        timedelta(days=5),
        timedelta(hours=1),
    )
    county = policy.terms(Level.COUNTY)
    assert (county.accept, county.resolve, county.remind_before, county.overdue_repeat) == (
        timedelta(hours=8),
        timedelta(days=7),
        timedelta(hours=2),
        timedelta(days=1),
    )
    assert (policy.max_returns, policy.max_reopens) == (2, 2)


def test_default_policy_knows_the_product_categories_in_order() -> None:
    policy = SlaPolicy.default()
    assert policy.categories_named() == PRODUCT_CATEGORIES
    assert policy.start_level("征地拆迁") is Level.TOWNSHIP
    assert policy.start_level("重大矛盾纠纷") is Level.COUNTY
    others = [name for name in PRODUCT_CATEGORIES if name not in {"征地拆迁", "重大矛盾纠纷"}]
    assert {policy.start_level(name) for name in others} == {Level.VILLAGE}
    major = policy.terms(Level.COUNTY, "重大矛盾纠纷")
    assert major.accept < policy.terms(Level.COUNTY).accept
    assert major.resolve < policy.terms(Level.COUNTY).resolve


def test_default_urgent_is_never_looser_than_without_it() -> None:
    policy = SlaPolicy.default()
    assert policy.urgencies_named() == ["normal", "urgent"]
    for category in [None, *policy.categories_named()]:
        for level in Level:
            plain = policy.terms(level, category)
            assert policy.terms(level, category, "normal") == plain
            urgent = policy.terms(level, category, "urgent")
            assert urgent.accept < policy.terms(level).accept, (category, level)
            assert urgent.accept <= plain.accept, (category, level)
            assert urgent.resolve <= plain.resolve, (category, level)
            assert urgent.calendar is CalendarKind.NATURAL
