"""The FDA FSMA 204 electronic sortable spreadsheet (21 CFR 1.1455(c)(3)(ii)): one CSV row per critical
tracking event and traceability lot, with the key data elements 21 CFR 1.1325–1.1350 require for it.

Two questions FDA asks, two functions: ``export_fsma204`` (one lot: its lineage back to every farm and forward
to every shipment, as the EPCIS export) and ``export_fsma204_range`` (a food and a date range, the form of a
request during an outbreak investigation). What each CTE is and needs lives in ``domain/fsma.py``; this module
reads the ledger and master data (``services/masterdata.py``) and fills the columns.

What fills a row, beyond the event itself:

* **location descriptions** come from master data only: the place's English name, the business that operates
  it (a community enterprise, exporter or the อปท. office), its address, country and business phone. A
  farmer's name or phone never reaches the file (PDPA): events name farmers by code, and master data answers
  for a field with its community enterprise or อปท.
* **dates are local**: each event keeps the offset it was recorded with, and FDA reads dates as the business
  that made the record wrote them — a harvest at 05:30 in Surin (+07:00) is on that day, not the UTC day
  before. The offset has its own column.
* the **immediate subsequent recipient** of a harvest or cooling is the place the lot went to next: the
  destination of its next shipment, the place of the packing that took it in, or a cooling or grading
  elsewhere; "not yet recorded" when the ledger has nothing later.
* the **reference document** of an event with no paper (harvest, cooling, packing) is the electronic record
  itself: type "EPCIS event", number its CBV 2.0 Event Hash ID, which finds it in the EPCIS export and on
  chain.

**The legend is a header block** of lines starting with ``#``, then one blank line, then the column header. We
chose it over a legend served at another URL because FDA receives one file: a record that needs a second
download to be understood is one more thing to lose within the 24 hours. It keeps the table sortable: a
spreadsheet sees the blank line as the edge of the table, so sorting or filtering from the header row leaves
the legend alone; ``pandas.read_csv(comment="#")``, or ``csv.DictReader`` over the lines neither blank nor
starting with ``#``, reads the table directly. Legend lines carry no commas or quotes, so each stays one cell
and one line.

The text is ``str``; serve it as ``text/csv; charset=utf-8`` with a byte-order mark (encode with
``utf-8-sig``) so that spreadsheet programs show the Thai text as Thai.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain import fsma as F
from traceability.domain.epcis import from_epcis, place_uri
from traceability.domain.events import (
    Cooling,
    Event,
    Grading,
    Harvest,
    Packing,
    Planting,
    Quantity,
    Transport,
    lots_touched,
)
from traceability.domain.ids import hash_ni
from traceability.errors import InvalidInput, NotFound
from traceability.services.identity import recorded_id_base
from traceability.services.masterdata import PlaceInfo, places
from traceability.store import models
from traceability.store.repository import Repository

MAX_RANGE_DAYS = 3660
"""A range request spans at most about ten years (FDA asks for two years of records; bounded input)."""
_WIDEST_OFFSET = timedelta(hours=14)
NOT_YET_RECORDED = "not yet recorded (no later event for this lot in the ledger)"
NOT_COOLED = "no cooling recorded"


# --- the ledger slice one export reads ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Recorded:
    event: Event
    body: dict[str, Any]
    event_hash: str  # the CBV 2.0 Event Hash ID


def _recorded(row: models.Event) -> _Recorded:
    body = codec.loads(row.body)
    return _Recorded(from_epcis(body), body, hash_ni(row.hash))


def _local(moment: datetime) -> tuple[str, str, str]:
    """(date, time, UTC offset) as the event was recorded, in its own zone."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return moment.date().isoformat(), moment.strftime("%H:%M:%S"), zone


class _Ledger:
    """The events of one export in time order, indexed by lot, with the lots and places they name."""

    def __init__(self, session: Session, rows: Sequence[models.Event]) -> None:
        self.records = [_recorded(row) for row in rows]
        self.by_lot: dict[str, list[_Recorded]] = defaultdict(list)
        self.created_by: dict[str, _Recorded] = {}
        codes: set[str] = set()
        for r in self.records:
            ev = r.event
            for lot in lots_touched(ev):
                self.by_lot[lot].append(r)
            codes.add(ev.place.id)
            if isinstance(ev, Planting | Harvest):
                codes.add(ev.plot_id)
                self.created_by.setdefault(ev.lot_code, r)
            elif isinstance(ev, Packing):
                for out in ev.outputs:
                    self.created_by[out.lot_code] = r
            elif isinstance(ev, Transport):
                codes.update((ev.source, ev.destination))
        repo = Repository(session)
        self.lots = {lot.code: lot for lot in repo.lots_by_codes(sorted(self.by_lot))}
        self.places = places(session, codes)
        self.id_base = recorded_id_base(session)
        self._varieties: dict[str, list[str]] = {}

    # --- places ---------------------------------------------------------------------------------------
    def describe(self, code: str) -> str:
        """A location description in one cell: name; business; address; country; business phone."""
        info = self.places.get(code)
        if info is None:
            return f"{code} (no location master data on file)"
        op = info.operator
        address = _address(info)
        country = F.country_name(info.country)
        return F.join(
            [
                info.name_en,
                op.name_en if op and op.name_en != info.name_en else None,
                address,
                None if address.endswith(country) else country,
                _phone(info),
            ]
        )

    def location_cells(self, code: str) -> dict[str, str]:
        info = self.places.get(code)
        if info is None:
            missing = f"{code} (no location master data on file)"
            return dict.fromkeys(
                (F.LOC_NAME, F.LOC_BUSINESS, F.LOC_ADDRESS, F.LOC_COUNTRY, F.LOC_PHONE), missing
            )
        return {
            F.LOC_NAME: info.name_en,
            F.LOC_BUSINESS: info.operator.name_en if info.operator else "operating business not on file",
            F.LOC_ADDRESS: _address(info),
            F.LOC_COUNTRY: info.country,
            F.LOC_PHONE: _phone(info).removeprefix("Tel. "),
        }

    def field_name(self, plot_code: str) -> str:
        info = self.places.get(plot_code)
        return f"{info.name_en} ({plot_code})" if info else plot_code

    def harvester(self, farm_code: str) -> str:
        info = self.places.get(farm_code)
        if info is None or info.operator is None:
            return f"{farm_code} (no business on file for this farm)"
        return F.join([info.operator.name_en, _phone(info)])

    def tlc_source(self, lot: str) -> str | None:
        """Where the lot's code was assigned: the packing that made it, else the planting or harvest."""
        made = self.created_by.get(lot)
        return made.event.place.id if made else None

    def tlc_source_ref(self, code: str | None) -> str:
        if code is None or self.id_base is None:
            return ""
        return place_uri(code, id_base=self.id_base)

    # --- lots ----------------------------------------------------------------------------------------
    def crop(self, lot: str) -> str:
        row = self.lots.get(lot)
        if row is not None:
            return row.crop
        made = self.created_by.get(lot)
        return made.event.crop if made and isinstance(made.event, Planting | Harvest) else "unknown"

    def is_raw(self, lot: str) -> bool:
        """A lot straight from the field (made by planting), not by a packing."""
        made = self.created_by.get(lot)
        if made is not None:
            return not isinstance(made.event, Packing)
        row = self.lots.get(lot)
        return row is not None and row.plot_id is not None

    def varieties(self, lot: str) -> list[str]:
        """The varieties recorded for the lot, through its packings back to the field."""
        if lot in self._varieties:
            return self._varieties[lot]
        self._varieties[lot] = []
        found: list[str] = []
        for r in self.by_lot.get(lot, []):
            if isinstance(r.event, Harvest | Planting) and r.event.variety and r.event.variety not in found:
                found.append(r.event.variety)
        made = self.created_by.get(lot)
        if not found and made is not None and isinstance(made.event, Packing):
            for i in made.event.inputs:
                found.extend(v for v in self.varieties(i.lot_code) if v not in found)
        self._varieties[lot] = found
        return found

    def pack(self, lot: str) -> F.Pack:
        if self.is_raw(lot):
            return F.Pack(F.BULK_SIZE, F.BULK_STYLE)
        made = self.created_by.get(lot)
        note = made.event.note if made else None
        return F.pack_from_note(note) or F.Pack(F.PACK_NOT_RECORDED, F.PACK_NOT_RECORDED)

    def product_cells(self, lot: str) -> dict[str, str]:
        row = self.lots.get(lot)
        crop = self.crop(lot)
        product_th = row.product_th if row else crop
        product_en = row.product_en if row else F.commodity(crop)
        gtin = f"GTIN {row.gtin}" if row is not None and row.gtin else None
        varieties = self.varieties(lot)
        pack = self.pack(lot)
        pack_en = "bulk" if pack.size == F.BULK_SIZE else f"{pack.size} {pack.style}"
        made = self.created_by.get(lot)
        packing_note = made.event.note if made and isinstance(made.event, Packing) else None
        return {
            F.COMMODITY: F.commodity(crop),
            F.VARIETY: " + ".join(varieties) or "no variety recorded",
            F.VARIETY_EN: " + ".join(F.english(v) for v in varieties) or "no variety recorded",
            F.PRODUCT: F.join([product_th, " + ".join(varieties), packing_note or pack_en, gtin], " — "),
            F.PRODUCT_EN: F.join(
                [product_en, " + ".join(F.english(v) for v in varieties), pack_en, gtin], " — "
            ),
            F.PACK_SIZE: pack.size,
            F.PACK_STYLE: pack.style,
            F.FTL: F.ftl_status(crop),
        }

    def later(self, lot: str, after: _Recorded) -> list[_Recorded]:
        events = self.by_lot.get(lot, [])
        at = next((i for i, r in enumerate(events) if r is after), len(events))
        return events[at + 1 :]

    def next_recipient(self, lot: str, after: _Recorded) -> str | None:
        """The place the lot went to after ``after``: a shipment's destination, the packing that took it in,
        or a cooling or grading somewhere else."""
        here = after.event.place.id
        for r in self.later(lot, after):
            ev = r.event
            if isinstance(ev, Transport) and ev.leg == "ship":
                return ev.destination
            if isinstance(ev, Packing):
                return ev.place.id
            if isinstance(ev, Cooling | Grading) and ev.place.id != here:
                return ev.place.id
        return None


def _address(info: PlaceInfo) -> str:
    if info.address_en:
        return info.address_en
    if info.address_th:
        return f"{info.address_th} (address in Thai only)"
    return "address not on file"


def _phone(info: PlaceInfo) -> str:
    phone = info.operator.phone if info.operator else None
    return f"Tel. {phone}" if phone else "business phone not on file"


# --- rows ---------------------------------------------------------------------------------------------------

Keep = Callable[[str, datetime], bool]
"""Whether the row of this lot at this (aware) event time belongs in the export."""


def _common(r: _Recorded, cte: F.Cte, lot: str, quantity: Quantity, ledger: _Ledger) -> dict[str, str]:
    day, clock, zone = _local(r.event.event_time)
    docs = r.event.documents if isinstance(r.event, Transport) else ()
    row = {
        F.TLC: lot,
        F.CTE: cte.value,
        F.RULE: F.RULE_SECTION[cte],
        F.KDES: F.kde_list(cte),
        F.DATE: day,
        F.TIME: clock,
        F.OFFSET: zone,
        F.QUANTITY: str(quantity.value),
        F.UOM: quantity.uom.value,
        F.DOC_TYPE: "; ".join(d.type for d in docs) or F.ELECTRONIC_RECORD,
        F.DOC_NUMBER: "; ".join(d.number for d in docs) or r.event_hash,
        F.BIZ_STEP: str(r.body.get("bizStep", "")),
        F.DISPOSITION: str(r.body.get("disposition", "")),
        F.EVENT_HASH: r.event_hash,
        F.NOTE: r.event.note or "",
        F.NOTE_EN: F.english(r.event.note),
        **ledger.product_cells(lot),
        **ledger.location_cells(r.event.place.id),
    }
    source = ledger.tlc_source(lot)
    if source is not None:
        row[F.TLC_SOURCE] = ledger.describe(source)
        row[F.TLC_SOURCE_REF] = ledger.tlc_source_ref(source)
    return row


def _per_input(parts: Sequence[tuple[str, str]]) -> str:
    """One cell for several input lots: the value alone for one lot, else each value after its lot code."""
    values = [(lot, v) for lot, v in parts if v]
    if len({v for _, v in values}) <= 1:
        return values[0][1] if values else ""
    return " | ".join(f"{lot}: {v}" for lot, v in values)


def _harvest_row(r: _Recorded, ev: Harvest, ledger: _Ledger) -> dict[str, str]:
    row = _common(r, F.Cte.HARVESTING, ev.lot_code, ev.quantity, ledger)
    recipient = ledger.next_recipient(ev.lot_code, r)
    row.update(
        {
            F.FIELD: ledger.field_name(ev.plot_id),
            F.FARM: ledger.describe(ev.place.id),
            F.HARVESTER: ledger.harvester(ev.place.id),
            F.HARVEST_DATE: _local(ev.event_time)[0],
            F.COMMODITY: F.commodity(ev.crop),
            F.VARIETY: ev.variety or "no variety recorded",
            F.VARIETY_EN: F.english(ev.variety) or "no variety recorded",
            F.RECIPIENT: ledger.describe(recipient) if recipient else NOT_YET_RECORDED,
        }
    )
    return row


def _cooling_row(r: _Recorded, ev: Cooling, ledger: _Ledger) -> dict[str, str]:
    row = _common(r, F.Cte.COOLING, ev.lot_code, ev.quantity, ledger)
    harvests = [h.event for h in ledger.by_lot.get(ev.lot_code, []) if isinstance(h.event, Harvest)]
    recipient = ledger.next_recipient(ev.lot_code, r)
    row.update(
        {
            F.COOLING_LOCATION: ledger.describe(ev.place.id),
            F.COOLING_DATE: _local(ev.event_time)[0],
            F.COOLING_METHOD: ev.method.value,
            F.FARM: " | ".join(dict.fromkeys(ledger.describe(h.place.id) for h in harvests))
            or "no harvest of this lot in the ledger",
            F.FIELD: " | ".join(dict.fromkeys(ledger.field_name(h.plot_id) for h in harvests)),
            F.HARVEST_DATE: " | ".join(dict.fromkeys(_local(h.event_time)[0] for h in harvests)),
            F.RECIPIENT: ledger.describe(recipient) if recipient else NOT_YET_RECORDED,
        }
    )
    return row


def _inputs_cell(ev: Packing, ledger: _Ledger) -> str:
    parts = []
    for i in ev.inputs:
        product = ledger.product_cells(i.lot_code)[F.PRODUCT_EN]
        parts.append(f"{i.lot_code} ({product}): {i.quantity.value} {i.quantity.uom.value}")
    return "; ".join(parts)


def _listed(values: Iterable[str], none: str) -> str:
    """Distinct values in one cell, or ``none`` said plainly when there are none."""
    return " | ".join(dict.fromkeys(values)) or none


def _received_context(r: _Recorded, ev: Packing, ledger: _Ledger) -> dict[str, str]:
    """What §1.1330(a) asks the initial packer about the food received: per input lot, its commodity and
    variety, when it arrived, the farm, field, harvester and harvest date, and any cooling."""
    here = ev.place.id
    cells: dict[str, list[tuple[str, str]]] = defaultdict(list)
    commodities, varieties = [], []
    for i in ev.inputs:
        history = [h for h in ledger.by_lot.get(i.lot_code, []) if h is not r]
        earlier = [h for h in history if h.event.event_time <= ev.event_time]
        harvests = [h.event for h in earlier if isinstance(h.event, Harvest)]
        coolings = [h.event for h in earlier if isinstance(h.event, Cooling)]
        arrived = next((h.event for h in earlier if h.event.place.id == here), ev)
        lot = i.lot_code
        no_harvest = "no harvest of this lot in the ledger"
        cells[F.RECEIVED_DATE].append((lot, _local(arrived.event_time)[0]))
        cells[F.FARM].append((lot, _listed((ledger.describe(h.place.id) for h in harvests), no_harvest)))
        cells[F.FIELD].append((lot, _listed((ledger.field_name(h.plot_id) for h in harvests), no_harvest)))
        cells[F.HARVESTER].append(
            (lot, _listed((ledger.harvester(h.place.id) for h in harvests), no_harvest))
        )
        cells[F.HARVEST_DATE].append((lot, _listed((_local(h.event_time)[0] for h in harvests), no_harvest)))
        cells[F.COOLING_LOCATION].append(
            (lot, _listed((ledger.describe(c.place.id) for c in coolings), NOT_COOLED))
        )
        cells[F.COOLING_DATE].append((lot, _listed((_local(c.event_time)[0] for c in coolings), NOT_COOLED)))
        crop = ledger.crop(lot)
        commodities.append(F.commodity(crop))
        varieties.extend(ledger.varieties(lot))
    out = {column: _per_input(parts) for column, parts in cells.items()}
    out[F.COMMODITY] = " + ".join(dict.fromkeys(commodities))
    distinct = list(dict.fromkeys(varieties))
    out[F.VARIETY] = " + ".join(distinct) or "no variety recorded"
    out[F.VARIETY_EN] = " + ".join(F.english(v) for v in distinct) or "no variety recorded"
    return out


def _packing_rows(r: _Recorded, ev: Packing, ledger: _Ledger, keep: Keep) -> list[dict[str, str]]:
    cte = F.packing_cte(all(ledger.is_raw(i.lot_code) for i in ev.inputs))
    context = _received_context(r, ev, ledger) if cte is F.Cte.INITIAL_PACKING else {}
    rows = []
    for out in ev.outputs:
        if not keep(out.lot_code, ev.event_time):
            continue
        row = _common(r, cte, out.lot_code, out.quantity, ledger)
        row[F.INPUTS] = _inputs_cell(ev, ledger)
        row.update(context)
        rows.append(row)
    return rows


def _transport_rows(r: _Recorded, ev: Transport, ledger: _Ledger, keep: Keep) -> list[dict[str, str]]:
    cte = F.Cte.SHIPPING if ev.leg == "ship" else F.Cte.RECEIVING
    rows = []
    for item in ev.items:
        if not keep(item.lot_code, ev.event_time):
            continue
        row = _common(r, cte, item.lot_code, item.quantity, ledger)
        row[F.SHIP_FROM] = ledger.describe(ev.source)
        row[F.SHIP_TO] = ledger.describe(ev.destination)
        if cte is F.Cte.SHIPPING:
            row[F.RECIPIENT] = row[F.SHIP_TO]
        rows.append(row)
    return rows


def cte_rows(ledger: _Ledger, keep: Keep) -> list[dict[str, str]]:
    """Every CTE row of the ledger slice that ``keep`` accepts, in event order."""
    rows: list[dict[str, str]] = []
    for r in ledger.records:
        ev = r.event
        if isinstance(ev, Harvest) and keep(ev.lot_code, ev.event_time):
            rows.append(_harvest_row(r, ev, ledger))
        elif isinstance(ev, Cooling) and keep(ev.lot_code, ev.event_time):
            rows.append(_cooling_row(r, ev, ledger))
        elif isinstance(ev, Packing):
            rows.extend(_packing_rows(r, ev, ledger, keep))
        elif isinstance(ev, Transport):
            rows.extend(_transport_rows(r, ev, ledger, keep))
        # planting, grading, certification and revocation are not critical tracking events
    return rows


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GENERATED = frozenset({F.OFFSET, F.QUANTITY})


def _cell(column: str, value: str) -> str:
    """A cell a spreadsheet shows as text: free text that starts like a formula (a note "=HYPERLINK(…)")
    gets a leading apostrophe (OWASP's advice against CSV injection). Columns this module formats itself
    (the UTC offset "+07:00", quantities) are left as they are."""
    if column not in _GENERATED and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write(title: str, rows: Iterable[dict[str, str]]) -> str:
    out = io.StringIO()
    for line in F.legend_lines(title):
        out.write(line + "\r\n")
    out.write("\r\n")
    writer = csv.DictWriter(out, fieldnames=list(F.COLUMNS), restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({c: _cell(c, v) for c, v in row.items()} for row in rows)
    return out.getvalue()


def _generated() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- the two exports ----------------------------------------------------------------------------------------


def export_fsma204(session: Session, lot_code: str) -> str:
    """The sortable spreadsheet of one lot's lineage: every CTE of the lot, of the lots it was packed from
    back to every farm, and of the lots packed from it forward to every shipment."""
    repo = Repository(session)
    if repo.lot(lot_code) is None:
        raise NotFound(f"unknown lot {lot_code}")
    lineage = repo.lineage_lots(lot_code) | repo.descendant_lots(lot_code)
    # The parents of a merge further on tell where its other inputs came from (initial packing KDEs).
    context = lineage | repo.parent_lots(sorted(lineage))
    ledger = _Ledger(session, repo.events_touching(sorted(context)))
    rows = cte_rows(ledger, lambda lot, _when: lot in lineage)
    title = (
        f"FDA FSMA 204 sortable spreadsheet: traceability lot {lot_code} with its lineage (back to every farm"
        f" and forward to every shipment); generated {_generated()}."
    )
    return _write(title, rows)


def export_fsma204_range(session: Session, *, product: str, start: date, end: date) -> str:
    """The sortable spreadsheet FDA asks for by food and date range: every CTE of lots of ``product`` whose
    local event date is within ``start``–``end`` (both included). ``product`` is a crop code of the catalogue
    or an FTL food ("leafy-greens", "melons")."""
    crops = F.product_crops(product)
    if crops is None:
        raise InvalidInput(
            f"unknown product {product!r}; accepted: {', '.join(F.accepted_products())}",
            code="unknown_product",
        )
    if end < start:
        raise InvalidInput(f"the range ends ({end}) before it starts ({start})", code="invalid_range")
    if (end - start).days > MAX_RANGE_DAYS:
        raise InvalidInput(f"a range may span at most {MAX_RANGE_DAYS} days", code="invalid_range")
    repo = Repository(session)
    products = repo.lot_codes_of_crops(crops)
    # Local dates: the UTC window is widened by the widest offset, then each row is judged by its own date.
    since = datetime.combine(start, time.min, UTC) - _WIDEST_OFFSET
    until = datetime.combine(end + timedelta(days=1), time.min, UTC) + _WIDEST_OFFSET
    in_window = repo.events_touching_between(sorted(products), since, until) if products else []
    active = {lot for row in in_window for lot in _lots_of(row)} & products
    context = active | repo.parent_lots(sorted(active)) if active else set()
    ledger = _Ledger(session, repo.events_touching(sorted(context)) if context else [])
    rows = cte_rows(ledger, lambda lot, when: lot in products and start <= when.date() <= end)
    title = (
        f"FDA FSMA 204 sortable spreadsheet: product {F.product_key(product)} (crops {' + '.join(crops)})"
        " with event dates"
        f" {start.isoformat()} to {end.isoformat()} inclusive (local dates); generated {_generated()}."
    )
    return _write(title, rows)


def _lots_of(row: models.Event) -> tuple[str, ...]:
    """The lots an event row touches, read from its stored EPCIS body."""
    return lots_touched(_recorded(row).event)


__all__ = ["export_fsma204", "export_fsma204_range"]
