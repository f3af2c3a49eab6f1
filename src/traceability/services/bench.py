"""``trace bench``: gas per anchored event by batch size, and end-to-end throughput, on a fresh local Anvil.

Everything is measured in one run on one machine, so the ratios are what to compare: the per-event gas of
batch size 1 against 1024, and events/s against the per-event mode.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy.orm import Session

from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.events import Harvest, Place, Planting, Quantity
from traceability.domain.merkle import MerkleTree
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.parties import enrol_authority, enrol_farmer, enrol_plot
from traceability.services.runtime import make_web3
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction
from traceability.store.models import Farmer

DEFAULT_BATCH = 256


def gas_by_batch_size(registry: TraceRegistry, sizes: list[int]) -> list[dict[str, Any]]:
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


def throughput(registry: TraceRegistry, workdir: Path, events: int, batch_max: int) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'bench.db'}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    id_base = "https://bench.invalid"
    lots = max(1, events // 64)
    with transaction(sessions) as s:
        farmer = bench_farmer(s, authority="LAO-BENCH", farmer="F-9000", phone="0800000000")
        enrol_plot(
            s, code="PLOT-BENCH", farmer=farmer, village_th="-", village_en="-", area_rai=Decimal(10000)
        )
    start = datetime.now(UTC) - timedelta(days=1)

    def common(i: int) -> dict[str, Any]:
        return {
            "event_id": uuid.uuid4(),
            "actor": "F-9000",
            "place": Place(id="PLOT-BENCH"),
            "event_time": start + timedelta(seconds=i),
        }

    t0 = time.perf_counter()
    for i in range(events):
        lot = f"BENCH-{i % lots:05d}"
        with transaction(sessions) as s:
            if i < lots:
                ev: Any = Planting(
                    kind="planting",
                    lot_code=lot,
                    plot_id="PLOT-BENCH",
                    crop="organic-veg",
                    area_rai=Decimal(10),
                    **common(i),
                )
            else:
                ev = Harvest(
                    kind="harvest",
                    lot_code=lot,
                    plot_id="PLOT-BENCH",
                    crop="organic-veg",
                    quantity=Quantity(value=Decimal(1)),
                    **common(i),
                )
            record_event(s, ev, id_base=id_base)
    t1 = time.perf_counter()
    anchorer = Anchorer(sessions, registry, batch_max=batch_max, confirmations=0)
    stats = anchorer.run_once(poll_s=0.05)
    t2 = time.perf_counter()
    engine.dispose()
    return {
        "batch_size": batch_max,
        "events": events,
        "batches": stats.batches,
        "record_s": t1 - t0,
        "anchor_s": t2 - t1,
        "seconds": t2 - t0,
        "record_per_s": events / (t1 - t0),
        "anchor_per_s": events / (t2 - t1),
        "events_per_s": events / (t2 - t0),
        "gas_used": stats.gas_used,
    }


def run_bench(*, sizes: list[int], events: int, batch_max: int = DEFAULT_BATCH) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as tmp, AnvilNode() as node:
        w3 = make_web3(node.rpc_url)
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        gas = gas_by_batch_size(registry, sizes)
        per_event = throughput(registry, Path(tmp), min(events, 256), 1)
        (Path(tmp) / "b").mkdir()
        batched = throughput(registry, Path(tmp) / "b", events, batch_max)
        return {
            "anvil": node.rpc_url,
            "machine": {"cpus": os.cpu_count()},
            "gas": gas,
            "throughput": batched,
            "throughput_per_event_mode": per_event,
            "speedup_vs_per_event": batched["events_per_s"] / per_event["events_per_s"],
        }
