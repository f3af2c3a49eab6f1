"""Exports for importers' compliance work: GS1 EPCIS 2.0 JSON-LD and the FDA FSMA 204 sortable spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.epcis import epcis_document, from_epcis
from traceability.domain.events import Cooling, Event, Harvest, Packing, Transport
from traceability.errors import NotFound
from traceability.store.repository import Repository


def _lineage_rows(session: Session, lot_code: str) -> list[dict[str, Any]]:
    repo = Repository(session)
    if repo.lot(lot_code) is None:
        raise NotFound(f"unknown lot {lot_code}")
    return [codec.loads(r.body) for r in repo.events_touching(sorted(repo.lineage_lots(lot_code)))]


def export_epcis(session: Session, lot_code: str) -> dict[str, Any]:
    """The lot's whole lineage as one EPCIS 2.0 ``EPCISDocument``; hashes recompute with GS1's algorithm."""
    return epcis_document(_lineage_rows(session, lot_code), created=datetime.now(UTC))


FSMA_COLUMNS = [
    "Traceability Lot Code",
    "Critical Tracking Event",
    "Event Date",
    "Event Time (UTC)",
    "Product Description",
    "Commodity",
    "Variety",
    "Quantity",
    "Unit of Measure",
    "Location",
    "Field",
    "Ship From",
    "Ship To",
    "Cooling Method",
    "Input Traceability Lot Codes",
    "Reference Document Type",
    "Reference Document Number",
    "Event ID",
]


def _row(**values: str) -> dict[str, str]:
    return values


def _cte_rows(ev: Event) -> list[dict[str, str]]:
    """The FSMA 204 rows of one event. Planting, grading and certification are not critical tracking events
    (21 CFR 1.1325–1.1350) and give none; they stay in the EPCIS export and the proof bundle."""
    docs = ev.documents if isinstance(ev, Transport) else ()
    doc_type = ";".join(d.type for d in docs)
    doc_number = ";".join(d.number for d in docs)
    if isinstance(ev, Harvest):
        return [
            _row(
                lot=ev.lot_code,
                cte="Harvesting",
                commodity=ev.crop,
                variety=ev.variety or "",
                quantity=str(ev.quantity.value),
                uom=ev.quantity.uom.value,
                location=ev.place.id,
                field=ev.plot_id,
            )
        ]
    if isinstance(ev, Cooling):
        return [
            _row(
                lot=ev.lot_code,
                cte="Cooling",
                quantity=str(ev.quantity.value),
                uom=ev.quantity.uom.value,
                location=ev.place.id,
                cooling=ev.method.value,
            )
        ]
    if isinstance(ev, Packing):
        inputs = ";".join(i.lot_code for i in ev.inputs)
        return [
            _row(
                lot=o.lot_code,
                cte="Initial Packing / Transformation",
                quantity=str(o.quantity.value),
                uom=o.quantity.uom.value,
                location=ev.place.id,
                inputs=inputs,
            )
            for o in ev.outputs
        ]
    if isinstance(ev, Transport):
        return [
            _row(
                lot=item.lot_code,
                cte="Shipping" if ev.leg == "ship" else "Receiving",
                quantity=str(item.quantity.value),
                uom=item.quantity.uom.value,
                location=ev.place.id,
                ship_from=ev.source,
                ship_to=ev.destination,
                doc_type=doc_type,
                doc_number=doc_number,
            )
            for item in ev.items
        ]
    return []


def export_fsma204(session: Session, lot_code: str) -> str:
    """FSMA 204 electronic sortable spreadsheet (CSV): one row per critical tracking event and lot."""
    repo = Repository(session)
    bodies = _lineage_rows(session, lot_code)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FSMA_COLUMNS)
    for body in bodies:
        ev = from_epcis(body)
        when = ev.event_time.astimezone(UTC)
        for r in _cte_rows(ev):
            lot = repo.lot(r["lot"])
            writer.writerow(
                [
                    r["lot"],
                    r["cte"],
                    when.date().isoformat(),
                    when.strftime("%H:%M:%S"),
                    lot.product_en if lot else "",
                    r.get("commodity", lot.crop if lot else ""),
                    r.get("variety", ""),
                    r.get("quantity", ""),
                    r.get("uom", ""),
                    r.get("location", ""),
                    r.get("field", ""),
                    r.get("ship_from", ""),
                    r.get("ship_to", ""),
                    r.get("cooling", ""),
                    r.get("inputs", ""),
                    r.get("doc_type", ""),
                    r.get("doc_number", ""),
                    str(body.get("eventID", "")),
                ]
            )
    return out.getvalue()
