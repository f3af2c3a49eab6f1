"""Two `trace serve` processes behind one PostgreSQL: clients recording through both at once, every request
sent twice (once to each server, as a load balancer's retry would), lose nothing and store nothing twice."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from factories import FARMER_1, ID_BASE, days_ago, seed_parties
from traceability.chain.devnode import free_port
from traceability.services.bench_web import _wait_ready
from traceability.store import models
from traceability.store.database import transaction

LOTS = [f"T-TWO-{n:04d}" for n in range(6)]
SHARED = "T-TWO-SHAR"  # every client appends to this one too: the servers race for its next sequence number
GRADINGS_PER_CLIENT = 8


@pytest.fixture
def servers(db, anvil, registry, tmp_path) -> Iterator[list[str]]:
    seed_parties(db.sessions, registry)
    env = {
        **os.environ,
        "TRACE_VAR_DIR": str(tmp_path),
        "TRACE_DATABASE_URL": db.url,
        "TRACE_RPC_URL": anvil.rpc_url,
        "TRACE_CONTRACT_ADDRESS": registry.address,
        "TRACE_ID_BASE": ID_BASE,
        "TRACE_PUBLIC_RATE_PER_MIN": "1000000",
    }
    trace = Path(sys.executable).with_name("trace")
    procs, bases = [], []
    try:
        for n in range(2):
            port = free_port()
            with (tmp_path / f"serve-{n}.log").open("wb") as log:  # the child keeps its own handle
                procs.append(
                    subprocess.Popen(
                        [str(trace), "serve", "--host", "127.0.0.1", "--port", str(port)],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            _wait_ready(base, proc)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()  # its connections must go before the test's schema is dropped
                proc.wait(timeout=20)


def _send(bases: list[str], first: int, event: dict[str, Any], headers: dict[str, str]) -> list[int]:
    """Post ``event`` to one server, then the very same request to the other; a lost race for the lot's next
    sequence number (409 ``chain_conflict``) is retried, as the API asks. Returns the final statuses."""
    statuses = []
    for base in (bases[first], bases[1 - first]):
        for _ in range(50):
            r = requests.post(
                f"{base}/api/v1/events",
                json=event,
                headers={**headers, "Idempotency-Key": event["event_id"]},
                timeout=60,
            )
            if r.status_code == 409 and r.json()["error"]["code"] == "chain_conflict":
                continue
            break
        statuses.append(r.status_code)
    return statuses


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_servers_on_one_postgres_lose_nothing_and_store_nothing_twice(db, servers):
    bases = servers
    token = requests.post(f"{bases[0]}/api/v1/auth/token", json=FARMER_1, timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}  # a token issued by one server is good on the other
    sent: list[str] = []

    def planted(lot: str, rai: str) -> None:
        common = {"place": {"id": "PLOT-T-01"}, "plot_id": "PLOT-T-01", "crop": "organic-veg"}
        planting = {"kind": "planting", "event_id": str(uuid.uuid4()), "event_time": days_ago(60).isoformat(),
                    "lot_code": lot, "area_rai": rai, **common}  # fmt: skip
        harvest = {"kind": "harvest", "event_id": str(uuid.uuid4()), "event_time": days_ago(20).isoformat(),
                   "lot_code": lot, "quantity": {"value": "300", "uom": "KGM"}, **common}  # fmt: skip
        for event in (planting, harvest):
            assert _send(bases, 0, event, headers) in ([201, 200], [200, 201]), event
            sent.append(event["event_id"])

    for lot in [*LOTS, SHARED]:
        planted(lot, "0.3")

    failures: list[Any] = []
    order = itertools.count()

    def client(n: int) -> None:
        try:
            for i in range(GRADINGS_PER_CLIENT):
                for lot in (LOTS[n], SHARED):
                    event = {
                        "kind": "grading",
                        "event_id": str(uuid.uuid4()),
                        "event_time": days_ago(19).isoformat(),
                        "place": {"id": "PH-T"},
                        "lot_code": lot,
                        "grade": f"เกรด A รอบ {i + 1}",
                        "quantity": {"value": "10", "uom": "KGM"},
                        "disposition": "conformant",
                    }
                    statuses = _send(bases, next(order) % 2, event, headers)
                    if sorted(statuses) != [200, 201]:
                        failures.append((event["event_id"], statuses))
                    sent.append(event["event_id"])
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's lot
            failures.append((n, repr(exc)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(LOTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not failures, failures[:5]

    with transaction(db.sessions) as s:
        stored = s.scalars(select(models.Event.id)).all()
        assert sorted(str(i) for i in stored) == sorted(sent)  # every acknowledged event, once
        pending = s.scalar(select(func.count()).select_from(models.Outbox))
        assert pending == len(sent)  # each queued for anchoring exactly once
        for lot in [*LOTS, SHARED]:
            on_lot = select(models.EventLot.seq).where(models.EventLot.lot_code == lot)
            seqs = s.scalars(on_lot.order_by(models.EventLot.seq)).all()
            expected = 2 + GRADINGS_PER_CLIENT * (len(LOTS) if lot == SHARED else 1)
            assert list(seqs) == list(range(1, expected + 1)), lot  # one unbroken chain, no gap, no fork
