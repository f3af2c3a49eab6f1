"""A lot as the JSON API shows it to any signed-in party: product, GTIN, status and its events in hash-chain
order, each with its anchoring state. No personal data: no names, phone numbers or actors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from traceability.domain.states import OutboxStatus
from traceability.errors import NotFound
from traceability.store.repository import Repository


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
