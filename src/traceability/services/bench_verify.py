"""How verification's cost grows with a lineage's length (issue 9, the ``scaling`` key of ``trace bench``).

For lineages of 10, 100 and 1,000 events (one lot each: planting, harvest, then gradings of 1 kg, anchored
in batches of 256 as the worker does), recorded in a throwaway SQLite ledger and anchored on the given
registry's chain, it measures what an importer pays to verify the lot's proof bundle: the time of
``verify_bundle`` (median of a few runs, ms), the HTTP round trips to the node (each JSON-RPC batch or single
call counts one, through a counting provider) and the bundle's size in bytes as it is served.

The figures show whether the cost grows no faster than linearly in events (time, bytes) and whether round
trips grow with batches of reads, not with events (they should stay a small constant up to ~500 reads per
batch). Not wired into the CLI here: ``trace bench`` calls :func:`scaling`.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain import codec
from traceability.domain.events import Event, Grading, Harvest, Place, Planting, Quantity
from traceability.services.anchoring import Anchorer
from traceability.services.bench import bench_farmer
from traceability.services.events import record_event
from traceability.services.parties import enrol_plot
from traceability.services.proof import build_bundle
from traceability.services.verify import verify_bundle
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

ID_BASE = "https://bench.invalid"
SIZES = (10, 100, 1000)
HARVEST_KG = 1000
"""Enough for 998 gradings of 1 kg (the 1,000-event lineage) on 2.5 rai, a plausible vegetable yield."""


class CountingProvider(HTTPProvider):
    """An HTTP provider that counts its round trips to the node (a batch is one)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, request_kwargs={"timeout": 60})
        self.round_trips = 0

    def make_request(self, method: Any, params: Any) -> Any:
        self.round_trips += 1
        return super().make_request(method, params)

    def make_batch_request(self, batch_requests: list[tuple[Any, Any]]) -> Any:
        self.round_trips += 1
        return super().make_batch_request(batch_requests)


def lineage(lot: str, plot: str, n_events: int, start: datetime) -> list[Event]:
    """``n_events`` events of one lot: planting, harvest, then gradings of 1 kg, an hour apart."""
    if not 2 <= n_events <= HARVEST_KG + 2:
        raise ValueError(f"a lineage here has 2 to {HARVEST_KG + 2} events, not {n_events}")
    hours = iter(range(n_events))

    def at(place: str) -> dict[str, Any]:
        when = start + timedelta(hours=next(hours))
        return {"event_id": uuid.uuid4(), "actor": "F-9101", "place": Place(id=place), "event_time": when}

    crop = {"crop": "organic-veg", "variety": "ผักคะน้า", "plot_id": plot, "lot_code": lot}
    events: list[Event] = [
        Planting(kind="planting", area_rai=Decimal("2.5"), **crop, **at(plot)),
        Harvest(kind="harvest", quantity=Quantity(value=Decimal(HARVEST_KG)), **crop, **at(plot)),
    ]
    events += [
        Grading(
            kind="grading",
            lot_code=lot,
            grade=f"คัดออก ครั้งที่ {n + 1}",
            quantity=Quantity(value=Decimal(1)),
            disposition="non_conformant",
            **at("PH-V"),
        )
        for n in range(n_events - 2)
    ]
    return events


def scaling(
    registry: TraceRegistry,
    rpc_url: str,
    workdir: Path,
    *,
    sizes: Sequence[int] = SIZES,
    runs: int = 3,
) -> dict[str, dict[str, Any]]:
    """Per lineage length (as a string key): ``ms`` (median verify time over ``runs``), ``rpc_calls``
    (round trips of one verification, with a fresh client as an importer's CLI would have) and
    ``bundle_bytes``. ``registry`` must be able to anchor (the anchorer key); ``rpc_url`` is its node."""
    url = f"sqlite:///{workdir / 'verify-scaling.db'}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        lots = _seed(sessions, registry, sizes)
        out: dict[str, dict[str, Any]] = {}
        for n, lot in lots.items():
            with transaction(sessions) as s:
                bundle = build_bundle(s, lot, chain_id=registry.chain_id, contract=registry.address)
            size = len(codec.dumps(bundle.to_json()).encode())
            times: list[float] = []
            trips = 0
            for _ in range(max(1, runs)):
                provider = CountingProvider(rpc_url)
                reader = TraceRegistry(Web3(provider), registry.address)
                t0 = time.perf_counter()
                verdict = verify_bundle(bundle, reader, confirmations=0)
                times.append((time.perf_counter() - t0) * 1000)
                trips = provider.round_trips
                if verdict.status.value == "failed":
                    codes = sorted({f.code.value for f in verdict.findings})
                    raise RuntimeError(f"the {n}-event lineage did not verify: {codes}")
            out[str(n)] = {"ms": round(statistics.median(times), 2), "rpc_calls": trips, "bundle_bytes": size}
        return out
    finally:
        engine.dispose()


def _seed(sessions: Any, registry: TraceRegistry, sizes: Sequence[int]) -> dict[int, str]:
    """Record one lot per size (its own plot) and anchor them all; the lot code per size."""
    lots = {n: f"BENCH-V{n}" for n in sizes}
    start = datetime.now(UTC) - timedelta(days=60)
    with transaction(sessions) as s:
        farmer = bench_farmer(s, authority="LAO-BENCH-V", farmer="F-9101", phone="0800000101")
        for n in sizes:
            enrol_plot(
                s, code=f"PLOT-V{n}", farmer=farmer, village_th="-", village_en="-", area_rai=Decimal("2.5")
            )
    for n, lot in lots.items():
        with transaction(sessions) as s:
            for event in lineage(lot, f"PLOT-V{n}", n, start):
                record_event(s, event, id_base=ID_BASE)
    Anchorer(sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    return lots


__all__ = ["SIZES", "CountingProvider", "lineage", "scaling"]


def verify_scaling(sizes: Sequence[int] = SIZES, *, runs: int = 3) -> dict[str, dict[str, Any]]:
    """:func:`scaling` on an Anvil node and a TraceRegistry of its own, in a temporary directory: what
    `trace bench` reports under ``scaling``."""
    import tempfile

    from traceability.chain.devnode import AnvilNode
    from traceability.services.runtime import make_web3

    with tempfile.TemporaryDirectory(prefix="trace-bench-verify-") as tmp, AnvilNode() as node:
        registry = TraceRegistry.deploy(make_web3(node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
        return scaling(registry, node.rpc_url, Path(tmp), sizes=sizes, runs=runs)
