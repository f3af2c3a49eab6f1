"""``trace soak``: many concurrent clients mixing recording, page views and verifies, then a ledger check.

Issue 10 asks for a bounded load test on loopback that ends with zero errors and nothing lost. The service is
stood up as ``trace bench`` stands it up (:class:`traceability.services.bench_load.Deployment`: a fresh Anvil
mining a block a second, a deployed TraceRegistry, a seeded database, ``trace serve`` and ``trace worker``
processes at their default settings), so what is soaked is what an operator runs. Two settings differ: the
per-client rate limits of the public pages and the importer API are lifted, because every soak client comes
from 127.0.0.1 with one importer key and a 429 would measure the limiter (tested on its own), not the service.

Each client is a thread with its own kept-alive connection and its own farmer (clients never race for one
lot's hash chain, as no two farmers share a lot), and loops until the duration is over, choosing by weight:

* ``record_single``: ``POST /api/v1/events`` with the event's id as its ``Idempotency-Key``;
* ``record_batch``: ``POST /api/v1/events/batch`` of 2 to 5 events;
* ``page_th`` / ``page_en``: ``GET /p/{lot}`` and ``GET /p/{lot}?lang=en``;
* ``verify``: ``GET /api/v1/lots/{lot}/verify`` with an importer key;
* ``fsma204`` / ``epcis``: the lot's FSMA 204 CSV or EPCIS document, occasionally.

Reads pick any lot some client has had acknowledged. The events are the bench's valid season (planting to
shipping, lot after lot), so every answer but 200/201 is an error, as is any connection error or timeout; a
recording request that met a connection error is sent again, same body and key, on a new connection (a
farmer's phone on a bad line does the same), so the error is counted and the event is not lost. Every client
makes each kind at least once, even if that takes it past the duration (a few requests).

After the load: wait (bounded) for the worker to anchor every event in the database, then :func:`check_ledger`
(every acknowledged event id in the database and in exactly one anchored batch; no event nobody was told
about) and :func:`traceability.services.ledger.reconcile` (hashes, roots, anchors on chain). ``ok`` is true
only with no error, no loss and a clean reconcile.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from traceability.config import Settings
from traceability.domain.states import BatchStatus, OutboxStatus
from traceability.errors import ConfigurationError
from traceability.services.apikeys import create_api_key
from traceability.services.bench_load import (
    DEFAULT_BLOCK_TIME_S,
    DEFAULT_POSTGRES_URL,
    Deployment,
    percentiles,
)
from traceability.services.ledger import reconcile
from traceability.store import models
from traceability.store.database import make_sessionmaker, transaction

KINDS: Final = ("record_single", "record_batch", "page_th", "page_en", "verify", "fsma204", "epcis")
WEIGHTS: Final = (30, 15, 20, 10, 15, 5, 5)
"""Recording is two fifths of the requests, the buyer's page three tenths, the importer's calls the rest."""
BATCH_EVENTS: Final = (2, 5)
RETRIES: Final = 3
"""Sends of a recording request after a connection error, on a new connection each time."""
REQUEST_TIMEOUT_S: Final = 60.0
DRAIN_TIMEOUT_S: Final = 180.0
"""How long the worker may take, once the load stops, to anchor what was recorded (default batch interval
5 s, 2 confirmations at a block a second: about 10 s on a quiet machine)."""
LIFTED_RATE: Final = "1000000"
KEPT: Final = 50
"""Errors and problems listed in the report (all are counted)."""
_EVENT_ID = re.compile(r'"event_id":"([0-9a-f-]{36})"')


@dataclass
class Tally:
    """What the clients did: requests, client-side seconds and errors by kind, and what the server
    acknowledged (event ids and the lots they touched). Shared by the client threads under ``lock``."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    error_list: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    lots: list[str] = field(default_factory=list)
    _lot_set: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str, message: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.error_list) < KEPT:
                self.error_list.append(f"{kind}: {message}")

    def answered(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.requests[kind] += 1
            self.seconds[kind].append(seconds)

    def acknowledge(self, answer: bytes) -> None:
        """Keep the event ids and lots of a 200/201 answer: what the server said it stored."""
        body = json.loads(answer)
        events = body["events"] if "events" in body else [body]
        with self.lock:
            for event in events:
                self.acknowledged.add(str(event["event_id"]))
                for lot in event["lots"]:
                    if lot not in self._lot_set:
                        self._lot_set.add(lot)
                        self.lots.append(lot)

    def any_lot(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(self.lots) if self.lots else None


@dataclass
class LedgerCheck:
    """The ledger against what the clients were told: ids missing, not anchored, anchored in several
    batches, or stored though never acknowledged."""

    acknowledged: int
    in_db: int
    anchored: int
    lost: list[str]
    unanchored: list[str]
    in_several_batches: list[str]
    extra: list[str]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unanchored or self.in_several_batches or self.extra)

    def problems(self) -> list[str]:
        found = [f"lost: acknowledged event {i} is not in the database" for i in self.lost]
        found += [f"unanchored: event {i} is in no anchored batch" for i in self.unanchored]
        found += [
            f"anchored twice: event {i} is in several anchored batches" for i in self.in_several_batches
        ]
        found += [f"extra: event {i} is stored but was never acknowledged" for i in self.extra]
        return found

    def to_json(self) -> dict[str, int]:
        return {
            "acknowledged": self.acknowledged,
            "in_db": self.in_db,
            "anchored": self.anchored,
            "lost": len(self.lost),
            "unanchored": len(self.unanchored),
            "in_several_batches": len(self.in_several_batches),
            "extra": len(self.extra),
        }


def check_ledger(session: Session, acknowledged: Collection[str]) -> LedgerCheck:
    """Every acknowledged event id in the database and in exactly one anchored batch, and no stored event
    that was not acknowledged (ids as lowercase UUID strings)."""
    stored = {str(i) for i in session.scalars(select(models.Event.id))}
    anchored_in = (
        select(models.BatchEvent.event_id, func.count())
        .join(models.Batch, models.Batch.id == models.BatchEvent.batch_id)
        .where(models.Batch.status == BatchStatus.ANCHORED)
        .group_by(models.BatchEvent.event_id)
    )
    batches = {str(i): int(n) for i, n in session.execute(anchored_in)}
    wanted = set(acknowledged)
    return LedgerCheck(
        acknowledged=len(wanted),
        in_db=len(stored),
        anchored=sum(1 for i in stored if batches.get(i) == 1),
        lost=sorted(wanted - stored),
        unanchored=sorted(i for i in stored if i not in batches),
        in_several_batches=sorted(i for i in stored if batches.get(i, 0) > 1),
        extra=sorted(stored - wanted),
    )


# --- the clients -------------------------------------------------------------------------------------------


class Client:
    """One soak client: a farmer's token and stream of events, a kept-alive connection, a seeded chooser."""

    def __init__(self, port: int, token: str, stream: Iterator[str], importer_key: str, seed: int) -> None:
        self.port = port
        self.stream = stream
        self.rng = random.Random(seed)
        self.farmer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.importer = {"Authorization": f"Bearer {importer_key}"}
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)

    def run(self, tally: Tally, deadline: float) -> None:
        """Every kind once (in order: the first records a lot to read), then by weight until ``deadline``."""
        try:
            for kind in KINDS:
                self.step(kind, tally)
            while time.monotonic() < deadline:
                self.step(self.rng.choices(KINDS, WEIGHTS)[0], tally)
        except (
            Exception
        ) as exc:  # e.g. a 2xx whose body is not the event's JSON: an error, never a silent stop
            tally.error("client", f"{type(exc).__name__}: {exc}")
        finally:
            self.conn.close()

    def step(self, kind: str, tally: Tally) -> None:
        if kind == "record_single":
            body = next(self.stream)
            match = _EVENT_ID.search(body)
            key = {"Idempotency-Key": match.group(1)} if match else {}
            self.record(kind, "/api/v1/events", body, key, tally)
        elif kind == "record_batch":
            items = [next(self.stream) for _ in range(self.rng.randint(*BATCH_EVENTS))]
            self.record(kind, "/api/v1/events/batch", '{"events":[' + ",".join(items) + "]}", {}, tally)
        elif (lot := tally.any_lot(self.rng)) is None:
            self.step("record_single", tally)  # nothing acknowledged yet to read (every recording refused)
        else:
            path, headers = {
                "page_th": (f"/p/{lot}", {}),
                "page_en": (f"/p/{lot}?lang=en", {}),
                "verify": (f"/api/v1/lots/{lot}/verify", self.importer),
                "fsma204": (f"/api/v1/lots/{lot}/fsma204.csv", self.importer),
                "epcis": (f"/api/v1/lots/{lot}/epcis", self.importer),
            }[kind]
            self.exchange(kind, "GET", path, None, headers, tally)

    def record(self, kind: str, path: str, body: str, headers: dict[str, str], tally: Tally) -> None:
        """Send, and send again with the same body (and key) after a connection error; acknowledge a 2xx."""
        for _ in range(1 + RETRIES):
            answer = self.exchange(kind, "POST", path, body.encode(), {**self.farmer, **headers}, tally)
            if answer is None:
                continue  # a connection error, counted: the same request again
            if answer:
                tally.acknowledge(answer)
            return

    def exchange(
        self, kind: str, method: str, path: str, body: bytes | None, headers: dict[str, str], tally: Tally
    ) -> bytes | None:
        """One request: its answer's body when 200/201, ``b""`` after any other status, ``None`` after a
        connection error (the connection is replaced). Both are errors, counted with what was seen."""
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = self._connect()
            tally.error(kind, f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        tally.answered(kind, time.perf_counter() - t0)
        if response.status in (200, 201):
            return answer
        tally.error(kind, f"{method} {path}: {response.status} {answer[:200].decode(errors='replace')}")
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = self._connect()
        return b""


def mix(deployment: Deployment, importer_key: str, seconds: float, *, seed: int = 10) -> Tally:
    """Every member of ``deployment`` as a client of the weighted mix for ``seconds``; the tally."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    clients = [
        Client(deployment.port, m.token, m.stream, importer_key, seed * 1000 + m.index)
        for m in deployment.members
    ]
    threads = [threading.Thread(target=c.run, args=(tally, deadline)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


# --- the run -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoakOptions:
    clients: int = 50
    seconds: float = 60.0
    database: str = "sqlite"
    postgres_url: str = DEFAULT_POSTGRES_URL
    drain_s: float = DRAIN_TIMEOUT_S


def wait_all_anchored(deployment: Deployment, timeout_s: float) -> float:
    """Until no event waits to be anchored, the worker has exited or ``timeout_s`` has passed (what is left
    is reported as unanchored by the check, not raised); the seconds waited."""
    waiting = (
        select(func.count()).select_from(models.Outbox).where(models.Outbox.status != OutboxStatus.ANCHORED)
    )
    sessions = make_sessionmaker(deployment.db)
    t0 = time.monotonic()
    while True:
        with transaction(sessions) as s:
            left = int(s.scalar(waiting) or 0)
        worker_gone = deployment.anchor_worker is not None and deployment.anchor_worker.poll() is not None
        if left == 0 or worker_gone or time.monotonic() - t0 > timeout_s:
            return round(time.monotonic() - t0, 1)
        time.sleep(0.5)


def run_soak(options: SoakOptions, progress: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Stand the service up, soak it, drain, check; the report (``ok`` says whether it held)."""
    if options.database == "postgresql":
        _reachable(options.postgres_url)
    with tempfile.TemporaryDirectory(prefix="trace-soak-") as tmp:
        progress(f"starting anvil, trace serve and trace worker on {options.database}")
        with Deployment(
            Path(tmp),
            options.clients,
            database=options.database,
            postgres_url=options.postgres_url,
            worker=True,
            block_time_s=DEFAULT_BLOCK_TIME_S,
            settings={"TRACE_PUBLIC_RATE_PER_MIN": LIFTED_RATE, "TRACE_IMPORTER_RATE_PER_MIN": LIFTED_RATE},
        ) as deployment:
            with transaction(make_sessionmaker(deployment.db)) as s:
                key = create_api_key(s, "soak").key
            progress(f"{options.clients} clients for {options.seconds:g}s")
            t0 = time.monotonic()
            tally = mix(deployment, key, options.seconds)
            load_s = time.monotonic() - t0
            progress("waiting for the worker to anchor every event")
            drained_s = wait_all_anchored(deployment, options.drain_s)
            assert deployment.registry is not None
            with transaction(make_sessionmaker(deployment.db)) as s:
                check = check_ledger(s, tally.acknowledged)
                # the worker's confirmations, and every root in the registry's logs must be one of ours
                confirmations = Settings.model_fields["confirmations"].default
                discrepancies, stats = reconcile(
                    s, deployment.registry, confirmations=confirmations, logs_from_block=0
                )
            found = [d.message for d in discrepancies]
            exited = _exited(deployment)
            failed = tally.errors or found or exited or not check.ok
            logs = _log_tails(deployment.workdir) if failed else {}
    return report(options, tally, check, found, stats, load_s, drained_s, logs, exited)


def _reachable(url: str) -> None:
    """A PostgreSQL that does not answer is said plainly (exit 2), before anything is started."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"PostgreSQL is not reachable at {url}: {str(exc).strip()}") from None


def _exited(deployment: Deployment) -> list[str]:
    """A server or worker that has stopped on its own during the soak is a failure whatever else held."""
    found = []
    for name, proc in (("trace serve", deployment.serve), ("trace worker", deployment.anchor_worker)):
        if proc is not None and proc.poll() is not None:
            found.append(f"{name} exited with code {proc.returncode} during the soak")
    return found


def _log_tails(workdir: Path) -> dict[str, str]:
    """The end of each process's log, for a report with errors (the directory goes with the run)."""
    return {p.stem: p.read_text(errors="replace")[-3000:] for p in sorted(workdir.glob("*.log"))}


def report(
    options: SoakOptions,
    tally: Tally,
    check: LedgerCheck,
    reconcile_problems: list[str],
    reconcile_stats: dict[str, int],
    load_s: float,
    drained_s: float,
    logs: dict[str, str] | None = None,
    exited: Sequence[str] = (),
) -> dict[str, Any]:
    """The soak's one JSON object (``trace soak --json``)."""
    problems = [*exited, *check.problems(), *(f"reconcile: {p}" for p in reconcile_problems)]
    errors = sum(tally.errors.values())
    return {
        "ok": errors == 0 and not problems,
        "database": options.database,
        "clients": options.clients,
        "seconds": options.seconds,
        "load_seconds": round(load_s, 1),
        "drain_seconds": drained_s,
        "requests": {k: tally.requests[k] for k in KINDS},
        "requests_total": sum(tally.requests.values()),
        "errors": errors,
        "errors_by_kind": {k: tally.errors[k] for k in (*KINDS, *sorted(set(tally.errors) - set(KINDS)))},
        "error_list": tally.error_list,
        "latency_ms": {k: percentiles(sorted(s * 1000 for s in tally.seconds[k])) for k in KINDS},
        "events": check.to_json(),
        "problems": problems[:KEPT],
        "reconcile": {"problems": len(reconcile_problems), **reconcile_stats},
        **({"logs": logs} if logs else {}),
    }


def format_table(result: dict[str, Any]) -> list[str]:
    """The report as a table: requests, errors and latency by kind, then the events and the verdict."""
    lines = [f"{'kind':<14} {'requests':>9} {'errors':>7} {'p50 ms':>9} {'p99 ms':>9}"]
    for kind in KINDS:
        lat = result["latency_ms"][kind]
        p50, p99 = ("-" if lat[p] is None else f"{lat[p]:.1f}" for p in ("p50", "p99"))
        lines.append(
            f"{kind:<14} {result['requests'][kind]:>9} {result['errors_by_kind'][kind]:>7} {p50:>9} {p99:>9}"
        )
    lines.append(f"{'total':<14} {result['requests_total']:>9} {result['errors']:>7}")
    ev = result["events"]
    lines.append(
        f"events: acknowledged {ev['acknowledged']}, in the database {ev['in_db']},"
        f" anchored once {ev['anchored']};"
        f" lost {ev['lost']}, unanchored {ev['unanchored']}, anchored twice {ev['in_several_batches']},"
        f" extra {ev['extra']}"
    )
    lines.append(
        f"{result['database']}, {result['clients']} clients, {result['load_seconds']}s of load,"
        f" drained in {result['drain_seconds']}s; reconcile problems: {result['reconcile']['problems']}"
    )
    lines += [f"error: {e}" for e in result["error_list"]] + [f"problem: {p}" for p in result["problems"]]
    lines.append("soak: OK" if result["ok"] else "soak: FAILED")
    return lines
