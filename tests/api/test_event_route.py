"""``POST /api/v1/events`` runs its whole unit of work (authenticate, record, commit) in one call on one
worker thread instead of through ``SessionDep`` and ``CurrentPrincipal``: these check that it keeps their
rules. The token is judged before the body, by the very next request after it stops being valid (nothing
about a token is cached), and the answer is sent only after the commit, so a failed commit is never
acknowledged."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from factories import ID_BASE, days_ago, seed_parties
from traceability.config import Settings
from traceability.domain.states import PartyStatus
from traceability.main import create_app
from traceability.services.auth import sign_out
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

FARMER_1 = {"phone": "0811111111", "pin": "1234"}  # F-0001, owns PLOT-T-01


class CommitFailingRuntime(Runtime):
    """The app's resources, but every commit fails while ``failing`` is set (as a lost database would)."""

    failing = False

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with super().transaction() as session:
            if self.failing:
                event.listen(session, "before_commit", _refuse_commit)
            yield session


def _refuse_commit(_session: Session) -> None:
    raise ConnectionError("the database went away at commit")


@pytest.fixture
def parties(db, registry):
    return seed_parties(db.sessions, registry, with_officer=True)


@pytest.fixture
def runtime(db, anvil, tmp_path, parties) -> CommitFailingRuntime:
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    return CommitFailingRuntime(settings, _engine=db.engine)


@pytest.fixture
def client(runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as c:
        yield c


def bearer(client: TestClient, creds: dict[str, str]) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json=creds)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def planting(lot: str, plot: str = "PLOT-T-01") -> dict[str, Any]:
    return {
        "kind": "planting",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(60).isoformat(),
        "place": {"id": plot},
        "lot_code": lot,
        "plot_id": plot,
        "crop": "organic-veg",
        "area_rai": "2.5",
    }


def events_stored(db) -> int:
    with transaction(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(models.Event)) or 0)


def test_the_token_is_judged_before_the_body(db, client):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = client.post("/api/v1/events", content=b"{not json", headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    r = client.post("/api/v1/events", content=b"{not json", headers=bearer(client, FARMER_1))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    assert events_stored(db) == 0


def test_a_signed_out_token_is_refused_by_the_next_request(db, client):
    headers = bearer(client, FARMER_1)
    assert client.post("/api/v1/events", json=planting("T-RT-0001"), headers=headers).status_code == 201
    with transaction(db.sessions) as s:
        sign_out(s, headers["Authorization"].removeprefix("Bearer "))
    r = client.post("/api/v1/events", json=planting("T-RT-0002"), headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    assert events_stored(db) == 1


def test_a_revoked_officers_token_is_refused_by_the_next_request(db, client, parties):
    officer = parties["officer"]
    headers = bearer(client, {"username": officer.username, "password": "officer-password"})
    assert client.post("/api/v1/events", json=planting("T-RT-0003"), headers=headers).status_code == 201
    with transaction(db.sessions) as s:  # as `trace officer revoke` does, from another process
        s.execute(
            update(models.Officer).where(models.Officer.id == officer.id).values(status=PartyStatus.REVOKED)
        )
    r = client.post("/api/v1/events", json=planting("T-RT-0004"), headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    assert events_stored(db) == 1


def test_a_refused_event_leaves_nothing_and_a_retry_is_answered_from_the_store(db, client):
    headers = bearer(client, FARMER_1)
    r = client.post("/api/v1/events", json=planting("T-RT-0005", plot="PLOT-T-02"), headers=headers)
    assert r.status_code == 403
    first = planting("T-RT-0005")
    created = client.post("/api/v1/events", json=first, headers=headers)
    assert created.status_code == 201 and created.json()["created"] is True
    again = client.post("/api/v1/events", json=first, headers=headers)
    assert again.status_code == 200 and again.json()["hash"] == created.json()["hash"]
    changed = client.post("/api/v1/events", json={**first, "crop": "rice-hom-mali"}, headers=headers)
    assert changed.status_code == 409
    assert events_stored(db) == 1


def test_an_event_whose_commit_fails_is_never_acknowledged(db, client, runtime):
    headers = bearer(client, FARMER_1)
    runtime.failing = True
    event_body = planting("T-RT-0006")
    r = client.post("/api/v1/events", json=event_body, headers=headers)
    assert r.status_code == 500
    assert events_stored(db) == 0
    runtime.failing = False  # the client's retry, once the database is back, records it once
    assert client.post("/api/v1/events", json=event_body, headers=headers).status_code == 201
    assert events_stored(db) == 1


def test_writing_units_of_work_take_turns_on_sqlite_only(db, runtime):
    """On SQLite the route's units of work queue in the process instead of polling for the database's one
    write lock; on PostgreSQL (row locks) they run side by side."""
    first_inside, release, second_inside = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with runtime.write_transaction():
            first_inside.set()
            release.wait(10)

    def second() -> None:
        with runtime.write_transaction():
            second_inside.set()

    holder = threading.Thread(target=first)
    holder.start()
    assert first_inside.wait(10)
    waiter = threading.Thread(target=second)
    waiter.start()
    side_by_side = second_inside.wait(0.5)
    release.set()
    holder.join(10)
    waiter.join(10)
    assert second_inside.is_set()
    assert side_by_side is (db.dialect == "postgresql")
