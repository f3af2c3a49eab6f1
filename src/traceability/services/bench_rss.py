"""``rss_mb``: the resident memory of ``trace serve`` and ``trace worker`` while a large ledger is loaded.

Both run as processes (:class:`~traceability.services.bench_load.Deployment`) on a SQLite file in a temporary
directory. Events arrive through the batch API from concurrent clients; VmRSS (the process and any children
it forks) is sampled at the start, every ``sample_every`` acknowledged events, once every event is anchored,
and after a few provenance page and verify requests at the end. The samples are reported beside the final
figures so that "flat" can be judged: memory that grows with the ledger shows as a rising series.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traceability.services.apikeys import create_api_key
from traceability.services.bench_load import (
    BATCH_SIZE,
    DEFAULT_BLOCK_TIME_S,
    Deployment,
    drive,
    request,
    rss_mb,
    wait_anchored,
)
from traceability.store.database import make_sessionmaker, transaction

# The probes at the end come from one address: measure memory, not the public rate limit.
UNLIMITED = {"TRACE_PUBLIC_RATE_PER_MIN": "1000000", "TRACE_IMPORTER_RATE_PER_MIN": "1000000"}


def rss_under_load(
    workdir: Path,
    *,
    clients: int,
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
        workdir, clients, worker=True, block_time_s=block_time_s, settings=UNLIMITED
    ) as deployment:
        assert deployment.serve is not None and deployment.anchor_worker is not None
        serve, worker = deployment.serve.pid, deployment.anchor_worker.pid
        samples: list[dict[str, Any]] = []

        def sample(at: str, acknowledged: int) -> None:
            row = {"at": at, "events": acknowledged, "serve": rss_mb(serve), "worker": rss_mb(worker)}
            samples.append(row)

        def loaded(acknowledged: int) -> None:
            if acknowledged >= len(samples) * sample_every:
                sample("recorded", acknowledged)
                progress(f"{acknowledged} events recorded")

        sample("start", 0)
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
            "probe_answers": answers,
            **({"first_errors": load.first_errors} if load.first_errors else {}),
        },
    }


def _probe(deployment: Deployment, count: int) -> dict[str, int]:
    """``count`` provenance pages and verdicts of packed lots spread over the clients; answers by status."""
    with transaction(make_sessionmaker(deployment.db)) as s:
        key = create_api_key(s, "bench-rss").key
    answers: dict[str, int] = {}
    for i in range(count):
        clients = len(deployment.members)
        lot = f"P{i % clients:03d}-{i // clients:07d}"
        for path, headers in (
            (f"/p/{lot}", {}),
            (f"/api/v1/lots/{lot}/verify", {"Authorization": f"Bearer {key}"}),
        ):
            status, _ = request(deployment.port, "GET", path, headers=headers)
            answers[str(status)] = answers.get(str(status), 0) + 1
    return answers
