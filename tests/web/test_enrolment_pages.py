"""The officer's enrolment pages over HTTP: farmers and plots of the officer's own อปท. only, an
enrolled farmer signing in with phone + PIN, a plot's GeoJSON boundary measured (a far-off one flagged, an
invalid one a 422 with the values kept), CSRF, resends enrolling once, Thai by default and English; and the
plot form with a flagged boundary in a real Chromium at 360 px."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import func, select

from factories import FARMER_1, ID_BASE, make_authority, seed_parties
from traceability.config import Settings
from traceability.domain.catalog import FarmingStandard
from traceability.main import create_app
from traceability.services.auth import sign_in_farmer, sign_in_officer
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

MAX_PAGE_BYTES = 30 * 1024
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def square(rai: float, lat: float = 15.1108, lon: float = 103.6163) -> dict[str, object]:
    """A square GeoJSON Polygon of about ``rai`` (1 rai = 1,600 m²) centred on (lat, lon)."""
    half = math.sqrt(rai * 1600) / 2
    dlat, dlon = half / 110_574, half / (111_320 * math.cos(math.radians(lat)))
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
    return {"type": "Polygon", "coordinates": [[[lon + x * dlon, lat + y * dlat] for x, y in corners]]}


def seed(sessions, registry) -> dict[str, str]:
    """Our authority with an officer and F-0001/F-0002 (each with a plot); another authority's F-0100."""
    seed_parties(sessions, registry, with_officer=True)
    theirs = make_authority(sessions, registry)
    with transaction(sessions) as s:
        enrol_farmer(
            s, code="F-0100", authority=theirs, display_name="นายอื่น ต่างถิ่น", phone="0899999999", pin="9999"
        )
    with transaction(sessions) as s:
        officer = s.scalars(select(models.Officer)).one()
        return {"username": officer.username}


@pytest.fixture
def app(db, anvil, registry, tmp_path):
    seeded = seed(db.sessions, registry)
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    application = create_app(runtime=Runtime(settings, _engine=db.engine))
    application.state.seeded = seeded
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, client=("10.0.0.7", 40000), follow_redirects=False) as c:
        yield c


def session_token(db, *, officer: str | None = None, farmer: dict[str, str] | None = None) -> str:
    """A web session made by the services' own sign-in (independent of the sign-in pages)."""
    with transaction(db.sessions) as s:
        if officer is not None:
            outcome = sign_in_officer(s, username=officer, password="officer-password", client="test")
        else:
            assert farmer is not None
            outcome = sign_in_farmer(s, phone=farmer["phone"], pin=farmer["pin"], client="test")
    assert outcome.token is not None
    return outcome.token.access_token


@pytest.fixture
def officer(db, app, client) -> TestClient:
    client.cookies.set("trace_session", session_token(db, officer=app.state.seeded["username"]))
    return client


def csrf_of(page) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def key_of(page) -> str:
    found = re.search(r'name="key" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def count(db, model) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def farmer_form(csrf: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "lang": "th",
        "display_name": "นางสาวมาลี ศรีสวัสดิ์",
        "phone": "081-555-0101",
        "pin": "2468",
        "pin_again": "2468",
        "group_th": "วิสาหกิจชุมชนผักอินทรีย์บ้านหนองสนิท",
        **overrides,
    }


def plot_form(csrf: str, key: str, **overrides: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "lang": "th",
        "key": key,
        "farmer": "F-0001",
        "name": "แปลงริมหนองน้ำ",
        "village_th": "บ้านหนองสนิท หมู่ 1",
        "village_en": "Ban Nong Sanit, Moo 1",
        "area_rai": "2",
        "area_ngan": "2",
        "crop": "organic-veg",
        "standard": "pgs",
        "lat": "15.1108",
        "lon": "103.6163",
        "boundary": json.dumps(square(2.5)),
        **overrides,
    }


def test_the_pages_are_for_signed_in_officers_only(db, client):
    for path in ("/officer/farmers", "/officer/farmers/new", "/officer/plots/new"):
        r = client.get(path, params={"lang": "en"})
        assert r.status_code == 303 and r.headers["location"] == "/officer/login?lang=en"
    client.cookies.set("trace_session", session_token(db, farmer=FARMER_1))
    for path in ("/officer/farmers", "/officer/plots/new"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/officer/login"
        assert "นางสมพร" not in r.text
    r = client.post("/officer/farmers/new", data=farmer_form("x"))
    assert r.status_code == 303 and r.headers["location"] == "/officer/login"
    assert count(db, models.Farmer) == 3


def test_an_officer_enrols_a_farmer_who_then_signs_in_with_phone_and_pin(db, officer):
    page = officer.get("/officer/farmers/new")
    assert page.status_code == 200 and 'lang="th"' in page.text and "ลงทะเบียนเกษตรกร" in page.text
    assert page.headers["Cache-Control"] == "no-store" and len(page.content) < MAX_PAGE_BYTES
    r = officer.post("/officer/farmers/new", data=farmer_form(csrf_of(page)))
    assert r.status_code == 303 and r.headers["location"] == "/officer/farmers?enrolled=F-0004#F-0004"
    listing = officer.get("/officer/farmers", params={"enrolled": "F-0004"})
    assert "นางสาวมาลี ศรีสวัสดิ์" in listing.text and "ลงทะเบียนแล้ว" in listing.text
    assert "081-xxx-0101" in listing.text and "0815550101" not in listing.text
    token = officer.post("/api/v1/auth/token", json={"phone": "0815550101", "pin": "2468"})
    assert token.status_code == 200 and token.json()["party"] == "F-0004"
    wrong = officer.post("/api/v1/auth/token", json={"phone": "0815550101", "pin": "2469"})
    assert wrong.status_code == 401


def test_a_refused_farmer_form_says_why_in_thai_and_keeps_what_was_typed_but_the_pin(db, officer):
    csrf = csrf_of(officer.get("/officer/farmers/new"))
    r = officer.post("/officer/farmers/new", data=farmer_form(csrf, phone="12345", pin_again="2469"))
    assert r.status_code == 422
    assert "กรอกหมายเลขโทรศัพท์" in r.text and "รหัส PIN ทั้งสองช่องไม่ตรงกัน" in r.text
    assert 'value="12345"' in r.text and 'value="นางสาวมาลี ศรีสวัสดิ์"' in r.text
    # the PINs appear nowhere on the page (random CSRF tokens, long hex, may contain the digits by chance)
    shown = re.sub(r"[0-9a-f]{32,}", "", r.text)
    assert "2468" not in shown and "2469" not in shown
    en = officer.post("/officer/farmers/new", data=farmer_form(csrf, lang="en", pin="12"))
    assert en.status_code == 422 and "The PIN must be 4 to 6 digits." in en.text
    assert count(db, models.Farmer) == 3


def test_a_double_submitted_farmer_form_enrols_one_farmer_and_a_taken_number_is_a_409(db, officer):
    csrf = csrf_of(officer.get("/officer/farmers/new"))
    first = officer.post("/officer/farmers/new", data=farmer_form(csrf))
    second = officer.post("/officer/farmers/new", data=farmer_form(csrf))
    assert first.headers["location"] == second.headers["location"]
    assert count(db, models.Farmer) == 4
    for phone in (FARMER_1["phone"], "0899999999"):  # ours, and another authority's farmer
        taken = officer.post("/officer/farmers/new", data=farmer_form(csrf, phone=phone))
        assert taken.status_code == 409 and "หมายเลขโทรศัพท์นี้ลงทะเบียนไว้แล้ว" in taken.text
    assert count(db, models.Farmer) == 4


def test_forms_without_the_sessions_csrf_token_are_refused(db, officer):
    key = key_of(officer.get("/officer/plots/new"))
    missing = {k: v for k, v in farmer_form("").items() if k != "csrf"}
    for data in (missing, farmer_form("forged")):
        r = officer.post("/officer/farmers/new", data=data)
        assert r.status_code == 403 and "แบบฟอร์มนี้หมดอายุแล้ว" in r.text
    r = officer.post("/officer/plots/new", data=plot_form("forged", key))
    assert r.status_code == 403
    assert (count(db, models.Farmer), count(db, models.Plot)) == (3, 2)


def test_a_plot_with_a_boundary_shows_its_computed_area(db, officer):
    page = officer.get("/officer/plots/new")
    assert page.status_code == 200 and "ลงทะเบียนแปลงปลูก" in page.text and len(page.content) < MAX_PAGE_BYTES
    assert 'value="F-0001"' in page.text and 'value="F-0100"' not in page.text  # own farmers only
    assert "เกษตรอินทรีย์แบบมีส่วนร่วม (PGS)" in page.text and "ผักอินทรีย์" in page.text
    r = officer.post("/officer/plots/new", data=plot_form(csrf_of(page), key_of(page)))
    assert (
        r.status_code == 303 and r.headers["location"] == "/officer/plots/new?done=PLOT-00003&farmer=F-0001"
    )
    done = officer.get(r.headers["location"])
    assert "ลงทะเบียนแปลง “แปลงริมหนองน้ำ” แล้ว รหัส PLOT-00003" in done.text
    assert "พื้นที่ที่แจ้ง: 2 ไร่ 2 งาน" in done.text and "พื้นที่ตามขอบเขตแปลง: 2 ไร่ 2 งาน" in done.text
    assert 'class="warn"' not in done.text
    with transaction(db.sessions) as s:
        row = s.scalars(select(models.Plot).where(models.Plot.code == "PLOT-00003")).one()
        assert (row.name, row.crop, row.standard, str(row.area_rai)) == (
            "แปลงริมหนองน้ำ",
            "organic-veg",
            "pgs",
            "2.500",
        )
        assert row.boundary == square(2.5) and row.boundary_flagged is False


def test_a_boundary_far_from_the_declared_area_is_flagged_on_the_page_and_in_the_list(db, officer):
    page = officer.get("/officer/plots/new", params={"lang": "en"})
    data = plot_form(csrf_of(page), key_of(page), lang="en", boundary=json.dumps(square(10)))
    r = officer.post("/officer/plots/new", data=data)
    assert r.status_code == 303 and r.headers["location"].endswith("&lang=en")
    done = officer.get(r.headers["location"])
    assert "is far from the declared area (2 rai 2 ngan)" in done.text
    listing = officer.get("/officer/farmers")
    assert "⚠ ขอบเขตแปลงไม่ตรงกับพื้นที่ที่แจ้ง" in listing.text
    with transaction(db.sessions) as s:
        assert s.scalars(select(models.Plot.boundary_flagged).where(models.Plot.code == "PLOT-00003")).one()


def test_the_check_button_shows_the_boundarys_area_and_flag_without_enrolling(db, officer):
    page = officer.get("/officer/plots/new")
    key = key_of(page)
    data = plot_form(csrf_of(page), key, boundary=json.dumps(square(10)), action="check")
    checked = officer.post("/officer/plots/new", data=data)
    assert checked.status_code == 200 and "ยังไม่ได้ลงทะเบียน" in checked.text
    assert "พื้นที่ตามขอบเขตแปลง (10 ไร่" in checked.text and "ห่างจากพื้นที่ที่แจ้ง (2 ไร่ 2 งาน) มาก" in checked.text
    assert f'value="{key}"' in checked.text and 'value="แปลงริมหนองน้ำ"' in checked.text
    assert count(db, models.Plot) == 2
    foreign = officer.post("/officer/plots/new", data={**data, "farmer": "F-0100"})
    assert foreign.status_code == 403 and "ห่างจาก" not in foreign.text
    enrolled = officer.post("/officer/plots/new", data={**data, "action": "enrol"})
    assert enrolled.status_code == 303 and count(db, models.Plot) == 3


def test_an_invalid_boundary_is_a_422_with_the_values_kept(db, officer):
    page = officer.get("/officer/plots/new")
    key = key_of(page)
    pasted = '{"type": "Polygon", "coordinates": [[[103.61, 15.11], [103.62, 15.11]]]}'
    r = officer.post("/officer/plots/new", data=plot_form(csrf_of(page), key, boundary=pasted, area_rai="x"))
    assert r.status_code == 422
    assert "ขอบเขตแปลงไม่ใช่รูปหลายเหลี่ยม GeoJSON ที่ถูกต้อง" in r.text and "กรอกพื้นที่เป็นไร่และงาน" in r.text
    assert "[[[103.61, 15.11], [103.62, 15.11]]]" in r.text.replace("&#34;", '"').replace("&quot;", '"')
    assert 'value="แปลงริมหนองน้ำ"' in r.text and f'value="{key}"' in r.text
    for area in ("1e30", "0.0001", "-2", "สอง"):
        r = officer.post(
            "/officer/plots/new", data=plot_form(csrf_of(page), key, area_rai=area, area_ngan="")
        )
        assert r.status_code == 422 and "กรอกพื้นที่เป็นไร่และงาน" in r.text, area
    assert count(db, models.Plot) == 2


def test_a_boundary_too_large_is_refused_with_a_message(db, officer):
    page = officer.get("/officer/plots/new")
    data = plot_form(csrf_of(page), key_of(page), boundary="[103.6, 15.1]," * 20_000)  # 280,000 characters
    r = officer.post("/officer/plots/new", data=data)
    assert r.status_code == 422 and "ขอบเขตแปลงใหญ่เกินไป" in r.text
    assert (
        'value="แปลงริมหนองน้ำ"' in r.text and "[103.6, 15.1]" not in r.text and len(r.content) < MAX_PAGE_BYTES
    )
    data = plot_form(csrf_of(page), key_of(page), boundary="[103.6, 15.1]," * 50_000)  # ~1.1 MB encoded
    r = officer.post("/officer/plots/new", data=data)
    assert r.status_code == 413  # the app's body limit, before any page sees it
    assert count(db, models.Plot) == 2


def test_a_plot_for_a_farmer_of_another_authority_is_a_403(db, officer):
    page = officer.get("/officer/plots/new")
    for farmer in ("F-0100", "F-9999"):
        r = officer.post("/officer/plots/new", data=plot_form(csrf_of(page), key_of(page), farmer=farmer))
        assert r.status_code == 403 and "เกษตรกรรายนี้ไม่ได้ลงทะเบียนกับ อปท. ของท่าน" in r.text
    assert count(db, models.Plot) == 2


def test_a_double_submitted_plot_form_enrols_one_plot(db, officer):
    page = officer.get("/officer/plots/new")
    data = plot_form(csrf_of(page), key_of(page))
    first, second = (officer.post("/officer/plots/new", data=data) for _ in range(2))
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert count(db, models.Plot) == 3
    changed = officer.post("/officer/plots/new", data={**data, "area_rai": "3"})
    assert changed.status_code == 409 and "แบบฟอร์มนี้ส่งไปแล้วด้วยค่าอื่น" in changed.text
    again = officer.post(
        "/officer/plots/new", data={**data, "key": key_of(officer.get("/officer/plots/new"))}
    )
    assert again.status_code == 409 and "เกษตรกรรายนี้มีแปลงชื่อนี้แล้ว" in again.text
    assert count(db, models.Plot) == 3


def test_the_farmers_page_lists_only_the_authoritys_own_farmers_and_plots(officer):
    page = officer.get("/officer/farmers")
    assert page.status_code == 200 and len(page.content) < MAX_PAGE_BYTES
    assert "นางสมพร ใจดี" in page.text and "PLOT-T-01" in page.text and "081-xxx-1111" in page.text
    assert "นายอื่น ต่างถิ่น" not in page.text and "F-0100" not in page.text and "0899999999" not in page.text
    en = officer.get("/officer/farmers", params={"lang": "en"})
    assert 'lang="en"' in en.text and "Farmers and plots" in en.text and "2 rai 2 ngan" in en.text


def test_many_farmers_are_listed_a_page_at_a_time_and_every_page_stays_small(db, officer):
    with transaction(db.sessions) as s:
        authority = s.scalars(select(models.Authority).order_by(models.Authority.id)).first()
        assert authority is not None
        for n in range(40):
            farmer = enrol_farmer(
                s,
                code=f"F-{n + 200:04d}",
                authority=authority,
                display_name=f"นางสาวทดสอบ นามสกุลยาวพอสมควร {n}",
                phone=f"08{n + 10000000:08d}",
                pin="1234",
                group_th="วิสาหกิจชุมชนกลุ่มผักอินทรีย์บ้านหนองสนิท",
            )
            for k, rai in enumerate((2, 9)):
                enrol_plot(
                    s,
                    code=f"PLOT-X{n:03d}-{k}",
                    farmer=farmer,
                    village_th="บ้านหนองสนิท หมู่ 1",
                    village_en="Ban Nong Sanit, Moo 1",
                    area_rai=Decimal(2),
                    lat=Decimal("15.1108"),
                    lon=Decimal("103.6163"),
                    name=f"แปลงริมหนองน้ำ {k}",
                    crop="hom-mali-105",
                    standard=FarmingStandard.ORGANIC_CONVERSION,
                    boundary=square(rai),
                )
    first = officer.get("/officer/farmers")
    assert first.text.count('<section class="lot"') == 10 and "F-0239" in first.text  # newest first
    assert "หน้า 1 จาก 5" in first.text and len(first.content) < MAX_PAGE_BYTES
    last = officer.get("/officer/farmers", params={"page": "5"})
    assert last.text.count('<section class="lot"') == 2 and "F-0001" in last.text  # F-0002, F-0001
    for page in ("99", "abc", "-1"):
        assert officer.get("/officer/farmers", params={"page": page}).status_code == 200
    form = officer.get("/officer/plots/new", params={"farmer": "F-0002"})
    assert len(form.content) < MAX_PAGE_BYTES and 'value="F-0002" selected' in form.text


# ------------------------------------------------------------------ in Chromium, at 360 px


def test_the_plot_form_flags_a_far_off_boundary_in_chromium_at_360_px(live_app, registry, browser):
    server = live_app
    server.seeded = seed(server.runtime.sessions, registry)
    with transaction(server.runtime.sessions) as s:
        outcome = sign_in_officer(
            s, username=str(server.seeded["username"]), password="officer-password", client="test"
        )
    assert outcome.token is not None
    browser.get(server.url + "/healthz")
    browser.delete_all_cookies()
    browser.add_cookie({"name": "trace_session", "value": outcome.token.access_token, "path": "/"})
    browser.get(server.url + "/officer/plots/new?farmer=F-0002")
    assert (
        Select(browser.find_element(By.ID, "farmer")).first_selected_option.get_attribute("value") == "F-0002"
    )
    browser.find_element(By.ID, "name").send_keys("แปลงนาหลังวัด")
    browser.find_element(By.ID, "village_th").send_keys("บ้านโคกกลาง หมู่ 4")
    browser.find_element(By.ID, "area_rai").send_keys("2")
    browser.find_element(By.ID, "area_ngan").send_keys("2")
    Select(browser.find_element(By.ID, "crop")).select_by_value("hom-mali-105")
    Select(browser.find_element(By.ID, "standard")).select_by_value("organic_conversion")
    browser.find_element(By.ID, "lat").send_keys("15.1031, 103.6290")  # pasted as a map app copies it
    boundary = json.dumps(square(6, 15.1031, 103.6290))
    browser.execute_script("document.getElementById('boundary').value = arguments[0]", boundary)
    browser.find_element(By.CSS_SELECTOR, "button.check").click()

    wait = WebDriverWait(browser, 10)
    warning = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#checked + .warn"))).text
    assert "ห่างจากพื้นที่ที่แจ้ง (2 ไร่ 2 งาน) มาก" in warning
    assert browser.find_element(By.ID, "name").get_attribute("value") == "แปลงนาหลังวัด"
    point = [browser.find_element(By.ID, f).get_attribute("value") for f in ("lat", "lon")]
    assert point == ["15.103100", "103.629000"]  # the pasted pair, split
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide: it scrolls sideways on a phone"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(  # the whole form in one picture
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        assert browser.save_screenshot(str(SCREENSHOTS / "officer-plot-flagged-th-360.png"))
    finally:
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True},
        )

    browser.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait.until(ec.url_contains("/officer/plots/new?done=PLOT-00003"))
    flag = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".done + .warn"))).text
    done = browser.find_element(By.CSS_SELECTOR, ".done").text
    assert "PLOT-00003" in done and "6 ไร่" in done and "ห่างจากพื้นที่ที่แจ้ง" in flag
