"""The SLA policy: how long each level has to 签收 (accept) and 办结 (resolve) a complaint.

The policy lives in a TOML file so a county can tune it without a release; the shipped one is
``yijian/policies/default.toml``. Format::

    [rules]                    # required
    max_returns = 2            # 退回 this many times → goes up for a decision (integer >= 0)
    max_reopens = 2            # 不满意 reopens allowed (integer >= 0)

    [levels.village]           # required, as are [levels.township] and [levels.county]
    accept = "2h"              # 签收 within (durations as read by calendar.parse_duration)
    resolve = "3d"             # 办结 within
    remind_before = "30m"      # 催办 this long before each deadline
    calendar = "natural"       # or "workday"
    overdue_repeat = "1d"      # optional, default 1d: how often the overdue reminder repeats
                               # where nothing is left to climb to (the county)

    [categories."重大矛盾纠纷"]  # optional; file order is the order categories are offered in
    start_level = "county"     # optional, default village
    accept = "1h"              # any [levels.*] key, applied to every level…
    [categories."重大矛盾纠纷".levels.county]
    resolve = "1d"             # …or to one level

    [urgencies.urgent]         # optional; same keys as a category except start_level
    accept = "30m"

Precedence, weakest first: level defaults < category (every level) < category per-level <
urgency (every level) < urgency per-level. Urgency sits on top because it describes this one
complaint, whereas a category describes its kind.

Every combination of level, category and urgency must end up with remind_before shorter than
accept, and accept no longer than resolve; a violation is reported at the layer that
last set one of the clashing values. All problems raise ``PolicyError`` naming the file and the
TOML path, e.g. ``sla.toml: levels.village.accept: unknown unit in "2x" (use d, h, m or s)``.
Asking for a category or urgency the file does not name raises KeyError. Choosing the file
(e.g. from ``YIJIAN_SLA_POLICY``) is the caller's business: this module reads no environment.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn

from yijian.calendar import CalendarKind, format_duration, parse_duration
from yijian.level import Level

DEFAULT_OVERDUE_REPEAT = timedelta(days=1)
_TERM_KEYS = ("accept", "resolve", "remind_before", "calendar", "overdue_repeat")
_REQUIRED_TERM_KEYS = ("accept", "resolve", "remind_before", "calendar")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class PolicyError(ValueError):
    """The policy file is malformed; the message names the file and the TOML path."""


@dataclass(frozen=True)
class LevelTerms:
    accept: timedelta
    resolve: timedelta
    remind_before: timedelta
    calendar: CalendarKind
    overdue_repeat: timedelta


@dataclass(frozen=True)
class TermsOverride:
    """Some of a level's terms; None means "keep what the weaker layer said"."""

    accept: timedelta | None = None
    resolve: timedelta | None = None
    remind_before: timedelta | None = None
    calendar: CalendarKind | None = None
    overdue_repeat: timedelta | None = None

    def touched(self) -> set[str]:
        return {f.name for f in fields(self) if getattr(self, f.name) is not None}

    def apply(self, base: LevelTerms) -> LevelTerms:
        return replace(base, **{name: getattr(self, name) for name in self.touched()})


@dataclass(frozen=True)
class Override:
    """What a category or an urgency changes: first for every level, then per level."""

    every_level: TermsOverride = TermsOverride()
    per_level: Mapping[Level, TermsOverride] = field(default_factory=dict)


@dataclass(frozen=True)
class CategoryRule:
    start_level: Level
    override: Override


@dataclass(frozen=True)
class SlaPolicy:
    levels: Mapping[Level, LevelTerms]
    categories: Mapping[str, CategoryRule]
    urgencies: Mapping[str, Override]
    max_returns: int
    max_reopens: int
    source: str

    def terms(
        self, level: Level, category: str | None = None, urgency: str | None = None
    ) -> LevelTerms:
        """The effective terms at ``level``. Unknown category or urgency names raise KeyError,
        because the names come from this policy and a stranger means a wiring bug."""
        result = self.levels[level]
        for _, layer in self._layers(level, category, urgency):
            result = layer.apply(result)
        return result

    def start_level(self, category: str | None) -> Level:
        return Level.VILLAGE if category is None else self._category(category).start_level

    def categories_named(self) -> list[str]:
        return list(self.categories)

    def urgencies_named(self) -> list[str]:
        return list(self.urgencies)

    @classmethod
    def load(cls, path: Path) -> SlaPolicy:
        return cls.from_toml(path.read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def default(cls) -> SlaPolicy:
        resource = files("yijian") / "policies" / "default.toml"
        return cls.from_toml(resource.read_text(encoding="utf-8"), source=str(resource))

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>") -> SlaPolicy:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise PolicyError(f"{source}: not valid TOML: {error}") from None
        return _Reader(source).policy(document)

    def _category(self, name: str) -> CategoryRule:
        if name not in self.categories:
            raise KeyError(f"unknown category {name!r} in {self.source}")
        return self.categories[name]

    def _layers(
        self, level: Level, category: str | None, urgency: str | None
    ) -> list[tuple[tuple[str, ...], TermsOverride]]:
        """The override layers for one combination, weakest first, with their TOML paths."""
        sources: list[tuple[str, str, Override]] = []
        if category is not None:
            sources.append(("categories", category, self._category(category).override))
        if urgency is not None:
            if urgency not in self.urgencies:
                raise KeyError(f"unknown urgency {urgency!r} in {self.source}")
            sources.append(("urgencies", urgency, self.urgencies[urgency]))
        found: list[tuple[tuple[str, ...], TermsOverride]] = []
        for section, name, override in sources:
            found.append(((section, name), override.every_level))
            if level in override.per_level:
                found.append(((section, name, "levels", level.value), override.per_level[level]))
        return found


def _path(*keys: str) -> str:
    return ".".join(key if _BARE_KEY.fullmatch(key) else f'"{key}"' for key in keys)


class _Reader:
    """Turns a parsed TOML document into a policy, remembering the file name for errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, keys: tuple[str, ...], detail: str) -> NoReturn:
        raise PolicyError(f"{self.source}: {_path(*keys)}: {detail}")

    def table(
        self, value: object, keys: tuple[str, ...], allowed: Iterable[str] | None
    ) -> dict[str, object]:
        """``value`` as a table; ``allowed`` None means any key (names checked by the caller)."""
        if not isinstance(value, dict):
            self.fail(keys, f"expected a table, got {type(value).__name__}")
        if allowed is not None:
            expected = list(allowed)
            for key in value:
                if key not in expected:
                    self.fail((*keys, key), f"unknown key (expected one of: {', '.join(expected)})")
        return value

    def level(self, name: object, keys: tuple[str, ...]) -> Level:
        if name not in {level.value for level in Level}:
            self.fail(keys, f"unknown level {name!r} (expected village, township or county)")
        return Level(str(name))

    def duration(
        self, table: dict[str, object], keys: tuple[str, ...], key: str
    ) -> timedelta | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail((*keys, key), f'expected a duration string like "2h", got {value!r}')
        try:
            return parse_duration(value)
        except ValueError as error:
            self.fail((*keys, key), str(error))

    def count(self, table: dict[str, object], key: str) -> int:
        value = table.get(key)
        if value is None:
            self.fail(("rules", key), "missing")
        # bool is an int in Python, but "max_returns = true" is a mistake, not a 1.
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(("rules", key), f"expected a whole number >= 0, got {value!r}")
        return value

    def terms(self, table: dict[str, object], keys: tuple[str, ...]) -> TermsOverride:
        calendar = table.get("calendar")
        if calendar is not None and calendar not in {kind.value for kind in CalendarKind}:
            self.fail(
                (*keys, "calendar"), f"unknown calendar {calendar!r} (expected natural or workday)"
            )
        return TermsOverride(
            accept=self.duration(table, keys, "accept"),
            resolve=self.duration(table, keys, "resolve"),
            remind_before=self.duration(table, keys, "remind_before"),
            calendar=None if calendar is None else CalendarKind(str(calendar)),
            overdue_repeat=self.duration(table, keys, "overdue_repeat"),
        )

    def override(self, table: dict[str, object], keys: tuple[str, ...]) -> Override:
        per_level: dict[Level, TermsOverride] = {}
        for name, sub in self.table(table.get("levels", {}), (*keys, "levels"), None).items():
            sub_keys = (*keys, "levels", name)
            level = self.level(name, sub_keys)
            per_level[level] = self.terms(self.table(sub, sub_keys, _TERM_KEYS), sub_keys)
        return Override(self.terms(table, keys), MappingProxyType(per_level))

    def named(self, root: dict[str, object], section: str) -> dict[str, dict[str, object]]:
        extra = ("start_level",) if section == "categories" else ()
        tables: dict[str, dict[str, object]] = {}
        for name, value in self.table(root.get(section, {}), (section,), None).items():
            if not name.strip():
                self.fail((section, name), "name must not be blank")
            tables[name] = self.table(value, (section, name), (*_TERM_KEYS, *extra, "levels"))
        return tables

    def policy(self, document: dict[str, object]) -> SlaPolicy:
        root = self.table(document, (), ("rules", "levels", "categories", "urgencies"))
        for required in ("rules", "levels"):
            if required not in root:
                self.fail((required,), "missing table")
        rules = self.table(root["rules"], ("rules",), ("max_returns", "max_reopens"))
        level_tables = self.table(root["levels"], ("levels",), None)
        for name in level_tables:
            self.level(name, ("levels", name))
        # Required keys are checked below, so only overdue_repeat's default survives.
        blank = LevelTerms(
            timedelta(), timedelta(), timedelta(), CalendarKind.NATURAL, DEFAULT_OVERDUE_REPEAT
        )
        levels: dict[Level, LevelTerms] = {}
        for level in Level:
            keys = ("levels", level.value)
            if level.value not in level_tables:
                self.fail(keys, "missing table")
            table = self.table(level_tables[level.value], keys, _TERM_KEYS)
            missing = [key for key in _REQUIRED_TERM_KEYS if key not in table]
            if missing:
                self.fail((*keys, missing[0]), "missing")
            levels[level] = self.terms(table, keys).apply(blank)
        categories = {
            name: CategoryRule(
                self.level(
                    table.get("start_level", "village"), ("categories", name, "start_level")
                ),
                self.override(table, ("categories", name)),
            )
            for name, table in self.named(root, "categories").items()
        }
        urgencies = {
            name: self.override(table, ("urgencies", name))
            for name, table in self.named(root, "urgencies").items()
        }
        policy = SlaPolicy(
            levels=MappingProxyType(levels),
            categories=MappingProxyType(categories),
            urgencies=MappingProxyType(urgencies),
            max_returns=self.count(rules, "max_returns"),
            max_reopens=self.count(rules, "max_reopens"),
            source=self.source,
        )
        # Layers can combine into nonsense no single table shows (a category shortens accept
        # below the level's remind_before), so every combination is checked as it will be used.
        for category in [None, *policy.categories]:
            for urgency in [None, *policy.urgencies]:
                for level in Level:
                    self.check(policy, level, category, urgency)
        return policy

    def check(
        self, policy: SlaPolicy, level: Level, category: str | None, urgency: str | None
    ) -> None:
        terms = policy.terms(level, category, urgency)
        # remind_before < accept <= resolve also keeps reminders before the resolve deadline.
        if terms.remind_before >= terms.accept:
            short, long, relation = "remind_before", "accept", "shorter than"
        elif terms.accept > terms.resolve:
            short, long, relation = "accept", "resolve", "no longer than"
        else:
            return
        # Blame the strongest layer that set either value: that is the line to edit.
        keys: tuple[str, ...] = ("levels", level.value)
        for layer_keys, layer in policy._layers(level, category, urgency):
            if {short, long} & layer.touched():
                keys = layer_keys
        named = [
            f'{kind} "{name}"'
            for kind, name in [("category", category), ("urgency", urgency)]
            if name is not None
        ]
        context = f" with {' and '.join(named)}" if named else ""
        a, b = format_duration(getattr(terms, short)), format_duration(getattr(terms, long))
        self.fail(keys, f"{short} ({a}) must be {relation} {long} ({b}) at {level.value}{context}")
