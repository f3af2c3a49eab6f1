"""Hostile input through the real app on a real Anvil, SQLite and PostgreSQL: oversized and deeply nested
bodies, huge batches, bad Unicode, forged and expired tokens, a revoked importer key, replayed certification
signatures, path traversal in evidence names and an image bomb as a photo. Each gets the exact 4xx with a
JSON error (a page for the HTML routes) and leaves nothing stored; text that merely looks like SQL or a
script is stored verbatim and shown escaped on every page that shows it."""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import struct
import sys
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import FARMER_1, ID_BASE, days_ago
from traceability.config import Settings
from traceability.domain import codec
from traceability.main import create_app
from traceability.services.apikeys import create_api_key, revoke_api_key
from traceability.services.auth import sign_out
from traceability.services.parties import enrol_plot, unlock_officer_key
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from officer_fixtures import LOT, field, officer_creds, seed_officer_world  # noqa: E402

from factories import OFFICER_PASSPHRASE  # noqa: E402

COUNTED = (models.Event, models.Outbox, models.Lot, models.CertificationRecord, models.PhotoHash)


@pytest.fixture
def world(db, registry) -> dict[str, Any]:
    return seed_officer_world(db.sessions, registry)


@pytest.fixture
def settings(db, anvil, registry, tmp_path, world) -> Settings:
    return Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
    )


@pytest.fixture
def client(db, settings) -> Iterator[TestClient]:
    app = create_app(runtime=Runtime(settings, _engine=db.engine))
    with TestClient(
        app, client=("10.0.0.31", 40000), follow_redirects=False, raise_server_exceptions=False
    ) as c:
        yield c


def bearer(client: TestClient, creds: dict[str, str]) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json=creds)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def stored(db, settings: Settings) -> dict[str, int]:
    """Everything a hostile request could have left behind: rows of each kind and evidence files on disk."""
    with transaction(db.sessions) as s:
        counts = {m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0) for m in COUNTED}
    files = Path(settings.evidence_dir)
    counts["evidence_files"] = sum(1 for p in files.rglob("*") if p.is_file()) if files.exists() else 0
    return counts


def assert_json_error(r: Any, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error


def harvest(lot: str = LOT, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "harvest",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(1).isoformat(),
        "place": {"id": "PLOT-T-01"},
        "lot_code": lot,
        "plot_id": "PLOT-T-01",
        "crop": "organic-veg",
        "quantity": {"value": "10", "uom": "KGM"},
        **fields,
    }


def planting(lot: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "planting",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(30).isoformat(),
        "place": {"id": "PLOT-T-01"},
        "lot_code": lot,
        "plot_id": "PLOT-T-01",
        "crop": "organic-veg",
        "area_rai": "1",
        **fields,
    }


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (an image bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


# --- sizes and shapes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_a_413_with_or_without_content_length(db, client, settings, chunked):
    headers = bearer(client, FARMER_1)
    before = stored(db, settings)
    body = b'{"kind": "harvest", "note": "' + b"a" * (1024 * 1024) + b'"}'

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    content: Any = pieces() if chunked else body
    r = client.post(
        "/api/v1/events", content=content, headers={**headers, "Content-Type": "application/json"}
    )
    assert_json_error(r, 413, "payload_too_large")
    assert stored(db, settings) == before


@pytest.mark.parametrize("route", ["/api/v1/events", "/api/v1/events/batch"])
def test_json_nested_ten_thousand_deep_is_a_422_not_a_500(db, client, settings, route):
    headers = bearer(client, FARMER_1)
    before = stored(db, settings)
    for depth in (10_000, 100_000, 400_000):  # 400,000 deep still fits under the 1 MiB limit
        for body in ("[" * depth + "]" * depth, '{"a":' * (depth // 4) + "1" + "}" * (depth // 4)):
            r = client.post(route, content=body.encode(), headers=headers)
            assert r.status_code == 422, (depth, r.status_code, r.text[:200])
            assert_json_error(r, 422)
            assert r.json()["error"]["code"] in ("invalid_json", "invalid_event", "invalid_batch")
    assert stored(db, settings) == before


def test_a_posted_bundle_nested_millions_deep_is_a_422_not_a_crash(db, client):
    """``POST /api/v1/verify`` takes up to 16 MiB: room for millions of brackets."""
    with transaction(db.sessions) as s:
        key = create_api_key(s, "deep-importer").key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    deep_object = '{"events":' * 10_000 + "[]" + "}" * 10_000
    for body in (deep_object.encode(), b"[" * 7_000_000 + b"]" * 7_000_000):  # 14 MB, 7 million deep
        r = client.post("/api/v1/verify", content=body, headers=headers)
        assert_json_error(r, 422, "invalid_json")
    assert client.get("/healthz").status_code == 200  # the server is still up


def test_a_batch_over_the_maximum_count_is_refused_whole(db, client, settings):
    headers = bearer(client, FARMER_1)
    before = stored(db, settings)
    events = [planting(f"T-HOST-{i:04d}") for i in range(501)]
    r = client.post("/api/v1/events/batch", json={"events": events}, headers=headers)
    assert_json_error(r, 422, "invalid_batch")
    assert stored(db, settings) == before


# --- bad Unicode --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        # A lone surrogate, escaped in otherwise valid JSON, in the note and in the variety.
        b'"note": "\\ud800 \\u0e1c\\u0e31\\u0e01"',
        b'"note": "\\udfff"',
        b'"variety": "\\u0e04\\u0e30\\u0e19\\u0e49\\u0e32\\ud83d"',
        # Bytes that are not UTF-8 at all.
        b'"note": "\xff\xfe\xe0\xb8"',
        b'"note": "\xc0\xaf"',
        # NUL, raw and escaped.
        b'"note": "\\u0000\\u0e1c\\u0e31\\u0e01"',
        # Bidi overrides that would reorder what a buyer reads.
        '"note": "ผัก\u202eคะน้า"'.encode(),
        b'"variety": "\\u0e1c\\u0e31\\u0e01\\u2066x\\u2069"',
        '"note": "\u200fผัก"'.encode(),
    ],
    ids=[
        "lone-high-surrogate",
        "lone-low-surrogate",
        "surrogate-in-variety",
        "invalid-utf8",
        "overlong-utf8",
        "nul",
        "rlo-override",
        "isolate-in-variety",
        "rlm",
    ],
)
def test_bad_unicode_in_thai_text_is_a_422_and_nothing_is_stored(db, client, settings, raw):
    headers = bearer(client, FARMER_1)
    before = stored(db, settings)
    base = harvest()
    body = codec.dumps(base)[:-1].encode() + b", " + raw + b"}"
    r = client.post("/api/v1/events", content=body, headers=headers)
    assert_json_error(r, 422)
    assert r.json()["error"]["code"] in ("invalid_json", "invalid_event")
    batch = b'{"events": [' + body + b"]}"
    r = client.post("/api/v1/events/batch", content=batch, headers=headers)
    assert_json_error(r, 422)
    assert stored(db, settings) == before
    # The very same body with plain Thai in that field is recorded: what was refused was the text.
    field_name = raw.split(b'"')[1]
    clean = codec.dumps(base)[:-1].encode() + b', "' + field_name + '": "ผักคะน้า"}'.encode()
    assert client.post("/api/v1/events", content=clean, headers=headers).status_code == 201


# --- text that looks like SQL or a script -------------------------------------------------------------------

SQL_LIKE = "ผักคะน้า'); DROP TABLE events;--"
SCRIPT_LIKE = "<script>alert(1)</script>ผัก"
ATTRIBUTE_LIKE = 'ผัก" onmouseover="alert(1)'


def sign_in_page(client: TestClient, who: str, creds: dict[str, str]) -> None:
    client.cookies.clear()
    login = client.get(f"/{who}/login")
    r = client.post(f"/{who}/login", data={**creds, "csrf": field(login.text, "csrf"), "lang": "th"})
    assert r.status_code == 303, r.text[:300]


def sign_typed(db, officer: Any, typed: dict[str, Any]) -> str:
    with transaction(db.sessions) as s:
        row = s.get(models.Officer, officer.id)
        assert row is not None
        key = unlock_officer_key(row, OFFICER_PASSPHRASE)
    return "0x" + bytes(key.sign_message(encode_typed_data(full_message=typed)).signature).hex()


def test_sql_and_script_looking_thai_text_is_stored_verbatim_and_rendered_escaped(db, client, world):
    # A place name (the village of a newly enrolled plot) and free text in an event, through the API.
    with transaction(db.sessions) as s:
        farmer = s.scalars(select(models.Farmer).where(models.Farmer.code == "F-0001")).one()
        enrol_plot(
            s,
            code="PLOT-T-66",
            farmer=farmer,
            village_th=SCRIPT_LIKE,
            village_en=ATTRIBUTE_LIKE,
            area_rai=Decimal("1"),
        )
    farmer_headers = bearer(client, FARMER_1)
    body = planting("T-HOST-0001", place={"id": "PLOT-T-66"}, plot_id="PLOT-T-66", variety=SQL_LIKE)
    r = client.post("/api/v1/events", json={**body, "note": SCRIPT_LIKE}, headers=farmer_headers)
    assert r.status_code == 201, r.text
    # A certification whose standard, scope and note look like SQL, a script and an attribute.
    officer = world["officer"]
    headers = bearer(client, officer_creds(officer))
    query = {"standard": SCRIPT_LIKE, "scope": SQL_LIKE, "note": ATTRIBUTE_LIKE}
    asked = client.get(f"/api/v1/lots/{LOT}/certification-request", params=query, headers=headers)
    assert asked.status_code == 200, asked.text
    typed, certificate = asked.json()["typed_data"], asked.json()["certificate"]
    post = {
        "certificate": certificate,
        "message": typed["message"],
        "signature": sign_typed(db, officer, typed),
    }
    r = client.post(f"/api/v1/lots/{LOT}/certifications", json=post, headers=headers)
    assert r.status_code == 201, r.text

    with transaction(db.sessions) as s:  # stored verbatim, and the tables are all still there
        bodies = "".join(str(b) for b in s.scalars(select(models.Event.body)))
        record = s.scalars(select(models.CertificationRecord)).one()
        assert record.standard == SCRIPT_LIKE
        plot = s.scalars(select(models.Plot).where(models.Plot.code == "PLOT-T-66")).one()
        assert plot.village_th == SCRIPT_LIKE
    assert SQL_LIKE in bodies and SCRIPT_LIKE in bodies and SQL_LIKE in bodies
    assert ATTRIBUTE_LIKE.replace('"', '\\"') in bodies  # JSON-escaped in the EPCIS body, not altered

    client.cookies.clear()
    pages = {
        "provenance": client.get(f"/p/{LOT}"),
        "provenance-en": client.get(f"/p/{LOT}?lang=en"),
        "provenance-village": client.get("/p/T-HOST-0001"),
        "provenance-village-en": client.get("/p/T-HOST-0001?lang=en"),
    }
    sign_in_page(client, "farmer", FARMER_1)
    pages["farmer-lots"] = client.get("/farmer/lots")
    sign_in_page(client, "officer", officer_creds(officer))
    pages["officer-lot"] = client.get(f"/officer/lots/{LOT}")
    pages["officer-lot-village"] = client.get("/officer/lots/T-HOST-0001")
    pages["officer-queue"] = client.get("/officer")

    shown = []
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.text[:500])
        text = page.text
        assert "<script>alert(1)" not in text, name
        assert 'onmouseover="alert(1)' not in text, name
        assert "DROP TABLE events;--" not in text or "ผักคะน้า&#39;); DROP TABLE" in text, name
        if "alert(1)" in text:
            shown.append(name)
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text or "&#34; onmouseover=&#34;" in text, name
    # The pages that show the certification or the village did show the text, escaped.
    assert {"provenance", "officer-lot", "provenance-village"} <= set(shown), shown


# --- tokens and keys ----------------------------------------------------------------------------------------


def test_forged_tampered_signed_out_and_expired_tokens_are_401(db, client, settings):
    good = bearer(client, FARMER_1)["Authorization"].removeprefix("Bearer ")
    signed_out = bearer(client, FARMER_1)["Authorization"].removeprefix("Bearer ")
    with transaction(db.sessions) as s:
        sign_out(s, signed_out)
    expired = bearer(client, FARMER_1)["Authorization"].removeprefix("Bearer ")
    with transaction(db.sessions) as s:
        row = s.get(models.AuthToken, hashlib.sha256(expired.encode()).hexdigest())
        assert row is not None, "tokens are stored as the SHA-256 of what the client holds"
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    before = stored(db, settings)
    for token in (
        secrets.token_urlsafe(32),
        signed_out,
        expired,
        tampered,
        "",
        "x" * 5000,
        "ttk_" + "0" * 40,
    ):
        for route, body in (("/api/v1/events", harvest()), ("/api/v1/events/batch", {"events": [harvest()]})):
            r = client.post(route, json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (token[:10], route, r.text)
            assert_json_error(r, 401)
            assert r.headers["WWW-Authenticate"] == "Bearer"
        r = client.get(f"/api/v1/lots/{LOT}", headers={"Authorization": f"Bearer {token}"})
        assert_json_error(r, 401)
    assert stored(db, settings) == before
    # The untouched token still works: what was refused was the token, not the route.
    assert client.get(f"/api/v1/lots/{LOT}", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_a_revoked_importer_key_is_401_on_every_importer_route(db, client):
    with transaction(db.sessions) as s:
        key = create_api_key(s, "hostile-importer").key
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get(f"/api/v1/lots/{LOT}/epcis", headers=headers).status_code == 200
    with transaction(db.sessions) as s:
        revoke_api_key(s, "hostile-importer")
    for path in (f"/api/v1/lots/{LOT}/verify", f"/api/v1/lots/{LOT}/proof", f"/api/v1/lots/{LOT}/epcis"):
        assert_json_error(client.get(path, headers=headers), 401)
    assert_json_error(client.post("/api/v1/verify", json={}, headers=headers), 401)
    forged = "ttk_" + secrets.token_urlsafe(30)
    assert_json_error(
        client.get(f"/api/v1/lots/{LOT}/proof", headers={"Authorization": f"Bearer {forged}"}), 401
    )


# --- replayed certification signatures ----------------------------------------------------------------------


def test_a_replayed_certification_signature_is_refused_and_stores_nothing(db, client, settings, world):
    headers = bearer(client, officer_creds(world["officer"]))
    query = {"standard": "Organic Thailand", "scope": "แปลง PLOT-T-01", "note": "ตรวจแล้ว"}
    asked = client.get(f"/api/v1/lots/{LOT}/certification-request", params=query, headers=headers)
    assert asked.status_code == 200, asked.text
    typed, certificate = asked.json()["typed_data"], asked.json()["certificate"]
    with transaction(db.sessions) as s:
        row = s.get(models.Officer, world["officer"].id)
        assert row is not None
        key = unlock_officer_key(row, OFFICER_PASSPHRASE)
    signature = "0x" + bytes(key.sign_message(encode_typed_data(full_message=typed)).signature).hex()
    post = {"certificate": certificate, "message": typed["message"], "signature": signature}
    assert client.post(f"/api/v1/lots/{LOT}/certifications", json=post, headers=headers).status_code == 201
    before = stored(db, settings)

    again = client.post(f"/api/v1/lots/{LOT}/certifications", json=post, headers=headers)
    assert_json_error(again, 409, "replayed_signature")
    # The same signature posted for another lot of the same authority: it names LOT, so it cannot be for this.
    other = client.post("/api/v1/lots/T-VEG-0002/certifications", json=post, headers=headers)
    assert other.status_code in (409, 422), other.text
    assert_json_error(other, other.status_code)
    assert stored(db, settings) == before


# --- path traversal in evidence names -----------------------------------------------------------------------

TRAVERSALS = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "%2Fetc%2Fpasswd",
    "....//....//etc/passwd",
    "..\\..\\etc\\passwd",
    "0" * 62 + "..",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_path_traversal_in_an_evidence_name_is_a_404_and_reads_nothing(client, settings, name):
    secret = Path(settings.var_dir) / "secret.txt"
    secret.write_text("not for the public")
    r = client.get(f"/evidence/{name}")
    assert r.status_code == 404, (name, r.status_code, r.text[:200])
    assert "root:" not in r.text and "not for the public" not in r.text


@pytest.mark.parametrize(
    "evidence",
    [["../../etc/passwd"], ["/etc/passwd"], ["..%2F..%2Fetc%2Fpasswd"], ["0" * 63 + "/"], ["0" * 64 + "/.."]],
)
def test_an_event_naming_evidence_by_a_path_is_a_422_and_nothing_is_stored(db, client, settings, evidence):
    headers = bearer(client, FARMER_1)
    before = stored(db, settings)
    r = client.post("/api/v1/events", json=harvest(evidence=evidence), headers=headers)
    assert_json_error(r, 422, "invalid_event")
    assert stored(db, settings) == before


# --- photos -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "upload",
    [
        ("bomb.png", png_claiming(50_000, 50_000)),
        ("strip.png", png_claiming(200_000, 1)),
        ("notes.jpg", "นี่ไม่ใช่รูปภาพ <script>alert(1)</script>".encode()),
        ("../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"),
    ],
    ids=["bomb", "strip", "text-as-jpeg", "traversal-name"],
)
def test_an_image_bomb_or_a_non_image_as_a_photo_is_a_422_page_and_nothing_is_stored(
    db, client, settings, upload
):
    login = client.get("/farmer/login")
    assert (
        client.post(
            "/farmer/login", data={**FARMER_1, "csrf": field(login.text, "csrf"), "lang": "th"}
        ).status_code
        == 303
    )
    page = client.get("/farmer/record/harvest")
    assert page.status_code == 200
    values = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input[^>]*? name="([^"]+)"[^>]*? value="([^"]*)"', page.text)
    }
    for found in re.finditer(r'<select[^>]*? name="([^"]+)"[^>]*>(.*?)</select>', page.text, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', found.group(2))
        if chosen:
            values[found.group(1)] = html.unescape(chosen.group(1))
    values["quantity"] = "12"
    before = stored(db, settings)
    r = client.post("/farmer/record/harvest", data=values, files={"photo": (*upload, "image/jpeg")})
    assert r.status_code == 422, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    assert "ไฟล์นี้ใช้เป็นรูปถ่ายไม่ได้" in r.text and "<script>alert(1)</script>" not in r.text
    assert stored(db, settings) == before
