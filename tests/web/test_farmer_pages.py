"""The farmer's pages over HTTP: sign-in with phone + PIN (throttled like the API), the session cookie,
CSRF on every form, and "My lots" with only the farmer's own lots, in Thai (Buddhist-era dates) or English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from factories import FARMER_1, FARMER_2, ID_BASE, seed_farmer_lots, seed_parties
from traceability.config import Settings
from traceability.main import create_app
from traceability.services.auth import hash_token
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.i18n import thai_year


@pytest.fixture
def seeded(db, registry):
    seed_parties(db.sessions, registry)
    return seed_farmer_lots(db.sessions, registry)


@pytest.fixture
def app(db, anvil, tmp_path, seeded):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    return create_app(runtime=Runtime(settings, _engine=db.engine))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, client=("10.0.0.1", 40000), follow_redirects=False) as c:
        yield c


def login_csrf(client: TestClient, lang: str = "th") -> str:
    page = client.get("/farmer/login", params={"lang": lang})
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def sign_in(client: TestClient, creds: dict[str, str], *, csrf: str | None = None, lang: str = "th"):
    csrf = login_csrf(client, lang) if csrf is None else csrf
    return client.post("/farmer/login", data={**creds, "csrf": csrf, "lang": lang})


def count(db, model) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_signing_in_sets_an_httponly_samesite_cookie_holding_a_token_stored_only_hashed(db, client):
    page = client.get("/farmer/login")
    assert 'lang="th"' in page.text and "เข้าสู่ระบบสำหรับเกษตรกร" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    r = sign_in(client, FARMER_1)
    assert r.status_code == 303 and r.headers["location"] == "/farmer/lots"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("trace_session="))
    attrs = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
    assert "secure" not in attrs  # plain HTTP here; see the HTTPS test
    token = cookie.split(";")[0].split("=", 1)[1]
    with transaction(db.sessions) as s:
        stored = set(s.scalars(select(models.AuthToken.token_hash)))
    assert stored == {hash_token(token)} and token not in stored


def test_over_https_the_session_cookie_is_secure(app):
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        r = sign_in(c, FARMER_1)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("trace_session="))
    assert "secure" in [a.strip().lower() for a in cookie.split(";")]


def test_a_wrong_pin_is_a_friendly_401_and_repeated_ones_lock_with_a_thai_message(client):
    r = sign_in(client, {**FARMER_1, "pin": "0000"})
    assert r.status_code == 401
    assert "หมายเลขโทรศัพท์หรือรหัส PIN ไม่ถูกต้อง" in r.text
    assert 'value="0811111111"' in r.text  # the phone number is kept, the PIN is not
    for _ in range(4):
        assert sign_in(client, {**FARMER_1, "pin": "0000"}).status_code == 401
    locked = sign_in(client, FARMER_1)  # even the right PIN, while locked
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 60
    assert "ใส่รหัส PIN ผิดหลายครั้ง กรุณารอ 1 นาทีแล้วลองใหม่" in locked.text
    assert "trace_session" not in locked.headers.get("set-cookie", "")
    en = sign_in(client, FARMER_1, lang="en")
    assert en.status_code == 429 and "Please wait 1 min and try again" in en.text


def test_posts_without_the_right_csrf_token_are_refused_with_a_403_page(db, client):
    before = count(db, models.LoginAttempt)
    login_csrf(client)  # the pre-session cookie is set, but the form does not carry it
    r = client.post("/farmer/login", data={**FARMER_1, "lang": "th"})
    assert r.status_code == 403 and "แบบฟอร์มนี้หมดอายุแล้ว" in r.text
    r = sign_in(client, FARMER_1, csrf="forged", lang="en")
    assert r.status_code == 403 and "This form has expired" in r.text
    # A form from elsewhere, with a token of its own and no cookie, is refused too.
    client.cookies.clear()
    r = client.post("/farmer/login", data={**FARMER_1, "csrf": "x" * 43, "lang": "th"})
    assert r.status_code == 403
    assert count(db, models.LoginAttempt) == before  # refused before any PIN was checked

    assert sign_in(client, FARMER_1).status_code == 303
    page = client.get("/farmer/lots")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    for data in ({"lang": "th"}, {"csrf": "wrong", "lang": "th"}, {"csrf": login_csrf(client), "lang": "th"}):
        r = client.post("/farmer/logout", data=data)
        assert r.status_code == 403 and "แบบฟอร์มนี้หมดอายุแล้ว" in r.text
    assert client.get("/farmer/lots").status_code == 200  # still signed in
    assert count(db, models.AuthToken) == 1

    r = client.post("/farmer/logout", data={"csrf": csrf.group(1), "lang": "th"})
    assert r.status_code == 303 and r.headers["location"] == "/farmer/login"
    assert count(db, models.AuthToken) == 0
    assert client.get("/farmer/lots").status_code == 303


def test_my_lots_without_a_session_or_with_an_expired_one_goes_to_the_sign_in_page(db, client):
    r = client.get("/farmer/lots")
    assert r.status_code == 303 and r.headers["location"] == "/farmer/login"
    assert client.get("/farmer/lots?lang=en").headers["location"] == "/farmer/login?lang=en"
    client.cookies.set("trace_session", "made-up")
    assert client.get("/farmer/lots").headers["location"] == "/farmer/login"

    client.cookies.clear()
    assert sign_in(client, FARMER_1).status_code == 303
    assert client.get("/farmer/lots").status_code == 200
    with transaction(db.sessions) as s:
        s.execute(update(models.AuthToken).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    r = client.get("/farmer/lots")
    assert r.status_code == 303 and r.headers["location"] == "/farmer/login"


def test_my_lots_shows_only_my_lots_with_each_step_dated_in_the_buddhist_era(db, client, seeded):
    assert sign_in(client, FARMER_1).status_code == 303
    r = client.get("/farmer/lots")
    assert r.status_code == 200 and 'lang="th"' in r.text
    assert r.headers["Cache-Control"] == "no-store"
    text = r.text
    assert "ล็อตของฉัน" in text and "นางสมพร ใจดี" in text
    # lots of my plot and those packed from it; not the other farmer's
    for code in ("T-VEG-0001", "T-VEG-0001A", "T-VEG-0001B"):
        assert code in text
    assert "T-VEG-0002" not in text and "บุญมี" not in text and "0811111111" not in text
    assert "ผักอินทรีย์" in text
    assert "เก็บเกี่ยว" in text and "1,000 กก." in text and "บรรจุหีบห่อ" in text and "500 กก." in text
    assert "คัดออก (ตกเกรด)" in text and "50 กก." in text
    harvest_year = seeded["harvest_time"].year
    assert f" {thai_year(harvest_year)} เวลา " in text
    assert f"ยืนยันบนบล็อกเชนแล้ว (บล็อก {seeded['block']})" in text
    assert "บันทึกแล้ว รอยืนยันบนบล็อกเชน" in text

    en = client.get("/farmer/lots?lang=en").text
    assert 'lang="en"' in en and "My lots" in en and "Organic vegetables" in en
    assert "Harvested" in en and "1,000 kg" in en
    assert f"Confirmed on the blockchain (block {seeded['block']})" in en
    assert "Recorded, waiting for blockchain confirmation" in en
    assert f" {harvest_year}, " in en and str(thai_year(harvest_year)) not in en

    client.cookies.clear()
    assert sign_in(client, FARMER_2).status_code == 303
    other = client.get("/farmer/lots").text
    assert "T-VEG-0002" in other and "T-VEG-0001" not in other and "สมพร" not in other
