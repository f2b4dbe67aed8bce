"""Tracking numbers: the county, the Beijing date, six characters a citizen can read aloud."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

import pytest

from services.intake.domain import new_tracking_no

# 17:00 UTC on 2 March is already 3 March in Beijing.
EVENING_UTC = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


def test_the_date_is_beijings_and_the_characters_readable() -> None:
    number = new_tracking_no(EVENING_UTC)
    assert re.fullmatch(r"GZ260303-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{6}", number)


@pytest.mark.parametrize(
    ("bits", "suffix"),
    [(0, "000000"), (2**30 - 1, "ZZZZZZ"), (1 | 31 << 25, "10000Z"), (0b01010 << 5, "0A0000")],
)
def test_each_character_takes_five_bits_of_one_draw(
    monkeypatch: pytest.MonkeyPatch, bits: int, suffix: str
) -> None:
    drawn: list[int] = []

    def randbits(k: int) -> int:
        drawn.append(k)
        return bits

    monkeypatch.setattr(secrets, "randbits", randbits)
    assert new_tracking_no(EVENING_UTC) == f"GZ260303-{suffix}"
    assert drawn == [30]
