"""The provenance page as a buyer's phone shows it: real headless Chromium at 360 x 740, the demo ledger
served on a loopback port. The page fits the screen, reads in Thai and in English, and nothing it loads
comes from any other host.

``TRACE_SAVE_SCREENSHOTS=1`` also saves the whole Thai page as ``docs/screenshots/provenance-th-360.png``
(the README shows it); without it the picture goes to the test's temporary directory only, so a test run
leaves the working tree alone.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browsing import NAVIGATING
from PIL import Image
from provenance_fixtures import MERGED, PACKED, DemoLedger, build_demo_ledger, personal_data_in
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from conftest import PHONE, LiveServer
from traceability.services.demo import GTIN_RICE

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "provenance-th-360.png"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, w3) -> DemoLedger:
    return build_demo_ledger(tmp_path_factory.mktemp("provenance-chromium"), w3)


@pytest.fixture
def server(ledger, anvil, tmp_path) -> Iterator[LiveServer]:
    live = LiveServer(ledger.copy(tmp_path).settings(tmp_path, anvil.rpc_url)).start()
    try:
        yield live
    finally:
        live.stop()


def resources(browser: webdriver.Chrome) -> list[str]:
    """Every URL the page loaded after the document itself (stylesheets, images, fonts, scripts...)."""
    return list(
        browser.execute_script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
        )
    )


def fits_the_phone(browser: webdriver.Chrome) -> None:
    assert browser.execute_script("return window.innerWidth") == PHONE[0]
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"the page is {width} px wide: it scrolls sideways on a phone"
    # and no single element sticks out (a long hash or address that would be clipped instead of wrapped)
    widest = browser.execute_script(
        "return Math.max.apply(null, Array.from(document.querySelectorAll('body *'))"
        ".map(function (e) { return e.getBoundingClientRect().right; }))"
    )
    assert widest <= PHONE[0], f"an element reaches {widest} px"


def full_page(browser: webdriver.Chrome) -> bytes:
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    return base64.b64decode(shot["data"])


def test_the_thai_and_english_pages_fit_a_phone_and_load_nothing_from_elsewhere(
    browser, server, ledger, tmp_path
):
    origin = urlsplit(server.url)
    wait = WebDriverWait(browser, 20, ignored_exceptions=NAVIGATING)
    browser.get(f"{server.url}/p/{PACKED}")
    wait.until(ec.presence_of_element_located((By.ID, "timeline")))
    assert browser.execute_script("return document.documentElement.lang") == "th"
    verdict = browser.find_element(By.ID, "verdict")
    assert verdict.get_attribute("data-status") == "verified"
    assert "ยืนยันบนบล็อกเชนแล้ว" in verdict.text and ledger.registry.address in verdict.text
    assert "31337" in verdict.text
    timeline = browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    assert len(timeline) == 9 and "ปลูก" in timeline[0].text
    assert "ตรวจสอบด้วยตัวเอง" in browser.find_element(By.ID, "check").text
    fits_the_phone(browser)
    loaded = resources(browser)
    assert all(urlsplit(url).netloc == origin.netloc for url in loaded), loaded
    assert browser.execute_script("return document.scripts.length") == 0
    assert personal_data_in(browser.page_source, ledger) == []

    png = full_page(browser)
    (tmp_path / "provenance-th-360.png").write_bytes(png)
    with Image.open(io.BytesIO(png)) as image:
        assert image.width == PHONE[0] and image.height > PHONE[1]
    if os.environ.get("TRACE_SAVE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)

    browser.find_element(By.LINK_TEXT, "English").click()
    wait.until(lambda b: b.execute_script("return document.documentElement.lang") == "en")
    wait.until(ec.presence_of_element_located((By.ID, "timeline")))
    assert "Verified on the blockchain" in browser.find_element(By.ID, "verdict").text
    assert "Planted" in browser.find_elements(By.CSS_SELECTOR, "#timeline li")[0].text
    fits_the_phone(browser)
    assert all(urlsplit(url).netloc == origin.netloc for url in resources(browser)), resources(browser)
    (tmp_path / "provenance-en-360.png").write_bytes(full_page(browser))


def test_a_twenty_event_lineage_and_the_resolver_page_fit_the_phone_too(browser, server):
    origin = urlsplit(server.url)
    for path in (f"/p/{MERGED}", f"/01/{GTIN_RICE}/10/{MERGED}?lang=en", "/p/NO-SUCH-LOT"):
        browser.get(server.url + path)
        WebDriverWait(browser, 20, ignored_exceptions=NAVIGATING).until(
            ec.presence_of_element_located((By.TAG_NAME, "h1"))
        )
        fits_the_phone(browser)
        assert all(urlsplit(url).netloc == origin.netloc for url in resources(browser))
    assert "Lot not found" not in browser.page_source and "ไม่พบล็อตสินค้า" in browser.page_source
