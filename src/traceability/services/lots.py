"""A lot as the JSON API shows it to any signed-in party: product, GTIN, status and its events in hash-chain
order, each with its anchoring state. No personal data: no names, phone numbers or actors.

``farmer_lots`` is the farmer's own page ("My lots"): the lots of their plots and the lots packed from those,
each event with the quantity it moved for that lot (in kg) and whether it is anchored yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.orm import Session

from traceability.domain.events import Cooling, Event, Grading, Harvest, Packing, Transport
from traceability.domain.states import OutboxStatus
from traceability.errors import NotFound
from traceability.services.history import parsed_event, step_of
from traceability.store import models
from traceability.store.repository import Repository

MAX_FARMER_LOTS = 200


@dataclass(frozen=True)
class LotEventView:
    event_id: str
    kind: str
    event_time: datetime
    hash: str
    anchored: bool
    block_number: int | None
    tx_hash: str | None
    block_time: datetime | None


@dataclass(frozen=True)
class LotView:
    code: str
    product_th: str
    product_en: str
    gtin: str | None
    events: tuple[LotEventView, ...]

    @property
    def status(self) -> Literal["empty", "pending", "anchored"]:
        if not self.events:
            return "empty"
        return "anchored" if all(e.anchored for e in self.events) else "pending"


def lot_view(session: Session, lot_code: str) -> LotView:
    repo = Repository(session)
    lot = repo.lot(lot_code.strip().upper())
    if lot is None:
        raise NotFound(f"unknown lot {lot_code}", code="unknown_lot")
    events = []
    for event, status, batch in repo.lot_history(lot.code):
        anchored = status == OutboxStatus.ANCHORED and batch is not None
        events.append(
            LotEventView(
                event_id=str(event.id),
                kind=event.kind,
                event_time=event.event_time,
                hash=event.hash,
                anchored=anchored,
                block_number=batch.block_number if anchored and batch else None,
                tx_hash=batch.tx_hash if anchored and batch else None,
                block_time=batch.block_time if anchored and batch else None,
            )
        )
    return LotView(lot.code, lot.product_th, lot.product_en, lot.gtin, tuple(events))


@dataclass(frozen=True)
class FarmerLotEvent:
    """One step of a farmer's lot. ``step`` is the event kind, with a transport split into ``ship`` and
    ``receive`` and a grading's rejected part as ``rejected``; ``quantity_kg`` is what the step moved for this
    lot (None for a planting)."""

    step: str
    event_time: datetime
    quantity_kg: Decimal | None
    anchored: bool
    block_number: int | None


@dataclass(frozen=True)
class FarmerLot:
    code: str
    product_th: str
    product_en: str
    events: tuple[FarmerLotEvent, ...]


@dataclass(frozen=True)
class FarmerLots:
    display_name: str
    lots: tuple[FarmerLot, ...]


def farmer_lots(session: Session, farmer_id: int) -> FarmerLots:
    """The farmer's own lots (from their plots) and every lot packed from them, newest first (at most
    ``MAX_FARMER_LOTS``), each with its events in hash-chain order."""
    repo = Repository(session)
    farmer = repo.farmer(farmer_id)
    if farmer is None:
        raise NotFound("unknown farmer", code="unknown_farmer")
    lots = farmer_lot_rows(repo, farmer_id)
    return FarmerLots(
        farmer.display_name,
        tuple(
            FarmerLot(lot.code, lot.product_th, lot.product_en, _farmer_events(repo, lot.code))
            for lot in lots
        ),
    )


def farmer_lot_rows(repo: Repository, farmer_id: int) -> list[models.Lot]:
    """The lots of the farmer's plots and every lot packed from them, newest first, at most
    ``MAX_FARMER_LOTS``: the lots a farmer sees and may record steps for."""
    codes = {lot.code for lot in repo.lots_of_farmer(farmer_id)}
    frontier = set(codes)
    while frontier and len(codes) < MAX_FARMER_LOTS:
        frontier = repo.child_lots(sorted(frontier)) - codes
        codes |= frontier
    return list(reversed(repo.lots_by_codes(sorted(codes))))[:MAX_FARMER_LOTS]


def _farmer_events(repo: Repository, lot_code: str) -> tuple[FarmerLotEvent, ...]:
    out = []
    for row, status, batch in repo.lot_history(lot_code):
        anchored = status == OutboxStatus.ANCHORED and batch is not None
        event = parsed_event(row)  # None: shown without its quantity
        out.append(
            FarmerLotEvent(
                step=step_of(row.kind, event),
                event_time=row.event_time,
                quantity_kg=_quantity_for(event, lot_code),
                anchored=anchored,
                block_number=batch.block_number if anchored and batch else None,
            )
        )
    return tuple(out)


def _quantity_for(event: Event | None, lot_code: str) -> Decimal | None:
    if isinstance(event, Harvest | Cooling | Grading):
        return event.quantity.kg()
    if isinstance(event, Packing | Transport):
        items = (*event.outputs, *event.inputs) if isinstance(event, Packing) else event.items
        for item in items:
            if item.lot_code == lot_code:
                return item.quantity.kg()
    return None
