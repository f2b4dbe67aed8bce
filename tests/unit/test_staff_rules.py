"""The workbench's pure rules: deadline colours, contact masking, which buttons to offer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from services.routing.access import available_actions, dispatch_targets
from services.routing.domain import Case
from services.routing.inbox import Colour, colour_of, stage_in_force
from services.routing.intake_client import Contact, Submission, SubmittedLocation
from services.routing.privacy import (
    mask_name,
    mask_phone,
    may_reveal_contact,
    privacy_notice,
    revealed,
    screened,
    withheld_from,
)
from services.routing.users import DECOY_HASH, AccountError, check_password_rules
from tests.unit.cases import new_case
from yijian.contracts.events import CaseStatus, Org, Stage
from yijian.jurisdiction import Jurisdiction
from yijian.level import Level

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
DUE = START + timedelta(hours=2)


@pytest.mark.parametrize(
    ("now", "colour"),
    [
        (START, Colour.GREEN),
        (START + timedelta(minutes=59), Colour.GREEN),
        (START + timedelta(minutes=60), Colour.AMBER),  # exactly half left is no longer green
        (DUE - timedelta(seconds=1), Colour.AMBER),
        (DUE, Colour.RED),
        (DUE + timedelta(days=3), Colour.RED),
    ],
)
def test_green_while_more_than_half_is_left_then_amber_then_red(
    now: datetime, colour: Colour
) -> None:
    assert colour_of(now, START, DUE) == colour


def test_without_a_known_start_a_live_deadline_is_amber_and_a_passed_one_red() -> None:
    assert colour_of(START, None, DUE) == Colour.AMBER
    assert colour_of(DUE, None, DUE) == Colour.RED


def test_the_deadline_in_force_follows_the_status() -> None:
    assert stage_in_force(CaseStatus.ASSIGNED) == Stage.ACCEPT
    assert stage_in_force(CaseStatus.ESCALATED) == Stage.ACCEPT
    assert stage_in_force(CaseStatus.ACCEPTED) == Stage.RESOLVE
    assert stage_in_force(CaseStatus.REPLIED) == Stage.RESOLVE
    assert stage_in_force(CaseStatus.RESOLVED) is None
    assert stage_in_force(CaseStatus.CLOSED) is None


def test_phones_and_names_are_masked() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0937-1234") == "093**1234"
    assert mask_phone("12345") == "*****"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("王") == "*"


def test_only_supervisors_and_admins_may_reveal() -> None:
    assert may_reveal_contact("supervisor")
    assert may_reveal_contact("admin")
    assert not may_reveal_contact("staff")
    assert not may_reveal_contact("citizen")


def _submission(conceal: bool | None) -> Submission:
    return Submission(
        id="c1",
        tracking_no="GZ260302-AAAAAA",
        description="路灯坏了",
        location=SubmittedLocation(lat=40.512345, lon=95.781234, address="幸福路12号3单元"),
        contact=Contact(name="张三", phone="13812345678"),
        conceal_from_village=conceal,
    )


def test_a_screened_submission_hides_the_contact_and_the_exact_place() -> None:
    submission = _submission(conceal=False)
    shown = screened(submission, Level.VILLAGE)
    assert shown["contact"] == {"name": "张*", "phone": "138****5678"}
    assert shown["contact_withheld"] is False
    assert shown["location"]["address"] is None
    assert shown["address_hidden"] is True
    assert (shown["location"]["lat"], shown["location"]["lon"]) == (40.512, 95.781)
    assert "13812345678" not in str(shown)
    assert "幸福路" not in str(shown)
    full = revealed(submission)
    assert (full["phone"], full["address"], full["lat"]) == (
        "13812345678",
        "幸福路12号3单元",
        40.512345,
    )


@pytest.mark.parametrize("conceal", [True, None])  # None: an intake that did not say
def test_a_village_gets_nothing_of_a_citizen_who_asked_it_be_kept_out(
    conceal: bool | None,
) -> None:
    submission = _submission(conceal)
    shown = screened(submission, Level.VILLAGE)
    assert withheld_from(submission, Level.VILLAGE)
    assert shown["contact"] is None
    assert shown["contact_withheld"] is True
    assert shown["address_hidden"] is False  # not even that there is an address
    for trace in ("张", "138", "5678", "幸福路"):
        assert trace not in str(shown), trace
    assert shown["location"]["lat"] == 40.512  # the place stays: the work needs it


def test_the_township_and_county_still_see_the_masked_contact_and_the_notice() -> None:
    submission = _submission(conceal=True)
    for level in (Level.TOWNSHIP, Level.COUNTY):
        assert not withheld_from(submission, level)
        assert screened(submission, level)["contact"] == {"name": "张*", "phone": "138****5678"}
        notice = privacy_notice(submission, level)
        assert notice is not None
        assert "请勿" in notice
    village_notice = privacy_notice(submission, Level.VILLAGE)
    assert village_notice is not None
    assert "乡镇" in village_notice
    assert privacy_notice(_submission(conceal=False), Level.VILLAGE) is None


def test_passwords_need_ten_characters() -> None:
    with pytest.raises(AccountError):
        check_password_rules("short")
    check_password_rules("long enough")


def test_an_unknown_user_costs_one_verification_at_todays_parameters() -> None:
    """The decoy checked for an unknown username is written out; should the hasher's
    parameters rise, it would verify faster than real hashes and tell names apart."""
    hasher = PasswordHasher()
    assert not hasher.check_needs_rehash(DECOY_HASH)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(DECOY_HASH, "no user has this password")


@pytest.fixture(scope="module")
def guazhou() -> Jurisdiction:
    return Jurisdiction.load()


def _org(jurisdiction: Jurisdiction, code: str, level: Level) -> Org:
    org = jurisdiction.get(code)
    assert org is not None
    return Org(code=org.code, name=org.name, level=level)


def _case(assignee: Org, **changes: object) -> Case:
    return new_case(assignee, **changes)


def test_the_buttons_offered_follow_the_state_and_the_access_rules(
    guazhou: Jurisdiction,
) -> None:
    township_code = guazhou.townships()[0].code
    village = _org(guazhou, guazhou.villages(township_code)[0].code, Level.VILLAGE)
    neighbour = _org(guazhou, guazhou.villages(township_code)[1].code, Level.VILLAGE)
    township = _org(guazhou, township_code, Level.TOWNSHIP)

    assert available_actions(guazhou, village, _case(village)) == ["accept", "return"]
    assert available_actions(guazhou, neighbour, _case(village)) == []
    # The township may accept and send it to another village, but only the village returns it.
    assert available_actions(guazhou, township, _case(village)) == ["accept", "dispatch"]
    accepted = _case(village, status=CaseStatus.ACCEPTED)
    assert available_actions(guazhou, village, accepted) == ["reply", "resolve"]
    resolved = _case(village, status=CaseStatus.RESOLVED)
    assert available_actions(guazhou, village, resolved) == ["visit"]
    assert available_actions(guazhou, village, replace(resolved, visited=True)) == ["close"]
    assert available_actions(guazhou, village, _case(village, status=CaseStatus.CLOSED)) == []


def test_dispatch_targets_lie_below_the_actor_and_not_above_the_case(
    guazhou: Jurisdiction,
) -> None:
    township_code = guazhou.townships()[0].code
    village = _org(guazhou, guazhou.villages(township_code)[0].code, Level.VILLAGE)
    township = _org(guazhou, township_code, Level.TOWNSHIP)
    county = _org(guazhou, guazhou.county.code, Level.COUNTY)

    targets = dispatch_targets(guazhou, township, _case(village))
    assert {t.code for t in targets} == {
        v.code for v in guazhou.villages(township_code) if v.code != village.code
    }
    # A village-level case may go to another village, not up to a township.
    county_targets = dispatch_targets(guazhou, county, _case(village))
    assert all(t.level == Level.VILLAGE for t in county_targets)
    county_case = _case(county, level=Level.COUNTY)
    assert len(dispatch_targets(guazhou, county, county_case)) == len(guazhou.townships()) + len(
        guazhou.villages()
    )
