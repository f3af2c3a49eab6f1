"""CBV 2.0 Event Hash IDs: GS1's published vectors, canonical values, and what anchoring relies on.

Every ``*.jsonld``/``*.json`` document under the conformance ``event-hash`` folder is checked, every event
in it, against its ``.hashes`` line and, where published, its ``.prehashes`` line. No document or event
shape is excluded. Three published pre-hash lines are corrupt (they do not hash to the published hash next
to them; see CORRUPT_PREHASHES): for those the test asserts the corruption and checks our pre-hash against
the published hash instead.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_events import BANGKOK, SETTINGS, any_event, harvest, transport

from traceability.domain import codec
from traceability.domain.epcis import EPCIS_CONTEXT, to_epcis
from traceability.domain.events import Event, TemperatureReading
from traceability.domain.gs1 import check_digit, digital_link
from traceability.domain.hashing import (
    canonical_number,
    canonical_time,
    document_hashes,
    document_prehashes,
    event_hash,
    hash_bytes,
    hash_hex,
    hash_ni,
    prehash_string,
)

# The repository's own copy of the published conformance data (tests/conformance/README.md).
CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
EVENT_HASH = CONFORMANCE / "event-hash"
DOCUMENTS = sorted(p for p in EVENT_HASH.iterdir() if p.suffix in {".json", ".jsonld"})
# (document, event index): published pre-hash lines garbled upstream (text of two lines interleaved, or cut
# off mid-value), so sha256 of them is not the published hash of that event.
CORRUPT_PREHASHES = {
    ("epcisDocWithAllGS1Keys", 0),
    ("epcisDocWithCustomSchemaInContext", 1),
    ("epcisDocWithDefaultSchemaInContext", 1),
}
ID_BASE = "https://trace.example"


def ni(prehash: str) -> str:
    return "ni:///sha-256;" + hashlib.sha256(prehash.encode("utf-8")).hexdigest() + "?ver=CBV2.0"


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def load(path: Path, *, decimals: bool = True) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text, parse_float=Decimal) if decimals else json.loads(text)
    return result


# --- published vectors --------------------------------------------------------------------------------------


def test_every_vector_document_has_its_hashes() -> None:
    assert len(DOCUMENTS) == 22
    assert all(p.with_suffix(".hashes").exists() for p in DOCUMENTS)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_published_hashes(path: Path) -> None:
    expected = lines(path.with_suffix(".hashes"))
    assert document_hashes(load(path)) == expected
    assert document_hashes(load(path, decimals=False)) == expected


@pytest.mark.parametrize(
    "path", [p for p in DOCUMENTS if p.with_suffix(".prehashes").exists()], ids=lambda p: p.stem
)
def test_published_prehashes(path: Path) -> None:
    published = lines(path.with_suffix(".prehashes"))
    hashes = lines(path.with_suffix(".hashes"))
    ours = document_prehashes(load(path))
    assert len(published) <= len(ours) == len(hashes)
    for index, line in enumerate(published):
        if (path.stem, index) in CORRUPT_PREHASHES:
            assert ni(line) != hashes[index], "no longer corrupt: drop it from CORRUPT_PREHASHES"
            assert ni(ours[index]) == hashes[index]
        else:
            assert ours[index] == line, f"event {index}"


def test_event_hash_of_one_event_with_its_documents_context() -> None:
    document = load(EVENT_HASH / "ralfsChaosExample.jsonld")
    (event,) = document["epcisBody"]["eventList"]
    assert event_hash(event, document["@context"]) == lines(EVENT_HASH / "ralfsChaosExample.hashes")[0]
    # Without the document's prefixes the extension names stay CURIEs, so the hash differs.
    assert event_hash(event) != event_hash(event, document["@context"])


def test_ignore_fields_leave_named_extensions_out() -> None:
    document = load(EVENT_HASH / "epcisDocHavingEventWithIgnoreFields.jsonld")
    with_extensions, plain = document["epcisBody"]["eventList"]
    context = document["@context"]
    assert event_hash(with_extensions, context) != event_hash(plain, context)
    assert event_hash(with_extensions, context, ignore=["repository-x:hash", "example:captureID"]) == (
        event_hash(plain, context)
    )
    assert event_hash(
        with_extensions,
        context,
        ignore=["{https://repository-x.example.com/}hash", "{https://ns.example.com/epcis/}captureID"],
    ) == event_hash(plain, context)


def test_documents_with_a_single_event_body() -> None:
    document = load(EVENT_HASH / "epcisDocWithSingleEvent.jsonld")
    single = copy.deepcopy(document)
    single["epcisBody"] = {"event": document["epcisBody"]["eventList"][0]}
    assert document_hashes(single) == document_hashes(document)
    with pytest.raises(ValueError):
        document_hashes({"type": "EPCISDocument"})


# --- canonical values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("452.0", "452"),
        ("12.10", "12.1"),
        ("+5", "5"),
        ("-0", "0"),
        ("007", "7"),
        ("1e3", "1000"),
        (".5", "0.5"),
        ("5.", "5"),
        ("0.00001", "1e-05"),
        ("1_000", "1000"),
        ("๑๒", "12"),
        ("9999999.999", "9999999.999"),
        ("10000000000", "10000000000"),
        ("1.5E-3", "0.0015"),
    ],
)
def test_numbers_canonicalise_by_value(text: str, expected: str) -> None:
    assert canonical_number(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "inf", "nan", "1_", "_1", "1__0", "0x10", "1,5", "12 kg", "1e", "-"]
)
def test_non_numbers_are_left_alone(text: str) -> None:
    assert canonical_number(text) is None


def test_a_number_beyond_a_double_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="out of range"):
        canonical_number("1e400")


@SETTINGS
@given(
    st.decimals(min_value=Decimal(0), max_value=Decimal("9999999999.999"), places=3)
    | st.decimals(min_value=Decimal(-180), max_value=Decimal(180), places=7)
)
def test_the_decimals_our_models_allow_keep_their_digits(value: Decimal) -> None:
    text = format(value, "f")
    canonical = canonical_number(text)
    assert canonical is not None
    assert Decimal(canonical) == value
    if abs(value) >= Decimal("0.0001") or value == 0:
        assert "e" not in canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-02-02T11:04:03.1415Z", "2023-02-02T11:04:03.142Z"),
        ("2023-02-02T11:04:03.1414Z", "2023-02-02T11:04:03.141Z"),
        ("2023-02-02T11:04:03.1425Z", "2023-02-02T11:04:03.142Z"),
        ("2023-02-02T11:04:03.14250001Z", "2023-02-02T11:04:03.142Z"),
        ("2023-02-02T11:04:03.9996Z", "2023-02-02T11:04:04.000Z"),
        ("2022-02-16T20:33:31.116000-06:00", "2022-02-17T02:33:31.116Z"),
        ("2025-09-26T08:30:00+07:00", "2025-09-26T01:30:00.000Z"),
        ("2025-09-26T08:30+0700", "2025-09-26T01:30:00.000Z"),
        ("2025-12-31T23:59:59.9999+00:00", "2026-01-01T00:00:00.000Z"),
        ("2025-09-26T08:30:00", "2025-09-26T08:30:00"),
        ("yesterday", "yesterday"),
        ("2025-02-30T00:00:00Z", "2025-02-30T00:00:00Z"),
    ],
)
def test_times_become_utc_milliseconds(text: str, expected: str) -> None:
    assert canonical_time(text) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:class:lgtin:4012345.012345.Lot987", "https://id.gs1.org/01/04012345123456/10/Lot987"),
        ("urn:epc:id:sgln:4012345.00005.0", "https://id.gs1.org/414/4012345000054"),
        ("urn:epc:id:sscc:4012345.0000000333", "https://id.gs1.org/00/040123450000003338"),
        (
            "https://id.gs1.org/01/08850999000015/10/LOT-0001",
            "https://id.gs1.org/01/08850999000015/10/LOT-0001",
        ),
        (
            "https://example.com/gtin/9780345418913/21/765tz?abc=1",
            "https://id.gs1.org/01/09780345418913/21/765tz",
        ),
        ("http://id.gs1.org/01/09506000134352/10/ABC/21/1", "https://id.gs1.org/01/09506000134352/21/1"),
        ("https://id.gs1.de/01/04012345999990/22/2A/21/XYZ", "https://id.gs1.org/01/04012345999990/21/XYZ"),
        ("https://trace.example/lot/NSN-VEG-01", None),
        ("https://trace.example/party/F-0001", None),
        ("https://trace.example/party/1234567890123", "https://id.gs1.org/417/1234567890123"),
        ("urn:uuid:6f1c2b1e-8f0a-4c4e-9d59-2a7c1e0b5d11", None),
        ("geo:47.506694,11.104301", None),
        ("urn:epc:id:sgtin:0614141.107346", None),
    ],
)
def test_digital_link_canonical_form(uri: str, expected: str | None) -> None:
    assert digital_link(uri) == expected


def test_check_digits() -> None:
    assert check_digit("0885099900001") == 5
    assert check_digit("629104150021") == 3
    assert check_digit("04012345000000333") == 8


# --- the hash and its forms ---------------------------------------------------------------------------------

GOLDEN_PREHASH = (
    "eventType=ObjectEventeventTime=2025-09-26T01:30:00.000ZeventTimeZoneOffset=+07:00quantityListquantityElement"
    "epcClass=https://trace.example/lot/NSN-VEG-2609-01quantity=1250.5uom=KGMaction=ADD"
    "bizStep=https://ref.gs1.org/cbv/BizStep-creating_class_instancedisposition=https://ref.gs1.org/cbv/Disp-active"
    "readPointid=https://trace.example/place/PLOT-NSN-01bizLocationid=https://trace.example/place/PLOT-NSN-01"
    "ilmd{https://thai-trace.org/ns/epcis#}crop=organic-veg{https://thai-trace.org/ns/epcis#}variety=ผักคะน้า"
    "{https://thai-trace.org/ns/epcis#}actor=https://trace.example/party/F-0001"
    "{https://thai-trace.org/ns/epcis#}kind=https://thai-trace.org/ns/epcis#harvest"
    "{https://thai-trace.org/ns/epcis#}lat=15.1108{https://thai-trace.org/ns/epcis#}lon=103.6163"
    "{https://thai-trace.org/ns/epcis#}note=เก็บเช้า"
    "{https://thai-trace.org/ns/epcis#}prev=ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"
)
GOLDEN_HASH = "ni:///sha-256;90e680c5e3bdedc270d36249dcd2276a91b64080b24a428c36ebbbc17e8bb51c?ver=CBV2.0"


def golden_body() -> dict[str, Any]:
    return to_epcis(harvest(note="เก็บเช้า", prev=("0x" + "ab" * 32,)), id_base=ID_BASE)


def test_our_own_vector_states_the_exact_bytes_hashed() -> None:
    body = golden_body()
    assert prehash_string(body) == GOLDEN_PREHASH
    assert event_hash(body) == GOLDEN_HASH == ni(GOLDEN_PREHASH)
    assert event_hash(codec.loads(codec.dumps(body))) == GOLDEN_HASH
    assert event_hash(json.loads(codec.dumps(body))) == GOLDEN_HASH  # floats read by a plain JSON parser
    assert event_hash(body, EPCIS_CONTEXT) == GOLDEN_HASH


def test_hash_forms_convert_both_ways() -> None:
    digest = bytes.fromhex("90e680c5e3bdedc270d36249dcd2276a91b64080b24a428c36ebbbc17e8bb51c")
    assert hash_bytes(GOLDEN_HASH) == digest
    assert hash_hex(GOLDEN_HASH) == "0x" + digest.hex()
    assert hash_bytes("0x" + digest.hex().upper()) == digest
    assert hash_ni(digest) == hash_ni("0x" + digest.hex()) == GOLDEN_HASH
    for bad in ("", "0x1234", "ni:///sha-256;zz?ver=CBV2.0", GOLDEN_HASH + "x", "sha256:" + digest.hex()):
        with pytest.raises(ValueError):
            hash_bytes(bad)
    with pytest.raises(ValueError):
        hash_ni(b"\x00" * 31)


def test_identity_and_record_keeping_members_are_not_hashed() -> None:
    body = golden_body()
    other = {
        **body,
        "eventID": "urn:uuid:00000000-0000-4000-8000-000000000000",
        "recordTime": "2025-09-27T00:00Z",
    }
    other["errorDeclaration"] = {"declarationTime": "2025-09-28T00:00:00Z", "reason": "incorrect_data"}
    assert event_hash(other) == GOLDEN_HASH


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@SETTINGS
@given(any_event, st.randoms(use_true_random=False))
def test_member_order_does_not_change_the_hash(event: Event, rng: random.Random) -> None:
    body = to_epcis(event, id_base=ID_BASE)
    assert event_hash(_shuffled(body, rng)) == event_hash(body)
    assert event_hash(codec.loads(codec.dumps(body))) == event_hash(body)


@SETTINGS
@given(any_event)
def test_any_change_to_what_an_event_says_changes_its_hash(event: Event) -> None:
    body = to_epcis(event, id_base=ID_BASE)
    original = event_hash(body)
    changes: list[dict[str, Any]] = [
        {"tt:note": (event.note or "") + " แก้ไข"},
        {"tt:prev": [*body.get("tt:prev", []), "ni:///sha-256;" + "00" * 32 + "?ver=CBV2.0"]},
        {"eventTime": (event.event_time + timedelta(milliseconds=1)).isoformat(timespec="milliseconds")},
        {"readPoint": {"id": body["readPoint"]["id"] + "X"}},
        {"tt:actor": body["tt:actor"] + "X"},
    ]
    for change in changes:
        assert event_hash({**body, **change}) != original, change


def test_quantities_and_temperatures_are_hashed_by_value() -> None:
    reading = TemperatureReading(time=datetime(2025, 9, 26, 14, tzinfo=BANGKOK), celsius="4.5")
    body = to_epcis(transport(temperatures=[reading]), id_base=ID_BASE)
    base_hash = event_hash(body)
    as_text = json.loads(
        json.dumps(body, default=str)
    )  # Decimals as strings: same value, same canonical text
    assert event_hash(as_text) == base_hash
    bumped = copy.deepcopy(body)
    bumped["sensorElementList"][0]["sensorReport"][0]["value"] = Decimal("4.51")
    assert event_hash(bumped) != base_hash
    bumped = copy.deepcopy(body)
    bumped["quantityList"][0]["quantity"] = Decimal("1.501")
    assert event_hash(bumped) != base_hash


def test_unsupported_shapes_are_refused_loudly() -> None:
    with pytest.raises(ValueError, match="type"):
        event_hash({"eventTime": "2025-09-26T08:30:00Z"})
    with pytest.raises(ValueError, match="nested arrays"):
        event_hash({**golden_body(), "tt:grid": [[1, 2], [3]]})
    with pytest.raises(ValueError, match="object"):
        event_hash({**golden_body(), "bizStep": {"id": "x"}})
    with pytest.raises(ValueError, match="out of range"):
        event_hash({**golden_body(), "tt:huge": "1e999"})
    with pytest.raises(ValueError):
        event_hash({**golden_body(), "tt:odd": object()})


def test_booleans_and_nulls() -> None:
    body = golden_body()
    assert event_hash({**body, "tt:none": None}) == GOLDEN_HASH
    assert "{https://thai-trace.org/ns/epcis#}flag=true" in prehash_string({**body, "tt:flag": True})
