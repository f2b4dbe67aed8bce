"""Staff tokens: signed with the current key, named by ``kid``, older keys still accepted
until their tokens expire; the algorithm is pinned and expiry follows the system clock."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from fastapi import HTTPException

from yijian.auth import ALGORITHM, StaffTokens, key_id
from yijian.clock import FakeClock

OLD = "the-key-of-last-year-long-enough-for-hs256"
NEW = "the-key-of-this-year-long-enough-for-hs256"
TTL = timedelta(hours=12)


def refused(tokens: StaffTokens, token: str) -> str:
    with pytest.raises(HTTPException) as error:
        tokens.verify(token)
    assert error.value.status_code == 401
    return str(error.value.detail)


def test_a_token_names_the_key_that_signed_it() -> None:
    tokens = StaffTokens(NEW, FakeClock(), TTL)
    token = tokens.issue("zhang", "620922100")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": ALGORITHM, "kid": key_id(NEW), "typ": "JWT"}
    assert NEW not in str(header)
    assert key_id(NEW) != key_id(OLD)
    assert tokens.verify(token).user == "zhang"


def test_after_rotation_old_tokens_work_until_the_old_key_is_dropped() -> None:
    clock = FakeClock()
    before = StaffTokens(OLD, clock, TTL).issue("zhang", "620922100")
    rotated = StaffTokens(NEW, clock, TTL, previous=[OLD])
    assert rotated.verify(before).user == "zhang"
    fresh = rotated.issue("li", "620922")
    assert jwt.get_unverified_header(fresh)["kid"] == key_id(NEW)
    # A server that has not rotated yet does not know the new key.
    assert "no key this server accepts" in refused(StaffTokens(OLD, clock, TTL), fresh)
    dropped = StaffTokens(NEW, clock, TTL)
    assert "no key this server accepts" in refused(dropped, before)
    assert dropped.verify(fresh).user == "li"


def test_an_old_key_does_not_extend_a_token_beyond_its_expiry() -> None:
    clock = FakeClock()
    before = StaffTokens(OLD, clock, TTL).issue("zhang", "620922100")
    rotated = StaffTokens(NEW, clock, TTL, previous=[OLD])
    clock.advance(TTL - timedelta(seconds=1))
    assert rotated.verify(before).user == "zhang"
    clock.advance(timedelta(seconds=1))
    assert "expired" in refused(rotated, before)


def test_a_kid_cannot_steer_the_check_to_another_algorithm_or_key() -> None:
    tokens = StaffTokens(NEW, FakeClock(), TTL, previous=[OLD])
    claims = {"sub": "x", "org": "620922", "exp": 4_102_444_800}
    # Signed with the old key but claiming the new key's id: the signature decides.
    lying = jwt.encode(claims, OLD, algorithm="HS256", headers={"kid": key_id(NEW)})
    assert "Signature verification failed" in refused(tokens, lying)
    other_algorithm = jwt.encode(claims, NEW * 2, algorithm="HS512", headers={"kid": key_id(NEW)})
    assert "alg value is not allowed" in refused(tokens, other_algorithm)
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": key_id(NEW)})
    refused(tokens, unsigned)
    assert "no key" in refused(tokens, jwt.encode(claims, NEW, algorithm="HS256"))
