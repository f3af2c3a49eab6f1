"""QR codes for labels (`GET /qr/{lot_code}.svg|.png`), read back with a real decoder (ZBar) — the PNG as
served, the SVG as Chromium draws it — to the lot's GS1 Digital Link URI, or its provenance page without a
GTIN."""

from __future__ import annotations

import base64
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode
from sqlalchemy import select

from factories import ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain.gs1 import parse_lot_uri
from traceability.main import create_app
from traceability.services.demo import seed_demo
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.qr import qr_png

PUBLIC = "https://trace.example.th"


@pytest.fixture
def lots(db, w3) -> tuple[models.Lot, models.Lot]:
    """A packed lot with its GTIN and a field lot without one, from the demo data."""
    fresh = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))  # the demo's authorities are new on it
    seed_demo(db.sessions, fresh, id_base=ID_BASE)
    with transaction(db.sessions) as s:
        packed = s.scalars(select(models.Lot).where(models.Lot.gtin.is_not(None)).limit(1)).one()
        loose = s.scalars(select(models.Lot).where(models.Lot.gtin.is_(None)).limit(1)).one()
    return packed, loose


@pytest.fixture
def client(db, anvil, tmp_path, lots) -> Iterator[TestClient]:
    settings = Settings(
        var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE, public_base_url=PUBLIC
    )
    with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine))) as c:
        yield c


def read(png: bytes) -> list[str]:
    """Every QR code ZBar finds in an image."""
    with Image.open(io.BytesIO(png)) as image:
        return [s.data.decode("utf-8") for s in decode(image.convert("L"), symbols=[ZBarSymbol.QRCODE])]


def test_a_packed_lots_png_code_reads_as_its_digital_link_uri_on_our_host(client, lots):
    packed, _ = lots
    answer = client.get(f"/qr/{packed.code}.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert "max-age" in answer.headers["cache-control"]
    [uri] = read(answer.content)
    assert uri.startswith(f"{PUBLIC}/01/")
    gtin, lot = parse_lot_uri(uri.replace(PUBLIC + "/", "https://id.gs1.org/")) or ("", "")
    assert (gtin, lot) == (packed.gtin.zfill(14), packed.code)


def test_a_lot_without_a_gtin_leads_to_its_provenance_page(client, lots):
    _, loose = lots
    assert read(client.get(f"/qr/{loose.code}.png").content) == [f"{PUBLIC}/p/{loose.code}"]


def test_the_code_survives_a_scuffed_label(lots):
    """Level H: a fifth of the symbol's width painted over across its middle still reads."""
    uri = f"{PUBLIC}/p/{lots[1].code}"
    with Image.open(io.BytesIO(qr_png(uri))) as image:
        scuffed = image.convert("L")
    w, h = scuffed.size
    scuffed.paste(255, (int(w * 0.40), int(h * 0.30), int(w * 0.60), int(h * 0.45)))
    buffer = io.BytesIO()
    scuffed.save(buffer, format="PNG")
    assert read(buffer.getvalue()) == [uri]


def test_the_svg_is_one_path_and_reads_the_same_when_a_browser_draws_it(client, lots, browser, tmp_path):
    packed, _ = lots
    answer = client.get(f"/qr/{packed.code}.svg")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(answer.content)
    assert root.tag.endswith("svg") and len([e for e in root.iter() if e.tag.endswith("path")]) == 1
    page = tmp_path / "label.html"
    page.write_text(
        '<body style="margin:0;background:#fff"><img style="width:330px" src="data:image/svg+xml;base64,'
        + base64.b64encode(answer.content).decode()
        + '"></body>'
    )
    browser.get(page.as_uri())
    assert read(browser.get_screenshot_as_png()) == read(client.get(f"/qr/{packed.code}.png").content)


def test_an_unknown_lot_is_a_json_404(client):
    answer = client.get("/qr/NO-SUCH-LOT.png")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_lot"
    assert client.get("/qr/NO-SUCH-LOT.svg").status_code == 404
