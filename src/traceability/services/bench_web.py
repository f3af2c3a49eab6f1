"""Latency of the buyer's page and the importer's verify call under concurrent clients.

A lot with a 20-event lineage (two farms' harvests, cooled and graded, merged, split, shipped to port,
repacked under a GTIN and shipped on) is recorded and anchored on a fresh Anvil, then ``trace serve`` is
started as a separate process — as an operator runs it — and 32 clients request ``GET /p/{lot}`` and
``GET /api/v1/lots/{lot}/verify`` over loopback, each on its own kept-alive connection, back to back.

Two figures per call, p50 and p99 in milliseconds: the server's own (each response's ``Server-Timing``: from
the app receiving the request to its answer starting, so without the time a request waits for the event
loop to read it) and the client's (from writing the request to having read the whole answer, so with every
queue on the way). Issue 9's goals (page p99 ≤ 50 ms, verify p99 ≤ 100 ms) are judged on the client's
figure, the stricter one and what a buyer or an importer sees. The load generator shares the machine with
the server, so it is kept light (one event loop, pre-built requests, kept-alive connections) and its CPU
counts against the server's on a 2-core machine, as it would for clients on the same host.

Beside them, ``cpu_ms``: the CPU time (user + system) the server process and the load generator each spent
per request. Latency under load depends on everything else the machine runs; CPU per request hardly does, so
it is the figure to compare two versions by on a shared machine (Linux ``/proc``; 0 where there is none).
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from eth_account import Account

from traceability.chain.devnode import AnvilNode, free_port
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.events import (
    BizDocument,
    Cooling,
    Event,
    Grading,
    Harvest,
    LotQuantity,
    Packing,
    Place,
    Planting,
    Quantity,
    Transport,
)
from traceability.services.anchoring import Anchorer
from traceability.services.apikeys import create_api_key
from traceability.services.bench import bench_farmer
from traceability.services.events import record_event
from traceability.services.parties import enrol_plot
from traceability.services.runtime import make_web3
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

LINEAGE_LOT = "BENCH-F"
ID_BASE = "https://bench.invalid"


def _kg(value: int) -> Quantity:
    return Quantity(value=Decimal(value))


def _lq(lot: str, kg: int) -> LotQuantity:
    return LotQuantity(lot_code=lot, quantity=_kg(kg))


def lineage_events(start: datetime) -> list[Event]:
    """The 20 events of ``BENCH-F``'s lineage, in the order they happen."""
    n = iter(range(100))

    def at(place: str) -> dict[str, Any]:
        return {
            "event_id": uuid.uuid4(),
            "actor": "F-9001",
            "place": Place(id=place),
            "event_time": start + timedelta(hours=next(n)),
        }

    def farm(lot: str, plot: str, kg: int, rejected: int) -> list[Event]:
        crop = {"crop": "organic-veg", "plot_id": plot, "lot_code": lot}
        return [
            Planting(kind="planting", area_rai=Decimal(2), **crop, **at(plot)),
            Harvest(kind="harvest", quantity=_kg(kg), **crop, **at(plot)),
            Cooling(kind="cooling", lot_code=lot, quantity=_kg(kg), method="hydro_cooling", **at("PH-B")),
            Grading(
                kind="grading",
                lot_code=lot,
                grade="A",
                quantity=_kg(kg - rejected),
                disposition="conformant",
                **at("PH-B"),
            ),
            Grading(
                kind="grading",
                lot_code=lot,
                grade="C",
                quantity=_kg(rejected),
                disposition="non_conformant",
                **at("PH-B"),
            ),
        ]

    def leg(leg: str, lot: str, kg: int, source: str, destination: str, doc: str) -> Event:
        return Transport(
            kind="transport",
            leg=leg,
            items=(_lq(lot, kg),),
            source=source,
            destination=destination,
            documents=(BizDocument(type="bol", number=doc),),
            **at(destination if leg == "receive" else source),
        )

    return [
        *farm("BENCH-A", "PLOT-B1", 1000, 50),
        *farm("BENCH-B", "PLOT-B2", 800, 20),
        Packing(
            kind="packing",
            inputs=(_lq("BENCH-A", 950), _lq("BENCH-B", 780)),
            outputs=(_lq("BENCH-C", 1700),),
            **at("PH-B"),
        ),
        Cooling(kind="cooling", lot_code="BENCH-C", quantity=_kg(1700), method="forced_air", **at("PH-B")),
        Packing(
            kind="packing",
            inputs=(_lq("BENCH-C", 1700),),
            outputs=(_lq("BENCH-D", 1000), _lq("BENCH-E", 690)),
            **at("PH-B"),
        ),
        leg("ship", "BENCH-D", 1000, "PH-B", "PORT-B", "BL-1"),
        leg("receive", "BENCH-D", 1000, "PH-B", "PORT-B", "BL-1"),
        Cooling(
            kind="cooling", lot_code="BENCH-D", quantity=_kg(1000), method="room_cooling", **at("PORT-B")
        ),
        Packing(
            kind="packing",
            inputs=(_lq("BENCH-D", 1000),),
            outputs=(_lq(LINEAGE_LOT, 990),),
            gtin="08850001000019",
            **at("PORT-B"),
        ),
        leg("ship", LINEAGE_LOT, 990, "PORT-B", "DC-B", "BL-2"),
        leg("receive", LINEAGE_LOT, 990, "PORT-B", "DC-B", "BL-2"),
        leg("ship", LINEAGE_LOT, 990, "DC-B", "SHOP-B", "BL-3"),
    ]


def _seed(url: str, registry: TraceRegistry) -> str:
    """Record and anchor the lineage; return a new importer API key."""
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        with transaction(sessions) as s:
            farmer = bench_farmer(s, authority="LAO-BENCH", farmer="F-9001", phone="0800000001")
            for plot in ("PLOT-B1", "PLOT-B2"):
                enrol_plot(s, code=plot, farmer=farmer, village_th="-", village_en="-", area_rai=Decimal(2))
            for event in lineage_events(datetime.now(UTC) - timedelta(days=3)):
                record_event(s, event, id_base=ID_BASE)
            key = create_api_key(s, "bench").key
        Anchorer(sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
        return key
    finally:
        engine.dispose()


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": float("nan"), "p99": float("nan")}
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2)}


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, str, bool]:
    """Send one pre-built request on a kept-alive connection and read the whole answer: (status, its
    ``Server-Timing``, whether the server will close the connection)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if "content-length" not in fields:
        raise ValueError("an answer without Content-Length")
    await reader.readexactly(int(fields["content-length"]))
    return status, fields.get("server-timing", ""), fields.get("connection", "").lower() == "close"


async def _clients(
    host: str, port: int, request: bytes, clients: int, per_client: int
) -> tuple[list[float], list[float], list[str], float]:
    """``clients`` concurrent clients on one event loop, each on its own kept-alive connection sending
    ``per_client`` requests back to back (a closed loop: a client sends its next request once it has the
    answer to the last). Returns server-side and client-side milliseconds, errors and the seconds taken."""
    server_ms: list[float] = []
    client_ms: list[float] = []
    errors: list[str] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(per_client):
                t0 = time.perf_counter()
                try:
                    status, timing, closing = await asyncio.wait_for(_exchange(reader, writer, request), 60)
                except (OSError, ValueError, asyncio.IncompleteReadError, TimeoutError) as exc:
                    errors.append(type(exc).__name__)
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                client_ms.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    errors.append(str(status))
                if timing.startswith("app;dur="):
                    server_ms.append(float(timing.removeprefix("app;dur=")))
                if closing:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return server_ms, client_ms, errors, time.perf_counter() - t0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) process ``pid`` has used: Linux ``/proc``, else 0."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(
    url: str, headers: dict[str, str], clients: int, per_client: int, server_pid: int
) -> dict[str, Any]:
    """Latency of ``GET url`` under ``clients`` concurrent clients, and the CPU each request cost the server
    (process ``server_pid``) and the clients. The load generator is kept light so that on a 2-core machine it
    takes as little CPU from the server as it can: one event loop, one kept-alive connection per client, the
    request's bytes built once, only the status line and headers parsed."""
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    path = target.path + (f"?{target.query}" if target.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {target.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    server_cpu, client_cpu = _cpu_s(server_pid), time.process_time()
    server_ms, client_ms, errors, seconds = asyncio.run(_clients(host, port, request, clients, per_client))
    server_cpu, client_cpu = _cpu_s(server_pid) - server_cpu, time.process_time() - client_cpu
    done = max(1, len(client_ms))
    return {
        **_percentiles(server_ms),
        "client": _percentiles(client_ms),
        "requests": len(client_ms),
        "errors": len(errors),
        "requests_per_s": round(len(client_ms) / seconds, 1),
        "cpu_ms": {
            "server": round(server_cpu * 1000 / done, 3),
            "client": round(client_cpu * 1000 / done, 3),
        },
    }


def _wait_ready(base: str, process: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("trace serve exited before it was ready")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("trace serve did not become ready")


def page_and_verify_latency(
    *, clients: int = 32, per_client: int = 20, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``page_ms`` and ``verify_ms`` (p50/p99 server-side, ms, the client's under ``client``, and the CPU per
    request under ``cpu_ms``) and the page's bytes, measured in one run."""
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="trace-bench-web-") as tmp, AnvilNode() as node:
        registry = TraceRegistry.deploy(make_web3(node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        say("recording and anchoring a 20-event lineage")
        key = _seed(url, registry)
        port = free_port()
        env = {
            **os.environ,
            "TRACE_VAR_DIR": tmp,
            "TRACE_DATABASE_URL": url,
            "TRACE_RPC_URL": node.rpc_url,
            "TRACE_CONTRACT_ADDRESS": registry.address,
            "TRACE_ID_BASE": ID_BASE,
            "TRACE_CONFIRMATIONS": "0",
            # the clients all come from 127.0.0.1: measure the server, not its rate limit
            "TRACE_PUBLIC_RATE_PER_MIN": "1000000",
            "TRACE_IMPORTER_RATE_PER_MIN": "1000000",
        }
        trace = Path(sys.executable).with_name("trace")
        server = subprocess.Popen(
            [str(trace), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, server)
            page_url = f"{base}/p/{LINEAGE_LOT}"
            verify_url = f"{base}/api/v1/lots/{LINEAGE_LOT}/verify"
            auth = {"Authorization": f"Bearer {key}"}
            # Each call is asked once just before its clients start: the figures are those of a lot being
            # scanned and checked steadily, not of the first answer after the server has been idle.
            page = requests.get(page_url, timeout=60)
            css = sum(
                len(requests.get(f"{base}{href}", timeout=30).content) for href in _stylesheets(page.text)
            )
            say(f"{clients} clients x {per_client} requests: GET /p/{LINEAGE_LOT}")
            page_ms = _load(page_url, {}, clients, per_client, server.pid)
            verdict = requests.get(verify_url, headers=auth, timeout=60).json()
            say(f"{clients} clients x {per_client} requests: GET /api/v1/lots/{LINEAGE_LOT}/verify")
            verify_ms = _load(verify_url, auth, clients, per_client, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "page_ms": page_ms,
        "verify_ms": verify_ms,
        "page_bytes": {"html": len(page.content), "css": css, "total": len(page.content) + css},
        "lineage_events": len(verdict.get("evidence", {}).get("events", [])) or 20,
        "verdict": verdict.get("status"),
        "clients": clients,
    }


def _stylesheets(html: str) -> list[str]:
    """Same-origin stylesheet hrefs of a page (its only other bytes: public pages have no script)."""
    return re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="(/[^"]+)"', html) + re.findall(
        r'<link[^>]+href="(/[^"]+)"[^>]+rel="stylesheet"', html
    )
