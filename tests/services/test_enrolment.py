"""Officers enrol farmers and plots of their own อปท.: phone numbers normalised and unique, PINs hashed with
argon2, codes generated, GeoJSON boundaries measured in rai (flagged when far from the declared area, refused
only when not a polygon), and a resend enrols nothing twice. On SQLite and PostgreSQL, against real Anvil."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import func, select

from factories import ID_BASE, make_authority, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.catalog import FarmingStandard
from traceability.domain.states import Role
from traceability.errors import Conflict, Forbidden
from traceability.services.auth import Principal, sign_in_farmer
from traceability.services.demo import seed_demo
from traceability.services.enrolment import (
    EnrolmentInvalid,
    authority_farmers,
    enrol_authority_farmer,
    enrol_authority_plot,
    farmer_application,
    parse_boundary,
    plot_application,
)
from traceability.services.parties import enrol_farmer
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

LAT, LON = 15.1108, 103.6163  # บ้านหนองสนิท อ.จอมพระ จ.สุรินทร์
KEY_1 = "6f1c1a52-3f3b-4a57-9a52-0a4f3c1e8b01"
KEY_2 = "6f1c1a52-3f3b-4a57-9a52-0a4f3c1e8b02"


def square(rai: float, lat: float = LAT, lon: float = LON) -> dict[str, Any]:
    """A square GeoJSON Polygon of about ``rai`` (1 rai = 1,600 m²) centred on (lat, lon)."""
    half = math.sqrt(rai * 1600) / 2
    dlat = half / 110_574
    dlon = half / (111_320 * math.cos(math.radians(lat)))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture
def parties(db, registry):
    """Our authority with an officer and farmers F-0001/F-0002; another authority with farmer F-0100."""
    ours = seed_parties(db.sessions, registry, with_officer=True)
    theirs = make_authority(db.sessions, registry)
    with transaction(db.sessions) as s:
        enrol_farmer(
            s, code="F-0100", authority=theirs, display_name="นายอื่น ต่างถิ่น", phone="0899999999", pin="9999"
        )
    officer = ours["officer"]
    return {
        "officer": Principal(Role.OFFICER, "OFF", officer.authority_id, officer_id=officer.id),
        "other_officer": Principal(Role.OFFICER, "OFF-X", theirs.id, officer_id=officer.id),
        "authority_id": officer.authority_id,
    }


def farmer_form(**overrides: str) -> dict[str, str]:
    return {
        "display_name": "นางสาว  มาลี   ศรีสวัสดิ์",
        "phone": "+66 81-555-0101",
        "pin": "2468",
        "pin_again": "2468",
        "group_th": "วิสาหกิจชุมชนผักอินทรีย์",
        **overrides,
    }


def plot_form(**overrides: Any) -> dict[str, Any]:
    return {
        "key": KEY_1,
        "farmer_code": "F-0001",
        "name": "แปลงหลังบ้าน",
        "village_th": "บ้านหนองสนิท หมู่ 1",
        "village_en": "",
        "area_rai": Decimal("2.5"),
        "crop": "organic-veg",
        "standard": "pgs",
        "lat": str(LAT),
        "lon": str(LON),
        "boundary": "",
        **overrides,
    }


def count(db, model) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def enrol_f(db, principal, **overrides: str):
    with transaction(db.sessions) as s:
        return enrol_authority_farmer(s, principal, farmer_application(**farmer_form(**overrides)))


def enrol_p(db, principal, **overrides: Any):
    with transaction(db.sessions) as s:
        return enrol_authority_plot(s, principal, plot_application(**plot_form(**overrides)))


def test_an_enrolled_farmer_has_a_generated_code_a_hashed_pin_and_signs_in_with_the_number(db, parties):
    enrolled = enrol_f(db, parties["officer"])
    assert (enrolled.code, enrolled.display_name, enrolled.replayed) == ("F-0004", "นางสาว มาลี ศรีสวัสดิ์", False)
    with transaction(db.sessions) as s:
        row = Repository(s).farmer_by_code("F-0004")
        assert row is not None
        assert row.phone == "0815550101" and row.authority_id == parties["authority_id"]
        assert row.pin_hash is not None and row.pin_hash.startswith("$argon2") and "2468" not in row.pin_hash
        signed = sign_in_farmer(s, phone="081 555 0101", pin="2468", client="test")
    assert signed.token is not None and signed.token.principal.party == "F-0004"


def test_every_problem_of_the_farmer_form_is_named_at_once():
    with pytest.raises(EnrolmentInvalid) as refused:
        farmer_application(**farmer_form(display_name="  ", phone="12345", pin="12a4", group_th="ก" * 201))
    assert refused.value.problems == {
        "display_name": "missing",
        "phone": "phone_invalid",
        "pin": "pin_invalid",
        "group_th": "too_long",
    }
    for pin in ("123", "1234567"):
        with pytest.raises(EnrolmentInvalid) as refused:
            farmer_application(**farmer_form(pin=pin, pin_again=pin))
        assert refused.value.problems == {"pin": "pin_invalid"}
    with pytest.raises(EnrolmentInvalid) as refused:
        farmer_application(**farmer_form(pin_again="2469"))
    assert refused.value.problems == {"pin_again": "pin_mismatch"}


def test_a_resent_farmer_form_enrols_once_and_a_number_already_held_is_refused(db, parties):
    first = enrol_f(db, parties["officer"])
    again = enrol_f(db, parties["officer"], phone="0815550101")
    assert again.code == first.code and again.replayed
    assert count(db, models.Farmer) == 4  # F-0001, F-0002, F-0100 and this one
    for overrides in ({"display_name": "คนอื่น"}, {"pin": "1357", "pin_again": "1357"}):
        with pytest.raises(Conflict) as taken:
            enrol_f(db, parties["officer"], **overrides)
        assert taken.value.code == "phone_taken"
    with pytest.raises(Conflict):  # another authority's farmer's number
        enrol_f(db, parties["officer"], phone="0899999999")
    with pytest.raises(Conflict):  # the same form, but from the other authority
        enrol_f(db, parties["other_officer"])
    assert count(db, models.Farmer) == 4


def test_generated_codes_skip_codes_already_taken(db, parties, registry):
    with transaction(db.sessions) as s:
        authority = Repository(s).authority(parties["authority_id"])
        assert authority is not None
        enrol_farmer(s, code="F-0005", authority=authority, display_name="ก", phone="0811110000", pin="1111")
    assert enrol_f(db, parties["officer"]).code == "F-0006"  # the 5th row holds F-0005 already


def test_only_officers_enrol(db, parties):
    farmer = Principal(Role.FARMER, "F-0001", parties["authority_id"], farmer_id=1)
    with pytest.raises(Forbidden):
        enrol_f(db, farmer)
    with pytest.raises(Forbidden):
        enrol_p(db, farmer)
    assert count(db, models.Plot) == 2


def test_a_plot_boundary_is_measured_in_rai_and_kept_as_its_geometry(db, parties):
    feature = {"type": "Feature", "properties": {"name": "แปลง"}, "geometry": square(2.5)}
    enrolled = enrol_p(
        db, parties["officer"], boundary=json.dumps({"type": "FeatureCollection", "features": [feature]})
    )
    plot = enrolled.plot
    assert plot.code == "PLOT-00003" and plot.farmer_code == "F-0001" and not enrolled.replayed
    assert plot.boundary_area_rai is not None and abs(plot.boundary_area_rai - Decimal("2.5")) <= Decimal(
        "0.05"
    )
    assert (plot.flagged, plot.warnings) == (False, ())
    with transaction(db.sessions) as s:
        row = Repository(s).plot_by_code("PLOT-00003")
        assert row is not None
        assert row.boundary == square(2.5)  # the geometry alone, without the Feature around it
        assert (row.name, row.crop, row.standard, row.village_en) == (
            "แปลงหลังบ้าน",
            "organic-veg",
            FarmingStandard.PGS,
            "บ้านหนองสนิท หมู่ 1",
        )
        assert row.boundary_flagged is False and row.enrolment_key == KEY_1
        assert row.authority_id == parties["authority_id"]


def test_a_boundary_far_from_the_declared_area_is_kept_and_flagged(db, parties):
    enrolled = enrol_p(db, parties["officer"], boundary=json.dumps(square(10)))
    assert enrolled.plot.flagged and enrolled.plot.warnings == ("boundary_far",)
    assert enrolled.plot.boundary_area_rai is not None and enrolled.plot.boundary_area_rai > Decimal("9.5")
    with transaction(db.sessions) as s:
        row = Repository(s).plot_by_code(enrolled.plot.code)
        assert row is not None and row.boundary_flagged is True
    listed = {p.code: p for f in farmers_of(db, parties) for p in f.plots}
    assert listed[enrolled.plot.code].warnings == ("boundary_far",)


def farmers_of(db, parties):
    with transaction(db.sessions) as s:
        return authority_farmers(s, parties["officer"]).farmers


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"type": "Point", "coordinates": [103.6, 15.1]}',
        '{"type": "Polygon", "coordinates": [[[103.6, 15.1], [103.7, 15.1], [103.7, 15.2]]]}',  # open ring
        '{"type": "Polygon", "coordinates": [[[103.6, 15.1], [203.7, 15.1], [103.7, 15.2], [103.6, 15.1]]]}',
        '{"type": "FeatureCollection", "features": []}',
        '{"type": "Feature", "geometry": null}',
        "[" * 100_000,  # parsed as is, this would overflow the JSON decoder's stack
        '{"note": "' + "]" * 50 + '", "coordinates": ' + "[" * 100_000,  # brackets in strings do not count
        "[]",
    ],
)
def test_a_boundary_that_is_not_a_polygon_is_refused(text):
    with pytest.raises(ValueError):
        parse_boundary(text)
    with pytest.raises(EnrolmentInvalid) as refused:
        plot_application(**plot_form(boundary=text))
    assert refused.value.problems == {"boundary": "boundary_invalid"} and refused.value.details["boundary"]


def test_every_problem_of_the_plot_form_is_named_at_once():
    with pytest.raises(EnrolmentInvalid) as refused:
        plot_application(
            **plot_form(
                farmer_code="",
                name="",
                village_th=" ",
                area_rai=None,
                crop="durian-x",
                standard="organic",
                lat="95",
                lon="abc",
            )
        )
    assert refused.value.problems == {
        "farmer": "farmer_missing",
        "name": "missing",
        "village_th": "missing",
        "area": "area_invalid",
        "crop": "crop_invalid",
        "standard": "standard_invalid",
        "lat": "lat_invalid",
        "lon": "lon_invalid",
    }
    with pytest.raises(EnrolmentInvalid) as refused:
        plot_application(**plot_form(lat="", lon=""))
    assert refused.value.problems == {"lat": "point_missing"}
    with pytest.raises(EnrolmentInvalid) as refused:
        plot_application(**plot_form(boundary=" " * 200_001))
    assert refused.value.problems == {"boundary": "boundary_too_large"}


def test_the_location_point_a_pasted_pair_or_the_boundary_centre_and_its_warnings(db, parties):
    pasted = plot_application(**plot_form(lat="15.1108, 103.6163", lon=""))
    assert (pasted.lat, pasted.lon) == (Decimal("15.110800"), Decimal("103.616300"))
    centred = plot_application(**plot_form(lat="", lon="", boundary=json.dumps(square(2.5, 15.2, 103.7))))
    assert (centred.lat, centred.lon) == (Decimal("15.200000"), Decimal("103.700000"))

    abroad = enrol_p(db, parties["officer"], lat="48.8566", lon="2.3522", name="ปารีส")
    assert abroad.plot.warnings == ("outside_thailand",)
    off = enrol_p(
        db, parties["officer"], key=KEY_2, name="ห่างจุด", lat="15.2", boundary=json.dumps(square(2.5))
    )
    assert off.plot.warnings == ("point_off_boundary",)


def test_a_resent_plot_form_enrols_once_and_its_token_cannot_be_reused(db, parties):
    boundary = json.dumps(square(2.5))
    first = enrol_p(db, parties["officer"], boundary=boundary)
    again = enrol_p(db, parties["officer"], boundary=boundary)
    assert again.replayed and again.plot.code == first.plot.code
    assert count(db, models.Plot) == 3
    with pytest.raises(Conflict) as reused:
        enrol_p(db, parties["officer"], boundary=boundary, area_rai=Decimal(3))
    assert reused.value.code == "form_reused"
    with pytest.raises(Conflict) as taken:  # a new form, but the farmer has a plot of that name
        enrol_p(db, parties["officer"], key=KEY_2)
    assert taken.value.code == "plot_name_taken"
    enrol_p(db, parties["officer"], key=KEY_2, farmer_code="F-0002")  # another farmer may use the name
    assert count(db, models.Plot) == 4


def test_a_plot_only_for_a_farmer_of_the_officers_own_authority(db, parties):
    for code in ("F-0100", "F-9999"):
        with pytest.raises(Forbidden) as refused:
            enrol_p(db, parties["officer"], farmer_code=code)
        assert refused.value.code == "not_your_farmer"
    assert count(db, models.Plot) == 2
    names = [f.code for f in farmers_of(db, parties)]
    assert sorted(names) == ["F-0001", "F-0002"]  # not the other authority's F-0100
    phones = {f.code: f.phone for f in farmers_of(db, parties)}
    assert phones["F-0001"] == "081-xxx-1111"


def test_the_demo_plots_have_names_crops_standards_and_boundaries(db, w3):
    """The demo shows the officer's pages with real data: one boundary far from its declared area."""
    fresh = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))  # the demo's authorities are new on it
    seed_demo(db.sessions, fresh, id_base=ID_BASE)
    with transaction(db.sessions) as s:
        officer = Repository(s).officer_by_username("officer.nongsanit")
        assert officer is not None
        principal = Principal(Role.OFFICER, "OFF", officer.authority_id, officer_id=officer.id)
        plots = {p.code: p for f in authority_farmers(s, principal).farmers for p in f.plots}
    assert set(plots) == {"PLOT-NSN-01", "PLOT-NSN-02", "PLOT-NSN-03", "PLOT-NSN-05"}  # not Chiang Khruea's
    veg = plots["PLOT-NSN-01"]
    assert (veg.name, veg.crop, veg.standard, veg.warnings) == ("แปลงผักริมหนองน้ำ", "organic-veg", "pgs", ())
    assert veg.boundary_area_rai is not None and abs(veg.boundary_area_rai - veg.area_rai) < Decimal("0.25")
    assert plots["PLOT-NSN-03"].warnings == ("boundary_far",)
