"""EPCIS 2.0 form of events: the mapping, the exact round trip, and schema validity of every document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from pydantic import ValidationError
from test_events import (
    BANGKOK,
    EVENTS_BY_KIND,
    SETTINGS,
    any_event,
    base,
    certification,
    harvest,
    packing,
    transport,
)

from traceability.domain import codec
from traceability.domain.epcis import (
    EPCIS_CONTEXT,
    GS1_EPCIS_CONTEXT,
    NS,
    PREFIX,
    epcis_document,
    from_epcis,
    in_canonical_order,
    lot_class_uri,
    party_uri,
    place_uri,
    to_epcis,
)
from traceability.domain.events import (
    EVENT_KINDS,
    GS1_TERMS_USED,
    Cooling,
    Event,
    Grading,
    Place,
    Planting,
    Quantity,
    Revocation,
    TemperatureReading,
    lots_touched,
)

# The repository's own copy of the published conformance data (tests/conformance/README.md).
CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
ID_BASE = "https://trace.example"


@cache
def validator() -> Draft7Validator:
    schema = json.loads((CONFORMANCE / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]


def stored(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the service stores and reads it back: codec JSON (sorted keys, exact decimals)."""
    result: dict[str, Any] = codec.loads(codec.dumps(body))
    return result


# --- the mapping ------------------------------------------------------------------------------------------


def test_a_harvest_maps_to_an_object_event_creating_the_lot_class() -> None:
    """FSMA 204 harvest: the farm in readPoint, the field in bizLocation, commodity and variety in ilmd."""
    event = harvest(
        note="เก็บเช้า",
        prev=("0x" + "ab" * 32,),
        evidence=("cd" * 32,),
        place=Place(id="FARM-NSN-0001", lat=Decimal("15.1108"), lon=Decimal("103.6163")),
    )
    assert to_epcis(event, id_base=ID_BASE + "/") == {
        "type": "ObjectEvent",
        "eventID": "urn:uuid:6f1c2b1e-8f0a-4c4e-9d59-2a7c1e0b5d11",
        "eventTime": "2025-09-26T08:30:00.000+07:00",
        "eventTimeZoneOffset": "+07:00",
        "quantityList": [
            {
                "epcClass": "https://trace.example/lot/NSN-VEG-2609-01",
                "quantity": Decimal("1250.5"),
                "uom": "KGM",
            }
        ],
        "action": "ADD",
        "bizStep": "creating_class_instance",
        "disposition": "active",
        "readPoint": {"id": "https://trace.example/place/FARM-NSN-0001"},
        "bizLocation": {"id": "https://trace.example/place/PLOT-NSN-01"},
        "ilmd": {"tt:crop": "organic-veg", "tt:variety": "ผักคะน้า"},
        "tt:kind": "https://thai-trace.org/ns/epcis#harvest",
        "tt:actor": "https://trace.example/party/F-0001",
        "tt:lat": Decimal("15.1108"),
        "tt:lon": Decimal("103.6163"),
        "tt:evidence": ["https://trace.example/evidence/" + "cd" * 32],
        "tt:prev": ["ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"],
        "tt:note": "เก็บเช้า",
    }


def _grading(disposition: str, kg: int) -> Grading:
    return Grading(
        kind="grading",
        lot_code="NSN-VEG-01",
        grade="เกรด A" if disposition == "conformant" else "ตกเกรด ใบเหลือง",
        quantity=Quantity(value=kg),
        disposition=disposition,
        **base(),
    )


def _cooling() -> Cooling:
    return Cooling(
        kind="cooling",
        lot_code="SKN-WM-2608-01",
        quantity=Quantity(value=13100),
        method="forced_air",
        temperatures=[TemperatureReading(time=datetime(2025, 9, 26, 9, tzinfo=BANGKOK), celsius="12.5")],
        **base(place=Place(id="PH-CKR")),
    )


def test_every_kind_follows_the_fsma_204_recommendations() -> None:
    common = base()
    rows: list[tuple[Event, str, str | None, str, str | None]] = [
        (
            Planting(
                kind="planting",
                lot_code="NSN-VEG-01",
                plot_id="PLOT-NSN-01",
                crop="organic-veg",
                area_rai="2.5",
                authority="LAO-NONGSANIT",
                **common,
            ),
            "ObjectEvent",
            "ADD",
            "commissioning",
            "active",
        ),
        (harvest(), "ObjectEvent", "ADD", "creating_class_instance", "active"),
        (_cooling(), "ObjectEvent", "OBSERVE", "storing", "active"),
        (_grading("conformant", 5), "ObjectEvent", "OBSERVE", "inspecting", "conformant"),
        (_grading("non_conformant", 1), "ObjectEvent", "OBSERVE", "inspecting", "non_conformant"),
        (packing(), "TransformationEvent", None, "creating_class_instance", "active"),
        (transport(), "ObjectEvent", "OBSERVE", "shipping", "in_transit"),
        (transport(leg="receive"), "ObjectEvent", "OBSERVE", "receiving", "in_progress"),
        (certification(), "ObjectEvent", "OBSERVE", "inspecting", "conformant"),
        (
            Revocation(
                kind="revocation", lot_code="NSN-VEG-01", cert_id="0x" + "33" * 32, reason="ปลอมปน", **common
            ),
            "ObjectEvent",
            "OBSERVE",
            "inspecting",
            "non_conformant",
        ),
    ]
    assert {e.kind for e, *_ in rows} == set(EVENT_KINDS)
    for event, event_type, action, biz_step, disposition in rows:
        body = to_epcis(event, id_base=ID_BASE)
        assert (body["type"], body.get("action"), body["bizStep"], body.get("disposition")) == (
            event_type,
            action,
            biz_step,
            disposition,
        ), event.kind
        assert body["tt:kind"] == NS + event.kind
        assert body["readPoint"] == {"id": place_uri(event.place.id, id_base=ID_BASE)}
        # Every event carries its own local offset, never a bare UTC time.
        assert body["eventTime"].endswith("+07:00") and body["eventTimeZoneOffset"] == "+07:00", event.kind
        assert "@context" not in body


def test_a_grading_shows_each_quantity_with_its_own_disposition() -> None:
    """Accepted and rejected produce are two events: plain EPCIS readers see the rejected quantity as
    non_conformant, and accepted + rejected adds up to what was harvested."""
    accepted = to_epcis(_grading("conformant", 1190), id_base=ID_BASE)
    rejected = to_epcis(_grading("non_conformant", 60), id_base=ID_BASE)
    assert accepted["quantityList"][0]["quantity"] + rejected["quantityList"][0]["quantity"] == 1250
    assert (accepted["disposition"], rejected["disposition"]) == ("conformant", "non_conformant")
    assert rejected["tt:grade"] == "ตกเกรด ใบเหลือง"
    assert not any(k.startswith("tt:rejected") for k in rejected)


def test_cooling_names_where_when_how_much_and_how() -> None:
    body = to_epcis(_cooling(), id_base=ID_BASE)
    assert body["readPoint"] == body["bizLocation"] == {"id": "https://trace.example/place/PH-CKR"}
    assert body["quantityList"] == [
        {"epcClass": "https://trace.example/lot/SKN-WM-2608-01", "quantity": Decimal(13100), "uom": "KGM"}
    ]
    assert body["tt:coolingMethod"] == "forced_air"
    assert body["sensorElementList"][0]["sensorReport"][0]["value"] == Decimal("12.5")


def test_initial_packing_creates_the_output_classes() -> None:
    body = to_epcis(packing(), id_base=ID_BASE)
    assert (body["bizStep"], body["disposition"]) == ("creating_class_instance", "active")
    assert "action" not in body


def test_shipping_carries_reference_documents_and_the_change_of_owner() -> None:
    body = to_epcis(
        transport(
            documents=[{"type": "bol", "number": "BL-2569-000123"}, {"type": "po", "number": "PO-77"}],
            owner_from="F-0001",
            owner_to="EXP-0001",
        ),
        id_base=ID_BASE,
    )
    assert body["bizTransactionList"] == [
        {"type": "bol", "bizTransaction": "https://trace.example/doc/bol/BL-2569-000123"},
        {"type": "po", "bizTransaction": "https://trace.example/doc/po/PO-77"},
    ]
    assert body["sourceList"] == [
        {"type": "location", "source": "https://trace.example/place/PH-NSN"},
        {"type": "owning_party", "source": "https://trace.example/party/F-0001"},
    ]
    assert body["destinationList"] == [
        {"type": "location", "destination": "https://trace.example/place/PORT-LCB"},
        {"type": "owning_party", "destination": "https://trace.example/party/EXP-0001"},
    ]
    plain = to_epcis(transport(), id_base=ID_BASE)
    assert "bizTransactionList" not in plain
    assert [s["type"] for s in plain["sourceList"]] == ["location"]


def test_a_place_with_a_gln_is_named_by_its_digital_link() -> None:
    body = to_epcis(transport(source="8850000000010", place=Place(id="8850000000010")), id_base=ID_BASE)
    assert body["readPoint"] == {"id": "https://id.gs1.org/414/8850000000010"}
    assert body["sourceList"][0]["source"] == "https://id.gs1.org/414/8850000000010"
    assert from_epcis(body).place.id == "8850000000010"


def test_a_revocation_names_the_certification_it_revokes() -> None:
    body = to_epcis(
        Revocation(
            kind="revocation", lot_code="NSN-VEG-01", cert_id="0x" + "33" * 32, reason="ปลอมปน", **base()
        ),
        id_base=ID_BASE,
    )
    assert body["certificationInfo"] == "https://trace.example/certification/0x" + "33" * 32
    assert body["disposition"] == "non_conformant"
    assert body["tt:reason"] == "ปลอมปน"


def test_packing_is_a_transformation_whose_outputs_carry_the_product_gtin() -> None:
    body = to_epcis(packing(gtin="8850999000015"), id_base=ID_BASE, gtins={"NSN-VEG-01": "08850999000022"})
    assert body["inputQuantityList"] == [
        {
            "epcClass": "https://id.gs1.org/01/08850999000022/10/NSN-VEG-01",
            "quantity": Decimal("1.5"),
            "uom": "KGM",
        }
    ]
    assert [q["epcClass"] for q in body["outputQuantityList"]] == [
        "https://id.gs1.org/01/08850999000015/10/NSN-VEG-01A",
        "https://id.gs1.org/01/08850999000015/10/NSN-VEG-01B",
    ]
    assert body["tt:gtin"] == "08850999000015"


def test_transport_names_source_and_destination_and_reports_temperatures() -> None:
    readings = [
        TemperatureReading(time=datetime(2025, 9, 26, 14, tzinfo=BANGKOK), celsius="4.5"),
        TemperatureReading(time=datetime(2025, 9, 26, 20, tzinfo=BANGKOK), celsius="-1.25"),
    ]
    body = to_epcis(
        transport(leg="receive", temperatures=readings, vehicle="รถห้องเย็น 70-1234"), id_base=ID_BASE
    )
    assert body["sourceList"] == [{"type": "location", "source": "https://trace.example/place/PH-NSN"}]
    assert body["destinationList"] == [
        {"type": "location", "destination": "https://trace.example/place/PORT-LCB"}
    ]
    assert body["bizLocation"] == {"id": "https://trace.example/place/PORT-LCB"}
    assert body["sensorElementList"] == [
        {
            "sensorReport": [
                {
                    "type": "Temperature",
                    "time": "2025-09-26T14:00:00.000+07:00",
                    "value": Decimal("4.5"),
                    "uom": "CEL",
                },
                {
                    "type": "Temperature",
                    "time": "2025-09-26T20:00:00.000+07:00",
                    "value": Decimal("-1.25"),
                    "uom": "CEL",
                },
            ]
        }
    ]
    assert body["tt:vehicle"] == "รถห้องเย็น 70-1234"
    assert "bizLocation" not in to_epcis(transport(), id_base=ID_BASE)


def test_certification_points_certification_info_at_the_certificate() -> None:
    body = to_epcis(certification(), id_base=ID_BASE)
    assert body["certificationInfo"] == "https://trace.example/certification/0x" + "33" * 32
    assert body["tt:authority"] == party_uri("LAO-NONGSANIT", id_base=ID_BASE)
    assert (body["tt:nonce"], body["tt:expires"], body["tt:deadline"]) == (0, 0, 1_900_000_000)
    assert body["quantityList"] == [{"epcClass": "https://trace.example/lot/NSN-VEG-01"}]


def test_uris() -> None:
    assert lot_class_uri("LOT-0001", id_base="https://t.example/") == "https://t.example/lot/LOT-0001"
    assert lot_class_uri("LOT-0001", id_base="x", gtin="8850999000015") == (
        "https://id.gs1.org/01/08850999000015/10/LOT-0001"
    )
    assert place_uri("PH-NSN", id_base="http://localhost:8000") == "http://localhost:8000/place/PH-NSN"
    for bad in ("ftp://x.example", "https://x.example/?q=1", "https://x.example/a b", "trace.example"):
        with pytest.raises(ValueError):
            place_uri("PH-NSN", id_base=bad)


def test_the_context_is_pinned_to_epcis_2_0_0_plus_our_namespace() -> None:
    assert EPCIS_CONTEXT == [GS1_EPCIS_CONTEXT, {PREFIX: NS}]
    assert GS1_EPCIS_CONTEXT == "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


# --- the round trip -----------------------------------------------------------------------------------------


@SETTINGS
@given(any_event, st.sampled_from([ID_BASE, "http://127.0.0.1:8000", "https://trace.example/th"]))
def test_from_epcis_is_the_exact_inverse_of_to_epcis(event: Event, id_base: str) -> None:
    body = to_epcis(event, id_base=id_base)
    assert from_epcis(body) == event
    assert from_epcis(stored(body)) == event
    assert to_epcis(from_epcis(stored(body)), id_base=id_base) == body


@pytest.mark.parametrize("kind", list(EVENTS_BY_KIND))
@SETTINGS
@given(data=st.data())
def test_round_trip_per_kind_with_gtins(kind: str, data: st.DataObject) -> None:
    event = data.draw(EVENTS_BY_KIND[kind])
    body = to_epcis(event, id_base=ID_BASE, gtins=dict.fromkeys(_lots(event), "8850999000015"))
    assert from_epcis(stored(body)) == event


def _lots(event: Event) -> list[str]:
    return list(lots_touched(event))[::2]


def test_from_epcis_refuses_floats_rather_than_rounding() -> None:
    body = json.loads(codec.dumps(to_epcis(harvest(), id_base=ID_BASE)))  # plain json: 1250.5 is a float
    with pytest.raises(ValidationError, match="decimal strings"):
        from_epcis(body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update({"tt:extra": "x"}), "tt:extra"),
        (lambda b: b.update({"tt:note": " เก็บเช้า "}), "tt:note"),
        (lambda b: b.update({"bizStep": "shipping"}), "bizStep"),
        (lambda b: b.update({"tt:actor": "https://elsewhere.example/party/F-0001"}), "canonical form"),
        (lambda b: b.update({"readPoint": {"id": "https://elsewhere.example/place/X-1"}}), "readPoint"),
        (lambda b: b["ilmd"].update({"tt:extra": "x"}), "ilmd"),
        (lambda b: b.update({"eventTimeZoneOffset": "+08:00"}), "eventTimeZoneOffset"),
        (lambda b: b.update({"eventTime": "2025-09-26T08:30:00+07:00"}), "eventTime"),
        (lambda b: b["quantityList"][0].pop("uom"), "quantityList"),
    ],
)
def test_from_epcis_refuses_a_body_that_is_not_exactly_what_to_epcis_builds(
    change: Any, message: str
) -> None:
    body = stored(to_epcis(harvest(note="เก็บเช้า"), id_base=ID_BASE))
    change(body)
    with pytest.raises(ValueError, match=message):
        from_epcis(body)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.pop("tt:kind"),
        lambda b: b.update({"tt:kind": "https://other.example/ns#harvest"}),
        lambda b: b.update({"tt:kind": NS + "milling"}),
        lambda b: b.update({"eventID": "ni:///sha-256;00?ver=CBV2.0"}),
        lambda b: b.update({"readPoint": {"id": "https://trace.example/somewhere"}}),
        lambda b: b.update({"quantityList": []}),
        lambda b: b.update({"tt:prev": ["0x" + "ab" * 32]}),
        lambda b: b.pop("readPoint"),
    ],
)
def test_from_epcis_refuses_foreign_or_broken_bodies(change: Any) -> None:
    body = stored(to_epcis(harvest(), id_base=ID_BASE))
    change(body)
    with pytest.raises(ValueError):
        from_epcis(body)


# --- documents ---------------------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(any_event, min_size=1, max_size=6), st.sampled_from([UTC, BANGKOK]))
def test_every_document_of_emitted_events_validates_against_the_epcis_schema(
    events: list[Event], zone: timezone
) -> None:
    bodies = [to_epcis(e, id_base=ID_BASE) for e in events]
    document = epcis_document(bodies, created=datetime.now(zone))
    assert schema_errors(document) == []
    assert schema_errors(epcis_document([stored(b) for b in bodies], created=datetime.now(zone))) == []


@pytest.mark.parametrize("kind", list(EVENTS_BY_KIND))
@SETTINGS
@given(data=st.data())
def test_documents_of_each_kind_validate(kind: str, data: st.DataObject) -> None:
    event = data.draw(EVENTS_BY_KIND[kind])
    document = epcis_document([to_epcis(event, id_base=ID_BASE)], created=datetime(2025, 9, 26, tzinfo=UTC))
    assert schema_errors(document) == []


def test_the_schema_check_is_real() -> None:
    for example in sorted((CONFORMANCE / "epcis").glob("Example_*.jsonld")):
        assert schema_errors(json.loads(example.read_text())) == [], example.name
    document = epcis_document([to_epcis(harvest(), id_base=ID_BASE)], created=datetime.now(UTC))
    document["epcisBody"]["eventList"][0]["quantityList"][0]["quantity"] = "1250.5"
    document["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] = "+7"
    assert len(schema_errors(document)) >= 2


def test_documents_put_type_first_where_the_reference_hash_tool_reads_member_order() -> None:
    # A body whose members were re-sorted somewhere along the way (e.g. a JSON store that sorts keys).
    def resorted(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: resorted(value[k]) for k in sorted(value)}
        return [resorted(v) for v in value] if isinstance(value, list) else value

    body = resorted(stored(to_epcis(transport(), id_base=ID_BASE)))
    assert list(body["sourceList"][0]) == ["source", "type"]
    document = epcis_document([body], created=datetime(2025, 9, 26, tzinfo=UTC))
    event = document["epcisBody"]["eventList"][0]
    assert list(event["sourceList"][0]) == ["type", "source"]
    assert list(event["destinationList"][0]) == ["type", "destination"]
    assert list(event)[:4] == ["type", "eventID", "eventTime", "eventTimeZoneOffset"]
    assert event == body
    assert in_canonical_order(body) == body


def test_document_header() -> None:
    created = datetime(2025, 9, 26, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=7)))
    document = epcis_document([], created=created)
    assert document == {
        "@context": EPCIS_CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-09-26T10:00:00.123+07:00",
        "epcisBody": {"eventList": []},
    }
    document["@context"][1]["tt"] = "changed"
    assert EPCIS_CONTEXT[1] == {"tt": NS}
    with pytest.raises(ValueError):
        epcis_document([], created=datetime(2025, 9, 26))


# --- what the event models must know about this mapping ----------------------------------------------------

_VOCABULARY = {
    "bizStep": "https://ref.gs1.org/cbv/BizStep-",
    "disposition": "https://ref.gs1.org/cbv/Disp-",
}


def _gs1_terms(body: dict[str, Any]) -> set[str]:
    terms = {prefix + body[key] for key, prefix in _VOCABULARY.items() if key in body}
    for key in ("sourceList", "destinationList"):
        terms |= {"https://ref.gs1.org/cbv/SDT-" + e["type"] for e in body.get(key, [])}
    terms |= {"https://ref.gs1.org/cbv/BTT-" + e["type"] for e in body.get("bizTransactionList", [])}
    for element in body.get("sensorElementList", []):
        terms |= {"https://gs1.org/voc/" + r["type"] for r in element["sensorReport"]}
    return terms


@SETTINGS
@given(any_event)
def test_every_gs1_term_emitted_is_one_the_models_know(event: Event) -> None:
    assert _gs1_terms(to_epcis(event, id_base=ID_BASE)) <= set(GS1_TERMS_USED)


def test_gs1_terms_used_lists_each_term_the_mapping_can_emit() -> None:
    bodies = [
        to_epcis(e, id_base=ID_BASE)
        for e in (
            harvest(),
            packing(),
            transport(temperatures=[TemperatureReading(time=datetime(2025, 9, 26, tzinfo=UTC), celsius=1)]),
            transport(
                leg="receive",
                owner_from="F-0001",
                owner_to="EXP-0001",
                documents=[
                    {"type": t, "number": "N-1"}
                    for t in ("bol", "desadv", "recadv", "po", "inv", "cert", "testres")
                ],
            ),
            certification(),
            _cooling(),
            _grading("conformant", 5),
            _grading("non_conformant", 1),
            Planting(
                kind="planting",
                lot_code="NSN-VEG-01",
                plot_id="PLOT-NSN-01",
                crop="rice",
                area_rai=1,
                **base(),
            ),
        )
    ]
    assert set().union(*(_gs1_terms(b) for b in bodies)) == set(GS1_TERMS_USED)


def test_the_models_refuse_text_starting_with_our_prefix() -> None:
    with pytest.raises(ValidationError):
        harvest(note=f"{PREFIX}:note")
