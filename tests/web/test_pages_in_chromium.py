"""Pages as a person sees them: in a real headless Chromium on a 360-px phone screen, in Thai by default."""

from __future__ import annotations

from selenium.webdriver.common.by import By


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
