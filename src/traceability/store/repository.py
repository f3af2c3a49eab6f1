"""All queries live here. Repositories ``add`` and ``flush``; the caller's transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from traceability.store.models import (
    Authority,
    Batch,
    BatchEvent,
    CertificationRecord,
    Event,
    EventLot,
    Farmer,
    Lot,
    Officer,
    Outbox,
    Plot,
)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- parties and places -------------------------------------------------------------------------
    def authority_by_code(self, code: str) -> Authority | None:
        return self.session.scalar(select(Authority).where(Authority.code == code))

    def authority(self, authority_id: int) -> Authority | None:
        return self.session.get(Authority, authority_id)

    def farmer_by_code(self, code: str) -> Farmer | None:
        return self.session.scalar(select(Farmer).where(Farmer.code == code))

    def plot_by_code(self, code: str) -> Plot | None:
        return self.session.scalar(select(Plot).where(Plot.code == code))

    def officer_by_username(self, username: str) -> Officer | None:
        return self.session.scalar(select(Officer).where(Officer.username == username))

    def officer_by_address(self, address: str) -> Officer | None:
        return self.session.scalar(select(Officer).where(func.lower(Officer.address) == address.lower()))

    def count_events(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(Event)) or 0)

    # --- lots and events ------------------------------------------------------------------------------
    def lot(self, code: str) -> Lot | None:
        return self.session.get(Lot, code)

    def lots(self) -> Sequence[Lot]:
        return self.session.scalars(select(Lot).order_by(Lot.created_at, Lot.code)).all()

    def event(self, event_id: uuid.UUID) -> Event | None:
        return self.session.get(Event, event_id)

    def event_by_key(self, key: str) -> Event | None:
        return self.session.scalar(select(Event).where(Event.idempotency_key == key))

    def head(self, lot_code: str) -> tuple[int, str] | None:
        """(seq, hash) of the lot's latest event, or None for a lot with no events yet."""
        row = self.session.execute(
            select(EventLot.seq, Event.hash)
            .join(Event, Event.id == EventLot.event_id)
            .where(EventLot.lot_code == lot_code)
            .order_by(EventLot.seq.desc())
            .limit(1)
        ).first()
        return (int(row[0]), str(row[1])) if row else None

    def events_touching(self, lot_codes: Sequence[str]) -> Sequence[Event]:
        ids = select(EventLot.event_id).where(EventLot.lot_code.in_(list(lot_codes))).distinct()
        return self.session.scalars(
            select(Event).where(Event.id.in_(ids)).order_by(Event.event_time, Event.recorded_at)
        ).all()

    def parent_lots(self, lot_codes: Sequence[str]) -> set[str]:
        """Lots that were inputs of the packing events that created ``lot_codes``."""
        producing = select(EventLot.event_id).where(
            EventLot.lot_code.in_(list(lot_codes)), EventLot.role == "out"
        )
        rows = self.session.scalars(
            select(EventLot.lot_code).where(EventLot.event_id.in_(producing), EventLot.role == "in")
        ).all()
        return set(rows)

    def lineage_lots(self, lot_code: str) -> set[str]:
        seen = {lot_code}
        frontier = {lot_code}
        while frontier:
            frontier = self.parent_lots(sorted(frontier)) - seen
            seen |= frontier
        return seen

    def lot_anchor_counts(self) -> dict[str, tuple[int, int]]:
        """lot → (events, events anchored)."""
        rows = self.session.execute(
            select(EventLot.lot_code, Outbox.status, func.count())
            .join(Outbox, Outbox.event_id == EventLot.event_id)
            .group_by(EventLot.lot_code, Outbox.status)
        ).all()
        out: dict[str, tuple[int, int]] = {}
        for lot, status, n in rows:
            total, done = out.get(lot, (0, 0))
            out[lot] = (total + int(n), done + (int(n) if status == "anchored" else 0))
        return out

    def anchors_for(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[Batch, list[str]]]:
        rows = self.session.execute(
            select(BatchEvent, Batch)
            .join(Batch, Batch.id == BatchEvent.batch_id)
            .where(BatchEvent.event_id.in_(list(event_ids)), Batch.status == "anchored")
        ).all()
        return {be.event_id: (batch, list(be.proof)) for be, batch in rows}

    def certifications_for(self, lot_codes: Sequence[str]) -> Sequence[CertificationRecord]:
        return self.session.scalars(
            select(CertificationRecord)
            .where(CertificationRecord.lot_code.in_(list(lot_codes)))
            .order_by(CertificationRecord.created_at)
        ).all()

    def certification(self, cert_id: str) -> CertificationRecord | None:
        return self.session.get(CertificationRecord, cert_id)

    def all_events(self) -> Sequence[Event]:
        return self.session.scalars(select(Event).order_by(Event.recorded_at)).all()

    # --- outbox and batches ---------------------------------------------------------------------------
    def pending_count(self) -> int:
        return int(
            self.session.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == "pending"))
            or 0
        )

    def oldest_pending_at(self) -> datetime | None:
        return self.session.scalar(select(func.min(Outbox.created_at)).where(Outbox.status == "pending"))

    def claim_pending(self, limit: int, *, skip_locked: bool) -> Sequence[tuple[Outbox, str]]:
        stmt = (
            select(Outbox, Event.hash)
            .join(Event, Event.id == Outbox.event_id)
            .where(Outbox.status == "pending")
            .order_by(Outbox.id)
            .limit(limit)
        )
        if skip_locked:
            stmt = stmt.with_for_update(of=Outbox, skip_locked=True)
        return [(o, str(h)) for o, h in self.session.execute(stmt).all()]

    def batches_in(self, statuses: Sequence[str]) -> Sequence[Batch]:
        return self.session.scalars(
            select(Batch).where(Batch.status.in_(list(statuses))).order_by(Batch.id)
        ).all()

    def set_outbox_status(self, batch_id: int, status: str) -> None:
        self.session.execute(update(Outbox).where(Outbox.batch_id == batch_id).values(status=status))

    def batch_events(self, batch_id: int) -> Sequence[tuple[BatchEvent, str]]:
        rows = self.session.execute(
            select(BatchEvent, Event.hash)
            .join(Event, Event.id == BatchEvent.event_id)
            .where(BatchEvent.batch_id == batch_id)
        ).all()
        return [(be, str(h)) for be, h in rows]

    def outbox_counts(self) -> dict[str, int]:
        rows = self.session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
        return {str(s): int(n) for s, n in rows}
