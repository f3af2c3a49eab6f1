"""A lot's origin risk read from its scope (its lineage, the lots its signals weigh it against, the ledger's
learned population) is the whole ledger's answer, and what it reads does not grow with unrelated records.

Real SQLite and PostgreSQL; the synthetic season of ``trace risk-bench`` written into the tables as the
recording service would leave them, and ``trace demo``'s ledger recorded through the services on Anvil."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from factories import ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain import codec
from traceability.domain.crops import crop_knowledge
from traceability.domain.epcis import in_canonical_order, to_epcis
from traceability.domain.events import Event, Harvest, Packing, Place, Planting, Quantity, lots_touched
from traceability.domain.lineage import LedgerEntry, created_lots
from traceability.domain.risk import (
    RISK_KINDS,
    EventFacts,
    LotRisk,
    PlotFact,
    RiskLedger,
    assess,
    canonical_crop,
    event_facts,
    learn_population,
    season_of,
)
from traceability.domain.states import LotRole, OutboxStatus
from traceability.services import risk
from traceability.services.demo import seed_demo
from traceability.services.history import parsed_event
from traceability.services.risk import (
    RiskCaches,
    lot_risk,
    risk_ledger,
    risk_queue,
    risk_scope,
    scoped_assessment,
    scoped_ledger,
)
from traceability.services.risk_bench import generate_season
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository, risk_fact_row


def whole_ledger_risk(session: Session, lot: str, lineage: Iterable[str] | None = None) -> LotRisk:
    """What the service answered before it read scopes: every event, plot, place and photo, assessed."""
    return assess(risk_ledger(session, None)).for_lot(lot, lineage)


def record_ledger(sessions: sessionmaker[Session], ledger: RiskLedger, *, facts: bool = True) -> None:
    """Write ``ledger`` into the tables as recording would: authorities by district, farmers, plots, named
    places, photo hashes, lot rows, events with their EPCIS bodies, lot links in chain order, outbox, risk
    facts (unless ``facts`` is false: a database from before they were kept)."""
    with transaction(sessions) as session:
        repo = Repository(session)
        authorities: dict[str, models.Authority] = {}
        farmers: dict[str, models.Farmer] = {}
        for fact in ledger.plots.values():
            if repo.plot_by_code(fact.code) is not None:
                continue
            assert fact.authority is not None and fact.district is not None
            authority = authorities.get(fact.authority) or repo.authority_by_code(fact.authority)
            if authority is None:
                authority = models.Authority(
                    code=fact.authority,
                    name_th=f"อบต. {fact.district}",
                    name_en=f"{fact.district} SAO",
                    district_th=fact.district,
                    province_th="ศรีสะเกษ",
                )
                session.add(authority)
                session.flush()
            authorities[fact.authority] = authority
            farmer = farmers.get(fact.farmer) or repo.farmer_by_code(fact.farmer)
            if farmer is None:
                farmer = models.Farmer(code=fact.farmer, authority_id=authority.id, display_name="เกษตรกร")
                session.add(farmer)
                session.flush()
            farmers[fact.farmer] = farmer
            session.add(
                models.Plot(
                    code=fact.code,
                    farmer_id=farmer.id,
                    authority_id=authority.id,
                    village_th="บ้านทดสอบ",
                    village_en="Ban Thotsop",
                    area_rai=fact.area_rai,
                    lat=Decimal(str(fact.lat)) if fact.lat is not None else None,
                    lon=Decimal(str(fact.lon)) if fact.lon is not None else None,
                )
            )
        for code, (lat, lon) in ledger.places.items():
            if code not in ledger.plots and repo.locations_by_codes([code]) == []:
                session.add(
                    models.Location(
                        code=code,
                        kind="packing_house",
                        name_th=code,
                        name_en=code,
                        lat=Decimal(f"{lat:.6f}"),
                        lon=Decimal(f"{lon:.6f}"),
                    )
                )
        for sha, phash in ledger.photos.items():
            session.add(models.PhotoHash(sha256=sha, phash=f"{phash:016x}"))
        session.flush()
        planted = [e.event for e in ledger.entries if isinstance(e.event, Planting)]
        plot_ids = {p.code: p.id for p in repo.plots_for(sorted({ev.plot_id for ev in planted}), [])}
        for ev in planted:
            assert ev.authority is not None
            if ev.authority not in authorities:
                found = repo.authority_by_code(ev.authority)
                assert found is not None
                authorities[ev.authority] = found
        seq: Counter[str] = Counter(
            {
                lot: head[0]
                for e in ledger.entries
                for lot in lots_touched(e.event)
                if (head := repo.head(lot)) is not None
            }
        )
        crops: dict[str, str] = {}
        for entry in ledger.entries:
            _write(session, entry, plot_ids, authorities, seq, crops, facts)


def _write(
    session: Session,
    entry: LedgerEntry,
    plot_ids: dict[str, int],
    authorities: dict[str, models.Authority],
    seq: Counter[str],
    crops: dict[str, str],
    facts: bool,
) -> None:
    ev = entry.event
    created = set(created_lots(ev))
    if isinstance(ev, Planting):
        crops[ev.lot_code] = ev.crop
        known = crop_knowledge(ev.crop)
        assert known is not None and ev.authority is not None
        session.add(
            models.Lot(
                code=ev.lot_code,
                crop=ev.crop,
                product_th=known.name_th,
                product_en=known.name_en,
                authority_id=authorities[ev.authority].id,
                plot_id=plot_ids[ev.plot_id],
            )
        )
    elif isinstance(ev, Packing):
        for out in ev.outputs:
            crop = crops[ev.inputs[0].lot_code]
            crops[out.lot_code] = crop
            session.add(models.Lot(code=out.lot_code, crop=crop, product_th=crop, product_en=crop))
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
    for lot in lots_touched(ev):
        seq[lot] += 1
        role = LotRole.OUT if lot in created else LotRole.IN if isinstance(ev, Packing) else LotRole.SUBJECT
        session.add(models.EventLot(event_id=ev.event_id, lot_code=lot, seq=seq[lot], role=role))
    session.add(models.Outbox(event_id=ev.event_id, status=OutboxStatus.PENDING))
    fact = risk_fact_row(ev) if facts else None
    if fact is not None:
        Repository(session).insert_risk_facts([fact])


def facts_from_bodies(session: Session) -> dict[str, EventFacts]:
    """The risk facts of every event, read afresh from the stored bodies, by event id."""
    out = {}
    for row in Repository(session).events_of_kinds(RISK_KINDS):
        found = event_facts(parsed_event(row) or pytest.fail(f"{row.id} does not read"))
        if found is not None:
            out[found.event_id] = found
    return out


def stored_facts(session: Session) -> dict[str, EventFacts]:
    return {f.event_id: f for f in Repository(session).risk_all_facts()}


def same(scoped: LotRisk, whole: LotRisk) -> bool:
    return scoped.to_json() == whole.to_json() and scoped.lineage == whole.lineage


# --- the same answers --------------------------------------------------------------------------------------


def test_every_lot_of_a_synthetic_season_scores_as_the_whole_ledger_scores_it(db: Any) -> None:
    season = generate_season(7, farmers=60)
    record_ledger(db.sessions, season.ledger)
    caches = RiskCaches()
    codes_found: set[str] = set()
    large = 0
    with transaction(db.sessions) as session:
        whole = assess(risk_ledger(session, None))
        assert len(whole.signals) > 0
        levels = learn_population(risk_ledger(session, None)).group_levels
        for lot in sorted(season.lots):
            planting = Repository(session).risk_plantings([lot])
            if (
                planting
                and (canonical_crop(planting[0][1]), planting[0][3], season_of(planting[0][4])) in levels
            ):
                # its yield group is not read: its size and median come from the population
                large += 1
                wide = risk_scope(session, [lot]).peers
                assert risk_scope(session, [lot], large_groups=levels.keys()).peers < wide
            lineage = sorted(Repository(session).lineage_lots(lot))
            scoped = lot_risk(session, lot, None, caches=caches)
            expected = whole.for_lot(lot, lineage)
            assert same(scoped, expected), (lot, scoped.to_json(), expected.to_json())
            codes_found |= set(scoped.codes)
    assert large > 100
    # every kind of signal the season was seeded with is among the answers compared
    assert codes_found >= {
        "yield_outlier",
        "capacity_exceeded",
        "too_early_harvest",
        "off_season_harvest",
        "impossible_transport",
        "cold_chain_excursion",
        "photo_reused",
    }, codes_found


def test_the_officers_risk_queue_is_the_whole_ledgers_for_each_authority(
    db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(risk, "QUEUE_CHUNK", 7)  # a queue is assessed a chunk of lots at a time
    season = generate_season(11, farmers=40)
    record_ledger(db.sessions, season.ledger)
    with transaction(db.sessions) as session:
        whole = assess(risk_ledger(session, None))
        authorities = session.query(models.Authority).order_by(models.Authority.code).all()
        assert len(authorities) > 1
        listed = 0
        for authority in authorities:
            queue = risk_queue(session, authority.id, tmp_path, caches=RiskCaches())
            own = Repository(session).lots_of_authority(authority.id)
            assert sorted(e.lot_code for e in queue) == sorted(lot.code for lot in own)
            for entry in queue:
                assert same(entry.risk, whole.for_lot(entry.lot_code)), entry.lot_code
            scores = [(-e.risk.score, e.lot_code) for e in queue]
            assert scores == sorted(scores)
            listed += len(queue)
        assert listed == len(season.lots)


def test_the_demo_laundering_lot_scores_84_from_its_scope_and_every_other_lot_0(
    db: Any, anvil: Any, w3: Any
) -> None:
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    result = seed_demo(db.sessions, registry, id_base=ID_BASE)
    case = result.laundering
    with transaction(db.sessions) as session:
        # recording wrote each event's risk facts with it: what its body says
        assert stored_facts(session) == facts_from_bodies(session) != {}
        for lot in result.lots:
            lineage = sorted(Repository(session).lineage_lots(lot))
            scoped = lot_risk(session, lot, None, caches=RiskCaches())
            assert same(scoped, whole_ledger_risk(session, lot, lineage)), lot
            if lot == case["lot"]:
                assert scoped.score == 84 and "capacity_exceeded" in scoped.codes
            elif lot not in case["lots"].split(","):
                assert scoped.score == 0 and scoped.signals == (), (lot, scoped.to_json())


# --- the bound ---------------------------------------------------------------------------------------------


def _lot_on(plot: PlotFact, code: str, crop: str, planted: datetime, kg: str) -> list[LedgerEntry]:
    here = Place(id=plot.code)
    events: list[Event] = [
        Planting(
            kind="planting",
            event_id=uuid.uuid4(),
            event_time=planted,
            lot_code=code,
            plot_id=plot.code,
            crop=crop,
            area_rai=plot.area_rai,
            authority=plot.authority,
            actor=plot.farmer,
            place=here,
        ),
        Harvest(
            kind="harvest",
            event_id=uuid.uuid4(),
            event_time=planted + timedelta(days=130),
            lot_code=code,
            plot_id=plot.code,
            crop=crop,
            quantity=Quantity(value=Decimal(kg)),
            actor=plot.farmer,
            place=here,
        ),
    ]
    return [LedgerEntry("0x" + e.event_id.hex.ljust(64, "0"), e) for e in events]


def unrelated_records(crop: str, district: str, planted: datetime) -> RiskLedger:
    """Lots the tested lot's signals never compare it with: its crop in another district, its crop and
    district in another season, another crop in its district and season, each on new farmers' plots."""
    other_crop = "watermelon" if crop != "watermelon" else "hom-mali-105"
    groups = (
        ("XD", "NEW-DISTRICT", crop, planted),
        ("XS", district, crop, planted - timedelta(days=365 * 2)),
        ("XC", district, other_crop, planted),
    )
    plots: dict[str, PlotFact] = {}
    entries: list[LedgerEntry] = []
    for tag, where, what, when in groups:
        authority = f"LAO-{tag}" if where == "NEW-DISTRICT" else f"LAO-{tag}-{where}"[:32]
        for i in range(30):
            plot = PlotFact(f"P{tag}-{i:03d}", f"F-{tag}{i:03d}", Decimal("4"), where, authority, 15.0, 104.0)
            plots[plot.code] = plot
            entries += _lot_on(plot, f"L{tag}-{i:04d}", what, when + timedelta(hours=i), str(1500 + 10 * i))
    return RiskLedger(sorted(entries, key=lambda e: (e.event.event_time, e.event.event_id)), plots)


def test_what_one_lots_risk_reads_does_not_grow_with_unrelated_lots_seasons_or_crops(db: Any) -> None:
    season = generate_season(7, farmers=60)
    record_ledger(db.sessions, season.ledger)
    lot = sorted(season.honest_lots)[0]
    with transaction(db.sessions) as session:
        repo = Repository(session)
        lineage = sorted(repo.lineage_lots(lot))
        scope = risk_scope(session, lineage)
        before = scoped_ledger(session, scope)
        [(_, crop, _, district, planted)] = repo.risk_plantings([lot])
        events_before = repo.count_events()
    assert scope.peers and len(before.entries) < len(season.ledger.entries) / 5
    unrelated = unrelated_records(crop, district, planted.astimezone(UTC))
    record_ledger(db.sessions, unrelated)
    with transaction(db.sessions) as session:
        repo = Repository(session)
        assert repo.count_events() == events_before + len(unrelated.entries)
        scope_after = risk_scope(session, lineage)
        after = scoped_ledger(session, scope_after)
        assert scope_after == scope
        assert [e.hash for e in after.entries] == [e.hash for e in before.entries]
        assert after.peers == before.peers
        assert after.plots == before.plots and after.places == before.places
        assert same(
            lot_risk(session, lot, None, caches=RiskCaches()), whole_ledger_risk(session, lot, lineage)
        )


def test_a_harvest_on_the_lots_own_plot_is_seen_at_once_and_the_population_within_its_ttl(
    db: Any,
) -> None:
    """Caches hold while the ledger is unchanged. A lot recorded on the tested lot's plot is in its very next
    answer (its scope widens by that lot: ``capacity_exceeded``); the population (photo pairs, unusual
    farmer-seasons, how many lots there are) is due to be learned again (the worker's ``trace risk-learn``
    once the stored one is a TTL old), and once it is, the answer is the whole ledger's in every figure."""
    season = generate_season(7, farmers=60)
    record_ledger(db.sessions, season.ledger)
    caches = RiskCaches()
    lot = sorted(season.honest_lots)[0]
    [planting] = [
        e.event for e in season.ledger.entries if isinstance(e.event, Planting) and e.event.lot_code == lot
    ]
    assert isinstance(planting, Planting)
    plot = season.ledger.plots[planting.plot_id]
    with transaction(db.sessions) as session:
        lineage = sorted(Repository(session).lineage_lots(lot))
        first = scoped_assessment(session, lineage, None, caches=caches)
        assert scoped_assessment(session, lineage, None, caches=caches) is first
        assert first.for_lot(lot, lineage).score == 0
        scope = risk_scope(session, lineage)
    known = crop_knowledge(planting.crop)
    assert known is not None
    too_much = str(plot.area_rai * known.max_kg_per_rai * 2)
    record_ledger(
        db.sessions, RiskLedger(_lot_on(plot, "LNEW-0001", planting.crop, planting.event_time, too_much), {})
    )
    with transaction(db.sessions) as session:
        assert risk_scope(session, lineage).peers == scope.peers | {"LNEW-0001"}
        seen = lot_risk(session, lot, None, caches=caches)
        assert "capacity_exceeded" in seen.codes and seen.score > 0
        [signal] = [s for s in seen.signals if s.code == "capacity_exceeded"]
        assert set(signal.lots) == {lot, "LNEW-0001"}
        assert seen.model["harvest_lots"] == first.for_lot(lot, lineage).model["harvest_lots"]
    assert risk.population_due(db.sessions, ttl_s=0.0)
    assert not risk.population_due(db.sessions, ttl_s=3600.0)  # a stored population is kept for its TTL
    risk.relearn(db.sessions, None)
    assert not risk.population_due(db.sessions, ttl_s=0.0)
    with transaction(db.sessions) as session:
        assert same(lot_risk(session, lot, None, caches=caches), whole_ledger_risk(session, lot, lineage))
