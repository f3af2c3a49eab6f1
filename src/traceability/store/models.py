"""SQLAlchemy 2 ORM models: the SQL mirror, the system of record for event payloads.

Events are append-only: a correction is a new event. Outbox and batch rows carry the anchoring state
machine, which does change (pending → batched → anchored; sending → mined → anchored).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from traceability.domain.catalog import BusinessKind, FarmingStandard, LocationKind
from traceability.domain.states import (
    BatchStatus,
    ChainOpKind,
    ChainOpStatus,
    LotRole,
    OutboxStatus,
    PartyStatus,
    Role,
    check_in,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on every backend: SQLite keeps no offset, so values are stored and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: every stored time carries a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Authority(Base):
    """A local administrative organisation (อปท.) that vouches for origin."""

    __tablename__ = "authorities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    district_th: Mapped[str] = mapped_column(String(100))
    province_th: Mapped[str] = mapped_column(String(100))
    admin_address: Mapped[str | None] = mapped_column(String(42))
    # Public contact of the office (FSMA 204 location descriptions, EPCIS master data): never a person's.
    district_en: Mapped[str | None] = mapped_column(String(100))
    province_en: Mapped[str | None] = mapped_column(String(100))
    address_th: Mapped[str | None] = mapped_column(String(300))
    address_en: Mapped[str | None] = mapped_column(String(300))
    phone: Mapped[str | None] = mapped_column(String(24))
    # pending until its registration on chain is final (write-ahead: see services/chainops.py)
    status: Mapped[str] = mapped_column(String(12), default=PartyStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint(check_in("status", PartyStatus), name="status"),)


class Farmer(Base):
    """A community enterprise member. ``code`` is the pseudonym events carry; name and phone stay here."""

    __tablename__ = "farmers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id"))
    display_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    group_th: Mapped[str | None] = mapped_column(String(200))
    # The community enterprise (or co-operative) the farmer sells through: its name, address and business
    # phone describe the farmer's fields in exports, so the farmer's own never has to.
    business_id: Mapped[int | None] = mapped_column(ForeignKey("businesses.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    authority: Mapped[Authority] = relationship(lazy="raise")


class Business(Base):
    """A business party: community enterprise, co-operative, exporter, importer, carrier. ``code`` is the
    party code events carry (``{id_base}/party/{code}``); name, address and phone are its public business
    contact (FSMA 204 asks for a business name, address and phone for each location)."""

    __tablename__ = "businesses"
    __table_args__ = (CheckConstraint(check_in("kind", BusinessKind), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    address_th: Mapped[str | None] = mapped_column(String(300))
    address_en: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2), default="TH")
    phone: Mapped[str | None] = mapped_column(String(24))
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("authorities.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Location(Base):
    """A place events name that is not a farmer's plot: a farm (a farmer's holding of several plots), a
    packing house, a cold store, a port, an office. ``code`` is the place code (``{id_base}/place/{code}``);
    ``business_id`` the business that operates it (whose contact describes it in exports)."""

    __tablename__ = "locations"
    __table_args__ = (CheckConstraint(check_in("kind", LocationKind), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    address_th: Mapped[str | None] = mapped_column(String(300))
    address_en: Mapped[str | None] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2), default="TH")
    lat: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    lon: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("authorities.id"))
    business_id: Mapped[int | None] = mapped_column(ForeignKey("businesses.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    """An importer's API key: only its SHA-256 is kept (a key is 256 random bits, so a fast hash is enough:
    nothing to brute-force). ``prefix`` (the key's first characters) lets an operator tell keys apart.
    Revoked keys are kept, with when."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Plot(Base):
    """A farmer's plot. ``code`` is what events carry; ``name`` is what the farmer calls it.

    ``boundary`` is a GeoJSON Polygon or MultiPolygon (EU deforestation rules ask exporters for it);
    ``boundary_area_rai`` is its area as computed at enrolment and ``boundary_flagged`` whether that was far
    from the declared ``area_rai`` (kept, not refused: the officer sees the warning). The three go together.
    Plots enrolled before names, crops and standards were recorded have them NULL. ``enrolment_key`` is the
    enrolment form's one-time token: a double tap or a resend finds the plot it already made."""

    __tablename__ = "plots"
    __table_args__ = (
        CheckConstraint(check_in("standard", FarmingStandard), name="standard"),
        CheckConstraint(
            "(boundary IS NULL AND boundary_area_rai IS NULL AND boundary_flagged IS NULL) OR "
            "(boundary IS NOT NULL AND boundary_area_rai IS NOT NULL AND boundary_flagged IS NOT NULL)",
            name="boundary_complete",
        ),
        UniqueConstraint("farmer_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    farmer_id: Mapped[int] = mapped_column(ForeignKey("farmers.id"))
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id"))
    village_th: Mapped[str] = mapped_column(String(200))
    village_en: Mapped[str] = mapped_column(String(200))
    area_rai: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    lat: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    lon: Mapped[Decimal | None] = mapped_column(Numeric(9, 6))
    name: Mapped[str | None] = mapped_column(String(100))
    crop: Mapped[str | None] = mapped_column(String(64))
    standard: Mapped[str | None] = mapped_column(String(24))
    boundary: Mapped[dict[str, object] | None] = mapped_column(JSON(none_as_null=True))
    boundary_area_rai: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    boundary_flagged: Mapped[bool | None] = mapped_column(Boolean)
    enrolment_key: Mapped[str | None] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    farmer: Mapped[Farmer] = relationship(lazy="raise")
    authority: Mapped[Authority] = relationship(lazy="raise")


class Officer(Base):
    """An อปท. officer. The private key exists only as an encrypted keystore opened with their passphrase."""

    __tablename__ = "officers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    authority_id: Mapped[int] = mapped_column(ForeignKey("authorities.id"))
    display_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(42), unique=True)
    keystore: Mapped[dict[str, object]] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default=PartyStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    authority: Mapped[Authority] = relationship(lazy="raise")

    __table_args__ = (CheckConstraint(check_in("status", PartyStatus), name="status"),)


class Lot(Base):
    """A lot code and what is known about it outside the events (product, GTIN, origin plot)."""

    __tablename__ = "lots"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    crop: Mapped[str] = mapped_column(String(64))
    product_th: Mapped[str] = mapped_column(String(200))
    product_en: Mapped[str] = mapped_column(String(200))
    gtin: Mapped[str | None] = mapped_column(String(14))
    authority_id: Mapped[int | None] = mapped_column(ForeignKey("authorities.id"))
    plot_id: Mapped[int | None] = mapped_column(ForeignKey("plots.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Event(Base):
    """One event: its canonical EPCIS 2.0 body and CBV 2.0 hash. Never updated."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(66), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)

    lots: Mapped[list[EventLot]] = relationship(lazy="raise", back_populates="event")


class EventLot(Base):
    """The event's place in each lot's hash chain: ``seq`` orders a lot's events; unique per lot."""

    __tablename__ = "event_lots"
    __table_args__ = (
        UniqueConstraint("lot_code", "seq"),
        CheckConstraint(check_in("role", LotRole), name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), index=True)
    lot_code: Mapped[str] = mapped_column(String(20))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))

    event: Mapped[Event] = relationship(lazy="raise", back_populates="lots")


class Outbox(Base):
    """Written in the same transaction as its event; the anchoring worker drains it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_id", "status", "id"),
        CheckConstraint(check_in("status", OutboxStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=OutboxStatus.PENDING)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Batch(Base):
    """A Merkle batch. Written with its root *before* the transaction is sent (write-ahead)."""

    __tablename__ = "batches"
    __table_args__ = (CheckConstraint(check_in("status", BatchStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root: Mapped[str] = mapped_column(String(66), unique=True)
    event_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default=BatchStatus.SENDING, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    block_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    anchored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchEvent(Base):
    """An event's leaf in a batch and its Merkle proof (JSON list of 0x hex siblings)."""

    __tablename__ = "batch_events"

    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), primary_key=True, index=True)
    proof: Mapped[list[str]] = mapped_column(JSON)


class CertificationRecord(Base):
    """An officer-signed certification as relayed to the chain (the signed EIP-712 data kept whole)."""

    __tablename__ = "certifications"

    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), unique=True)
    lot_code: Mapped[str] = mapped_column(String(20), index=True)
    authority_code: Mapped[str] = mapped_column(String(32))
    officer_address: Mapped[str] = mapped_column(String(42))
    standard: Mapped[str] = mapped_column(String(80))
    typed_data: Mapped[dict[str, object]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(132))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerMeta(Base):
    """Facts fixed when the ledger is first used, e.g. ``id_base``: the anchored hashes depend on them."""

    __tablename__ = "ledger_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChainOp(Base):
    """A chain write other than anchoring, recorded *before* it is sent (write-ahead), like a batch.

    ``intent`` (committed with everything needed to send it and to finish) → ``sent`` (claimed by one process
    with a compare-and-set on status and ``attempts``; its tx hash committed as soon as it is known) →
    ``done`` (receipt seen and the database rows it implies written) or ``failed`` (reverted, or can no
    longer be sent, e.g. its signature deadline passed). A restart looks each unfinished op up on chain first.
    The state machine is ``services/chainops.py``.
    """

    __tablename__ = "chain_ops"
    __table_args__ = (
        CheckConstraint(check_in("kind", ChainOpKind), name="kind"),
        CheckConstraint(check_in("status", ChainOpStatus), name="status"),
        Index("ix_chain_ops_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12), default=ChainOpStatus.INTENT)
    subject: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AuthToken(Base):
    """A bearer token, stored only as the SHA-256 of the token the client holds: a copy of this table lets no
    one sign in. It speaks for exactly one farmer or one officer until ``expires_at``."""

    __tablename__ = "auth_tokens"
    __table_args__ = (
        CheckConstraint(check_in("role", Role), name="role"),
        CheckConstraint(
            "(role = 'farmer' AND farmer_id IS NOT NULL AND officer_id IS NULL) OR "
            "(role = 'officer' AND officer_id IS NOT NULL AND farmer_id IS NULL)",
            name="one_party",
        ),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    farmer_id: Mapped[int | None] = mapped_column(ForeignKey("farmers.id"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginAttempt(Base):
    """One sign-in attempt, kept in the database so throttling holds across server processes.

    ``account_key`` is the SHA-256 of the identifier typed (``phone:…`` or ``user:…``), so a mistyped phone
    number (someone else's personal data) is not stored readable; ``client`` is the socket address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_account_key_created_at", "account_key", "created_at"),
        Index("ix_login_attempts_client_created_at", "client", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class PhotoHash(Base):
    """The perceptual hash of one evidence photo (named by its SHA-256, as events name it), kept so that
    comparing photos across lots never has to decode them again. ``phash`` is 16 lower-case hex digits."""

    __tablename__ = "photo_hashes"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    phash: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RiskFact(Base):
    """What origin risk reads of one recorded event (``domain.risk.EventFacts``), written with the event in
    the same transaction, so that a lot's risk reads its peers' plantings and harvests by SQL and the
    population is learned without parsing a body. Only events the signals read have one: plantings,
    harvests, transports and any event carrying photos. Never updated. Decimals are kept as their text
    (a declared rai or a harvest's kilograms read back exactly as recorded); lists as JSON arrays."""

    __tablename__ = "risk_facts"
    __table_args__ = (
        Index("ix_risk_facts_planted", "plot", "crop_key", "season"),
        Index("ix_risk_facts_lot_code", "lot_code"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(40))
    lot_code: Mapped[str] = mapped_column(String(20))  # the first lot it touches
    lots: Mapped[str] = mapped_column(Text)  # JSON: every lot it touches
    codes: Mapped[str] = mapped_column(Text)  # JSON: the places and plots it names
    evidence: Mapped[str | None] = mapped_column(Text)  # JSON: its photos' SHA-256, when it has any
    crop: Mapped[str | None] = mapped_column(String(40))  # a planting's crop as recorded
    crop_key: Mapped[str | None] = mapped_column(String(40))  # ... and as the signals group it
    plot: Mapped[str | None] = mapped_column(String(40))
    area_rai: Mapped[str | None] = mapped_column(String(40))
    season: Mapped[str | None] = mapped_column(String(12))  # a planting's season (``domain.risk.season_of``)
    kg: Mapped[str | None] = mapped_column(String(40))  # a harvest's kilograms
    leg: Mapped[str | None] = mapped_column(String(8))  # a transport's leg, source, destination
    source: Mapped[str | None] = mapped_column(String(40))
    destination: Mapped[str | None] = mapped_column(String(40))


class RiskPopulation(Base):
    """The origin-risk population (``domain.risk.Population``: photo pairs, unusual farmer-seasons, crop
    models) last learned from the whole ledger, as JSON, with the ledger version it was learned at. The
    leading worker learns it (``trace risk-learn``); servers read it. One row per settings key."""

    __tablename__ = "risk_populations"

    settings: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    learned_at: Mapped[datetime] = mapped_column(UTCDateTime())
