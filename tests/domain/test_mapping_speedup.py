"""The faster mapping, ordering, JSON writer and hash give the very bytes the code before them gave.

Bodies and their hashes are anchored on chain, so a faster path that wrote one byte differently would break
every existing ledger. ``legacy_mapping`` keeps the code as it was; every kind of event (and, for the hash
and the JSON writer, any input at all, including what other systems' EPCIS documents hold and what the
code must refuse) goes through both, and the outcomes must be equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import legacy_mapping as legacy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_events import EVENTS_BY_KIND, SETTINGS, any_event, texts

from traceability.domain import codec
from traceability.domain.epcis import EPCIS_CONTEXT, GS1_EPCIS_CONTEXT, NS, in_canonical_order, to_epcis
from traceability.domain.events import Event, lots_touched
from traceability.domain.gs1 import check_digit
from traceability.domain.hashing import (
    canonical_time,
    document_prehashes,
    event_hash,
    hash_hex,
    prehash_string,
)

ID_BASES = ["https://trace.example", "http://127.0.0.1:8000/", "https://trace.example/th"]
MANY = settings(SETTINGS, max_examples=100)
EVENT_HASH = Path(__file__).resolve().parents[1] / "conformance" / "event-hash"


def outcome(call: Callable[[], object]) -> object:
    """What a call gives: its value, or the class of what it raised (messages may name another field)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome to compare
        return type(exc)


def assert_same_record(event: Event, id_base: str, gtins: dict[str, str]) -> None:
    """What recording an event computes (mapped, ordered, written, hashed), by both codes."""
    new_body = to_epcis(event, id_base=id_base, gtins=gtins)
    old_body = legacy.to_epcis(event, id_base=id_base, gtins=gtins)
    assert list(new_body) == list(old_body)
    assert codec.dumps(new_body) == legacy.dumps(old_body)
    new_ordered, old_ordered = in_canonical_order(new_body), legacy.in_canonical_order(old_body)
    new_text, old_text = codec.dumps(new_ordered), legacy.dumps(old_ordered)
    assert new_text == old_text
    assert prehash_string(new_ordered) == legacy.prehash_string(old_ordered)
    assert hash_hex(event_hash(new_ordered)) == legacy.hash_hex(legacy.event_hash(old_ordered))
    # Read back as stored, and with its members sorted (as a JSON tool might rewrite it), the body orders,
    # writes and hashes the same way too.
    for stored in (codec.loads(new_text), codec.loads(json.dumps(json.loads(new_text), sort_keys=True))):
        assert codec.dumps(in_canonical_order(stored)) == legacy.dumps(legacy.in_canonical_order(stored))
        assert event_hash(stored) == legacy.event_hash(stored)


@pytest.mark.parametrize("kind", list(EVENTS_BY_KIND))
@MANY
@given(data=st.data())
def test_every_kind_records_the_same_bytes_and_hash(kind: str, data: st.DataObject) -> None:
    event = data.draw(EVENTS_BY_KIND[kind])
    gtins = data.draw(st.sampled_from([{}, dict.fromkeys(lots_touched(event), "8850999000015")]))
    assert_same_record(event, data.draw(st.sampled_from(ID_BASES)), gtins)


@MANY
@given(st.lists(any_event, min_size=1, max_size=5), st.sampled_from(ID_BASES))
def test_events_in_a_row_record_the_same_bytes_and_hash(events: list[Event], id_base: str) -> None:
    # In a row, as the bulk path records them: nothing one event leaves behind changes the next.
    for event in events:
        assert_same_record(event, id_base, {})


# --- the hash of any EPCIS event, ours or not ---------------------------------------------------------------

_PREFIXES = {"tt": NS, "ex": "https://example.org/voc/", "ex2": "urn:ex:", "a:b": "https://odd.example/"}
_CONTEXTS = st.sampled_from(
    [EPCIS_CONTEXT, [GS1_EPCIS_CONTEXT, dict(_PREFIXES)], [GS1_EPCIS_CONTEXT], GS1_EPCIS_CONTEXT, {}, None]
)
_NAMES = st.sampled_from(
    [
        "tt:note",
        "tt:kind",
        "ex:a",
        "ex2:b",
        "a:b:c",
        "other",
        "comment",
        "rdfs:comment",
        "id",
        "type",
        "value",
    ]
)
_TEXT = st.one_of(
    st.sampled_from(
        [
            "shipping",
            "in_transit",
            "urn:epcglobal:cbv:bizstep:receiving",
            " urn:epcglobal:cbv:disp:active ",
            "tt:thing",
            "ex:item",
            "ex2:x",
            "a:b:c",
            "12.50",
            "+1_000",
            "๑๒.๕",
            ".5",
            "1e-05",
            "inf",
            "1e999",
            "",
            "  ",
            "2025-09-26T08:30:00.123+07:00",
            "2025-09-26T08:30:00.1235+07:00",
            "2025-09-26t08:30Z",
            "2025-02-30T08:30:00.000+07:00",
            "0001-01-01T00:00:00.000+01:00",
            "9999-12-31T23:59:59.999-01:00",
            "2025-09-26T24:00:00.000+07:00",
            "2025-09-26T08:30:00.000+24:00",
            "2025-09-26T08:30:00.000+05:75",
            "https://id.gs1.org/01/08850999000015/10/L-1",
            "https://example.com/gtin/8850999000015/lot/L.1?x=1",
            "urn:epc:id:sgtin:0614141.107346.2017",
            "urn:epc:class:lgtin:4012345.012345.998877",
            "https://id.gs1.org/414/8850999000008",
            "https://trace.example/place/PLOT.1",
            "ni:///sha-256;ab",
            "Temperature",
            "KGM",
            "CEL",
            "location",
            "owning_party",
            "bol",
            "ALARM_CONDITION",
            "x",
        ]
    ),  # fmt: skip
    texts(30),
)
_SCALARS = st.one_of(
    _TEXT,
    st.decimals(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES | _TEXT, inner, max_size=4),
    max_leaves=12,
)
_STANDARD = st.sampled_from(
    [
        "eventTime", "eventTimeZoneOffset", "certificationInfo", "parentID", "epcList", "inputEPCList",
        "childEPCs", "quantityList", "childQuantityList", "inputQuantityList", "outputEPCList",
        "outputQuantityList", "action", "transformationID", "bizStep", "disposition",
        "persistentDisposition", "readPoint", "bizLocation", "sensorElementList", "bizTransactionList",
        "sourceList", "destinationList", "ilmd", "eventID", "recordTime", "errorDeclaration", "@context",
    ]
)  # fmt: skip
_MEMBERS = st.sampled_from(
    [
        "epcClass", "quantity", "uom", "id", "set", "unset", "sensorMetadata", "sensorReport", "time", "type",
        "value", "component", "exception", "deviceID", "startTime", "bizTransaction", "source", "destination",
    ]
)  # fmt: skip
_OBJECTS = st.dictionaries(_MEMBERS | _NAMES, _VALUES, max_size=5)
_SENSOR_ELEMENTS = st.lists(
    st.fixed_dictionaries(
        {}, optional={"sensorMetadata": _OBJECTS, "sensorReport": st.lists(_OBJECTS, max_size=3)}
    ),
    max_size=2,
)
_EPCIS_EVENTS = st.builds(
    lambda kind, standard, others: {"type": kind, **standard, **others},
    st.sampled_from(["ObjectEvent", "TransformationEvent", "AggregationEvent", ""]),
    st.dictionaries(
        _STANDARD, _VALUES | st.lists(_OBJECTS, max_size=3) | _OBJECTS | _SENSOR_ELEMENTS, max_size=8
    ),
    st.dictionaries(_NAMES, _VALUES, max_size=4),
)


@settings(SETTINGS, max_examples=600)
@given(_EPCIS_EVENTS, _CONTEXTS, st.sets(_NAMES, max_size=2))
def test_any_event_hashes_or_is_refused_as_before(
    event: dict[str, Any], context: Any, ignore: set[str]
) -> None:
    for arguments in ((), (context,)):
        assert outcome(lambda a=arguments: prehash_string(event, *a, ignore=ignore)) == outcome(
            lambda a=arguments: legacy.prehash_string(event, *a, ignore=ignore)
        )


@pytest.mark.parametrize(
    "path", sorted(p for p in EVENT_HASH.iterdir() if p.suffix in {".json", ".jsonld"}), ids=lambda p: p.stem
)
def test_the_published_documents_hash_as_before(path: Path) -> None:
    for document in (
        codec.loads(path.read_text(encoding="utf-8")),
        json.loads(path.read_text(encoding="utf-8")),
    ):
        assert document_prehashes(document) == legacy.document_prehashes(document)


@MANY
@given(
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2}",
        fullmatch=True,
    )
    | st.datetimes(timezones=st.timezones()).map(lambda m: m.isoformat(timespec="milliseconds"))
    | st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)).map(lambda m: m.isoformat())
)
def test_times_canonicalise_as_before(text: str) -> None:
    assert canonical_time(text) == legacy.canonical_time(text)
    assert canonical_time(f" {text} ") == legacy.canonical_time(f" {text} ")


# --- the JSON writer ----------------------------------------------------------------------------------------


class _Level(IntEnum):
    HIGH = 3


class _Term(StrEnum):
    SHIPPING = "shipping"


_JSON = st.recursive(
    st.one_of(
        st.text(),
        texts(20),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.decimals(),
        st.integers(),
        st.booleans(),
        st.none(),
        st.floats(),
        st.just(_Level.HIGH),
        st.just(_Term.SHIPPING),
    ),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.just(_Term.SHIPPING) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(SETTINGS, max_examples=500)
@given(_JSON, st.sampled_from([None, 0, 2]))
def test_json_is_written_or_refused_as_before(value: Any, indent: int | None) -> None:
    assert outcome(lambda: codec.dumps(value, indent=indent)) == outcome(
        lambda: legacy.dumps(value, indent=indent)
    )


@given(st.text(alphabet="0123456789๐๑๒๓๔๕๖๗๘๙", max_size=20))
def test_check_digits_as_before(digits: str) -> None:
    assert check_digit(digits) == legacy.check_digit(digits)


@given(
    st.from_regex(r"ni:///sha-256;[0-9a-fA-F]{62,66}(\?ver=CBV2\.0)?", fullmatch=True) | st.text(max_size=90)
)
def test_hash_forms_convert_as_before(text: str) -> None:
    assert outcome(lambda: hash_hex(text)) == outcome(lambda: legacy.hash_hex(text))
