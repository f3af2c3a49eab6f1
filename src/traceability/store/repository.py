"""All queries live here. Repositories ``add`` and ``flush``; the caller's transaction commits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from traceability.domain.events import Event as DomainEvent
from traceability.domain.ingest import LotFacts, PlotFacts, PriorEvent
from traceability.domain.risk import RISK_KINDS, EventFacts, canonical_crop, event_facts, season_of
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
    RiskFact,
    RiskPopulation,
    utcnow,
)

_V = TypeVar("_V")
_W = TypeVar("_W")


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
    def token_principal(self, token_hash: str) -> Any:
        """(role, expires_at, farmer id, code and authority, officer id, authority and status) of a token, or
        None: one round trip, no ORM objects (every API request and signed-in page asks it). The account is
        read with the token, so a revoked officer or a deleted token is refused by the very next request in
        any process: nothing about a token is cached."""
        return self.session.execute(_TOKEN_PRINCIPAL, {"token_hash": token_hash}).one_or_none()

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

    def claim_pending(self, limit: int, *, skip_locked: bool) -> Sequence[tuple[int, uuid.UUID, str]]:
        """The oldest ``limit`` pending events as (outbox id, event id, event hash), their outbox rows locked
        until the transaction ends (``skip_locked``: PostgreSQL's FOR UPDATE SKIP LOCKED, so two claimers
        never take the same row). Plain rows, no ORM objects: a batch of thousands is claimed in bulk."""
        stmt = (
            select(Outbox.id, Outbox.event_id, Event.hash)
            .join(Event, Event.id == Outbox.event_id)
            .where(Outbox.status == OutboxStatus.PENDING)
            .order_by(Outbox.id)
            .limit(limit)
        )
        if skip_locked:
            stmt = stmt.with_for_update(of=Outbox, skip_locked=True)
        return [(int(i), e, str(h)) for i, e, h in self.session.execute(stmt).all()]

    def add_batch(self, root: str, event_count: int) -> int:
        """A new ``sending`` batch row; its id."""
        batch = Batch(root=root, event_count=event_count, status=BatchStatus.SENDING, attempts=0)
        self.session.add(batch)
        self.session.flush()
        return batch.id

    def batch_claimed(
        self, batch_id: int, outbox_ids: Sequence[int], proofs: Sequence[tuple[uuid.UUID, list[str]]]
    ) -> int:
        """Put the claimed outbox rows in ``batch_id`` (one UPDATE; only rows still pending, so a row taken
        meanwhile is never taken twice) and store each event's proof (one Core executemany INSERT, which
        SQLAlchemy sends as multi-row VALUES). The number of outbox rows updated."""
        updated = self._rowcount(
            update(Outbox)
            .where(Outbox.id.in_(list(outbox_ids)), Outbox.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.BATCHED.value, batch_id=batch_id)
        )
        # Core on the table, not the ORM's bulk path: that one walks its unit of work row by row.
        self.session.connection().execute(
            insert(BatchEvent.metadata.tables[BatchEvent.__tablename__]),
            [{"batch_id": batch_id, "event_id": event_id, "proof": proof} for event_id, proof in proofs],
        )
        return updated

    def batch_sent(self, batch_id: int, tx_hash: str, sent_at: datetime) -> None:
        """Record the transaction a ``sending`` batch was just sent in (its first or a later attempt)."""
        self._rowcount(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == BatchStatus.SENDING)
            .values(tx_hash=tx_hash, attempts=Batch.attempts + 1, sent_at=sent_at)
        )

    def batches_in(self, statuses: Sequence[str]) -> Sequence[Batch]:
        return self.session.scalars(
            select(Batch).where(Batch.status.in_(list(statuses))).order_by(Batch.id)
        ).all()

    def set_outbox_status(self, batch_ids: Sequence[int], status: str) -> None:
        """One UPDATE for the outbox rows of every batch in ``batch_ids``."""
        if batch_ids:
            self._rowcount(update(Outbox).where(Outbox.batch_id.in_(list(batch_ids))).values(status=status))

    def batch_events(self, batch_id: int) -> Sequence[tuple[BatchEvent, str]]:
        rows = self.session.execute(
            select(BatchEvent, Event.hash)
            .join(Event, Event.id == BatchEvent.event_id)
            .where(BatchEvent.batch_id == batch_id)
        ).all()
        return [(be, str(h)) for be, h in rows]

    def orphan_batch_events(self) -> list[tuple[int, uuid.UUID]]:
        """(batch id, event id) of every batch leaf whose event row is gone: only a deletion with foreign keys
        off or bypassed leaves one, and ``trace reconcile`` names it."""
        rows = self.session.execute(
            select(BatchEvent.batch_id, BatchEvent.event_id)
            .outerjoin(Event, Event.id == BatchEvent.event_id)
            .where(Event.id.is_(None))
            .order_by(BatchEvent.batch_id)
        ).all()
        return [(int(b), e) for b, e in rows]

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

    def events_of_kinds(self, kinds: Sequence[str]) -> Sequence[Event]:
        return self.session.scalars(
            select(Event).where(Event.kind.in_(list(kinds))).order_by(Event.event_time, Event.id)
        ).all()

    def plot_facts(self) -> list[tuple[Any, ...]]:
        """Every plot as :attr:`RISK_PLOT` reads it."""
        return [tuple(row) for row in self.session.execute(self.RISK_PLOT.order_by(Plot.code)).all()]

    def place_coordinates(self) -> Sequence[tuple[str, Any, Any]]:
        return self.session.execute(
            select(Location.code, Location.lat, Location.lon).where(Location.lat.is_not(None))
        ).all()

    def lots_of_authority(self, authority_id: int) -> Sequence[Lot]:
        return self.session.scalars(
            select(Lot).where(Lot.authority_id == authority_id).order_by(Lot.created_at, Lot.code)
        ).all()

    def insert_risk_facts(self, rows: Sequence[dict[str, Any]]) -> None:
        """Risk facts (:func:`risk_fact_row`) of events already written in this transaction."""
        if rows:
            self.session.flush()
            self.session.connection().execute(insert(cast(Table, RiskFact.__table__)), list(rows))

    def risk_planted_lots(self, plots: Sequence[str], crop_key: str, season: str) -> set[str]:
        """The lots of ``crop_key`` (canonical) planted on ``plots`` in ``season``."""
        found: set[str] = set()
        for some in _chunks(plots, self.RISK_CHUNK):
            found.update(
                self.session.scalars(
                    select(RiskFact.lot_code).where(
                        RiskFact.plot.in_(some),
                        RiskFact.crop_key == crop_key,
                        RiskFact.season == season,
                        RiskFact.kind == "planting",
                    )
                )
            )
        return found

    def risk_yield_facts(self, lots: Sequence[str]) -> list[EventFacts]:
        """The facts of the plantings and harvests of ``lots``, by lot, then in the ledger's order."""
        out: list[EventFacts] = []
        for some in _chunks(sorted(set(lots)), self.RISK_CHUNK):
            rows = self.session.execute(
                _RISK_FACT.where(RiskFact.lot_code.in_(some), RiskFact.kind.in_(("planting", "harvest")))
            ).all()
            out += [facts_of_row(row) for row in rows]
        return sorted(out, key=lambda f: (f.lots[0], f.event_time, uuid.UUID(f.event_id)))

    def risk_all_facts(self) -> Iterator[EventFacts]:
        """Every risk fact in the ledger's order (event time, then id), streamed: what the population is
        learned from."""
        statement = _RISK_FACT.order_by(RiskFact.event_time, RiskFact.event_id)
        for row in self.session.execute(statement.execution_options(yield_per=2000)):
            yield facts_of_row(row)

    def stored_population_stamp(self, settings: str) -> tuple[str, datetime] | None:
        """(version, learned at) of the stored population of ``settings``: whether it is new, without its
        body."""
        row = self.session.execute(
            select(RiskPopulation.version, RiskPopulation.learned_at).where(
                RiskPopulation.settings == settings
            )
        ).one_or_none()
        return (str(row[0]), row[1]) if row is not None else None

    def stored_population(self, settings: str) -> tuple[str, datetime, str] | None:
        """(version, learned at, body) of the stored population of ``settings``, as stored now (not as this
        session may have read it before)."""
        row = self.session.execute(
            select(RiskPopulation.version, RiskPopulation.learned_at, RiskPopulation.body).where(
                RiskPopulation.settings == settings
            )
        ).one_or_none()
        return (str(row[0]), row[1], str(row[2])) if row is not None else None

    def store_population(self, settings: str, version: str, learned_at: datetime, body: str) -> None:
        """Keep ``body`` as the population of ``settings``, in place of the last one: one upsert, so that two
        processes storing at once both succeed (the later one's stays)."""
        values = {"settings": settings, "version": version, "learned_at": learned_at, "body": body}
        dialect = self.session.get_bind().dialect.name
        upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = upsert(RiskPopulation).values(**values)
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[RiskPopulation.settings],
                set_={k: statement.excluded[k] for k in ("version", "learned_at", "body")},
            )
        )

    # --- snapshot for recording (services/events.py) ----------------------------------------------------
    # Set-based: one statement per question for a whole batch. The statements are built once (the module's
    # _SNAPSHOT_* below: building a select costs more than running it on an indexed key); their IN lists are
    # cut into SNAPSHOT_CHUNK values so a batch naming tens of thousands of lots stays under SQLite's and
    # PostgreSQL's limits on parameters.

    SNAPSHOT_CHUNK = 5000

    def prior_events(
        self, event_ids: Sequence[uuid.UUID], keys: Sequence[str]
    ) -> tuple[dict[uuid.UUID, PriorEvent], dict[str, PriorEvent]]:
        """Events already stored under any of ``event_ids`` or idempotency ``keys``: by id and by key."""
        by_id: dict[uuid.UUID, PriorEvent] = {}
        by_key: dict[str, PriorEvent] = {}
        for ids, some_keys in _zip_chunks(event_ids, keys, self.SNAPSHOT_CHUNK):
            rows = self.session.execute(_SNAPSHOT_PRIORS, {"ids": ids, "keys": some_keys})
            for event_id, digest, kind, body, key in rows:
                prior = PriorEvent(event_id, digest, kind, body)
                by_id[event_id] = prior
                if key is not None:
                    by_key[key] = prior
        return by_id, by_key

    def lots_with_heads(self, codes: Sequence[str]) -> tuple[dict[str, LotFacts], dict[str, tuple[int, str]]]:
        """The lots among ``codes`` and, for those with events, their head: (seq, hash) of the latest."""
        lots: dict[str, LotFacts] = {}
        heads: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(codes, self.SNAPSHOT_CHUNK):
            rows = self.session.execute(_SNAPSHOT_LOTS, {"lot_codes": chunk, "head_codes": chunk})
            for code, crop, th, en, gtin, authority_id, plot_id, seq, digest in rows:
                lots[code] = LotFacts(code, crop, th, en, gtin, authority_id, plot_id)
                if seq is not None:
                    heads[code] = (int(seq), str(digest))
        return lots, heads

    def plots_with_owners(self, codes: Sequence[str], ids: Sequence[int]) -> dict[str, PlotFacts]:
        """The plots named by code or by id, each with its farmer's and its authority's code, by code."""
        plots: dict[str, PlotFacts] = {}
        for some_codes, some_ids in _zip_chunks(codes, ids, self.SNAPSHOT_CHUNK):
            rows = self.session.execute(_SNAPSHOT_PLOTS, {"codes": some_codes, "ids": some_ids})
            for plot_id, code, farmer_id, farmer_code, authority_id, authority_code in rows:
                plots[code] = PlotFacts(plot_id, code, farmer_id, farmer_code, authority_id, authority_code)
        return plots

    def lineage_parents(self, codes: Sequence[str]) -> dict[str, frozenset[str]]:
        """lot → the lots it was packed from, for ``codes`` and every lot they descend from: one query per
        generation of packing, whatever the number of lots."""
        parents: dict[str, set[str]] = {}
        frontier = set(codes)
        while frontier:
            found: dict[str, set[str]] = {}
            for chunk in _chunks(sorted(frontier), self.SNAPSHOT_CHUNK):
                for child, parent in self.session.execute(_SNAPSHOT_PARENTS, {"codes": chunk}):
                    found.setdefault(child, set()).add(parent)
            parents.update(found)
            frontier = {p for ps in found.values() for p in ps} - parents.keys() - frontier
        return {child: frozenset(ps) for child, ps in parents.items()}

    def bodies_touching(self, codes: Sequence[str], kinds: Sequence[str]) -> list[str]:
        """The stored bodies of every event of ``kinds`` touching ``codes``, in (event_time, recorded_at)
        order."""
        found: dict[uuid.UUID, tuple[datetime, datetime, str]] = {}
        for chunk in _chunks(codes, self.SNAPSHOT_CHUNK):
            for event_id, event_time, recorded_at, body in self.session.execute(
                _SNAPSHOT_HISTORY, {"codes": chunk, "kinds": list(kinds)}
            ):
                found[event_id] = (event_time, recorded_at, body)
        return [body for _, _, body in sorted(found.values(), key=lambda row: (row[0], row[1]))]

    def insert_recorded(
        self,
        *,
        lots: Sequence[dict[str, Any]],
        events: Sequence[dict[str, Any]],
        links: Sequence[dict[str, Any]],
        outbox: Sequence[dict[str, Any]],
        facts: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write a batch's new rows, one statement per table, lots before the events that create them, the
        events' risk facts (:func:`risk_fact_row`) after them. Rows give every column that has no
        server-side default.

        On PostgreSQL each table's rows go in one ``COPY ... FROM STDIN`` on the session's own connection, in
        its transaction: psycopg's ``executemany`` would send one (pipelined) INSERT per row, three times the
        client's CPU per event and more of the server's. Elsewhere one Core bulk INSERT per table on the
        connection (neither the ORM's bulk path nor the session's execute, whose bookkeeping costs more than
        the statement here). A refused unique or foreign key is SQLAlchemy's ``IntegrityError`` either way."""
        self.session.flush()  # the rows go past the session: whatever it holds must be written first
        connection = self.session.connection()
        copy = connection.dialect.name == "postgresql"
        tables = ((Lot, lots), (Event, events), (EventLot, links), (Outbox, outbox), (RiskFact, facts))
        for model, rows in tables:
            if not rows:
                continue
            table = cast(Table, model.__table__)
            if copy:
                _copy_rows(connection, table, rows)
            else:
                connection.execute(insert(table), list(rows))

    # --- origin-risk scope (services/risk.py) ---------------------------------------------------------
    # A lot's risk reads the lots its signals compare it with, never the whole ledger: a few set-based
    # queries, IN lists cut into RISK_CHUNK values (under SQLite's and PostgreSQL's parameter limits).

    RISK_CHUNK = 500
    RISK_PLOT = (
        select(
            Plot.code, Farmer.code, Plot.area_rai, Authority.district_th, Authority.code, Plot.lat, Plot.lon
        )
        .join(Farmer, Farmer.id == Plot.farmer_id)
        .join(Authority, Authority.id == Plot.authority_id)
    )
    """A plot as origin risk reads it: code, farmer's code, enrolled rai, district, authority, lat, lon."""

    def risk_plantings(self, codes: Sequence[str]) -> list[tuple[str, str, int, str, datetime]]:
        """The planted lots among ``codes``: (lot, crop as recorded, farmer id, district, planted at)."""
        out: list[tuple[str, str, int, str, datetime]] = []
        unique = sorted(set(codes))
        for start in range(0, len(unique), self.RISK_CHUNK):
            rows = self.session.execute(
                select(Lot.code, Lot.crop, Plot.farmer_id, Authority.district_th, Event.event_time)
                .join(Plot, Plot.id == Lot.plot_id)
                .join(Authority, Authority.id == Plot.authority_id)
                .join(EventLot, (EventLot.lot_code == Lot.code) & (EventLot.role == LotRole.OUT))
                .join(Event, (Event.id == EventLot.event_id) & (Event.kind == "planting"))
                .where(Lot.code.in_(unique[start : start + self.RISK_CHUNK]))
            )
            out += [(str(c), str(crop), int(f), str(d), t) for c, crop, f, d, t in rows]
        return out

    def risk_peer_plots(self, district: str | None, farmer_id: int) -> list[str]:
        """The plots of ``district`` (unless None) and of the farmer: where the lots a harvest lot is judged
        with (its yield group, its plot's other lots, its farmer's season) were planted."""
        where = Plot.farmer_id == farmer_id
        if district is not None:
            where = where | (Authority.district_th == district)
        return [
            str(code)
            for code in self.session.scalars(
                select(Plot.code).join(Authority, Authority.id == Plot.authority_id).where(where)
            ).all()
        ]

    def risk_events(self, codes: Sequence[str], kinds: Sequence[str]) -> list[Event]:
        """The events of ``kinds`` touching any of ``codes``, in (event_time, id) order as
        :meth:`events_of_kinds` gives the whole ledger's."""
        found: dict[uuid.UUID, Event] = {}
        unique = sorted(set(codes))
        for start in range(0, len(unique), self.RISK_CHUNK):
            ids = select(EventLot.event_id).where(
                EventLot.lot_code.in_(unique[start : start + self.RISK_CHUNK])
            )
            for row in self.session.scalars(
                select(Event).where(Event.id.in_(ids), Event.kind.in_(list(kinds)))
            ).all():
                found[row.id] = row
        return sorted(found.values(), key=lambda e: (e.event_time, e.id))

    def risk_plots(self, codes: Sequence[str], farmer_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """The plots named by code, and every plot of the farmers named (their enrolled land), as
        :attr:`RISK_PLOT` reads them (columns, not ORM objects: a scope may name thousands)."""
        out: dict[str, tuple[Any, ...]] = {}
        unique_codes, unique_ids = sorted(set(codes)), sorted(set(farmer_ids))
        for start in range(0, max(len(unique_codes), len(unique_ids)), self.RISK_CHUNK):
            some_codes = unique_codes[start : start + self.RISK_CHUNK]
            some_ids = unique_ids[start : start + self.RISK_CHUNK]
            rows = self.session.execute(
                self.RISK_PLOT.where(Plot.code.in_(some_codes) | Plot.farmer_id.in_(some_ids))
            ).all()
            out.update((str(row[0]), tuple(row)) for row in rows)
        return [out[code] for code in sorted(out)]

    def risk_places(self, codes: Sequence[str]) -> list[tuple[str, Any, Any]]:
        """The coordinates of the named places among ``codes``."""
        out: list[tuple[str, Any, Any]] = []
        unique = sorted(set(codes))
        for start in range(0, len(unique), self.RISK_CHUNK):
            rows = self.session.execute(
                select(Location.code, Location.lat, Location.lon).where(
                    Location.code.in_(unique[start : start + self.RISK_CHUNK]), Location.lat.is_not(None)
                )
            ).all()
            out += [(str(c), lat, lon) for c, lat, lon in rows]
        return out

    def risk_ledger_version(self) -> tuple[Any, ...]:
        """What changes whenever an event is recorded or a plot or place enrolled or changed, read from
        primary keys (the outbox row written with every event) and the plots' areas: cheap enough to ask on
        every request, where counting a million events is not."""
        outbox = self.session.scalar(select(func.max(Outbox.id)))
        plots = self.session.execute(select(func.max(Plot.id), func.sum(Plot.area_rai))).one()
        places = self.session.scalar(select(func.max(Location.id)))
        return (outbox, *plots, places)

    def risk_packing_parents(self, codes: Sequence[str]) -> dict[str, set[str]]:
        """lot → the lots it was packed from, for the packed lots among ``codes`` (one generation)."""
        out: dict[str, set[str]] = {}
        unique = sorted(set(codes))
        made, used = aliased(EventLot), aliased(EventLot)
        for start in range(0, len(unique), self.RISK_CHUNK):
            rows = self.session.execute(
                select(made.lot_code, used.lot_code)
                .join(used, used.event_id == made.event_id)
                .where(
                    made.lot_code.in_(unique[start : start + self.RISK_CHUNK]),
                    made.role == LotRole.OUT,
                    used.role == LotRole.IN,
                )
            ).all()
            for child, parent in rows:
                out.setdefault(str(child), set()).add(str(parent))
        return out


def _snapshot_lots() -> Select[Any]:
    """Lots by code, each with its head (the (seq, hash) of its latest event) where it has events."""
    latest = (
        select(EventLot.lot_code, func.max(EventLot.seq).label("seq"))
        .where(EventLot.lot_code.in_(bindparam("head_codes", expanding=True)))
        .group_by(EventLot.lot_code)
        .subquery()
    )
    head = (
        select(latest.c.lot_code, latest.c.seq, Event.hash)
        .join(EventLot, (EventLot.lot_code == latest.c.lot_code) & (EventLot.seq == latest.c.seq))
        .join(Event, Event.id == EventLot.event_id)
        .subquery()
    )
    return (
        select(
            Lot.code,
            Lot.crop,
            Lot.product_th,
            Lot.product_en,
            Lot.gtin,
            Lot.authority_id,
            Lot.plot_id,
            head.c.seq,
            head.c.hash,
        )
        .outerjoin(head, head.c.lot_code == Lot.code)
        .where(Lot.code.in_(bindparam("lot_codes", expanding=True)))
    )


def _snapshot_parents() -> Select[str, str]:
    """(lot, a lot it was packed from) for the lots ``codes``."""
    made = aliased(EventLot)
    used = aliased(EventLot)
    return (
        select(made.lot_code, used.lot_code)
        .join(used, used.event_id == made.event_id)
        .where(
            made.lot_code.in_(bindparam("codes", expanding=True)),
            made.role == LotRole.OUT,
            used.role == LotRole.IN,
        )
    )


_SNAPSHOT_PRIORS = select(Event.id, Event.hash, Event.kind, Event.body, Event.idempotency_key).where(
    Event.id.in_(bindparam("ids", expanding=True))
    | Event.idempotency_key.in_(bindparam("keys", expanding=True))
)
_SNAPSHOT_LOTS = _snapshot_lots()
_SNAPSHOT_PLOTS = (
    select(Plot.id, Plot.code, Plot.farmer_id, Farmer.code, Plot.authority_id, Authority.code)
    .join(Farmer, Farmer.id == Plot.farmer_id)
    .join(Authority, Authority.id == Plot.authority_id)
    .where(Plot.code.in_(bindparam("codes", expanding=True)) | Plot.id.in_(bindparam("ids", expanding=True)))
)
_SNAPSHOT_PARENTS = _snapshot_parents()
_SNAPSHOT_HISTORY = select(Event.id, Event.event_time, Event.recorded_at, Event.body).where(
    Event.id.in_(
        select(EventLot.event_id).where(EventLot.lot_code.in_(bindparam("codes", expanding=True))).distinct()
    ),
    Event.kind.in_(bindparam("kinds", expanding=True)),
)


_TOKEN_PRINCIPAL = (
    select(
        AuthToken.role,
        AuthToken.expires_at,
        Farmer.id,
        Farmer.code,
        Farmer.authority_id,
        Officer.id,
        Officer.authority_id,
        Officer.status,
    )
    .outerjoin(Farmer, Farmer.id == AuthToken.farmer_id)
    .outerjoin(Officer, Officer.id == AuthToken.officer_id)
    .where(AuthToken.token_hash == bindparam("token_hash"))
)


_RISK_FACT = select(
    RiskFact.event_id,
    RiskFact.event_time,
    RiskFact.actor,
    RiskFact.lots,
    RiskFact.codes,
    RiskFact.evidence,
    RiskFact.crop,
    RiskFact.plot,
    RiskFact.area_rai,
    RiskFact.kg,
    RiskFact.leg,
    RiskFact.source,
    RiskFact.destination,
)


def risk_fact_row(event: DomainEvent) -> dict[str, Any] | None:
    """The ``risk_facts`` row of ``event`` (every column), or None when origin risk reads nothing of it."""
    facts = event_facts(event) if event.kind in RISK_KINDS else None
    if facts is None:
        return None
    crop, plot, area = facts.planted if facts.planted is not None else (None, None, None)
    leg, source, destination = facts.leg if facts.leg is not None else (None, None, None)
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "event_time": facts.event_time,
        "actor": facts.actor,
        "lot_code": facts.lots[0],
        "lots": json.dumps(facts.lots, separators=(",", ":")),
        "codes": json.dumps(facts.codes, separators=(",", ":")),
        "evidence": json.dumps(facts.evidence, separators=(",", ":")) if facts.evidence else None,
        "crop": crop,
        "crop_key": canonical_crop(crop) if crop is not None else None,
        "plot": plot,
        "area_rai": str(area) if area is not None else None,
        "season": season_of(facts.event_time) if crop is not None else None,
        "kg": str(facts.harvested) if facts.harvested is not None else None,
        "leg": leg,
        "source": source,
        "destination": destination,
    }


def facts_of_row(row: Any) -> EventFacts:
    """The :class:`EventFacts` a ``risk_facts`` row (as :data:`_RISK_FACT` selects it) keeps."""
    (event_id, event_time, actor, lots, codes, evidence, crop, plot, area, kg, leg, source, dest) = row
    return EventFacts(
        str(event_id),
        event_time,
        actor,
        tuple(json.loads(lots)),
        tuple(json.loads(codes)),
        tuple(json.loads(evidence)) if evidence else (),
        (crop, plot, Decimal(area)) if crop is not None else None,
        Decimal(kg) if kg is not None else None,
        (leg, source, dest) if leg is not None else None,
    )


def _copy_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` into ``table`` by one ``COPY ... FROM STDIN`` (psycopg 3) in the connection's transaction.
    psycopg adapts each value by its type (a UUID as uuid, an aware datetime as timestamptz); an enum member
    is written by its value, as the column's type writes it in an INSERT."""
    quote = connection.dialect.identifier_preparer
    columns = list(rows[0])
    statement = f"COPY {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[column] for column in columns]
                copy.write_row([v.value if isinstance(v, Enum) else v for v in values])
    except connection.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, connection.dialect.loaded_dbapi.Error) from exc


def _chunks(values: Sequence[_V], size: int) -> Iterator[list[_V]]:
    """``values`` deduplicated, in pieces of at most ``size`` (none for no values)."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


def _zip_chunks(first: Sequence[_V], second: Sequence[_W], size: int) -> Iterator[tuple[list[_V], list[_W]]]:
    """Two lists queried together (``a IN (...) OR b IN (...)``), cut into pieces side by side."""
    left = list(_chunks(first, size))
    right = list(_chunks(second, size))
    for n in range(max(len(left), len(right))):
        yield (left[n] if n < len(left) else []), (right[n] if n < len(right) else [])
