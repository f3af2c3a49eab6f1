"""Exports for importers' compliance work: GS1 EPCIS 2.0 JSON-LD and the FDA FSMA 204 sortable spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from traceability.domain import codec
from traceability.domain.epcis import epcis_document, from_epcis
from traceability.domain.events import Grading, Harvest, Packing, Planting, Transport
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
    "Quantity",
    "Unit of Measure",
    "Location",
    "Ship From",
    "Ship To",
    "Input Traceability Lot Codes",
    "Reference Document",
]

_CTE = {
    "harvest": "Harvesting",
    "packing": "Initial Packing / Transformation",
    "grading": "Cooling/Inspection",
}


def export_fsma204(session: Session, lot_code: str) -> str:
    """FSMA 204 electronic sortable spreadsheet: one row per critical tracking event and lot."""
    repo = Repository(session)
    bodies = _lineage_rows(session, lot_code)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FSMA_COLUMNS)
    for body in bodies:
        ev = from_epcis(body)
        when = ev.event_time.astimezone(UTC)
        ref = str(body.get("eventID", ""))
        rows: list[list[str]] = []
        if isinstance(ev, Harvest):
            rows.append(
                [
                    ev.lot_code,
                    "Harvesting",
                    str(ev.quantity.value),
                    ev.quantity.uom.value,
                    ev.plot_id,
                    "",
                    "",
                    "",
                ]
            )
        elif isinstance(ev, Planting):
            rows.append([ev.lot_code, "Growing (planting)", "", "", ev.plot_id, "", "", ""])
        elif isinstance(ev, Grading):
            rows.append(
                [
                    ev.lot_code,
                    "Inspecting",
                    str(ev.accepted.value),
                    ev.accepted.uom.value,
                    ev.place.id,
                    "",
                    "",
                    "",
                ]
            )
        elif isinstance(ev, Packing):
            inputs = ";".join(i.lot_code for i in ev.inputs)
            for o in ev.outputs:
                rows.append(
                    [
                        o.lot_code,
                        "Transformation (packing)",
                        str(o.quantity.value),
                        o.quantity.uom.value,
                        ev.place.id,
                        "",
                        "",
                        inputs,
                    ]
                )
        elif isinstance(ev, Transport):
            cte = "Shipping" if ev.leg == "ship" else "Receiving"
            for item in ev.items:
                rows.append(
                    [
                        item.lot_code,
                        cte,
                        str(item.quantity.value),
                        item.quantity.uom.value,
                        ev.place.id,
                        ev.source,
                        ev.destination,
                        "",
                    ]
                )
        for r in rows:
            lot = repo.lot(r[0])
            product = lot.product_en if lot else ""
            writer.writerow(
                [
                    r[0],
                    r[1],
                    when.date().isoformat(),
                    when.strftime("%H:%M:%S"),
                    product,
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    ref,
                ]
            )
    return out.getvalue()
