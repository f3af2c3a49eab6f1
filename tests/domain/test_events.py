"""Event models: what they accept (Thai text, exact decimals, pseudonymous codes) and what they refuse.

The hypothesis strategies for valid events of every kind live here; test_epcis.py and
test_hash_differential.py import them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from traceability.domain.events import (
    EVENT_ADAPTER,
    EVENT_KINDS,
    GS1_TERMS_USED,
    LOT_CODE_RE,
    PARTY_RE,
    PLACE_RE,
    BizDocument,
    Certification,
    Cooling,
    CoolingMethod,
    Event,
    Grading,
    Harvest,
    LotQuantity,
    MassUnit,
    NoteText,
    Packing,
    Place,
    Planting,
    Quantity,
    Revocation,
    TemperatureReading,
    Transport,
    gtin14,
    lot_inputs,
    lot_outputs,
    lots_touched,
)

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BANGKOK = timezone(timedelta(hours=7))
NOW = datetime.now(UTC)

# --- strategies: valid values and events -----------------------------------------------------------------

THAI_WORDS = [
    "ผักอินทรีย์", "บ้านหนองสนิท", "ข้าวหอมมะลิ", "แตงโม", "เกรด", "คัดใบเหลือง", "ปุ๋ยหมัก", "จ.สุรินทร์",
    "อบต.", "ความชื้นไม่เกิน", "๑๕%", "กก.", "ตอร์ปิโด", "ส่งออก", "รถห้องเย็น", "สกลนคร", "น้ำหนัก", "ผล",
]  # fmt: skip
_TEXT_ALPHABET = st.one_of(
    st.characters(min_codepoint=0x0E01, max_codepoint=0x0E5B),  # Thai block (unassigned points included)
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(" –—“”…"),
)
_NOTE = TypeAdapter(NoteText)


def _acceptable(text: str) -> bool:
    try:
        _NOTE.validate_python(text)
    except ValidationError:
        return False
    return True


def texts(max_size: int) -> st.SearchStrategy[str]:
    words = st.lists(
        st.sampled_from(THAI_WORDS) | st.text(_TEXT_ALPHABET, min_size=1, max_size=12), min_size=1
    )
    return (
        words.map(" ".join).map(lambda s: s[:max_size]).filter(lambda s: s.strip() != "" and _acceptable(s))
    )


lot_codes = st.from_regex(LOT_CODE_RE, fullmatch=True)
party_codes = st.from_regex(PARTY_RE, fullmatch=True)
place_codes = st.from_regex(PLACE_RE, fullmatch=True).filter(lambda c: not (len(c) == 13 and c.isdigit()))


def hex_of(size: int, prefix: str = "0x") -> st.SearchStrategy[str]:
    return st.binary(min_size=size, max_size=size).map(lambda b: prefix + b.hex())


hashes = hex_of(32)
sha256s = hex_of(32, prefix="")
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2025, 1, 1), timezones=offsets | st.just(BANGKOK)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places)


_UNIT_MAX = {MassUnit.KGM: "10000000", MassUnit.GRM: "9999999999", MassUnit.TNE: "10000"}


def quantities(minimum: str = "0.001") -> st.SearchStrategy[Quantity]:
    return st.sampled_from(list(MassUnit)).flatmap(
        lambda u: decimals(minimum, _UNIT_MAX[u], 3).map(lambda v: Quantity(value=v, uom=u))
    )


def lot_quantities(codes: list[str]) -> list[LotQuantity]:
    return [LotQuantity(lot_code=c, quantity=Quantity(value="1.5")) for c in codes]


def _with_check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str(-total % 10)


gtins = st.integers(min_value=0, max_value=10**13 - 1).map(lambda n: gtin14(_with_check_digit(f"{n:013d}")))
glns = st.integers(min_value=0, max_value=10**12 - 1).map(lambda n: _with_check_digit(f"{n:012d}"))
# A place is named by a code under the identifier base, or by its GLN (a GS1 Digital Link /414/ URI).
place_ids = st.one_of(place_codes, place_codes, glns)
coordinates = st.tuples(decimals("-90", "90", 7), decimals("-180", "180", 7))
places = st.builds(Place, id=place_ids) | st.builds(
    lambda code, latlon: Place(id=code, lat=latlon[0], lon=latlon[1]), place_ids, coordinates
)
crops = st.sampled_from(["hom-mali-105", "organic-veg", "watermelon", "rice", "chili-2568"])
readings = st.builds(TemperatureReading, time=moments, celsius=decimals("-40", "80", 2))
documents = st.builds(
    BizDocument,
    type=st.sampled_from(["bol", "desadv", "recadv", "po", "inv", "cert", "testres"]),
    number=st.from_regex(r"[A-Z0-9][A-Z0-9.-]{0,39}", fullmatch=True),
)


def lot_lists(min_size: int, max_size: int) -> st.SearchStrategy[list[LotQuantity]]:
    return st.lists(
        st.builds(LotQuantity, lot_code=lot_codes, quantity=quantities()),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda lq: lq.lot_code,
    )


@st.composite
def commons(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event_id": draw(st.uuids()),
        "event_time": draw(moments),
        "actor": draw(party_codes),
        "place": draw(places),
        "evidence": tuple(draw(st.lists(sha256s, max_size=3, unique=True))),
        "prev": tuple(draw(st.lists(hashes, max_size=6, unique=True))),
        "note": draw(st.none() | texts(500)),
    }


@st.composite
def plantings(draw: st.DrawFn) -> Planting:
    return Planting(
        kind="planting",
        lot_code=draw(lot_codes),
        plot_id=draw(place_ids),
        crop=draw(crops),
        variety=draw(st.none() | texts(100)),
        area_rai=draw(decimals("0.0001", "1000", 4)),
        authority=draw(st.none() | party_codes),
        **draw(commons()),
    )


@st.composite
def harvests(draw: st.DrawFn) -> Harvest:
    return Harvest(
        kind="harvest",
        lot_code=draw(lot_codes),
        plot_id=draw(place_ids),
        crop=draw(crops),
        variety=draw(st.none() | texts(100)),
        quantity=draw(quantities()),
        **draw(commons()),
    )


@st.composite
def coolings(draw: st.DrawFn) -> Cooling:
    return Cooling(
        kind="cooling",
        lot_code=draw(lot_codes),
        quantity=draw(quantities()),
        method=draw(st.sampled_from(list(CoolingMethod))),
        temperatures=draw(st.lists(readings, max_size=10)),
        **draw(commons()),
    )


@st.composite
def gradings(draw: st.DrawFn) -> Grading:
    return Grading(
        kind="grading",
        lot_code=draw(lot_codes),
        grade=draw(texts(40)),
        quantity=draw(quantities()),
        disposition=draw(st.sampled_from(["conformant", "non_conformant"])),
        **draw(commons()),
    )


@st.composite
def packings(draw: st.DrawFn) -> Packing:
    inputs = draw(lot_lists(1, 5))
    taken = {i.lot_code for i in inputs}
    outputs = [o for o in draw(lot_lists(1, 30)) if o.lot_code not in taken]
    if not outputs:  # every drawn output was also an input
        code = next(c for c in (f"OUT-{i:04d}" for i in range(len(taken) + 1)) if c not in taken)
        outputs = [LotQuantity(lot_code=code, quantity=Quantity(value=1))]
    return Packing(
        kind="packing", inputs=inputs, outputs=outputs, gtin=draw(st.none() | gtins), **draw(commons())
    )


@st.composite
def transports(draw: st.DrawFn) -> Transport:
    source = draw(place_ids)
    owners = draw(st.none() | st.lists(party_codes, min_size=2, max_size=2, unique=True))
    return Transport(
        kind="transport",
        leg=draw(st.sampled_from(["ship", "receive"])),
        items=draw(lot_lists(1, 12)),
        source=source,
        destination=draw(place_ids.filter(lambda d: d != source)),
        vehicle=draw(st.none() | texts(40)),
        temperatures=draw(st.lists(readings, max_size=20)),
        documents=draw(st.lists(documents, max_size=4, unique=True)),
        owner_from=owners[0] if owners else None,
        owner_to=owners[1] if owners else None,
        **draw(commons()),
    )


@st.composite
def certifications(draw: st.DrawFn) -> Certification:
    return Certification(
        kind="certification",
        lot_code=draw(lot_codes),
        authority=draw(party_codes),
        officer=draw(hex_of(20)),
        standard=draw(texts(80)),
        certificate_hash=draw(hashes),
        expires=draw(st.integers(0, 2**53 - 1)),
        nonce=draw(st.integers(0, 2**53 - 1)),
        deadline=draw(st.integers(0, 2**53 - 1)),
        signature=draw(hex_of(65)),
        cert_id=draw(hashes),
        **draw(commons()),
    )


@st.composite
def revocations(draw: st.DrawFn) -> Revocation:
    return Revocation(
        kind="revocation",
        lot_code=draw(lot_codes),
        cert_id=draw(hashes),
        reason=draw(texts(300)),
        **draw(commons()),
    )


EVENTS_BY_KIND: dict[str, st.SearchStrategy[Any]] = {
    "planting": plantings(),
    "harvest": harvests(),
    "cooling": coolings(),
    "grading": gradings(),
    "packing": packings(),
    "transport": transports(),
    "certification": certifications(),
    "revocation": revocations(),
}
any_event: st.SearchStrategy[Event] = st.one_of(*EVENTS_BY_KIND.values())


# --- fixed examples -----------------------------------------------------------------------------------------


def base(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": uuid.UUID("6f1c2b1e-8f0a-4c4e-9d59-2a7c1e0b5d11"),
        "event_time": datetime(2025, 9, 26, 8, 30, tzinfo=BANGKOK),
        "actor": "F-0001",
        "place": Place(id="PLOT-NSN-01", lat=Decimal("15.1108"), lon=Decimal("103.6163")),
    }
    values.update(overrides)
    return values


def harvest(**overrides: Any) -> Harvest:
    fields = {
        "kind": "harvest",
        "lot_code": "NSN-VEG-2609-01",
        "plot_id": "PLOT-NSN-01",
        "crop": "organic-veg",
        "variety": "ผักคะน้า",
        **base(),
    }
    fields["quantity"] = Quantity(value="1250.5")
    fields.update(overrides)
    return Harvest(**fields)


def packing(**overrides: Any) -> Packing:
    fields: dict[str, Any] = {
        "kind": "packing",
        "inputs": lot_quantities(["NSN-VEG-01"]),
        "outputs": lot_quantities(["NSN-VEG-01A", "NSN-VEG-01B"]),
        **base(),
    }
    fields.update(overrides)
    return Packing(**fields)


def transport(**overrides: Any) -> Transport:
    fields: dict[str, Any] = {
        "kind": "transport",
        "leg": "ship",
        "items": lot_quantities(["NSN-VEG-01A"]),
        "source": "PH-NSN",
        "destination": "PORT-LCB",
        **base(),
    }
    fields.update(overrides)
    return Transport(**fields)


def certification(**overrides: Any) -> Certification:
    fields: dict[str, Any] = {
        "kind": "certification",
        "lot_code": "NSN-VEG-01",
        "authority": "LAO-NONGSANIT",
        "officer": "0x" + "a1" * 20,
        "standard": "เกษตรอินทรีย์ อปท. (Organic Thailand PGS)",
        "certificate_hash": "0x" + "11" * 32,
        "expires": 0,
        "nonce": 0,
        "deadline": 1_900_000_000,
        "signature": "0x" + "22" * 65,
        "cert_id": "0x" + "33" * 32,
        **base(),
    }
    fields.update(overrides)
    return Certification(**fields)


# --- quantities ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        ("12.5", Decimal("12.5")),
        ("12.500", Decimal("12.5")),
        (12, Decimal(12)),
        (Decimal("0.001"), Decimal("0.001")),
        ("1E+3", Decimal(1000)),
        (" 7 ", Decimal(7)),
        ("๑๒", Decimal(12)),
        ("0.000", Decimal(0)),
    ],
)
def test_quantities_are_exact_decimals_in_their_shortest_form(given_value: Any, expected: Decimal) -> None:
    q = Quantity(value=given_value)
    assert q.value == expected
    assert str(q.value) == str(expected)
    assert "E" not in str(q.value)


@pytest.mark.parametrize(
    "bad", [12.5, 1.0, True, "NaN", "Infinity", "twelve", "1.0001", "-1", "1e20", "9" * 41]
)
def test_floats_and_other_inexact_or_unbounded_quantities_are_refused(bad: Any) -> None:
    with pytest.raises(ValidationError):
        Quantity(value=bad)


@pytest.mark.parametrize(
    ("value", "uom", "ok"),
    [
        ("10000000", MassUnit.KGM, True),
        ("10000000.001", MassUnit.KGM, False),
        ("10000", MassUnit.TNE, True),
        ("10000.001", MassUnit.TNE, False),
        ("10000000000", MassUnit.GRM, True),
        ("10000000000.001", MassUnit.GRM, False),
    ],
)
def test_quantities_are_bounded_at_ten_thousand_tonnes_in_any_unit(
    value: str, uom: MassUnit, ok: bool
) -> None:
    if ok:
        assert Quantity(value=value, uom=uom).kg() <= Decimal(10_000_000)
    else:
        with pytest.raises(ValidationError):
            Quantity(value=value, uom=uom)


def test_kg_converts_exactly() -> None:
    assert Quantity(value="1500", uom="GRM").kg() == Decimal("1.5")
    assert Quantity(value="2.125", uom="TNE").kg() == Decimal(2125)
    assert MassUnit.KGM.to_kg(Decimal("0.1")) == Decimal("0.1")


def test_lots_move_positive_quantities_only() -> None:
    with pytest.raises(ValidationError, match="more than zero"):
        LotQuantity(lot_code="NSN-VEG-01", quantity=Quantity(value=0))
    with pytest.raises(ValidationError):
        harvest(quantity=Quantity(value=0))


def test_a_grading_is_one_quantity_with_one_disposition() -> None:
    fields = {"kind": "grading", "lot_code": "NSN-VEG-01", "grade": "เกรด A", **base()}
    assert Grading(**fields, quantity=Quantity(value=10), disposition="conformant").quantity.value == 10
    assert Grading(**fields, quantity=Quantity(value=2), disposition="non_conformant").disposition == (
        "non_conformant"
    )
    with pytest.raises(ValidationError, match="more than zero"):
        Grading(**fields, quantity=Quantity(value=0), disposition="conformant")
    with pytest.raises(ValidationError):
        Grading(**fields, quantity=Quantity(value=1), disposition="rejected")


def test_cooling_names_its_method_from_a_closed_list() -> None:
    fields = {"kind": "cooling", "lot_code": "SKN-WM-01", "quantity": Quantity(value=500), **base()}
    assert Cooling(**fields, method="forced_air").method is CoolingMethod.FORCED_AIR
    with pytest.raises(ValidationError):
        Cooling(**fields, method="fan")


def test_places_may_be_glns_with_valid_check_digits() -> None:
    assert Place(id="8850000000010").id == "8850000000010"
    with pytest.raises(ValidationError, match="check digit"):
        Place(id="8850000000014")


def test_shipments_carry_reference_documents_and_ownership_changes_name_both_sides() -> None:
    shipped = transport(
        documents=[{"type": "bol", "number": "bl-2569-000123"}], owner_from="F-0001", owner_to="EXP-0001"
    )
    assert shipped.documents == (BizDocument(type="bol", number="BL-2569-000123"),)
    with pytest.raises(ValidationError, match="both owner_from and owner_to"):
        transport(owner_from="F-0001")
    with pytest.raises(ValidationError, match="must differ"):
        transport(owner_from="F-0001", owner_to="F-0001")
    with pytest.raises(ValidationError):
        transport(documents=[{"type": "waybill", "number": "1"}])
    with pytest.raises(ValidationError):
        transport(documents=[{"type": "bol", "number": "BL/1"}])


# --- codes --------------------------------------------------------------------------------------------------


def test_codes_are_upper_cased_and_checked() -> None:
    h = harvest(lot_code=" nsn-veg-2609-01 ", actor="f-0001", plot_id="plot-nsn-01")
    assert (h.lot_code, h.actor, h.plot_id) == ("NSN-VEG-2609-01", "F-0001", "PLOT-NSN-01")


@pytest.mark.parametrize("lot", ["ABCD", "A" * 21, "-ABCDE", "ABCDE-", "AB CDE", "ABCDÉ", "ล็อต-01"])
def test_lot_codes_must_fit_gs1_ai_10_without_escaping(lot: str) -> None:
    with pytest.raises(ValidationError):
        harvest(lot_code=lot)


@pytest.mark.parametrize("actor", ["สมพร", "Somporn Jaidee", "0811111111 x", "F"])
def test_actors_are_pseudonymous_codes_not_names(actor: str) -> None:
    with pytest.raises(ValidationError):
        harvest(actor=actor)


def test_gtins_are_checked_and_padded_to_14_digits() -> None:
    assert gtin14("8850999000015") == "08850999000015"
    assert gtin14("09506000134352") == "09506000134352"
    assert gtin14("96385074") == "00000096385074"
    assert packing(gtin="8850999000015").gtin == "08850999000015"
    for bad in ("8850999000016", "885099900001", "88509990000150", "abc"):
        with pytest.raises(ValueError):
            gtin14(bad)
    with pytest.raises(ValidationError, match="leading zeros"):
        packing(gtin=8850999000015)


def test_officer_addresses_accept_eip55_checksums_and_are_lower_cased() -> None:
    checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert certification(officer=checksummed).officer == checksummed.lower()
    assert certification(officer=checksummed.upper().replace("0X", "0x")).officer == checksummed.lower()
    with pytest.raises(ValidationError, match="checksum"):
        certification(officer="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")


def test_certification_numbers_stay_exact_in_json() -> None:
    assert certification(nonce=2**53 - 1).nonce == 2**53 - 1
    for field in ("nonce", "expires", "deadline"):
        with pytest.raises(ValidationError):
            certification(**{field: 2**53})
        with pytest.raises(ValidationError):
            certification(**{field: -1})
    with pytest.raises(ValidationError):
        certification(signature="0x" + "22" * 64)


def test_hashes_are_lower_cased_and_evidence_is_bounded() -> None:
    h = harvest(prev=("0x" + "AB" * 32,), evidence=("CD" * 32,))
    assert h.prev == ("0x" + "ab" * 32,) and h.evidence == ("cd" * 32,)
    with pytest.raises(ValidationError, match="may not repeat"):
        harvest(evidence=("cd" * 32, "CD" * 32))
    with pytest.raises(ValidationError):
        harvest(evidence=tuple(f"{i:064x}" for i in range(11)))
    with pytest.raises(ValidationError):
        harvest(prev=("ab" * 32,))


# --- times --------------------------------------------------------------------------------------------------


def test_event_time_needs_a_zone_and_keeps_its_offset_at_millisecond_precision() -> None:
    h = harvest(event_time=datetime(2025, 9, 26, 8, 30, 0, 123_999, tzinfo=ZoneInfo("Asia/Bangkok")))
    assert h.event_time.microsecond == 123_000
    assert h.event_time.utcoffset() == timedelta(hours=7)
    assert h.event_time == datetime(2025, 9, 26, 1, 30, 0, 123_000, tzinfo=UTC)
    with pytest.raises(ValidationError):
        harvest(event_time=datetime(2025, 9, 26, 8, 30))
    assert harvest(event_time="2025-09-26T08:30:00+07:00").event_time.utcoffset() == timedelta(hours=7)


def test_event_time_is_neither_in_the_future_nor_before_2000() -> None:
    harvest(event_time=datetime.now(UTC) + timedelta(minutes=4))
    with pytest.raises(ValidationError, match="future"):
        harvest(event_time=datetime.now(UTC) + timedelta(minutes=6))
    with pytest.raises(ValidationError, match="2000"):
        harvest(event_time=datetime(1999, 12, 31, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize("offset", [timedelta(hours=7, seconds=30), timedelta(hours=14, minutes=1)])
def test_offsets_must_be_expressible_in_epcis(offset: timedelta) -> None:
    with pytest.raises(ValidationError, match="offset"):
        harvest(event_time=datetime(2025, 1, 1, tzinfo=timezone(offset)))


# --- free text ----------------------------------------------------------------------------------------------


def test_thai_text_passes_everywhere_stripped_and_nfc() -> None:
    text = "ผักอินทรีย์ บ้านหนองสนิท"
    h = harvest(note=f"  {text}\u3000")
    assert h.note == text
    p = Planting(
        kind="planting",
        lot_code="NSN-VEG-01",
        plot_id="PLOT-NSN-01",
        crop="organic-veg",
        variety=text,
        area_rai="2.5",
        **base(),
    )
    assert p.variety == text
    assert harvest(note="e\u0301").note == "\u00e9"
    assert harvest(note="   ").note is None
    assert transport(vehicle="รถห้องเย็น 70-1234 สุรินทร์").vehicle == "รถห้องเย็น 70-1234 สุรินทร์"
    assert Revocation(
        kind="revocation",
        lot_code="NSN-VEG-01",
        cert_id="0x" + "33" * 32,
        reason="พบการปลอมปนผลผลิตจากแหล่งอื่น",
        **base(),
    ).reason


@pytest.mark.parametrize(
    "bad", ["a\x00b", "del\x7fete", "line\nbreak", "tab\there", "\u202egnp.exe", "x\u2028y", "\ud800"]
)
def test_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="control character"):
        harvest(note=bad)


@pytest.mark.parametrize(
    "term", ["storing", "bol", "Temperature", "in_transit", "Disp-active", "cbv/BizStep-shipping"]
)
def test_text_equal_to_a_gs1_term_in_use_is_refused_but_longer_text_is_fine(term: str) -> None:
    with pytest.raises(ValidationError, match="GS1 vocabulary term"):
        harvest(note=term)
    assert harvest(note=f"{term} ผัก").note == f"{term} ผัก"


@pytest.mark.parametrize("bad", ["inf", "-Infinity", "1e999", "tt:x"])
def test_text_the_reference_hash_tool_would_choke_on_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        harvest(note=bad)


@pytest.mark.parametrize("fine", ["Nan", "1", "01", "๑", "A", "เกรด A", "https://example.org/x", "12.50"])
def test_ordinary_short_text_is_accepted(fine: str) -> None:
    assert harvest(note=fine).note == fine


def test_text_lengths_are_bounded() -> None:
    harvest(note="ก" * 500)
    with pytest.raises(ValidationError):
        harvest(note="ก" * 501)
    with pytest.raises(ValidationError):
        Grading(
            kind="grading",
            lot_code="NSN-VEG-01",
            grade="ก" * 41,
            accepted=Quantity(value=1),
            rejected=Quantity(value=0),
            **base(),
        )


@pytest.mark.parametrize("crop", ["Organic Veg", "storing", "inf", "x", "ข้าว"])
def test_crop_codes_are_lower_case_codes(crop: str) -> None:
    with pytest.raises(ValidationError):
        Planting(
            kind="planting", lot_code="NSN-VEG-01", plot_id="PLOT-NSN-01", crop=crop, area_rai=1, **base()
        )


# --- structure ----------------------------------------------------------------------------------------------


def test_packing_refuses_a_lot_on_both_sides_and_repeated_lots() -> None:
    with pytest.raises(ValidationError, match="both input and output"):
        packing(outputs=lot_quantities(["NSN-VEG-01"]))
    with pytest.raises(ValidationError, match="only once"):
        packing(inputs=lot_quantities(["NSN-VEG-02", "NSN-VEG-02"]))
    with pytest.raises(ValidationError):
        packing(inputs=lot_quantities([f"IN-{i:04d}" for i in range(51)]))
    with pytest.raises(ValidationError):
        packing(outputs=())
    packing(outputs=lot_quantities([f"OUT-{i:04d}" for i in range(200)]))


def test_transport_goes_somewhere_with_distinct_lots_and_bounded_readings() -> None:
    with pytest.raises(ValidationError, match="differ"):
        transport(destination="PH-NSN")
    with pytest.raises(ValidationError, match="only once"):
        transport(items=lot_quantities(["NSN-VEG-01A", "NSN-VEG-01A"]))
    reading = TemperatureReading(time=datetime(2025, 9, 26, 14, tzinfo=BANGKOK), celsius="4.5")
    assert transport(temperatures=[reading]).temperatures == (reading,)
    with pytest.raises(ValidationError):
        TemperatureReading(time=reading.time, celsius="80.01")
    with pytest.raises(ValidationError):
        TemperatureReading(time=reading.time, celsius="4.555")
    with pytest.raises(ValidationError):
        TemperatureReading(time=reading.time, celsius=4.5)


def test_places_take_both_coordinates_or_neither() -> None:
    assert Place(id="PH-NSN").lat is None
    with pytest.raises(ValidationError, match="both"):
        Place(id="PH-NSN", lat="15.1")
    with pytest.raises(ValidationError):
        Place(id="PH-NSN", lat="91", lon="100")
    with pytest.raises(ValidationError):
        Place(id="PH-NSN", lat="15.12345678", lon="100")


def test_models_are_frozen_and_refuse_unknown_fields() -> None:
    h = harvest()
    with pytest.raises(ValidationError):
        h.lot_code = "OTHER-LOT"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        Harvest(**{**h.model_dump(), "farmer_name": "นางสมพร ใจดี"})
    assert hash(h) == hash(harvest())


def test_the_adapter_picks_the_model_by_kind() -> None:
    raw = harvest().model_dump(mode="json")
    assert isinstance(EVENT_ADAPTER.validate_python(raw), Harvest)
    assert isinstance(EVENT_ADAPTER.validate_json(harvest().model_dump_json()), Harvest)
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_python({**raw, "kind": "milling"})
    assert EVENT_KINDS == tuple(EVENTS_BY_KIND)


def test_lots_touched_and_lineage_edges() -> None:
    p = packing(inputs=lot_quantities(["IN-0002", "IN-0001"]), outputs=lot_quantities(["OUT-0001"]))
    assert lots_touched(p) == ("IN-0002", "IN-0001", "OUT-0001")
    assert lot_inputs(p) == ("IN-0002", "IN-0001") and lot_outputs(p) == ("OUT-0001",)
    t = transport(items=lot_quantities(["LOT-B1", "LOT-A1"]))
    assert lots_touched(t) == lot_outputs(t) == ("LOT-B1", "LOT-A1") and lot_inputs(t) == ()
    assert lots_touched(harvest()) == lot_outputs(harvest()) == ("NSN-VEG-2609-01",)
    assert lot_inputs(certification()) == ()


def test_gs1_terms_list_holds_full_uris() -> None:
    assert all(t.startswith(("https://ref.gs1.org/cbv/", "https://gs1.org/voc/")) for t in GS1_TERMS_USED)


def test_errors_are_pydantic_validation_errors() -> None:
    with pytest.raises(ValidationError) as info:
        EVENT_ADAPTER.validate_python({"kind": "harvest"})
    assert isinstance(info.value, ValueError)
    assert {e["loc"][-1] for e in info.value.errors()} >= {"lot_code", "quantity", "event_id"}


@SETTINGS
@given(any_event)
def test_every_generated_event_survives_the_json_api_round_trip(event: Event) -> None:
    assert isinstance(event, BaseModel)
    again = EVENT_ADAPTER.validate_json(event.model_dump_json())
    assert again == event
    assert EVENT_ADAPTER.validate_python(event.model_dump(mode="json")) == event
    assert set(lots_touched(event)) == set(lot_inputs(event)) | set(lot_outputs(event))
