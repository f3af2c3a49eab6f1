"""The FDA FSMA 204 sortable spreadsheet, read back with ``csv`` on the demo ledger: one row per critical
tracking event (counted here from the events themselves), every key data element the rule requires for the
row's CTE filled, local dates, FTL status, the product-and-date-range request, English beside Thai, and no
personal data."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain import codec
from traceability.domain import fsma as F
from traceability.domain.epcis import from_epcis
from traceability.domain.events import (
    Cooling,
    Event,
    Harvest,
    LotQuantity,
    Packing,
    Place,
    Quantity,
    Transport,
)
from traceability.domain.ids import hash_ni
from traceability.errors import InvalidInput, NotFound
from traceability.services.demo import DemoResult, seed_demo
from traceability.services.events import record_event
from traceability.services.fsma204 import export_fsma204, export_fsma204_range
from traceability.store import models
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

BANGKOK = timezone(timedelta(hours=7))
VEG, VEG_A, VEG_B = "NSN-VEG-2609-01", "NSN-VEG-2609-01A", "NSN-VEG-2609-01B"
WATERMELON, WATERMELON_PACKED = "SKN-WM-2608-01", "SKN-WM-2608-01P"
RICE_MERGED = "NSN-HML-2611-M1"


@dataclass
class Demo:
    sessions: sessionmaker[Session]
    result: DemoResult
    farmer_names: list[str]
    farmer_phones: list[str]
    officer_names: list[str]
    seeded: list[Recorded]  # the demo's own events, before any test adds one


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, w3: Web3) -> Iterator[Demo]:
    """``trace demo``'s ledger in a SQLite file, on a TraceRegistry of its own (its authorities are new)."""
    path: Path = tmp_path_factory.mktemp("fsma") / "demo.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    result = seed_demo(sessions, registry, id_base=ID_BASE)
    with transaction(sessions) as s:
        farmers = s.scalars(select(models.Farmer)).all()
        officers = s.scalars(select(models.Officer)).all()
        names = [f.display_name for f in farmers]
        phones = [f.phone for f in farmers if f.phone]
        officer_names = [o.display_name for o in officers]
        seeded = ledger(s)
    yield Demo(sessions, result, names, phones, officer_names, seeded)
    engine.dispose()


# --- reading the file as an importer would ------------------------------------------------------------------


def read(text: str) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """(legend lines, header, rows): the legend is every line up to the first blank one, each starting
    with '#'; the rest is a plain CSV table read with ``csv``."""
    lines = text.splitlines()
    blank = lines.index("")
    legend = lines[:blank]
    assert legend and all(line.startswith("#") for line in legend)
    assert not any(line.startswith("#") for line in lines[blank + 1 :])
    # The way the legend tells a reader to skip it:
    reader = csv.DictReader(line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    rows = list(reader)
    assert reader.fieldnames is not None
    return legend, list(reader.fieldnames), rows


def export(demo: Demo, lot: str) -> list[dict[str, str]]:
    with transaction(demo.sessions) as s:
        _, header, rows = read(export_fsma204(s, lot))
    assert header == list(F.COLUMNS)
    return rows


def export_range(demo: Demo, product: str, start: date, end: date) -> list[dict[str, str]]:
    with transaction(demo.sessions) as s:
        _, header, rows = read(export_fsma204_range(s, product=product, start=start, end=end))
    assert header == list(F.COLUMNS)
    return rows


# --- what the rows must be, worked out from the events here (not by the code under test) --------------------


@dataclass(frozen=True)
class Recorded:
    event: Event
    event_hash: str


def ledger(s: Session) -> list[Recorded]:
    rows = s.scalars(select(models.Event).order_by(models.Event.event_time)).all()
    return [Recorded(from_epcis(codec.loads(r.body)), hash_ni(r.hash)) for r in rows]


def field_lots(s: Session) -> set[str]:
    """Lots begun by a planting: what a first packing takes in."""
    return set(s.scalars(select(models.Lot.code).where(models.Lot.plot_id.is_not(None))).all())


def lineage(events: list[Recorded], lot: str) -> set[str]:
    """The lot, every lot it was packed from, and every lot packed from it."""
    packings = [r.event for r in events if isinstance(r.event, Packing)]
    found = {lot}
    for direction in ("back", "forward"):
        frontier = {lot}
        while frontier:
            step = set()
            for p in packings:
                ins, outs = {i.lot_code for i in p.inputs}, {o.lot_code for o in p.outputs}
                step |= ins if direction == "back" and outs & frontier else set()
                step |= outs if direction == "forward" and ins & frontier else set()
            frontier = step - found
            found |= frontier
    return found


def expected_ctes(events: list[Recorded], raw: set[str], keep: set[str]) -> Counter[tuple[str, str, str]]:
    """(CTE, lot, event hash) for every critical tracking event of the ``keep`` lots."""
    out: Counter[tuple[str, str, str]] = Counter()
    for r in events:
        ev = r.event
        if isinstance(ev, Harvest) and ev.lot_code in keep:
            out["Harvesting", ev.lot_code, r.event_hash] += 1
        elif isinstance(ev, Cooling) and ev.lot_code in keep:
            out["Cooling", ev.lot_code, r.event_hash] += 1
        elif isinstance(ev, Packing):
            cte = "Initial Packing" if all(i.lot_code in raw for i in ev.inputs) else "Transformation"
            for o in ev.outputs:
                if o.lot_code in keep:
                    out[cte, o.lot_code, r.event_hash] += 1
        elif isinstance(ev, Transport):
            for item in ev.items:
                if item.lot_code in keep:
                    out["Shipping" if ev.leg == "ship" else "Receiving", item.lot_code, r.event_hash] += 1
    return out


def got_ctes(rows: list[dict[str, str]]) -> Counter[tuple[str, str, str]]:
    return Counter((r[F.CTE], r[F.TLC], r[F.EVENT_HASH]) for r in rows)


def empty_kdes(row: dict[str, str]) -> list[str]:
    """Required columns of the row's CTE left empty; the row's own KDE column must name the same ones."""
    cte = F.Cte(row[F.CTE])
    assert row[F.KDES].split("; ") == list(F.REQUIRED_KDES[cte])
    return [c for c in F.REQUIRED_KDES[cte] if not row[c].strip()]


# --- one lot's lineage --------------------------------------------------------------------------------------


def test_every_demo_lot_has_one_row_per_cte_and_every_required_kde(demo):
    with transaction(demo.sessions) as s:
        events, raw = ledger(s), field_lots(s)
    for lot in demo.result.lots:
        rows = export(demo, lot)
        assert got_ctes(rows) == expected_ctes(events, raw, lineage(events, lot)), lot
        assert rows, lot
        for row in rows:
            assert empty_kdes(row) == [], (lot, row[F.CTE], row[F.TLC])
    # Planting, grading and certification are in the ledger but never a row.
    not_ctes = {r.event_hash for r in events if r.event.kind in ("planting", "grading", "certification")}
    assert len(not_ctes) >= 8
    everything = [row for lot in demo.result.lots for row in export(demo, lot)]
    assert not not_ctes & {row[F.EVENT_HASH] for row in everything}
    assert {row[F.CTE] for row in everything} >= {
        "Harvesting",
        "Cooling",
        "Initial Packing",
        "Shipping",
        "Receiving",
    }


def test_the_rows_say_what_the_rule_asks_for_each_cte(demo):
    rows = {(r[F.CTE], r[F.TLC]): r for r in export(demo, VEG_A)}
    harvest = rows["Harvesting", VEG]
    assert harvest[F.RULE] == "21 CFR 1.1325(a)"
    assert harvest[F.LOC_NAME] == "Organic vegetable farm, Ban Nong Sanit Moo 1"
    assert harvest[F.LOC_BUSINESS] == "Ban Nong Sanit Organic Vegetable Community Enterprise"
    assert harvest[F.LOC_PHONE] == "044-000-111" and harvest[F.LOC_COUNTRY] == "TH"
    assert harvest[F.FIELD].startswith("Field PLOT-NSN-01, Ban Nong Sanit")
    # the lot went from the farm to the packing house's cooler next
    assert harvest[F.RECIPIENT].startswith("Ban Nong Sanit community packing house")
    assert harvest[F.VARIETY] == "ผักคะน้าและผักกาดหอม"
    assert harvest[F.VARIETY_EN] == "Chinese kale and lettuce"
    assert (harvest[F.PACK_SIZE], harvest[F.DOC_TYPE]) == ("bulk", "EPCIS event")
    assert harvest[F.DOC_NUMBER] == harvest[F.EVENT_HASH] and harvest[F.EVENT_HASH].startswith(
        "ni:///sha-256;"
    )

    cooling = rows["Cooling", VEG]
    assert cooling[F.COOLING_METHOD] == "hydro_cooling" and cooling[F.RULE] == "21 CFR 1.1325(b)"
    assert cooling[F.FARM].startswith("Organic vegetable farm, Ban Nong Sanit Moo 1")

    packed = rows["Initial Packing", VEG_A]
    assert packed[F.RULE] == "21 CFR 1.1330(a)"
    assert packed[F.TLC_SOURCE].startswith("Ban Nong Sanit community packing house")
    assert packed[F.TLC_SOURCE_REF] == f"{ID_BASE}/place/PH-NSN"
    assert (packed[F.PACK_SIZE], packed[F.PACK_STYLE]) == ("500 g", "bag")
    assert packed[F.INPUTS] == f"{VEG} (Organic vegetables — Chinese kale and lettuce — bulk): 1190 KGM"
    assert packed[F.HARVESTER] == "Ban Nong Sanit Organic Vegetable Community Enterprise; Tel. 044-000-111"
    assert packed[F.COOLING_LOCATION].startswith("Ban Nong Sanit community packing house")
    assert packed[F.NOTE_EN] == "Packed in 500 g bags"
    assert VEG_B not in {tlc for _, tlc in rows}, "the sibling lot is not in 01A's lineage"

    shipped = rows["Shipping", VEG_A]
    assert (shipped[F.DOC_TYPE], shipped[F.DOC_NUMBER]) == ("bol; po", "BL-2569-000118; PO-EXP-2569-042")
    assert shipped[F.SHIP_TO].startswith("Laem Chabang Port (exporter's warehouse); Siam Community Export")
    assert shipped[F.RECIPIENT] == shipped[F.SHIP_TO]
    assert shipped[F.SHIP_FROM].startswith("Ban Nong Sanit community packing house")
    assert shipped[F.TLC_SOURCE] == packed[F.TLC_SOURCE]
    assert (shipped[F.BIZ_STEP], shipped[F.DISPOSITION]) == ("shipping", "in_transit")
    received = rows["Receiving", VEG_A]
    assert received[F.LOC_NAME] == "Laem Chabang Port (exporter's warehouse)"
    assert received[F.DOC_NUMBER] == "BL-2569-000118; RA-LCB-2569-0907"


def test_a_merge_names_every_input_lot_with_its_quantity_and_farm(demo):
    [milled] = [r for r in export(demo, RICE_MERGED) if r[F.TLC] == RICE_MERGED and "Packing" in r[F.CTE]]
    assert milled[F.INPUTS].startswith("NSN-HML-2606-02 (Hom Mali 105 jasmine rice — Khao Dawk Mali 105")
    assert ": 3350 KGM; NSN-HML-2606-03 (" in milled[F.INPUTS] and milled[F.INPUTS].endswith(": 2120.5 KGM")
    assert "NSN-HML-2606-02: Hom Mali rice farm, Ban Khok Klang Moo 4" in milled[F.FARM]
    assert "NSN-HML-2606-03: Hom Mali rice farm, Ban Nong Sanit Moo 2" in milled[F.FARM]
    assert (milled[F.PACK_SIZE], milled[F.PACK_STYLE]) == ("1 kg", "vacuum bag")


def test_a_later_split_is_a_transformation_and_the_field_lot_reaches_it(demo):
    a, b = "NSN-VEG-2609-01BT1", "NSN-VEG-2609-01BT2"
    with transaction(demo.sessions) as s:
        record_event(
            s,
            Packing(
                kind="packing",
                inputs=(LotQuantity(lot_code=VEG_B, quantity=Quantity(value=Decimal("300"))),),
                outputs=(
                    LotQuantity(lot_code=a, quantity=Quantity(value=Decimal("150"))),
                    LotQuantity(lot_code=b, quantity=Quantity(value=Decimal("150"))),
                ),
                event_id=uuid.uuid4(),
                actor="F-0001",
                place=Place(id="PH-NSN"),
                event_time=datetime.now(BANGKOK) - timedelta(days=2),
                note="แบ่งบรรจุกล่องละ 5 กก.",
            ),
            id_base=ID_BASE,
        )
    rows = export(demo, VEG)  # forward from the field lot to every lot made from it
    split = {r[F.TLC]: r for r in rows if r[F.CTE] == "Transformation"}
    assert set(split) == {a, b}
    assert split[a][F.RULE] == "21 CFR 1.1350(a)"
    assert split[a][F.INPUTS].startswith(
        f"{VEG_B} (Organic vegetables — Chinese kale and lettuce — 500 g bag"
    )
    assert split[a][F.INPUTS].endswith(": 300 KGM")
    assert (split[a][F.PACK_SIZE], split[a][F.PACK_STYLE]) == ("5 kg", "box")
    # Thai text with no translation on file says so rather than leaving the English column empty
    assert split[a][F.NOTE_EN] == F.NO_TRANSLATION
    assert all(empty_kdes(r) == [] for r in rows)
    with transaction(demo.sessions) as s:
        events, raw = ledger(s), field_lots(s)
    assert got_ctes(rows) == expected_ctes(events, raw, lineage(events, VEG))


def test_an_event_at_0530_bangkok_keeps_its_local_date(demo):
    local_day = (datetime.now(BANGKOK) - timedelta(days=3)).date()
    at = datetime(local_day.year, local_day.month, local_day.day, 5, 30, tzinfo=BANGKOK)
    assert at.astimezone(UTC).date() == local_day - timedelta(days=1)  # UTC is still on the day before
    event_id = uuid.uuid4()
    with transaction(demo.sessions) as s:
        record_event(
            s,
            Transport(
                kind="transport",
                leg="ship",
                items=(LotQuantity(lot_code=VEG_B, quantity=Quantity(value=Decimal("200"))),),
                source="PH-NSN",
                destination="PORT-LCB",
                event_id=event_id,
                actor="F-0001",
                place=Place(id="PH-NSN"),
                event_time=at,
                note='=HYPERLINK("https://evil.example";"details")',
            ),
            id_base=ID_BASE,
        )
        event_hash = hash_ni(s.get(models.Event, event_id).hash)  # type: ignore[union-attr]
    [row] = [r for r in export(demo, VEG_B) if r[F.EVENT_HASH] == event_hash]
    assert (row[F.CTE], row[F.DATE], row[F.TIME], row[F.OFFSET]) == (
        "Shipping",
        local_day.isoformat(),
        "05:30:00",
        "+07:00",
    )
    assert row[F.DOC_TYPE] == "EPCIS event" and row[F.DOC_NUMBER] == event_hash  # no paper for this leg
    # Free text that looks like a formula is shown as text in a spreadsheet, never run.
    assert row[F.NOTE] == row[F.NOTE_EN] == '\'=HYPERLINK("https://evil.example";"details")'
    # The range request judges it by its local date too.
    hashes = lambda rows: {r[F.EVENT_HASH] for r in rows}  # noqa: E731
    assert event_hash in hashes(export_range(demo, "organic-veg", local_day, local_day))
    utc_day = local_day - timedelta(days=1)
    assert event_hash not in hashes(export_range(demo, "organic-veg", utc_day, utc_day))

    # The demo's watermelon harvest was at 05:30 Bangkok time as well.
    [harvest] = [r for r in export(demo, WATERMELON) if r[F.CTE] == "Harvesting"]
    assert (harvest[F.TIME], harvest[F.OFFSET]) == ("05:30:00", "+07:00")
    with transaction(demo.sessions) as s:
        [wm] = [r.event for r in ledger(s) if isinstance(r.event, Harvest) and r.event.lot_code == WATERMELON]
    assert (
        harvest[F.DATE]
        == wm.event_time.date().isoformat()
        != wm.event_time.astimezone(UTC).date().isoformat()
    )


def test_rice_is_exported_but_out_of_scope_and_fresh_produce_is_on_the_list(demo):
    status = {lot: {r[F.FTL] for r in export(demo, lot)} for lot in (RICE_MERGED, VEG_A, WATERMELON_PACKED)}
    assert status == {
        RICE_MERGED: {"Not on FTL — exported for completeness"},
        VEG_A: {"On FTL: Leafy greens (fresh)"},
        WATERMELON_PACKED: {"On FTL: Melons (fresh)"},
    }


def test_english_beside_every_thai_text(demo):
    for lot in demo.result.lots:
        for row in export(demo, lot):
            for thai, english in ((F.VARIETY, F.VARIETY_EN), (F.PRODUCT, F.PRODUCT_EN), (F.NOTE, F.NOTE_EN)):
                assert not F.has_thai(row[english]), (lot, english, row[english])
                assert bool(row[thai]) == bool(row[english]), (lot, english)
            for column in F.COLUMNS:
                if F.has_thai(row[column]):
                    assert column in (F.VARIETY, F.PRODUCT, F.NOTE), (lot, column, row[column])


def test_the_glossary_translates_all_the_demos_thai_text(demo):
    texts = set()
    for r in demo.seeded:
        ev = r.event
        texts |= {getattr(ev, name, None) for name in ("variety", "grade", "note")} - {None}
    thai = {t for t in texts if F.has_thai(t)}
    assert len(thai) >= 10
    assert {t: F.english(t) for t in thai if F.english(t) == F.NO_TRANSLATION} == {}
    seeded = {r.event_hash for r in demo.seeded}
    for lot in demo.result.lots:
        for row in export(demo, lot):
            if row[F.EVENT_HASH] in seeded:
                assert F.NO_TRANSLATION not in row.values(), (lot, row[F.CTE])


def test_the_legend_explains_every_code_used(demo):
    with transaction(demo.sessions) as s:
        legend, _, _ = read(export_fsma204(s, VEG_A))
    text = "\n".join(legend)
    assert legend[0].startswith("# How to read: these lines starting with #")
    assert all("," not in line and '"' not in line for line in legend)
    assert not F.has_thai(text) and F.NO_TRANSLATION in text
    rows = [row for lot in demo.result.lots for row in export(demo, lot)]
    used: set[str] = set()
    for row in rows:
        used |= {row[F.UOM], row[F.BIZ_STEP], row[F.DISPOSITION], row[F.LOC_COUNTRY]}
        used |= set(row[F.DOC_TYPE].split("; ")) - {F.ELECTRONIC_RECORD}
        used |= {row[F.COOLING_METHOD]} - {""}
    assert used >= {"KGM", "creating_class_instance", "storing", "bol", "po", "recadv", "TH", "hydro_cooling"}
    for code in used:
        assert f"{code} = " in text, code
    for cte in {row[F.CTE] for row in rows}:
        assert f"{cte} (21 CFR" in text
    assert f"{F.ELECTRONIC_RECORD} = " in text and "+07:00" in text


def test_no_farmer_name_or_phone_in_any_export(demo):
    texts = []
    with transaction(demo.sessions) as s:
        texts += [export_fsma204(s, lot) for lot in demo.result.lots]
        for product in ("organic-veg", "hom-mali-105", "watermelon"):
            texts.append(export_fsma204_range(s, product=product, start=date(2020, 1, 1), end=date.today()))
    assert demo.farmer_phones and demo.farmer_names
    for text in texts:
        for phone in demo.farmer_phones:
            for form in (phone, f"{phone[:3]}-{phone[3:6]}-{phone[6:]}", "+66" + phone[1:]):
                assert form not in text
        for name in demo.farmer_names + demo.officer_names:
            assert name not in text and name.split()[-1] not in text
        assert "F-000" not in text  # not even the farmers' pseudonyms: a location is a business's


# --- the food-and-date-range request ------------------------------------------------------------------------


def test_a_range_returns_exactly_the_ctes_of_that_product_with_local_dates_inclusive(demo):
    with transaction(demo.sessions) as s:
        events, raw = ledger(s), field_lots(s)
        crops = {lot.code: lot.crop for lot in s.scalars(select(models.Lot))}
    melons = {lot for lot, crop in crops.items() if crop == "watermelon"}
    cooling = next(r.event for r in events if isinstance(r.event, Cooling) and r.event.lot_code == WATERMELON)
    packing = next(
        r.event for r in events if isinstance(r.event, Packing) and r.event.inputs[0].lot_code == WATERMELON
    )
    start, end = cooling.event_time.date(), packing.event_time.date()  # both local (+07:00)
    assert start < end

    def dated(r: Recorded) -> bool:
        return start <= r.event.event_time.date() <= end

    expected = expected_ctes([r for r in events if dated(r)], raw, melons)
    assert {cte for cte, _, _ in expected} >= {"Cooling", "Initial Packing"}  # the boundary days are in
    for product in ("watermelon", "melons", "Melons (fresh)"):
        rows = export_range(demo, product, start, end)
        assert got_ctes(rows) == expected, product
        assert all(empty_kdes(r) == [] for r in rows)
    everything = export_range(demo, "leafy-greens", date(2020, 1, 1), date.today())
    with transaction(demo.sessions) as s:
        greens = {lot.code for lot in s.scalars(select(models.Lot).where(models.Lot.crop == "organic-veg"))}
    assert got_ctes(everything) == expected_ctes(events, raw, greens)


def test_bad_requests_are_refused_plainly(demo):
    with transaction(demo.sessions) as s:
        with pytest.raises(InvalidInput) as unknown:
            export_fsma204_range(s, product="durian", start=date(2026, 1, 1), end=date(2026, 2, 1))
        assert unknown.value.code == "unknown_product"
        assert "watermelon" in unknown.value.message and "leafy-greens" in unknown.value.message
        with pytest.raises(InvalidInput) as backwards:
            export_fsma204_range(s, product="watermelon", start=date(2026, 2, 1), end=date(2026, 1, 1))
        assert backwards.value.code == "invalid_range"
        with pytest.raises(NotFound):
            export_fsma204(s, "NO-SUCH-LOT-1")


# --- the same on PostgreSQL (and SQLite), for a small lot without master data -------------------------------


def test_a_small_lot_on_both_databases(db, registry):
    seed_parties(db.sessions, registry)
    for event in lifecycle():
        with transaction(db.sessions) as s:
            record_event(s, event, id_base=ID_BASE)
    with transaction(db.sessions) as s:
        _, header, rows = read(export_fsma204(s, "T-VEG-0001A"))
    assert header == list(F.COLUMNS)
    assert [(r[F.CTE], r[F.TLC]) for r in rows] == [
        ("Harvesting", "T-VEG-0001"),
        ("Initial Packing", "T-VEG-0001A"),
        ("Shipping", "T-VEG-0001A"),
        ("Receiving", "T-VEG-0001A"),
    ]
    # Places with no master data are said to have none, never left blank.
    assert rows[0][F.LOC_NAME] == "FARM-T-01 (no location master data on file)"
    assert all(empty_kdes(r) == [] for r in rows)
    assert "0811111111" not in "".join(v for r in rows for v in r.values())


# --- the pure parts -----------------------------------------------------------------------------------------


def test_products_glossary_and_pack_notes():
    assert F.product_crops("Leafy greens") == ("organic-veg", "vegetable")
    assert F.product_crops("  WATERMELON ") == ("watermelon",)
    assert F.product_crops("durian") is None
    assert F.english("เกรด A") == "Grade A" and F.english("Grade A") == "Grade A" and F.english(None) == ""
    assert F.english("ข้อความที่ไม่มีในอภิธานศัพท์") == F.NO_TRANSLATION
    assert F.pack_from_note("แพ็กถุงละ 500 กรัม") == F.Pack("500 g", "bag")
    assert F.pack_from_note("สีเป็นข้าวสาร บรรจุถุงสุญญากาศ 1 กก.") == F.Pack("1 kg", "vacuum bag")
    assert F.pack_from_note("ล้างและแช่น้ำเย็นก่อนคัด") is None
    assert F.ftl_status("hom-mali-105") == F.NOT_ON_FTL and F.ftl_status("organic-veg").startswith("On FTL")
