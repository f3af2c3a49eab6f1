"""CBV 2.0 Event Hash ID of an EPCIS 2.0 event (GS1 CBV 2.0, section 8.9 "Event hash").

The ID is ``"ni:///sha-256;" + sha256(P).hexdigest() + "?ver=CBV2.0"``, where ``P`` is the UTF-8 encoding of
the event's *pre-hash string*. The pre-hash string is built from the event's JSON-LD form, with no
separator anywhere, as:

1. ``eventType=`` and the event's ``type`` (``ObjectEvent``, ``TransformationEvent``, ...).
2. The standard fields present, in this order::

       eventTime  eventTimeZoneOffset  certificationInfo  parentID  epcList  inputEPCList  childEPCs
       quantityList  childQuantityList  inputQuantityList  outputEPCList  outputQuantityList  action
       transformationID  bizStep  disposition  persistentDisposition  readPoint  bizLocation
       sensorElementList

   A plain field renders as ``name=value``; repeated values (``certificationInfo`` given as a list) render
   once each, sorted. An identifier list renders as its name followed by ``epc=<value>`` for each element,
   sorted (``childEPCs`` likewise). A quantity list renders as its name followed by, for each element
   (sorted), ``quantityElement`` + ``epcClass=...`` + ``quantity=...`` + ``uom=...``.
   ``persistentDisposition`` renders its ``set=`` values (sorted), then its ``unset=`` values (sorted).
   ``readPoint``/``bizLocation`` render as the name + ``id=...``. ``sensorElementList`` renders its name
   followed by each element (sorted) as ``sensorElement`` + ``sensorMetadata`` (fields ``time startTime
   endTime deviceID deviceMetadata rawData dataProcessingMethod bizRules``) + each ``sensorReport``
   (sorted; fields ``type exception deviceID deviceMetadata rawData dataProcessingMethod time
   microorganism chemicalSubstance value component stringValue booleanValue hexBinaryValue uriValue
   minValue maxValue meanValue sDev percRank percValue uom coordinateReferenceSystem``).
   Inside any of these objects, members not in its field list (user extensions) follow its ordered
   fields, rendered as in 3. and sorted. A container whose content renders empty is left out.
3. Every other member of the event, each rendered as a string and all of them sorted: ``ilmd``, user
   extensions and ``bizTransactionList``/``sourceList``/``destinationList``. The three lists render as
   their name + each element (sorted) as ``type=<type>`` then ``bizTransaction=``/``source=``/
   ``destination=<id>``. Anything else renders generically: the member's name (a CURIE ``p:local`` whose
   prefix ``p`` the document's ``@context`` declares becomes ``{<namespace IRI>}local``), then ``=value``
   for a non-empty scalar, or the rendering of its members, sorted, for an object; an array renders one
   such string per element under the same name.

Left out entirely: ``eventID``, ``recordTime``, ``errorDeclaration``, ``type`` (already in 1.) and
``@context``, and anywhere in the event any member named ``comment`` or ``rdfs:comment``. JSON ``null``
is treated as absent. "Sorted" means ordered by Unicode code point, which is also UTF-8 byte order.

Values are canonicalised before they are written:

* Time fields (``eventTime`` and the sensor ``time``/``startTime``/``endTime``) become UTC with millisecond
  precision and a ``Z``: ``2023-02-02T10:04:03.142Z`` (fraction digits beyond the sixth are dropped, then
  the microseconds are rounded half to even to milliseconds). A time without a zone is written as given.
* Bare vocabulary terms become their web URIs: ``bizStep`` → ``https://ref.gs1.org/cbv/BizStep-<term>``,
  ``disposition`` and ``persistentDisposition`` → ``…/Disp-<term>``, bizTransaction ``type`` →
  ``…/BTT-``, source/destination ``type`` → ``…/SDT-``, sensor ``component`` → ``…/Comp-``, sensor
  ``type`` and ``exception`` → ``https://gs1.org/voc/<term>``; only the terms the EPCIS 2.0.0 JSON-LD
  context defines for that field are expanded. A value ``p:rest`` whose prefix ``p`` the document's
  ``@context`` declares (in one of its objects) is expanded to ``<namespace IRI>rest``, in any field.
* Every other value is stripped of surrounding white space; the old CBV URN prefixes
  ``urn:epcglobal:cbv:bizstep:|disp:|btt:|sdt:|er:`` are rewritten to ``https://ref.gs1.org/cbv/BizStep-|
  Disp-|BTT-|SDT-|ER-`` wherever they occur; a number (a JSON number, or a string that is a decimal
  literal: optional sign, decimal digits of any script with single ``_`` between digits, optional
  fraction and exponent)
  becomes the shortest text that round-trips its nearest IEEE-754 double, written as an integer when it
  is integral (``452.0`` → ``452``, ``12.10`` → ``12.1``, ``0.00001`` → ``1e-05``); and an EPC URI or a
  GS1 Digital Link URI becomes the constrained canonical Digital Link URI (``https://id.gs1.org/...``,
  lowest identification level, no query string). Booleans are ``true``/``false``.

This reproduces the published CBV 2.0 vectors and, for every event this service emits, the reference
implementation (PyPI ``epcis-event-hash-generator`` 1.9.3). Where that implementation relies on heuristics
we do not copy them, and make sure they never matter for our events:

(a) it expands any string anywhere in a document that equals the tail of a CBV URI used anywhere in that
    document (a note reading ``packing``), where we expand only the vocabulary fields above; the event
    models refuse such text (``traceability.domain.events``);
(b) it crashes on a value that reads as an infinite number (``inf``, ``1e999``), where we raise
    ``ValueError`` or, for the words, keep the text; the event models refuse such text;
(c) it recognises user extensions nested in a standard object only when their namespace ends in ``/``,
    where we treat all of them alike; our events put every extension at the top level;
(d) it renders a bizTransaction/source/destination element in the order its members are written, where
    we always render ``type`` first, as the vectors do; ``epcis.epcis_document`` writes ``type`` first,
    and an export must keep that member order (a serialiser that sorts keys puts ``source`` first).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from traceability.domain.epcis import EPCIS_CONTEXT
from traceability.domain.gs1 import digital_link
from traceability.domain.ids import HASH_PREFIX, HASH_SUFFIX, hash_bytes, hash_hex, hash_ni

__all__ = [
    "HASH_PREFIX",
    "HASH_SUFFIX",
    "canonical_number",
    "canonical_time",
    "document_hashes",
    "document_prehashes",
    "event_hash",
    "hash_bytes",
    "hash_hex",
    "hash_ni",
    "prehash_string",
]


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
    label: str = field(init=False)  # ``name=``, the prefix of a rendered value
    item_field: _Field | None = field(init=False)  # how an ``ids`` list renders each element
    index: Mapping[str, tuple[int, _Field]] = field(init=False)  # member name → (its place, its field)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self.name + "=")
        object.__setattr__(self, "item_field", _Field(self.item) if self.shape == "ids" else None)
        object.__setattr__(self, "index", {m.name: (i, m) for i, m in enumerate(self.members)})


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
_EVENT_INDEX = {f.name: (i, f) for i, f in enumerate(_EVENT_ORDER)}

# bizTransactionList/sourceList/destinationList: (element's id member, how its type and its id render).
_TYPED_LISTS: Mapping[str, tuple[str, _Field, _Field]] = {
    "bizTransactionList": (
        "bizTransaction",
        _value("type", _BIZ_TRANSACTION_TYPES),
        _value("bizTransaction"),
    ),
    "sourceList": ("source", _value("type", _SOURCE_DESTINATION_TYPES), _value("source")),
    "destinationList": ("destination", _value("type", _SOURCE_DESTINATION_TYPES), _value("destination")),
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


_CBV_URN = "urn:epcglobal:cbv:"  # what every one of the old CBV URN prefixes starts with
_NUMBER_SIGNS = frozenset("+-.")
_DIGITAL_LINK_STARTS = ("http", "urn:epc:")  # ``digital_link`` is None for any other text
_CANONICAL_LONGEST = 160


def _canonical_value(text: str) -> str:
    return _canonicalise(text) if len(text) > _CANONICAL_LONGEST else _canonical_short(text)


def _canonicalise(text: str) -> str:
    text = text.strip()
    if _CBV_URN in text:
        for urn, uri in _CBV_URNS:
            text = text.replace(urn, uri)
    # Each test below is the cheap necessary condition of the step it guards (a decimal literal starts
    # with a sign, a point or a decimal digit, which is what ``\d`` and str.isdecimal both mean), so text
    # that cannot be a number or a Digital Link skips the regular expressions.
    first = text[:1]
    if first and (first in _NUMBER_SIGNS or first.isdecimal()):
        number = canonical_number(text)
        if number is not None:
            return number  # digital_link() of a number is None
    if "." in text and text.startswith(_DIGITAL_LINK_STARTS):
        return digital_link(text) or text
    return text


_canonical_short = lru_cache(maxsize=1 << 14)(_canonicalise)
"""Canonical forms of the values met lately. Most values of an event come back event after event (terms,
units, the actor, places, lots with their GTIN, common quantities), and a Digital Link takes many regular
expressions to canonicalise. Long text (notes) is not kept."""


_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)",
    re.ASCII,
)


_ISO_MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", re.ASCII)
"""The form every time this service writes has (``isoformat(timespec="milliseconds")``)."""


def canonical_time(text: str) -> str:
    """``text`` as UTC with millisecond precision and ``Z``; returned unchanged when it is not a timestamp."""
    text = text.strip()
    if (
        _ISO_MILLIS.fullmatch(text)
        and "0001" < text[:4] < "9999"
        and text[11:13] < "24"  # an hour 24 is no time here (Python 3.12's parser reads it as midnight)
        and text[-5:-3] < "24"
        and text[-2:] < "60"
    ):
        # What the general way below computes, by the C parser: whole milliseconds need no rounding, and
        # with the year away from 1 and 9999 and a valid offset only a wrong date or time can fail.
        try:
            moment = datetime.fromisoformat(text).astimezone(UTC)
        except ValueError:
            return _general_time(text)
        return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
    return _general_time(text)


def _general_time(text: str) -> str:
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
    curies: tuple[str, ...] = field(init=False)  # ``p:`` for each prefix ``p``: what a CURIE starts with
    keys: dict[str, str] = field(init=False, compare=False)  # member name → its key(), as met

    def __post_init__(self) -> None:
        # ``partition(":")`` splits at the first colon, so a prefix with a colon of its own never matches.
        object.__setattr__(self, "curies", tuple(p + ":" for p in self.prefixes if ":" not in p))
        object.__setattr__(self, "keys", {})

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
        known = self.keys.get(name)
        if known is not None:
            return known
        prefix, colon, local = name.partition(":")
        key = f"{{{self.prefixes[prefix]}}}{local}" if colon and prefix in self.prefixes else name
        if len(self.keys) < _KEYS_KEPT:
            self.keys[name] = key
        return key

    def curie(self, value: str) -> str:
        if not value.startswith(self.curies):
            return value
        prefix, _, local = value.partition(":")
        return self.prefixes[prefix] + local


_KEYS_KEPT = 1024  # member names remembered per context: a few dozen in practice, bounded against odd input
_DEFAULT_NAMES = _Names.of(EPCIS_CONTEXT, ())
"""The names of the context every event of this service is hashed in, made once (with the names met)."""


def _names(context: object, ignore: Collection[str]) -> _Names:
    return _DEFAULT_NAMES if context is EPCIS_CONTEXT and not ignore else _Names.of(context, ignore)


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
    text = raw if type(raw) is str else _scalar_text(raw)
    if text is None:
        return ""
    vocabulary = spec.vocabulary
    if vocabulary is not None and text in vocabulary.terms:
        text = vocabulary.prefix + text
    if names.curies and text.startswith(names.curies):
        text = names.curie(text)
    if spec.time:
        text = canonical_time(text)
    else:
        text = _canonical_short(text) if len(text) <= _CANONICAL_LONGEST else _canonicalise(text)
    return spec.label + text if text else ""


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _render_field(spec: _Field, value: object, names: _Names) -> str:
    shape = spec.shape
    if shape == "value":
        if type(value) in _SCALARS:
            return _render_value(spec, value, names)
        if isinstance(value, list):
            return "".join(sorted([_render_value(spec, v, names) for v in value]))
        if isinstance(value, Mapping):
            raise ValueError(f"{spec.name}: an object where a value was expected")
        return _render_value(spec, value, names)
    if shape == "ids":
        item = spec.item_field
        assert item is not None
        content = "".join(sorted([_render_value(item, v, names) for v in _as_list(value)]))
    elif shape == "object":
        content = _render_members(spec, value, names)
    else:
        rendered = [_render_members(spec, v, names) for v in _as_list(value)]
        if shape == "repeated":
            return "".join(sorted([spec.name + r for r in rendered if r]))
        content = "".join(sorted([spec.item + r for r in rendered if r]))
    return spec.name + content if content else ""


_SCALARS = frozenset({str, Decimal, int})


def _in_order(
    value: Mapping[str, Any], index: Mapping[str, tuple[int, _Field]], names: _Names, extensions: list[str]
) -> str:
    """The members ``index`` knows, rendered in its order; the rendering of every other member is added to
    ``extensions``. One pass over the members present, rather than a look-up per member the standard has."""
    ordered: list[tuple[int, str]] = []
    for key, member in value.items():
        known = index.get(key)
        if known is None:
            extensions.extend(_generic(key, member, names))
        elif known[1].shape == "value" and type(member) in _SCALARS:
            ordered.append((known[0], _render_value(known[1], member, names)))
        else:
            ordered.append((known[0], _render_field(known[1], member, names)))
    ordered.sort()  # on the places alone: no two members share one
    return "".join([text for _, text in ordered])


def _render_members(spec: _Field, value: object, names: _Names) -> str:
    if type(value) is not dict and not isinstance(value, Mapping):
        raise ValueError(f"{spec.name}: expected an object, got {value!r}")
    extensions: list[str] = []
    ordered = _in_order(value, spec.index, names, extensions)
    if not extensions:
        return ordered
    extensions.sort()
    return ordered + "".join(extensions)


def _generic(key: str, value: object, names: _Names) -> list[str]:
    """Strings for one member outside the canonical order (an array gives one per element)."""
    if key in _COMMENTS or value is None:
        return []
    name = names.keys.get(key) or names.key(key)
    out = []
    for item in value if isinstance(value, list) else (value,):
        if type(item) is str:
            if names.curies and item.startswith(names.curies):
                item = names.curie(item)
            text = _canonical_value(item)  # "" for blank text
            out.append(name + "=" + text if text else name)
        elif isinstance(item, list):
            raise ValueError(f"{key}: nested arrays are not supported in the event hash")
        elif type(item) is dict or isinstance(item, Mapping):
            parts = sorted([s for k, v in item.items() for s in _generic(k, v, names)])
            out.append(name + "".join(parts))
        elif item is not None:
            text = _scalar_text(item) or ""
            text = _canonical_value(names.curie(text)) if text.strip() else ""
            out.append(name + "=" + text if text else name)
    return out


def _render_typed_list(key: str, value: object, names: _Names) -> str:
    id_name, type_field, id_field = _TYPED_LISTS[key]
    items = []
    for element in _as_list(value):
        if type(element) is not dict and not isinstance(element, Mapping):
            raise ValueError(f"{key}: expected objects, got {element!r}")
        parts = []
        if element.get("type") is not None:
            parts.append(_render_value(type_field, element["type"], names))
        if element.get(id_name) is not None:
            parts.append(_render_value(id_field, element[id_name], names))
        rest = sorted(
            [s for k, v in element.items() if k != "type" and k != id_name for s in _generic(k, v, names)]
        )
        items.append("".join(parts) + "".join(rest))
    items.sort()
    return key + "".join(items)


def _prehash(event: Mapping[str, Any], names: _Names) -> str:
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError("an EPCIS event needs its 'type'")
    ignored = names.ignored
    ordered: list[tuple[int, str]] = []
    rest: list[str] = []
    for key, value in event.items():
        known = _EVENT_INDEX.get(key)
        if known is not None:
            ordered.append((known[0], _render_field(known[1], value, names)))
        elif key in _LEFT_OUT or (ignored and (key in ignored or names.key(key) in ignored)):
            continue
        elif key in _TYPED_LISTS:
            if value:
                rest.append(_render_typed_list(key, value, names))
        else:
            rest.extend(_generic(key, value, names))
    ordered.sort()  # on the places alone: no two members share one
    rest.sort()
    return f"eventType={event_type}{''.join([text for _, text in ordered])}{''.join(rest)}"


# --- public API -------------------------------------------------------------------------------------------


def prehash_string(
    epcis_event: Mapping[str, Any], context: object = EPCIS_CONTEXT, *, ignore: Collection[str] = ()
) -> str:
    """The canonical pre-hash string of one EPCIS 2.0 event (JSON-LD form, as in an ``eventList``).

    ``context`` is the ``@context`` of the document the event belongs to (its declared prefixes name the
    extensions); ``ignore`` names top-level extension members to leave out (``ignoreFields``).
    Numbers may be ``int``, ``Decimal`` or ``float``; parse stored bodies with ``parse_float=Decimal``.
    """
    return _prehash(epcis_event, _names(context, ignore))


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


def document_hashes(document: Mapping[str, Any]) -> list[str]:
    """CBV 2.0 Event Hash IDs of every event of an EPCIS document, in order."""
    return [
        HASH_PREFIX + hashlib.sha256(p.encode("utf-8")).hexdigest() + HASH_SUFFIX
        for p in document_prehashes(document)
    ]
