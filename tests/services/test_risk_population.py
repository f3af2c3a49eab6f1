"""The ledger's origin-risk population (photo pairs, unusual farmer-seasons, crop models) is learned from the
risk facts written with each event, by the leading worker's ``trace risk-learn`` into a table the servers
read, never per request: a request reads its scope and the stored population. What the population adds (a
reused photo, a new farmer-season) shows once it is learned again, and then the answer is the whole
ledger's.

Real SQLite and PostgreSQL, with the synthetic season of ``trace risk-bench`` written as recording would."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from alembic import command
from sqlalchemy import event
from test_risk_scope import (
    _lot_on,
    facts_from_bodies,
    record_ledger,
    same,
    stored_facts,
    unrelated_records,
    whole_ledger_risk,
)

from traceability.domain.events import Harvest, Planting
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import (
    LotRisk,
    PlotFact,
    RiskLedger,
    Signal,
    learn_population,
    population_from_json,
    population_to_json,
)
from traceability.services import risk
from traceability.services.risk import RiskCaches, lot_risk, risk_ledger
from traceability.services.risk_bench import generate_season
from traceability.store.database import alembic_config, migrate, transaction
from traceability.store.repository import Repository
from traceability.workers.risk_learner import RiskLearner


@contextmanager
def statements(engine: Any) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def lineage_of(db: Any, lot: str) -> list[str]:
    with transaction(db.sessions) as session:
        return sorted(Repository(session).lineage_lots(lot))


def test_requests_never_learn_the_population_and_what_they_read_does_not_grow_with_the_ledger(
    db: Any,
) -> None:
    season = generate_season(7, farmers=60)
    record_ledger(db.sessions, season.ledger)
    caches = RiskCaches()
    lots = sorted(season.lots)
    with transaction(db.sessions) as session:
        lot_risk(session, lots[0], None, caches=caches)  # none stored yet: the first question learns it
    assert caches.learnings == 1
    assert not risk.population_due(db.sessions, ttl_s=0.0)  # ... and stores it
    caches = RiskCaches()  # another server: reads the stored one
    lot = sorted(season.honest_lots)[0]
    lineage = lineage_of(db, lot)
    with statements(db.engine) as before, transaction(db.sessions) as session:
        lot_risk(session, lot, None, lineage=lineage, caches=caches)
    with transaction(db.sessions) as session:
        [(_, crop, _, district, planted)] = Repository(session).risk_plantings([lot])
    record_ledger(db.sessions, unrelated_records(crop, district, planted))
    with transaction(db.sessions) as session:
        for other in lots[1:30]:
            lot_risk(session, other, None, caches=caches)
    assert caches.learnings == 0  # the ledger changed, but requests only read what is stored
    caches.assessments.clear()
    with statements(db.engine) as after, transaction(db.sessions) as session:
        stale = lot_risk(session, lot, None, lineage=lineage, caches=caches)
    # the same questions, whatever was recorded elsewhere, and the population's body read once (before)
    assert len(after) == len(before) - 1, (before, after)
    bodies = [s for s in after if "events.body" in s]
    assert len(bodies) == 1, bodies  # the lineage's own events; no peer's body is read
    assert not [s for s in after if "risk_populations.body" in s]

    assert risk.population_due(db.sessions, ttl_s=0.0)  # the worker learns it again
    risk.relearn(db.sessions, None)
    with transaction(db.sessions) as session:
        fresh = lot_risk(session, lot, None, lineage=lineage, caches=caches)
        assert same(fresh, whole_ledger_risk(session, lot, lineage))
    assert caches.learnings == 0
    assert stale.model["harvest_lots"] < fresh.model["harvest_lots"]


def _copy_photo_lot(plot: PlotFact, code: str, crop: str, planted: Any, sha: str) -> RiskLedger:
    """A new farmer's lot whose harvest shows ``sha``: another lot's photo, already hashed."""
    entries = _lot_on(plot, code, crop, planted, "900")
    harvest = entries[1].event
    assert isinstance(harvest, Harvest)
    copied = harvest.model_copy(update={"evidence": (sha,)})
    return RiskLedger([entries[0], LedgerEntry(entries[1].hash, copied)], {plot.code: plot})


def test_a_reused_photo_and_a_new_farmer_season_show_once_learned_and_then_as_the_whole_ledger(
    db: Any,
) -> None:
    season = generate_season(11, farmers=40)
    record_ledger(db.sessions, season.ledger)
    caches = RiskCaches()
    [(sha, source)] = [
        (sha, e.event)
        for e in season.ledger.entries
        for sha in e.event.evidence
        if isinstance(e.event, Harvest)
    ][:1]
    assert isinstance(source, Harvest)
    lineage = lineage_of(db, source.lot_code)
    with transaction(db.sessions) as session:
        first = lot_risk(session, source.lot_code, None, lineage=lineage, caches=caches)

    def new_pairs(answer: LotRisk) -> list[Signal]:
        return [s for s in answer.signals if s.code == "photo_reused" and "LNEW-0001" in s.lots]

    [planting] = [
        e.event
        for e in season.ledger.entries
        if isinstance(e.event, Planting) and e.event.lot_code == source.lot_code
    ]
    assert isinstance(planting, Planting) and planting.authority is not None
    known = season.ledger.plots[planting.plot_id]
    plot = PlotFact("PNEW-001", "F-NEW001", Decimal("4"), known.district, known.authority, 15.0, 104.0)
    record_ledger(db.sessions, _copy_photo_lot(plot, "LNEW-0001", planting.crop, planting.event_time, sha))
    with transaction(db.sessions) as session:
        within = lot_risk(session, source.lot_code, None, lineage=lineage, caches=caches)
        assert new_pairs(within) == []  # the population is the stored one until it is learned again
    risk.relearn(db.sessions, None)
    with transaction(db.sessions) as session:
        seen = lot_risk(session, source.lot_code, None, lineage=lineage, caches=caches)
        [pair] = new_pairs(seen)
        assert set(pair.lots) == {source.lot_code, "LNEW-0001"}
        assert seen.model["farmer_seasons"] == first.model["farmer_seasons"] + 1
        assert same(seen, whole_ledger_risk(session, source.lot_code, lineage))


def test_events_recorded_before_the_facts_were_kept_get_them_when_the_database_is_upgraded(db: Any) -> None:
    command.downgrade(alembic_config(db.url), "0006")
    season = generate_season(5, farmers=40)
    record_ledger(db.sessions, season.ledger, facts=False)
    migrate(db.url)
    with transaction(db.sessions) as session:
        backfilled = stored_facts(session)
        assert backfilled == facts_from_bodies(session)
        assert len(backfilled) >= 2 * len(season.lots)  # every harvest lot's planting and harvest at least
    with transaction(db.sessions) as session:
        lot = sorted(season.lots)[0]
        lineage = lineage_of(db, lot)
        assert same(
            lot_risk(session, lot, None, caches=RiskCaches()), whole_ledger_risk(session, lot, lineage)
        )


def test_the_leading_workers_learner_learns_in_a_process_of_its_own_when_due_and_only_then(db: Any) -> None:
    season = generate_season(7, farmers=40)
    record_ledger(db.sessions, season.ledger)

    def due(ttl_s: float) -> bool:
        return risk.population_due(db.sessions, ttl_s)

    learner = RiskLearner(due, ttl_s=3600.0, env={"TRACE_DATABASE_URL": db.url})

    def learn() -> None:
        learner.poll()  # due: starts ``trace risk-learn``
        assert learner.running
        deadline = time.monotonic() + 120
        while learner.running and time.monotonic() < deadline:
            time.sleep(0.2)
            learner.poll()
        assert not learner.running and learner.failed == 0

    learn()  # none stored
    assert learner.learned == 1
    with transaction(db.sessions) as session:
        stored = Repository(session).stored_population("default")
        assert stored is not None
        whole = learn_population(risk_ledger(session, None))
    assert population_from_json(stored[2]) == whole  # what the whole ledger's events give
    learner.poll()
    assert not learner.running  # stored and current: nothing to learn
    with transaction(db.sessions) as session:
        [(_, crop, _, district, planted)] = Repository(session).risk_plantings([sorted(season.lots)[0]])
    record_ledger(db.sessions, unrelated_records(crop, district, planted))
    learner.poll()
    assert not learner.running  # the ledger changed, but the stored one is younger than the TTL
    learner = RiskLearner(due, ttl_s=0.0, env={"TRACE_DATABASE_URL": db.url})
    learn()
    with transaction(db.sessions) as session:
        assert not risk.population_state(session).due(0.0)
    learner.stop()


def test_a_stored_population_reads_back_equal_to_the_learned_one() -> None:
    population = learn_population(generate_season(11, farmers=40).ledger)
    assert population.photo_signals and population.crop_models and population.anomaly.scores
    assert population_from_json(population_to_json(population)) == population


def test_a_server_does_not_load_scikit_learn_until_it_learns_a_population() -> None:
    """scikit-learn (the isolation forest, which informs but does not decide) is most of a fresh server's
    memory: it is imported where the forest is fitted, not when the app is built."""
    code = (
        "import sys\n"
        "from traceability.main import create_app\n"
        "import traceability.services.risk, traceability.web.officer\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported at start'\n"
        "from traceability.domain.risk import learn_population\n"
        "from traceability.services.risk_bench import generate_season\n"
        "learn_population(generate_season(3, farmers=40).ledger)\n"
        "assert 'sklearn' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
