"""The ledger's origin-risk population (photo pairs, unusual farmer-seasons, crop models) is learned from
facts kept per database and brought up to date from what is new, never per request: a request reads its
scope, and a population past its TTL is learned again in the background while answers keep the last one.
What the population adds (a reused photo, a new farmer-season) shows within that lag, and then the answer is
the whole ledger's.

Real SQLite and PostgreSQL, with the synthetic season of ``trace risk-bench`` written as recording would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event
from test_risk_scope import _lot_on, record_ledger, same, unrelated_records, whole_ledger_risk

from factories import ID_BASE
from traceability.domain import codec
from traceability.domain.epcis import in_canonical_order, to_epcis
from traceability.domain.events import Harvest, Planting
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import LotRisk, PlotFact, RiskLedger, Signal
from traceability.domain.states import LotRole, OutboxStatus
from traceability.services import risk
from traceability.services.risk import RiskCaches, lot_risk
from traceability.services.risk_bench import generate_season
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository


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
    now = [0.0]
    caches = RiskCaches(clock=lambda: now[0], background=True)
    lots = sorted(season.lots)
    with transaction(db.sessions) as session:
        lot_risk(session, lots[0], None, caches=caches)  # a process's first question learns it
    assert caches.learnings == 1
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
    assert caches.learnings == 1  # the ledger changed, but within the TTL nothing is learned
    caches.assessments.clear()
    with statements(db.engine) as after, transaction(db.sessions) as session:
        lot_risk(session, lot, None, lineage=lineage, caches=caches)
    # the same questions, whatever was recorded elsewhere (the facts' reading: nothing new since)
    assert len(after) == len(before), (before, after)
    bodies = [s for s in after if "events.body" in s]
    assert len(bodies) == 1, bodies  # the lineage's own events; no peer's body is read

    now[0] += caches.population_ttl_s
    with transaction(db.sessions) as session:
        stale = lot_risk(session, lot, None, lineage=lineage, caches=caches)  # answered at once
        caches.join()
        assert caches.learnings == 2
        fresh = lot_risk(session, lot, None, lineage=lineage, caches=caches)
        assert same(fresh, whole_ledger_risk(session, lot, lineage))
    assert stale.model["harvest_lots"] < fresh.model["harvest_lots"]


def _copy_photo_lot(plot: PlotFact, code: str, crop: str, planted: Any, sha: str) -> RiskLedger:
    """A new farmer's lot whose harvest shows ``sha``: another lot's photo, already hashed."""
    entries = _lot_on(plot, code, crop, planted, "900")
    harvest = entries[1].event
    assert isinstance(harvest, Harvest)
    copied = harvest.model_copy(update={"evidence": (sha,)})
    return RiskLedger([entries[0], LedgerEntry(entries[1].hash, copied)], {plot.code: plot})


def test_a_reused_photo_and_a_new_farmer_season_show_within_the_ttl_and_then_as_the_whole_ledger(
    db: Any,
) -> None:
    season = generate_season(11, farmers=40)
    record_ledger(db.sessions, season.ledger)
    now = [0.0]
    caches = RiskCaches(clock=lambda: now[0], background=True)
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
        assert new_pairs(within) == []  # the population is the last one until its TTL
        now[0] += caches.population_ttl_s
        lot_risk(session, source.lot_code, None, lineage=lineage, caches=caches)
        caches.join()
        seen = lot_risk(session, source.lot_code, None, lineage=lineage, caches=caches)
        [pair] = new_pairs(seen)
        assert set(pair.lots) == {source.lot_code, "LNEW-0001"}
        assert seen.model["farmer_seasons"] == first.model["farmer_seasons"] + 1
        assert same(seen, whole_ledger_risk(session, source.lot_code, lineage))


def _add_event(session: Any, entry: LedgerEntry, seq: int) -> None:
    ev = entry.event
    session.add(
        models.Event(
            id=ev.event_id,
            kind=ev.kind,
            event_time=ev.event_time,
            actor=ev.actor,
            body=codec.dumps(in_canonical_order(to_epcis(ev, id_base=ID_BASE))),
            hash=entry.hash,
        )
    )
    session.flush()
    role = LotRole.OUT if isinstance(ev, Planting) else LotRole.SUBJECT
    session.add(models.EventLot(event_id=ev.event_id, lot_code=ev.lot_code, seq=seq, role=role))
    session.add(models.Outbox(event_id=ev.event_id, status=OutboxStatus.PENDING))
    session.flush()


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_an_event_committed_after_a_later_numbered_one_is_still_read(db: Any) -> None:
    """PostgreSQL numbers outbox rows when they are inserted, not when they are committed: the facts'
    reading remembers the numbers it found missing and reads them again, so a slow recording is not lost."""
    season = generate_season(7, farmers=60)
    record_ledger(db.sessions, season.ledger)
    caches = RiskCaches()
    with transaction(db.sessions) as session:
        risk._read_facts(session, None, caches)
        database = risk._database(session)
        plot_row = session.query(models.Plot).order_by(models.Plot.code).first()
        assert plot_row is not None
        authority = session.get(models.Authority, plot_row.authority_id)
        assert authority is not None
    facts = caches.ledger_facts(database)
    count = len(facts.facts())
    plot = PlotFact(plot_row.code, "F-SLOW", plot_row.area_rai, None, authority.code)
    slow, fast = (
        _lot_on(plot, code, "hom-mali-105", datetime(2025, 6, day, tzinfo=UTC), "500")
        for code, day in (("LSLOW-001", 1), ("LFAST-001", 2))
    )

    def rice_lot(code: str) -> models.Lot:
        return models.Lot(
            code=code,
            crop="hom-mali-105",
            product_th="ข้าว",
            product_en="rice",
            authority_id=plot_row.authority_id,
            plot_id=plot_row.id,
        )

    held = db.sessions()
    try:
        held.add(rice_lot("LSLOW-001"))
        held.flush()
        for seq, entry in enumerate(slow, 1):
            _add_event(held, entry, seq)  # numbered first, committed last
        with transaction(db.sessions) as session:
            session.add(rice_lot("LFAST-001"))
            session.flush()
            for seq, entry in enumerate(fast, 1):
                _add_event(session, entry, seq)
        with transaction(db.sessions) as session:
            risk._read_facts(session, None, caches)
        with facts.lock:
            assert len(facts.facts()) == count + 2
            assert {f.lots[0] for f in facts.yield_facts(["LFAST-001", "LSLOW-001"])} == {"LFAST-001"}
        held.commit()
    finally:
        held.close()
    with transaction(db.sessions) as session:
        risk._read_facts(session, None, caches)
    with facts.lock:
        assert len(facts.facts()) == count + 4
        assert {f.lots[0] for f in facts.yield_facts(["LFAST-001", "LSLOW-001"])} == {
            "LFAST-001",
            "LSLOW-001",
        }


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
