"""Factories: parties, plots and events with realistic Thai data; ``make_x(**overrides)``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.registry import TraceRegistry
from traceability.domain.events import (
    Grading,
    Harvest,
    LotQuantity,
    Packing,
    Place,
    Planting,
    Quantity,
    Transport,
)
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.parties import enrol_authority, enrol_farmer, enrol_officer, enrol_plot
from traceability.store import models
from traceability.store.database import transaction

ID_BASE = "https://trace.test"
# Anvil's public dev account #1: the test authority's admin key (chain 31337 only).
AUTHORITY_ADMIN_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OFFICER_PASSPHRASE = "รหัสผ่านเจ้าหน้าที่-ทดสอบ"


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


def q(kg: str | int) -> Quantity:
    return Quantity(value=Decimal(kg))


def lq(lot: str, kg: str | int) -> LotQuantity:
    return LotQuantity(lot_code=lot, quantity=q(kg))


def common(actor: str = "F-0001", place: str = "PLOT-T-01", when: datetime | None = None) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "actor": actor,
        "place": Place(id=place),
        "event_time": when or days_ago(10),
    }


def sessions_of(sessions: Session | sessionmaker[Session]) -> sessionmaker[Session]:
    """Registering a party on chain commits its intent first, so it needs a sessionmaker. Given the session of
    a caller's transaction (older tests), make one on the same engine: that session itself writes nothing."""
    if isinstance(sessions, Session):
        return sessionmaker(sessions.get_bind(), expire_on_commit=False)
    return sessions


def make_authority(
    sessions: Session | sessionmaker[Session], registry: TraceRegistry, *, code: str | None = None
) -> models.Authority:
    """An อปท. registered on chain, administered by Anvil's dev account #1."""
    code = code or f"LAO-T{uuid.uuid4().hex[:12].upper()}"
    return enrol_authority(
        sessions_of(sessions),
        code=code,
        name_th="องค์การบริหารส่วนตำบลหนองสนิท",
        name_en="Nong Sanit SAO",
        district_th="อำเภอจอมพระ",
        province_th="จังหวัดสุรินทร์",
        admin_address=Account.from_key(AUTHORITY_ADMIN_KEY).address,
        registrar=registry,
    )


def authority_admin(registry: TraceRegistry) -> TraceRegistry:
    """A client with the test authority's admin key (Anvil's dev account #1) on ``registry``'s chain."""
    return TraceRegistry(registry.w3, registry.address, Account.from_key(AUTHORITY_ADMIN_KEY))


def make_officer(
    sessions: Session | sessionmaker[Session], registry: TraceRegistry, authority: models.Authority
) -> models.Officer:
    """An officer of ``authority`` with a key of their own (passphrase ``OFFICER_PASSPHRASE``)."""
    return enrol_officer(
        sessions_of(sessions),
        username=f"officer-{authority.code.lower()}",
        display_name="นายสมชาย ประจำตำบล",
        authority=authority,
        password="officer-password",
        passphrase=OFFICER_PASSPHRASE,
        authority_admin=authority_admin(registry),
    )


def seed_parties(
    sessions: Session | sessionmaker[Session],
    registry: TraceRegistry,
    *,
    code: str | None = None,
    with_officer: bool = False,
) -> dict[str, Any]:
    """An authority (registered on chain), two farmers with a plot each, optionally an officer. Each is
    committed in a transaction of its own (registration on chain is write-ahead)."""
    factory = sessions_of(sessions)
    auth = make_authority(factory, registry, code=code)
    with transaction(factory) as session:
        f1 = enrol_farmer(
            session, code="F-0001", authority=auth, display_name="นางสมพร ใจดี", phone="0811111111", pin="1234"
        )
        f2 = enrol_farmer(
            session, code="F-0002", authority=auth, display_name="นายบุญมี ศรีสุข", phone="0822222222", pin="5678"
        )
        enrol_plot(
            session,
            code="PLOT-T-01",
            farmer=f1,
            village_th="บ้านหนองสนิท",
            village_en="Ban Nong Sanit",
            area_rai=Decimal("2.5"),
        )
        enrol_plot(
            session,
            code="PLOT-T-02",
            farmer=f2,
            village_th="บ้านโคกกลาง",
            village_en="Ban Khok Klang",
            area_rai=Decimal("4"),
        )
    out: dict[str, Any] = {"authority": auth}
    if with_officer:
        out["officer"] = make_officer(factory, registry, auth)
    return out


def lifecycle(
    lot: str = "T-VEG-0001", child_a: str = "T-VEG-0001A", child_b: str = "T-VEG-0001B"
) -> list[Any]:
    """Planting → harvest → grading (50 kg rejected) → split packing → ship → receive for farmer F-0001."""
    return [
        Planting(
            kind="planting",
            lot_code=lot,
            plot_id="PLOT-T-01",
            crop="organic-veg",
            variety="ผักคะน้า",
            area_rai=Decimal("2.5"),
            **common(when=days_ago(60)),
        ),
        Harvest(
            kind="harvest",
            lot_code=lot,
            plot_id="PLOT-T-01",
            crop="organic-veg",
            variety="ผักคะน้า",
            quantity=q("1000"),
            **common(place="FARM-T-01", when=days_ago(20)),
        ),
        Grading(
            kind="grading",
            lot_code=lot,
            grade="ตกเกรด ใบเหลือง",
            quantity=q("50"),
            disposition="non_conformant",
            **common(place="PH-T", when=days_ago(19)),
        ),
        Packing(
            kind="packing",
            inputs=(lq(lot, "950"),),
            outputs=(lq(child_a, "500"), lq(child_b, "440")),
            **common(place="PH-T", when=days_ago(18)),
        ),
        Transport(
            kind="transport",
            leg="ship",
            items=(lq(child_a, "500"),),
            source="PH-T",
            destination="PORT-LCB",
            **common(place="PH-T", when=days_ago(17)),
        ),
        Transport(
            kind="transport",
            leg="receive",
            items=(lq(child_a, "500"),),
            source="PH-T",
            destination="PORT-LCB",
            **common(actor="EXP-0001", place="PORT-LCB", when=days_ago(16)),
        ),
    ]


def event_row(session: Session, event_id: uuid.UUID) -> models.Event:
    row = session.get(models.Event, event_id)
    assert row is not None
    return row


FARMER_1 = {"phone": "0811111111", "pin": "1234"}  # F-0001 (นางสมพร ใจดี), owns PLOT-T-01
FARMER_2 = {"phone": "0822222222", "pin": "5678"}  # F-0002 (นายบุญมี ศรีสุข), owns PLOT-T-02


def seed_farmer_lots(sessions: sessionmaker[Session], registry: TraceRegistry) -> dict[str, Any]:
    """F-0001's lot from planting to packing into two lots, its first two events anchored and the rest
    recorded only; and a lot of F-0002's, so that each farmer sees only their own. Needs ``seed_parties``
    first. Returns the harvest's time and the block the first batch is in."""
    events = lifecycle()
    other = Planting(
        kind="planting",
        lot_code="T-VEG-0002",
        plot_id="PLOT-T-02",
        crop="organic-veg",
        variety="ผักกาดขาว",
        area_rai=4,
        **common(actor="F-0002", place="PLOT-T-02", when=days_ago(30)),
    )

    def record(batch: list[Any]) -> None:
        for event in batch:
            with transaction(sessions) as session:
                record_event(session, event, id_base=ID_BASE)

    record([*events[:2], other])
    Anchorer(sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    record(events[2:5])
    with transaction(sessions) as session:
        block = session.scalars(select(models.Batch.block_number)).one()
    return {"harvest_time": events[1].event_time, "block": block}
