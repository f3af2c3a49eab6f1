"""The EPCIS mapping, member ordering, JSON writer and CBV 2.0 pre-hash string as they were before they were
made faster (issue 9), kept verbatim as the reference ``test_mapping_speedup.py`` compares the faster code
against: bodies and hashes are anchored on chain, so the faster code must give the very same bytes for every
event. Nothing in ``src`` imports this module.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from traceability.domain.epcis import EPCIS_CONTEXT, NS
from traceability.domain.events import (
    Certification,
    Cooling,
    Event,
    Grading,
    Harvest,
    LotQuantity,
    Packing,
    Planting,
    Quantity,
    Revocation,
    TemperatureReading,
    Transport,
)
from traceability.domain.gs1 import digital_link, gln_uri, is_gln, lot_uri
from traceability.domain.ids import HASH_PREFIX, HASH_SUFFIX

# --- epcis.py: model → EPCIS ---------------------------------------------------------------------------

_BASE = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?")
_LEGS = {"ship": ("shipping", "in_transit"), "receive": ("receiving", "in_progress")}


def _base(id_base: str) -> str:
    base = id_base.rstrip("/")
    if not _BASE.fullmatch(base):
        raise ValueError(f"id_base must be an http(s) URL without query or fragment: {id_base!r}")
    return base


def lot_class_uri(lot_code: str, *, id_base: str, gtin: str | None = None) -> str:
    """The lot as an EPC class: GS1 Digital Link with a GTIN, else an HTTP URI under ``id_base``."""
    if gtin:
        return lot_uri(gtin, lot_code)
    return f"{_base(id_base)}/lot/{lot_code}"


def place_uri(place_id: str, *, id_base: str) -> str:
    """A place: its GLN's Digital Link when the code is a GLN, else an HTTP URI under ``id_base``."""
    if is_gln(place_id):
        return gln_uri(place_id)
    return f"{_base(id_base)}/place/{place_id}"


def party_uri(party_id: str, *, id_base: str) -> str:
    return f"{_base(id_base)}/party/{party_id}"


def evidence_uri(sha256_hex: str, *, id_base: str) -> str:
    return f"{_base(id_base)}/evidence/{sha256_hex}"


def certification_uri(cert_id: str, *, id_base: str) -> str:
    return f"{_base(id_base)}/certification/{cert_id}"


def document_uri(doc_type: str, number: str, *, id_base: str) -> str:
    """A reference document (bill of lading, despatch advice, ...) as a business transaction URI."""
    return f"{_base(id_base)}/doc/{doc_type}/{number}"


def kind_uri(kind: str) -> str:
    return NS + kind


# --- model → EPCIS -----------------------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _quantity(epc_class: str, quantity: Quantity | None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": epc_class}
    if quantity is not None:
        element["quantity"] = quantity.value
        element["uom"] = quantity.uom.value
    return element


def _sensor_list(readings: Sequence[TemperatureReading]) -> list[dict[str, Any]]:
    return [
        {
            "sensorReport": [
                {"type": "Temperature", "time": _time(t.time), "value": t.celsius, "uom": "CEL"}
                for t in readings
            ]
        }
    ]


def _ilmd(crop: str, variety: str | None) -> dict[str, Any]:
    ilmd: dict[str, Any] = {"tt:crop": crop}
    if variety is not None:
        ilmd["tt:variety"] = variety
    return ilmd


def to_epcis(event: Event, *, id_base: str, gtins: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The event as an EPCIS 2.0 JSON-LD event (no ``@context``: it belongs to the enclosing document).

    ``gtins`` maps lot codes to the GTIN of their product; a packing's outputs take the packing's own GTIN.
    """
    base = _base(id_base)
    known = dict(gtins or {})

    def lot(code: str, gtin: str | None = None) -> str:
        return lot_class_uri(code, id_base=base, gtin=gtin or known.get(code))

    def lots(items: Sequence[LotQuantity], gtin: str | None = None) -> list[dict[str, Any]]:
        return [_quantity(lot(i.lot_code, gtin), i.quantity) for i in items]

    def where(place_id: str) -> dict[str, str]:
        return {"id": place_uri(place_id, id_base=base)}

    place = where(event.place.id)
    body: dict[str, Any] = {
        "type": "TransformationEvent" if isinstance(event, Packing) else "ObjectEvent",
        "eventID": f"urn:uuid:{event.event_id}",
        "eventTime": _time(event.event_time),
        "eventTimeZoneOffset": _offset(event.event_time),
    }
    ext: dict[str, Any] = {}
    if isinstance(event, Planting):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), None)],
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            readPoint=place,
            bizLocation=where(event.plot_id),
            ilmd=_ilmd(event.crop, event.variety),
        )
        ext["tt:areaRai"] = event.area_rai
        if event.authority is not None:
            ext["tt:authority"] = party_uri(event.authority, id_base=base)
    elif isinstance(event, Harvest):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), event.quantity)],
            action="ADD",
            bizStep="creating_class_instance",
            disposition="active",
            readPoint=place,
            bizLocation=where(event.plot_id),
            ilmd=_ilmd(event.crop, event.variety),
        )
    elif isinstance(event, Cooling):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), event.quantity)],
            action="OBSERVE",
            bizStep="storing",
            disposition="active",
            readPoint=place,
            bizLocation=place,
        )
        if event.temperatures:
            body["sensorElementList"] = _sensor_list(event.temperatures)
        ext["tt:coolingMethod"] = event.method.value
    elif isinstance(event, Grading):
        body.update(
            quantityList=[_quantity(lot(event.lot_code), event.quantity)],
            action="OBSERVE",
            bizStep="inspecting",
            disposition=event.disposition,
            readPoint=place,
            bizLocation=place,
        )
        ext["tt:grade"] = event.grade
    elif isinstance(event, Packing):
        body.update(
            inputQuantityList=lots(event.inputs),
            outputQuantityList=lots(event.outputs, event.gtin),
            bizStep="creating_class_instance",
            disposition="active",
            readPoint=place,
            bizLocation=place,
        )
        if event.gtin is not None:
            ext["tt:gtin"] = event.gtin
    elif isinstance(event, Transport):
        biz_step, disposition = _LEGS[event.leg]
        body.update(
            quantityList=lots(event.items),
            action="OBSERVE",
            bizStep=biz_step,
            disposition=disposition,
            readPoint=place,
        )
        if event.leg == "receive":
            body["bizLocation"] = where(event.destination)
        if event.documents:
            body["bizTransactionList"] = [
                {"type": d.type, "bizTransaction": document_uri(d.type, d.number, id_base=base)}
                for d in event.documents
            ]
        sources = [{"type": "location", "source": place_uri(event.source, id_base=base)}]
        destinations = [{"type": "location", "destination": place_uri(event.destination, id_base=base)}]
        if event.owner_from is not None and event.owner_to is not None:
            sources.append({"type": "owning_party", "source": party_uri(event.owner_from, id_base=base)})
            destinations.append(
                {"type": "owning_party", "destination": party_uri(event.owner_to, id_base=base)}
            )
        body["sourceList"] = sources
        body["destinationList"] = destinations
        if event.temperatures:
            body["sensorElementList"] = _sensor_list(event.temperatures)
        if event.vehicle is not None:
            ext["tt:vehicle"] = event.vehicle
    elif isinstance(event, Certification):
        body["certificationInfo"] = certification_uri(event.cert_id, id_base=base)
        body.update(
            quantityList=[_quantity(lot(event.lot_code), None)],
            action="OBSERVE",
            bizStep="inspecting",
            disposition="conformant",
            readPoint=place,
        )
        ext.update(
            {
                "tt:authority": party_uri(event.authority, id_base=base),
                "tt:officer": event.officer,
                "tt:standard": event.standard,
                "tt:certificateHash": event.certificate_hash,
                "tt:expires": event.expires,
                "tt:nonce": event.nonce,
                "tt:deadline": event.deadline,
                "tt:signature": event.signature,
            }
        )
    elif isinstance(event, Revocation):
        body["certificationInfo"] = certification_uri(event.cert_id, id_base=base)
        body.update(
            quantityList=[_quantity(lot(event.lot_code), None)],
            action="OBSERVE",
            bizStep="inspecting",
            disposition="non_conformant",
            readPoint=place,
        )
        ext["tt:reason"] = event.reason
    else:  # pragma: no cover - the union is exhaustive
        raise TypeError(f"not an event: {event!r}")

    body["tt:kind"] = kind_uri(event.kind)
    body["tt:actor"] = party_uri(event.actor, id_base=base)
    if event.place.lat is not None and event.place.lon is not None:
        body["tt:lat"] = event.place.lat
        body["tt:lon"] = event.place.lon
    body.update(ext)
    if event.evidence:
        body["tt:evidence"] = [evidence_uri(e, id_base=base) for e in event.evidence]
    if event.prev:
        body["tt:prev"] = [HASH_PREFIX + p.removeprefix("0x") + HASH_SUFFIX for p in event.prev]
    if event.note is not None:
        body["tt:note"] = event.note
    return body


_MEMBER_ORDER = (
    "type",
    "eventID",
    "eventTime",
    "eventTimeZoneOffset",
    "certificationInfo",
    "epcList",
    "quantityList",
    "inputQuantityList",
    "outputQuantityList",
    "action",
    "bizStep",
    "disposition",
    "readPoint",
    "bizLocation",
    "bizTransactionList",
    "sourceList",
    "destinationList",
    "sensorElementList",
    "ilmd",
)
_ORDERED_TYPED_LISTS = ("bizTransactionList", "sourceList", "destinationList")


def in_canonical_order(epcis_event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with its members in EPCIS order and ``type`` first in source/destination elements.

    Our hash does not depend on member order, but GS1's reference tool renders a bizTransaction, source or
    destination element in the order its members are written, and the CBV vectors put ``type`` first. A body
    read back from storage has sorted keys (``source`` before ``type``), so exports must pass through here
    and be written by a serialiser that keeps this order.
    """
    ordered = {k: epcis_event[k] for k in _MEMBER_ORDER if k in epcis_event}
    ordered.update((k, v) for k, v in epcis_event.items() if k not in ordered)
    for key in _ORDERED_TYPED_LISTS:
        elements = ordered.get(key)
        if isinstance(elements, list):
            ordered[key] = [
                {"type": e["type"], **e} if isinstance(e, Mapping) and "type" in e else e for e in elements
            ]
    return ordered


# --- codec.py ----------------------------------------------------------------------------------------------


def _number(d: Decimal) -> str:
    if not d.is_finite():
        raise ValueError(f"not a finite number: {d}")
    text = format(d, "f")
    return text


def _encode(value: Any, out: list[str], indent: str | None, level: int) -> None:
    if isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, bool) or value is None or isinstance(value, int | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, float):
        raise TypeError("floats are refused: use Decimal for quantities")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        items = list(value.items())
        out.append("{")
        for i, (k, v) in enumerate(items):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(": " if indent is not None else ":")
            _encode(v, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            if indent is not None:
                out.append("\n" + indent * (level + 1))
            _encode(v, out, indent, level + 1)
        if indent is not None:
            out.append("\n" + indent * level)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any, *, indent: int | None = None) -> str:
    out: list[str] = []
    _encode(value, out, " " * indent if indent is not None else None, 0)
    return "".join(out)


# --- hashing.py and ids.py ---------------------------------------------------------------------------------

# --- the canonical property order --------------------------------------------------------------------

_CBV = "https://ref.gs1.org/cbv/"
_GS1_VOC = "https://gs1.org/voc/"


@dataclass(frozen=True)
class _Vocabulary:
    """The bare terms the EPCIS 2.0.0 JSON-LD context defines for one field, and the IRI they expand to."""

    prefix: str
    terms: frozenset[str]

    def expand(self, value: str) -> str:
        return self.prefix + value if value in self.terms else value


_BIZ_STEPS = _Vocabulary(
    _CBV + "BizStep-",
    frozenset(
        "accepting arriving assembling collecting commissioning consigning creating_class_instance "
        "cycle_counting decommissioning departing destroying disassembling dispensing encoding "
        "entering_exiting holding inspecting installing killing loading other packing picking receiving "
        "removing repackaging repairing replacing reserving retail_selling sampling sensor_reporting "
        "shipping staging_outbound stock_taking stocking storing transporting unloading unpacking "
        "void_shipping".split()
    ),
)
_DISPOSITIONS = _Vocabulary(
    _CBV + "Disp-",
    frozenset(
        "active available completeness_inferred completeness_verified conformant container_closed "
        "container_open damaged destroyed dispensed disposed encoded expired in_progress in_transit "
        "inactive mismatch_class mismatch_instance mismatch_quantity needs_replacement no_pedigree_match "
        "non_conformant non_sellable_other partially_dispensed recalled reserved retail_sold returned "
        "sellable_accessible sellable_not_accessible stolen unavailable unknown".split()
    ),
)
_BIZ_TRANSACTION_TYPES = _Vocabulary(
    _CBV + "BTT-",
    frozenset("bol cert desadv inv pedigree po poc prodorder recadv rma testprd testres upevt".split()),
)
_SOURCE_DESTINATION_TYPES = _Vocabulary(
    _CBV + "SDT-", frozenset({"owning_party", "possessing_party", "location"})
)
_MEASUREMENT_TYPES = _Vocabulary(
    _GS1_VOC,
    frozenset(
        "AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Altitude AmountOfSubstance "
        "AmountOfSubstancePerUnitVolume Angle AngularAcceleration AngularMomentum AngularVelocity Area "
        "Capacitance Conductance Conductivity Count Density Dimensionless DoseEquivalent DoseEquivalentRate "
        "DynamicViscosity ElectricCharge ElectricCurrent ElectricCurrentDensity ElectricFieldStrength Energy "
        "Exposure Force Frequency Illuminance Inductance Irradiance KinematicViscosity Length LinearMomentum "
        "Luminance LuminousFlux LuminousIntensity MagneticFlux MagneticFluxDensity MagneticVectorPotential "
        "Mass MassConcentration MassFlowRate MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy "
        "MolarMass MolarVolume Power Pressure RadiantFlux RadiantIntensity Radioactivity RelativeHumidity "
        "Resistance Resistivity SolidAngle SpecificVolume Speed SurfaceDensity SurfaceTension Temperature "
        "Time Torque Voltage Volume VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber".split()
    ),
)
_SENSOR_ALERTS = _Vocabulary(_GS1_VOC, frozenset({"ALARM_CONDITION", "ERROR_CONDITION"}))
_COMPONENTS = _Vocabulary(
    _CBV + "Comp-",
    frozenset(
        "x y z axial_distance azimuth height spherical_radius polar_angle elevation_angle easting northing "
        "latitude longitude altitude".split()
    ),
)


@dataclass(frozen=True)
class _Field:
    """One member of a standard object and how its value renders.

    ``shape`` is ``value`` (scalar, or a list of scalars rendered once each), ``ids`` (a list rendered as
    ``item=`` values), ``object`` (one object rendered with ``members``), ``objects`` (a list of objects,
    each rendered under the name ``item`` with ``members``) or ``repeated`` (a list of objects, each
    rendered under the field's own name, with no wrapper).
    """

    name: str
    shape: str = "value"
    item: str = ""
    members: tuple[_Field, ...] = ()
    vocabulary: _Vocabulary | None = None
    time: bool = False
    sort_items: bool = True
    names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(m.name for m in self.members))


def _value(name: str, vocabulary: _Vocabulary | None = None, *, time: bool = False) -> _Field:
    return _Field(name, vocabulary=vocabulary, time=time)


_QUANTITY_ELEMENT = (_value("epcClass"), _value("quantity"), _value("uom"))
_SENSOR_METADATA = (
    _value("time", time=True),
    _value("startTime", time=True),
    _value("endTime", time=True),
    _value("deviceID"),
    _value("deviceMetadata"),
    _value("rawData"),
    _value("dataProcessingMethod"),
    _value("bizRules"),
)
_SENSOR_REPORT = (
    _value("type", _MEASUREMENT_TYPES),
    _value("exception", _SENSOR_ALERTS),
    _value("deviceID"),
    _value("deviceMetadata"),
    _value("rawData"),
    _value("dataProcessingMethod"),
    _value("time", time=True),
    _value("microorganism"),
    _value("chemicalSubstance"),
    _value("value"),
    _value("component", _COMPONENTS),
    _value("stringValue"),
    _value("booleanValue"),
    _value("hexBinaryValue"),
    _value("uriValue"),
    _value("minValue"),
    _value("maxValue"),
    _value("meanValue"),
    _value("sDev"),
    _value("percRank"),
    _value("percValue"),
    _value("uom"),
    _value("coordinateReferenceSystem"),
)
_EVENT_ORDER: tuple[_Field, ...] = (
    _value("eventTime", time=True),
    _value("eventTimeZoneOffset"),
    _value("certificationInfo"),
    _value("parentID"),
    _Field("epcList", "ids", "epc"),
    _Field("inputEPCList", "ids", "epc"),
    _Field("childEPCs", "ids", "epc"),
    _Field("quantityList", "objects", "quantityElement", _QUANTITY_ELEMENT),
    _Field("childQuantityList", "objects", "quantityElement", _QUANTITY_ELEMENT),
    _Field("inputQuantityList", "objects", "quantityElement", _QUANTITY_ELEMENT),
    _Field("outputEPCList", "ids", "epc"),
    _Field("outputQuantityList", "objects", "quantityElement", _QUANTITY_ELEMENT),
    _value("action"),
    _value("transformationID"),
    _value("bizStep", _BIZ_STEPS),
    _value("disposition", _DISPOSITIONS),
    _Field(
        "persistentDisposition",
        "object",
        members=(_value("set", _DISPOSITIONS), _value("unset", _DISPOSITIONS)),
    ),
    _Field("readPoint", "object", members=(_value("id"),)),
    _Field("bizLocation", "object", members=(_value("id"),)),
    _Field(
        "sensorElementList",
        "objects",
        "sensorElement",
        (
            _Field("sensorMetadata", "object", members=_SENSOR_METADATA),
            _Field("sensorReport", "repeated", members=_SENSOR_REPORT),
        ),
    ),
)
_EVENT_NAMES = frozenset(f.name for f in _EVENT_ORDER)

# bizTransactionList/sourceList/destinationList: (element's id member, vocabulary of its type).
_TYPED_LISTS: Mapping[str, tuple[str, _Vocabulary]] = {
    "bizTransactionList": ("bizTransaction", _BIZ_TRANSACTION_TYPES),
    "sourceList": ("source", _SOURCE_DESTINATION_TYPES),
    "destinationList": ("destination", _SOURCE_DESTINATION_TYPES),
}
_LEFT_OUT = frozenset({"type", "eventID", "recordTime", "errorDeclaration", "@context"})
_COMMENTS = frozenset({"comment", "rdfs:comment"})


# --- value canonicalisation ----------------------------------------------------------------------------

_CBV_URNS = (
    ("urn:epcglobal:cbv:bizstep:", _CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", _CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", _CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", _CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", _CBV + "ER-"),
)
# A decimal literal. ``\d`` is any Unicode decimal digit (Thai ๑๒๓ included): Python's float(), which the
# reference implementation uses, reads those too. "inf"/"nan" are deliberately not numbers.
_DIGITS = r"\d(?:_?\d)*"
_NUMBER = re.compile(rf"[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?")


def canonical_number(text: str) -> str | None:
    """The canonical text of a decimal literal, or None when ``text`` is not one.

    The canonical form is defined on the nearest IEEE-754 double (that is how GS1's reference implementation
    and its published vectors define it); for the decimals this service emits (at most 15 significant
    digits, magnitude at least 1e-4 when not integral) it is exactly the decimal's own digits.
    """
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range for the event hash: {text!r}")
    return str(int(number)) if number.is_integer() else repr(number)


def _canonical_value(text: str) -> str:
    text = text.strip()
    for urn, uri in _CBV_URNS:
        text = text.replace(urn, uri)
    number = canonical_number(text)
    if number is not None:
        text = number
    return digital_link(text) or text


_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)",
    re.ASCII,
)


def canonical_time(text: str) -> str:
    """``text`` as UTC with millisecond precision and ``Z``; returned unchanged when it is not a timestamp."""
    text = text.strip()
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        return text
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    offset = timedelta(0) if zulu else timedelta(hours=int(off_h), minutes=int(off_m or 0))
    micros = int((fraction or "")[:6].ljust(6, "0"))
    millis, rest = divmod(micros, 1000)
    if rest > 500 or (rest == 500 and millis % 2 == 1):
        millis += 1
    try:
        zone = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=zone
        )
        moment = (moment + timedelta(milliseconds=millis)).astimezone(UTC)
    except (ValueError, OverflowError):
        return text  # not a real moment (month 13, offset +99:00, ...): written as given
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


# --- rendering ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Names:
    """Namespace prefixes the document's own ``@context`` declares, and the extension names to leave out."""

    prefixes: Mapping[str, str]
    ignored: frozenset[str]

    @classmethod
    def of(cls, context: object, ignore: Iterable[str]) -> _Names:
        ignore = tuple(ignore)
        prefixes: dict[str, str] = {}
        for entry in context if isinstance(context, list) else [context]:
            if isinstance(entry, Mapping):
                prefixes.update((k, v) for k, v in entry.items() if isinstance(k, str) and isinstance(v, str))
        names = cls(prefixes, frozenset())
        return cls(prefixes, frozenset(ignore) | frozenset(names.key(n) for n in ignore))

    def key(self, name: str) -> str:
        prefix, colon, local = name.partition(":")
        return f"{{{self.prefixes[prefix]}}}{local}" if colon and prefix in self.prefixes else name

    def curie(self, value: str) -> str:
        prefix, colon, local = value.partition(":")
        return self.prefixes[prefix] + local if colon and prefix in self.prefixes else value


def _scalar_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise ValueError(f"unsupported value in an event: {value!r}")


def _render_value(spec: _Field, raw: object, names: _Names) -> str:
    text = _scalar_text(raw)
    if text is None:
        return ""
    if spec.vocabulary is not None:
        text = spec.vocabulary.expand(text)
    text = names.curie(text)
    text = canonical_time(text) if spec.time else _canonical_value(text)
    return f"{spec.name}={text}" if text else ""


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _render_field(spec: _Field, value: object, names: _Names) -> str:
    if spec.shape == "value":
        if isinstance(value, Mapping):
            raise ValueError(f"{spec.name}: an object where a value was expected")
        return "".join(sorted(_render_value(spec, v, names) for v in _as_list(value)))
    if spec.shape == "ids":
        item = _value(spec.item)
        content = "".join(sorted(_render_value(item, v, names) for v in _as_list(value)))
    elif spec.shape == "object":
        content = _render_members(spec, value, names)
    else:
        rendered = [_render_members(spec, v, names) for v in _as_list(value)]
        if spec.shape == "repeated":
            return "".join(sorted(spec.name + r for r in rendered if r))
        content = "".join(sorted(spec.item + r for r in rendered if r))
    return spec.name + content if content else ""


def _render_members(spec: _Field, value: object, names: _Names) -> str:
    if not isinstance(value, Mapping):
        raise ValueError(f"{spec.name}: expected an object, got {value!r}")
    ordered = "".join(_render_field(m, value[m.name], names) for m in spec.members if m.name in value)
    extensions = sorted(s for k, v in value.items() if k not in spec.names for s in _generic(k, v, names))
    return ordered + "".join(extensions)


def _generic(key: str, value: object, names: _Names) -> Iterator[str]:
    """Strings for one member outside the canonical order (an array gives one per element)."""
    if key in _COMMENTS or value is None:
        return
    name = names.key(key)
    for item in _as_list(value):
        if isinstance(item, list):
            raise ValueError(f"{key}: nested arrays are not supported in the event hash")
        if isinstance(item, Mapping):
            parts = sorted(s for k, v in item.items() for s in _generic(k, v, names))
            yield name + "".join(parts)
        elif item is not None:
            text = _scalar_text(item) or ""
            text = _canonical_value(names.curie(text)) if text.strip() else ""
            yield f"{name}={text}" if text else name


def _render_typed_list(key: str, value: object, names: _Names) -> str:
    id_name, vocabulary = _TYPED_LISTS[key]
    items = []
    for element in _as_list(value):
        if not isinstance(element, Mapping):
            raise ValueError(f"{key}: expected objects, got {element!r}")
        parts = []
        if element.get("type") is not None:
            parts.append(_render_value(_value("type", vocabulary), element["type"], names))
        if element.get(id_name) is not None:
            parts.append(_render_value(_value(id_name), element[id_name], names))
        rest = (s for k, v in element.items() if k not in ("type", id_name) for s in _generic(k, v, names))
        items.append("".join(parts) + "".join(sorted(rest)))
    return key + "".join(sorted(items))


def _prehash(event: Mapping[str, Any], names: _Names) -> str:
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError("an EPCIS event needs its 'type'")
    ordered = "".join(_render_field(f, event[f.name], names) for f in _EVENT_ORDER if f.name in event)
    rest: list[str] = []
    for key, value in event.items():
        if key in _EVENT_NAMES or key in _LEFT_OUT or key in names.ignored or names.key(key) in names.ignored:
            continue
        if key in _TYPED_LISTS:
            if value:
                rest.append(_render_typed_list(key, value, names))
        else:
            rest.extend(_generic(key, value, names))
    return f"eventType={event_type}{ordered}{''.join(sorted(rest))}"


# --- public API -------------------------------------------------------------------------------------------


def prehash_string(
    epcis_event: Mapping[str, Any], context: object = EPCIS_CONTEXT, *, ignore: Collection[str] = ()
) -> str:
    """The canonical pre-hash string of one EPCIS 2.0 event (JSON-LD form, as in an ``eventList``).

    ``context`` is the ``@context`` of the document the event belongs to (its declared prefixes name the
    extensions); ``ignore`` names top-level extension members to leave out (``ignoreFields``).
    Numbers may be ``int``, ``Decimal`` or ``float``; parse stored bodies with ``parse_float=Decimal``.
    """
    return _prehash(epcis_event, _Names.of(context, ignore))


def event_hash(
    epcis_event: Mapping[str, Any], context: object = EPCIS_CONTEXT, *, ignore: Collection[str] = ()
) -> str:
    """The event's CBV 2.0 Event Hash ID: ``ni:///sha-256;<64 hex>?ver=CBV2.0``."""
    prehash = prehash_string(epcis_event, context, ignore=ignore)
    return HASH_PREFIX + hashlib.sha256(prehash.encode("utf-8")).hexdigest() + HASH_SUFFIX


def _document_parts(document: Mapping[str, Any]) -> tuple[Sequence[Mapping[str, Any]], frozenset[str]]:
    def ignore_fields(node: Mapping[str, Any]) -> set[str]:
        found: set[str] = set()
        for key, value in node.items():
            if key == "ignoreFields" or key.endswith(":ignoreFields"):
                found.update(v for v in _as_list(value) if isinstance(v, str))
        return found

    body = document.get("epcisBody")
    if not isinstance(body, Mapping):
        raise ValueError("not an EPCIS document: no epcisBody")
    ignored = ignore_fields(document)
    if "eventList" in body:
        events = body["eventList"]
    elif "event" in body:
        events = [body["event"]]
    elif isinstance(body.get("queryResults"), Mapping):
        results = body["queryResults"]
        ignored |= ignore_fields(results)
        events = results.get("resultsBody", {}).get("eventList", [])
    else:
        raise ValueError("no events in this EPCIS document")
    return list(events), frozenset(ignored)


def document_prehashes(document: Mapping[str, Any]) -> list[str]:
    """Pre-hash strings of every event of an ``EPCISDocument`` or ``EPCISQueryDocument``, in order.

    A document-level (or query-results-level) ``ignoreFields`` member, in any namespace, lists extension
    members left out of every event's hash, as GS1's reference implementation's examples use it.
    """
    events, ignored = _document_parts(document)
    names = _Names.of(document.get("@context", []), ignored)
    return [_prehash(event, names) for event in events]


_HEX64 = re.compile(r"[0-9a-f]{64}")


def hash_hex(ni: str) -> str:
    """``0x<64 hex>`` for a CBV 2.0 Event Hash ID (the form anchored on chain)."""
    return "0x" + hash_bytes(ni).hex()


def hash_bytes(ni_or_hex: str) -> bytes:
    """The 32 digest bytes of an Event Hash ID, or of its ``0x`` hex form."""
    text = ni_or_hex.strip()
    if text.startswith(HASH_PREFIX):
        digest = text[len(HASH_PREFIX) :].split("?", 1)[0]
        if text[len(HASH_PREFIX) + len(digest) :] not in ("", HASH_SUFFIX):
            raise ValueError(f"not a CBV 2.0 event hash: {ni_or_hex!r}")
    elif text[:2] in ("0x", "0X"):
        digest = text[2:]
    else:
        raise ValueError(f"not an event hash: {ni_or_hex!r}")
    digest = digest.lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"not a SHA-256 digest: {ni_or_hex!r}")
    return bytes.fromhex(digest)


# --- gs1.py ------------------------------------------------------------------------------------------------


def check_digit(digits: str) -> int:
    """GS1 mod-10 check digit of a key without its check digit (weights 3, 1, 3, ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return -total % 10
