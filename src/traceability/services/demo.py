"""Realistic demo data: the organic vegetable group of อบต.หนองสนิท (อ.จอมพระ จ.สุรินทร์), Hom Mali rice of
Surin, and watermelon of Sakon Nakhon, each lot followed from planting to the port.

Demo secrets (PINs, passwords, the officer's passphrase) are printed by ``trace demo --json`` and exist only
in the demo database; the authority admins are Anvil's public development accounts, used on chain 31337 only.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from eth_account import Account
from sqlalchemy.orm import Session

from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_CHAIN_ID
from traceability.domain.events import (
    Grading,
    Harvest,
    LotQuantity,
    Packing,
    Place,
    Planting,
    Quantity,
    TemperatureReading,
    Transport,
)
from traceability.errors import ConfigurationError
from traceability.services.certify import certify_lot
from traceability.services.events import record_event
from traceability.services.parties import enrol_authority, enrol_farmer, enrol_officer, enrol_plot
from traceability.store import models

# Anvil's public development accounts #1 and #2: the demo authorities' admin keys (chain 31337 only).
DEMO_AUTHORITY_ADMIN_KEYS = (
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
)


def gtin14(body13: str) -> str:
    """Append the GS1 mod-10 check digit to 13 digits."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body13)))
    return body13 + str((10 - total % 10) % 10)


# 885 is GS1 Thailand's prefix.
GTIN_VEG = gtin14("0885000100001")
GTIN_RICE = gtin14("0885000100002")
GTIN_WATERMELON = gtin14("0885000100003")


@dataclass
class DemoResult:
    lots: list[str] = field(default_factory=list)
    farmers: list[dict[str, str]] = field(default_factory=list)
    officers: list[dict[str, str]] = field(default_factory=list)
    certifications: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "lots": self.lots,
            "accounts": {"farmers": self.farmers, "officers": self.officers},
            "certifications": self.certifications,
        }


def q(kg: str) -> Quantity:
    return Quantity(value=Decimal(kg))


def lq(lot: str, kg: str) -> LotQuantity:
    return LotQuantity(lot_code=lot, quantity=q(kg))


def seed_demo(
    session: Session, registry: TraceRegistry, *, id_base: str, now: datetime | None = None
) -> DemoResult:
    if registry.chain_id != ANVIL_CHAIN_ID:
        raise ConfigurationError("the demo uses Anvil's public development keys: chain 31337 only")
    now = now or datetime.now(UTC)
    bkk = timezone_bangkok()
    result = DemoResult()
    admins = [
        TraceRegistry(registry.w3, registry.address, Account.from_key(k)) for k in DEMO_AUTHORITY_ADMIN_KEYS
    ]

    nsn = enrol_authority(
        session,
        code="LAO-NONGSANIT",
        name_th="องค์การบริหารส่วนตำบลหนองสนิท",
        name_en="Nong Sanit Subdistrict Administrative Organization",
        district_th="อำเภอจอมพระ",
        province_th="จังหวัดสุรินทร์",
        admin_address=Account.from_key(DEMO_AUTHORITY_ADMIN_KEYS[0]).address,
        registrar=registry,
    )
    ckr = enrol_authority(
        session,
        code="LAO-CHIANGKHRUEA",
        name_th="องค์การบริหารส่วนตำบลเชียงเครือ",
        name_en="Chiang Khruea Subdistrict Administrative Organization",
        district_th="อำเภอเมืองสกลนคร",
        province_th="จังหวัดสกลนคร",
        admin_address=Account.from_key(DEMO_AUTHORITY_ADMIN_KEYS[1]).address,
        registrar=registry,
    )
    group = "วิสาหกิจชุมชนกลุ่มผักอินทรีย์บ้านหนองสนิท"
    farmers_spec = [
        ("F-0001", nsn, "นางสมพร ใจดี", "0812345601", "1601", group),
        ("F-0002", nsn, "นายบุญมี ศรีสุข", "0812345602", "1602", "กลุ่มข้าวหอมมะลิอินทรีย์หนองสนิท"),
        ("F-0003", nsn, "นางสาวมะลิ ทองคำ", "0812345603", "1603", "กลุ่มข้าวหอมมะลิอินทรีย์หนองสนิท"),
        ("F-0004", ckr, "นายประเสริฐ แก้วมณี", "0812345604", "1604", "กลุ่มผู้ปลูกแตงโมเชียงเครือ"),
    ]
    farmers = {}
    for code, auth, name, phone, pin, grp in farmers_spec:
        farmers[code] = enrol_farmer(
            session, code=code, authority=auth, display_name=name, phone=phone, pin=pin, group_th=grp
        )
        result.farmers.append({"code": code, "phone": phone, "pin": pin})
    plots_spec = [
        ("PLOT-NSN-01", "F-0001", "บ้านหนองสนิท หมู่ 1", "Ban Nong Sanit, Moo 1", "2.5", "15.1108", "103.6163"),
        ("PLOT-NSN-02", "F-0002", "บ้านโคกกลาง หมู่ 4", "Ban Khok Klang, Moo 4", "8", "15.1031", "103.6290"),
        ("PLOT-NSN-03", "F-0003", "บ้านหนองสนิท หมู่ 2", "Ban Nong Sanit, Moo 2", "5", "15.1152", "103.6071"),
        ("PLOT-CKR-01", "F-0004", "บ้านเชียงเครือ หมู่ 3", "Ban Chiang Khruea, Moo 3", "4", "17.1289", "104.0647"),
    ]
    for code, farmer, vth, ven, rai, lat, lon in plots_spec:
        enrol_plot(
            session,
            code=code,
            farmer=farmers[farmer],
            village_th=vth,
            village_en=ven,
            area_rai=Decimal(rai),
            lat=Decimal(lat),
            lon=Decimal(lon),
        )
    officer_password, officer_passphrase = "nongsanit-demo-2026", "ลายมือชื่อ-หนองสนิท-2026"
    enrol_officer(
        session,
        username="officer.nongsanit",
        display_name="นายสมชาย ประจำตำบล",
        authority=nsn,
        password=officer_password,
        passphrase=officer_passphrase,
        authority_admin=admins[0],
    )
    result.officers.append(
        {
            "username": "officer.nongsanit",
            "password": officer_password,
            "passphrase": officer_passphrase,
            "authority": nsn.code,
        }
    )

    def at(days_ago: float, hour: int = 8) -> datetime:
        day = (now - timedelta(days=days_ago)).astimezone(bkk)
        return day.replace(hour=hour, minute=30, second=0, microsecond=0)

    def rec(event: Any) -> None:
        record_event(session, event, id_base=id_base)

    def base(actor: str, place: str, when: datetime, **kw: Any) -> dict[str, Any]:
        return {"event_id": uuid.uuid4(), "actor": actor, "place": Place(id=place), "event_time": when, **kw}

    plot1 = Place(id="PLOT-NSN-01", lat=Decimal("15.1108"), lon=Decimal("103.6163"))
    # --- organic vegetables: plant, harvest, grade, split into two packed lots, ship to Laem Chabang ---
    veg = "NSN-VEG-2609-01"
    rec(
        Planting(
            kind="planting",
            lot_code=veg,
            plot_id="PLOT-NSN-01",
            crop="organic-veg",
            variety="ผักคะน้าและผักกาดหอม",
            area_rai=Decimal("2.5"),
            **{**base("F-0001", "PLOT-NSN-01", at(75)), "place": plot1},
            note="ปลูกแบบอินทรีย์ ใช้ปุ๋ยหมักในชุมชน",
        )
    )
    rec(
        Harvest(
            kind="harvest",
            lot_code=veg,
            plot_id="PLOT-NSN-01",
            quantity=q("1250"),
            **{**base("F-0001", "PLOT-NSN-01", at(30, 6)), "place": plot1},
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=veg,
            grade="เกรด A",
            accepted=q("1190"),
            rejected=q("60"),
            **base("F-0001", "PH-NSN", at(30, 10)),
            note="คัดใบเหลืองและใบที่มีรอยแมลงออก",
        )
    )
    veg_a, veg_b = "NSN-VEG-2609-01A", "NSN-VEG-2609-01B"
    rec(
        Packing(
            kind="packing",
            inputs=(lq(veg, "1190"),),
            outputs=(lq(veg_a, "600"), lq(veg_b, "580")),
            gtin=GTIN_VEG,
            **base("F-0001", "PH-NSN", at(29, 9)),
            note="แพ็กถุงละ 500 กรัม",
        )
    )
    rec(
        Transport(
            kind="transport",
            leg="ship",
            items=(lq(veg_a, "600"),),
            source="PH-NSN",
            destination="PORT-LCB",
            vehicle="รถห้องเย็น 70-1234 สุรินทร์",
            temperatures=(
                TemperatureReading(time=at(29, 14), celsius=Decimal("4.5")),
                TemperatureReading(time=at(29, 20), celsius=Decimal("5.0")),
            ),
            **base("F-0001", "PH-NSN", at(29, 13)),
        )
    )
    rec(
        Transport(
            kind="transport",
            leg="receive",
            items=(lq(veg_a, "600"),),
            source="PH-NSN",
            destination="PORT-LCB",
            vehicle="รถห้องเย็น 70-1234 สุรินทร์",
            **base("EXP-0001", "PORT-LCB", at(28, 6)),
        )
    )

    # --- Hom Mali rice: two farmers' paddy, graded, merged into one milled export lot ---
    rice1, rice2, rice_m = "NSN-HML-2606-02", "NSN-HML-2606-03", "NSN-HML-2611-M1"
    rec(
        Planting(
            kind="planting",
            lot_code=rice1,
            plot_id="PLOT-NSN-02",
            crop="hom-mali-105",
            variety="ขาวดอกมะลิ 105",
            area_rai=Decimal("8"),
            **base("F-0002", "PLOT-NSN-02", at(160)),
        )
    )
    rec(
        Planting(
            kind="planting",
            lot_code=rice2,
            plot_id="PLOT-NSN-03",
            crop="hom-mali-105",
            variety="ขาวดอกมะลิ 105",
            area_rai=Decimal("5"),
            **base("F-0003", "PLOT-NSN-03", at(158)),
        )
    )
    rec(
        Harvest(
            kind="harvest",
            lot_code=rice1,
            plot_id="PLOT-NSN-02",
            quantity=q("3400"),
            **base("F-0002", "PLOT-NSN-02", at(40)),
        )
    )
    rec(
        Harvest(
            kind="harvest",
            lot_code=rice2,
            plot_id="PLOT-NSN-03",
            quantity=q("2150.5"),
            **base("F-0003", "PLOT-NSN-03", at(39)),
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=rice1,
            grade="ข้าวเปลือกหอมมะลิ ความชื้นไม่เกิน 15%",
            accepted=q("3350"),
            rejected=q("50"),
            **base("F-0002", "MILL-NSN", at(35)),
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=rice2,
            grade="ข้าวเปลือกหอมมะลิ ความชื้นไม่เกิน 15%",
            accepted=q("2120.5"),
            rejected=q("30"),
            **base("F-0003", "MILL-NSN", at(35, 11)),
        )
    )
    rec(
        Packing(
            kind="packing",
            inputs=(lq(rice1, "3350"), lq(rice2, "2120.5")),
            outputs=(lq(rice_m, "3500"),),
            gtin=GTIN_RICE,
            **base("F-0002", "MILL-NSN", at(33)),
            note="สีเป็นข้าวสาร บรรจุถุงสุญญากาศ 1 กก.",
        )
    )
    rec(
        Transport(
            kind="transport",
            leg="ship",
            items=(lq(rice_m, "3500"),),
            source="MILL-NSN",
            destination="PORT-LCB",
            vehicle="รถบรรทุก 82-5678 สุรินทร์",
            **base("F-0002", "MILL-NSN", at(20)),
        )
    )
    rec(
        Transport(
            kind="transport",
            leg="receive",
            items=(lq(rice_m, "3500"),),
            source="MILL-NSN",
            destination="PORT-LCB",
            vehicle="รถบรรทุก 82-5678 สุรินทร์",
            **base("EXP-0001", "PORT-LCB", at(19)),
        )
    )

    # --- watermelon of Sakon Nakhon ---
    wm, wm_p = "SKN-WM-2608-01", "SKN-WM-2608-01P"
    rec(
        Planting(
            kind="planting",
            lot_code=wm,
            plot_id="PLOT-CKR-01",
            crop="watermelon",
            variety="ตอร์ปิโด",
            area_rai=Decimal("4"),
            **base("F-0004", "PLOT-CKR-01", at(100)),
        )
    )
    rec(
        Harvest(
            kind="harvest",
            lot_code=wm,
            plot_id="PLOT-CKR-01",
            quantity=q("14200"),
            **base("F-0004", "PLOT-CKR-01", at(30, 5)),
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=wm,
            grade="เกรดส่งออก 3–5 กก./ผล",
            accepted=q("13100"),
            rejected=q("1100"),
            **base("F-0004", "PH-CKR", at(30, 9)),
        )
    )
    rec(
        Packing(
            kind="packing",
            inputs=(lq(wm, "13100"),),
            outputs=(lq(wm_p, "13000"),),
            gtin=GTIN_WATERMELON,
            **base("F-0004", "PH-CKR", at(29)),
        )
    )
    rec(
        Transport(
            kind="transport",
            leg="ship",
            items=(lq(wm_p, "13000"),),
            source="PH-CKR",
            destination="PORT-LCB",
            vehicle="รถบรรทุก 83-4321 สกลนคร",
            **base("F-0004", "PH-CKR", at(28)),
        )
    )

    session.flush()
    cert = certify_lot(
        session,
        registry,
        officer_username="officer.nongsanit",
        passphrase=officer_passphrase,
        lot_code=veg,
        standard="เกษตรอินทรีย์ อปท. (Organic Thailand PGS)",
        certificate_hash="0x" + hashlib.sha256(f"PGS certificate for {veg}".encode()).hexdigest(),
        place_id="LAO-NONGSANIT",
        id_base=id_base,
        expires=int((now + timedelta(days=365)).timestamp()),
        event_time=now - timedelta(hours=1),
    )
    result.certifications.append(cert.cert_id)
    result.lots = [veg, veg_a, veg_b, rice1, rice2, rice_m, wm, wm_p]
    return result


def timezone_bangkok() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Bangkok")


def is_seeded(session: Session) -> bool:
    return session.query(models.Event.id).first() is not None
