"""`trace worker --once` as a real process against an Anvil that mines only on transactions: it says what it
waits for while it waits, and when confirmations can never come it says why and exits non-zero."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.devnode import AnvilNode
from traceability.config import Settings
from traceability.services.deploy import ensure_deployed
from traceability.services.events import record_event
from traceability.services.runtime import Runtime


@pytest.fixture(scope="module")
def automine() -> Iterator[AnvilNode]:
    """A node of its own with no block time: a block only when a transaction comes (Anvil's default)."""
    with AnvilNode() as node:
        yield node


@pytest.fixture
def var_dir(automine: AnvilNode, tmp_path: Path) -> Path:
    """A migrated SQLite database, TraceRegistry deployed, and one event recorded and not yet anchored."""
    rt = Runtime(Settings(var_dir=tmp_path, rpc_url=automine.rpc_url))
    try:
        rt.migrate()
        ensure_deployed(rt)
        with rt.transaction() as session:
            seed_parties(session, rt.registry)
        with rt.transaction() as session:
            record_event(session, lifecycle()[0], id_base=ID_BASE)
    finally:
        rt.close()
    return tmp_path


def trace(var_dir: Path, rpc_url: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    clean |= {"TRACE_VAR_DIR": str(var_dir), "TRACE_RPC_URL": rpc_url} | env
    return subprocess.run(
        [sys.executable, "-m", "traceability.cli", *argv],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _log_records(err: str) -> list[dict[str, Any]]:
    """The worker's log: one JSON object a line (TRACE_LOG_FORMAT's default for serve and worker)."""
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_worker_once_says_the_chain_stalled_and_exits_non_zero(var_dir, automine):
    start = time.monotonic()
    done = trace(
        var_dir,
        automine.rpc_url,
        "worker",
        "--once",
        "--timeout",
        "6",
        TRACE_CONFIRMATIONS="2",
        TRACE_WORKER_PROGRESS_S="1",
        TRACE_STALL_WARNING_S="2",
    )
    elapsed = time.monotonic() - start
    assert done.returncode != 0, done.stdout + done.stderr
    assert 6 <= elapsed < 30
    err = done.stderr
    error = [line for line in err.splitlines() if line.startswith("trace worker: error:")]
    assert len(error) == 1, err
    assert "the chain is not producing blocks" in error[0] and "TRACE_CONFIRMATIONS" in error[0]
    assert "anvil --block-time 1" in error[0]

    # Along the way: a progress line every second, naming the block the mined batch needs (its block + 2) ...
    progress = [r for r in _log_records(err) if r["level"] == "INFO" and r["message"].startswith("waiting: ")]
    assert 4 <= len(progress) <= 8, err
    times = [datetime.fromisoformat(r["time"]) for r in progress]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert all(0.8 <= gap < 2.0 for gap in gaps), gaps
    needs = re.search(
        r"chain head (\d+); TRACE_CONFIRMATIONS=2: batch \d+ \(block (\d+)\) needs block (\d+)", err
    )
    assert needs is not None, err
    head, block, needed = map(int, needs.groups())
    assert head == block and needed == block + 2
    assert "batches sending=0 mined=1, events pending=0" in progress[-1]["message"]
    # ... and a plain warning once no block has come for the stall setting (2 s), long before the timeout.
    warnings = [
        r for r in _log_records(err) if r["level"] == "WARNING" and "no new block for" in r["message"]
    ]
    assert warnings and "not producing blocks" in warnings[0]["message"]
    assert datetime.fromisoformat(warnings[0]["time"]) < times[-1]


def test_worker_once_with_no_confirmations_needed_exits_zero(var_dir, automine):
    done = trace(var_dir, automine.rpc_url, "worker", "--once", "--timeout", "20", TRACE_CONFIRMATIONS="0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "anchored 1 events in 1 batches" in done.stdout
    assert "no new block" not in done.stderr
