"""The HTTP load behind ``trace bench``'s recorded, anchored and RSS figures, against real processes.

:class:`Deployment` stands the service up as an operator runs it: a fresh Anvil, a deployed TraceRegistry, a
database (a SQLite file, or a new schema in PostgreSQL) migrated and seeded with one farmer per client, then
``trace serve`` (and, when asked, ``trace worker``) started as processes with only the settings the bench
needs: every setting it does not name keeps its default from ``config.py``.

:func:`drive` is the load generator. It shares two cores with the server, so it is kept light: one thread
per client with a keep-alive ``http.client`` connection, request bodies made from string templates (no
pydantic, no JSON encoder), and nothing parsed of a response but its status. Each client writes only for its
own farmer's plots and lots, so clients never race for one lot's hash chain; each client's stream is a
realistic season in miniature, lot after lot: planting, harvest, cooling, grading into a conformant and a
rejected part, packing the conformant part into a new lot, and shipping it. Every event is valid; a refusal
is an error, counted and reported (with the first answers), never retried into success.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from eth_account import Account
from sqlalchemy import Engine, func, select

from traceability.chain.devnode import AnvilNode, free_port
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.states import OutboxStatus
from traceability.errors import ChainError, ConfigurationError
from traceability.services.identity import ensure_id_base
from traceability.services.parties import enrol_authority, enrol_farmer, enrol_plot
from traceability.services.runtime import make_web3
from traceability.store import models
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

ID_BASE = "https://bench.invalid"
PIN = "4321"
BATCH_SIZE = 500  # POST /api/v1/events/batch's largest batch (services.submissions.MAX_BATCH)
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Anvil makes a block each second: with the default TRACE_CONFIRMATIONS (2) a node that mines only when a
# transaction arrives would never confirm the last batch (the worker waits for blocks that never come), and
# one second is the block time of the fast EVM chains a deployment would anchor on.
DEFAULT_BLOCK_TIME_S = 1.0
# Event times start this far back, a second apart: 3.4 million events a client before one is in the future.
SEASON = timedelta(days=40)
WARM_UP_TIMEOUT_S = 300.0


def _rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """``pid``'s children and theirs (a server that forks workers is measured whole)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def rss_mb(pid: int, *, exclude: Collection[int] = ()) -> float:
    """Resident memory of a process and all its descendants but ``exclude`` (and theirs), in MB (10^6
    bytes), from /proc."""
    left_out = {p for e in exclude for p in (e, *descendants(e))}
    kb = sum(_rss_kb(p) for p in [pid, *descendants(pid)] if p not in left_out)
    return round(kb * 1024 / 1e6, 1)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigurationError(f"trace serve exited before it was ready: {log.read_text()[-2000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    raise ConfigurationError("trace serve did not become ready")


def _wait_leading(process: subprocess.Popen[bytes], log: Path, deadline_s: float = 90) -> None:
    """Until ``trace worker`` logs that it leads: a window opened earlier would time its start-up too."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if "anchoring worker leading" in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise ConfigurationError(f"trace worker exited before it led: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise ConfigurationError("trace worker did not start leading")


@dataclass
class BenchFarmer:
    """One farmer of the bench: its code, plots, bearer token (once the server has issued it) and its stream
    of events, which every load on the deployment continues (lot codes never repeat)."""

    index: int
    farmer: str
    phone: str
    plots: tuple[str, str]
    stream: Iterator[str]
    token: str = ""


@dataclass
class Deployment:
    """Anvil + TraceRegistry + a seeded database + ``trace serve`` (+ ``trace worker``), torn down on exit.

    ``settings`` are extra ``TRACE_*`` variables for the processes (e.g. ``{"TRACE_BATCH_MAX": "1"}``);
    ``TRACE_*`` variables of the bench's own environment are not passed on, so the rest are defaults. Each
    client records for ``farmers_per_client`` farmers in turn, a request at a time (a co-operative's
    members, each signed in); ``members`` lists every farmer, client after client's turn."""

    workdir: Path
    clients: int
    farmers_per_client: int = 1
    database: str = "sqlite"
    postgres_url: str = DEFAULT_POSTGRES_URL
    worker: bool = False
    block_time_s: float | None = None
    settings: dict[str, str] = field(default_factory=dict)
    # set by __enter__
    port: int = field(default=0, init=False)
    db_url: str = field(default="", init=False)
    engine: Engine | None = field(default=None, init=False)
    serve: subprocess.Popen[bytes] | None = field(default=None, init=False)
    anchor_worker: subprocess.Popen[bytes] | None = field(default=None, init=False)
    registry: TraceRegistry | None = field(default=None, init=False)
    members: list[BenchFarmer] = field(default_factory=list, init=False)
    _node: AnvilNode | None = field(default=None, init=False)
    _schema: str | None = field(default=None, init=False)

    def __enter__(self) -> Deployment:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def db(self) -> Engine:
        assert self.engine is not None, "the deployment is not started"
        return self.engine

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._node = AnvilNode(block_time=self.block_time_s).start()
        self.registry = TraceRegistry.deploy(make_web3(self._node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
        self.db_url = self._database()
        migrate(self.db_url)
        self.engine = make_engine(self.db_url, pool_size=2, max_overflow=2)
        self._seed()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
        env |= {
            "TRACE_VAR_DIR": str(self.workdir),
            "TRACE_DATABASE_URL": self.db_url,
            "TRACE_RPC_URL": self._node.rpc_url,
            "TRACE_CONTRACT_ADDRESS": self.registry.address,
            "TRACE_ID_BASE": ID_BASE,
            **self.settings,
        }
        trace = str(Path(sys.executable).with_name("trace"))
        self.port = free_port()
        serve_log = self.workdir / "serve.log"
        with serve_log.open("wb") as log:  # the child keeps its own handle
            self.serve = subprocess.Popen(
                [trace, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if self.worker:
            with (self.workdir / "worker.log").open("wb") as log:
                self.anchor_worker = subprocess.Popen(
                    [trace, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
                )
        _wait_ready(self.port, self.serve, serve_log)
        if self.anchor_worker is not None:
            _wait_leading(self.anchor_worker, self.workdir / "worker.log")
        for member in self.members:
            member.token = self._sign_in(member)

    def _database(self) -> str:
        if self.database == "sqlite":
            return f"sqlite:///{self.workdir / 'bench.db'}"
        self._schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.postgres_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {self._schema}")
        sep = "&" if "?" in self.postgres_url else "?"
        return f"{self.postgres_url}{sep}options=-csearch_path%3D{self._schema}"

    def _seed(self) -> None:
        """One อปท. and ``farmers_per_client`` farmers per client, each with two large plots (the bench plants
        many lots)."""
        sessions = make_sessionmaker(self.db)
        start = datetime.now(UTC) - SEASON
        with transaction(sessions) as s:
            authority = enrol_authority(
                s,
                code="LAO-BENCH",
                name_th="อบต.ทดสอบ",
                name_en="Bench SAO",
                district_th="-",
                province_th="-",
                admin_address=Account.from_key(ANVIL_DEV_KEY).address,
            )
            for n in range(self.clients * self.farmers_per_client):
                plots = (f"PLOT-B{n:03d}-1", f"PLOT-B{n:03d}-2")
                stream = Season(n, plots, start).events()
                member = BenchFarmer(n, f"F-B{n:03d}", f"089{n:07d}", plots, stream)
                farmer = enrol_farmer(
                    s, code=member.farmer, authority=authority, display_name="-", phone=member.phone, pin=PIN
                )
                for plot in member.plots:
                    enrol_plot(
                        s, code=plot, farmer=farmer, village_th="-", village_en="-", area_rai=Decimal(100000)
                    )
                self.members.append(member)
            ensure_id_base(s, ID_BASE)  # what the first event would record (concurrent first events race)

    def _sign_in(self, member: BenchFarmer) -> str:
        status, body = request(self.port, "POST", "/api/v1/auth/token", {"phone": member.phone, "pin": PIN})
        if status != 200:
            raise ConfigurationError(f"sign-in of {member.farmer} answered {status}: {body[:300]!r}")
        return str(json.loads(body)["access_token"])

    def close(self) -> None:
        """Stop the processes (the worker first: it must not outlive its chain), then the database, Anvil."""
        for proc in (self.anchor_worker, self.serve):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()  # its connections must go before the schema is dropped
                    proc.wait(timeout=30)
        if self.engine is not None:
            self.engine.dispose()
        if self._schema is not None:
            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {self._schema} CASCADE")
            self._schema = None
        if self._node is not None:
            self._node.stop()
            self._node = None


REQUEST_TIMEOUT_S = 120.0
"""How long a setup or check request may take (a first page on a large ledger reads its origin risk)."""


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request on a connection of its own (setup and checks, not the measured load); a server that does
    not answer within :data:`REQUEST_TIMEOUT_S` ends the bench with that said, not a traceback."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    except TimeoutError:
        raise ConfigurationError(
            f"trace serve did not answer {method} {path} within {REQUEST_TIMEOUT_S:g} s"
        ) from None
    finally:
        conn.close()


# --- events ------------------------------------------------------------------------------------------------


def _qty(kg: int) -> str:
    return f'{{"value":"{kg}","uom":"KGM"}}'


class Season:
    """One client's stream of events: lot after lot, each a planting on one of its plots, harvest, cooling,
    two gradings, packing into a new lot and shipping it (seven events; event times a second apart)."""

    def __init__(self, index: int, plots: tuple[str, str], start: datetime) -> None:
        self.index = index
        self.plots = plots
        self.start = start
        self.lot = 0
        self.second = 0

    def _head(self, kind: str, place: str) -> str:
        self.second += 1
        at = (self.start + timedelta(seconds=self.second)).isoformat()
        return f'{{"kind":"{kind}","event_id":"{uuid.uuid4()}","event_time":"{at}","place":{{"id":"{place}"}}'

    def cycle(self) -> list[str]:
        n, plot = self.index, self.plots[self.lot % 2]
        lot, packed = f"B{n:03d}-{self.lot:07d}", f"P{n:03d}-{self.lot:07d}"
        self.lot += 1
        crop = f'"lot_code":"{lot}","plot_id":"{plot}","crop":"organic-veg"'
        ship = (
            f'"leg":"ship","items":[{{"lot_code":"{packed}","quantity":{_qty(950)}}}],"source":"PH-BENCH",'
            f'"destination":"PORT-BENCH","documents":[{{"type":"bol","number":"BL-{n}-{self.lot}"}}]'
        )
        return [
            f'{self._head("planting", plot)},{crop},"area_rai":"1"}}',
            f'{self._head("harvest", plot)},{crop},"quantity":{_qty(1000)}}}',
            f'{self._head("cooling", "PH-BENCH")},"lot_code":"{lot}","quantity":{_qty(1000)},'
            '"method":"hydro_cooling"}',
            f'{self._head("grading", "PH-BENCH")},"lot_code":"{lot}","grade":"A","quantity":{_qty(950)},'
            '"disposition":"conformant"}',
            f'{self._head("grading", "PH-BENCH")},"lot_code":"{lot}","grade":"C","quantity":{_qty(50)},'
            '"disposition":"non_conformant"}',
            f'{self._head("packing", "PH-BENCH")},"inputs":[{{"lot_code":"{lot}","quantity":{_qty(950)}}}],'
            f'"outputs":[{{"lot_code":"{packed}","quantity":{_qty(950)}}}]}}',
            f"{self._head('transport', 'PH-BENCH')},{ship}}}",
        ]

    def events(self) -> Iterator[str]:
        while True:
            yield from self.cycle()


# --- the load ----------------------------------------------------------------------------------------------


@dataclass
class Load:
    """What :func:`drive` did: events acknowledged, refusals, seconds from the first request to the last."""

    events: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    first_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, events: int, message: str) -> None:
        """Count ``events`` refused (or a connection lost); keep the first few answers to report."""
        self.errors += events
        if len(self.first_errors) < 5:
            self.first_errors.append(message)

    @property
    def events_per_s(self) -> float:
        return round(self.events / self.seconds, 1) if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "events_per_s": self.events_per_s,
            **({"first_errors": self.first_errors} if self.first_errors else {}),
        }


def drive(
    deployment: Deployment,
    *,
    batch: int,
    duration_s: float | None = None,
    events: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Load:
    """Every client records as fast as the server answers, ``batch`` events a request (1: ``POST
    /api/v1/events``; more: ``POST /api/v1/events/batch``), until ``duration_s`` has passed or ``events``
    (shared out between the clients) have been sent. ``on_progress`` gets the running acknowledged count
    (called under the load's lock: it must be quick)."""
    if duration_s is None and events is None:
        raise ValueError("a duration or a number of events")
    clients = [deployment.members[i :: deployment.clients] for i in range(deployment.clients)]
    quotas: list[int | None] = [None] * len(clients) if events is None else _share(events, len(clients))
    load = Load()
    deadline = time.monotonic() + duration_s if duration_s is not None else float("inf")
    path = "/api/v1/events" if batch == 1 else "/api/v1/events/batch"

    def client(members: list[BenchFarmer], quota: int | None) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", deployment.port, timeout=300)
        left, failures, turn = quota, 0, 0
        while time.monotonic() < deadline and (left is None or left > 0) and failures < 5:
            member = members[turn % len(members)]
            turn += 1
            headers = {"Authorization": f"Bearer {member.token}", "Content-Type": "application/json"}
            take = batch if left is None else min(batch, left)
            items = [next(member.stream) for _ in range(take)]
            body = items[0] if batch == 1 else '{"events":[' + ",".join(items) + "]}"
            if left is not None:
                left -= take
            try:
                conn.request("POST", path, body.encode(), headers)
                response = conn.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException) as exc:
                # counted, then a new connection (a server may close one after a 500); five in a row end it
                failures += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", deployment.port, timeout=300)
                with load.lock:
                    load.note(take, f"{type(exc).__name__}: {exc}")
                continue
            failures = 0
            with load.lock:  # on_progress too: it sees the counts in order
                load.requests += 1
                if response.status not in (200, 201):
                    load.note(take, f"{response.status} {answer[:300].decode(errors='replace')}")
                    continue
                load.events += take
                if on_progress is not None:
                    on_progress(load.events)
        conn.close()

    threads = [threading.Thread(target=client, args=pair) for pair in zip(clients, quotas, strict=True)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - t0
    return load


def _share(total: int, parts: int) -> list[int | None]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- the figures -------------------------------------------------------------------------------------------


def recorded_events_per_s(
    workdir: Path,
    *,
    clients: int,
    duration_s: float,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """``recorded_events_per_s``: single (one event a request) and batch (500 a request) on SQLite and on
    PostgreSQL, each on a fresh database behind its own ``trace serve`` with default settings."""
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for database in ("sqlite", "postgres"):
        for mode, batch in (("single", 1), ("batch", BATCH_SIZE)):
            name = f"{database}_{mode}"
            progress(f"recording for {duration_s:g}s: {name}, {clients} clients")
            with Deployment(
                workdir / name,
                clients,
                database="sqlite" if database == "sqlite" else "postgresql",
                postgres_url=postgres_url,
            ) as deployment:
                load = drive(deployment, batch=batch, duration_s=duration_s)
            figures[name] = load.events_per_s
            details[name] = load.to_json()
    return {
        "recorded_events_per_s": figures,
        "recorded": {"clients": clients, "batch_size": BATCH_SIZE, "runs": details},
    }


def anchored_events_per_s(
    workdir: Path,
    *,
    clients: int,
    duration_s: float,
    settings: dict[str, str] | None = None,
    block_time_s: float = DEFAULT_BLOCK_TIME_S,
) -> dict[str, Any]:
    """Events recorded (batch API, as fast as the server takes them) and anchored by ``trace worker`` within
    a window of ``duration_s``, per second, and the recorded → anchored latency of those events, read from the
    database afterwards (``events.recorded_at`` to their batch's ``anchored_at``)."""
    with Deployment(
        workdir, clients, worker=True, block_time_s=block_time_s, settings=settings or {}
    ) as deployment:
        # Warm-up: a planting per client, anchored and final, before the window opens, so that the window
        # times the pipeline running and not the processes starting (imports, first connections, first poll).
        warm = drive(deployment, batch=1, events=clients)
        if warm.errors:
            raise ConfigurationError(f"the warm-up events were refused: {warm.first_errors}")
        wait_anchored(deployment.db, warm.events, WARM_UP_TIMEOUT_S)
        opened = datetime.now(UTC)
        load = drive(deployment, batch=BATCH_SIZE, duration_s=duration_s)
        closed = opened + timedelta(seconds=duration_s)
        time.sleep(max(0.0, (closed - datetime.now(UTC)).total_seconds()) + 1)  # the last commits land
        latencies = anchor_latencies(deployment.db, opened, closed)
    ordered = sorted(latencies)
    return {
        "anchored_events_per_s": round(len(ordered) / duration_s, 1),
        "anchor_latency_s": percentiles(ordered),
        "events_recorded": load.events,
        "events_anchored": len(ordered),
        "record_errors": load.errors,
        "seconds": duration_s,
        **({"first_errors": load.first_errors} if load.first_errors else {}),
    }


def wait_anchored(engine: Engine, events: int, timeout_s: float) -> int:
    """Until ``events`` outbox rows are anchored (ChainError after ``timeout_s``); how many are."""
    sessions = make_sessionmaker(engine)
    done = models.Outbox.status == OutboxStatus.ANCHORED
    query = select(func.count()).select_from(models.Outbox).where(done)
    deadline = time.monotonic() + timeout_s
    while True:
        with transaction(sessions) as s:
            anchored = int(s.scalar(query) or 0)
        if anchored >= events:
            return anchored
        if time.monotonic() > deadline:
            raise ChainError(f"only {anchored} of {events} events anchored after {timeout_s:g}s")
        time.sleep(0.5)


def anchor_latencies(engine: Engine, opened: datetime, closed: datetime) -> list[float]:
    """Seconds from recording to anchoring of every event whose batch was anchored within the window."""
    query = (
        select(models.Event.recorded_at, models.Batch.anchored_at)
        .join(models.BatchEvent, models.BatchEvent.event_id == models.Event.id)
        .join(models.Batch, models.Batch.id == models.BatchEvent.batch_id)
        .where(models.Batch.anchored_at >= opened, models.Batch.anchored_at <= closed)
    )
    with transaction(make_sessionmaker(engine)) as s:
        return [(anchored - recorded).total_seconds() for recorded, anchored in s.execute(query) if anchored]


def percentiles(ordered: list[float]) -> dict[str, float | None]:
    """p50 and p99 of sorted values (nearest rank), ``None`` when there are none."""
    if not ordered:
        return {"p50": None, "p99": None}

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.5) - 1))], 3)

    return {"p50": rank(0.50), "p99": rank(0.99)}
