"""The officer's pages over HTTP on a real Anvil: sign-in (throttled, CSRF), the queue of their own
authority's lots only, a lot's history with its verification, certifying with the signing passphrase (once,
even when posted twice) and revoking, and every wrong actor refused: a farmer's session, an officer of another
authority, a revoked officer, a wrong passphrase."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from officer_fixtures import LOT, OTHER_LOT, anchor_all, field, officer_creds, seed_officer_world
from sqlalchemy import func, select, update

from factories import FARMER_1, ID_BASE, authority_admin
from traceability.chain.eip712 import authority_id
from traceability.config import Settings
from traceability.main import create_app
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.i18n import thai_year


@pytest.fixture
def world(db, registry) -> dict[str, Any]:
    return seed_officer_world(db.sessions, registry)


@pytest.fixture
def app(db, anvil, registry, tmp_path, world):
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
    )
    return create_app(runtime=Runtime(settings, _engine=db.engine))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, client=("10.0.0.7", 40000), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, creds: dict[str, str], *, lang: str = "th"):
    page = client.get("/officer/login", params={"lang": lang})
    assert page.status_code == 200
    return client.post("/officer/login", data={**creds, "csrf": field(page.text, "csrf"), "lang": lang})


def certify_form(client: TestClient, lot: str = LOT, **overrides: str) -> dict[str, str]:
    page = client.get(f"/officer/lots/{lot}")
    assert page.status_code == 200, page.text
    return {
        "csrf": field(page.text, "csrf"),
        "lang": "th",
        "token": field(page.text, "token"),
        "standard": "Organic Thailand",
        "scope": "ผักคะน้า แปลง PLOT-T-01 2.5 ไร่",
        "valid_until": (date.today() + timedelta(days=200)).isoformat(),
        "note": "ตรวจแปลงแล้ว ไม่พบการใช้สารเคมี",
        "passphrase": "รหัสผ่านเจ้าหน้าที่-ทดสอบ",
        **overrides,
    }


def count(db, model, *where) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_an_officer_signs_in_and_sees_only_their_authoritys_lots_not_certified_first(db, client, world):
    page = client.get("/officer/login")
    assert "เข้าสู่ระบบเจ้าหน้าที่" in page.text and page.headers["Cache-Control"] == "no-store"
    r = sign_in(client, officer_creds(world["officer"]))
    assert r.status_code == 303 and r.headers["location"] == "/officer"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("trace_session="))
    assert {"httponly", "samesite=lax"} <= {a.strip().lower() for a in cookie.split(";")}

    queue = client.get("/officer")
    assert queue.status_code == 200 and queue.headers["Cache-Control"] == "no-store"
    text = queue.text
    for code in (LOT, "T-VEG-0001A", "T-VEG-0001B", "T-VEG-0002"):
        assert f"/officer/lots/{code}" in text
    assert OTHER_LOT not in text  # another authority's lot is not listed
    assert "บ้านหนองสนิท" in text and "ยังไม่ได้รับรอง" in text
    assert "รอบันทึกบนบล็อกเชน" in text  # some steps are still waiting
    assert f"{thai_year(datetime.now(UTC).year)}" in text  # Buddhist-era dates
    # The nav bar links to the enrolment pages and signs out.
    for href in (
        'href="/officer"',
        'href="/officer/farmers"',
        'href="/officer/plots/new"',
        "/officer/logout",
    ):
        assert href in text
    assert len(queue.content) < 30_000

    en = client.get("/officer?lang=en")
    assert "Review queue" in en.text and "Not certified" in en.text


def test_a_wrong_password_is_a_401_and_repeated_ones_lock_with_429_and_retry_after(client, world):
    creds = officer_creds(world["officer"])
    r = sign_in(client, {**creds, "password": "wrong"})
    assert r.status_code == 401 and "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in r.text
    assert f'value="{creds["username"]}"' in r.text and "wrong" not in r.text
    for _ in range(4):
        assert sign_in(client, {**creds, "password": "wrong"}).status_code == 401
    locked = sign_in(client, creds)  # even the right password, while locked
    assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 60
    assert "ใส่รหัสผ่านผิดหลายครั้งเกินไป กรุณารอ 1 นาทีแล้วลองใหม่" in locked.text
    assert "trace_session" not in locked.headers.get("set-cookie", "")


def test_forms_without_the_right_csrf_token_are_refused(db, client, world):
    creds = officer_creds(world["officer"])
    client.get("/officer/login")
    r = client.post("/officer/login", data={**creds, "csrf": "forged", "lang": "th"})
    assert r.status_code == 403 and "แบบฟอร์มนี้หมดอายุแล้ว" in r.text and 'href="/officer/login"' in r.text
    assert sign_in(client, creds).status_code == 303
    form = certify_form(client)
    nonce = count(db, models.ChainOp)
    r = client.post(f"/officer/lots/{LOT}/certify", data={**form, "csrf": "wrong"})
    assert r.status_code == 403 and count(db, models.ChainOp) == nonce
    r = client.post("/officer/logout", data={"csrf": "wrong", "lang": "th"})
    assert r.status_code == 403 and client.get("/officer").status_code == 200
    r = client.post("/officer/logout", data={"csrf": form["csrf"], "lang": "th"})
    assert r.status_code == 303 and r.headers["location"] == "/officer/login"
    assert client.get("/officer").headers["location"] == "/officer/login"


def test_no_session_an_expired_one_or_a_farmers_gets_the_sign_in_page_never_the_data(db, client, world):
    for path in ("/officer", f"/officer/lots/{LOT}"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/officer/login"
    # A farmer's session is not an officer's.
    page = client.get("/farmer/login")
    r = client.post("/farmer/login", data={**FARMER_1, "csrf": field(page.text, "csrf"), "lang": "th"})
    assert r.status_code == 303
    for path in ("/officer", f"/officer/lots/{LOT}"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/officer/login" and LOT not in r.text
    r = client.post(f"/officer/lots/{LOT}/certify", data={"csrf": "x", "lang": "th"})
    assert r.status_code == 303 and r.headers["location"] == "/officer/login"

    client.cookies.clear()
    assert sign_in(client, officer_creds(world["officer"])).status_code == 303
    assert client.get("/officer").status_code == 200
    with transaction(db.sessions) as s:
        s.execute(update(models.AuthToken).values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    r = client.get("/officer?lang=en")
    assert r.status_code == 303 and r.headers["location"] == "/officer/login?lang=en"


def test_a_lot_of_another_authority_is_a_403_page_and_cannot_be_certified(db, client, world):
    assert sign_in(client, officer_creds(world["officer"])).status_code == 303
    r = client.get(f"/officer/lots/{OTHER_LOT}")
    assert r.status_code == 403 and "ล็อตนี้อยู่ในเขตของ อปท. อื่น" in r.text
    assert "บ้านนาดี" not in r.text  # nothing of the lot is shown
    assert client.get("/officer/lots/NO-SUCH-LOT").status_code == 404
    form = certify_form(client)  # a token and CSRF of the officer's own lot page, posted to another lot
    before = count(db, models.ChainOp)
    r = client.post(f"/officer/lots/{OTHER_LOT}/certify", data=form)
    assert r.status_code == 403 and count(db, models.ChainOp) == before


def test_a_wrong_passphrase_is_a_422_with_the_values_kept_and_nothing_on_chain(db, client, registry, world):
    assert sign_in(client, officer_creds(world["officer"])).status_code == 303
    nonce = registry.nonce_of(world["officer"].address)
    form = certify_form(client, passphrase="not-my-passphrase")
    r = client.post(f"/officer/lots/{LOT}/certify", data=form)
    assert r.status_code == 422 and "รหัสผ่านสำหรับลงนามไม่ถูกต้อง" in r.text
    assert form["scope"] in r.text and form["note"] in r.text and "not-my-passphrase" not in r.text
    assert count(db, models.ChainOp, models.ChainOp.kind == "certify") == 0
    assert registry.nonce_of(world["officer"].address) == nonce
    # A bad date is a 422 too, before anything is signed.
    r = client.post(
        f"/officer/lots/{LOT}/certify", data={**certify_form(client), "valid_until": "2020-01-01"}
    )
    assert r.status_code == 422 and "ต้องเป็นวันหลังวันนี้" in r.text


def test_certify_once_even_posted_twice_then_the_lot_verifies_then_revoke_and_it_does_not(
    db, client, registry, world
):
    assert sign_in(client, officer_creds(world["officer"])).status_code == 303
    anchor_all(db.sessions, registry)
    form = certify_form(client)
    r = client.post(f"/officer/lots/{LOT}/certify", data=form)
    assert r.status_code == 303 and r.headers["location"] == f"/officer/lots/{LOT}?done=certified"
    again = client.post(f"/officer/lots/{LOT}/certify", data=form)  # a double tap, or the browser's resend
    assert again.status_code == 303
    assert count(db, models.CertificationRecord) == 1
    assert count(db, models.ChainOp, models.ChainOp.kind == "certify") == 1
    with transaction(db.sessions) as s:
        record = s.scalars(select(models.CertificationRecord)).one()
        event = s.get(models.Event, record.event_id)
        assert event is not None
        cert_id, body = record.id, event.body
    assert registry.is_valid(cert_id)
    assert form["scope"] in body and form["note"] in body  # the scope and note are in the signed event

    anchor_all(db.sessions, registry)
    page = client.get(f"/officer/lots/{LOT}")
    assert 'data-status="verified"' in page.text, page.text
    assert "รับรองล็อตเรียบร้อยแล้ว" not in page.text  # the notice is only shown after certifying
    done = client.get(f"/officer/lots/{LOT}?done=certified")
    assert "รับรองล็อตเรียบร้อยแล้ว" in done.text and "ใช้ได้" in done.text
    valid_until = date.fromisoformat(form["valid_until"])
    assert f"{valid_until.day} " in done.text and str(thai_year(valid_until.year)) in done.text
    queue = client.get("/officer")
    assert "รับรองถึง" in queue.text
    assert len(page.content) < 30_000

    revoke = {"csrf": form["csrf"], "lang": "th", "cert_id": cert_id, "reason": "", "passphrase": "x"}
    r = client.post(f"/officer/lots/{LOT}/revoke", data=revoke)
    assert r.status_code == 422 and "กรุณาระบุเหตุผลที่เพิกถอน" in r.text
    revoke.update(reason="พบการใช้ปุ๋ยเคมีในแปลง", passphrase="รหัสผ่านเจ้าหน้าที่-ทดสอบ")
    r = client.post(f"/officer/lots/{LOT}/revoke", data=revoke)
    assert r.status_code == 303 and r.headers["location"] == f"/officer/lots/{LOT}?done=revoked"
    assert client.post(f"/officer/lots/{LOT}/revoke", data=revoke).status_code == 303  # a second tap
    assert count(db, models.ChainOp, models.ChainOp.kind == "revoke_certification") == 1
    assert not registry.is_valid(cert_id)
    anchor_all(db.sessions, registry)
    page = client.get(f"/officer/lots/{LOT}")
    verification = page.text[page.text.index('id="verification"') : page.text.index('id="certifications"')]
    assert 'data-status="failed"' in verification, verification
    assert "ใบรับรอง Organic Thailand ของล็อต T-VEG-0001: บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้" in verification
    assert "ถูกเพิกถอน" in page.text and "พบการใช้ปุ๋ยเคมีในแปลง" in page.text
    assert "ใบรับรองถูกเพิกถอน" in client.get("/officer").text


def test_an_officer_revoked_on_chain_cannot_certify_and_is_told_why(db, client, registry, world):
    officer = world["officer"]
    assert sign_in(client, officer_creds(officer)).status_code == 303
    form = certify_form(client)
    # Revoked on chain by the authority's admin; the row has not caught up yet: the chain is what counts.
    authority_admin(registry).revoke_officer(authority_id(world["authority"].code), officer.address)
    r = client.post(f"/officer/lots/{LOT}/certify", data=form)
    assert r.status_code == 403 and "กุญแจเจ้าหน้าที่ของท่านใช้ไม่ได้บนบล็อกเชน" in r.text
    assert count(db, models.ChainOp, models.ChainOp.kind == "certify") == 0
    # Once the row is revoked too, the session ends and the sign-in page says why.
    with transaction(db.sessions) as s:
        s.execute(update(models.Officer).where(models.Officer.id == officer.id).values(status="revoked"))
    assert client.get("/officer").headers["location"] == "/officer/login"
    r = sign_in(client, officer_creds(officer))
    assert r.status_code == 403 and "บัญชีเจ้าหน้าที่นี้ใช้งานไม่ได้" in r.text


def test_with_the_chain_down_the_lot_page_says_so_and_certifying_is_a_clear_refusal(db, tmp_path, world):
    settings = Settings(var_dir=tmp_path, rpc_url="http://127.0.0.1:9", database_url=db.url, id_base=ID_BASE)
    with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine)), follow_redirects=False) as c:
        assert sign_in(c, officer_creds(world["officer"]), lang="en").status_code == 303
        page = c.get(f"/officer/lots/{LOT}?lang=en")
        assert page.status_code == 200 and 'data-status="unavailable"' in page.text
        assert "Certify this lot" in page.text and "History" in page.text
        r = c.post(f"/officer/lots/{LOT}/certify", data={**certify_form(c), "lang": "en"})
        assert r.status_code == 503 and "The blockchain could not be reached" in r.text
    assert count(db, models.ChainOp, models.ChainOp.kind == "certify") == 0
