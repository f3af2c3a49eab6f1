"""Where origin risk (สวมสิทธิ์) shows, over HTTP on a real Anvil and SQLite, and in a real Chromium at 360 px:
the officer's risk queue (their authority's lots, the flagged ones first with every reason and its figures,
the clean ones summarised), the officer's lot page (the score and reasons apart from the chain checks) and the
buyer's provenance page (the warning named plainly, or "no anomalies found"), in Thai and English.

The ledger: farmer F-0001's plot of 2.5 rai carries two Hom Mali lots planted in July of last year and
harvested in late November / early December, each plausible alone, together more than 2.5 rai can give
(``capacity_exceeded``: the laundering pattern of splitting produce over lots); farmer F-0002's lot on their
own 4 rai is an honest harvest."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from browsing import NAVIGATING
from fastapi.testclient import TestClient
from officer_fixtures import anchor_all, field, officer_creds
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.orm import Session, sessionmaker

from conftest import LiveServer
from factories import ID_BASE, common, make_authority, make_officer, q, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.config import Settings
from traceability.domain.crops import crop_knowledge
from traceability.domain.events import Harvest, Planting
from traceability.domain.risk import LotRisk, RiskCode, Signal, risk_level
from traceability.main import create_app
from traceability.services.events import record_event
from traceability.services.runtime import Runtime
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction
from traceability.web.i18n import translations
from traceability.web.risk_text import key_figures, risk_view

LOT_A, LOT_B = "T-HML-6801", "T-HML-6802"  # F-0001's two lots on PLOT-T-01 (2.5 rai)
CLEAN = "T-HML-6803"  # F-0002's lot on PLOT-T-02 (4 rai)
PLOT_RAI = Decimal("2.5")
HARVESTS = {LOT_A: Decimal("1000"), LOT_B: Decimal("1100"), CLEAN: Decimal("1400")}
THAI = ZoneInfo("Asia/Bangkok")
FARMER_NAMES = ("นางสมพร ใจดี", "นายบุญมี ศรีสุข", "ใจดี", "ศรีสุข", "0811111111", "0822222222")


def season_day(month: int, day: int) -> datetime:
    """A morning of last year's wet season, in Thai time (always in the past: record_event refuses the
    future)."""
    year = datetime.now(THAI).year - 1
    return datetime(year, month, day, 8, 30, tzinfo=THAI).astimezone(UTC)


def seed_risk_world(sessions: sessionmaker[Session], registry: TraceRegistry) -> dict[str, Any]:
    """The test authority with its officer and two farmers, the three Hom Mali lots (all anchored), and
    another authority with its own officer."""
    parties = seed_parties(sessions, registry, with_officer=True)
    lots = (
        (LOT_A, "F-0001", "PLOT-T-01", PLOT_RAI, 10, (11, 28)),
        (LOT_B, "F-0001", "PLOT-T-01", PLOT_RAI, 12, (12, 3)),
        (CLEAN, "F-0002", "PLOT-T-02", Decimal("4"), 11, (11, 30)),
    )
    for code, farmer, plot, rai, planted, (month, day) in lots:
        with transaction(sessions) as session:
            record_event(
                session,
                Planting(
                    kind="planting",
                    lot_code=code,
                    plot_id=plot,
                    crop="hom-mali-105",
                    variety="ขาวดอกมะลิ 105",
                    area_rai=rai,
                    **common(actor=farmer, place=plot, when=season_day(7, planted)),
                ),
                id_base=ID_BASE,
            )
        with transaction(sessions) as session:
            record_event(
                session,
                Harvest(
                    kind="harvest",
                    lot_code=code,
                    plot_id=plot,
                    crop="hom-mali-105",
                    variety="ขาวดอกมะลิ 105",
                    quantity=q(str(HARVESTS[code])),
                    **common(actor=farmer, place=plot, when=season_day(month, day)),
                ),
                id_base=ID_BASE,
            )
    anchor_all(sessions, registry)
    other = make_authority(sessions, registry)
    return {**parties, "other_officer": make_officer(sessions, registry, other)}


def expected_figures() -> dict[str, str]:
    """What the plot's season adds up to, from the crop knowledge (not from the code under test)."""
    known = crop_knowledge("hom-mali-105")
    assert known is not None
    total = HARVESTS[LOT_A] + HARVESTS[LOT_B]
    capacity = PLOT_RAI * known.max_kg_per_rai
    assert total > capacity, "the test ledger must exceed the plot's capacity"
    return {
        "total": f"{total:,.0f}",
        "capacity": f"{capacity:,.0f}",
        "ratio": f"{float(total / capacity):.1f}",
    }


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, registry: TraceRegistry) -> tuple[str, dict[str, Any]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('risk') / 'trace.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        world = seed_risk_world(make_sessionmaker(engine), registry)
    finally:
        engine.dispose()
    return url, world


@pytest.fixture
def client(ledger, anvil, registry, tmp_path) -> Iterator[TestClient]:
    url, _world = ledger
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
        public_rate_per_min=100_000,
    )
    engine = make_engine(url)
    try:
        with TestClient(create_app(runtime=Runtime(settings, _engine=engine)), follow_redirects=False) as c:
            yield c
    finally:
        engine.dispose()


def sign_in(client: TestClient, officer: Any) -> None:
    page = client.get("/officer/login")
    r = client.post(
        "/officer/login", data={**officer_creds(officer), "csrf": field(page.text, "csrf"), "lang": "th"}
    )
    assert r.status_code == 303, r.text


def visible(html: str) -> str:
    text = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def section(html: str, lot: str) -> str:
    found = re.search(rf'<section class="lot [^"]*" data-lot="{lot}">.*?</section>', html, flags=re.S)
    assert found is not None, f"{lot} is not listed as flagged"
    return found.group(0)


def score_of(html: str) -> int:
    found = re.search(r'class="rk rk-([a-z]+)" data-score="(\d+)"', html)
    assert found is not None, "no score"
    score = int(found.group(2))
    assert found.group(1) == risk_level(score).value
    return score


# ------------------------------------------------------------------ the officer's risk queue


def test_the_risk_queue_lists_the_flagged_lots_first_with_every_reason_and_its_figures(client, ledger):
    _url, world = ledger
    sign_in(client, world["officer"])
    page = client.get("/officer/risk")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html, figures = page.text, expected_figures()
    assert "ความเสี่ยงสวมสิทธิ์" in html
    assert "สัญญาณเหล่านี้บอกว่าควรไปตรวจสอบ ไม่ได้พิสูจน์ว่ามีการสวมสิทธิ์" in html
    # both lots of the over-full plot come first, each with the plot's reason and its figures
    for lot in (LOT_A, LOT_B):
        block = section(html, lot)
        assert 0 < score_of(block) <= 100
        assert 'data-code="capacity_exceeded"' in block and "แปลง PLOT-T-01 (2.5 ไร่)" in block
        text = visible(block)
        assert f"เก็บเกี่ยวรวม {figures['total']} กก." in text
        assert f"2.5 ไร่ ให้ได้ไม่เกิน {figures['capacity']} กก." in text
        assert f"{figures['ratio']} เท่า" in text
        assert f'href="/officer/lots/{lot}#risk"' in block
        assert "capacity_exceeded" not in text  # codes are for machines, never shown
    assert html.index(LOT_A) < html.index('id="clean"') and html.index(LOT_B) < html.index('id="clean"')
    # the honest lot: counted and listed at the end, no reasons
    clean = html[html.index('id="clean"') :]
    assert "อีก 1 ล็อตไม่พบความผิดปกติ" in clean and f'href="/officer/lots/{CLEAN}"' in clean
    assert f'data-lot="{CLEAN}"' not in html

    en = client.get("/officer/risk?lang=en").text
    assert '<html lang="en">' in en and "Origin risk" in en and "they do not prove it happened" in en
    block = visible(section(en, LOT_A))
    assert "Plot PLOT-T-01 (2.5 rai)" in block
    assert (
        f"harvested {figures['total']} kg" in block
        and f"at most {figures['capacity']} kg from 2.5 rai" in block
    )
    assert f"{figures['ratio']} times" in block
    assert "1 more lot: no anomalies found" in en


def test_the_review_queue_links_the_risk_page_and_shows_each_lots_score(client, ledger):
    _url, world = ledger
    sign_in(client, world["officer"])
    html = client.get("/officer").text
    assert 'href="/officer/risk"' in html
    scores = dict(re.findall(r'href="/officer/lots/([A-Z0-9-]+)">.*?data-score="(\d+)"', html, flags=re.S))
    assert int(scores[LOT_A]) > 0 and int(scores[CLEAN]) == 0
    assert 'href="/officer/risk?lang=en"' in client.get("/officer?lang=en").text


def test_an_officer_of_another_authority_sees_none_of_these_lots(client, ledger):
    _url, world = ledger
    sign_in(client, world["other_officer"])
    page = client.get("/officer/risk")
    assert page.status_code == 200
    for lot in (LOT_A, LOT_B, CLEAN):
        assert lot not in page.text
    assert "ยังไม่มีล็อตสินค้าในเขตของท่าน" in page.text


def test_without_an_officers_session_the_risk_page_sends_to_sign_in(client):
    for path, target in (
        ("/officer/risk", "/officer/login"),
        ("/officer/risk?lang=en", "/officer/login?lang=en"),
    ):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == target
        assert LOT_A not in r.text


# ------------------------------------------------------------------ the officer's lot page


def test_the_lot_page_shows_the_risk_apart_from_the_chain_checks(client, ledger):
    _url, world = ledger
    sign_in(client, world["officer"])
    html = client.get(f"/officer/lots/{LOT_B}").text
    verification = html[html.index('id="verification"') : html.index('id="risk"')]
    # the chain checks keep their own notes (the lot is not certified); the risk signal is not among them
    assert "ยังไม่มีใบรับรอง" in verification and "PLOT-T-01" not in verification
    risk = html[html.index('id="risk"') : html.index('id="certifications"')]
    score = score_of(risk)
    assert f'data-score="{score}"' in risk and "ความเสี่ยงสวมสิทธิ์" in risk
    assert f"{score}</b><small>/100</small>" in risk
    assert f"เก็บเกี่ยวรวม {expected_figures()['total']} กก." in visible(risk)
    assert "ไม่ได้พิสูจน์" in risk

    clean = client.get(f"/officer/lots/{CLEAN}?lang=en").text
    block = clean[clean.index('id="risk"') : clean.index('id="certifications"')]
    assert score_of(block) == 0 and "No anomalies found in this lot&#39;s records" in block


# ------------------------------------------------------------------ the provenance page


def test_the_provenance_page_names_the_warning_of_a_flagged_lot_and_says_no_anomalies_of_a_clean_one(
    client, ledger
):
    flagged = client.get(f"/p/{LOT_A}")
    assert flagged.status_code == 200
    html = flagged.text
    verdict = html[html.index('id="verdict"') : html.index('id="product"')]
    assert 'data-status="warning"' in verdict
    assert "ข้อสังเกตเกี่ยวกับข้อมูลแหล่งที่มา (คะแนนความเสี่ยง" in verdict
    warning = re.search(r"<li>(แปลง PLOT-T-01 \(2\.5 ไร่\)[^<]*)</li>", verdict)
    assert warning is not None and "อาจมีผลผลิตจากที่อื่นมาสวมสิทธิ์" in warning.group(1)
    assert html.count(warning.group(1)) == 1  # named once, not again among the verdict's notes
    score = int(re.search(r'id="risk" data-score="(\d+)"', verdict).group(1))  # type: ignore[union-attr]
    assert 0 < score and f"{score}/100" in verdict

    en = client.get(f"/p/{LOT_A}?lang=en").text
    assert "Warnings about the origin data (risk score" in en
    assert f"Plot PLOT-T-01 (2.5 rai) has {expected_figures()['total']} kg" in en

    for lang, words in (
        ("th", "ไม่พบความผิดปกติในข้อมูลแหล่งที่มา"),
        ("en", "No anomalies found in the origin data"),
    ):
        page = client.get(f"/p/{CLEAN}", params={"lang": lang}).text
        assert words in page and "Warnings about the origin data" not in page
        assert "PLOT-T-01" not in page

    for page in (html, en):
        assert "<script" not in page.lower()
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
        assert [x for x in FARMER_NAMES if x in page] == []
        assert "capacity_exceeded" not in visible(page)


def test_while_the_chain_is_down_the_provenance_page_says_nothing_about_risk(ledger, tmp_path):
    url, _world = ledger
    settings = Settings(var_dir=tmp_path, rpc_url="http://127.0.0.1:9", database_url=url, id_base=ID_BASE)
    engine = make_engine(url)
    try:
        with TestClient(create_app(runtime=Runtime(settings, _engine=engine))) as c:
            html = c.get(f"/p/{LOT_A}").text
    finally:
        engine.dispose()
    assert 'data-status="unavailable"' in html and 'id="risk"' not in html and "ความผิดปกติ" not in html


# ------------------------------------------------------------------ in Chromium at 360 px


@pytest.fixture
def risk_live_app(tmp_path: Path, anvil, registry) -> Iterator[LiveServer]:
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
    )
    server = LiveServer(settings)
    server.seeded = seed_risk_world(server.runtime.sessions, registry)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_risk_queue_and_the_provenance_warning_fit_a_phone(
    browser: webdriver.Chrome, risk_live_app, tmp_path
):
    app = risk_live_app
    wait = WebDriverWait(browser, 30, ignored_exceptions=NAVIGATING)
    browser.delete_all_cookies()
    browser.get(app.url + "/officer/login")
    creds = officer_creds(app.seeded["officer"])
    browser.find_element(By.ID, "username").send_keys(creds["username"])
    browser.find_element(By.ID, "password").send_keys(creds["password"])
    browser.find_element(By.CSS_SELECTOR, "form[action='/officer/login'] button").click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "รายการรอตรวจ"))
    browser.find_element(By.CSS_SELECTOR, "a[href='/officer/risk']").click()
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "ความเสี่ยงสวมสิทธิ์"))
    for shot in ("officer-risk", "provenance-risk"):
        if shot == "provenance-risk":
            browser.get(f"{app.url}/p/{LOT_A}")
            wait.until(ec.presence_of_element_located((By.ID, "risk")))
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 360, shot
        # no figure runs out of its box
        wide = browser.execute_script(
            "return [...document.querySelectorAll('.figs span, .rk, #risk, li')]"
            ".filter(e => e.getBoundingClientRect().right > 360).length"
        )
        assert wide == 0, shot
        png = base64.b64decode(
            browser.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )["data"]
        )
        (tmp_path / f"{shot}-th-360.png").write_bytes(png)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    first = browser.find_element(By.CSS_SELECTOR, "#risk + ul li")
    assert "PLOT-T-01" in first.text


# ------------------------------------------------------------------ the figures of every signal


FIGURES_OF = {
    # code: (numbers as domain.risk writes them, Thai figures, English figures)
    RiskCode.YIELD_OUTLIER: (
        {"kg_per_rai": 875.0, "expected_kg_per_rai": 420.4, "ratio": 2.08, "z": 4.1, "records": 12},
        ["ไร่ละ 875 กก.", "ปกติ 420 กก.", "2.1 เท่า"],
        ["875 kg per rai", "usual 420 kg", "2.1 times"],
    ),
    RiskCode.TOO_EARLY_HARVEST: (
        {"days": 21.4, "growing_days_min": 39},
        ["เก็บเกี่ยวหลังปลูก 21 วัน", "ต้องใช้อย่างน้อย 39 วัน"],
        ["harvested 21 days after planting", "needs at least 39 days"],
    ),
    RiskCode.OFF_SEASON_HARVEST: (
        {"month": 4, "harvest_months": [11, 12]},
        ["เก็บเกี่ยวเดือน เม.ย.", "ฤดูเก็บเกี่ยว พ.ย.–ธ.ค."],
        ["harvested in Apr", "its harvest: Nov–Dec"],
    ),
    RiskCode.IMPOSSIBLE_TRANSPORT: (
        {"kind": "too_fast", "km": 612.3, "hours": 1.5, "km_per_hour": 408.2, "max_km_per_hour": 120.0},
        ["612 กม. ใน 1.5 ชม.", "408 กม./ชม.", "รถบรรทุกไม่เกิน 120 กม./ชม."],
        ["612 km in 1.5 h", "408 km/h", "a lorry: at most 120 km/h"],
    ),
    RiskCode.COLD_CHAIN_EXCURSION: (
        {"minutes": 185.0, "worst_c": 12.5, "range_c": [0.0, 4.0]},
        ["อยู่นอกช่วง 185 นาที", "ถึง 12.5 °C", "ควรอยู่ที่ 0–4 °C"],
        ["185 min outside the range", "reached 12.5 °C", "should be 0–4 °C"],
    ),
    RiskCode.PHOTO_REUSED: (
        {"photos": ["a" * 64, "b" * 64], "hamming_bits": 3},
        ["ภาพต่างกันเพียง 3 จาก 64 บิต"],
        ["pictures differ in 3 of 64 bits"],
    ),
    RiskCode.UNUSUAL_PATTERN: (
        {"z": 5.23, "farmer_seasons": 412},
        ["ค่าความผิดปกติ (z) 5.2", "เทียบกับบันทึกเกษตรกรรายฤดู 412 ชุด"],
        ["anomaly score z 5.2", "among 412 farmer-seasons"],
    ),
}


@pytest.mark.parametrize("code", sorted(FIGURES_OF, key=lambda c: c.value))
def test_every_signals_figures_read_in_thai_and_english(code):
    numbers, thai, english = FIGURES_OF[code]
    signal = Signal(code, ("L-1",), "ข้อความ", "text", numbers, 0.5)
    assert key_figures(signal, "th", translations("th").gettext) == thai
    assert key_figures(signal, "en", translations("en").gettext) == english


def test_a_signal_with_unexpected_numbers_still_shows_its_sentence():
    odd = Signal(RiskCode.CAPACITY_EXCEEDED, ("L-1",), "ข้อความ", "text", {"plot": "P"}, 0.7)
    assert key_figures(odd, "th", translations("th").gettext) == []
    view = risk_view(LotRisk("L-1", 70, (odd,), "ledger"), "th", translations("th").gettext)
    assert view == {
        "score": 70,
        "level": "high",
        "signals": [{"code": "capacity_exceeded", "text": "ข้อความ", "figures": []}],
    }
    assert risk_view(None, "th", translations("th").gettext) is None
