"""Traceability events: one immutable pydantic model per kind, validated where data enters the system.

Every event names parties and places by pseudonymous codes (``F-0001``, ``PLOT-NSN-01``): no names or phone
numbers ever go into an event (Thailand's PDPA). Quantities are ``Decimal`` and floats are refused, because a
binary float cannot hold ``0.1`` kg and a hash of a rounded number proves nothing. Free text (notes, grades,
varieties, reasons) is Thai first-class: it is stripped and NFC-normalised, and control characters are
refused.

Each event is hashed in its EPCIS form (``traceability.domain.epcis``) with the CBV 2.0 algorithm, and an
importer will recompute that hash with GS1's reference tool. That tool rewrites a few exact strings wherever
they occur, so free text that *is* one of them is refused here (see ``_check_text``); this is what makes our
hash and the importer's agree for every event accepted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from eth_utils.address import is_checksum_address
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

from traceability.domain.gs1 import check_digit, gtin14

LOT_CODE_RE = r"^[A-Z0-9][A-Z0-9-]{3,18}[A-Z0-9]$"
"""A lot code: 5 to 20 characters, so it fits GS1 AI (10) and a Digital Link URI without escaping."""
PARTY_RE = r"^[A-Z0-9][A-Z0-9-]{1,30}$"
PLACE_RE = r"^[A-Z0-9][A-Z0-9-]{1,30}$"
"""A place code, or a GLN (13 digits with a valid GS1 check digit), which EPCIS then names by its Digital Link
``https://id.gs1.org/414/{GLN}`` instead of a URI under the identifier base."""
DOC_NUMBER_RE = r"^[A-Z0-9][A-Z0-9.-]{0,39}$"
CROP_RE = r"^[a-z][a-z0-9-]{1,39}$"
HASH_HEX_RE = r"^0x[0-9a-f]{64}$"
SHA256_HEX_RE = r"^[0-9a-f]{64}$"
ADDRESS_RE = r"^0x[0-9a-f]{40}$"
SIGNATURE_RE = r"^0x[0-9a-f]{130}$"

EVENT_KINDS: tuple[str, ...] = (
    "planting",
    "harvest",
    "cooling",
    "grading",
    "packing",
    "transport",
    "certification",
    "revocation",
)

MAX_KG = Decimal(10_000_000)
MAX_SAFE_INTEGER = 2**53 - 1
"""Integers above this are not exact in JSON readers that use doubles, nor in the event hash."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=5)
MAX_EVIDENCE = 10
MAX_PREV = 250  # one per lot touched: a packing has at most 50 inputs and 200 outputs


# --- codes -----------------------------------------------------------------------------------------------


def _code(upper: bool) -> Callable[[Any], Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value.upper() if upper else value.lower()
        return value

    return clean


def _gln_if_digits(value: str) -> str:
    if len(value) == 13 and value.isdigit() and check_digit(value[:12]) != int(value[12]):
        raise ValueError(f"{value} looks like a GLN but its check digit is wrong")
    return value


LotCode = Annotated[str, BeforeValidator(_code(upper=True)), StringConstraints(pattern=LOT_CODE_RE)]
PartyCode = Annotated[str, BeforeValidator(_code(upper=True)), StringConstraints(pattern=PARTY_RE)]
PlaceCode = Annotated[
    str,
    BeforeValidator(_code(upper=True)),
    StringConstraints(pattern=PLACE_RE),
    AfterValidator(_gln_if_digits),
]
DocNumber = Annotated[str, BeforeValidator(_code(upper=True)), StringConstraints(pattern=DOC_NUMBER_RE)]
HashHex = Annotated[str, BeforeValidator(_code(upper=False)), StringConstraints(pattern=HASH_HEX_RE)]
Sha256Hex = Annotated[str, BeforeValidator(_code(upper=False)), StringConstraints(pattern=SHA256_HEX_RE)]
Signature = Annotated[str, BeforeValidator(_code(upper=False)), StringConstraints(pattern=SIGNATURE_RE)]


def _gtin(value: Any) -> Any:
    if isinstance(value, str):
        return gtin14(value)
    raise ValueError("a GTIN is a string of digits (leading zeros matter)")


Gtin = Annotated[str, BeforeValidator(_gtin)]


def _address(value: Any) -> Any:
    """An Ethereum address, lower-cased; a mixed-case one must carry a valid EIP-55 checksum."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        raise ValueError("an address is 0x and 40 hex digits")
    hex_part = text[2:]
    if hex_part != hex_part.lower() and hex_part != hex_part.upper() and not is_checksum_address(text):
        raise ValueError("address checksum (EIP-55) does not match")
    return text.lower()


Address = Annotated[str, BeforeValidator(_address), StringConstraints(pattern=ADDRESS_RE)]

SafeInt = Annotated[int, Field(ge=0, le=MAX_SAFE_INTEGER)]


# --- free text ---------------------------------------------------------------------------------------------

# Characters that would let text hide or reorder what a buyer reads on a provenance page.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

# The GS1 vocabulary URIs our EPCIS form uses (traceability.domain.epcis). GS1's reference hash tool
# (epcis-event-hash-generator) replaces any string in a document that equals what follows a '-' or '/' in one
# of them (for example "packing", "Temperature", "Disp-active") with the whole URI, even inside a note, so
# such text would hash differently there than here. A test keeps this list in step with the mapping.
GS1_TERMS_USED: tuple[str, ...] = (
    "https://ref.gs1.org/cbv/BizStep-commissioning",
    "https://ref.gs1.org/cbv/BizStep-creating_class_instance",
    "https://ref.gs1.org/cbv/BizStep-inspecting",
    "https://ref.gs1.org/cbv/BizStep-storing",
    "https://ref.gs1.org/cbv/BizStep-shipping",
    "https://ref.gs1.org/cbv/BizStep-receiving",
    "https://ref.gs1.org/cbv/Disp-active",
    "https://ref.gs1.org/cbv/Disp-conformant",
    "https://ref.gs1.org/cbv/Disp-non_conformant",
    "https://ref.gs1.org/cbv/Disp-in_transit",
    "https://ref.gs1.org/cbv/Disp-in_progress",
    "https://ref.gs1.org/cbv/SDT-location",
    "https://ref.gs1.org/cbv/SDT-owning_party",
    "https://ref.gs1.org/cbv/BTT-bol",
    "https://ref.gs1.org/cbv/BTT-desadv",
    "https://ref.gs1.org/cbv/BTT-recadv",
    "https://ref.gs1.org/cbv/BTT-po",
    "https://ref.gs1.org/cbv/BTT-inv",
    "https://ref.gs1.org/cbv/BTT-cert",
    "https://ref.gs1.org/cbv/BTT-testres",
    "https://gs1.org/voc/Temperature",
)
_RESERVED_TEXT = frozenset(uri[i + 1 :] for uri in GS1_TERMS_USED for i, c in enumerate(uri) if c in "-/")
# The namespace prefix our EPCIS documents declare: the reference tool expands text starting "tt:" as a CURIE.
_DECLARED_PREFIXES = ("tt:",)


def _normalise_text(value: Any) -> Any:
    return unicodedata.normalize("NFC", value).strip() if isinstance(value, str) else value


def _check_text(value: str) -> str:
    # Printable ASCII (most codes and numbers) holds no control, format or bidi character: no need to look.
    for ch in value if not (value.isascii() and value.isprintable()) else ():
        if unicodedata.category(ch) in _REFUSED_CATEGORIES or ch in _BIDI_CONTROLS:
            raise ValueError(f"control character U+{ord(ch):04X} is not allowed in text")
    if value in _RESERVED_TEXT:
        raise ValueError(f"'{value}' alone is a GS1 vocabulary term; please add a word")
    if value.startswith(_DECLARED_PREFIXES):
        raise ValueError("text may not start with 'tt:'")
    try:
        infinite = abs(float(value)) == float("inf")
    except ValueError:
        infinite = False
    if infinite:
        # GS1's reference hash tool crashes on a value it reads as an infinite number.
        raise ValueError(f"'{value}' alone cannot be hashed by GS1's reference tool; please add a word")
    return value


CropCode = Annotated[
    str, BeforeValidator(_code(upper=False)), StringConstraints(pattern=CROP_RE), AfterValidator(_check_text)
]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Grade = Annotated[
    str,
    BeforeValidator(_normalise_text),
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_check_text),
]
Variety = Annotated[
    str,
    BeforeValidator(_normalise_text),
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_check_text),
]
Vehicle = Annotated[
    str,
    BeforeValidator(_normalise_text),
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_check_text),
]
Standard = Annotated[
    str,
    BeforeValidator(_normalise_text),
    StringConstraints(min_length=1, max_length=80),
    AfterValidator(_check_text),
]
Reason = Annotated[
    str,
    BeforeValidator(_normalise_text),
    StringConstraints(min_length=1, max_length=300),
    AfterValidator(_check_text),
]
NoteText = Annotated[
    str,
    BeforeValidator(_normalise_text),
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(_check_text),
]


# --- numbers ------------------------------------------------------------------------------------------------


def _exact_decimal(value: Any) -> Any:
    """A finite ``Decimal`` from str, int or Decimal in its shortest exact form; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError('send numbers as decimal strings such as "12.5", not as floating point')
    if isinstance(value, str):
        if len(value) > 40:
            raise ValueError("number is too long")
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    elif isinstance(value, int):
        value = Decimal(value)
    elif not isinstance(value, Decimal):
        raise ValueError("expected a decimal number")
    if not value.is_finite():
        raise ValueError("number must be finite")
    if value.adjusted() > 15:
        raise ValueError("number is too large")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    kept = list(digits)
    # Drop trailing fractional zeros and write integers without an exponent, without touching the
    # decimal context (whose precision would round long numbers).
    while exponent < 0 and len(kept) > 1 and kept[-1] == 0:
        kept.pop()
        exponent += 1
    if exponent > 0:
        kept.extend([0] * exponent)
        exponent = 0
    if not any(kept):
        return Decimal(0)
    return Decimal((sign, tuple(kept), exponent))


def _places(n: int) -> Callable[[Decimal], Decimal]:
    def check(value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > n:
            raise ValueError(f"at most {n} decimal places")
        return value

    return check


def _between(low: Decimal, high: Decimal) -> Callable[[Decimal], Decimal]:
    def check(value: Decimal) -> Decimal:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return check


class MassUnit(StrEnum):
    """UN/CEFACT Recommendation 20 codes, as EPCIS ``uom`` expects."""

    KGM = "KGM"
    GRM = "GRM"
    TNE = "TNE"

    def to_kg(self, value: Decimal) -> Decimal:
        return value * _KG_PER_UNIT[self]


_KG_PER_UNIT = {MassUnit.KGM: Decimal(1), MassUnit.GRM: Decimal("0.001"), MassUnit.TNE: Decimal(1000)}


class Quantity(BaseModel):
    """A mass: at most 3 decimal places in its own unit, at most 10,000 tonnes, never negative."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: Annotated[Decimal, BeforeValidator(_exact_decimal), AfterValidator(_places(3))]
    uom: MassUnit = MassUnit.KGM

    @model_validator(mode="after")
    def _bounded(self) -> Quantity:
        if self.value < 0:
            raise ValueError("a quantity cannot be negative")
        if self.kg() > MAX_KG:
            raise ValueError(f"a quantity may not exceed {MAX_KG} kg")
        return self

    def kg(self) -> Decimal:
        return self.uom.to_kg(self.value)


def _positive(quantity: Quantity) -> Quantity:
    if quantity.value <= 0:
        raise ValueError("quantity must be more than zero")
    return quantity


PositiveQuantity = Annotated[Quantity, AfterValidator(_positive)]


class LotQuantity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    lot_code: LotCode
    quantity: PositiveQuantity


# --- places and times ------------------------------------------------------------------------------------

Latitude = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    AfterValidator(_places(7)),
    AfterValidator(_between(Decimal(-90), Decimal(90))),
]
Longitude = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    AfterValidator(_places(7)),
    AfterValidator(_between(Decimal(-180), Decimal(180))),
]
Celsius = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    AfterValidator(_places(2)),
    AfterValidator(_between(Decimal(-40), Decimal(80))),
]
AreaRai = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    AfterValidator(_places(4)),
    AfterValidator(_between(Decimal(0), Decimal(1000))),
]


class Place(BaseModel):
    """Where an event happened: a plot, packing house, mill or port, optionally with WGS 84 coordinates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PlaceCode
    lat: Latitude | None = None
    lon: Longitude | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Place:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


def _moment(value: datetime) -> datetime:
    """An aware time as EPCIS can carry it: whole-minute offset within ±14:00, millisecond precision."""
    offset = value.utcoffset()
    assert offset is not None  # AwareDatetime
    if offset % timedelta(minutes=1) or abs(offset) > timedelta(hours=14):
        raise ValueError("time zone offset must be whole minutes between -14:00 and +14:00")
    # EPCIS and the event hash keep milliseconds; keeping more here would break the EPCIS round trip.
    value = value.replace(microsecond=value.microsecond // 1000 * 1000, tzinfo=timezone(offset))
    if value < EARLIEST:
        raise ValueError("time is before 2000-01-01")
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("time is in the future")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_moment)]


class TemperatureReading(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time: Moment
    celsius: Celsius


# --- events ----------------------------------------------------------------------------------------------

_T = TypeVar("_T")


def _unique(what: str) -> Callable[[tuple[_T, ...]], tuple[_T, ...]]:
    def check(values: tuple[_T, ...]) -> tuple[_T, ...]:
        if len(set(values)) != len(values):
            raise ValueError(f"{what} may not repeat")
        return values

    return check


def _distinct_lots(what: str) -> Callable[[tuple[LotQuantity, ...]], tuple[LotQuantity, ...]]:
    def check(items: tuple[LotQuantity, ...]) -> tuple[LotQuantity, ...]:
        codes = [i.lot_code for i in items]
        if len(set(codes)) != len(codes):
            raise ValueError(f"a lot may appear only once in {what}")
        return items

    return check


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    event_time: Moment
    actor: PartyCode
    place: Place
    evidence: Annotated[
        tuple[Sha256Hex, ...], Field(max_length=MAX_EVIDENCE), AfterValidator(_unique("evidence"))
    ] = ()
    prev: Annotated[tuple[HashHex, ...], Field(max_length=MAX_PREV), AfterValidator(_unique("prev"))] = ()
    note: Annotated[NoteText | None, BeforeValidator(_blank_to_none)] = None


class Planting(EventBase):
    """A lot begins on a plot. Not an FSMA 204 critical tracking event: it is the origin the ledger checks
    harvests against (crop, area, the อปท. that vouches for the plot)."""

    kind: Literal["planting"]
    lot_code: LotCode
    plot_id: PlaceCode
    crop: CropCode
    variety: Annotated[Variety | None, BeforeValidator(_blank_to_none)] = None
    area_rai: AreaRai
    # The local authority (อปท.) the plot belongs to; the service fills it from the plot's enrolment.
    authority: PartyCode | None = None

    @model_validator(mode="after")
    def _some_area(self) -> Planting:
        if self.area_rai <= 0:
            raise ValueError("area_rai must be more than zero")
        return self


class Harvest(EventBase):
    """A harvest, understandable on its own (FSMA 204 §1.1325(a)): ``place`` is the farm, ``plot_id`` the
    field, with the commodity and variety harvested."""

    kind: Literal["harvest"]
    lot_code: LotCode
    plot_id: PlaceCode
    crop: CropCode
    variety: Annotated[Variety | None, BeforeValidator(_blank_to_none)] = None
    quantity: PositiveQuantity


class CoolingMethod(StrEnum):
    """Active cooling before initial packing (FSMA 204 §1.1325(b))."""

    HYDRO = "hydro_cooling"
    FORCED_AIR = "forced_air"
    VACUUM = "vacuum"
    ICE = "ice"
    ROOM = "room_cooling"
    OTHER = "other"


class Cooling(EventBase):
    """Cooling of a lot before initial packing: where (``place``), when, how much, how, optional readings."""

    kind: Literal["cooling"]
    lot_code: LotCode
    quantity: PositiveQuantity
    method: CoolingMethod
    temperatures: Annotated[tuple[TemperatureReading, ...], Field(max_length=500)] = ()


class Grading(EventBase):
    """An inspection of part of a lot: ``conformant`` (accepted at ``grade``) or ``non_conformant`` (rejected,
    it leaves the lot). A grading that accepts part and rejects part is two events, so that any EPCIS reader
    sees each quantity with its own disposition and the lot's mass balance adds up in plain EPCIS."""

    kind: Literal["grading"]
    lot_code: LotCode
    grade: Grade
    quantity: PositiveQuantity
    disposition: Literal["conformant", "non_conformant"]


class Packing(EventBase):
    """Initial packing, a split or a merge: lots go in, new lots come out."""

    kind: Literal["packing"]
    inputs: Annotated[
        tuple[LotQuantity, ...], Field(min_length=1, max_length=50), AfterValidator(_distinct_lots("inputs"))
    ]
    outputs: Annotated[
        tuple[LotQuantity, ...],
        Field(min_length=1, max_length=200),
        AfterValidator(_distinct_lots("outputs")),
    ]
    gtin: Gtin | None = None

    @model_validator(mode="after")
    def _inputs_are_not_outputs(self) -> Packing:
        both = {i.lot_code for i in self.inputs} & {o.lot_code for o in self.outputs}
        if both:
            raise ValueError(f"a lot cannot be both input and output: {', '.join(sorted(both))}")
        return self


BIZ_DOCUMENT_TYPES = ("bol", "desadv", "recadv", "po", "inv", "cert", "testres")
"""CBV 2.0 business transaction types a shipment or receipt may reference (FSMA 204 "reference document type
and number"): bill of lading, despatch advice, receiving advice, purchase order, invoice, certificate, test
result."""


class BizDocument(BaseModel):
    """A reference document: its CBV type and its number (e.g. ``bol`` ``BL-2569-000123``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["bol", "desadv", "recadv", "po", "inv", "cert", "testres"]
    number: DocNumber


class Transport(EventBase):
    """One leg: ``ship`` (FSMA shipping) or ``receive`` (FSMA receiving). ``owner_from``/``owner_to`` name the
    owning parties where ownership changes hands with this leg."""

    kind: Literal["transport"]
    leg: Literal["ship", "receive"]
    items: Annotated[
        tuple[LotQuantity, ...], Field(min_length=1, max_length=200), AfterValidator(_distinct_lots("items"))
    ]
    source: PlaceCode
    destination: PlaceCode
    vehicle: Annotated[Vehicle | None, BeforeValidator(_blank_to_none)] = None
    temperatures: Annotated[tuple[TemperatureReading, ...], Field(max_length=500)] = ()
    documents: Annotated[
        tuple[BizDocument, ...], Field(max_length=10), AfterValidator(_unique("documents"))
    ] = ()
    owner_from: PartyCode | None = None
    owner_to: PartyCode | None = None

    @model_validator(mode="after")
    def _goes_somewhere(self) -> Transport:
        if self.source == self.destination:
            raise ValueError("source and destination must differ")
        if (self.owner_from is None) != (self.owner_to is None):
            raise ValueError("an ownership change names both owner_from and owner_to")
        if self.owner_from is not None and self.owner_from == self.owner_to:
            raise ValueError("owner_from and owner_to must differ (leave both out when ownership stays)")
        return self


class Certification(EventBase):
    """An officer's EIP-712-signed certification of a lot, as recorded on chain under ``cert_id``."""

    kind: Literal["certification"]
    lot_code: LotCode
    authority: PartyCode
    officer: Address
    standard: Standard
    certificate_hash: HashHex
    expires: SafeInt  # unix seconds; 0 means it never expires
    nonce: SafeInt
    deadline: SafeInt  # unix seconds
    signature: Signature
    cert_id: HashHex  # the EIP-712 digest


class Revocation(EventBase):
    kind: Literal["revocation"]
    lot_code: LotCode
    cert_id: HashHex
    reason: Reason


Event = Annotated[
    Planting | Harvest | Cooling | Grading | Packing | Transport | Certification | Revocation,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def _dedupe(codes: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def lots_touched(event: Event) -> tuple[str, ...]:
    """Every lot the event touches, deduplicated, in a stable order (a packing's inputs, then outputs)."""
    if isinstance(event, Packing):
        return _dedupe([i.lot_code for i in event.inputs] + [o.lot_code for o in event.outputs])
    if isinstance(event, Transport):
        return _dedupe([i.lot_code for i in event.items])
    return (event.lot_code,)


def lot_inputs(event: Event) -> tuple[str, ...]:
    """Lots the event consumes into others (lineage edges run from these to ``lot_outputs``)."""
    return _dedupe([i.lot_code for i in event.inputs]) if isinstance(event, Packing) else ()


def lot_outputs(event: Event) -> tuple[str, ...]:
    """Lots the event produces or acts on: a packing's outputs, otherwise the lots it touches."""
    return _dedupe([o.lot_code for o in event.outputs]) if isinstance(event, Packing) else lots_touched(event)
