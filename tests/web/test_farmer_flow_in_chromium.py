"""A farmer records a harvest as they would on their phone: in Thai, in a real headless Chromium at 360 px,
from "My lots" through the step menu to the harvest form, with a photo from the camera, and back to "My
lots", which shows the harvest; the database holds that one event with the photo's hash as its evidence."""

from __future__ import annotations

import hashlib
import uuid

from browsing import NAVIGATING
from PIL import Image, ImageDraw
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from factories import FARMER_1
from traceability.domain import codec
from traceability.domain.epcis import from_epcis
from traceability.store import models
from traceability.store.database import transaction

LOT = "T-VEG-0001"


def camera_photo(path):
    """A real JPEG, as small as a phone's preview: a green field under a sky."""
    image = Image.new("RGB", (640, 480), (120, 170, 230))
    ImageDraw.Draw(image).rectangle((0, 260, 640, 480), fill=(60, 140, 50))
    image.save(path, "JPEG", quality=85)
    return path


def harvests_in_lot(browser) -> list[str]:
    sections = browser.find_elements(By.CSS_SELECTOR, "section.lot")
    # the lot code links to the lot's public page
    section = next(s for s in sections if s.find_element(By.CSS_SELECTOR, ".code a").text == LOT)
    return [li.text for li in section.find_elements(By.CSS_SELECTOR, "li") if li.text.startswith("เก็บเกี่ยว")]


def test_a_farmer_records_a_harvest_with_a_photo_in_thai_and_sees_it_in_my_lots(
    browser, farmer_live_app, tmp_path
):
    server = farmer_live_app
    photo = camera_photo(tmp_path / "harvest.jpg")
    browser.get(server.url + "/farmer/login")
    browser.delete_all_cookies()
    browser.get(server.url + "/farmer/login")
    browser.find_element(By.ID, "phone").send_keys(FARMER_1["phone"])
    browser.find_element(By.ID, "pin").send_keys(FARMER_1["pin"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10, ignored_exceptions=NAVIGATING).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน")
    )
    harvests_before = harvests_in_lot(browser)

    browser.find_element(By.CSS_SELECTOR, "a[href='/farmer/record']").click()
    browser.find_element(By.CSS_SELECTOR, "a[href='/farmer/record/harvest']").click()
    WebDriverWait(browser, 10).until(ec.url_contains("/farmer/record/harvest"))
    assert browser.execute_script("return document.documentElement.lang") == "th"
    assert browser.find_element(By.TAG_NAME, "h1").text == "บันทึกการเก็บเกี่ยว"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    form = browser.find_element(By.CSS_SELECTOR, "form[data-queue]")
    event_id = form.find_element(By.NAME, "event_id").get_attribute("value")
    lot = form.find_element(By.ID, "lot")
    assert LOT in lot.get_attribute("value")
    form.find_element(By.ID, "quantity").send_keys("87.5")
    form.find_element(By.ID, "photo").send_keys(str(photo))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    WebDriverWait(browser, 15).until(ec.url_contains(f"/farmer/lots?recorded={event_id}"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "ล็อตของฉัน"
    assert browser.find_element(By.CSS_SELECTOR, ".saved").text.startswith("✓ บันทึก")  # "saved"
    harvests_after = harvests_in_lot(browser)
    assert len(harvests_after) == len(harvests_before) + 1
    assert any(text.startswith("เก็บเกี่ยว · 87.5 กก.") for text in harvests_after), harvests_after
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    assert browser.save_screenshot(str(tmp_path / "my-lots-after-harvest.png"))

    with transaction(server.runtime.sessions) as s:
        rows = s.scalars(select(models.Event).where(models.Event.kind == "harvest")).all()
        recorded = [row for row in rows if row.id == uuid.UUID(event_id)]
        assert len(recorded) == 1 and len(rows) == 2  # the seeded harvest and this one
        event = from_epcis(codec.loads(recorded[0].body))
    assert event.evidence == (hashlib.sha256(photo.read_bytes()).hexdigest(),)
    assert event.lot_code == LOT and str(event.quantity.value) == "87.5"
