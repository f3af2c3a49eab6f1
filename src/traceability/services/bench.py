"""``trace bench``: gas per anchored event by batch size, and anchored events/s against the naive design.

Everything is measured in one run on one machine, so the ratios are what to compare: the per-event gas of
batch size 1 against 1024, and events anchored per second at the default settings against the baseline
(``TRACE_BATCH_MAX=1``: one transaction storing one hash per event), side by side. Beside the end-to-end
figure, ``anchor_drain_events_per_s`` times ``trace worker`` alone draining a backlog recorded before it
started: while recording and anchoring share the two cores, the end-to-end figure cannot exceed the
recording rate, and this one says how much the worker could take. The HTTP load and the processes are
:mod:`traceability.services.bench_load`'s; memory is :mod:`traceability.services.bench_rss`'s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain.merkle import MerkleTree
from traceability.errors import ConfigurationError
from traceability.services.bench_load import (
    BATCH_SIZE,
    DEFAULT_BLOCK_TIME_S,
    DEFAULT_POSTGRES_URL,
    ID_BASE,
    WARM_UP_TIMEOUT_S,
    Deployment,
    anchored_events_per_s,
    drive,
    recorded_events_per_s,
    wait_anchored,
)
from traceability.services.bench_rss import FARMERS_PER_CLIENT, rss_under_load
from traceability.services.parties import enrol_authority, enrol_farmer
from traceability.services.runtime import make_web3
from traceability.store import models
from traceability.store.database import make_sessionmaker, transaction
from traceability.store.models import Farmer


def gas_by_batch_size(registry: TraceRegistry, sizes: list[int]) -> list[dict[str, Any]]:
    """Gas of one ``anchor`` transaction per batch size (a Merkle root of random leaves), and per event."""
    rows = []
    for size in sizes:
        leaves = [os.urandom(32) for _ in range(size)]
        receipt = registry.anchor(MerkleTree(leaves).root, size)
        gas = int(receipt.gas_used or 0)
        rows.append({"batch_size": size, "gas_per_tx": gas, "gas_per_event": gas / size})
    return rows


def bench_farmer(session: Session, *, authority: str, farmer: str, phone: str) -> Farmer:
    """A test authority (its admin the Anvil dev account) and one farmer of it, for a benchmark's ledger."""
    auth = enrol_authority(
        session,
        code=authority,
        name_th="อบต.ทดสอบ",
        name_en="Bench SAO",
        district_th="-",
        province_th="-",
        admin_address=Account.from_key(ANVIL_DEV_KEY).address,
    )
    return enrol_farmer(session, code=farmer, authority=auth, display_name="bench", phone=phone, pin="0000")


def gas_per_event(sizes: list[int]) -> dict[str, Any]:
    """``gas_per_event`` keyed by batch size as a string, measured on a fresh Anvil; the rows behind it."""
    with AnvilNode() as node:
        registry = TraceRegistry.deploy(make_web3(node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
        rows = gas_by_batch_size(registry, sizes)
    return {"gas_per_event": {str(r["batch_size"]): r["gas_per_event"] for r in rows}, "gas": rows}


def anchor_drain_events_per_s(
    workdir: Path, *, clients: int, events: int, block_time_s: float = DEFAULT_BLOCK_TIME_S
) -> dict[str, Any]:
    """``trace worker`` alone at the default settings: ``events`` recorded through the batch API while no
    worker runs, then a worker started and timed from its first batch's claim to its last batch's
    anchoring (confirmations included; its own start-up not). A backlog of whole batches of the default
    ``TRACE_BATCH_MAX`` leaves no partial batch to wait ``TRACE_BATCH_INTERVAL_S`` for."""
    with Deployment(workdir, clients, block_time_s=block_time_s) as deployment:
        load = drive(deployment, batch=BATCH_SIZE, events=events)
        if load.errors:
            raise ConfigurationError(f"the backlog's events were refused: {load.first_errors}")
        worker = _start_worker(deployment)
        try:
            wait_anchored(deployment.db, load.events, WARM_UP_TIMEOUT_S)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=30)
        with transaction(make_sessionmaker(deployment.db)) as s:
            first, last, batches = s.execute(
                select(func.min(models.Batch.created_at), func.max(models.Batch.anchored_at), func.count())
            ).one()
    if first is None or last is None:
        raise ConfigurationError("the worker anchored no batch of the backlog")
    seconds = (last - first).total_seconds()
    return {
        "anchor_drain_events_per_s": round(load.events / seconds, 1),
        "drain": {"events": load.events, "batches": batches, "seconds": round(seconds, 2)},
    }


def _start_worker(deployment: Deployment) -> subprocess.Popen[bytes]:
    """``trace worker`` on the deployment's database and chain with every other setting at its default."""
    assert deployment.registry is not None, "the deployment is not started"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env |= {
        "TRACE_VAR_DIR": str(deployment.workdir),
        "TRACE_DATABASE_URL": deployment.db_url,
        "TRACE_RPC_URL": str(getattr(deployment.registry.w3.provider, "endpoint_uri", "")),
        "TRACE_CONTRACT_ADDRESS": deployment.registry.address,
        "TRACE_ID_BASE": ID_BASE,
    }
    trace = str(Path(sys.executable).with_name("trace"))
    with (deployment.workdir / "drain-worker.log").open("wb") as log:  # the child keeps its own handle
        return subprocess.Popen([trace, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)


def anchored_against_baseline(
    workdir: Path,
    *,
    clients: int,
    duration_s: float,
    baseline_duration_s: float,
    block_time_s: float = DEFAULT_BLOCK_TIME_S,
    drain_events: int | None = None,
) -> dict[str, Any]:
    """``anchored_events_per_s`` and ``anchor_latency_s`` at the default settings, and beside them the same
    measured with ``TRACE_BATCH_MAX=1`` (the baseline: one transaction storing one hash per event), and
    ``anchor_drain_events_per_s``: the worker alone on a backlog of ``drain_events`` (by default as many
    full batches as the window has seconds)."""
    defaults = Settings.model_fields
    batch_max = int(defaults["batch_max"].default)
    batched = anchored_events_per_s(
        workdir / "batched", clients=clients, duration_s=duration_s, block_time_s=block_time_s
    )
    drained = anchor_drain_events_per_s(
        workdir / "drain",
        clients=clients,
        events=drain_events if drain_events is not None else batch_max * max(1, round(duration_s)),
        block_time_s=block_time_s,
    )
    baseline = anchored_events_per_s(
        workdir / "baseline",
        clients=clients,
        duration_s=baseline_duration_s,
        settings={"TRACE_BATCH_MAX": "1"},
        block_time_s=block_time_s,
    )
    rate, base_rate = batched["anchored_events_per_s"], baseline["anchored_events_per_s"]
    return {
        "anchored_events_per_s": rate,
        "anchor_latency_s": batched.pop("anchor_latency_s"),
        "anchored": {
            **batched,
            "clients": clients,
            "block_time_s": block_time_s,
            "settings": {
                "batch_max": defaults["batch_max"].default,
                "batch_interval_s": defaults["batch_interval_s"].default,
                "confirmations": defaults["confirmations"].default,
            },
        },
        "baseline": {**baseline, "batch_max": 1},
        "anchored_vs_baseline": round(rate / base_rate, 1) if base_rate else None,
        **drained,
    }


PARTS = ("gas", "recorded", "anchored", "web", "scaling", "rss")


@dataclass(frozen=True)
class BenchOptions:
    """Sizes and durations of every part; the defaults are the issue's figures, tests pass tiny ones."""

    sizes: tuple[int, ...] = (1, 16, 256, 1024)
    load_clients: int = 8
    record_duration_s: float = 20.0
    duration_s: float = 60.0
    baseline_duration_s: float = 20.0
    block_time_s: float = DEFAULT_BLOCK_TIME_S
    postgres_url: str = DEFAULT_POSTGRES_URL
    web_clients: int = 32
    web_requests: int = 20
    lineages: tuple[int, ...] = (10, 100, 1000)
    rss_events: int = 1_000_000
    rss_sample_every: int = 100_000
    rss_farmers_per_client: int = FARMERS_PER_CLIENT


def run_bench(
    parts: Sequence[str], options: BenchOptions, progress: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """Every asked-for part, in the order of :data:`PARTS`, in one run. When there are several,
    ``bench_seconds`` says how long each took (its set-up included) and ``machine`` what they ran on; one part
    alone reports its own keys only."""
    # imported here: both modules import bench_farmer from this one
    from traceability.services.bench_verify import verify_scaling
    from traceability.services.bench_web import page_and_verify_latency

    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "bench_seconds": {}}
    o = options
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as tmp:
        work = Path(tmp)
        for part in (p for p in PARTS if p in parts):
            t0 = time.perf_counter()
            if part == "gas":
                progress(f"gas per event at batch sizes {', '.join(map(str, o.sizes))}")
                report |= gas_per_event(list(o.sizes))
            elif part == "recorded":
                report |= recorded_events_per_s(
                    work / "recorded",
                    clients=o.load_clients,
                    duration_s=o.record_duration_s,
                    postgres_url=o.postgres_url,
                    progress=progress,
                )
            elif part == "anchored":
                progress(
                    f"recording and anchoring for {o.duration_s:g}s at default settings, then "
                    f"{o.baseline_duration_s:g}s with TRACE_BATCH_MAX=1"
                )
                report |= anchored_against_baseline(
                    work / "anchored",
                    clients=o.load_clients,
                    duration_s=o.duration_s,
                    baseline_duration_s=o.baseline_duration_s,
                    block_time_s=o.block_time_s,
                )
            elif part == "web":
                report |= page_and_verify_latency(
                    clients=o.web_clients, per_client=o.web_requests, progress=progress
                )
            elif part == "scaling":
                progress(f"verifying lineages of {', '.join(map(str, o.lineages))} events")
                report["scaling"] = verify_scaling(list(o.lineages))
            else:
                progress(f"loading {o.rss_events} events for the memory figures")
                report |= rss_under_load(
                    work / "rss",
                    clients=o.load_clients,
                    events=o.rss_events,
                    sample_every=o.rss_sample_every,
                    farmers_per_client=o.rss_farmers_per_client,
                    block_time_s=o.block_time_s,
                    progress=progress,
                )
            report["bench_seconds"][part] = round(time.perf_counter() - t0, 1)
    if len(report["bench_seconds"]) == 1:
        del report["bench_seconds"], report["machine"]
    return report


def format_table(report: dict[str, Any]) -> list[str]:
    """The report's figures as lines of text (what ``trace bench`` prints without ``--json``)."""
    cpus = report.get("machine", {"cpus": os.cpu_count()})["cpus"]
    lines: list[str] = [f"one run on {cpus} CPUs; ratios are what compare across machines"]
    if "gas" in report:
        lines.append(f"{'batch size':>10} {'gas/tx':>10} {'gas/event':>10}")
        for row in report["gas"]:
            lines.append(f"{row['batch_size']:>10} {row['gas_per_tx']:>10} {row['gas_per_event']:>10.1f}")
    if "recorded_events_per_s" in report:
        r = report["recorded"]
        lines.append(
            f"recorded through `trace serve`, {r['clients']} clients, single = one event a request, "
            f"batch = {r['batch_size']} a request (events/s):"
        )
        for name, rate in report["recorded_events_per_s"].items():
            run = r["runs"][name]
            lines.append(f"  {name:<16} {rate:>10.1f}   {run['events']} events, {run['errors']} refused")
    if "anchored_events_per_s" in report:
        a, b = report["anchored"], report["baseline"]
        lat, blat = report["anchor_latency_s"], b["anchor_latency_s"]
        s, ratio = a["settings"], report["anchored_vs_baseline"]
        lines += [
            f"recorded → anchored, `trace serve` + `trace worker`, Anvil block every {a['block_time_s']:g}s, "
            f"{a['clients']} clients on the batch API:",
            f"  defaults (batch_max {s['batch_max']}, interval {s['batch_interval_s']:g}s, "
            f"{s['confirmations']} confirmations): {report['anchored_events_per_s']:.1f} events/s over "
            f"{a['seconds']:g}s; latency p50 {_s(lat['p50'])}, p99 {_s(lat['p99'])}; "
            f"{a['events_recorded']} recorded, {a['events_anchored']} anchored in the window",
            f"  baseline (TRACE_BATCH_MAX=1, one transaction per event): {b['anchored_events_per_s']:.1f} "
            f"events/s over {b['seconds']:g}s; latency p50 {_s(blat['p50'])}, p99 {_s(blat['p99'])}",
            f"  batching anchors {ratio}x as many events a second as the baseline"
            if ratio is not None
            else "  no event was anchored in the baseline's window: no ratio (give it a longer window)",
        ]
    if "anchor_drain_events_per_s" in report:
        d = report["drain"]
        lines.append(
            f"`trace worker` alone draining a backlog of {d['events']} events recorded before it started: "
            f"{report['anchor_drain_events_per_s']:.1f} events/s ({d['batches']} batches in "
            f"{d['seconds']:g}s, first claim to last anchored)"
        )
    if "page_ms" in report:
        lines.append(
            f"{report['clients']} concurrent clients, a {report['lineage_events']}-event lineage "
            f"(verdict: {report['verdict']}); server-side ms (Server-Timing), client-side in brackets:"
        )
        for name, path in (("page_ms", "GET /p/{lot}"), ("verify_ms", "GET /api/v1/lots/{lot}/verify")):
            m = report[name]
            lines.append(
                f"  {path:<32} p50 {m['p50']:>8.1f}  p99 {m['p99']:>8.1f}  "
                f"[p50 {m['client']['p50']:.1f}  p99 {m['client']['p99']:.1f}]  "
                f"{m['requests']} requests, {m['errors']} errors, {m['requests_per_s']}/s"
            )
        b = report["page_bytes"]
        lines.append(f"  provenance page: {b['html']} B HTML + {b['css']} B CSS = {b['total']} B")
    if "scaling" in report:
        lines.append("verifying a lot's proof bundle by lineage length (JSON-RPC round trips, bundle bytes):")
        for n, row in report["scaling"].items():
            lines.append(
                f"  {n:>6} events: {row['ms']:>9.1f} ms  {row['rpc_calls']:>3} round trips  "
                f"{row['bundle_bytes']} B"
            )
    if "rss_mb" in report:
        events = report["rss"]["events"]
        farmers = report["rss"].get("farmers")
        lines.append(
            f"resident memory (MB) while {events} events of {farmers} farmers are recorded and anchored:"
        )
        lines.append(f"  {'at':<32} {'events':>9} {'serve':>8} {'worker':>8}")
        for row in report["rss_samples"]:
            lines.append(f"  {row['at']:<32} {row['events']:>9} {row['serve']:>8.1f} {row['worker']:>8.1f}")
        peak = report["rss"].get("peak_mb")
        if peak:
            lines.append(
                f"  highest, read every 0.5 s: serve {peak['serve']:.1f}, worker {peak['worker']:.1f}; "
                f"origin-risk learning {peak['risk_learn']:.1f} "
                f"({report['rss']['risk_learnings_seen']} runs, "
                "each a process of its own)"
            )
    if "bench_seconds" in report:
        lines.append(
            "seconds per part: " + ", ".join(f"{k} {v:g}" for k, v in report["bench_seconds"].items())
        )
    return lines


def _s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"
