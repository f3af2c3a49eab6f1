"""Realistic demo data: the organic vegetable group of อบต.หนองสนิท (อ.จอมพระ จ.สุรินทร์), Hom Mali rice of
Surin, and watermelon of Sakon Nakhon, each lot followed from planting to the port.

It shows every event kind as GS1 US's FSMA 204 recommendations model it: harvests at the farm with the field,
commodity and variety; cooling of the vegetables and the watermelon (both on FDA's Food Traceability List);
gradings that reject part of a lot (the rejected quantity as its own ``non_conformant`` event); packing as
a transformation (a split and a merge); shipments with bill-of-lading and purchase-order numbers and the
change of owner from the community enterprise to the exporter; receipts at Laem Chabang with a receiving
advice; and a certification signed by the demo officer's own key.

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
from zoneinfo import ZoneInfo

from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_CHAIN_ID
from traceability.domain.catalog import BusinessKind, FarmingStandard, LocationKind
from traceability.domain.events import (
    BizDocument,
    Cooling,
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
from traceability.services.apikeys import create_api_key
from traceability.services.certify import certify_lot
from traceability.services.events import record_event
from traceability.services.identity import ensure_id_base
from traceability.services.parties import (
    enrol_authority,
    enrol_business,
    enrol_farmer,
    enrol_location,
    enrol_officer,
    enrol_plot,
    set_authority_contact,
)
from traceability.store import models
from traceability.store.database import transaction

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


def _polygon(*corners: tuple[float, float]) -> dict[str, Any]:
    """A GeoJSON Polygon from (lon, lat) corners, closed."""
    return {"type": "Polygon", "coordinates": [[[lon, lat] for lon, lat in (*corners, corners[0])]]}


DEMO_PLOT_DETAILS: dict[str, tuple[str, str, FarmingStandard, dict[str, Any] | None]] = {
    # name, crop, what it is farmed under, and the boundary as walked with a phone's GPS
    "PLOT-NSN-01": (
        "แปลงผักริมหนองน้ำ",
        "organic-veg",
        FarmingStandard.PGS,
        _polygon(
            (103.615909, 15.110583), (103.616672, 15.110556), (103.6167, 15.111026), (103.615946, 15.111035)
        ),
    ),
    "PLOT-NSN-02": (
        "นาโคกกลาง",
        "hom-mali-105",
        FarmingStandard.ORGANIC_THAILAND,
        _polygon(
            (103.628349, 15.102693), (103.62967, 15.102675), (103.629633, 15.103516), (103.628339, 15.103507)
        ),
    ),
    # Declared 5 rai, but the boundary walked encloses about 7.9: flagged for the officer to look at again.
    "PLOT-NSN-03": (
        "นาทุ่งหนองสนิท",
        "hom-mali-105",
        FarmingStandard.ORGANIC_CONVERSION,
        _polygon(
            (103.606542, 15.11473), (103.607677, 15.114748), (103.60764, 15.115688), (103.606532, 15.115661)
        ),
    ),
    "PLOT-CKR-01": ("ไร่แตงโมริมห้วย", "watermelon", FarmingStandard.GAP, None),
}


@dataclass
class DemoResult:
    id_base: str = ""
    lots: list[str] = field(default_factory=list)
    farmers: list[dict[str, Any]] = field(default_factory=list)
    officers: list[dict[str, str]] = field(default_factory=list)
    certifications: list[str] = field(default_factory=list)
    importers: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id_base": self.id_base,
            "lots": self.lots,
            "accounts": {"farmers": self.farmers, "officers": self.officers, "importers": self.importers},
            "certifications": self.certifications,
        }


def q(kg: str) -> Quantity:
    return Quantity(value=Decimal(kg))


def lq(lot: str, kg: str) -> LotQuantity:
    return LotQuantity(lot_code=lot, quantity=q(kg))


def bol(number: str) -> BizDocument:
    return BizDocument(type="bol", number=number)


def seed_demo(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    id_base: str | None,
    now: datetime | None = None,
    tz: str = "Asia/Bangkok",
) -> DemoResult:
    """Seed the demo. Enrolment and certification go to the chain write-ahead (each commits on its own); the
    events are recorded in one transaction."""
    if registry.chain_id != ANVIL_CHAIN_ID:
        raise ConfigurationError("the demo uses Anvil's public development keys: chain 31337 only")
    now = now or datetime.now(UTC)
    local = ZoneInfo(tz)
    result = DemoResult()
    admins = [
        TraceRegistry(registry.w3, registry.address, Account.from_key(k)) for k in DEMO_AUTHORITY_ADMIN_KEYS
    ]
    with transaction(sessions) as session:
        result.id_base = ensure_id_base(session, id_base)

    nsn = enrol_authority(
        sessions,
        code="LAO-NONGSANIT",
        name_th="องค์การบริหารส่วนตำบลหนองสนิท",
        name_en="Nong Sanit Subdistrict Administrative Organization",
        district_th="อำเภอจอมพระ",
        province_th="จังหวัดสุรินทร์",
        admin_address=Account.from_key(DEMO_AUTHORITY_ADMIN_KEYS[0]).address,
        registrar=registry,
    )
    ckr = enrol_authority(
        sessions,
        code="LAO-CHIANGKHRUEA",
        name_th="องค์การบริหารส่วนตำบลเชียงเครือ",
        name_en="Chiang Khruea Subdistrict Administrative Organization",
        district_th="อำเภอเมืองสกลนคร",
        province_th="จังหวัดสกลนคร",
        admin_address=Account.from_key(DEMO_AUTHORITY_ADMIN_KEYS[1]).address,
        registrar=registry,
    )
    group = "วิสาหกิจชุมชนกลุ่มผักอินทรีย์บ้านหนองสนิท"
    rice_group = "กลุ่มข้าวหอมมะลิอินทรีย์หนองสนิท"
    farmers_spec = [
        ("F-0001", nsn, "นางสมพร ใจดี", "0812345601", "1601", group),
        ("F-0002", nsn, "นายบุญมี ศรีสุข", "0812345602", "1602", rice_group),
        ("F-0003", nsn, "นางสาวมะลิ ทองคำ", "0812345603", "1603", rice_group),
        ("F-0004", ckr, "นายประเสริฐ แก้วมณี", "0812345604", "1604", "กลุ่มผู้ปลูกแตงโมเชียงเครือ"),
    ]
    plots_spec = [
        ("PLOT-NSN-01", "F-0001", "บ้านหนองสนิท หมู่ 1", "Ban Nong Sanit, Moo 1", "2.5", "15.1108", "103.6163"),
        ("PLOT-NSN-02", "F-0002", "บ้านโคกกลาง หมู่ 4", "Ban Khok Klang, Moo 4", "8", "15.1031", "103.6290"),
        ("PLOT-NSN-03", "F-0003", "บ้านหนองสนิท หมู่ 2", "Ban Nong Sanit, Moo 2", "5", "15.1152", "103.6071"),
        ("PLOT-CKR-01", "F-0004", "บ้านเชียงเครือ หมู่ 3", "Ban Chiang Khruea, Moo 3", "4", "17.1289", "104.0647"),
    ]
    farmer_business = {
        "F-0001": "CE-NSN-01",
        "F-0002": "CE-NSN-02",
        "F-0003": "CE-NSN-02",
        "F-0004": "CE-CKR-01",
    }
    with transaction(sessions) as session:
        businesses = _seed_master_data(session, nsn.id, ckr.id)
        farmers = {}
        for code, auth, name, phone, pin, grp in farmers_spec:
            farmers[code] = enrol_farmer(
                session,
                code=code,
                authority=auth,
                display_name=name,
                phone=phone,
                pin=pin,
                group_th=grp,
                business=businesses[farmer_business[code]],
            )
        for code, farmer, vth, ven, rai, lat, lon in plots_spec:
            name, crop, standard, boundary = DEMO_PLOT_DETAILS[code]
            enrol_plot(
                session,
                code=code,
                farmer=farmers[farmer],
                village_th=vth,
                village_en=ven,
                area_rai=Decimal(rai),
                lat=Decimal(lat),
                lon=Decimal(lon),
                name=name,
                crop=crop,
                standard=standard,
                boundary=boundary,
            )
    for code, _auth, _name, phone, pin, _grp in farmers_spec:
        plots = [p[0] for p in plots_spec if p[1] == code]
        result.farmers.append({"code": code, "phone": phone, "pin": pin, "plots": plots})

    officer_password, officer_passphrase = "nongsanit-demo-2026", "ลายมือชื่อ-หนองสนิท-2026"
    enrol_officer(
        sessions,
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

    with transaction(sessions) as session:
        result.lots = _record_demo_events(session, result.id_base, now, local)
        # An importer's API key, so the verification API can be tried at once (`trace apikey create` makes
        # real ones; this one exists only in a demo, which runs only on the dev chain).
        importer = create_api_key(session, "demo-importer")
        result.importers.append({"name": importer.info.name, "api_key": importer.key})

    cert = certify_lot(
        sessions,
        registry,
        officer_username="officer.nongsanit",
        passphrase=officer_passphrase,
        lot_code=VEG,
        standard="เกษตรอินทรีย์ อปท. (Organic Thailand PGS)",
        certificate_hash="0x" + hashlib.sha256(f"PGS certificate for {VEG}".encode()).hexdigest(),
        place_id="LAO-NONGSANIT",
        id_base=result.id_base,
        expires=int((now + timedelta(days=365)).timestamp()),
        event_time=now - timedelta(hours=1),
        tz=tz,
    )
    result.certifications.append(cert.cert_id)
    return result


VEG = "NSN-VEG-2609-01"


def _seed_master_data(session: Session, nsn_id: int, ckr_id: int) -> dict[str, models.Business]:
    """The public side of the demo's parties and places: what exports and pages print for the codes events
    carry. Phone numbers here are fictional office numbers (Thai 0xx-xxx-xxx form), never a farmer's."""
    nsn = session.get(models.Authority, nsn_id)
    ckr = session.get(models.Authority, ckr_id)
    assert nsn is not None and ckr is not None
    set_authority_contact(
        session,
        nsn,
        district_en="Chom Phra District",
        province_en="Surin",
        address_th="ที่ทำการ อบต.หนองสนิท ต.หนองสนิท อ.จอมพระ จ.สุรินทร์ 32180",
        address_en="Nong Sanit SAO Office, Nong Sanit, Chom Phra, Surin 32180, Thailand",
        phone="044-000-101",
    )
    set_authority_contact(
        session,
        ckr,
        district_en="Mueang Sakon Nakhon District",
        province_en="Sakon Nakhon",
        address_th="ที่ทำการ อบต.เชียงเครือ ต.เชียงเครือ อ.เมืองสกลนคร จ.สกลนคร 47000",
        address_en=(
            "Chiang Khruea SAO Office, Chiang Khruea, Mueang Sakon Nakhon, Sakon Nakhon 47000, Thailand"
        ),
        phone="042-000-202",
    )
    nsn_th = "ต.หนองสนิท อ.จอมพระ จ.สุรินทร์ 32180"
    nsn_en = "Nong Sanit, Chom Phra, Surin 32180, Thailand"
    b = {
        "CE-NSN-01": enrol_business(
            session,
            code="CE-NSN-01",
            kind=BusinessKind.COMMUNITY_ENTERPRISE,
            name_th="วิสาหกิจชุมชนกลุ่มผักอินทรีย์บ้านหนองสนิท",
            name_en="Ban Nong Sanit Organic Vegetable Community Enterprise",
            address_th=f"หมู่ 1 บ้านหนองสนิท {nsn_th}",
            address_en=f"Moo 1, Ban Nong Sanit, {nsn_en}",
            phone="044-000-111",
            authority=nsn,
        ),
        "CE-NSN-02": enrol_business(
            session,
            code="CE-NSN-02",
            kind=BusinessKind.COMMUNITY_ENTERPRISE,
            name_th="วิสาหกิจชุมชนกลุ่มข้าวหอมมะลิอินทรีย์หนองสนิท",
            name_en="Nong Sanit Organic Hom Mali Rice Community Enterprise",
            address_th=f"หมู่ 4 บ้านโคกกลาง {nsn_th}",
            address_en=f"Moo 4, Ban Khok Klang, {nsn_en}",
            phone="044-000-122",
            authority=nsn,
        ),
        "CE-CKR-01": enrol_business(
            session,
            code="CE-CKR-01",
            kind=BusinessKind.COMMUNITY_ENTERPRISE,
            name_th="วิสาหกิจชุมชนกลุ่มผู้ปลูกแตงโมเชียงเครือ",
            name_en="Chiang Khruea Watermelon Growers Community Enterprise",
            address_th="หมู่ 3 บ้านเชียงเครือ ต.เชียงเครือ อ.เมืองสกลนคร จ.สกลนคร 47000",
            address_en=(
                "Moo 3, Ban Chiang Khruea, Chiang Khruea, Mueang Sakon Nakhon, Sakon Nakhon 47000, Thailand"
            ),
            phone="042-000-233",
            authority=ckr,
        ),
        "EXP-0001": enrol_business(
            session,
            code="EXP-0001",
            kind=BusinessKind.EXPORTER,
            name_th="บริษัท สยามชุมชนส่งออก จำกัด",
            name_en="Siam Community Export Co., Ltd.",
            address_th="นิคมอุตสาหกรรมแหลมฉบัง ต.ทุ่งสุขลา อ.ศรีราชา จ.ชลบุรี 20230",
            address_en="Laem Chabang Industrial Estate, Thung Sukhla, Si Racha, Chon Buri 20230, Thailand",
            phone="038-000-300",
        ),
    }
    places: list[
        tuple[str, LocationKind, str, str, str, str, str | None, str | None, models.Authority | None, str]
    ] = [
        (
            "FARM-NSN-01",
            LocationKind.FARM,
            "ฟาร์มผักอินทรีย์ บ้านหนองสนิท หมู่ 1",
            "Organic vegetable farm, Ban Nong Sanit Moo 1",
            f"หมู่ 1 บ้านหนองสนิท {nsn_th}",
            f"Moo 1, Ban Nong Sanit, {nsn_en}",
            "15.1108",
            "103.6163",
            nsn,
            "CE-NSN-01",
        ),
        (
            "FARM-NSN-02",
            LocationKind.FARM,
            "นาข้าวหอมมะลิ บ้านโคกกลาง หมู่ 4",
            "Hom Mali rice farm, Ban Khok Klang Moo 4",
            f"หมู่ 4 บ้านโคกกลาง {nsn_th}",
            f"Moo 4, Ban Khok Klang, {nsn_en}",
            "15.1031",
            "103.6290",
            nsn,
            "CE-NSN-02",
        ),
        (
            "FARM-NSN-03",
            LocationKind.FARM,
            "นาข้าวหอมมะลิ บ้านหนองสนิท หมู่ 2",
            "Hom Mali rice farm, Ban Nong Sanit Moo 2",
            f"หมู่ 2 บ้านหนองสนิท {nsn_th}",
            f"Moo 2, Ban Nong Sanit, {nsn_en}",
            "15.1152",
            "103.6071",
            nsn,
            "CE-NSN-02",
        ),
        (
            "FARM-CKR-01",
            LocationKind.FARM,
            "ไร่แตงโม บ้านเชียงเครือ หมู่ 3",
            "Watermelon farm, Ban Chiang Khruea Moo 3",
            "หมู่ 3 บ้านเชียงเครือ ต.เชียงเครือ อ.เมืองสกลนคร จ.สกลนคร 47000",
            "Moo 3, Ban Chiang Khruea, Chiang Khruea, Mueang Sakon Nakhon, Sakon Nakhon 47000, Thailand",
            "17.1289",
            "104.0647",
            ckr,
            "CE-CKR-01",
        ),
        (
            "PH-NSN",
            LocationKind.PACKING_HOUSE,
            "โรงคัดบรรจุผัก วิสาหกิจชุมชนบ้านหนองสนิท",
            "Ban Nong Sanit community packing house",
            f"หมู่ 1 บ้านหนองสนิท {nsn_th}",
            f"Moo 1, Ban Nong Sanit, {nsn_en}",
            "15.1120",
            "103.6170",
            nsn,
            "CE-NSN-01",
        ),
        (
            "MILL-NSN",
            LocationKind.MILL,
            "โรงสีข้าวชุมชนหนองสนิท",
            "Nong Sanit community rice mill",
            f"หมู่ 4 บ้านโคกกลาง {nsn_th}",
            f"Moo 4, Ban Khok Klang, {nsn_en}",
            "15.1040",
            "103.6280",
            nsn,
            "CE-NSN-02",
        ),
        (
            "PH-CKR",
            LocationKind.PACKING_HOUSE,
            "โรงคัดบรรจุแตงโมเชียงเครือ",
            "Chiang Khruea watermelon packing house",
            "หมู่ 3 บ้านเชียงเครือ ต.เชียงเครือ อ.เมืองสกลนคร จ.สกลนคร 47000",
            "Moo 3, Ban Chiang Khruea, Chiang Khruea, Mueang Sakon Nakhon, Sakon Nakhon 47000, Thailand",
            "17.1300",
            "104.0650",
            ckr,
            "CE-CKR-01",
        ),
        (
            "PORT-LCB",
            LocationKind.PORT,
            "ท่าเรือแหลมฉบัง (คลังสินค้าผู้ส่งออก)",
            "Laem Chabang Port (exporter's warehouse)",
            "ท่าเรือแหลมฉบัง ต.ทุ่งสุขลา อ.ศรีราชา จ.ชลบุรี 20230",
            "Laem Chabang Port, Thung Sukhla, Si Racha, Chon Buri 20230, Thailand",
            "13.0830",
            "100.8830",
            None,
            "EXP-0001",
        ),
    ]
    for code, kind, name_th, name_en, addr_th, addr_en, lat, lon, authority, operator in places:
        enrol_location(
            session,
            code=code,
            kind=kind,
            name_th=name_th,
            name_en=name_en,
            address_th=addr_th,
            address_en=addr_en,
            lat=Decimal(lat) if lat else None,
            lon=Decimal(lon) if lon else None,
            authority=authority,
            business=b[operator],
        )
    return b


def _record_demo_events(session: Session, id_base: str, now: datetime, local: ZoneInfo) -> list[str]:
    def at(days_ago: float, hour: int = 8) -> datetime:
        day = (now - timedelta(days=days_ago)).astimezone(local)
        return day.replace(hour=hour, minute=30, second=0, microsecond=0)

    def rec(event: Any) -> None:
        record_event(session, event, id_base=id_base)

    def base(actor: str, place: str | Place, when: datetime, **kw: Any) -> dict[str, Any]:
        where = place if isinstance(place, Place) else Place(id=place)
        return {"event_id": uuid.uuid4(), "actor": actor, "place": where, "event_time": when, **kw}

    def farm(code: str, lat: str, lon: str) -> Place:
        return Place(id=code, lat=Decimal(lat), lon=Decimal(lon))

    # --- organic vegetables: plant, harvest, cool, grade (part rejected), split, ship to Laem Chabang ---
    veg = VEG
    farm1 = farm("FARM-NSN-01", "15.1108", "103.6163")
    rec(
        Planting(
            kind="planting",
            lot_code=veg,
            plot_id="PLOT-NSN-01",
            crop="organic-veg",
            variety="ผักคะน้าและผักกาดหอม",
            area_rai=Decimal("2.5"),
            **base("F-0001", farm1, at(75)),
            note="ปลูกแบบอินทรีย์ ใช้ปุ๋ยหมักในชุมชน",
        )
    )
    rec(
        Harvest(
            kind="harvest",
            lot_code=veg,
            plot_id="PLOT-NSN-01",
            crop="organic-veg",
            variety="ผักคะน้าและผักกาดหอม",
            quantity=q("1250"),
            **base("F-0001", farm1, at(30, 6)),
        )
    )
    rec(
        Cooling(
            kind="cooling",
            lot_code=veg,
            quantity=q("1250"),
            method="hydro_cooling",
            temperatures=(
                TemperatureReading(time=at(30, 7), celsius=Decimal("18.5")),
                TemperatureReading(time=at(30, 8), celsius=Decimal("6.0")),
            ),
            **base("F-0001", "PH-NSN", at(30, 7)),
            note="ล้างและแช่น้ำเย็นก่อนคัด",
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=veg,
            grade="เกรด A",
            quantity=q("1190"),
            disposition="conformant",
            **base("F-0001", "PH-NSN", at(30, 10)),
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=veg,
            grade="ตกเกรด",
            quantity=q("60"),
            disposition="non_conformant",
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
            documents=(bol("BL-2569-000118"), BizDocument(type="po", number="PO-EXP-2569-042")),
            owner_from="CE-NSN-01",
            owner_to="EXP-0001",
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
            documents=(bol("BL-2569-000118"), BizDocument(type="recadv", number="RA-LCB-2569-0907")),
            **base("EXP-0001", "PORT-LCB", at(28, 6)),
        )
    )

    # --- Hom Mali rice: two farmers' paddy, graded, merged into one milled export lot ---
    rice1, rice2, rice_m = "NSN-HML-2606-02", "NSN-HML-2606-03", "NSN-HML-2611-M1"
    farm2 = farm("FARM-NSN-02", "15.1031", "103.6290")
    farm3 = farm("FARM-NSN-03", "15.1152", "103.6071")
    for lot, plot, where, rai, days in (
        (rice1, "PLOT-NSN-02", farm2, "8", 160),
        (rice2, "PLOT-NSN-03", farm3, "5", 158),
    ):
        actor = "F-0002" if lot == rice1 else "F-0003"
        rec(
            Planting(
                kind="planting",
                lot_code=lot,
                plot_id=plot,
                crop="hom-mali-105",
                variety="ขาวดอกมะลิ 105",
                area_rai=Decimal(rai),
                **base(actor, where, at(days)),
            )
        )
    for lot, plot, where, kg, days in (
        (rice1, "PLOT-NSN-02", farm2, "3400", 40),
        (rice2, "PLOT-NSN-03", farm3, "2150.5", 39),
    ):
        rec(
            Harvest(
                kind="harvest",
                lot_code=lot,
                plot_id=plot,
                crop="hom-mali-105",
                variety="ขาวดอกมะลิ 105",
                quantity=q(kg),
                **base("F-0002" if lot == rice1 else "F-0003", where, at(days)),
            )
        )
    for lot, accepted, rejected, hour in ((rice1, "3350", "50", 8), (rice2, "2120.5", "30", 11)):
        actor = "F-0002" if lot == rice1 else "F-0003"
        rec(
            Grading(
                kind="grading",
                lot_code=lot,
                grade="ข้าวเปลือกหอมมะลิ ความชื้นไม่เกิน 15%",
                quantity=q(accepted),
                disposition="conformant",
                **base(actor, "MILL-NSN", at(35, hour)),
            )
        )
        rec(
            Grading(
                kind="grading",
                lot_code=lot,
                grade="ตกเกรด เมล็ดลีบ",
                quantity=q(rejected),
                disposition="non_conformant",
                **base(actor, "MILL-NSN", at(35, hour)),
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
            documents=(bol("BL-2569-000131"), BizDocument(type="po", number="PO-EXP-2569-051")),
            owner_from="CE-NSN-02",
            owner_to="EXP-0001",
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
            documents=(bol("BL-2569-000131"),),
            **base("EXP-0001", "PORT-LCB", at(19)),
        )
    )

    # --- watermelon of Sakon Nakhon: harvested, cooled, graded, packed, on its way ---
    wm, wm_p = "SKN-WM-2608-01", "SKN-WM-2608-01P"
    farm4 = farm("FARM-CKR-01", "17.1289", "104.0647")
    rec(
        Planting(
            kind="planting",
            lot_code=wm,
            plot_id="PLOT-CKR-01",
            crop="watermelon",
            variety="ตอร์ปิโด",
            area_rai=Decimal("4"),
            **base("F-0004", farm4, at(100)),
        )
    )
    rec(
        Harvest(
            kind="harvest",
            lot_code=wm,
            plot_id="PLOT-CKR-01",
            crop="watermelon",
            variety="ตอร์ปิโด",
            quantity=q("14200"),
            **base("F-0004", farm4, at(30, 5)),
        )
    )
    rec(
        Cooling(
            kind="cooling",
            lot_code=wm,
            quantity=q("14200"),
            method="forced_air",
            temperatures=(TemperatureReading(time=at(30, 8), celsius=Decimal("14.0")),),
            **base("F-0004", "PH-CKR", at(30, 7)),
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=wm,
            grade="เกรดส่งออก 3–5 กก./ผล",
            quantity=q("13100"),
            disposition="conformant",
            **base("F-0004", "PH-CKR", at(30, 9)),
        )
    )
    rec(
        Grading(
            kind="grading",
            lot_code=wm,
            grade="ตกเกรด ผลเล็กหรือแตก",
            quantity=q("1100"),
            disposition="non_conformant",
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
            documents=(bol("BL-2569-000140"),),
            owner_from="CE-CKR-01",
            owner_to="EXP-0001",
            **base("F-0004", "PH-CKR", at(28)),
        )
    )
    session.flush()
    return [veg, veg_a, veg_b, rice1, rice2, rice_m, wm, wm_p]


def is_seeded(session: Session) -> bool:
    return session.query(models.Event.id).first() is not None
