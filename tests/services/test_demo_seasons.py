"""The demo in its real seasons: whatever day ``trace demo`` runs, its honest lots are planted and harvested
when the crop really is (by ``crop_knowledge``), their cold chains read inside each crop's storage range and
their trucks drive at speeds trucks can; and its one laundering case (สวมสิทธิ์) is there for the origin-risk
signals to find: a plot's season total far above what the plot can give, each lot alone passing the old
per-lot checks. The demo is seeded into fresh SQLite ledgers with ``now`` on several days across a year."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from eth_account import Account
from sqlalchemy import select
from web3 import Web3

from factories import ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.crops import CropKnowledge, crop_knowledge
from traceability.domain.events import (
    Certification,
    Cooling,
    Event,
    Harvest,
    Packing,
    Planting,
    TemperatureReading,
    Transport,
    lots_touched,
)
from traceability.domain.lineage import MAX_YIELD_KG_PER_RAI, LedgerEntry, check_mass_balance, check_yield
from traceability.services.demo import (
    MELON_LAST_DAY,
    RICE_LAST_DAY,
    SETTLED,
    DemoResult,
    demo_seasons,
    seed_demo,
)
from traceability.services.events import stored_event
from traceability.store import models
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

BANGKOK = ZoneInfo("Asia/Bangkok")
OLD_CEILING = MAX_YIELD_KG_PER_RAI["hom-mali-105"] * Decimal("1.5")  # the fixed per-lot check's limit
FASTEST_KMH = 90  # a loaded truck's average over a leg, stops included, is well under this


def latest(month: int, day: int) -> datetime:
    """The latest ``day``/``month`` at 10:00 in Bangkok, not after now (no event may be in the future)."""
    today = datetime.now(UTC)
    for year in (today.year, today.year - 1):
        moment = datetime.combine(date(year, month, day), time(10), tzinfo=BANGKOK)
        if moment <= today:
            return moment
    raise AssertionError("unreachable")


# Across a year, and the days just before and after a season's chain has settled (rice: 8 January;
# watermelon: about 22 March). Within a year back, so that the demo's one-year certifications are valid.
NOWS = {
    "5 January": latest(1, 5),
    "10 January": latest(1, 10),
    "20 March": latest(3, 20),
    "25 March": latest(3, 25),
    "1 July": latest(7, 1),
    "15 October": latest(10, 15),
    "today": None,
}


@dataclass
class Seeded:
    now: datetime
    result: DemoResult
    events: list[tuple[Event, str]]  # every event with its row's hash, in recording order
    lot_events: dict[str, list[Event]]  # each lot's events in its hash chain's order
    crops: dict[str, str]  # lot → crop
    places: dict[str, tuple[float, float]]  # location code → (lat, lon)
    plots: dict[str, tuple[str, Decimal]]  # plot code → (farmer code, area in rai)
    flagged: dict[str, bool | None]  # plot code → its walked boundary far from the declared area
    farmer_phones: list[str]
    certified: set[str]


@pytest.fixture(scope="module", params=list(NOWS), ids=list(NOWS))
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, w3: Web3
) -> Iterator[Seeded]:
    """The demo seeded with ``now`` on one of :data:`NOWS` in a SQLite file, on a TraceRegistry of its own."""
    now = NOWS[request.param] or datetime.now(UTC)
    path: Path = tmp_path_factory.mktemp("seasons") / "demo.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        result = seed_demo(sessions, registry, id_base=ID_BASE, now=now)
        with transaction(sessions) as s:
            rows = {row.id: row for row in s.scalars(select(models.Event))}
            events = {row_id: stored_event(row) for row_id, row in rows.items()}
            lot_events: dict[str, list[Event]] = defaultdict(list)
            for link in s.scalars(
                select(models.EventLot).order_by(models.EventLot.lot_code, models.EventLot.seq)
            ):
                lot_events[link.lot_code].append(events[link.event_id])
            seeded = Seeded(
                now=now,
                result=result,
                events=[(events[i], rows[i].hash) for i in rows],
                lot_events=dict(lot_events),
                crops={lot.code: lot.crop for lot in s.scalars(select(models.Lot))},
                places={
                    loc.code: (float(loc.lat), float(loc.lon))
                    for loc in s.scalars(select(models.Location))
                    if loc.lat is not None and loc.lon is not None
                },
                plots={
                    plot.code: (farmer, plot.area_rai)
                    for plot, farmer in s.execute(
                        select(models.Plot, models.Farmer.code).join(
                            models.Farmer, models.Farmer.id == models.Plot.farmer_id
                        )
                    )
                },
                flagged={plot.code: plot.boundary_flagged for plot in s.scalars(select(models.Plot))},
                farmer_phones=[f.phone for f in s.scalars(select(models.Farmer)) if f.phone],
                certified={c.lot_code for c in s.scalars(select(models.CertificationRecord))},
            )
        yield seeded
    finally:
        engine.dispose()


def knowledge(crop: str) -> CropKnowledge:
    known = crop_knowledge(crop)
    assert known is not None, f"no crop knowledge for {crop}"
    return known


def laundering_lots(seeded: Seeded) -> set[str]:
    case = seeded.result.laundering
    return {*case["lots"].split(","), case["lot"]}


def honest(seeded: Seeded, lot: str) -> bool:
    return lot not in laundering_lots(seeded)


def harvests_of(events: list[Event]) -> list[Harvest]:
    return [e for e in events if isinstance(e, Harvest)]


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# --- seasons ------------------------------------------------------------------------------------------------


def test_every_honest_lot_grows_for_as_long_as_its_crop_does_and_is_harvested_in_its_months(seeded):
    plantings = {p.lot_code: p for p, _ in seeded.events if isinstance(p, Planting)}
    assert len(plantings) == 6  # veg, two honest rice lots, watermelon, and the laundering case's two
    checked = 0
    for lot, planting in plantings.items():
        [harvest] = harvests_of(seeded.lot_events[lot])
        crop = knowledge(planting.crop)
        planted, harvested = planting.event_time.astimezone(BANGKOK), harvest.event_time.astimezone(BANGKOK)
        by_date = (harvested.date() - planted.date()).days
        elapsed = (harvested - planted).days  # whole days elapsed: one less when harvested earlier in the day
        assert crop.growing_days_min <= elapsed <= by_date <= crop.growing_days_max, (lot, elapsed, by_date)
        assert crop.in_harvest_season(harvested.month), (lot, harvested.date())
        checked += honest(seeded, lot)
    assert checked == 4


def test_the_seasons_are_real_ones_hom_mali_in_late_november_and_december_melons_after_the_rice(seeded):
    harvests = {
        h.lot_code: h.event_time.astimezone(BANGKOK) for h, _ in seeded.events if isinstance(h, Harvest)
    }
    plantings = {
        p.lot_code: p.event_time.astimezone(BANGKOK) for p, _ in seeded.events if isinstance(p, Planting)
    }
    for lot in ("NSN-HML-2606-02", "NSN-HML-2606-03"):
        assert (plantings[lot].month, plantings[lot].day) >= (6, 20) and plantings[lot].month <= 7
        assert (harvests[lot].month, harvests[lot].day) >= (11, 20)
        assert (harvests[lot].month, harvests[lot].day) <= (12, 15)
    sown, melons = plantings["SKN-WM-2608-01"], harvests["SKN-WM-2608-01"]
    assert sown.month in (12, 1) and melons.month in (2, 3)
    assert 65 <= (melons.date() - sown.date()).days <= 75
    # the vegetables grow all year, relative to now: planted 40–55 days before their harvest
    assert 40 <= (harvests["NSN-VEG-2609-01"].date() - plantings["NSN-VEG-2609-01"].date()).days <= 55


def test_every_chain_is_in_order_before_now_and_settled_well_before_it(seeded):
    now = seeded.now
    for lot, events in seeded.lot_events.items():
        times = [e.event_time for e in events]
        assert times == sorted(times), lot
        assert all(t <= now for t in times), lot
        steps = [e for e in events if not isinstance(e, Certification)]
        assert now - steps[-1].event_time >= timedelta(days=19), (lot, steps[-1].event_time, now)


def test_each_season_is_the_latest_that_has_finished_on_every_day_of_a_year():
    """Pure: the season chosen for each of 366 days is finished (and settled) by then, and the next one
    is not."""
    start = datetime(2025, 1, 1, 10, tzinfo=BANGKOK)
    for days in range(366):
        now = start + timedelta(days=days)
        seasons = demo_seasons(now)
        rice_end = datetime.combine(seasons.rice + timedelta(days=RICE_LAST_DAY), time(8, 30), tzinfo=BANGKOK)
        assert rice_end + SETTLED <= now, now
        assert rice_end.replace(year=rice_end.year + 1) + SETTLED > now - timedelta(days=1), now
        assert seasons.rice.month == 7 and seasons.watermelon.month == 12
        melon_end = datetime.combine(
            seasons.watermelon + timedelta(days=MELON_LAST_DAY), time(8, 30), tzinfo=BANGKOK
        )
        assert melon_end + SETTLED <= now, now
        melon_next = seasons.watermelon.replace(year=seasons.watermelon.year + 1)
        assert (
            datetime.combine(melon_next + timedelta(days=MELON_LAST_DAY), time(23), tzinfo=BANGKOK) + SETTLED
            > now
        )


# --- cold chain and transport ------------------------------------------------------------------------------


def outside(readings: tuple[TemperatureReading, ...], crop: CropKnowledge, cooling: bool) -> list[Decimal]:
    """Readings outside the crop's storage range; in a cooling, those before it first reaches the range do
    not count (the produce comes in warm from the field)."""
    inside = [crop.storage_c_min <= r.celsius <= crop.storage_c_max for r in readings]
    first = inside.index(True) if cooling and True in inside else 0
    return [r.celsius for r, ok in zip(readings[first:], inside[first:], strict=True) if not ok]


def test_honest_cold_chains_read_inside_each_crops_storage_range(seeded):
    seen = 0
    for event, _ in seeded.events:
        if isinstance(event, Cooling) and event.temperatures:
            crop = knowledge(seeded.crops[event.lot_code])
            assert outside(event.temperatures, crop, cooling=True) == [], event.lot_code
            assert event.temperatures[-1].celsius <= crop.storage_c_max  # the cooling ends inside the range
            seen += 1
        if isinstance(event, Transport) and event.temperatures:
            for lot in lots_touched(event):
                assert outside(event.temperatures, knowledge(seeded.crops[lot]), cooling=False) == [], lot
            # the refrigerated truck reads every few hours, all the way
            gaps = [b.time - a.time for a, b in zip(event.temperatures, event.temperatures[1:], strict=False)]
            assert len(event.temperatures) >= 4 and max(gaps) <= timedelta(hours=4)
            seen += 1
    assert seen >= 3  # the vegetables' cooling and truck, the watermelon's cooling


def test_every_lot_moves_between_its_places_at_a_speed_a_truck_can(seeded):
    def where(event: Event) -> tuple[float, float]:
        if event.place.lat is not None and event.place.lon is not None:
            return float(event.place.lat), float(event.place.lon)
        return seeded.places[event.place.id]

    legs = 0
    for lot, events in seeded.lot_events.items():
        steps = [e for e in events if not isinstance(e, Certification)]
        for a, b in zip(steps, steps[1:], strict=False):
            distance = km(where(a), where(b))
            hours = (b.event_time - a.event_time).total_seconds() / 3600
            if distance > 1:
                assert hours > 0 and distance / hours <= FASTEST_KMH, (lot, a.kind, b.kind, distance, hours)
                legs += 1
    assert legs >= 3
    # a receipt at the port comes at least 6 hours after its shipment (Surin → Laem Chabang ≈ 400 km)
    receipts = [e for e, _ in seeded.events if isinstance(e, Transport) and e.leg == "receive"]
    for receipt in receipts:
        [shipment] = [
            e
            for e, _ in seeded.events
            if isinstance(e, Transport) and e.leg == "ship" and e.documents[0] == receipt.documents[0]
        ]
        hours = (receipt.event_time - shipment.event_time).total_seconds() / 3600
        distance = km(seeded.places[receipt.source], seeded.places[receipt.destination])
        assert distance > 300 and hours >= 6 and distance / hours <= FASTEST_KMH, (receipt.items, hours)


# --- the laundering case ------------------------------------------------------------------------------------


def test_the_laundering_plots_season_is_far_above_its_capacity_while_each_lot_alone_passes(seeded):
    case = seeded.result.laundering
    farmer, rai = seeded.plots[case["plot"]]
    assert farmer == case["farmer"]
    assert seeded.flagged[case["plot"]] is False  # on paper the plot is sound: its walked boundary matches
    rice = knowledge("hom-mali-105")
    plantings = [p for p, _ in seeded.events if isinstance(p, Planting) and p.plot_id == case["plot"]]
    harvests = [h for h, _ in seeded.events if isinstance(h, Harvest) and h.plot_id == case["plot"]]
    assert {p.lot_code for p in plantings} == set(case["lots"].split(",")) and len(plantings) == 2
    assert all(p.area_rai == rai for p in plantings)  # each declares the plot's full area
    season = {h.event_time.astimezone(BANGKOK).year for h in harvests}
    assert len(season) == 1  # one season
    total = sum(h.quantity.kg() for h in harvests)
    capacity = rai * rice.max_kg_per_rai
    assert total > capacity and Decimal("1.4") <= total / capacity <= Decimal("1.8"), (total, capacity)
    for h in harvests:
        assert h.quantity.kg() / rai <= OLD_CEILING  # alone, each is under the old fixed ceiling
        assert h.quantity.kg() / rai <= rice.max_kg_per_rai * Decimal("1.5")
    # so the old checks (yield per lot, mass balance) find nothing wrong with any of the demo's lots
    entries = [LedgerEntry(digest, event) for event, digest in seeded.events]
    assert check_yield(entries) == []
    assert check_mass_balance(entries, set(seeded.crops)) == []


def test_the_laundered_lot_is_one_farmers_certified_export_merging_both_lots(seeded):
    case = seeded.result.laundering
    assert seeded.result.to_json()["laundering"] == case
    assert set(case) == {"lot", "plot", "farmer", "lots"}
    inputs = case["lots"].split(",")
    assert all(lot in seeded.crops for lot in [*inputs, case["lot"]])
    assert seeded.result.lots[-3:] == [*inputs, case["lot"]]
    [packing] = [e for e, _ in seeded.events if isinstance(e, Packing) and case["lot"] in lots_touched(e)]
    assert {i.lot_code for i in packing.inputs} == set(inputs)
    assert [o.lot_code for o in packing.outputs] == [case["lot"]]
    assert seeded.crops[case["lot"]] == "hom-mali-105"
    assert case["lot"] in seeded.certified and "NSN-VEG-2609-01" in seeded.certified
    assert len(seeded.result.certifications) == 2
    # no honest lot shares the case's plot or farmer
    for event, _ in seeded.events:
        if event.actor == case["farmer"] or getattr(event, "plot_id", None) == case["plot"]:
            assert set(lots_touched(event)) <= laundering_lots(seeded), event.kind
    assert [plot for plot, (farmer, _) in seeded.plots.items() if farmer == case["farmer"]] == [case["plot"]]


def test_the_existing_lots_keep_their_codes_and_order_and_no_phone_is_in_any_event(seeded):
    assert seeded.result.lots[:8] == [
        "NSN-VEG-2609-01",
        "NSN-VEG-2609-01A",
        "NSN-VEG-2609-01B",
        "NSN-HML-2606-02",
        "NSN-HML-2606-03",
        "NSN-HML-2611-M1",
        "SKN-WM-2608-01",
        "SKN-WM-2608-01P",
    ]
    farmers = {f["code"]: f for f in seeded.result.farmers}
    assert farmers["F-0005"]["plots"] == ["PLOT-NSN-05"] and farmers["F-0005"]["phone"]
    text = repr([event.model_dump(mode="json") for event, _ in seeded.events])
    for phone in seeded.farmer_phones:
        assert phone not in text
