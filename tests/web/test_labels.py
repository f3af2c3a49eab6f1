"""The packing house's A4 label sheet (`GET /labels/{lot}`, `GET /labels?lot=…`): drawn by a real headless
Chromium at A4 size and read back with a real decoder (ZBar) — every QR code on the sheet found, each the
right lot's URI — laid out on the 21-up 63.5 × 38.1 mm stock, printed as exactly one PDF page per sheet;
Thai and English product names on every label; friendly 404/422/429 pages; and the links to it (and to the
public page) from the officer's lot page and the farmer's "My lots"."""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from officer_fixtures import LOT, field, officer_creds, seed_officer_world
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode
from sqlalchemy import select

from conftest import PHONE, LiveServer
from factories import FARMER_1, ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.main import create_app
from traceability.services.demo import seed_demo
from traceability.services.labels import UnknownLot, label_items
from traceability.services.links import lot_link
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.labels import MAX_LABELS, PER_SHEET

PUBLIC = "https://trace.example.th"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "labels-a4.png"
MM = 96 / 25.4  # CSS pixels per millimetre


@pytest.fixture(scope="module")
def demo(anvil, w3, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The app over the demo data (SQLite), served on a loopback port, with its lots and their QR URIs."""
    tmp = tmp_path_factory.mktemp("labels")
    settings = Settings(
        var_dir=tmp,
        rpc_url=anvil.rpc_url,
        id_base=ID_BASE,
        public_base_url=PUBLIC,
        public_rate_per_min=100_000,  # these tests share one address; the limit has a test of its own
    )
    server = LiveServer(settings)
    fresh = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))  # the demo's authorities are new on it
    result = seed_demo(server.runtime.sessions, fresh, id_base=ID_BASE)
    with transaction(server.runtime.sessions) as s:
        lots = {
            lot.code: {
                "th": lot.product_th,
                "en": lot.product_en,
                "gtin": lot.gtin,
                "link": lot_link(s, lot.code, PUBLIC),
            }
            for lot in s.scalars(select(models.Lot).order_by(models.Lot.code))
        }
    server.start()
    try:
        yield {"server": server, "lots": lots, "result": result}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(demo) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=demo["server"].runtime), client=("10.0.0.9", 40000)) as c:
        yield c


def packed(demo) -> str:
    return next(code for code, lot in demo["lots"].items() if lot["gtin"])


def loose(demo) -> str:
    return next(code for code, lot in demo["lots"].items() if not lot["gtin"])


def labels_of(html: str) -> list[str]:
    """The lot code of every label on a page, in order."""
    return re.findall(r'<div class="label" data-lot="([^"]+)">', html)


def label_blocks(html: str) -> list[str]:
    return re.split(r'<div class="label" data-lot="', html)[1:]


# --- in Chromium: A4 geometry, every QR code read back by ZBar ----------------------------------------------


def read(png: bytes) -> list[str]:
    with Image.open(io.BytesIO(png)) as image:
        return [s.data.decode("utf-8") for s in decode(image.convert("L"), symbols=[ZBarSymbol.QRCODE])]


@pytest.fixture
def a4(browser) -> Iterator[Any]:
    """The session's browser with a desktop viewport a little wider than an A4 sheet, restored afterwards."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 860, "height": 1200, "deviceScaleFactor": 1, "mobile": False},
    )
    # A scrollbar would narrow the page, and a capture beyond the viewport has none: the sheet would move.
    browser.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
    try:
        yield browser
    finally:
        browser.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": False})
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True},
        )


def sheets_in_browser(browser, url: str, scale: float = 3) -> list[dict[str, Any]]:
    """Each sheet of the page at ``url``: its lots (from the markup), its geometry and a screenshot of just
    that sheet at ``scale`` device pixels per CSS pixel."""
    browser.get(url)
    found = browser.execute_script(
        """
        return [...document.querySelectorAll('.sheet')].map(sheet => {
          const s = sheet.getBoundingClientRect();
          const labels = [...sheet.querySelectorAll('.label')].map(l => {
            const r = l.getBoundingClientRect(), q = l.querySelector('svg.qr');
            const qr = q ? q.getBoundingClientRect() : null;
            return {lot: l.dataset.lot || null, x: r.x - s.x, y: r.y - s.y, w: r.width, h: r.height,
                    qr: qr ? qr.width : 0};
          });
          return {x: s.x + scrollX, y: s.y + scrollY, w: s.width, h: s.height, labels};
        });
        """
    )
    for sheet in found:
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": sheet["x"],
                    "y": sheet["y"],
                    "width": sheet["w"],
                    "height": sheet["h"],
                    "scale": scale,
                },
            },
        )
        sheet["png"] = base64.b64decode(shot["data"])
    return found


def assert_on_the_stock(sheet: dict[str, Any]) -> None:
    """A4, and the labels where the 21-up stock has them: 3 × 7 of 63.5 × 38.1 mm from 7.25 mm / 15.15 mm,
    2.5 mm between columns; each QR code drawn at 28 mm with its quiet zone."""
    assert sheet["w"] == pytest.approx(210 * MM, abs=1) and sheet["h"] == pytest.approx(297 * MM, abs=1)
    for n, label in enumerate(sheet["labels"]):
        row, col = divmod(n, 3)
        assert label["w"] == pytest.approx(63.5 * MM, abs=0.6) and label["h"] == pytest.approx(
            38.1 * MM, abs=0.6
        )
        assert label["x"] == pytest.approx((7.25 + col * 66.0) * MM, abs=0.6)
        assert label["y"] == pytest.approx((15.15 + row * 38.1) * MM, abs=0.6)
        if label["lot"]:
            assert label["qr"] == pytest.approx(28 * MM, abs=0.6)


def test_a_full_sheet_of_a_packed_lot_reads_back_as_its_digital_link_on_every_label(demo, a4):
    code = packed(demo)
    [sheet] = sheets_in_browser(a4, f"{demo['server'].url}/labels/{code}")
    assert [label["lot"] for label in sheet["labels"]] == [code] * PER_SHEET
    assert_on_the_stock(sheet)
    assert read(sheet["png"]) == [demo["lots"][code]["link"]] * PER_SHEET
    assert demo["lots"][code]["link"].startswith(f"{PUBLIC}/01/")
    # Nothing was fetched: no font, image or stylesheet from anywhere, not even from this server.
    assert a4.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") == []
    # A small copy for the docs, looked at by a person.
    with Image.open(io.BytesIO(sheet["png"])) as image:
        small = image.convert("L").resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    small.quantize(16).save(SCREENSHOT, format="PNG", optimize=True)  # 16 greys: small, still crisp
    assert SCREENSHOT.stat().st_size < 400_000


def test_copies_of_a_lot_without_a_gtin_lead_to_its_provenance_page(demo, a4):
    code = loose(demo)
    [sheet] = sheets_in_browser(a4, f"{demo['server'].url}/labels/{code}?copies=5&lang=en")
    assert [label["lot"] for label in sheet["labels"]] == [code] * 5
    assert_on_the_stock(sheet)
    assert read(sheet["png"]) == [f"{PUBLIC}/p/{code}"] * 5


def test_a_packing_runs_lots_over_two_sheets_each_code_its_own_lots_uri(demo, a4):
    codes = list(demo["lots"])[:8]
    assert len(codes) == 8  # the demo's lots
    query = "&".join(f"lot={c}" for c in codes)
    sheets = sheets_in_browser(a4, f"{demo['server'].url}/labels?{query}&copies=3&start=4")
    assert len(sheets) == 2  # 3 positions skipped (a half-used sheet) + 24 labels = 27 positions
    assert [label["lot"] for label in sheets[0]["labels"][:3]] == [None, None, None]
    placed = [label["lot"] for sheet in sheets for label in sheet["labels"] if label["lot"]]
    assert placed == [c for c in codes for _ in range(3)]
    for sheet in sheets:
        assert_on_the_stock(sheet)
        expected = Counter(demo["lots"][label["lot"]]["link"] for label in sheet["labels"] if label["lot"])
        assert Counter(read(sheet["png"])) == expected


def test_each_sheet_prints_as_one_a4_page(demo, a4):
    """The PDF Chromium prints (CSS page size, no scaling): one A4 page per sheet, no blank page after."""
    code = packed(demo)
    for copies, pages in ((21, 1), (22, 2), (60, 3)):
        a4.get(f"{demo['server'].url}/labels/{code}?copies={copies}")
        pdf = base64.b64decode(
            a4.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": False})[
                "data"
            ]
        )
        assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == pages, copies
        boxes = re.findall(rb"/MediaBox\s*\[([^\]]*)\]", pdf)
        assert boxes, pdf[:2000]
        for box in boxes:  # A4 in points: 595.28 x 841.89
            x0, y0, x1, y1 = (float(v) for v in box.split())
            assert (x1 - x0, y1 - y0) == (pytest.approx(595.3, abs=1.5), pytest.approx(841.9, abs=1.5)), box
    # On paper: no instructions box, no dashed outlines, no shadow or gaps between sheets.
    a4.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        printed = a4.execute_script(
            """
            const css = s => getComputedStyle(document.querySelector(s));
            return [css('.notice').display, css('.label').outlineStyle, css('.sheet').boxShadow,
                    css('.sheet').marginTop];
            """
        )
    finally:
        a4.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert printed == ["none", "none", "none", "0px"]


# --- the page's words ------------------------------------------------------------------------------------


def test_every_label_has_the_lot_code_and_the_product_in_thai_and_english_whatever_the_page_language(
    demo, client
):
    code = packed(demo)
    lot = demo["lots"][code]
    for lang, chrome in (("th", "ไม่ย่อขยาย"), ("en", "Print at 100 %")):
        page = client.get(f"/labels/{code}", params={"lang": lang})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f'<html lang="{lang}">' in page.text and chrome in page.text
        assert "L7160" in page.text and "@page{size:A4" in page.text
        assert "<script" not in page.text and "http" not in page.text.replace(PUBLIC, "")
        blocks = label_blocks(page.text)
        assert len(blocks) == PER_SHEET
        # The symbol without its 4-module quiet zones is at least 20 mm of the 28 mm drawn.
        [side] = re.findall(r'<symbol id="qr1" viewBox="0 0 (\d+) \1">', page.text)
        assert 28 * (int(side) - 8) / int(side) >= 20
        for block in blocks:
            assert block.startswith(f'{code}">') and f'<div class="lot">{code}</div>' in block
            assert lot["th"] in block and lot["en"] in block
            assert f"GTIN {lot['gtin'].zfill(14)}" in block
            assert "สแกนดูแหล่งที่มา" in block and "Scan to see where it came from" in block


def test_one_lot_fills_the_rest_of_a_half_used_sheet_by_default(demo, client):
    code = packed(demo)
    page = client.get(f"/labels/{code}", params={"start": "8"})
    assert page.status_code == 200 and labels_of(page.text) == [code] * 14
    assert page.text.count('<div class="label blank"></div>') == 7
    assert page.text.count('<div class="sheet">') == 1


def test_a_lot_without_a_gtin_prints_no_gtin_and_codes_are_read_in_any_case(demo, client):
    code = loose(demo)
    page = client.get(f"/labels/{code.lower()}", params={"copies": "3"})
    assert page.status_code == 200 and labels_of(page.text) == [code] * 3
    assert "GTIN" not in "".join(label_blocks(page.text))


def test_a_multi_lot_sheet_names_each_lot_once_per_copy_in_order(demo, client):
    codes = list(demo["lots"])[:3]
    page = client.get("/labels", params={"lot": [*codes, codes[0]], "lang": "en"})
    assert page.status_code == 200 and labels_of(page.text) == codes  # a lot named twice prints once
    for code, block in zip(codes, label_blocks(page.text), strict=True):
        assert demo["lots"][code]["th"] in block and demo["lots"][code]["en"] in block
    # The language switch and the copies/start form keep the lots.
    assert "lang=th" in page.text and all(f"lot={c}" in page.text for c in codes)
    assert all(f'<input type="hidden" name="lot" value="{c}">' in page.text for c in codes)


def test_no_personal_data_on_a_label_sheet(demo, client):
    page = client.get("/labels", params={"lot": list(demo["lots"])[:24]})
    assert page.status_code == 200
    for farmer in demo["result"].farmers:
        for value in farmer.values():
            if isinstance(value, str) and len(value) >= 4 and not value.startswith("F-"):
                assert value not in page.text


# --- refusals are friendly pages -------------------------------------------------------------------------


def test_an_unknown_lot_is_a_friendly_404_page_in_the_right_language(demo, client):
    page = client.get("/labels/NO-SUCH-LOT")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="th">' in page.text and "ไม่พบล็อตนี้" in page.text and "NO-SUCH-LOT" in page.text
    english = client.get("/labels/NO-SUCH-LOT", params={"lang": "en"})
    assert english.status_code == 404 and "No lot with this code" in english.text
    odd = client.get("/labels/" + "<B>" + "X" * 300)
    assert odd.status_code == 404 and "<B>" not in odd.text and "&lt;B&gt;" in odd.text
    several = client.get("/labels", params={"lot": [packed(demo), "NOPE-0001", "NOPE-0002"]})
    assert several.status_code == 404 and "NOPE-0001" in several.text and "NOPE-0002" not in several.text


@pytest.mark.parametrize(
    "query",
    [
        {"copies": "0"},
        {"copies": "1000"},
        {"copies": "two"},
        {"copies": "-1"},
        {"start": "22"},
        {"start": "0"},
    ],
)
def test_bad_copies_or_start_is_a_friendly_422_page(demo, client, query):
    page = client.get(f"/labels/{packed(demo)}", params=query)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "ทำแผ่นฉลากนี้ไม่ได้" in page.text and "<script" not in page.text


def test_too_many_lots_or_labels_or_none_is_a_422_page(demo, client):
    many = [f"LOT-{n:04d}" for n in range(25)]
    page = client.get("/labels", params={"lot": many, "lang": "en"})
    assert page.status_code == 422 and "At most 24 lots" in page.text
    codes = list(demo["lots"])[:3]
    assert len(codes) * 60 > MAX_LABELS
    too_many = client.get("/labels", params={"lot": codes, "copies": "60", "lang": "en"})
    assert too_many.status_code == 422 and f"At most {MAX_LABELS} labels" in too_many.text
    assert client.get("/labels").status_code == 422


def test_label_sheets_are_rate_limited_per_client_address(demo, tmp_path):
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=demo["server"].runtime.settings.rpc_url,
        database_url=demo["server"].runtime.settings.database_url,
        id_base=ID_BASE,
        public_base_url=PUBLIC,
        public_rate_per_min=1,  # a burst of 10, then one a minute
    )
    app = create_app(runtime=Runtime(settings, _engine=demo["server"].runtime.engine))
    code = packed(demo)
    with (
        TestClient(app, client=("10.0.0.10", 40000)) as one,
        TestClient(app, client=("10.0.0.11", 40000)) as two,
    ):
        assert [one.get(f"/labels/{code}?copies=1").status_code for _ in range(10)] == [200] * 10
        refused = one.get(f"/labels/{code}?copies=1", params={"lang": "en"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"].startswith("text/html") and "Please wait" in refused.text
        assert two.get(f"/labels/{code}?copies=1").status_code == 200


# --- the service -----------------------------------------------------------------------------------------


def test_label_items_in_order_with_gtin14_and_link_and_the_first_unknown_named(db, w3):
    fresh = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    seed_demo(db.sessions, fresh, id_base=ID_BASE)
    with transaction(db.sessions) as s:
        lots = list(s.scalars(select(models.Lot).order_by(models.Lot.code)))
        codes = [lot.code for lot in lots][:3]
        items = label_items(s, [c.lower() for c in reversed(codes)], PUBLIC + "/")
        assert [i.code for i in items] == list(reversed(codes))
        for item in items:
            assert item.link == lot_link(s, item.code, PUBLIC)
            assert item.gtin is None or len(item.gtin) == 14
        with pytest.raises(UnknownLot) as refused:
            label_items(s, [codes[0], "NOPE-0001", "NOPE-0002"], PUBLIC)
        assert refused.value.code == "unknown_lot" and refused.value.status_code == 404
        assert refused.value.lot_code == "NOPE-0001"


# --- links from the officer's and the farmer's pages -----------------------------------------------------


@pytest.fixture
def world(db, registry) -> dict[str, Any]:
    return seed_officer_world(db.sessions, registry)


@pytest.fixture
def world_client(db, anvil, registry, tmp_path, world) -> Iterator[TestClient]:
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
    )
    app = create_app(runtime=Runtime(settings, _engine=db.engine))
    with TestClient(app, client=("10.0.0.12", 40000), follow_redirects=False) as c:
        yield c


def test_the_officers_lot_page_links_to_the_labels_and_the_public_page(world_client, world):
    login = world_client.get("/officer/login", params={"lang": "en"})
    creds = officer_creds(world["officer"])
    signed = world_client.post(
        "/officer/login", data={**creds, "csrf": field(login.text, "csrf"), "lang": "th"}
    )
    assert signed.status_code == 303
    page = world_client.get(f"/officer/lots/{LOT}")
    assert page.status_code == 200
    assert f'href="/labels/{LOT}">พิมพ์ฉลาก</a>' in page.text
    assert f'href="/p/{LOT}">หน้าสาธารณะ</a>' in page.text
    english = world_client.get(f"/officer/lots/{LOT}", params={"lang": "en"})
    assert f'href="/labels/{LOT}?lang=en">Print labels</a>' in english.text
    assert f'href="/p/{LOT}?lang=en">Public page</a>' in english.text
    assert world_client.get(f"/labels/{LOT}").status_code == 200


def test_my_lots_links_each_lot_to_its_labels_and_public_page(world_client):
    """One small link per lot (the page stays light): the lot code leads to its public page."""
    login = world_client.get("/farmer/login")
    signed = world_client.post(
        "/farmer/login", data={**FARMER_1, "csrf": field(login.text, "csrf"), "lang": "th"}
    )
    assert signed.status_code == 303
    page = world_client.get("/farmer/lots")
    assert page.status_code == 200
    codes = re.findall(r'<div class="code">[^<]*: <a href="/p/([A-Z0-9-]+)">\1</a>', page.text)
    assert codes and page.text.count('<section class="lot">') == len(codes)
    for code in codes:
        assert f'<a href="/labels/{code}">พิมพ์ฉลาก</a>' in page.text
    english = world_client.get("/farmer/lots", params={"lang": "en"})
    assert f'<a href="/p/{codes[0]}?lang=en">{codes[0]}</a>' in english.text
    assert f'<a href="/labels/{codes[0]}?lang=en">Print labels</a>' in english.text
