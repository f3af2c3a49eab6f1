"""The farmer's offline queue (``static/queue.js``): a form sent with no signal is kept on the phone, listed
as waiting, and sent by itself, exactly once, when the phone is back online, in a real headless Chromium
whose network DevTools switch off and on; and the asset itself: versioned, cached, gzipped, and light enough
that every farmer page stays under 30 KB with it."""

from __future__ import annotations

import hashlib
import random
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from factories import FARMER_1
from traceability.config import Settings
from traceability.domain import codec
from traceability.domain.epcis import from_epcis
from traceability.main import create_app
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.static_files import STATIC_DIR

PAGE_BUDGET = 30 * 1024
FORM_PATHS = ("/farmer/record/harvest", "/farmer/record/planting")


# --- the asset, over HTTP --------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    runtime = Runtime(Settings(var_dir=tmp_path, rpc_url="http://127.0.0.1:9"))
    runtime.migrate()
    try:
        with TestClient(create_app(runtime=runtime), follow_redirects=False) as c:
            yield c
    finally:
        runtime.close()


def script_url(html: str) -> str:
    found = re.search(r'<script defer src="(/static/queue\.js\?v=[0-9a-f]{12})"></script>', html)
    assert found is not None, "the page does not load queue.js"
    return found.group(1)


def test_queue_js_is_named_by_its_content_cached_for_a_year_and_sent_gzipped(client):
    url = script_url(client.get("/farmer/login").text)
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.content == (STATIC_DIR / "queue.js").read_bytes()
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["x-content-type-options"] == "nosniff"
    etag = plain.headers["etag"]
    assert etag.strip('"') == url.rsplit("=", 1)[1]

    zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) <= 6 * 1024  # what travels on a 3G link
    assert zipped.content == plain.content  # decoded by the client: the same script

    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    # an old or missing version must be checked again, never kept for a year
    stale = client.get("/static/queue.js?v=000000000000")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", ["nothing.js", "..%2Fstatic_files.py", ".hidden", "%2E%2E"])
def test_only_files_of_the_static_folder_are_served(client, name):
    r = client.get(f"/static/{name}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_public_pages_carry_no_script_and_no_queue(client):
    home = client.get("/")
    assert home.status_code == 200
    assert "<script" not in home.text and 'id="queue"' not in home.text


def test_the_queue_texts_come_translated_from_the_page(client):
    th = client.get("/farmer/login").text
    en = client.get("/farmer/login?lang=en").text
    assert 'data-offline="ยังไม่มีสัญญาณ บันทึกไว้ในเครื่องแล้ว จะส่งให้อัตโนมัติเมื่อกลับมาออนไลน์"' in th
    assert 'data-title="รอส่ง ({count} รายการ)"' in th
    assert 'data-moment="{day} เวลา {time} น."' in th
    assert 'data-offline="No signal. It is saved on this phone and will be sent by itself' in en
    assert 'data-title="Waiting to send ({count})"' in en
    assert '<section id="queue" class="queue" hidden' in th  # shown by the script only
    # and the script itself shows no English of its own: every text it shows is read from the page
    script = (STATIC_DIR / "queue.js").read_text(encoding="utf-8")
    literals = re.findall(r'"([^"]*)"', script)
    assert not [t for t in literals if re.search(r"[\u0e00-\u0e7f]|^[A-Z][a-z]+ [a-z]+", t)], literals


# --- the weight of a farmer page with the script ---------------------------------------------------------


def sign_in_over_http(c: TestClient) -> None:
    page = c.get("/farmer/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = c.post("/farmer/login", data={**FARMER_1, "csrf": csrf.group(1), "lang": "th"})
    assert r.status_code == 303


def farmer_pages(c: TestClient) -> list[str]:
    """My lots, the record menu and every form linked from it that exists."""
    paths = ["/farmer/login", "/farmer/lots"]
    menu = c.get("/farmer/record")
    if menu.status_code == 200:
        paths.append("/farmer/record")
        paths += sorted(set(re.findall(r'href="(/farmer/record/[a-z]+)"', menu.text)))
    return paths


def test_every_farmer_page_with_the_queue_script_weighs_at_most_30_kb(farmer_live_app):
    script = len((STATIC_DIR / "queue.js").read_bytes())
    with TestClient(create_app(runtime=farmer_live_app.runtime), follow_redirects=False) as c:
        sign_in_over_http(c)
        weights = {}
        for path in farmer_pages(c):
            for lang in ("th", "en"):
                page = c.get(path, params={"lang": lang})
                if page.status_code == 404:
                    continue  # a step linked from the menu whose page is not mounted in this app
                assert page.status_code == 200, path
                assert script_url(page.text)
                weights[f"{path}?lang={lang}"] = len(page.content)
    heaviest = max(weights, key=weights.__getitem__)
    # uncompressed, though the script travels gzipped: the budget holds on the worst link
    assert weights[heaviest] + script <= PAGE_BUDGET, (heaviest, weights[heaviest], script)
    assert script <= 16 * 1024, f"queue.js has grown to {script} bytes"
    assert {"/farmer/lots?lang=th", "/farmer/record/harvest?lang=th"} <= set(weights)


# --- in a real Chromium, offline and back ----------------------------------------------------------------


def sign_in(browser, server) -> None:
    browser.get(server.url + "/farmer/login")
    browser.delete_all_cookies()
    browser.get(server.url + "/farmer/login")
    browser.find_element(By.ID, "phone").send_keys(FARMER_1["phone"])
    browser.find_element(By.ID, "pin").send_keys(FARMER_1["pin"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10).until(ec.url_contains("/farmer/lots"))
    wait_for_script(browser)


def wait_for_script(browser) -> None:
    """queue.js has drawn the list (it runs deferred, after the page is parsed)."""
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")


def open_form(browser, server, lang: str = "th") -> str:
    """The harvest form (or the planting form), filled in; returns its event_id."""
    for path in FORM_PATHS:
        browser.get(server.url + path + ("?lang=en" if lang == "en" else ""))
        if browser.find_elements(By.CSS_SELECTOR, "form[data-queue]"):
            break
    else:
        pytest.fail(f"none of {FORM_PATHS} is there")
    wait_for_script(browser)
    quantity = browser.find_elements(By.ID, "quantity")
    if quantity:
        quantity[0].clear()
        quantity[0].send_keys("42.5")
    return browser.find_element(By.NAME, "event_id").get_attribute("value")


def network(browser, *, online: bool) -> None:
    browser.set_network_conditions(
        offline=not online, latency=0, download_throughput=-1, upload_throughput=-1
    )


@pytest.fixture
def phone(browser) -> Iterator[object]:
    """The browser, always handed back online."""
    try:
        yield browser
    finally:
        network(browser, online=True)


def events_with_id(server, event_id: str) -> int:
    with transaction(server.runtime.sessions) as s:
        query = select(func.count()).select_from(models.Event).where(models.Event.id == uuid.UUID(event_id))
        return int(s.scalar(query) or 0)


def events_total(server) -> int:
    with transaction(server.runtime.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(models.Event)) or 0)


def queue_text(browser) -> str:
    return browser.execute_script(
        "const q = document.getElementById('queue'); return q && !q.hidden ? q.innerText : ''"
    )


def waiting_items(browser) -> list[str]:
    # read in one go: the script redraws the list whenever it changes
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#queue li'), li => li.innerText)"
    )


def submit(browser) -> None:
    browser.find_element(By.CSS_SELECTOR, "form[data-queue] button[type=submit]").click()


TEXTS = {
    "th": {
        "offline": "ยังไม่มีสัญญาณ บันทึกไว้ในเครื่องแล้ว จะส่งให้อัตโนมัติเมื่อกลับมาออนไลน์",
        "waiting": "รอส่ง (1 รายการ)",
        "sent": "ส่งรายการที่บันทึกไว้ในเครื่องแล้ว 1 รายการ",
        "item": r"^เก็บเกี่ยว · T-VEG-0001 · \d{1,2} [ก-๙.]+ 25\d\d เวลา \d\d:\d\d น\.$",  # Buddhist era
    },
    "en": {
        "offline": "No signal. It is saved on this phone and will be sent by itself when you are back online",
        "waiting": "Waiting to send (1)",
        "sent": "Sent what was saved on this phone: 1",
        "item": r"^Harvested · T-VEG-0001 · \d{1,2} [A-Z][a-z]{2} 20\d\d, \d\d:\d\d$",
    },
}


@pytest.mark.parametrize("lang", ["th", "en"])
def test_a_form_sent_with_no_signal_waits_on_the_phone_and_goes_once_when_back_online(
    phone, farmer_live_app, tmp_path, lang
):
    server, texts = farmer_live_app, TEXTS[lang]
    sign_in(phone, server)
    event_id = open_form(phone, server, lang)
    before = events_total(server)

    network(phone, online=False)
    submit(phone)
    WebDriverWait(phone, 10).until(lambda b: texts["offline"] in queue_text(b))
    assert texts["waiting"] in queue_text(phone)
    [item] = waiting_items(phone)
    assert re.match(texts["item"], item), item
    assert phone.current_url.startswith(server.url + "/farmer/record/")  # still on the form, values kept
    assert phone.execute_script("return document.documentElement.scrollWidth") <= 360
    assert phone.save_screenshot(str(tmp_path / f"offline-queue-{lang}-360.png"))
    time.sleep(1)
    assert events_with_id(server, event_id) == 0 and events_total(server) == before

    network(phone, online=True)
    WebDriverWait(phone, 15).until(lambda b: texts["sent"] in queue_text(b))
    assert waiting_items(phone) == []
    assert events_with_id(server, event_id) == 1 and events_total(server) == before + 1

    # a reload and another "online": nothing is left to send, nothing is sent twice
    phone.refresh()
    wait_for_script(phone)
    phone.execute_script("window.dispatchEvent(new Event('online'))")
    time.sleep(1)
    assert waiting_items(phone) == [] and queue_text(phone) == ""
    assert events_with_id(server, event_id) == 1 and events_total(server) == before + 1


def test_a_double_tap_online_records_one_event(phone, farmer_live_app):
    server = farmer_live_app
    sign_in(phone, server)
    event_id = open_form(phone, server)
    before = events_total(server)
    button = phone.find_element(By.CSS_SELECTOR, "form[data-queue] button[type=submit]")
    ActionChains(phone).double_click(button).perform()
    WebDriverWait(phone, 15).until(ec.url_contains(f"/farmer/lots?recorded={event_id}"))
    assert phone.find_element(By.TAG_NAME, "h1").text == "ล็อตของฉัน"
    time.sleep(1)
    assert events_with_id(server, event_id) == 1 and events_total(server) == before + 1


def test_a_value_the_server_refuses_online_shows_its_message_in_place_with_the_values_kept(
    phone, farmer_live_app
):
    server = farmer_live_app
    sign_in(phone, server)
    phone.get(server.url + "/farmer/record/harvest")
    wait_for_script(phone)
    event_id = phone.find_element(By.NAME, "event_id").get_attribute("value")
    phone.find_element(By.ID, "quantity").send_keys("สิบ")
    submit(phone)
    WebDriverWait(phone, 10).until(lambda b: b.find_elements(By.ID, "quantity-error"))
    assert phone.current_url == server.url + "/farmer/record/harvest"  # the server's 422 page, in place
    assert phone.find_element(By.ID, "quantity").get_attribute("value") == "สิบ"
    assert phone.find_element(By.NAME, "event_id").get_attribute("value") == event_id
    assert waiting_items(phone) == [] and events_with_id(server, event_id) == 0

    quantity = phone.find_element(By.ID, "quantity")
    quantity.clear()
    quantity.send_keys("12")
    submit(phone)
    WebDriverWait(phone, 15).until(ec.url_contains(f"/farmer/lots?recorded={event_id}"))
    assert events_with_id(server, event_id) == 1
    # Back goes to a fresh form, not to the page that was swapped out
    phone.back()
    WebDriverWait(phone, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "form[data-queue]"))
    assert phone.find_element(By.NAME, "event_id").get_attribute("value") != event_id


def test_a_session_that_expired_offline_keeps_the_form_until_the_farmer_signs_in_again(
    phone, farmer_live_app, tmp_path
):
    server = farmer_live_app
    sign_in(phone, server)
    event_id = open_form(phone, server)
    network(phone, online=False)
    submit(phone)
    WebDriverWait(phone, 10).until(lambda b: "ยังไม่มีสัญญาณ" in queue_text(b))

    phone.delete_cookie("trace_session")  # the session ran out while the phone had no signal
    network(phone, online=True)
    WebDriverWait(phone, 15).until(lambda b: "กรุณาเข้าสู่ระบบอีกครั้ง" in queue_text(b))
    assert phone.save_screenshot(str(tmp_path / "sign-in-again-th-360.png"))
    assert len(waiting_items(phone)) == 1
    assert events_with_id(server, event_id) == 0

    phone.find_element(By.CSS_SELECTOR, "#queue a[href='/farmer/login']").click()
    WebDriverWait(phone, 10).until(ec.url_contains("/farmer/login"))
    wait_for_script(phone)
    assert len(waiting_items(phone)) == 1  # still listed on the sign-in page
    phone.find_element(By.ID, "phone").send_keys(FARMER_1["phone"])
    phone.find_element(By.ID, "pin").send_keys(FARMER_1["pin"])
    phone.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # signed in again (a new session, so a new CSRF token): My lots sends it and shows it
    WebDriverWait(phone, 15).until(lambda b: events_with_id(server, event_id) == 1)
    WebDriverWait(phone, 15).until(
        lambda b: waiting_items(b) == [] and b.current_url.endswith("/farmer/lots")
    )
    assert events_with_id(server, event_id) == 1


def test_a_queued_form_the_server_refuses_is_shown_to_the_farmer_not_dropped(
    phone, farmer_live_app, tmp_path
):
    server = farmer_live_app
    sign_in(phone, server)
    event_id = open_form(phone, server)
    # the same form already went through with other values (from another tab): this one is a conflict
    phone.execute_script(
        """const form = document.querySelector('form[data-queue]');
        const data = new FormData(form);
        const q = form.querySelector('#quantity');
        if (q) data.set('quantity', '7'); else data.set('event_time', '2026-01-01T06:00');
        const body = form.enctype === 'multipart/form-data' ? data : new URLSearchParams(data);
        return fetch(form.action, {method: 'POST', body: body}).then(r => r.status);"""
    )
    assert events_with_id(server, event_id) == 1
    network(phone, online=False)
    submit(phone)
    WebDriverWait(phone, 10).until(lambda b: "ยังไม่มีสัญญาณ" in queue_text(b))
    network(phone, online=True)
    WebDriverWait(phone, 15).until(lambda b: "ส่งไม่สำเร็จ" in queue_text(b))
    [item] = waiting_items(phone)
    assert "เคยส่งไปแล้วด้วยข้อมูลที่ต่างกัน" in item
    assert "รอส่ง" not in queue_text(phone)  # nothing waits any more: it is shown as not sent
    assert events_with_id(server, event_id) == 1
    # still there after a reload, until the farmer has read it
    phone.refresh()
    wait_for_script(phone)
    WebDriverWait(phone, 10).until(lambda b: "เคยส่งไปแล้วด้วยข้อมูลที่ต่างกัน" in queue_text(b))
    assert phone.save_screenshot(str(tmp_path / "refused-th-360.png"))
    phone.find_element(By.CSS_SELECTOR, "#queue li button").click()
    WebDriverWait(phone, 10).until(lambda b: waiting_items(b) == [])
    assert events_with_id(server, event_id) == 1


def camera_photo(path: Path) -> Path:
    """A JPEG of several megabytes, 3000 x 2000 px with a camera's noise."""
    rng = random.Random(3)
    image = Image.new("RGB", (3000, 2000), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    for _ in range(40_000):
        x, y, shade = rng.randrange(3000), rng.randrange(2000), rng.randrange(256)
        draw.rectangle((x, y, x + 5, y + 5), fill=(shade, 255 - shade, (shade * 7) % 256))
    image.save(path, "JPEG", quality=92)
    return path


def test_a_photo_waits_on_the_phone_redrawn_lighter_and_goes_with_its_form(phone, farmer_live_app, tmp_path):
    server = farmer_live_app
    photo = camera_photo(tmp_path / "camera.jpg")
    assert photo.stat().st_size > 2 * 1024 * 1024
    sign_in(phone, server)
    phone.get(server.url + "/farmer/record/harvest")
    wait_for_script(phone)
    event_id = phone.find_element(By.NAME, "event_id").get_attribute("value")
    phone.find_element(By.ID, "quantity").send_keys("30")
    phone.find_element(By.ID, "photo").send_keys(str(photo))

    network(phone, online=False)
    submit(phone)
    WebDriverWait(phone, 15).until(lambda b: "ยังไม่มีสัญญาณ" in queue_text(b))
    network(phone, online=True)
    WebDriverWait(phone, 20).until(lambda b: "ส่งรายการที่บันทึกไว้ในเครื่องแล้ว 1 รายการ" in queue_text(b))

    with transaction(server.runtime.sessions) as s:
        row = s.get(models.Event, uuid.UUID(event_id))
        assert row is not None
        [sha256] = from_epcis(codec.loads(row.body)).evidence
    kept = server.runtime.settings.evidence_dir / sha256[:2] / f"{sha256}.jpg"  # the original, as received
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == sha256
    assert kept.stat().st_size < photo.stat().st_size / 2  # what went over the air
    with Image.open(kept) as sent:
        assert sent.format == "JPEG" and sent.size == (1600, 1067)  # the same picture, at most 1600 px
