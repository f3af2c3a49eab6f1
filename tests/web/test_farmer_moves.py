"""The farmer's packing (split / merge), ship and receive forms over HTTP, on a ledger seeded on a real Anvil
(F-0001's lot T-VEG-0001 packed into T-VEG-0001A, shipped, and T-VEG-0001B, 440 kg left): each records
exactly one event per form, the ledger's mass balance refuses packs heavier than their inputs with a Thai
message and nothing stored, a resend is the same event and a changed resend a 409, and another farmer's lot
or a missing CSRF token is a 403."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from browsing import NAVIGATING
from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import func, select, update

from factories import FARMER_1, ID_BASE, seed_farmer_lots, seed_parties
from traceability.config import Settings
from traceability.domain.events import LOT_CODE_RE, Packing, Transport
from traceability.domain.findings import Severity
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.choices import farmer_choices, farmer_whereabouts
from traceability.services.events import stored_event
from traceability.services.ledger import verify_lot
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

KINDS = ("packing", "ship", "receive")
TITLES = {
    "th": {"packing": "บันทึกการบรรจุ", "ship": "บันทึกการส่งสินค้า", "receive": "บันทึกการรับสินค้า"},
    "en": {"packing": "Record packing", "ship": "Record a shipment", "receive": "Record a receipt"},
}
PAGE_LIMIT = 30 * 1024
LEFT = "T-VEG-0001B"  # 440 kg left after the seeded packing
SHIPPED = "T-VEG-0001A"  # 500 kg on its way from PH-T to PORT-LCB
OTHERS = "T-VEG-0002"  # F-0002's


@pytest.fixture
def seeded(db, registry):
    seed_parties(db.sessions, registry)
    return seed_farmer_lots(db.sessions, registry)


@pytest.fixture
def client(db, anvil, tmp_path, seeded) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    app = create_app(runtime=Runtime(settings, _engine=db.engine))
    with TestClient(app, client=("10.0.0.3", 40000), follow_redirects=False) as c:
        yield c


@pytest.fixture
def farmer(client) -> TestClient:
    page = client.get("/farmer/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = client.post("/farmer/login", data={**FARMER_1, "csrf": csrf.group(1), "lang": "th"})
    assert r.status_code == 303
    return client


def form_values(page: str) -> dict[str, str]:
    """What a browser sends for a rendered form untouched: its inputs' values and the selected options."""
    values = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input[^>]*? name="([^"]+)"[^>]*? value="([^"]*)"', page)
    }
    for found in re.finditer(r'<select[^>]*? name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', found.group(2))
        first = re.search(r'<option value="([^"]*)"', found.group(2))
        values[found.group(1)] = html.unescape((chosen or first).group(1)) if (chosen or first) else ""
    return values


def open_form(client: TestClient, kind: str, lang: str = "th") -> dict[str, str]:
    r = client.get(f"/farmer/record/{kind}", params={"lang": lang})
    assert r.status_code == 200, r.text
    return form_values(r.text)


def recorded(db, kind: str | None = None) -> list[models.Event]:
    with transaction(db.sessions) as s:
        query = select(models.Event).order_by(models.Event.recorded_at)
        if kind:
            query = query.where(models.Event.kind == kind)
        return list(s.scalars(query))


def lot_count(db) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(models.Lot)) or 0)


def held(db, code: str) -> Decimal:
    with transaction(db.sessions) as s:
        farmer = s.scalars(select(models.Farmer).where(models.Farmer.code == "F-0001")).one()
        lot = farmer_choices(s, farmer.id).lot(code)
    assert lot is not None
    return lot.available_kg


def saved(r, lang: str = "th") -> str:
    """The event id a successful form redirected with."""
    assert r.status_code == 303, r.text
    found = re.fullmatch(
        r"/farmer/lots\?recorded=([0-9a-f-]{36})" + ("&lang=en" if lang == "en" else ""),
        r.headers["location"],
    )
    assert found is not None, r.headers["location"]
    return found.group(1)


def test_each_form_renders_in_thai_and_english_with_only_my_lots_and_under_30_kb(farmer):
    for lang in ("th", "en"):
        for kind in KINDS:
            r = farmer.get(f"/farmer/record/{kind}", params={"lang": lang})
            assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
            text = r.text
            assert f'lang="{lang}"' in text and TITLES[lang][kind] in text
            assert f'action="/farmer/record/{kind}" data-queue' in text
            for hidden in ("csrf", "lang", "event_id"):
                assert f'type="hidden" name="{hidden}"' in text
            assert 'type="datetime-local"' in text
            assert OTHERS not in text and "บุญมี" not in text
            assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', text)
            size = len(r.content) + sum(len(farmer.get(a).content) for a in assets)
            assert size <= PAGE_LIMIT, (kind, lang, size)
    packing = farmer.get("/farmer/record/packing").text
    assert (
        f'<optgroup label="ผักอินทรีย์"><option value="{LEFT}" selected>{LEFT} · เหลือ 440 กก.</option>' in packing
    )
    assert "T-VEG-0001A" not in packing  # nothing left in it to pack: it is on its way
    assert 'placeholder="ทั้งหมดที่เหลือ"' in packing
    receive = farmer.get("/farmer/record/receive?lang=en").text
    shipment = f'<option value="{SHIPPED}">{SHIPPED} · 500 kg from PH-T to PORT-LCB</option>'
    assert f'<optgroup label="Organic vegetables">{shipment}' in receive


def test_the_forms_need_a_session(client):
    for kind in KINDS:
        r = client.get(f"/farmer/record/{kind}?lang=en")
        assert r.status_code == 303 and r.headers["location"] == "/farmer/login?lang=en"
        r = client.post(f"/farmer/record/{kind}", data={"lang": "th", "csrf": "x"})
        assert r.status_code == 303 and r.headers["location"] == "/farmer/login"


def test_split_one_lot_into_two_packs_then_merge_them_into_one(db, registry, farmer):
    with transaction(db.sessions) as s:  # the farmer's plot, where this packing is done, has coordinates
        s.execute(
            update(models.Plot).where(models.Plot.code == "PLOT-T-01").values(lat="15.1031", lon="103.629")
        )
    form = open_form(farmer, "packing")
    codes = [form[f"out{i}_code"] for i in range(1, 6)]
    assert all(re.fullmatch(LOT_CODE_RE, c) for c in codes) and len(set(codes)) == 5
    assert codes[0].startswith("F0001-") and form["place"] == "PH-T"  # where the lot was packed before
    # split: all that is left of T-VEG-0001B (empty weight), into 300 kg and 0.1 t, at the farm
    split = {**form, "out1_qty": "300", "out2_qty": "0.1", "out2_qty_unit": "t", "place": "plot-t-01"}
    event_id = saved(farmer.post("/farmer/record/packing", data=split))
    packings = recorded(db, "packing")
    assert len(packings) == 2  # the seeded one and this one
    row = packings[-1]
    assert str(row.id) == event_id and row.actor == "F-0001"
    event = stored_event(row)
    assert isinstance(event, Packing)
    assert [(i.lot_code, i.quantity.kg()) for i in event.inputs] == [(LEFT, Decimal(440))]
    assert (event.place.id, event.place.lat, event.place.lon) == (
        "PLOT-T-01",
        Decimal("15.1031"),
        Decimal("103.629"),
    )
    assert [(o.lot_code, o.quantity.kg()) for o in event.outputs] == [(codes[0], 300), (codes[1], 100)]
    assert held(db, LEFT) == 0 and held(db, codes[0]) == 300 and held(db, codes[1]) == 100

    # merge: the two packs into one of 390 kg
    form = open_form(farmer, "packing")
    merged = form["out1_code"]
    merge = {**form, "in1_lot": codes[0], "in2_lot": codes[1], "out1_qty": "390"}
    saved(farmer.post("/farmer/record/packing", data=merge))
    packings = recorded(db, "packing")
    assert len(packings) == 3
    event = stored_event(packings[-1])
    assert isinstance(event, Packing)
    assert {(i.lot_code, i.quantity.kg()) for i in event.inputs} == {(codes[0], 300), (codes[1], 100)}
    assert [(o.lot_code, o.quantity.kg()) for o in event.outputs] == [(merged, 390)]
    assert held(db, codes[0]) == 0 and held(db, codes[1]) == 0 and held(db, merged) == 390

    # the merged lot's lineage verifies: hash chains unbroken (both packs' head is the split: named once in
    # prev) and quantities that add up; only the missing certification is a warning
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, merged, confirmations=0)
    assert verdict.status.value == "warning", verdict.to_json()
    assert {f.severity for f in verdict.findings} == {Severity.WARNING}, verdict.to_json()

    lots = farmer.get(f"/farmer/lots?recorded={event_id}").text
    for code in (codes[0], codes[1], merged):
        assert code in lots
    assert "390 กก." in lots and "300 กก." in lots


def test_packs_heavier_than_their_inputs_are_refused_in_thai_and_nothing_is_stored(db, farmer):
    before, lots_before = len(recorded(db)), lot_count(db)
    form = open_form(farmer, "packing")
    heavy = {**form, "in1_qty": "400", "out1_qty": "250", "out2_qty": "200"}
    r = farmer.post("/farmer/record/packing", data=heavy)
    assert r.status_code == 422
    assert "แพ็กทั้งหมดหนักรวม 450 กก. มากกว่าผลผลิตที่นำมาบรรจุ 400 กก." in r.text
    values = form_values(r.text)
    assert values["event_id"] == form["event_id"]  # the same form: a corrected send is still one event
    assert (values["in1_lot"], values["in1_qty"], values["out1_qty"], values["out2_qty"]) == (
        LEFT,
        "400",
        "250",
        "200",
    )
    assert values["out1_code"] == form["out1_code"]
    # more than the lot holds, in English: the row's own message
    r = farmer.post(
        "/farmer/record/packing", data={**heavy, "in1_qty": "0.5", "in1_qty_unit": "t", "lang": "en"}
    )
    assert r.status_code == 422 and "That is more than this lot holds now (440 kg left)." in r.text
    # a weight that is not a number
    r = farmer.post("/farmer/record/packing", data={**form, "out1_qty": "สามร้อย"})
    assert r.status_code == 422 and "กรุณาใส่น้ำหนักเป็นตัวเลขที่มากกว่า 0" in r.text
    assert 'value="สามร้อย" aria-invalid="true"' in r.text
    assert len(recorded(db)) == before and lot_count(db) == lots_before

    # the corrected form is then recorded once
    saved(farmer.post("/farmer/record/packing", data={**heavy, "out2_qty": "150"}))
    assert len(recorded(db)) == before + 1 and lot_count(db) == lots_before + 2


def test_a_resend_is_the_same_event_and_a_changed_resend_is_a_409(db, farmer):
    form = {**open_form(farmer, "packing"), "out1_qty": "200"}
    first = saved(farmer.post("/farmer/record/packing", data=form))
    again = saved(farmer.post("/farmer/record/packing", data=form))
    assert again == first and len(recorded(db, "packing")) == 2  # the seeded one and this one

    r = farmer.post("/farmer/record/packing", data={**form, "out1_qty": "210"})
    assert r.status_code == 409
    assert "แบบฟอร์มนี้เคยส่งไปแล้วด้วยข้อมูลที่ต่างกัน" in r.text
    assert len(recorded(db, "packing")) == 2
    assert held(db, LEFT) == 0 and held(db, form["out1_code"]) == 200


def test_another_farmers_lot_or_a_missing_csrf_token_is_a_403_and_nothing_is_stored(db, farmer):
    before = len(recorded(db))
    packing = open_form(farmer, "packing")
    r = farmer.post(
        "/farmer/record/packing", data={**packing, "in1_lot": OTHERS, "in1_qty": "10", "out1_qty": "5"}
    )
    assert r.status_code == 403 and "ไม่ใช่ของคุณ" in r.text
    r = farmer.post(
        "/farmer/record/packing", data={**packing, "in2_lot": OTHERS, "in2_qty": "1", "out1_qty": "5"}
    )
    assert r.status_code == 403
    ship = open_form(farmer, "ship")
    r = farmer.post(
        "/farmer/record/ship",
        data={**ship, "item1_lot": OTHERS, "item1_qty": "1", "destination": "PH-NSN", "lang": "en"},
    )
    assert r.status_code == 403 and "not yours" in r.text
    receive = open_form(farmer, "receive")
    r = farmer.post("/farmer/record/receive", data={**receive, "item1_lot": OTHERS})
    assert r.status_code == 403

    good = {**packing, "out1_qty": "5"}
    r = farmer.post("/farmer/record/packing", data={k: v for k, v in good.items() if k != "csrf"})
    assert r.status_code == 403 and "แบบฟอร์มนี้หมดอายุแล้ว" in r.text
    r = farmer.post("/farmer/record/ship", data={**ship, "csrf": "forged", "destination": "PH-NSN"})
    assert r.status_code == 403
    r = farmer.post("/farmer/record/packing", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 403
    assert len(recorded(db)) == before


def test_ship_then_receive_a_lot_with_its_bill_of_lading(db, farmer):
    ship = open_form(farmer, "ship")
    assert ship["item1_lot"] == LEFT and ship["source"] == "PH-T" and ship["doc_type"] == "bol"
    sent = {
        **ship,
        "item1_qty": "100",
        "destination": "ph-nsn",
        "doc_number": "bl-2569-000200",
        "vehicle": "70-1234 สุรินทร์",
        "celsius": "4,5",
        "buyer": "EXP-0001",
    }
    saved(farmer.post("/farmer/record/ship", data=sent))
    (row,) = [r for r in recorded(db, "transport") if stored_event(r).event_id == uuid.UUID(sent["event_id"])]
    event = stored_event(row)
    assert isinstance(event, Transport) and event.leg == "ship"
    assert [(i.lot_code, i.quantity.kg()) for i in event.items] == [(LEFT, 100)]
    assert (event.source, event.destination, event.place.id) == ("PH-T", "PH-NSN", "PH-T")
    assert [(d.type, d.number) for d in event.documents] == [("bol", "BL-2569-000200")]
    assert event.vehicle == "70-1234 สุรินทร์" and [t.celsius for t in event.temperatures] == [Decimal("4.5")]
    assert (event.owner_from, event.owner_to) == ("F-0001", "EXP-0001")
    assert held(db, LEFT) == 340

    page = farmer.get("/farmer/record/receive").text
    assert (
        f"{LEFT} · 100 กก. จาก PH-T ไป PH-NSN" in page and f"{SHIPPED} · 500 กก. จาก PH-T ไป PORT-LCB" in page
    )
    receive = {**form_values(page), "item1_lot": LEFT, "recadv": "ra-0001", "celsius": "6"}
    saved(farmer.post("/farmer/record/receive", data=receive))
    events = [stored_event(r) for r in recorded(db, "transport")]
    got = next(e for e in events if e.event_id == uuid.UUID(receive["event_id"]))
    assert isinstance(got, Transport) and got.leg == "receive" and got.actor == "F-0001"
    assert [(i.lot_code, i.quantity.kg()) for i in got.items] == [(LEFT, 100)]  # all that was sent
    assert (got.source, got.destination, got.place.id) == ("PH-T", "PH-NSN", "PH-NSN")
    assert [(d.type, d.number) for d in got.documents] == [("bol", "BL-2569-000200"), ("recadv", "RA-0001")]
    assert got.vehicle == "70-1234 สุรินทร์"
    assert held(db, LEFT) == 440
    with transaction(db.sessions) as s:
        farmer_id = s.scalars(select(models.Farmer.id).where(models.Farmer.code == "F-0001")).one()
        where = farmer_whereabouts(s, farmer_id)
    assert where.here[LEFT] == "PH-NSN" and [s.lot_code for s in where.shipments] == [SHIPPED]

    lots = farmer.get("/farmer/lots").text
    assert "จัดส่งสินค้า" in lots and "ปลายทางรับสินค้าแล้ว" in lots
    # nothing more of it is on its way: a second receipt is the farmer's to fix
    again = {**open_form(farmer, "receive"), "item1_lot": LEFT}
    r = farmer.post("/farmer/record/receive", data=again)
    assert r.status_code == 422 and "ล็อตนี้ไม่ได้อยู่ระหว่างขนส่ง" in r.text


def test_ship_form_mistakes_are_shown_next_to_their_fields_with_the_values_kept(db, farmer):
    before = len(recorded(db))
    ship = open_form(farmer, "ship", lang="en")
    cases = [
        ({"destination": "PH-T"}, "destination", "Where the produce goes must differ from where it leaves."),
        ({"destination": "ท่าเรือ"}, "destination", "A place is a code of letters, digits and dashes"),
        (
            {"destination": "PH-NSN", "item1_qty": "1000"},
            "item1_qty",
            "That is more than this lot holds now (440 kg left).",
        ),
        ({"destination": "PH-NSN", "doc_number": "BL 01/2"}, "doc_number", "A document number has letters"),
        (
            {"destination": "PH-NSN", "celsius": "90"},
            "celsius",
            "The temperature must be a number from -40 to 80",
        ),
        ({"destination": "PH-NSN", "buyer": "F-0001"}, "buyer", "That is your own code"),
        (
            {"destination": "PH-NSN", "item1_lot": "", "item2_lot": LEFT, "item3_lot": LEFT},
            "item3_lot",
            "Choose each lot only once.",
        ),
        (
            {"destination": "PH-NSN", "event_time": "2999-01-01T10:00"},
            "event_time",
            "The time cannot be in the future.",
        ),
    ]
    for change, field, message in cases:
        r = farmer.post("/farmer/record/ship", data={**ship, **change})
        assert r.status_code == 422, (change, r.text)
        assert message in r.text, change
        assert f'id="{field}-error"' in r.text, change
        values = form_values(r.text)
        assert values["event_id"] == ship["event_id"]
        assert all(values.get(k, "") == v for k, v in change.items() if k != "item1_lot"), change
    # a mistake in a folded row unfolds it; a fresh form keeps the extra rows folded
    r = farmer.post(
        "/farmer/record/ship", data={**ship, "destination": "PH-NSN", "item2_lot": LEFT, "item2_qty": "x"}
    )
    assert r.status_code == 422 and "<details open>" in r.text
    assert "<details open>" not in farmer.get("/farmer/record/ship").text
    assert len(recorded(db)) == before


def test_crafted_posts_are_answered_with_a_4xx_never_a_500(db, farmer):
    before = len(recorded(db))
    packing = open_form(farmer, "packing")
    crafted = [
        {"out1_qty": "5", "out1_qty_unit": "lb"},
        {"out1_qty": "NaN"},
        {"out1_qty": "1e400"},
        {"out1_qty": "5", "out1_code": "x"},
        {"out1_qty": "5", "out1_code": packing["out2_code"], "out2_qty": "5"},
        {"out1_qty": "5", "out1_code": LEFT},
        {"out1_qty": "5", "gtin": "12345678"},
        {"out1_qty": "5", "left": "T-VEG-0001B=NaN;;=;x=1e999999"},
        {"out1_qty": "5", "left": "T-VEG-0001B=1e999999"},
        {"out1_qty": "5", "left": "T-VEG-0001B=0.0000001"},
        {"out1_qty": "5", "event_id": "not-a-uuid"},
        {"out1_qty": "5", "event_time": "yesterday"},
        {"out1_qty": "5", "place": "-" * 200},
        {"in1_lot": "", "in1_qty": "5", "out1_qty": "5"},
        {"in1_lot": "", "out1_qty": "5"},
        {"out1_qty": ""},
    ]
    for change in crafted:
        r = farmer.post("/farmer/record/packing", data={**packing, **change})
        assert r.status_code == 422, (change, r.status_code)
        assert 'class="alert"' in r.text or 'class="field-error"' in r.text, change
    damaged = farmer.post("/farmer/record/packing", data={**packing, "out1_qty": "5", "event_id": "x"})
    assert form_values(damaged.text)["event_id"] != "x"  # a fresh token, so the corrected form can be sent
    body = "&".join(["csrf=" + packing["csrf"], "lang=th", *(f"f{i}=1" for i in range(100))])
    r = farmer.post(
        "/farmer/record/packing", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 403  # over the field bound: read as an empty form
    r = farmer.post(
        "/farmer/record/ship",
        content=b"\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403
    assert len(recorded(db)) == before


def test_a_farmer_splits_a_lot_and_ships_a_pack_in_chromium_at_360_px(browser, farmer_live_app, tmp_path):
    server = farmer_live_app
    browser.get(server.url + "/farmer/login")
    browser.delete_all_cookies()
    browser.get(server.url + "/farmer/login")
    browser.find_element(By.ID, "phone").send_keys(FARMER_1["phone"])
    browser.find_element(By.ID, "pin").send_keys(FARMER_1["pin"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10, ignored_exceptions=NAVIGATING).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน")
    )

    browser.get(server.url + "/farmer/record/packing")
    assert browser.find_element(By.TAG_NAME, "h1").text == "บันทึกการบรรจุ"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    assert (
        Select(browser.find_element(By.ID, "in1_lot")).first_selected_option.text == f"{LEFT} · เหลือ 440 กก."
    )
    assert not browser.find_element(By.ID, "in2_lot").is_displayed()  # folded away until asked for
    pack = browser.find_element(By.NAME, "out1_code").get_attribute("value")
    browser.find_element(By.ID, "out1_qty").send_keys("300")
    browser.find_element(By.ID, "out2_qty").send_keys("140")
    assert browser.save_screenshot(str(tmp_path / "packing-th-360.png"))
    browser.find_element(By.CSS_SELECTOR, "form[data-queue] button[type=submit]").click()
    WebDriverWait(browser, 10, ignored_exceptions=NAVIGATING).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน")
    )
    assert pack in browser.find_element(By.TAG_NAME, "main").text

    browser.get(server.url + "/farmer/record/ship")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    Select(browser.find_element(By.ID, "item1_lot")).select_by_value(pack)
    browser.find_element(By.ID, "destination").send_keys("PH-NSN")
    browser.find_element(By.ID, "doc_number").send_keys("BL-2569-000300")
    browser.find_element(By.CSS_SELECTOR, "form[data-queue] button[type=submit]").click()
    WebDriverWait(browser, 10, ignored_exceptions=NAVIGATING).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน")
    )

    with transaction(server.runtime.sessions) as s:
        events = [
            stored_event(row) for row in s.scalars(select(models.Event).order_by(models.Event.recorded_at))
        ]
    packing, ship = events[-2:]
    assert isinstance(packing, Packing) and [o.quantity.kg() for o in packing.outputs] == [300, 140]
    assert isinstance(ship, Transport) and ship.leg == "ship"
    assert [(i.lot_code, i.quantity.kg()) for i in ship.items] == [(pack, 300)]  # all that was left of it
    assert [(d.type, d.number) for d in ship.documents] == [("bol", "BL-2569-000300")]
