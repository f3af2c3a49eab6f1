"""Pages as a person sees them: in a real headless Chromium on a 360-px phone screen, in Thai by default."""

from __future__ import annotations

from browsing import NAVIGATING
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from factories import FARMER_1


def test_the_home_page_reads_in_thai_on_a_phone_and_switches_to_english(browser, live_app, tmp_path):
    browser.get(live_app.url + "/")
    assert browser.execute_script("return document.documentElement.lang") == "th"
    assert browser.find_element(By.TAG_NAME, "h1").text == "ระบบตรวจสอบย้อนกลับผลผลิตชุมชน"
    # a 360-px phone, and nothing wider than it: no sideways scrolling
    assert browser.execute_script("return window.innerWidth") == 360
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shot = tmp_path / "home-th-360.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    browser.find_element(By.LINK_TEXT, "English").click()
    assert browser.execute_script("return document.documentElement.lang") == "en"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Community produce traceability"
    assert browser.find_element(By.LINK_TEXT, "ภาษาไทย")


def test_a_farmer_signs_in_on_a_phone_and_sees_their_lots_in_thai(browser, farmer_live_app, tmp_path):
    browser.delete_all_cookies()
    browser.get(farmer_live_app.url + "/farmer/login")
    assert browser.execute_script("return document.documentElement.lang") == "th"
    assert browser.find_element(By.TAG_NAME, "h1").text == "เข้าสู่ระบบสำหรับเกษตรกร"
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    browser.find_element(By.ID, "phone").send_keys(FARMER_1["phone"])
    browser.find_element(By.ID, "pin").send_keys(FARMER_1["pin"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10, ignored_exceptions=NAVIGATING).until(
        ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ล็อตของฉัน")
    )
    assert browser.current_url == farmer_live_app.url + "/farmer/lots"
    lots = browser.find_elements(By.CSS_SELECTOR, "section.lot")
    assert "T-VEG-0001" in lots[-1].text and "ผักอินทรีย์" in lots[-1].text
    statuses = [s.text for s in browser.find_elements(By.CSS_SELECTOR, ".status")]
    block = farmer_live_app.seeded["block"]
    assert f"✓ ยืนยันบนบล็อกเชนแล้ว (บล็อก {block})" in statuses
    assert "○ บันทึกแล้ว รอยืนยันบนบล็อกเชน" in statuses
    # the session cookie is out of reach of page scripts
    assert "trace_session" not in browser.execute_script("return document.cookie")
    assert browser.execute_script("return window.innerWidth") == 360
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
    shot = tmp_path / "my-lots-th-360.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
