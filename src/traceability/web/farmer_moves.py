"""The farmer's packing (split / merge) and transport (ship / receive) forms.

They keep the farmer forms' contract (``web/farmer_forms.py``): hidden ``csrf``, ``lang`` and ``event_id``
(the event's id and its Idempotency-Key: a resend never makes a second event), a ``datetime-local``
``event_time``, 303 to My lots on success, 422 with the typed values kept, 409 for a resend with other
values, 403 for a wrong CSRF token or a lot that is not the farmer's.

Rows repeat in plain HTML so the forms work without JavaScript: a packing has ``IN_ROWS`` input rows (a lot,
and the weight taken from it: empty = all that is left) and ``PACK_ROWS`` pack rows (an empty row is
ignored); a shipment or a receipt has ``ITEM_ROWS`` lot rows. Each row's fields are numbered (``in1_lot``,
``in1_qty``, ``in1_qty_unit``), so a URL-encoded body cannot pair one row's lot with another row's weight.

A packing's new lot codes are made when the form is rendered and travel in hidden fields: a resend of the
same form names the same lots, so it is the same event. Whether the packs may weigh what was typed is the
ledger's to say (its mass balance, refused before anything is stored); the form puts its refusal into words.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from traceability.api.deps import RuntimeDep, SessionDep
from traceability.domain.events import (
    CLOCK_SKEW,
    EARLIEST,
    MAX_KG,
    Celsius,
    DocNumber,
    Gtin,
    LotCode,
    PartyCode,
    PlaceCode,
    PositiveQuantity,
    Vehicle,
)
from traceability.domain.states import Role
from traceability.errors import ChainConflict, Conflict, Forbidden, InvalidInput, NotFound
from traceability.services.choices import (
    FarmerChoices,
    Shipment,
    Whereabouts,
    farmer_choices,
    farmer_whereabouts,
    record_step,
)
from traceability.services.runtime import DbSession, Runtime
from traceability.web.forms import form_token, local_now, local_time, mass, new_form_token
from traceability.web.i18n import pick_lang, thai_year, translations
from traceability.web.pages import render
from traceability.web.session import (
    MAX_FORM_BYTES,
    WebSession,
    forbidden,
    form_lists,
    private,
    to_sign_in,
    web_session,
    with_lang,
)

router = APIRouter(prefix="/farmer", include_in_schema=False)

LOGIN_PATH: Final = "/farmer/login"
IN_ROWS: Final = 3
PACK_ROWS: Final = 5
ITEM_ROWS: Final = 3
MAX_VALUE_CHARS: Final = 200
SHIP_DOCUMENTS: Final = ("bol", "desadv", "inv", "po")
"""Documents a farmer's shipment may name: bill of lading, delivery note, invoice, purchase order."""
ROW_FIELD: Final = re.compile(r"((?:in|out|item)\d+)_(?:lot|qty)")
CODE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread off a sack
KG_PLACES: Final = Decimal("0.001")

Gettext = Callable[[str], str]
Values = Mapping[str, str]
_T = TypeVar("_T")


class Problem(Exception):
    """A value the farmer must change, in the page's language: next to ``field``, or above the form when
    ``field`` is empty (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Row:
    """One filled repeated row: its field prefix (``in2``), the lot code and the weight as typed."""

    prefix: str
    lot: str
    qty: str
    unit: str


def _rows(values: Values, prefix: str, count: int, lot: str = "lot") -> Iterator[Row]:
    """The rows with something typed in them; a weight without its lot is the farmer's to fix."""
    for i in range(1, count + 1):
        name = f"{prefix}{i}"
        row = Row(
            name,
            values.get(f"{name}_{lot}", "").strip().upper(),
            values.get(f"{name}_qty", "").strip(),
            values.get(f"{name}_qty_unit", "kg"),
        )
        if row.lot or row.qty:
            yield row


def _lot_rows(values: Values, prefix: str, count: int, _: Gettext) -> list[Row]:
    rows = list(_rows(values, prefix, count))
    for row in rows:
        if not row.lot:
            raise Problem(f"{row.prefix}_lot", _("Choose the lot for this weight."))
    seen: set[str] = set()
    for row in rows:
        if row.lot in seen:
            raise Problem(f"{row.prefix}_lot", _("Choose each lot only once."))
        seen.add(row.lot)
    return rows


@dataclass(frozen=True)
class Ledger:
    """What the farmer may choose from (their lots and places) and where their lots are."""

    choices: FarmerChoices
    where: Whereabouts

    def held(self, code: str) -> Decimal:
        lot = self.choices.lot(code)
        return lot.available_kg if lot else Decimal(0)

    def shipment(self, code: str) -> Shipment | None:
        return next((s for s in self.where.shipments if s.lot_code == code), None)

    def moving(self, code: str) -> Decimal:
        shipment = self.shipment(code)
        return shipment.in_transit_kg if shipment else Decimal(0)

    def where_is(self, place: str) -> dict[str, str]:
        """An event's ``place``: one of the farmer's plots with its coordinates, else the code alone."""
        plot = self.choices.plot(place)
        if plot is None or plot.lat is None or plot.lon is None:
            return {"id": place}
        return {"id": place, "lat": str(plot.lat), "lon": str(plot.lon)}


@dataclass(frozen=True)
class Filled:
    """A posted form with what it is checked against."""

    values: Values
    ledger: Ledger
    when: datetime
    party: str
    _: Gettext

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def left(self, code: str) -> Decimal | None:
        """What the lot held (or had on its way) when the form was opened, as the form recorded it."""
        return read_stock(self.get("left")).get(code)


def write_stock(stock: Mapping[str, Decimal]) -> str:
    """The hidden ``left`` field: ``T-VEG-0001B=440;…``. An empty weight means "all of it" as the farmer saw
    it on the form, so a resend of the form (the offline queue's, a double tap) is the same event even after
    its first send emptied the lot."""
    return ";".join(f"{code}={kg}" for code, kg in stock.items())


def read_stock(text: str) -> dict[str, Decimal]:
    stock: dict[str, Decimal] = {}
    for part in text.split(";"):
        code, _, kg = part.partition("=")
        try:
            value = Decimal(kg)
        except ArithmeticError:
            continue  # a damaged field: the row then needs a weight typed
        if value.is_finite() and 0 <= value <= MAX_KG:
            stock[code] = value
    return stock


# --- typed values ---------------------------------------------------------------------------------------


def _valid(adapter: TypeAdapter[_T], value: object, field: str, message: str) -> _T:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        raise Problem(field, message) from None


_LOT: TypeAdapter[str] = TypeAdapter(LotCode)
_PLACE: TypeAdapter[str] = TypeAdapter(PlaceCode)
_PARTY: TypeAdapter[str] = TypeAdapter(PartyCode)
_DOC: TypeAdapter[str] = TypeAdapter(DocNumber)
_VEHICLE: TypeAdapter[str] = TypeAdapter(Vehicle)
_CELSIUS: TypeAdapter[Decimal] = TypeAdapter(Celsius)
_GTIN: TypeAdapter[str] = TypeAdapter(Gtin)
_QUANTITY = TypeAdapter(PositiveQuantity)


def _weight(row: Row, _: Gettext) -> dict[str, str]:
    """A typed weight as an event's ``quantity``, or the message for any weight it cannot be."""
    field, message = f"{row.prefix}_qty", _("Enter the weight as a number more than 0, e.g. 250 or 1.5.")
    try:
        quantity = mass(row.qty, row.unit)
    except InvalidInput:
        raise Problem(field, message) from None
    _valid(_QUANTITY, quantity, field, message)
    return quantity


def _taken(row: Row, f: Filled) -> dict[str, str]:
    """What a row takes from a lot: the weight typed, or all the lot held when the form was opened."""
    _ = f._
    if row.qty:
        return _weight(row, _)
    have = f.left(row.lot)
    if have is None:
        raise Problem(f"{row.prefix}_qty", _("Enter the weight as a number more than 0, e.g. 250 or 1.5."))
    if have <= 0:
        raise Problem(f"{row.prefix}_qty", _("Nothing is left in this lot: choose another lot."))
    return {"value": format(have.quantize(KG_PLACES, rounding=ROUND_DOWN).normalize(), "f"), "uom": "KGM"}


def _kg(quantity: Mapping[str, str]) -> Decimal:
    return _QUANTITY.validate_python(quantity).kg()


def _kg_text(value: Decimal, lang: str) -> str:
    return format_decimal(value, format="#,##0.###", locale=lang)


def _place(f: Filled, name: str) -> str:
    return _valid(
        _PLACE,
        f.get(name),
        name,
        f._("A place is a code of letters, digits and dashes, e.g. PH-NSN, or a 13-digit GLN."),
    )


def _moment(value: str, tz: str, _: Gettext) -> datetime:
    try:
        when = local_time(value, tz)
    except InvalidInput:
        raise Problem("event_time", _("Choose a date and time.")) from None
    if when > datetime.now(UTC) + CLOCK_SKEW or when < EARLIEST:
        raise Problem("event_time", _("The time cannot be in the future."))
    return when


def new_pack_codes(party: str, day: date) -> tuple[str, ...]:
    """``PACK_ROWS`` codes for a packing's new lots: the farmer's code, the day in the Buddhist era, ``P``,
    three random characters and the row (``F0001-691122-PK7Q1``), readable off a sack like a planting's lot
    code. At most 6 + 1 + 6 + 1 + 5 = 19 characters, a valid ``LotCode``; 32,768 tags a farmer a day."""
    stem = re.sub(r"[^A-Z0-9]", "", party.upper())[:6] or "PACK"
    era_day = f"{thai_year(day.year) % 100:02d}{day.month:02d}{day.day:02d}"
    tag = "".join(secrets.choice(CODE_ALPHABET) for _ in range(3))
    return tuple(f"{stem}-{era_day}-P{tag}{i}" for i in range(1, PACK_ROWS + 1))


# --- the three forms ------------------------------------------------------------------------------------


def _stocked(ledger: Ledger) -> list[str]:
    return [lot.code for lot in ledger.choices.lots if lot.available_kg > 0]


def _packing_defaults(ledger: Ledger, party: str, today: date) -> dict[str, str]:
    stocked = _stocked(ledger)
    first = stocked[0] if len(stocked) == 1 else ""
    codes = new_pack_codes(party, today)
    return {
        "in1_lot": first,
        "place": ledger.where.here.get(first) or ledger.choices.last_plot or "",
        **{f"out{i}_code": code for i, code in enumerate(codes, start=1)},
    }


def _build_packing(f: Filled) -> dict[str, Any]:
    _ = f._
    inputs: list[dict[str, Any]] = [
        {"lot_code": row.lot, "quantity": _taken(row, f)} for row in _lot_rows(f.values, "in", IN_ROWS, _)
    ]
    if not inputs:
        raise Problem("in1_lot", _("Choose at least one lot to pack from."))
    damaged = _("This form was damaged. Please open a new form.")
    outputs: list[dict[str, Any]] = [
        {"lot_code": _valid(_LOT, row.lot, "", damaged), "quantity": _weight(row, _)}
        for row in _rows(f.values, "out", PACK_ROWS, lot="code")
        if row.qty
    ]
    if not outputs:
        raise Problem("out1_qty", _("Enter the weight of at least one pack."))
    data: dict[str, Any] = {
        "kind": "packing",
        "place": f.ledger.where_is(_place(f, "place")),
        "inputs": inputs,
        "outputs": outputs,
    }
    if f.get("gtin"):
        message = _("A barcode (GTIN) has 8, 12, 13 or 14 digits, the last one a check digit.")
        data["gtin"] = _valid(_GTIN, f.get("gtin"), "gtin", message)
    return data


def _packing_refusal(data: Mapping[str, Any], f: Filled, lang: str) -> Problem:
    taken = sum((_kg(i["quantity"]) for i in data["inputs"]), Decimal(0))
    packed = sum((_kg(o["quantity"]) for o in data["outputs"]), Decimal(0))
    if packed > taken:
        message = f._(
            "The packs weigh %(out)s kg in all, more than the %(in)s kg taken from the lots. "
            "Nothing was saved: check the weights."
        )
        return Problem("", message % {"out": _kg_text(packed, lang), "in": _kg_text(taken, lang)})
    return _short(data["inputs"], "in", f, lang)


def _short(items: list[dict[str, Any]], prefix: str, f: Filled, lang: str) -> Problem:
    """The ledger refused to take more from a lot than it holds: say which row, and what its lot holds."""
    rows = {row.lot: row for row in _rows(f.values, prefix, IN_ROWS if prefix == "in" else ITEM_ROWS)}
    for item in items:
        have = f.ledger.held(item["lot_code"])
        row = rows.get(item["lot_code"])
        if row is not None and _kg(item["quantity"]) > have:
            message = f._("That is more than this lot holds now (%(kg)s kg left).")
            return Problem(f"{row.prefix}_qty", message % {"kg": _kg_text(have, lang)})
    return Problem("", f._("This step could not be recorded. Please check the values and send again."))


def _ship_defaults(ledger: Ledger, party: str, today: date) -> dict[str, str]:
    stocked = _stocked(ledger)
    origin = next(iter(stocked), "")  # the newest lot with produce left: where a load most likely leaves
    return {
        "item1_lot": origin if len(stocked) == 1 else "",
        "source": ledger.where.here.get(origin, ""),
        "doc_type": "bol",
    }


def _document(f: Filled, allowed: tuple[str, ...]) -> list[dict[str, str]]:
    """The document typed on the form (type and number), if any."""
    number = f.get("doc_number").upper()
    if not number:
        return []
    kind = f.get("doc_type") or "bol"
    if kind not in allowed:
        raise Problem("doc_type", f._("Choose a kind of document from the list."))
    message = f._("A document number has letters, digits, dots and dashes, e.g. BL-2569-000118.")
    return [{"type": kind, "number": _valid(_DOC, number, "doc_number", message)}]


def _on_the_way(f: Filled) -> dict[str, Any]:
    """A transport leg's optional vehicle plate and one temperature reading at the event's time."""
    out: dict[str, Any] = {}
    if f.get("vehicle"):
        message = f._("The vehicle plate is at most 40 characters.")
        out["vehicle"] = _valid(_VEHICLE, f.get("vehicle"), "vehicle", message)
    if f.get("celsius"):
        message = f._("The temperature must be a number from -40 to 80 °C.")
        celsius = _valid(_CELSIUS, f.get("celsius").replace(",", "."), "celsius", message)
        out["temperatures"] = [{"time": f.when, "celsius": str(celsius)}]
    return out


def _build_ship(f: Filled) -> dict[str, Any]:
    _ = f._
    items: list[dict[str, Any]] = [
        {"lot_code": row.lot, "quantity": _taken(row, f)} for row in _lot_rows(f.values, "item", ITEM_ROWS, _)
    ]
    if not items:
        raise Problem("item1_lot", _("Choose at least one lot."))
    source, destination = _place(f, "source"), _place(f, "destination")
    if source == destination:
        raise Problem("destination", _("Where the produce goes must differ from where it leaves."))
    data: dict[str, Any] = {
        "kind": "transport",
        "leg": "ship",
        "place": f.ledger.where_is(source),
        "items": items,
        "source": source,
        "destination": destination,
        "documents": _document(f, SHIP_DOCUMENTS),
        **_on_the_way(f),
    }
    if f.get("buyer"):
        message = _("A buyer's code has letters, digits and dashes, e.g. EXP-0001.")
        buyer = _valid(_PARTY, f.get("buyer"), "buyer", message)
        if buyer == f.party:
            raise Problem("buyer", _("That is your own code: leave it empty when the produce stays yours."))
        data |= {"owner_from": f.party, "owner_to": buyer}
    return data


def _ship_refusal(data: Mapping[str, Any], f: Filled, lang: str) -> Problem:
    return _short(data["items"], "item", f, lang)


def _receive_defaults(ledger: Ledger, party: str, today: date) -> dict[str, str]:
    on_way = ledger.where.shipments
    return {"item1_lot": on_way[0].lot_code if len(on_way) == 1 else "", "doc_type": "bol"}


def _build_receive(f: Filled) -> dict[str, Any]:
    _ = f._
    rows = _lot_rows(f.values, "item", ITEM_ROWS, _)
    if not rows:
        raise Problem("item1_lot", _("Choose at least one lot."))
    shipments = []
    for row in rows:
        shipment = f.ledger.shipment(row.lot)
        if shipment is None:
            raise Problem(f"{row.prefix}_lot", _("This lot is not on its way: there is nothing to receive."))
        shipments.append(shipment)
    first = shipments[0]
    if any((s.source, s.destination) != (first.source, first.destination) for s in shipments):
        raise Problem(rows[-1].prefix + "_lot", _("Receive the lots of one shipment at a time."))
    # The shipment's own documents unless the form names one, so both legs carry the same bill of lading.
    documents = _document(f, SHIP_DOCUMENTS) or [{"type": t, "number": n} for t, n in first.documents]
    if f.get("recadv"):
        message = _("A document number has letters, digits, dots and dashes, e.g. BL-2569-000118.")
        documents.append(
            {"type": "recadv", "number": _valid(_DOC, f.get("recadv").upper(), "recadv", message)}
        )
    return {
        "kind": "transport",
        "leg": "receive",
        "place": f.ledger.where_is(first.destination),
        "items": [{"lot_code": row.lot, "quantity": _taken(row, f)} for row in rows],
        "source": first.source,
        "destination": first.destination,
        "documents": list({(d["type"], d["number"]): d for d in documents}.values()),
        **({"vehicle": first.vehicle} if first.vehicle else {}),
        **_on_the_way(f),
    }


def _receive_refusal(data: Mapping[str, Any], f: Filled, lang: str) -> Problem:
    rows = {row.lot: row for row in _rows(f.values, "item", ITEM_ROWS)}
    for item in data["items"]:
        moving, row = f.ledger.moving(item["lot_code"]), rows.get(item["lot_code"])
        if row is not None and _kg(item["quantity"]) > moving:
            message = f._("Only %(kg)s kg of this lot is on its way.")
            return Problem(f"{row.prefix}_qty", message % {"kg": _kg_text(moving, lang)})
    return Problem("", f._("This step could not be recorded. Please check the values and send again."))


Groups = list[dict[str, Any]]


def _grouped(options: list[tuple[str, str, str]]) -> Groups:
    """``(product, value, label)`` as one option group per product, in order of first appearance: a select
    names each product once, which keeps a page of many lots light and its closed select readable."""
    groups: dict[str, list[dict[str, str]]] = {}
    for product, value, label in options:
        groups.setdefault(product, []).append({"value": value, "label": label})
    return [{"label": product, "options": items} for product, items in groups.items()]


def _lot_options(ledger: Ledger, values: Values, lang: str, _: Gettext) -> Groups:
    """The lots that still hold something (and any already chosen), each with what is left."""
    chosen = {v.upper() for k, v in values.items() if k.endswith("_lot")}
    return _grouped(
        [
            (
                lot.product_th if lang == "th" else lot.product_en,
                lot.code,
                f"{lot.code} · " + _("%(kg)s kg left") % {"kg": _kg_text(lot.available_kg, lang)},
            )
            for lot in ledger.choices.lots
            if lot.available_kg > 0 or lot.code in chosen
        ]
    )


def _shipment_options(ledger: Ledger, values: Values, lang: str, _: Gettext) -> Groups:
    """The shipments still on their way, each with its weight and route."""
    return _grouped(
        [
            (
                s.product_th if lang == "th" else s.product_en,
                s.lot_code,
                f"{s.lot_code} · "
                + _("%(kg)s kg from %(source)s to %(destination)s")
                % {"kg": _kg_text(s.in_transit_kg, lang), "source": s.source, "destination": s.destination},
            )
            for s in ledger.where.shipments
        ]
    )


@dataclass(frozen=True)
class Move:
    """One of the three forms: its defaults, how its fields become an event, how a mass-balance refusal is
    told, and the lots its rows offer."""

    kind: str
    rows: int
    stock: Callable[[Ledger], dict[str, Decimal]]
    defaults: Callable[[Ledger, str, date], dict[str, str]]
    build: Callable[[Filled], dict[str, Any]]
    refusal: Callable[[Mapping[str, Any], Filled, str], Problem]
    options: Callable[[Ledger, Values, str, Gettext], Groups]

    @property
    def path(self) -> str:
        return f"/farmer/record/{self.kind}"

    @property
    def template(self) -> str:
        return f"farmer_form_{self.kind}.html"


def _held(ledger: Ledger) -> dict[str, Decimal]:
    return {lot.code: lot.available_kg for lot in ledger.choices.lots if lot.available_kg > 0}


def _moving(ledger: Ledger) -> dict[str, Decimal]:
    return {s.lot_code: s.in_transit_kg for s in ledger.where.shipments}


MOVES: Final = {
    "packing": Move(
        "packing", IN_ROWS, _held, _packing_defaults, _build_packing, _packing_refusal, _lot_options
    ),
    "ship": Move("ship", ITEM_ROWS, _held, _ship_defaults, _build_ship, _ship_refusal, _lot_options),
    "receive": Move(
        "receive", ITEM_ROWS, _moving, _receive_defaults, _build_receive, _receive_refusal, _shipment_options
    ),
}


# --- pages ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One of these forms being answered for a signed-in farmer."""

    request: Request
    move: Move
    lang: str
    signed_in: WebSession
    ledger: Ledger
    tz: str

    @property
    def gettext(self) -> Gettext:
        return translations(self.lang).gettext

    def fresh(self) -> dict[str, str]:
        """A new form's values: a new token, now, and the form's defaults."""
        today = datetime.now(ZoneInfo(self.tz)).date()
        return {
            "event_id": new_form_token(),
            "event_time": local_now(self.tz),
            "left": write_stock(self.move.stock(self.ledger)),
            **self.move.defaults(self.ledger, self.signed_in.principal.party, today),
        }

    def form(self, values: Values, *, problem: Problem | None = None, status_code: int = 200) -> Response:
        errors = {problem.field: problem.message} if problem and problem.field else {}
        typed = {
            found.group(1)
            for name in (*(k for k, v in values.items() if v.strip()), *errors)
            if (found := ROW_FIELD.fullmatch(name))
        }
        context = {
            "csrf": self.signed_in.csrf,
            "values": values,
            "errors": errors,
            "typed": typed,
            "problem": problem.message if problem and not problem.field else None,
            "options": self.move.options(self.ledger, values, self.lang, self.gettext),
            "places": self.ledger.choices.places,
            "rows": self.move.rows,
            "pack_rows": PACK_ROWS,
            "switch_url": self.move.path,
        }
        return private(render(self.request, self.move.template, self.lang, context, status_code=status_code))

    def refused(self, message: str, status_code: int) -> Response:
        """A 403 (not the farmer's lot) or 409 (a form sent again with other values) on the steps menu, as
        the other farmer forms answer them."""
        context = {"problem": message, "switch_url": "/farmer/record"}
        return private(
            render(self.request, "farmer_record.html", self.lang, context, status_code=status_code)
        )


def _page(
    request: Request, session: DbSession, runtime: Runtime, move: Move, lang: str, signed_in: WebSession
) -> Page:
    farmer_id = signed_in.principal.farmer_id
    assert farmer_id is not None  # web_session(..., Role.FARMER) answers only for farmers
    ledger = Ledger(farmer_choices(session, farmer_id), farmer_whereabouts(session, farmer_id))
    return Page(request, move, lang, signed_in, ledger, runtime.settings.timezone)


async def _posted(request: Request) -> dict[str, str]:
    """A URL-encoded body's fields (the first value of each, at most ``MAX_VALUE_CHARS``); any other body,
    or one over the forms' size bound, is an empty form, which its missing CSRF token then refuses."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return {}
    return {name: values[0][:MAX_VALUE_CHARS] for name, values in form_lists(raw).items()}


def _show(move: Move) -> Callable[..., Response]:
    def show(request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None) -> Response:
        language = pick_lang(lang)
        signed_in = web_session(session, request, Role.FARMER)
        if signed_in is None:
            return to_sign_in(request, LOGIN_PATH, language)
        page = _page(request, session, runtime, move, language, signed_in)
        return page.form(page.fresh())

    show.__doc__ = f"The {move.kind} form with the farmer's own lots."
    return show


def _record(move: Move) -> Callable[..., Any]:
    async def record(request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
        values = await _posted(request)
        # The rest reads and writes the database: on a worker thread, never blocking the event loop (a row
        # lock held by another request, whose commit needs the loop, would otherwise never be released).
        return await run_in_threadpool(_recorded, move, request, session, runtime, values)

    record.__doc__ = f"Record a {move.kind} from its form: 303 to My lots, or the form again with a message."
    return record


def _recorded(
    move: Move, request: Request, session: DbSession, runtime: Runtime, values: dict[str, str]
) -> Response:
    lang = pick_lang(values.get("lang"))
    signed_in = web_session(session, request, Role.FARMER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, lang)
    if not signed_in.checks(values.get("csrf")):
        return forbidden(request, lang, move.path)
    page = _page(request, session, runtime, move, lang, signed_in)
    return _answer(page, session, runtime, {k: v for k, v in values.items() if k not in ("csrf", "lang")})


def _answer(page: Page, session: DbSession, runtime: Runtime, values: dict[str, str]) -> Response:
    _ = page.gettext
    own = {lot.code for lot in page.ledger.choices.lots}
    if any(v.strip().upper() not in own for k, v in values.items() if k.endswith("_lot") and v.strip()):
        return page.refused(_("That plot or lot is not yours, so nothing was recorded."), 403)
    try:
        event_id = form_token(values.get("event_id"))
    except InvalidInput:
        damaged = Problem("", _("This form was damaged. Please check the values and send it again."))
        return page.form(
            {**page.fresh(), **values, "event_id": new_form_token()}, problem=damaged, status_code=422
        )
    data: dict[str, Any] = {}
    try:
        when = _moment(values.get("event_time", ""), page.tz, _)
        filled = Filled(values, page.ledger, when, page.signed_in.principal.party, _)
        data = page.move.build(filled)
        record_step(
            session,
            page.signed_in.principal,
            {**data, "event_id": event_id, "event_time": when},
            id_base=runtime.settings.id_base,
            evidence_dir=runtime.settings.evidence_dir,
        )
    except Problem as problem:
        return page.form(values, problem=problem, status_code=422)
    except (Forbidden, NotFound):
        return page.refused(_("That plot or lot is not yours, so nothing was recorded."), 403)
    except ChainConflict:
        busy = Problem("", _("Someone recorded a step on this lot at the same moment. Please send again."))
        return page.form(values, problem=busy, status_code=409)
    except Conflict:
        message = _(
            "This form was already sent with different values, so nothing was changed. Open a new form."
        )
        return page.refused(message, 409)
    except InvalidInput as exc:
        if exc.code == "lot_exists":
            values |= {k: v for k, v in page.fresh().items() if k.startswith("out")}
        return page.form(values, problem=_refusal(exc, data, filled, page), status_code=422)
    return RedirectResponse(with_lang(f"/farmer/lots?recorded={event_id}", page.lang), status_code=303)


def _refusal(exc: InvalidInput, data: Mapping[str, Any], filled: Filled, page: Page) -> Problem:
    """The ledger's refusal in the farmer's words."""
    _ = page.gettext
    if exc.code == "mass_balance":
        return page.move.refusal(data, filled, page.lang)
    if exc.code == "lot_exists":
        return Problem(
            "", _("A new lot code was just taken by another form. New codes were made: please send again.")
        )
    return Problem("", _("This step could not be recorded. Please check the values and send again."))


for _move in MOVES.values():
    router.add_api_route(f"/record/{_move.kind}", _show(_move), methods=["GET"])
    router.add_api_route(f"/record/{_move.kind}", _record(_move), methods=["POST"])
