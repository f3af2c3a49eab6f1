"""The JSON API over HTTP (auth, events, batches, lots) on SQLite and PostgreSQL with a real Anvil.

The app is built over the test database (``Runtime`` with the test engine) and driven with starlette's
TestClient, whose ``client`` argument sets the socket address the sign-in throttle keys on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from factories import ID_BASE, days_ago, seed_parties
from traceability.config import Settings
from traceability.domain.states import PartyStatus
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.auth import hash_token, sign_in_farmer
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

FARMER_1 = {"phone": "0811111111", "pin": "1234"}  # F-0001, owns PLOT-T-01
FARMER_2 = {"phone": "0822222222", "pin": "5678"}  # F-0002, owns PLOT-T-02


@pytest.fixture
def parties(db, registry):
    return seed_parties(db.sessions, registry, with_officer=True)


@pytest.fixture
def app(db, anvil, tmp_path, parties):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    return create_app(runtime=Runtime(settings, _engine=db.engine))


@contextmanager
def client_at(app, host: str = "10.0.0.1") -> Iterator[TestClient]:
    with TestClient(app, client=(host, 40000)) as c:
        yield c


@pytest.fixture
def client(app):
    with client_at(app) as c:
        yield c


def token(client: TestClient, creds: dict[str, str]) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json=creds)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def officer_creds(parties) -> dict[str, str]:
    return {"username": parties["officer"].username, "password": "officer-password"}


def planting(lot: str = "T-API-0001", plot: str = "PLOT-T-01", **over: Any) -> dict[str, Any]:
    return {
        "kind": "planting",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(60).isoformat(),
        "place": {"id": plot, "lat": "14.8818", "lon": "103.4936"},
        "lot_code": lot,
        "plot_id": plot,
        "crop": "organic-veg",
        "variety": "ผักคะน้า",
        "area_rai": "2.5",
        **over,
    }


def harvest(
    lot: str = "T-API-0001", plot: str = "PLOT-T-01", kg: Any = "1000", **over: Any
) -> dict[str, Any]:
    return {
        "kind": "harvest",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(20).isoformat(),
        "place": {"id": "FARM-T-01"},
        "lot_code": lot,
        "plot_id": plot,
        "crop": "organic-veg",
        "quantity": {"value": kg, "uom": "KGM"},
        **over,
    }


def count(db, model) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# --- auth -------------------------------------------------------------------------------------------------


def test_a_farmer_and_an_officer_get_bearer_tokens_stored_only_hashed(db, client, parties):
    r = client.post("/api/v1/auth/token", json=FARMER_1)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["role"] == "farmer" and body["party"] == "F-0001"
    assert body["expires_in"] == 12 * 3600
    officer = client.post("/api/v1/auth/token", json=officer_creds(parties)).json()
    assert officer["role"] == "officer" and officer["party"] == f"OFF-{parties['officer'].id:04d}"
    with transaction(db.sessions) as s:
        stored = set(s.scalars(select(models.AuthToken.token_hash)))
    assert stored == {hash_token(body["access_token"]), hash_token(officer["access_token"])}
    assert body["access_token"] not in stored
    # The token opens the API; no token, or a made-up one, is 401 with a Bearer challenge.
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/lots/T-NONE-0001", headers=auth).status_code == 404
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = client.get("/api/v1/lots/T-NONE-0001", headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["error"]["code"] in {"missing_token", "invalid_token"}


def test_wrong_pins_are_401_then_429_for_that_account_from_any_client(db, app, parties):
    with client_at(app, "10.0.0.1") as a:
        for _ in range(5):
            r = a.post("/api/v1/auth/token", json={**FARMER_1, "pin": "0000"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
        locked = a.post("/api/v1/auth/token", json=FARMER_1)  # even the right PIN now
        assert locked.status_code == 429
        assert 0 < int(locked.headers["Retry-After"]) <= 60
        message = locked.json()["error"]["message"]
        assert "ลองใหม่" in message and "try again" in message
        # Another account from the same client is not locked by five failures of one account.
        assert a.post("/api/v1/auth/token", json=FARMER_2).status_code == 200
    with client_at(app, "10.0.0.2") as b:
        assert b.post("/api/v1/auth/token", json=FARMER_1).status_code == 429
    # Recorded in the database: another process (a second app over the same database) sees the lock.
    other = create_app(runtime=Runtime(Settings(database_url=db.url), _engine=db.engine))
    with client_at(other, "10.0.0.3") as c:
        r = c.post("/api/v1/auth/token", json=FARMER_1)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # A further failure after the lock runs out doubles it (the lock grows): shown through the service.
    later = datetime.now(UTC) + timedelta(minutes=2)
    with transaction(db.sessions) as s:
        out = sign_in_farmer(s, phone=FARMER_1["phone"], pin="9999", client="10.0.0.4", now=later)
        assert out.error is not None and out.error.status_code == 401
    with transaction(db.sessions) as s:
        out = sign_in_farmer(s, phone=FARMER_1["phone"], pin="1234", client="10.0.0.4", now=later)
        assert out.error is not None and out.error.status_code == 429
        assert out.error.headers["Retry-After"] == "120"


def test_many_failures_from_one_client_lock_that_client_for_every_account(app, parties):
    with client_at(app, "10.0.0.9") as a:
        for i in range(20):  # twenty different (unknown) phone numbers: no single account reaches its limit
            r = a.post("/api/v1/auth/token", json={"phone": f"08900000{i:02d}", "pin": "0000"})
            assert r.status_code == 401
        r = a.post("/api/v1/auth/token", json=FARMER_2)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert a.post("/api/v1/auth/token", json=officer_creds(parties)).status_code == 429
    with client_at(app, "10.0.0.10") as b:
        assert b.post("/api/v1/auth/token", json=FARMER_2).status_code == 200


def test_an_expired_token_is_401(db, client):
    with transaction(db.sessions) as s:
        out = sign_in_farmer(
            s,
            phone=FARMER_1["phone"],
            pin=FARMER_1["pin"],
            client="t",
            now=datetime.now(UTC) - timedelta(hours=13),
        )
    assert out.token is not None
    r = client.get("/api/v1/lots/T-API-0001", headers={"Authorization": f"Bearer {out.token.access_token}"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "invalid_token"


def test_a_pending_or_revoked_officer_cannot_sign_in_and_loses_their_tokens(db, client, parties):
    headers = token(client, officer_creds(parties))
    assert client.get("/api/v1/lots/T-NONE-0001", headers=headers).status_code == 404
    for status in (PartyStatus.PENDING, PartyStatus.REVOKED):
        with transaction(db.sessions) as s:
            s.execute(
                update(models.Officer).where(models.Officer.id == parties["officer"].id).values(status=status)
            )
        r = client.post("/api/v1/auth/token", json=officer_creds(parties))
        assert r.status_code == 403 and r.json()["error"]["code"] == "account_inactive"
        assert client.get("/api/v1/lots/T-NONE-0001", headers=headers).status_code == 401
    # A wrong password for a revoked officer is still just wrong credentials: nothing is revealed.
    r = client.post("/api/v1/auth/token", json={**officer_creds(parties), "password": "guess"})
    assert r.status_code == 401


def test_malformed_sign_in_is_a_json_422(client):
    for body in ({"phone": "0811111111"}, {"username": "x"}, {"phone": "0811111111", "pin": "1234", "x": 1}):
        r = client.post("/api/v1/auth/token", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"


# --- one event --------------------------------------------------------------------------------------------


def test_a_farmer_records_events_with_the_actor_taken_from_the_token(db, client):
    headers = token(client, FARMER_1)
    r = client.post("/api/v1/events", json=planting(), headers=headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "planting" and body["lots"] == ["T-API-0001"] and body["created"] is True
    with transaction(db.sessions) as s:
        row = s.get(models.Event, uuid.UUID(body["event_id"]))
        assert row is not None and row.actor == "F-0001" and row.hash == body["hash"]
        assert f"{ID_BASE}/party/F-0001" in row.body
    r = client.post("/api/v1/events", json={**harvest(), "actor": "F-0002"}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "actor_not_allowed"
    assert client.post("/api/v1/events", json=harvest()).status_code == 401


def test_a_farmer_cannot_write_for_another_farmers_plot_or_lot(db, client):
    mine = token(client, FARMER_1)
    theirs = token(client, FARMER_2)
    r = client.post("/api/v1/events", json=planting(plot="PLOT-T-01"), headers=theirs)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_plot"
    assert client.post("/api/v1/events", json=planting(), headers=mine).status_code == 201
    # F-0002 may not harvest F-0001's lot even naming their own plot, nor grade it.
    r = client.post("/api/v1/events", json=harvest(plot="PLOT-T-02"), headers=theirs)
    assert r.status_code == 403
    grading = {
        "kind": "grading",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(19).isoformat(),
        "place": {"id": "PH-T"},
        "lot_code": "T-API-0001",
        "grade": "A",
        "quantity": {"value": "1", "uom": "KGM"},
        "disposition": "conformant",
    }
    r = client.post("/api/v1/events", json=grading, headers=theirs)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_lot"
    assert count(db, models.Event) == 1


def test_an_officer_writes_for_lots_of_their_own_authority(db, client, parties):
    farmer = token(client, FARMER_1)
    officer = token(client, officer_creds(parties))
    assert client.post("/api/v1/events", json=planting(), headers=farmer).status_code == 201
    r = client.post("/api/v1/events", json=harvest(), headers=officer)
    assert r.status_code == 201, r.text
    with transaction(db.sessions) as s:
        row = s.get(models.Event, uuid.UUID(r.json()["event_id"]))
        assert row is not None and row.actor == f"OFF-{parties['officer'].id:04d}"
    with transaction(db.sessions) as s:  # the lot moved to another authority: no longer theirs
        other = models.Authority(
            code="LAO-OTHER", name_th="อบต.อื่น", name_en="Other SAO", district_th="-", province_th="-"
        )
        s.add(other)
        s.flush()
        s.execute(update(models.Lot).where(models.Lot.code == "T-API-0001").values(authority_id=other.id))
    r = client.post("/api/v1/events", json=harvest(kg="5"), headers=officer)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_lot"


@pytest.mark.parametrize("kind", ["certification", "revocation"])
def test_certification_kinds_are_refused_here(db, client, parties, kind):
    headers = token(client, officer_creds(parties))
    body = {
        "kind": kind,
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(1).isoformat(),
        "place": {"id": "LAO-T"},
        "lot_code": "T-API-0001",
        "cert_id": "0x" + "ab" * 32,
        "reason": "ทดสอบ",
    }
    r = client.post("/api/v1/events", json=body, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "kind_not_allowed"
    assert count(db, models.Event) == 0


def test_an_idempotent_resend_is_200_with_the_same_hash_and_a_changed_one_409(db, client):
    headers = token(client, FARMER_1)
    event = planting()
    first = client.post("/api/v1/events", json=event, headers={**headers, "Idempotency-Key": "k-1"})
    assert first.status_code == 201
    again = client.post("/api/v1/events", json=event, headers={**headers, "Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json()["hash"] == first.json()["hash"] and again.json()["created"] is False
    changed = client.post(
        "/api/v1/events", json={**event, "area_rai": "3"}, headers={**headers, "Idempotency-Key": "k-1"}
    )
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "event_conflict"
    reused = client.post(
        "/api/v1/events",
        json=planting(lot="T-API-0002"),
        headers={**headers, "Idempotency-Key": "k-1"},
    )
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_conflict"
    assert count(db, models.Event) == 1 and count(db, models.Outbox) == 1


def test_float_style_numbers_are_refused_and_decimal_numbers_kept_exact(db, client):
    headers = token(client, FARMER_1)
    assert client.post("/api/v1/events", json=planting(), headers=headers).status_code == 201
    for value in ("1.25e2", "NaN", "Infinity"):
        raw = json.dumps(harvest()).replace('"1000"', value)
        r = client.post(
            "/api/v1/events", content=raw, headers={**headers, "Content-Type": "application/json"}
        )
        assert r.status_code == 422, (value, r.text)
    # A plain JSON number is read as an exact decimal, not through a binary float.
    raw = json.dumps(harvest()).replace('"1000"', "999.125")
    r = client.post("/api/v1/events", content=raw, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    with transaction(db.sessions) as s:
        row = s.get(models.Event, uuid.UUID(r.json()["event_id"]))
        assert row is not None and '"quantity":999.125,' in row.body
    r = client.post("/api/v1/events", content=b"{not json", headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"


def test_a_body_over_one_mebibyte_is_413_json(client):
    headers = token(client, FARMER_1)
    big = json.dumps({**planting(), "note": "ก" * (1024 * 1024)})
    r = client.post("/api/v1/events", content=big, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


# --- batch ------------------------------------------------------------------------------------------------


def test_a_batch_is_all_or_nothing_and_names_every_bad_item(db, client):
    headers = token(client, FARMER_1)
    # One event first, so the identifier base is already recorded and the batch's first write is its own.
    assert client.post("/api/v1/events", json=planting(lot="T-API-0100"), headers=headers).status_code == 201
    good = [planting(), harvest()]
    bad_quantity = harvest(kg="-5")
    someone_elses = planting(lot="T-API-0009", plot="PLOT-T-02")
    r = client.post(
        "/api/v1/events/batch", json={"events": [*good, bad_quantity, someone_elses]}, headers=headers
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_batch"
    assert [(i["index"], i["code"]) for i in error["items"]] == [(2, "invalid_event"), (3, "not_your_plot")]
    # Nothing of the batch was stored: not the two good events, their lot, nor their outbox rows.
    assert count(db, models.Event) == 1 and count(db, models.Lot) == 1 and count(db, models.Outbox) == 1
    ok = client.post("/api/v1/events/batch", json={"events": good}, headers=headers)
    assert ok.status_code == 201, ok.text
    assert [e["kind"] for e in ok.json()["events"]] == ["planting", "harvest"]
    assert count(db, models.Event) == 3
    # Resending the same batch matches by event_id: stored as before, nothing doubled.
    again = client.post("/api/v1/events/batch", json={"events": good}, headers=headers)
    assert again.status_code == 200 and [e["created"] for e in again.json()["events"]] == [False, False]
    assert count(db, models.Event) == 3


def test_a_batch_refused_only_for_rights_is_403_and_limits_are_enforced(db, client):
    headers = token(client, FARMER_2)
    r = client.post("/api/v1/events/batch", json={"events": [planting()]}, headers=headers)
    assert r.status_code == 403 and r.json()["error"]["items"][0]["index"] == 0
    for body in ({"events": []}, {"events": [planting()] * 501}, {"items": []}, []):
        r = client.post("/api/v1/events/batch", json=body, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_batch"
    assert count(db, models.Event) == 0


# --- lot --------------------------------------------------------------------------------------------------


def test_a_lot_shows_its_events_and_their_anchoring_without_personal_data(db, client, registry):
    farmer = token(client, FARMER_1)
    client.post("/api/v1/events/batch", json={"events": [planting(), harvest()]}, headers=farmer)
    reader = token(client, FARMER_2)  # any signed-in party may read
    r = client.get("/api/v1/lots/T-API-0001", headers=reader)
    assert r.status_code == 200
    lot = r.json()
    assert lot["product"] == {"th": "ผักอินทรีย์", "en": "Organic vegetables"} and lot["status"] == "pending"
    assert [e["kind"] for e in lot["events"]] == ["planting", "harvest"]
    assert all(
        e["anchor"] == {"status": "pending", "block_number": None, "tx_hash": None, "block_time": None}
        for e in lot["events"]
    )
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    lot = client.get("/api/v1/lots/t-api-0001", headers=reader).json()
    assert lot["status"] == "anchored"
    with transaction(db.sessions) as s:
        batch = s.scalars(select(models.Batch)).one()
        hashes = [s.get(models.Event, uuid.UUID(e["event_id"])).hash for e in lot["events"]]
    assert [e["hash"] for e in lot["events"]] == hashes
    for e in lot["events"]:
        assert e["anchor"]["status"] == "anchored"
        assert e["anchor"]["block_number"] == batch.block_number and e["anchor"]["tx_hash"] == batch.tx_hash
    text = r.text + json.dumps(lot)
    assert "0811111111" not in text and "สมพร" not in text and "F-0001" not in text
    r = client.get("/api/v1/lots/T-NOPE-0001", headers=reader)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_lot"


def test_the_openapi_document_lists_every_endpoint_and_the_batch_rule(client):
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert "post" in paths["/api/v1/auth/token"]
    assert "post" in paths["/api/v1/events"] and "post" in paths["/api/v1/events/batch"]
    assert "get" in paths["/api/v1/lots/{lot_code}"]
    assert "all or nothing" in paths["/api/v1/events/batch"]["post"]["description"]
    assert "Idempotency-Key" in {p["name"] for p in paths["/api/v1/events"]["post"]["parameters"]}
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
