"""``rss_mb``: the resident memory of ``trace serve`` and ``trace worker`` while a large ledger is loaded.

Both run as processes (:class:`~traceability.services.bench_load.Deployment`) on a SQLite file in a temporary
directory. Events arrive through the batch API from concurrent clients; VmRSS (the process and any children
it forks) is sampled at the start, every ``sample_every`` acknowledged events, once every event is anchored,
and after a few provenance page and verify requests at the end; a thread reads it every half second for each
one's peak. The worker is measured without the origin-risk learning it starts (``trace risk-learn``, a
process of its own that ends when it has stored the population), whose peak is reported apart. The samples
are reported beside the final figures so that "flat" can be judged: memory that grows with the ledger shows
as a rising series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from traceability.services.apikeys import create_api_key
from traceability.services.bench_load import (
    BATCH_SIZE,
    DEFAULT_BLOCK_TIME_S,
    Deployment,
    descendants,
    drive,
    request,
    rss_mb,
    wait_anchored,
)
from traceability.store import models
from traceability.store.database import make_sessionmaker, transaction

FARMERS_PER_CLIENT = 64
"""Farmers each client records for in turn. A million events are about 143,000 harvest lots: at one farmer
per client (8 farmers) each farmer-season would hold 18,000 lots, which no farm has, and a lot's origin risk
reads its farmer's season (capacity across the farmer's plots). 64 per client (512 farmers, about 280 lots
each) is still far more than a real farmer-season."""

# The probes at the end come from one address: measure memory, not the public rate limit.
UNLIMITED = {"TRACE_PUBLIC_RATE_PER_MIN": "1000000", "TRACE_IMPORTER_RATE_PER_MIN": "1000000"}


def rss_under_load(
    workdir: Path,
    *,
    clients: int,
    farmers_per_client: int = FARMERS_PER_CLIENT,
    events: int,
    sample_every: int = 100_000,
    probes: int = 5,
    block_time_s: float = DEFAULT_BLOCK_TIME_S,
    anchor_timeout_s: float = 3600.0,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Load ``events`` through the batch API, wait until all are anchored, request a few pages and verdicts;
    ``rss_mb`` is the last sample (MB), ``rss_samples`` every sample with the events acknowledged then."""
    with Deployment(
        workdir,
        clients,
        farmers_per_client=farmers_per_client,
        worker=True,
        block_time_s=block_time_s,
        settings=UNLIMITED,
    ) as deployment:
        assert deployment.serve is not None and deployment.anchor_worker is not None
        serve, worker = deployment.serve.pid, deployment.anchor_worker.pid
        samples: list[dict[str, Any]] = []
        peaks = PeakSampler(serve, worker)

        def sample(at: str, acknowledged: int) -> None:
            row = {"at": at, "events": acknowledged, **peaks.now()}
            samples.append(row)

        def loaded(acknowledged: int) -> None:
            if acknowledged >= len(samples) * sample_every:
                sample("recorded", acknowledged)
                progress(f"{acknowledged} events recorded")

        sample("start", 0)
        peaks.start()
        t0 = time.perf_counter()
        load = drive(deployment, batch=BATCH_SIZE, events=events, on_progress=loaded)
        record_s = time.perf_counter() - t0
        if samples[-1]["events"] != load.events:
            sample("recorded", load.events)
        progress(f"waiting for the worker to anchor {load.events} events")
        anchored = wait_anchored(deployment.db, load.events, anchor_timeout_s)
        anchor_s = time.perf_counter() - t0
        sample("anchored", anchored)
        answers = _probe(deployment, probes)
        sample("after page and verify requests", anchored)
        peaks.stop()
    final = samples[-1]
    return {
        "rss_mb": {"serve": final["serve"], "worker": final["worker"]},
        "rss_samples": samples,
        "rss": {
            "events": load.events,
            "record_errors": load.errors,
            "anchored": anchored,
            "record_s": round(record_s, 1),
            "anchored_after_s": round(anchor_s, 1),
            "clients": clients,
            "farmers": clients * farmers_per_client,
            "probe_answers": answers,
            "peak_mb": peaks.peaks,
            "risk_learnings_seen": peaks.learnings,
            **({"first_errors": load.first_errors} if load.first_errors else {}),
        },
    }


class PeakSampler:
    """Resident memory read every :attr:`every_s` in a thread: ``serve`` (with any process it forks),
    ``worker`` (the worker alone) and ``risk_learn`` (the population learning the worker starts, a process
    of its own while it runs), each one's highest in :attr:`peaks`."""

    every_s = 0.5

    def __init__(self, serve: int, worker: int) -> None:
        self._serve, self._worker = serve, worker
        self.peaks = {"serve": 0.0, "worker": 0.0, "risk_learn": 0.0}
        self._learners: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-peaks", daemon=True)

    @property
    def learnings(self) -> int:
        """How many learning processes were seen."""
        return len(self._learners)

    def now(self) -> dict[str, float]:
        learners = [p for p in descendants(self._worker) if _is_learner(p)]
        self._learners.update(learners)
        row = {
            "serve": rss_mb(self._serve),
            "worker": rss_mb(self._worker, exclude=learners),
            "risk_learn": round(sum(rss_mb(p) for p in learners), 1),
        }
        for key, value in row.items():
            self.peaks[key] = max(self.peaks[key], value)
        return row

    def _run(self) -> None:
        while not self._stopping.wait(self.every_s):
            self.now()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


def _is_learner(pid: int) -> bool:
    try:
        return b"risk-learn" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _probe(deployment: Deployment, count: int) -> dict[str, int]:
    """``count`` provenance pages and verdicts of packed lots spread evenly over all of them (so over the
    farmers, in code order); answers by status."""
    with transaction(make_sessionmaker(deployment.db)) as s:
        key = create_api_key(s, "bench-rss").key
        packed = s.scalars(
            select(models.Lot.code).where(models.Lot.code.like("P%")).order_by(models.Lot.code)
        ).all()
        probed = packed[:: max(1, len(packed) // max(count, 1))][:count]
    answers: dict[str, int] = {}
    for lot in probed:
        for path, headers in (
            (f"/p/{lot}", {}),
            (f"/api/v1/lots/{lot}/verify", {"Authorization": f"Bearer {key}"}),
        ):
            status, _ = request(deployment.port, "GET", path, headers=headers)
            answers[str(status)] = answers.get(str(status), 0) + 1
    return answers
