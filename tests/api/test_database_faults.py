"""The database gone for a moment, locked, or full: a clear 503/507, nothing half-written, then recovery.

* PostgreSQL unavailable: a real ``trace serve`` reaches PostgreSQL through a TCP proxy of the test's own,
  which drops every connection and then refuses new ones (the machine's PostgreSQL keeps running for
  everyone else). Recording answers 503 JSON quickly, pages a 503 page in Thai and English, ``/readyz`` 503
  naming the database, ``/healthz`` 200; once the proxy forwards again the same process records again.
* SQLite locked: another connection holds the write lock past the busy timeout: 503 ``database_busy``.
* SQLite full: ``PRAGMA max_page_count`` caps the file, so the real driver raises SQLITE_FULL ("database or
  disk is full"): 507 ``storage_full``, a failed batch stores none of its events, and recording works again
  once the cap is lifted.

After each: every acknowledged event is stored exactly once with its outbox row, every refused one is absent
until its retry (same ``Idempotency-Key`` / ``event_id``) succeeds, each lot's hash chain is unbroken, and
``reconcile`` finds nothing.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from factories import FARMER_1, ID_BASE, days_ago, seed_parties
from traceability.config import Settings
from traceability.domain.events import lots_touched
from traceability.domain.lineage import LedgerEntry, chain_links
from traceability.main import create_app
from traceability.services.bench_web import _wait_ready
from traceability.services.database_errors import as_client_error
from traceability.services.history import parsed_event
from traceability.services.ledger import reconcile
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import make_engine

# A request to a database that does not answer must be answered well within this (the connect timeout is
# 10 s); it bounds a hang, it does not measure speed.
ANSWER_WITHIN_S = 60
RECOVERY_DEADLINE_S = 60
TRACE = str(Path(sys.executable).with_name("trace"))


# --- a TCP proxy the test can cut ---------------------------------------------------------------------------


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``. :meth:`cut` closes every open connection and, until
    :meth:`restore`, closes each new one as soon as it is accepted (PostgreSQL gone for a moment) or, with
    ``stall``, holds it open and never answers (a network that drops packets)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._stall = False
        self._held: list[socket.socket] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed by stop()
            with self._lock:
                refuse, stall = self._cut, self._stall
                if refuse and stall:
                    self._held.append(client)
                    continue
            if refuse:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._open.discard(s)
        for s in socks:
            _close(s)

    def cut(self, *, stall: bool = False) -> None:
        with self._lock:
            self._cut, self._stall = True, stall
            victims = list(self._open)
        self._drop(*victims)

    def restore(self) -> None:
        with self._lock:
            self._cut = self._stall = False
            held, self._held = self._held, []
        for s in held:
            _close(s)

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self.restore()  # closes the held ones
        _close(self.listener)
        self._thread.join(timeout=10)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


# --- events and checks shared by every database -------------------------------------------------------------


def _planting(lot: str) -> dict[str, Any]:
    return {"kind": "planting", "event_id": str(uuid.uuid4()), "event_time": days_ago(60).isoformat(),
            "place": {"id": "PLOT-T-01"}, "lot_code": lot, "plot_id": "PLOT-T-01", "crop": "organic-veg",
            "area_rai": "0.5"}  # fmt: skip


def _harvest(lot: str) -> dict[str, Any]:
    return {"kind": "harvest", "event_id": str(uuid.uuid4()), "event_time": days_ago(20).isoformat(),
            "place": {"id": "PLOT-T-01"}, "lot_code": lot, "plot_id": "PLOT-T-01", "crop": "organic-veg",
            "quantity": {"value": "400", "uom": "KGM"}}  # fmt: skip


def _grading(lot: str, n: int) -> dict[str, Any]:
    return {"kind": "grading", "event_id": str(uuid.uuid4()), "event_time": days_ago(19).isoformat(),
            "place": {"id": "PH-T"}, "lot_code": lot, "grade": f"เกรด A รอบ {n}",
            "quantity": {"value": "1", "uom": "KGM"}, "disposition": "conformant"}  # fmt: skip


def _key(event: dict[str, Any]) -> dict[str, str]:
    return {"Idempotency-Key": event["event_id"]}


def _assert_error(r: Any, status: int, code: str) -> None:
    """``r`` is ``status`` with the JSON error body ``code``: never a 500, never a traceback."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/json"), r.headers
    error = r.json()["error"]
    assert error["code"] == code and error["message"], error
    assert "Traceback" not in r.text and "sqlalchemy" not in r.text.lower()


def _stored_ids(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return {str(i) for i in s.scalars(select(models.Event.id))}


def _assert_ledger_whole(engine: Engine, acknowledged: set[str], registry: Any) -> None:
    """Exactly the acknowledged events, each once with one outbox row; every lot one unbroken hash chain
    (seq 1..n, every event linked to the lot's previous one, no fork); ``reconcile`` finds nothing."""
    with Session(engine) as s:
        rows = s.scalars(select(models.Event)).all()
        assert {str(r.id) for r in rows} == acknowledged
        outbox = s.scalars(select(models.Outbox.event_id)).all()
        assert sorted(str(i) for i in outbox) == sorted(acknowledged)  # one each, none orphaned
        lots = set(s.scalars(select(models.EventLot.lot_code).distinct()))
        for lot in lots:
            seqs = s.scalars(
                select(models.EventLot.seq)
                .where(models.EventLot.lot_code == lot)
                .order_by(models.EventLot.seq)
            ).all()
            assert list(seqs) == list(range(1, len(seqs) + 1)), lot
        entries = []
        for row in rows:
            entry = parsed_event(row)
            assert entry is not None, row.id
            entries.append(LedgerEntry(row.hash, entry))
        assert {lot for e in entries for lot in lots_touched(e.event)} == lots
        links = chain_links(entries, lots)
        assert not links.findings, links.findings
        problems, _counts = reconcile(s, registry)
        assert not problems, problems


def _until(
    what: Callable[[], Any], ok: Callable[[Any], bool], deadline_s: float, pause_s: float = 0.5
) -> Any:
    """``what()`` again until ``ok`` of its answer, or fail at the deadline (never an assumed speed)."""
    deadline = time.monotonic() + deadline_s
    while True:
        answer = what()
        if ok(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(pause_s)


# --- PostgreSQL unavailable for a moment --------------------------------------------------------------------


@pytest.fixture
def proxied_server(
    db, anvil, registry, tmp_path
) -> Iterator[tuple[str, CuttableProxy, subprocess.Popen[bytes]]]:
    """``trace serve`` whose database URL goes through a :class:`CuttableProxy` to the test's schema."""
    seed_parties(db.sessions, registry)
    proxy = CuttableProxy(("127.0.0.1", 5432))
    assert "@127.0.0.1:5432/" in db.url, db.url
    env = {
        **os.environ,
        "TRACE_VAR_DIR": str(tmp_path),
        "TRACE_DATABASE_URL": db.url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"),
        "TRACE_RPC_URL": anvil.rpc_url,
        "TRACE_CONTRACT_ADDRESS": registry.address,
        "TRACE_ID_BASE": ID_BASE,
        "TRACE_PUBLIC_RATE_PER_MIN": "1000000",
    }
    port = _free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [TRACE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc)
        yield base, proxy, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # its connections must go before the test's schema is dropped
            proc.wait(timeout=20)
        proxy.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_postgres_gone_for_a_moment_is_503_then_the_same_server_records_again(db, registry, proxied_server):
    base, proxy, proc = proxied_server
    token = requests.post(f"{base}/api/v1/auth/token", json=FARMER_1, timeout=30).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    acknowledged: set[str] = set()

    def post_one(event: dict[str, Any]) -> requests.Response:
        return requests.post(f"{base}/api/v1/events", json=event, headers={**auth, **_key(event)},
                             timeout=ANSWER_WITHIN_S)  # fmt: skip

    def post_batch(events: list[dict[str, Any]]) -> requests.Response:
        return requests.post(f"{base}/api/v1/events/batch", json={"events": events}, headers=auth,
                             timeout=ANSWER_WITHIN_S)  # fmt: skip

    # Before: one lot recorded event by event, another by a batch.
    for ev in (_planting("T-DBF-A"), _harvest("T-DBF-A")):
        assert post_one(ev).status_code == 201
        acknowledged.add(ev["event_id"])
    first_batch = [_planting("T-DBF-B"), _harvest("T-DBF-B")]
    assert post_batch(first_batch).status_code == 201
    acknowledged.update(e["event_id"] for e in first_batch)

    proxy.cut()
    refused_one = _grading("T-DBF-A", 1)
    refused_batch = [_grading("T-DBF-B", 1), _grading("T-DBF-B", 2)]
    for _ in range(3):  # the first finds its pooled connection dead; the next find no database to connect to
        _assert_error(post_one(refused_one), 503, "database_unavailable")
        r = post_batch(refused_batch)
        _assert_error(r, 503, "database_unavailable")
        assert int(r.headers["Retry-After"]) > 0
    _assert_error(requests.get(f"{base}/api/v1/lots/T-DBF-A", headers=auth, timeout=ANSWER_WITHIN_S),
                  503, "database_unavailable")  # fmt: skip
    for lang, words in (("th", "กรุณาลองใหม่"), ("en", "Please try again")):
        page = requests.get(f"{base}/p/T-DBF-A", params={"lang": lang}, headers={"Accept": "text/html"},
                            timeout=ANSWER_WITHIN_S)  # fmt: skip
        assert page.status_code == 503, page.text[:300]
        assert page.headers["content-type"].startswith("text/html")
        assert words in page.text and f'lang="{lang}"' in page.text
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]  # a page like any other
    as_json = {"Accept": "application/ld+json"}  # an EPCIS client of the resolver reads JSON, not a page
    _assert_error(requests.get(f"{base}/lot/T-DBF-A", headers=as_json, timeout=ANSWER_WITHIN_S),
                  503, "database_unavailable")  # fmt: skip
    ready = requests.get(f"{base}/readyz", timeout=ANSWER_WITHIN_S)
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error"), ready.text
    assert ready.json()["checks"]["chain"]["chain_id"] == 31337  # only the database is named, not the chain
    assert requests.get(f"{base}/healthz", timeout=ANSWER_WITHIN_S).status_code == 200  # the process lives
    _assert_error(requests.get(f"{base}/metrics", timeout=ANSWER_WITHIN_S), 503, "database_unavailable")
    # Nothing of a refused request was stored (read past the proxy, straight from PostgreSQL).
    assert _stored_ids(db.engine) == acknowledged

    proxy.restore()
    # The same process, not restarted: the same requests with the same keys are now recorded, once.
    r = _until(lambda: post_one(refused_one), lambda r: r.status_code != 503, RECOVERY_DEADLINE_S)
    assert r.status_code == 201, r.text
    acknowledged.add(refused_one["event_id"])
    r = post_batch(refused_batch)
    assert r.status_code == 201 and all(e["created"] for e in r.json()["events"]), r.text
    acknowledged.update(e["event_id"] for e in refused_batch)
    assert post_one(refused_one).status_code == 200  # a retry after success: the stored event, not a second
    later = _grading("T-DBF-A", 2)
    assert post_one(later).status_code == 201
    acknowledged.add(later["event_id"])
    assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
    assert requests.get(f"{base}/p/T-DBF-A", params={"lang": "en"}, timeout=60).status_code == 200
    assert proc.poll() is None

    _assert_ledger_whole(db.engine, acknowledged, registry)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_postgres_that_never_answers_is_503_within_the_connect_timeout(db, registry, proxied_server):
    """Connections accepted and never answered (packets dropped): without a connect timeout libpq would wait
    for ever and so would the client; with it, 503 JSON, and recording resumes once the network is back."""
    base, proxy, proc = proxied_server
    token = requests.post(f"{base}/api/v1/auth/token", json=FARMER_1, timeout=30).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    planting = _planting("T-DBN-A")
    r = requests.post(f"{base}/api/v1/events", json=planting, headers={**auth, **_key(planting)}, timeout=60)
    assert r.status_code == 201, r.text

    proxy.cut(stall=True)
    harvest = _harvest("T-DBN-A")
    for _ in range(2):  # the pooled connection found dead, then a new one that never answers
        r = requests.post(f"{base}/api/v1/events", json=harvest, headers={**auth, **_key(harvest)},
                          timeout=ANSWER_WITHIN_S)  # fmt: skip
        _assert_error(r, 503, "database_unavailable")
    ready = requests.get(f"{base}/readyz", timeout=ANSWER_WITHIN_S)
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error"), ready.text
    assert _stored_ids(db.engine) == {planting["event_id"]}

    proxy.restore()
    r = _until(
        lambda: requests.post(
            f"{base}/api/v1/events", json=harvest, headers={**auth, **_key(harvest)}, timeout=ANSWER_WITHIN_S
        ),
        lambda r: r.status_code != 503,
        RECOVERY_DEADLINE_S,
    )
    assert r.status_code == 201, r.text
    assert proc.poll() is None
    _assert_ledger_whole(db.engine, {planting["event_id"], harvest["event_id"]}, registry)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_postgres_cut_under_concurrent_recording_loses_nothing_and_stores_nothing_twice(
    db, registry, proxied_server
):
    """Clients record while the proxy is cut and restored: a request in flight at the cut may have committed
    or not (the answer is lost either way); each client resends every 503 or broken connection with the same
    key until it is acknowledged. In the end each event is stored exactly once and every chain is whole."""
    base, proxy, _proc = proxied_server
    token = requests.post(f"{base}/api/v1/auth/token", json=FARMER_1, timeout=30).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    lots = [f"T-DBC-{n}" for n in range(3)]
    acknowledged: set[str] = set()
    for lot in lots:
        batch = [_planting(lot), _harvest(lot)]
        assert requests.post(f"{base}/api/v1/events/batch", json={"events": batch}, headers=auth,
                             timeout=60).status_code == 201  # fmt: skip
        acknowledged.update(e["event_id"] for e in batch)

    baseline = len(acknowledged)
    stop = threading.Event()
    refused_by: set[str] = set()  # the lots whose client has met a 503
    acked_after: dict[str, int] = dict.fromkeys(lots, 0)  # acknowledged since the proxy was restored
    restored = threading.Event()
    failures: list[Any] = []
    lock = threading.Lock()

    def record(lot: str, event: dict[str, Any]) -> bool:
        """Send ``event`` until acknowledged (True), resending after a 503 or a broken connection."""
        deadline = time.monotonic() + 2 * RECOVERY_DEADLINE_S
        while time.monotonic() < deadline:
            try:
                r = requests.post(f"{base}/api/v1/events", json=event, headers={**auth, **_key(event)},
                                  timeout=ANSWER_WITHIN_S)  # fmt: skip
            except requests.ConnectionError:
                time.sleep(0.2)
                continue
            if r.status_code in (200, 201):
                return True
            if r.status_code != 503 or r.json()["error"]["code"] != "database_unavailable":
                failures.append((lot, r.status_code, r.text[:300]))
                return False
            with lock:
                refused_by.add(lot)
            time.sleep(0.2)
        failures.append((lot, "never acknowledged", event["event_id"]))
        return False

    def client(lot: str) -> None:
        try:
            n = 0
            while not stop.is_set():
                event = _grading(lot, n)
                n += 1
                if not record(lot, event):
                    return
                with lock:
                    acknowledged.add(event["event_id"])
                    if restored.is_set():
                        acked_after[lot] += 1
        except Exception as exc:  # noqa: BLE001 - reported below with its lot
            failures.append((lot, repr(exc)))

    threads = [threading.Thread(target=client, args=(lot,)) for lot in lots]
    for t in threads:
        t.start()
    try:
        # Cut once some gradings are in, so requests are in flight at the cut (whatever the machine's speed);
        # restore once every client has met the outage; stop once every client has recorded after it.
        _until(lambda: _count(db.engine), lambda n: n >= baseline + 3, 60, pause_s=0.05)
        proxy.cut()
        _until(lambda: len(refused_by), lambda n: n == len(lots) or failures, 60, pause_s=0.1)
        with lock:
            restored.set()
        proxy.restore()
        _until(lambda: min(acked_after.values()), lambda n: n >= 2 or failures, 2 * RECOVERY_DEADLINE_S, 0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures
    assert refused_by == set(lots), refused_by  # every client met the outage
    assert min(acked_after.values()) >= 2, acked_after  # and recorded again after it
    _assert_ledger_whole(db.engine, acknowledged, registry)


def _count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(models.Event)) or 0)


# --- SQLite: locked past the busy timeout, and full ---------------------------------------------------------


BUSY_TIMEOUT_MS = 300


@pytest.fixture
def sqlite_app(db, anvil, registry, tmp_path) -> Iterator[tuple[TestClient, Engine, dict[str, int | None]]]:
    """The app in process over its own engine on the test's SQLite file, with two test-only connection hooks:
    a short busy timeout (the product waits 30 s for a lock) and, while ``cap["pages"]`` is set, a
    ``max_page_count`` on every connection handed out."""
    seed_parties(db.sessions, registry)
    engine = make_engine(db.url)
    cap: dict[str, int | None] = {"pages": None}

    @event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_conn: Any, _record: Any) -> None:  # after the product's own pragmas
        dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    @event.listens_for(engine, "checkout")
    def _page_cap(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if cap["pages"] is not None:
            dbapi_conn.execute(f"PRAGMA max_page_count={cap['pages']}")

    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    with TestClient(
        create_app(runtime=Runtime(settings, _engine=engine)), raise_server_exceptions=False
    ) as c:
        yield c, engine, cap
    engine.dispose()


def _bearer(client: TestClient) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json=FARMER_1)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_locked_past_the_busy_timeout_is_503_then_records_again(db, registry, sqlite_app):
    client, engine, _cap = sqlite_app
    auth = _bearer(client)
    acknowledged: set[str] = set()
    for event_ in (_planting("T-DBL-A"), _harvest("T-DBL-A")):
        assert client.post("/api/v1/events", json=event_, headers={**auth, **_key(event_)}).status_code == 201
        acknowledged.add(event_["event_id"])

    path = db.url.split("///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process's long write: the lock held past the busy timeout
        refused_one = _grading("T-DBL-A", 1)
        r = client.post("/api/v1/events", json=refused_one, headers={**auth, **_key(refused_one)})
        _assert_error(r, 503, "database_busy")
        assert int(r.headers["Retry-After"]) > 0
        refused_batch = [_grading("T-DBL-A", 2), _planting("T-DBL-B"), _harvest("T-DBL-B")]
        _assert_error(client.post("/api/v1/events/batch", json={"events": refused_batch}, headers=auth),
                      503, "database_busy")  # fmt: skip
        assert client.get("/healthz").status_code == 200
    finally:
        holder.rollback()
        holder.close()
    assert _stored_ids(engine) == acknowledged  # nothing of the refused requests

    r = client.post("/api/v1/events", json=refused_one, headers={**auth, **_key(refused_one)})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/events/batch", json={"events": refused_batch}, headers=auth)
    assert r.status_code == 201, r.text
    acknowledged.add(refused_one["event_id"])
    acknowledged.update(e["event_id"] for e in refused_batch)
    _assert_ledger_whole(engine, acknowledged, registry)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_sqlite_full_is_507_nothing_half_written_and_recording_resumes_when_space_is_freed(
    db, registry, sqlite_app
):
    client, engine, cap = sqlite_app
    auth = _bearer(client)
    acknowledged: set[str] = set()
    for event_ in (_planting("T-DBS-A"), _harvest("T-DBS-A")):
        assert client.post("/api/v1/events", json=event_, headers={**auth, **_key(event_)}).status_code == 201
        acknowledged.add(event_["event_id"])

    path = db.url.split("///", 1)[1]
    with sqlite3.connect(path, isolation_level=None) as raw:
        raw.execute("VACUUM")  # no free pages left to reuse: the next page the database needs must grow it
        unlimited = int(raw.execute("PRAGMA max_page_count").fetchone()[0])
        size = int(raw.execute("PRAGMA page_count").fetchone()[0])
    raw.close()
    cap["pages"] = size  # the disk is full from here on: the file may not grow by one page
    engine.dispose()  # drop connections made before the cap (the hook sets it on each checkout anyway)

    # Events one by one until the database is full: each is either recorded (it fitted in a page's free
    # space) or refused whole with 507.
    refused_one: dict[str, Any] | None = None
    for n in range(400):
        event_ = _grading("T-DBS-A", n)
        r = client.post("/api/v1/events", json=event_, headers={**auth, **_key(event_)})
        if r.status_code == 201:
            acknowledged.add(event_["event_id"])
            continue
        _assert_error(r, 507, "storage_full")
        refused_one = event_
        break
    assert refused_one is not None, "the database never filled up"
    refused_batch = [_planting("T-DBS-B"), _harvest("T-DBS-B"), *(_grading("T-DBS-B", n) for n in range(20))]
    _assert_error(client.post("/api/v1/events/batch", json={"events": refused_batch}, headers=auth),
                  507, "storage_full")  # fmt: skip
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/lots/T-DBS-A", headers=auth).status_code == 200  # reading still works
    assert _stored_ids(engine) == acknowledged  # neither the refused event nor any of the batch

    cap["pages"] = unlimited  # space freed
    r = client.post("/api/v1/events", json=refused_one, headers={**auth, **_key(refused_one)})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/events/batch", json={"events": refused_batch}, headers=auth)
    assert r.status_code == 201 and all(e["created"] for e in r.json()["events"]), r.text
    acknowledged.add(refused_one["event_id"])
    acknowledged.update(e["event_id"] for e in refused_batch)
    _assert_ledger_whole(engine, acknowledged, registry)


def test_postgres_disk_full_is_storage_full_and_other_operational_errors_are_unavailable():
    """PostgreSQL's disk_full (SQLSTATE 53100) cannot be caused here without filling the machine's disk: the
    driver's own exception, wrapped as SQLAlchemy wraps it, must map to 507 as SQLite's SQLITE_FULL does."""
    disk_full = psycopg.errors.DiskFull("could not extend file")
    full = as_client_error(OperationalError("INSERT ...", {}, disk_full))
    assert (full.status_code, full.code) == (507, "storage_full")
    gone = as_client_error(OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")))
    assert (gone.status_code, gone.code, gone.headers) == (503, "database_unavailable", {"Retry-After": "5"})
    assert "connection refused" not in gone.message and "SELECT" not in gone.message  # nothing internal shown
