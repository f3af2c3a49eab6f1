"""The units farmers type (kg/ตัน, ไร่/งาน/ตารางวา) and the form's time and token fields."""

from __future__ import annotations

from decimal import Decimal

import pytest

from traceability.errors import InvalidInput
from traceability.web.forms import area_rai, form_token, local_time, mass, new_form_token


def test_masses_keep_their_unit_and_tolerate_what_people_type():
    assert mass("1,200.5", "kg") == {"value": "1200.5", "uom": "KGM"}
    assert mass(" 2 ", "t") == {"value": "2", "uom": "TNE"}


def test_areas_add_rai_ngan_and_square_wa():
    assert area_rai("3", "2", "100") == Decimal("3.750")
    assert area_rai("", "1", "") == Decimal("0.250")


@pytest.mark.parametrize("typed", ["", "abc", "-1", "NaN", "Infinity", "1e30", "1" * 17])
def test_what_is_not_a_sane_number_is_a_clear_refusal(typed):
    with pytest.raises(InvalidInput) as refused:
        area_rai(typed)
    assert refused.value.code == "invalid_number"
    with pytest.raises(InvalidInput):
        mass(typed, "kg")


def test_an_unknown_unit_or_an_area_of_nothing_is_refused():
    with pytest.raises(InvalidInput, match="unknown unit"):
        mass("5", "lb")
    with pytest.raises(InvalidInput, match="more than 0"):
        area_rai("0", "0", "0")


def test_times_are_read_in_the_services_zone_and_tokens_must_be_uuids():
    assert local_time("2026-11-22T10:30", "Asia/Bangkok").isoformat() == "2026-11-22T10:30:00+07:00"
    with pytest.raises(InvalidInput):
        local_time("22/11/2569", "Asia/Bangkok")
    token = new_form_token()
    assert form_token(token.upper()) == token
    with pytest.raises(InvalidInput):
        form_token("not-a-uuid")
