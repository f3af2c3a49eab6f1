"""The farmer's forms for planting, harvest, cooling and grading over HTTP, on a ledger seeded on a real
Anvil: each offers only the farmer's own plots and lots, records exactly one event per form (a resend is the
same event, a changed resend a 409), keeps typed values on a refusal, and stores a harvest photo by its hash
while serving it without EXIF."""

from __future__ import annotations

import hashlib
import html
import io
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, update

from factories import FARMER_1, FARMER_2, ID_BASE, seed_farmer_lots, seed_parties
from traceability.config import Settings
from traceability.domain import codec
from traceability.domain.epcis import from_epcis
from traceability.domain.events import LOT_CODE_RE, Cooling, Grading, Harvest, Planting
from traceability.main import create_app
from traceability.services.parties import enrol_plot
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

KINDS = ("planting", "harvest", "cooling", "grading")
BANGKOK = ZoneInfo("Asia/Bangkok")
TITLES = {
    "th": {
        "planting": "บันทึกการปลูก",
        "harvest": "บันทึกการเก็บเกี่ยว",
        "cooling": "บันทึกการลดอุณหภูมิ",
        "grading": "บันทึกการคัดเกรด",
    },
    "en": {
        "planting": "Record a planting",
        "harvest": "Record a harvest",
        "cooling": "Record cooling",
        "grading": "Record grading",
    },
}
PAGE_LIMIT = 30 * 1024


@pytest.fixture
def seeded(db, registry):
    seed_parties(db.sessions, registry)
    return seed_farmer_lots(db.sessions, registry)


@pytest.fixture
def settings(db, anvil, tmp_path, seeded) -> Settings:
    return Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)


@pytest.fixture
def client(db, settings) -> Iterator[TestClient]:
    app = create_app(runtime=Runtime(settings, _engine=db.engine))
    with TestClient(app, client=("10.0.0.2", 40000), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, creds: dict[str, str]) -> None:
    page = client.get("/farmer/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = client.post("/farmer/login", data={**creds, "csrf": csrf.group(1), "lang": "th"})
    assert r.status_code == 303


@pytest.fixture
def farmer(client) -> TestClient:
    sign_in(client, FARMER_1)
    return client


def form_values(page: str) -> dict[str, str]:
    """What a browser would send for a rendered form untouched: its inputs' and selected options' values."""
    values = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input[^>]*? name="([^"]+)"[^>]*? value="([^"]*)"', page)
    }
    for found in re.finditer(r'<select[^>]*? name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', found.group(2))
        if chosen:
            values[found.group(1)] = html.unescape(chosen.group(1))
    checked = re.search(r'name="disposition" value="([^"]+)" required checked', page)
    if checked:
        values["disposition"] = checked.group(1)
    return values


def open_form(client: TestClient, kind: str, lang: str = "th") -> dict[str, str]:
    r = client.get(f"/farmer/record/{kind}", params={"lang": lang})
    assert r.status_code == 200, r.text
    return form_values(r.text)


def filled(client: TestClient, kind: str, **changes: str) -> dict[str, str]:
    """A form as the farmer sends it: the defaults, plus a weight where the form has no default."""
    values = open_form(client, kind)
    if kind == "harvest":
        values["quantity"] = "120"
    if kind in ("cooling", "grading"):
        values["quantity"] = "40"
    return {**values, **changes}


def events(db, kind: str | None = None) -> list[models.Event]:
    with transaction(db.sessions) as s:
        query = select(models.Event).order_by(models.Event.recorded_at)
        if kind:
            query = query.where(models.Event.kind == kind)
        return list(s.scalars(query))


def stored(db, event_id: str):
    with transaction(db.sessions) as s:
        row = s.get(models.Event, uuid.UUID(event_id))
        assert row is not None
        return from_epcis(codec.loads(row.body))


def count(db, model) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def page_weight(client: TestClient, page: str) -> int:
    """The page and every asset it loads (scripts, stylesheets, images) from this server."""
    total = len(page.encode("utf-8"))
    for src in re.findall(r'<(?:script|img)[^>]* src="(/[^"]+)"|<link[^>]* href="(/[^"]+)"', page):
        path = next(p for p in src if p)
        asset = client.get(path)
        assert asset.status_code == 200, path
        total += len(asset.content)
    return total


def jpeg_with_gps() -> bytes:
    """A real photo as a phone takes it: JPEG with EXIF holding the camera and a GPS position."""
    image = Image.new("RGB", (640, 480), (70, 140, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (14.0, 52.0, 59.0)
    gps[3], gps[4] = "E", (103.0, 29.0, 36.0)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


# --- pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["th", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_form_follows_the_contract_and_offers_only_my_own_choices(farmer, kind, lang):
    r = farmer.get(f"/farmer/record/{kind}", params={"lang": lang})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    page = r.text
    assert f'lang="{lang}"' in page
    form = re.search(r"<form [^>]*>", page.split("<main>", 1)[1])
    assert form is not None
    assert f'method="post" action="/farmer/record/{kind}" data-queue' in form.group(0)
    assert ('enctype="multipart/form-data"' in form.group(0)) == (kind in ("harvest", "grading"))
    values = form_values(page)
    assert values["lang"] == lang and len(values["csrf"]) == 64
    assert uuid.UUID(values["event_id"]).version == 4
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", values["event_time"])
    assert 'type="datetime-local"' in page
    # The other farmer's plot and lot are never offered.
    assert "PLOT-T-02" not in page and "T-VEG-0002" not in page
    assert f"<h1>{TITLES[lang][kind]}</h1>" in page
    if kind == "planting":
        assert (
            values["plot"] == "PLOT-T-01" and values["crop"] == "organic-veg" and values["area_rai"] == "2.5"
        )
        assert re.fullmatch(LOT_CODE_RE, values["lot_code"]) and values["lot_code"] in page
        assert ("ไร่" if lang == "th" else "rai") in page and ("งาน" if lang == "th" else "ngan") in page
    elif kind == "harvest":
        assert values["lot"] == "T-VEG-0001"
        assert 'type="file" accept="image/*" capture="environment"' in page
        assert "T-VEG-0001A" not in page  # packed lots are not harvested
    else:
        # Only lots with produce left: 440 kg in T-VEG-0001B; the rest was packed or shipped.
        assert values["lot"] == "T-VEG-0001B" and values["quantity"] == "440"
        assert ("เหลือ 440 กก." if lang == "th" else "440 kg left") in page
        assert 'value="T-VEG-0001A"' not in page and 'value="T-VEG-0001"' not in page
        assert values["place"] == "PLOT-T-01" and 'value="PH-T"' in page
    assert ('value="t"' in page) == (kind != "planting")
    assert page_weight(farmer, page) <= PAGE_LIMIT


@pytest.mark.parametrize("lang", ["th", "en"])
def test_the_menu_links_every_step_and_my_lots_links_the_menu(farmer, lang):
    page = farmer.get("/farmer/record", params={"lang": lang}).text
    suffix = "?lang=en" if lang == "en" else ""
    for kind in ("planting", "harvest", "cooling", "grading", "packing", "ship", "receive"):
        assert f'href="/farmer/record/{kind}{suffix}"' in page
    assert ("บันทึกขั้นตอน" if lang == "th" else "Record a step") in page
    lots = farmer.get("/farmer/lots", params={"lang": lang}).text
    assert f'href="/farmer/record{suffix}"' in lots
    assert page_weight(farmer, page) <= PAGE_LIMIT


# --- recording ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_each_form_records_exactly_one_event_and_a_resend_is_the_same_one(db, farmer, kind):
    before = len(events(db))
    body = filled(farmer, kind)
    r = farmer.post(f"/farmer/record/{kind}", data=body)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/farmer/lots?recorded={body['event_id']}"
    assert len(events(db)) == before + 1
    event = stored(db, body["event_id"])
    assert event.kind == kind and event.actor == "F-0001"
    if isinstance(event, Planting):
        assert event.lot_code == body["lot_code"] and event.plot_id == "PLOT-T-01"
        assert event.area_rai == Decimal("2.5") and event.place.id == "PLOT-T-01" and event.authority
    elif isinstance(event, Harvest):
        assert (event.lot_code, event.plot_id, event.crop) == ("T-VEG-0001", "PLOT-T-01", "organic-veg")
        assert event.quantity.kg() == 120 and event.place.id == "PLOT-T-01" and event.evidence == ()
    else:
        assert isinstance(event, Cooling | Grading)
        assert event.lot_code == "T-VEG-0001B" and event.quantity.kg() == 40
    if isinstance(event, Grading):
        assert (event.grade, event.disposition) == ("A", "conformant")

    again = farmer.post(f"/farmer/record/{kind}", data=body)  # a double tap, or the offline queue's resend
    assert again.status_code == 303 and again.headers["location"] == r.headers["location"]
    assert len(events(db)) == before + 1

    lots = farmer.get(r.headers["location"])
    assert lots.status_code == 200 and "บันทึกเรียบร้อยแล้ว" in lots.text
    shown = {"harvest": "120 กก.", "cooling": "40 กก.", "grading": "40 กก."}
    assert shown.get(kind, body.get("lot_code", "?")) in lots.text
    assert "บันทึกเรียบร้อยแล้ว" not in farmer.get("/farmer/lots?recorded=<b>x</b>").text


def test_the_same_form_sent_again_with_another_weight_is_a_409_and_nothing_changes(db, farmer):
    body = filled(farmer, "harvest", quantity="120")
    assert farmer.post("/farmer/record/harvest", data=body).status_code == 303
    r = farmer.post("/farmer/record/harvest", data={**body, "quantity": "150"})
    assert r.status_code == 409
    assert "แบบฟอร์มนี้เคยส่งไปแล้วด้วยข้อมูลที่ต่างกัน" in r.text and "<!doctype html>" in r.text
    assert len(events(db, "harvest")) == 2  # the seed's and this one
    assert stored(db, body["event_id"]).quantity.kg() == 120
    en = farmer.post("/farmer/record/harvest", data={**body, "quantity": "150", "lang": "en"})
    assert en.status_code == 409 and "already sent with different values" in en.text


def test_tonnes_are_recorded_in_tonnes_and_shown_in_kilograms(db, farmer):
    body = filled(farmer, "harvest", quantity="1.25", quantity_unit="t")
    assert farmer.post("/farmer/record/harvest", data=body).status_code == 303
    quantity = stored(db, body["event_id"]).quantity
    assert (quantity.value, quantity.uom.value, quantity.kg()) == (Decimal("1.25"), "TNE", Decimal(1250))
    assert "1,250 กก." in farmer.get("/farmer/lots").text


def test_a_planting_makes_a_new_lot_whose_code_is_stable_across_a_resend(db, farmer):
    first, second = open_form(farmer, "planting"), open_form(farmer, "planting")
    today = datetime.now(BANGKOK).date()
    assert first["lot_code"] == second["lot_code"]  # nothing recorded yet: both forms get the next free code
    assert first["lot_code"].startswith(f"F0001-{(today.year + 543) % 100:02d}")
    body = {**first, "area_rai": "1", "area_ngan": "2", "area_wa": "100", "variety": "ผักกวางตุ้ง"}
    assert farmer.post("/farmer/record/planting", data=body).status_code == 303
    assert farmer.post("/farmer/record/planting", data=body).status_code == 303
    planting = stored(db, body["event_id"])
    assert isinstance(planting, Planting) and planting.area_rai == Decimal("1.75")
    assert planting.variety == "ผักกวางตุ้ง"
    # The second form, opened at the same time, names the same code: it is offered a new one, not a 500.
    r = farmer.post("/farmer/record/planting", data={**second, "area_rai": "1"})
    assert r.status_code == 422 and "รหัสล็อตนี้เพิ่งถูกใช้ในแบบฟอร์มอื่น" in r.text
    offered = form_values(r.text)
    assert offered["lot_code"] != first["lot_code"] and offered["event_id"] == second["event_id"]
    assert farmer.post("/farmer/record/planting", data=offered).status_code == 303
    assert open_form(farmer, "harvest")["lot"] == offered["lot_code"]  # the newest lot, ready to harvest
    assert len(events(db, "planting")) == 4


# --- refusals -----------------------------------------------------------------------------------------------


def test_an_invalid_number_re_renders_the_form_with_the_message_and_the_typed_values(db, farmer):
    before = len(events(db))
    body = filled(farmer, "harvest", quantity="12O", quantity_unit="t", event_time="2026-11-20T06:15")
    r = farmer.post("/farmer/record/harvest", data=body)
    assert r.status_code == 422
    assert "กรุณากรอกน้ำหนักเป็นตัวเลข" in r.text and 'aria-invalid="true"' in r.text
    kept = form_values(r.text)
    assert kept["quantity"] == "12O" and kept["quantity_unit"] == "t" and kept["lot"] == "T-VEG-0001"
    assert kept["event_id"] == body["event_id"] and kept["event_time"] == "2026-11-20T06:15"
    en = farmer.post("/farmer/record/harvest", data={**body, "lang": "en"})
    assert en.status_code == 422 and "Enter the weight as a number" in en.text
    area = farmer.post("/farmer/record/planting", data={**open_form(farmer, "planting"), "area_rai": "สองไร่"})
    assert area.status_code == 422 and "กรุณากรอกพื้นที่ปลูกเป็นตัวเลข" in area.text and "สองไร่" in area.text
    future = (datetime.now(BANGKOK) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    late = farmer.post("/farmer/record/harvest", data={**body, "quantity": "5", "event_time": future})
    assert late.status_code == 422 and "วันและเวลาต้องอยู่ระหว่าง" in late.text
    for celsius in ("99", "เย็น"):
        hot = farmer.post("/farmer/record/cooling", data=filled(farmer, "cooling", celsius=celsius))
        assert hot.status_code == 422 and "อุณหภูมิต้องเป็นตัวเลขตั้งแต่ -40 ถึง 80" in hot.text
        assert form_values(hot.text)["celsius"] == celsius
    assert len(events(db)) == before


def test_more_than_the_lot_holds_is_refused_with_what_is_left(db, farmer):
    before = len(events(db))
    r = farmer.post("/farmer/record/grading", data=filled(farmer, "grading", quantity="441"))
    assert r.status_code == 422 and "เหลือ 440 กก." in r.text and form_values(r.text)["quantity"] == "441"
    assert len(events(db)) == before


def test_without_the_right_csrf_token_nothing_is_stored(db, farmer):
    before = len(events(db))
    for kind in KINDS:
        body = filled(farmer, kind)
        for csrf in (None, "wrong"):
            data = {k: v for k, v in body.items() if k != "csrf"} | ({"csrf": csrf} if csrf else {})
            r = farmer.post(f"/farmer/record/{kind}", data=data)
            assert r.status_code == 403 and "แบบฟอร์มนี้หมดอายุแล้ว" in r.text
    assert len(events(db)) == before


def test_without_a_session_or_with_an_expired_one_a_form_goes_to_the_sign_in_page(db, client):
    assert client.get("/farmer/record/harvest").headers["location"] == "/farmer/login"
    assert client.get("/farmer/record?lang=en").headers["location"] == "/farmer/login?lang=en"
    sign_in(client, FARMER_1)
    body = filled(client, "harvest")
    with transaction(db.sessions) as s:
        s.execute(update(models.AuthToken).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    r = client.post("/farmer/record/harvest", data={**body, "lang": "en"})
    assert r.status_code == 303 and r.headers["location"] == "/farmer/login?lang=en"
    assert len(events(db, "harvest")) == 1  # the seed's


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("planting", {"plot": "PLOT-T-02"}),
        ("harvest", {"lot": "T-VEG-0002"}),
        ("cooling", {"lot": "T-VEG-0002"}),
        ("grading", {"lot": "T-VEG-0002"}),
        ("harvest", {"lot": "NO-SUCH-LOT"}),
    ],
)
def test_another_farmers_plot_or_lot_is_a_403_page_and_nothing_is_stored(db, farmer, kind, changes):
    before, lots = len(events(db)), count(db, models.Lot)
    r = farmer.post(f"/farmer/record/{kind}", data=filled(farmer, kind, **changes))
    assert r.status_code == 403 and "แปลงหรือล็อตนี้ไม่ใช่ของคุณ" in r.text
    en = farmer.post(f"/farmer/record/{kind}", data=filled(farmer, kind, lang="en", **changes))
    assert en.status_code == 403 and "That plot or lot is not yours" in en.text and 'lang="en"' in en.text
    assert (len(events(db)), count(db, models.Lot)) == (before, lots)


# --- photos -------------------------------------------------------------------------------------------------


def test_a_harvest_photo_is_kept_by_its_hash_and_served_without_exif(db, farmer, settings):
    photo = jpeg_with_gps()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)  # the original carries GPS
    body = filled(farmer, "harvest")
    files = {"photo": ("IMG_0001.jpg", photo, "image/jpeg")}
    r = farmer.post("/farmer/record/harvest", data=body, files=files)
    assert r.status_code == 303, r.text
    again = farmer.post("/farmer/record/harvest", data=body, files=files)
    assert again.status_code == 303 and len(events(db, "harvest")) == 2  # the seed's and this one
    harvest = stored(db, body["event_id"])
    sha = hashlib.sha256(photo).hexdigest()
    assert harvest.evidence == (sha,)
    assert (settings.evidence_dir / sha[:2] / f"{sha}.jpg").read_bytes() == photo
    served = farmer.get(f"/evidence/{sha}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert "immutable" in served.headers["cache-control"]
    copy = Image.open(io.BytesIO(served.content))
    assert copy.format == "JPEG" and copy.size == (640, 480)
    assert not copy.getexif() and b"Exif" not in served.content and b"PhoneMaker" not in served.content
    assert farmer.get(f"/evidence/{'0' * 64}").status_code == 404
    assert farmer.get("/evidence/..%2F..%2Fetc").status_code == 404


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels: an image bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\0"))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


@pytest.mark.parametrize("kind", ["harvest", "grading"])
@pytest.mark.parametrize(
    "upload", [("notes.jpg", "นี่ไม่ใช่รูปภาพ".encode()), ("bomb.png", png_claiming(50_000, 50_000))]
)
def test_a_file_that_is_not_a_photo_is_a_422_and_nothing_is_stored(db, farmer, settings, kind, upload):
    before = len(events(db))
    body = filled(farmer, kind)
    files = {"photo": (*upload, "image/jpeg")}
    r = farmer.post(f"/farmer/record/{kind}", data=body, files=files)
    assert r.status_code == 422 and "ไฟล์นี้ใช้เป็นรูปถ่ายไม่ได้" in r.text
    assert form_values(r.text)["event_id"] == body["event_id"]
    assert len(events(db)) == before
    assert not settings.evidence_dir.exists() or not any(Path(settings.evidence_dir).rglob("*.*"))
    # The same form sent again with a real photo is recorded.
    good = {"photo": ("IMG.jpg", jpeg_with_gps(), "image/jpeg")}
    assert farmer.post(f"/farmer/record/{kind}", data=body, files=good).status_code == 303


def test_a_grading_may_reject_part_of_a_lot_with_a_photo(db, farmer):
    body = filled(farmer, "grading", disposition="non_conformant", grade="C", quantity="40")
    files = {"photo": ("IMG.jpg", jpeg_with_gps(), "image/jpeg")}
    assert farmer.post("/farmer/record/grading", data=body, files=files).status_code == 303
    grading = stored(db, body["event_id"])
    assert (
        isinstance(grading, Grading)
        and grading.disposition == "non_conformant"
        and len(grading.evidence) == 1
    )
    assert open_form(farmer, "grading")["quantity"] == "400"  # the rejected 40 kg left the lot


def test_photo_forms_may_send_12_mib_and_every_other_path_1_mib(farmer):
    big_photo = {"photo": ("big.jpg", b"\xff" * (3 * 1024 * 1024), "image/jpeg")}
    r = farmer.post("/farmer/record/harvest", data=filled(farmer, "harvest"), files=big_photo)
    assert r.status_code == 422 and "ไฟล์นี้ใช้เป็นรูปถ่ายไม่ได้" in r.text  # read, and refused as no image
    too_big = {"photo": ("huge.jpg", b"\xff" * (13 * 1024 * 1024), "image/jpeg")}
    r = farmer.post("/farmer/record/grading", data=filled(farmer, "grading"), files=too_big)
    assert r.status_code == 413
    r = farmer.post("/farmer/record/cooling", data=filled(farmer, "cooling"), files=big_photo)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert farmer.post("/farmer/record/planting", data={"note": "ก" * (1024 * 1024)}).status_code == 413


def test_the_other_farmer_gets_their_own_choices(farmer):
    farmer.cookies.clear()
    sign_in(farmer, FARMER_2)
    values = open_form(farmer, "planting")
    assert values["plot"] == "PLOT-T-02" and values["lot_code"].startswith("F0002-")
    assert open_form(farmer, "harvest")["lot"] == "T-VEG-0002"


def test_a_plot_with_a_name_crop_and_position_gives_the_defaults_and_the_place(db, farmer):
    with transaction(db.sessions) as s:
        owner = s.scalars(select(models.Farmer).where(models.Farmer.code == "F-0001")).one()
        enrol_plot(
            s,
            code="PLOT-T-03",
            farmer=owner,
            village_th="บ้านหนองสนิท",
            village_en="Ban Nong Sanit",
            area_rai=Decimal("3"),
            lat=Decimal("14.883"),
            lon=Decimal("103.4933"),
            name="แปลงริมห้วย",
            crop="watermelon",
        )
    page = farmer.get("/farmer/record/planting").text
    assert "แปลงริมห้วย · 3 ไร่ · PLOT-T-03" in page
    body = {**form_values(page), "plot": "PLOT-T-03", "crop": "watermelon", "area_rai": "3"}
    assert farmer.post("/farmer/record/planting", data=body).status_code == 303
    planting = stored(db, body["event_id"])
    assert planting.place.id == "PLOT-T-03"
    assert (planting.place.lat, planting.place.lon) == (Decimal("14.883"), Decimal("103.4933"))
    again = open_form(farmer, "planting")  # the plot used last, with the crop it is enrolled for
    assert (again["plot"], again["crop"], again["area_rai"]) == ("PLOT-T-03", "watermelon", "3")
    harvest = filled(farmer, "harvest")
    assert harvest["lot"] == body["lot_code"]
    assert farmer.post("/farmer/record/harvest", data=harvest).status_code == 303
    recorded = stored(db, harvest["event_id"])
    assert isinstance(recorded, Harvest) and recorded.crop == "watermelon"
    assert (recorded.plot_id, recorded.place.lat) == ("PLOT-T-03", Decimal("14.883"))


def test_malformed_or_oversized_forms_are_refused_without_a_500(db, farmer):
    before = len(events(db))
    body = filled(farmer, "harvest")
    broken = farmer.post(
        "/farmer/record/harvest",
        content=b'--xyz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 403
    photo = ("IMG.jpg", jpeg_with_gps(), "image/jpeg")
    two = farmer.post("/farmer/record/harvest", data=body, files=[("photo", photo), ("photo", photo)])
    assert two.status_code == 403  # one photo per form: the form is not read at all
    long_value = farmer.post("/farmer/record/harvest", data={**body, "quantity": "9" * 5000})
    assert long_value.status_code == 422 and "9" * 200 in long_value.text and "9" * 201 not in long_value.text
    assert farmer.post("/farmer/record/harvest", data={**body, "event_id": "not-a-uuid"}).status_code == 422
    assert len(events(db)) == before
