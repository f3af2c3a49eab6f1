"""`trace soak` small against real processes, and its checker against ledgers it must find fault with.

The soak itself must come out clean on both databases with every kind of request made and the counts agreeing
(acknowledged == stored == anchored once). That a clean result is not the only one it can give is shown two
ways: real clients with a key the server does not know get 401s that are counted and listed, and a run with
no worker leaves every event unanchored, which the checker reports; and the checker, given a real anchored
ledger that is then tampered with (an acknowledged event deleted, an event never acknowledged, an event in two
anchored batches), names each fault. Speed is never asserted. 75 to 90 s in all on a shared 2-core machine.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from factories import ID_BASE, lifecycle, seed_parties
from traceability.cli import main
from traceability.config import Settings
from traceability.domain.states import BatchStatus
from traceability.services.anchoring import Anchorer
from traceability.services.bench_load import Deployment
from traceability.services.events import record_event
from traceability.services.soak import (
    KINDS,
    LIFTED_RATE,
    SoakOptions,
    check_ledger,
    format_table,
    mix,
    report,
)
from traceability.store import models
from traceability.store.database import make_sessionmaker, transaction

CLIENTS = 6


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_soak_makes_every_kind_of_request_with_no_error_and_loses_nothing(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["soak", "--json", "--clients", str(CLIENTS), "--seconds", "8", "--database", database]
    code = main(argv, Settings(var_dir=tmp_path))
    result: dict[str, Any] = json.loads(capsys.readouterr().out)

    assert result["errors"] == 0 and result["error_list"] == [], result["error_list"]
    assert result["problems"] == [], result["problems"]
    assert result["ok"] is True and code == 0
    assert result["database"] == database and result["clients"] == CLIENTS
    requests = result["requests"]
    assert list(requests) == list(KINDS)
    assert all(requests[k] >= CLIENTS for k in KINDS), requests  # each client makes every kind at least once
    assert result["requests_total"] == sum(requests.values())
    assert result["errors_by_kind"] == dict.fromkeys(KINDS, 0)
    for kind in KINDS:
        latency = result["latency_ms"][kind]
        assert 0 < latency["p50"] <= latency["p99"], (kind, latency)

    events = result["events"]
    assert events["acknowledged"] == events["in_db"] == events["anchored"] > 0
    assert events["lost"] == events["unanchored"] == events["in_several_batches"] == events["extra"] == 0
    # With no refusal every recording request was acknowledged: one event each, or a batch of 2 to 5.
    single, batches = requests["record_single"], requests["record_batch"]
    assert single + 2 * batches <= events["acknowledged"] <= single + 5 * batches
    assert result["reconcile"]["problems"] == 0
    assert result["reconcile"]["events"] == result["reconcile"]["anchored"] == events["in_db"]


def test_refusals_are_counted_and_listed_and_events_left_unanchored_are_found(tmp_path: Path) -> None:
    """Real clients with an importer key the server never issued, and no worker: every importer call is a 401
    counted against its kind, recording and pages are not touched, and the check finds nothing anchored."""
    lifted = {"TRACE_PUBLIC_RATE_PER_MIN": LIFTED_RATE, "TRACE_IMPORTER_RATE_PER_MIN": LIFTED_RATE}
    with Deployment(tmp_path, 2, settings=lifted) as deployment:
        tally = mix(deployment, "ttk_" + "0" * 40, 2.0)
        with transaction(make_sessionmaker(deployment.db)) as s:
            check = check_ledger(s, tally.acknowledged)

    for kind in ("verify", "fsma204", "epcis"):
        assert tally.requests[kind] >= 2 and tally.errors[kind] == tally.requests[kind], kind
    for kind in ("record_single", "record_batch", "page_th", "page_en"):
        assert tally.requests[kind] >= 2 and tally.errors[kind] == 0, kind
    assert tally.error_list and all(" 401 " in e for e in tally.error_list), tally.error_list[:3]
    assert check.in_db == len(tally.acknowledged) > 0 and check.lost == [] and check.extra == []
    assert check.anchored == 0 and check.unanchored == sorted(tally.acknowledged)

    result = report(SoakOptions(clients=2, seconds=2.0), tally, check, [], {}, 2.0, 0.0)
    assert result["ok"] is False
    assert result["errors"] == sum(tally.errors.values()) > 0
    assert len(result["problems"]) == min(50, check.in_db)
    table = format_table(result)
    assert table[-1] == "soak: FAILED" and any(line.startswith("error: verify: GET") for line in table)


def _delete_event(session: Any, event_id: uuid.UUID) -> None:
    """Remove an event and every row that points at it (what losing it would look like)."""
    for model in (models.BatchEvent, models.Outbox, models.EventLot, models.RiskFact):
        session.execute(delete(model).where(model.event_id == event_id))
    session.execute(delete(models.Event).where(models.Event.id == event_id))


def test_the_checker_names_lost_extra_and_doubly_anchored_events(db: Any, registry: Any) -> None:
    seed_parties(db.sessions, registry)
    events = lifecycle()
    for event in events:
        with transaction(db.sessions) as s:
            record_event(s, event, id_base=ID_BASE)
    Anchorer(db.sessions, registry, batch_max=4, confirmations=0).run_once(poll_s=0.05)
    ids = [str(e.event_id) for e in events]

    with transaction(db.sessions) as s:
        clean = check_ledger(s, ids)
    assert clean.ok and clean.problems() == []
    assert clean.acknowledged == clean.in_db == clean.anchored == len(events)

    with transaction(db.sessions) as s:  # one acknowledged event's rows deleted
        _delete_event(s, events[-1].event_id)
    with transaction(db.sessions) as s:  # and the client never told of the first
        check = check_ledger(s, ids[1:])
    assert not check.ok
    assert check.lost == [ids[-1]] and check.extra == [ids[0]]
    assert check.in_db == len(events) - 1 and check.unanchored == [] and check.in_several_batches == []
    assert [p.split(":")[0] for p in check.problems()] == ["lost", "extra"]

    with transaction(db.sessions) as s:  # an event put into a second anchored batch
        batch = models.Batch(root="0x" + "ab" * 32, event_count=1, status=BatchStatus.ANCHORED)
        s.add(batch)
        s.flush()
        s.add(models.BatchEvent(batch_id=batch.id, event_id=events[1].event_id, proof=[]))
    with transaction(db.sessions) as s:
        check = check_ledger(s, ids[:-1])
        stored = {str(i) for i in s.scalars(select(models.Event.id))}
    assert check.in_several_batches == [ids[1]] and check.anchored == len(stored) - 1
    assert check.lost == [] and check.extra == []


def test_an_unreachable_postgresql_is_said_plainly_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["soak", "--database", "postgresql", "--postgres-url", "postgresql://postgres@127.0.0.1:1/test"]
    assert main(argv, Settings(var_dir=tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("trace soak: error: PostgreSQL is not reachable at") and "Traceback" not in err
