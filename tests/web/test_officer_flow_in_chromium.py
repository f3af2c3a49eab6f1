"""The officer's work as a person does it, in a real headless Chromium on a 360-px phone screen, in Thai: sign
in, open a lot from the queue, certify it with the signing passphrase and see it verified; revoke it and see
it fail verification. Full-page screenshots of the queue and the lot page are kept under the test's tmp
directory (``--basetemp`` to keep them)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import NAVIGATING
from officer_fixtures import LOT, OTHER_LOT, anchor_all, officer_creds, seed_officer_world
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from conftest import LiveServer
from factories import ID_BASE, OFFICER_PASSPHRASE
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import Settings


@pytest.fixture
def officer_live_app(tmp_path: Path, anvil: AnvilNode, registry: TraceRegistry) -> Iterator[LiveServer]:
    """The live app over a database with the officer's world (``officer_fixtures.seed_officer_world``), its
    events all anchored, verifying against the session's registry with no confirmations to wait for."""
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
    )
    server = LiveServer(settings)
    server.seeded = seed_officer_world(server.runtime.sessions, registry)
    anchor_all(server.runtime.sessions, registry)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def full_page(browser: webdriver.Chrome, path: Path) -> bytes:
    """A screenshot of the whole page at the phone's width (not only what fits on its screen)."""
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    png = base64.b64decode(shot["data"])
    path.write_bytes(png)
    return png


def fits_the_phone(browser: webdriver.Chrome) -> None:
    assert browser.execute_script("return window.innerWidth") == 360
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360


def verification(browser: webdriver.Chrome) -> str:
    return str(
        browser.find_element(By.CSS_SELECTOR, "#verification [data-status]").get_attribute("data-status")
    )


def test_an_officer_certifies_a_lot_sees_it_verified_then_revokes_it(
    browser, officer_live_app, registry, tmp_path
):
    app = officer_live_app
    wait = WebDriverWait(browser, 30, ignored_exceptions=NAVIGATING)
    browser.delete_all_cookies()
    browser.get(app.url + "/officer/login")
    assert browser.execute_script("return document.documentElement.lang") == "th"
    assert browser.find_element(By.TAG_NAME, "h1").text == "เข้าสู่ระบบเจ้าหน้าที่"
    creds = officer_creds(app.seeded["officer"])
    browser.find_element(By.ID, "username").send_keys(creds["username"])
    browser.find_element(By.ID, "password").send_keys(creds["password"])
    browser.find_element(By.CSS_SELECTOR, "form[action='/officer/login'] button").click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "รายการรอตรวจ"))
    assert "trace_session" not in browser.execute_script("return document.cookie")
    fits_the_phone(browser)
    queue = browser.find_element(By.TAG_NAME, "main").text
    assert LOT in queue and OTHER_LOT not in queue and "ยังไม่ได้รับรอง" in queue
    assert full_page(browser, tmp_path / "officer-queue-th-360.png")[:8] == b"\x89PNG\r\n\x1a\n"

    browser.find_element(By.CSS_SELECTOR, f"a[href='/officer/lots/{LOT}']").click()
    wait.until(ec.presence_of_element_located((By.ID, "certify")))
    fits_the_phone(browser)
    assert verification(browser) != "failed"  # every step anchored, nothing certified yet
    full_page(browser, tmp_path / "officer-lot-th-360.png")
    browser.find_element(By.ID, "scope").send_keys("ผักคะน้า แปลง PLOT-T-01 2.5 ไร่")
    browser.find_element(By.ID, "note").send_keys("ตรวจแปลงแล้ว")
    browser.find_element(By.ID, "passphrase").send_keys(OFFICER_PASSPHRASE)
    browser.find_element(By.CSS_SELECTOR, "#certify button[type=submit]").click()
    wait.until(ec.url_contains("done=certified"))
    assert "รับรองล็อตเรียบร้อยแล้ว" in browser.find_element(By.CSS_SELECTOR, "p.good").text
    certificate = browser.find_element(By.CSS_SELECTOR, "#certifications .lot").text
    assert "Organic Thailand" in certificate and "ใช้ได้" in certificate and "2.5 ไร่" in certificate

    anchor_all(app.runtime.sessions, registry)  # the certification event itself, as the worker would
    browser.refresh()
    assert verification(browser) == "verified"
    fits_the_phone(browser)
    assert full_page(browser, tmp_path / "officer-lot-certified-th-360.png")[:8] == b"\x89PNG\r\n\x1a\n"

    browser.find_element(By.CSS_SELECTOR, "#certifications summary").click()
    browser.find_element(By.CSS_SELECTOR, "#certifications textarea[name=reason]").send_keys("พบการใช้สารเคมี")
    browser.find_element(By.CSS_SELECTOR, "#certifications input[name=passphrase]").send_keys(
        OFFICER_PASSPHRASE
    )
    browser.find_element(By.CSS_SELECTOR, "#certifications button[type=submit]").click()
    wait.until(ec.url_contains("done=revoked"))
    assert "ถูกเพิกถอน" in browser.find_element(By.ID, "certifications").text
    assert verification(browser) == "failed"
    assert "ใบรับรองใช้ไม่ได้" in browser.find_element(By.ID, "verification").text
    fits_the_phone(browser)
    full_page(browser, tmp_path / "officer-lot-revoked-th-360.png")
