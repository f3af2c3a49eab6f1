"""All queries live here. Repositories ``add`` and ``flush``; the caller's transaction commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from traceability.domain.states import BatchStatus, ChainOpStatus, LotRole, OutboxStatus
from traceability.store.models import (
    Authority,
    AuthToken,
    Batch,
    BatchEvent,
    CertificationRecord,
    ChainOp,
    Event,
    EventLot,
    Farmer,
    LedgerMeta,
    Location,
    LoginAttempt,
    Lot,
    Officer,
    Outbox,
    Plot,
    utcnow,
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

    def farmer(self, farmer_id: int) -> Farmer | None:
        return self.session.get(Farmer, farmer_id)

    def farmer_by_phone(self, phone: str) -> Farmer | None:
        return self.session.scalar(select(Farmer).where(Farmer.phone == phone))

    def plots_of_farmer(self, farmer_id: int) -> Sequence[Plot]:
        return self.session.scalars(select(Plot).where(Plot.farmer_id == farmer_id).order_by(Plot.code)).all()

    def officer(self, officer_id: int) -> Officer | None:
        return self.session.get(Officer, officer_id)

    def plot(self, plot_id: int) -> Plot | None:
        return self.session.get(Plot, plot_id)

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

    def _linked_lots(self, lot_codes: Sequence[str], role: LotRole, other: LotRole) -> set[str]:
        """Lots playing ``other`` in the packing events where ``lot_codes`` play ``role``."""
        packings = select(EventLot.event_id).where(
            EventLot.lot_code.in_(list(lot_codes)), EventLot.role == role
        )
        rows = self.session.scalars(
            select(EventLot.lot_code).where(EventLot.event_id.in_(packings), EventLot.role == other)
        ).all()
        return set(rows)

    def parent_lots(self, lot_codes: Sequence[str]) -> set[str]:
        """Lots that were inputs of the packing events that created ``lot_codes``."""
        return self._linked_lots(lot_codes, LotRole.OUT, LotRole.IN)

    def child_lots(self, lot_codes: Sequence[str]) -> set[str]:
        """Lots that packing events made out of ``lot_codes``."""
        return self._linked_lots(lot_codes, LotRole.IN, LotRole.OUT)

    def lots_of_farmer(self, farmer_id: int) -> Sequence[Lot]:
        """Lots created from the farmer's own plots."""
        return self.session.scalars(
            select(Lot)
            .join(Plot, Plot.id == Lot.plot_id)
            .where(Plot.farmer_id == farmer_id)
            .order_by(Lot.created_at, Lot.code)
        ).all()

    def lots_by_codes(self, codes: Sequence[str]) -> Sequence[Lot]:
        return self.session.scalars(
            select(Lot).where(Lot.code.in_(list(codes))).order_by(Lot.created_at, Lot.code)
        ).all()

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
            out[lot] = (total + int(n), done + (int(n) if status == OutboxStatus.ANCHORED else 0))
        return out

    def anchors_for(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[Batch, list[str]]]:
        rows = self.session.execute(
            select(BatchEvent, Batch)
            .join(Batch, Batch.id == BatchEvent.batch_id)
            .where(BatchEvent.event_id.in_(list(event_ids)), Batch.status == BatchStatus.ANCHORED)
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

    def lot_history(self, lot_code: str) -> Sequence[tuple[Event, str, Batch | None]]:
        """The lot's events in hash-chain order, each with its outbox status and, once anchored, its batch."""
        rows = self.session.execute(
            select(Event, Outbox.status, Batch)
            .join(EventLot, EventLot.event_id == Event.id)
            .join(Outbox, Outbox.event_id == Event.id)
            .outerjoin(Batch, (Batch.id == Outbox.batch_id) & (Outbox.status == OutboxStatus.ANCHORED))
            .where(EventLot.lot_code == lot_code)
            .order_by(EventLot.seq)
        ).all()
        return [(e, str(status), batch) for e, status, batch in rows]

    # --- sign-in and tokens ---------------------------------------------------------------------------
    def auth_token(self, token_hash: str) -> AuthToken | None:
        return self.session.get(AuthToken, token_hash)

    def account_failures(self, account_key: str, since: datetime) -> tuple[int, datetime | None]:
        """(failed attempts, the latest) for one account since ``since`` and after its last success."""
        last_ok = self.session.scalar(
            select(func.max(LoginAttempt.created_at)).where(
                LoginAttempt.account_key == account_key, LoginAttempt.succeeded.is_(True)
            )
        )
        if last_ok is not None and last_ok > since:
            since = last_ok
        return self._failures(LoginAttempt.account_key == account_key, since)

    def client_failures(self, client: str, since: datetime) -> tuple[int, datetime | None]:
        """(failed attempts, the latest) from one client address since ``since``, whatever the account: a
        success on the attacker's own account must not reset the count."""
        return self._failures(LoginAttempt.client == client, since)

    def _failures(self, where: Any, since: datetime) -> tuple[int, datetime | None]:
        row = self.session.execute(
            select(func.count(), func.max(LoginAttempt.created_at)).where(
                where, LoginAttempt.succeeded.is_(False), LoginAttempt.created_at > since
            )
        ).one()
        return int(row[0]), row[1]

    def purge_login_attempts(self, before: datetime) -> None:
        self.session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < before))

    def delete_auth_token(self, token_hash: str) -> None:
        self.session.execute(delete(AuthToken).where(AuthToken.token_hash == token_hash))

    def purge_auth_tokens(self, expired_before: datetime) -> None:
        self.session.execute(delete(AuthToken).where(AuthToken.expires_at < expired_before))

    def begin_writing(self) -> None:
        """Open the write transaction now. pysqlite defers its BEGIN to the first INSERT/UPDATE/DELETE, so a
        SAVEPOINT taken before any write would itself become the outer transaction and its RELEASE would
        commit: a batch's all-or-nothing would silently break on SQLite. A no-op UPDATE begins it."""
        self.session.execute(update(LedgerMeta).where(LedgerMeta.key != LedgerMeta.key).values(value=""))

    # --- outbox and batches ---------------------------------------------------------------------------
    def pending_count(self) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.status == OutboxStatus.PENDING)
            )
            or 0
        )

    def oldest_pending_at(self) -> datetime | None:
        return self.session.scalar(
            select(func.min(Outbox.created_at)).where(Outbox.status == OutboxStatus.PENDING)
        )

    def claim_pending(self, limit: int, *, skip_locked: bool) -> Sequence[tuple[Outbox, str]]:
        stmt = (
            select(Outbox, Event.hash)
            .join(Event, Event.id == Outbox.event_id)
            .where(Outbox.status == OutboxStatus.PENDING)
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

    # --- write-ahead chain operations (services/chainops.py) -----------------------------------------
    def add_chain_op(self, kind: str, subject: str, payload: dict[str, object]) -> ChainOp:
        op = ChainOp(kind=kind, subject=subject, payload=payload, status=ChainOpStatus.INTENT, attempts=0)
        self.session.add(op)
        self.session.flush()
        return op

    def chain_op(self, op_id: int) -> ChainOp | None:
        return self.session.get(ChainOp, op_id)

    def chain_ops_in(self, statuses: Sequence[str], *, kind: str | None = None) -> Sequence[ChainOp]:
        stmt = select(ChainOp).where(ChainOp.status.in_(list(statuses)))
        if kind is not None:
            stmt = stmt.where(ChainOp.kind == kind)
        return self.session.scalars(stmt.order_by(ChainOp.id)).all()

    def chain_ops_for(self, subject: str, *, kind: str) -> Sequence[ChainOp]:
        return self.session.scalars(
            select(ChainOp).where(ChainOp.subject == subject, ChainOp.kind == kind).order_by(ChainOp.id)
        ).all()

    def claim_chain_op(
        self, op_id: int, *, status: str, attempts: int, stale_before: datetime | None = None
    ) -> bool:
        """Compare-and-set: take the op (status ``sent``, attempts + 1) only if it still has the ``status``
        and ``attempts`` it was read with and, given ``stale_before``, was last touched before then. The one
        statement is atomic on both backends, so of two processes at most one takes it. True if taken."""
        stmt = update(ChainOp).where(
            ChainOp.id == op_id, ChainOp.status == status, ChainOp.attempts == attempts
        )
        if stale_before is not None:
            stmt = stmt.where(ChainOp.updated_at <= stale_before)
        values = {"status": ChainOpStatus.SENT.value, "attempts": attempts + 1, "updated_at": utcnow()}
        return self._rowcount(stmt.values(**values)) == 1

    def update_claimed_chain_op(self, op_id: int, claim: int, **values: object) -> bool:
        """Write to an op only while claim number ``claim`` still holds it (status ``sent``, attempts equal):
        a process whose claim was taken over writes nothing. True if written."""
        stmt = (
            update(ChainOp)
            .where(ChainOp.id == op_id, ChainOp.status == ChainOpStatus.SENT, ChainOp.attempts == claim)
            .values(**values, updated_at=utcnow())
        )
        return self._rowcount(stmt) == 1

    def _rowcount(self, stmt: Any) -> int:
        result = self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(cast("CursorResult[Any]", result).rowcount)

    # --- provenance (public pages) ---------------------------------------------------------------------
    def plots_for(self, codes: Sequence[str], ids: Sequence[int]) -> Sequence[Plot]:
        """The plots named by code or by id, in one query (a lineage's origin plots)."""
        if not codes and not ids:
            return []
        return self.session.scalars(
            select(Plot).where(Plot.code.in_(list(codes)) | Plot.id.in_(list(ids))).order_by(Plot.code)
        ).all()

    def authorities_for(self, ids: Sequence[int], codes: Sequence[str]) -> Sequence[Authority]:
        """The authorities named by id or by code, in one query."""
        if not ids and not codes:
            return []
        return self.session.scalars(
            select(Authority)
            .where(Authority.id.in_(list(ids)) | Authority.code.in_(list(codes)))
            .order_by(Authority.code)
        ).all()

    def locations_by_codes(self, codes: Sequence[str]) -> Sequence[Location]:
        """The named places (packing houses, ports, ...) among ``codes``, in one query."""
        if not codes:
            return []
        return self.session.scalars(select(Location).where(Location.code.in_(list(codes)))).all()

    # --- EPCIS export ---------------------------------------------------------------------------------
    def descendant_lots(self, lot_code: str) -> set[str]:
        """The lot and every lot packing, splitting or merging made from it, however many steps on."""
        seen = {lot_code}
        frontier = {lot_code}
        while frontier:
            frontier = self.child_lots(sorted(frontier)) - seen
            seen |= frontier
        return seen

    # --- FSMA 204 (descendant_lots above serves it too) ----------------------------------------------
    def lot_codes_of_crops(self, crops: Sequence[str]) -> set[str]:
        """Codes of the lots of these crops (a packed lot carries the crop of what it was packed from)."""
        if not crops:
            return set()
        return set(self.session.scalars(select(Lot.code).where(Lot.crop.in_(list(crops)))).all())

    def events_touching_between(
        self, lot_codes: Sequence[str], since: datetime, until: datetime
    ) -> Sequence[Event]:
        """Events touching any of ``lot_codes`` with ``since <= event_time < until`` (UTC), in time order."""
        ids = select(EventLot.event_id).where(EventLot.lot_code.in_(list(lot_codes))).distinct()
        return self.session.scalars(
            select(Event)
            .where(Event.id.in_(ids), Event.event_time >= since, Event.event_time < until)
            .order_by(Event.event_time, Event.recorded_at)
        ).all()

    # --- origin risk (services/risk.py) ---------------------------------------------------------------------

    def risk_fingerprint(self) -> tuple[Any, ...]:
        """What changes whenever anything the origin-risk signals read changes: events, plots, places."""
        events = self.session.execute(select(func.count(Event.id), func.max(Event.recorded_at))).one()
        plots = self.session.execute(
            select(func.count(Plot.id), func.sum(Plot.area_rai), func.max(Plot.created_at))
        ).one()
        places = self.session.execute(select(func.count(Location.id), func.max(Location.created_at))).one()
        return (*events, *plots, *places)

    def events_of_kinds(self, kinds: Sequence[str]) -> Sequence[Event]:
        return self.session.scalars(
            select(Event).where(Event.kind.in_(list(kinds))).order_by(Event.event_time, Event.id)
        ).all()

    def plot_facts(self) -> Sequence[tuple[Plot, str, Authority]]:
        """Every plot with its farmer's code and its authority."""
        rows = self.session.execute(
            select(Plot, Farmer.code, Authority)
            .join(Farmer, Farmer.id == Plot.farmer_id)
            .join(Authority, Authority.id == Plot.authority_id)
            .order_by(Plot.code)
        ).all()
        return [(p, code, a) for p, code, a in rows]

    def place_coordinates(self) -> Sequence[tuple[str, Any, Any]]:
        return self.session.execute(
            select(Location.code, Location.lat, Location.lon).where(Location.lat.is_not(None))
        ).all()

    def lots_of_authority(self, authority_id: int) -> Sequence[Lot]:
        return self.session.scalars(
            select(Lot).where(Lot.authority_id == authority_id).order_by(Lot.created_at, Lot.code)
        ).all()
