"""Origin-risk signals over plain events: each fires on a minimal case and stays quiet on its honest twin."""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from traceability.domain.crops import crop_knowledge
from traceability.domain.events import (
    Cooling,
    Harvest,
    LotQuantity,
    Packing,
    Place,
    Planting,
    Quantity,
    TemperatureReading,
    Transport,
)
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import (
    PlotFact,
    RiskCode,
    RiskLedger,
    assess,
    risk_level,
    risk_score,
    season_of,
)
from traceability.domain.yields import CropModel, Prior, learn, shrink

ICT = timezone(timedelta(hours=7))
RICE = crop_knowledge("hom-mali-105")
WATERMELON = crop_knowledge("watermelon")
VEG = crop_knowledge("organic-veg")
assert RICE and WATERMELON and VEG
PLANTED = datetime(2025, 7, 10, 8, tzinfo=ICT)
HARVESTED = datetime(2025, 11, 28, 8, tzinfo=ICT)  # 141 days: in season, mature
RNG_IDS = random.Random(0)

PORT = (13.0827, 100.8833)
MILL = (14.8818, 103.4936)
PLACES = {"PORT-LCB": PORT, "MILL-1": MILL, "PH-1": MILL}


def eid() -> uuid.UUID:
    return uuid.UUID(int=RNG_IDS.getrandbits(128), version=4)


def entry(event) -> LedgerEntry:
    return LedgerEntry("0x" + hashlib.sha256(str(event.event_id).encode()).hexdigest(), event)


def base(actor: str, when: datetime, place: str = "PLOT-1", evidence: tuple[str, ...] = ()) -> dict:
    return {
        "event_id": eid(),
        "actor": actor,
        "place": Place(id=place),
        "event_time": when,
        "evidence": evidence,
    }


def rice_lot(
    lot: str,
    plot: str = "PLOT-1",
    farmer: str = "F-0001",
    *,
    rai: str = "10",
    kg: str = "4000",
    planted: datetime = PLANTED,
    harvested: datetime = HARVESTED,
    crop: str = "hom-mali-105",
    evidence: tuple[str, ...] = (),
) -> list[LedgerEntry]:
    return [
        entry(Planting(kind="planting", lot_code=lot, plot_id=plot, crop=crop, area_rai=Decimal(rai),
                       **base(farmer, planted, plot))),
        entry(Harvest(kind="harvest", lot_code=lot, plot_id=plot, crop=crop,
                      quantity=Quantity(value=Decimal(kg)), **base(farmer, harvested, plot, evidence))),
    ]  # fmt: skip


def plots(*facts: tuple[str, str, str]) -> dict[str, PlotFact]:
    return {code: PlotFact(code, farmer, Decimal(rai), district="เมืองสุรินทร์") for code, farmer, rai in facts}


def codes_on(ledger: RiskLedger, lot: str) -> set[str]:
    return {s.code.value for s in assess(ledger).for_lot(lot).signals}


# --- yield_outlier and its shrinkage -----------------------------------------------------------------------


def community(n: int, seed: int = 1, per_rai: float = 400.0) -> tuple[list[LedgerEntry], dict[str, PlotFact]]:
    """``n`` honest rice farmers of one district and season: log-normal yields around ``per_rai``."""
    rng = random.Random(seed)
    entries: list[LedgerEntry] = []
    facts = {}
    for i in range(n):
        plot, farmer = f"PLOT-{i:03d}", f"F-{i:04d}"
        y = per_rai * math.exp(rng.gauss(0, 0.12))
        entries += rice_lot(f"LOT-{i:03d}", plot, farmer, rai="10", kg=f"{y * 10:.0f}")
        facts[plot] = PlotFact(plot, farmer, Decimal(10), district="เมืองสุรินทร์")
    return entries, facts


def test_yield_outlier_fires_far_above_what_the_community_harvests_and_not_on_an_honest_twin() -> None:
    entries, facts = community(30, per_rai=330)
    # 620 kg/rai: under the crop's fixed ceiling, but almost twice what this district harvested this season
    entries += rice_lot("LOT-BIG", "PLOT-BIG", "F-9999", rai="10", kg="6200")
    entries += rice_lot("LOT-FAIR", "PLOT-FAIR", "F-9998", rai="10", kg="3600")
    facts |= plots(("PLOT-BIG", "F-9999", "10"), ("PLOT-FAIR", "F-9998", "10"))
    ledger = RiskLedger(entries, facts)
    found = assess(ledger)
    big = [s for s in found.for_lot("LOT-BIG").signals if s.code is RiskCode.YIELD_OUTLIER]
    assert big, "a harvest of 620 kg/rai among neighbours at ~330 is an outlier"
    assert big[0].numbers["kg_per_rai"] == 620.0
    assert big[0].numbers["records"] == 31  # learned from the others, without itself
    assert 300 < big[0].numbers["expected_kg_per_rai"] < 360
    assert "620" in big[0].th and "620" in big[0].en
    assert RiskCode.YIELD_OUTLIER.value not in codes_on(ledger, "LOT-FAIR")
    assert not found.for_lot("LOT-000").signals  # the community itself stays clean


def test_shrinkage_with_no_records_is_the_crop_prior() -> None:
    prior = Prior.of(380.0, 650.0)
    exp = shrink([], CropModel(prior, prior.mu, tau=0.1, sigma=0.15))
    assert exp.records == 0 and exp.weight == 0.0
    assert exp.level == pytest.approx(math.log(380.0))
    assert exp.spread == pytest.approx(math.sqrt(0.15**2 + 0.1**2))


def test_shrinkage_with_one_record_moves_only_part_of_the_way() -> None:
    prior = Prior.of(380.0, 650.0)
    exp = shrink([math.log(600.0)], CropModel(prior, prior.mu, tau=0.1, sigma=0.15))
    assert exp.records == 1
    assert 0.1 < exp.weight < 0.5
    assert 380.0 < exp.kg_per_rai < 600.0
    # one record leaves the level uncertain: the spread for a new lot is wider than σ alone
    assert exp.spread > 0.15


def test_shrinkage_with_many_records_follows_the_data() -> None:
    prior = Prior.of(380.0, 650.0)
    rng = random.Random(3)
    values = [math.log(250.0) + rng.gauss(0, 0.1) for _ in range(200)]
    exp = shrink(values, CropModel(prior, prior.mu, tau=0.1, sigma=0.1))
    assert exp.weight > 0.95
    assert exp.kg_per_rai == pytest.approx(250.0, rel=0.05)  # a drought year: the prior does not hold it up


def test_learning_between_groups_is_floored_and_within_groups_pooled() -> None:
    prior = Prior.of(380.0, 650.0)
    rng = random.Random(4)
    groups = {g: [math.log(400.0) + rng.gauss(0, 0.1) for _ in range(40)] for g in range(4)}
    model = learn(groups, prior)
    assert model.sigma == pytest.approx(0.1, abs=0.03)
    assert model.tau >= 0.08
    # the crop-wide centre follows four groups' medians, the published prior counting as one more group
    assert model.centre == pytest.approx((4 * math.log(400.0) + math.log(380.0)) / 5, abs=0.02)
    assert learn({}, prior).centre == prior.mu


def test_a_lone_record_is_judged_by_the_crop_prior() -> None:
    # 1,200 kg/rai with nothing to compare it with: judged against the crop's typical yield and its spread
    lone = rice_lot("LOT-LONE", rai="10", kg="12000")
    sig = [s for s in assess(RiskLedger(lone)).signals if s.code is RiskCode.YIELD_OUTLIER]
    assert sig and sig[0].numbers["records"] == 0
    assert sig[0].numbers["expected_kg_per_rai"] == pytest.approx(float(RICE.typical_kg_per_rai))
    typical = rice_lot("LOT-TYP", rai="10", kg=f"{RICE.typical_kg_per_rai * 10}")
    assert RiskCode.YIELD_OUTLIER.value not in codes_on(RiskLedger(typical), "LOT-TYP")


# --- capacity_exceeded -------------------------------------------------------------------------------------


def test_capacity_exceeded_catches_a_harvest_split_into_lots_that_each_look_normal() -> None:
    per_rai = float(RICE.typical_kg_per_rai)
    entries = []
    for n in range(3):  # three lots each "planted" on the whole 6 rai plot in the same season
        entries += rice_lot(f"LOT-S{n}", "PLOT-6", "F-0001", rai="6", kg=f"{per_rai * 6:.0f}")
    ledger = RiskLedger(entries, plots(("PLOT-6", "F-0001", "6")))
    sig = [s for s in assess(ledger).signals if s.code is RiskCode.CAPACITY_EXCEEDED]
    assert len(sig) == 1
    assert set(sig[0].lots) == {"LOT-S0", "LOT-S1", "LOT-S2"}
    assert sig[0].numbers["capacity_kg"] == pytest.approx(6 * float(RICE.max_kg_per_rai))
    assert sig[0].numbers["harvested_kg"] == pytest.approx(per_rai * 18, abs=2)
    # each lot alone is ordinary: no yield outlier
    assert RiskCode.YIELD_OUTLIER.value not in codes_on(ledger, "LOT-S0")


def test_capacity_is_quiet_for_a_plot_honestly_shared_by_two_lots() -> None:
    per_rai = float(RICE.typical_kg_per_rai)
    entries = rice_lot("LOT-H1", "PLOT-6", rai="3", kg=f"{per_rai * 3:.0f}")
    entries += rice_lot("LOT-H2", "PLOT-6", rai="3", kg=f"{per_rai * 3:.0f}")
    ledger = RiskLedger(entries, plots(("PLOT-6", "F-0001", "6")))
    assert not assess(ledger).signals


def test_capacity_of_a_farmer_counts_harvests_on_fields_that_are_not_theirs() -> None:
    per_rai = float(RICE.max_kg_per_rai) * 0.9
    entries = rice_lot("LOT-OWN", "PLOT-OWN", "F-0001", rai="5", kg=f"{per_rai * 5:.0f}")
    entries += rice_lot("LOT-ELSE", "PLOT-NOBODY", "F-0001", rai="5", kg=f"{per_rai * 5:.0f}")
    ledger = RiskLedger(entries, plots(("PLOT-OWN", "F-0001", "5")))
    sig = [s for s in assess(ledger).signals if s.code is RiskCode.CAPACITY_EXCEEDED]
    assert sig and sig[0].numbers["lots_off_own_plots"] == ["LOT-ELSE"]


# --- too_early_harvest / off_season_harvest ----------------------------------------------------------------


def test_too_early_harvest_fires_before_the_crop_can_be_mature() -> None:
    days = RICE.growing_days_min // 2  # half the shortest time the crop needs
    early = rice_lot("LOT-E", planted=HARVESTED - timedelta(days=days), harvested=HARVESTED)
    sig = [s for s in assess(RiskLedger(early)).signals if s.code is RiskCode.TOO_EARLY_HARVEST]
    assert sig and sig[0].numbers["growing_days_min"] == RICE.growing_days_min
    assert RiskCode.TOO_EARLY_HARVEST.value not in codes_on(RiskLedger(rice_lot("LOT-OK")), "LOT-OK")


def test_off_season_harvest_fires_in_a_month_the_crop_is_not_harvested() -> None:
    month = next(m for m in range(1, 13) if m not in RICE.harvest_months)
    harvested = datetime(2026 if month < 7 else 2025, month, 15, 8, tzinfo=ICT)
    planted = harvested - timedelta(days=(RICE.growing_days_min + RICE.growing_days_max) // 2)
    lot = rice_lot("LOT-OFF", planted=planted, harvested=harvested)
    sig = [s for s in assess(RiskLedger(lot)).signals if s.code is RiskCode.OFF_SEASON_HARVEST]
    assert sig and sig[0].numbers["month"] == month
    assert RiskCode.OFF_SEASON_HARVEST.value not in codes_on(RiskLedger(rice_lot("LOT-OK")), "LOT-OK")


# --- impossible_transport ----------------------------------------------------------------------------------


def shipment(lot: str, shipped: datetime, received: datetime, temps: tuple = ()) -> list[LedgerEntry]:
    items = (LotQuantity(lot_code=lot, quantity=Quantity(value=Decimal(1000))),)
    leg = {"items": items, "source": "MILL-1", "destination": "PORT-LCB", "kind": "transport"}
    return [
        entry(Transport(leg="ship", temperatures=temps, **leg, **base("F-0001", shipped, "MILL-1"))),
        entry(Transport(leg="receive", **leg, **base("EXP-0001", received, "PORT-LCB"))),
    ]


def test_impossible_transport_fires_on_a_receipt_before_its_shipment_and_on_a_teleport() -> None:
    t = HARVESTED + timedelta(days=5)
    before = RiskLedger(rice_lot("LOT-T") + shipment("LOT-T", t, t - timedelta(hours=3)), places=PLACES)
    sig = [s for s in assess(before).signals if s.code is RiskCode.IMPOSSIBLE_TRANSPORT]
    assert sig and sig[0].numbers["kind"] == "receipt_before_shipment"
    fast = RiskLedger(rice_lot("LOT-T") + shipment("LOT-T", t, t + timedelta(hours=1)), places=PLACES)
    sig = [s for s in assess(fast).signals if s.code is RiskCode.IMPOSSIBLE_TRANSPORT]
    assert sig and sig[0].numbers["kind"] == "too_fast" and sig[0].numbers["km"] > 300
    honest = RiskLedger(rice_lot("LOT-T") + shipment("LOT-T", t, t + timedelta(hours=9)), places=PLACES)
    assert not assess(honest).signals


# --- cold_chain_excursion ----------------------------------------------------------------------------------


def veg_lot(temps_c: list[float], every_h: float = 1.0) -> list[LedgerEntry]:
    planted = datetime(2025, 9, 1, 8, tzinfo=ICT)
    harvested = planted + timedelta(days=VEG.growing_days_min + 10)
    lot = "LOT-V"
    entries = [
        entry(Planting(kind="planting", lot_code=lot, plot_id="PLOT-1", crop="organic-veg",
                       area_rai=Decimal(1), **base("F-0001", planted))),
        entry(Harvest(kind="harvest", lot_code=lot, plot_id="PLOT-1", crop="organic-veg",
                      quantity=Quantity(value=Decimal(1000)), **base("F-0001", harvested))),
    ]  # fmt: skip
    start = harvested + timedelta(hours=3)
    temps = tuple(
        TemperatureReading(time=start + timedelta(hours=i * every_h), celsius=Decimal(str(c)))
        for i, c in enumerate(temps_c)
    )
    cooled = [TemperatureReading(time=harvested + timedelta(hours=1), celsius=Decimal(25)),
              TemperatureReading(time=harvested + timedelta(hours=2), celsius=VEG.storage_c_min)]  # fmt: skip
    entries.append(
        entry(Cooling(kind="cooling", lot_code=lot, quantity=Quantity(value=Decimal(1000)),
                      method="hydro_cooling", temperatures=tuple(cooled),
                      **base("F-0001", harvested + timedelta(hours=1), "PH-1")))
    )  # fmt: skip
    return entries + shipment(lot, start, start + timedelta(hours=10), temps)


def test_cold_chain_excursion_fires_when_out_of_range_longer_than_the_tolerance() -> None:
    inside = float(VEG.storage_c_min + VEG.storage_c_max) / 2
    hot = float(VEG.storage_c_max) + 8
    broken = RiskLedger(veg_lot([inside, hot, hot, hot, inside]), places=PLACES)
    sig = [s for s in assess(broken).signals if s.code is RiskCode.COLD_CHAIN_EXCURSION]
    assert sig and sig[0].numbers["minutes"] == 180.0 and sig[0].numbers["worst_c"] == hot
    # the field heat at the start of cooling is not an excursion; a reading a degree out is the logger's error
    honest = RiskLedger(veg_lot([inside, float(VEG.storage_c_max) + 0.5, inside, inside]), places=PLACES)
    assert not [s for s in assess(honest).signals if s.code is RiskCode.COLD_CHAIN_EXCURSION]
    brief = RiskLedger(veg_lot([inside, hot, inside], every_h=0.5), places=PLACES)  # 30 minutes: a door open
    assert not [s for s in assess(brief).signals if s.code is RiskCode.COLD_CHAIN_EXCURSION]


# --- photo_reused ------------------------------------------------------------------------------------------


def test_photo_reused_fires_across_farmers_and_not_for_one_farmers_lots_of_one_harvest() -> None:
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    entries = rice_lot("LOT-P1", "PLOT-1", "F-0001", evidence=(a,))
    entries += rice_lot("LOT-P2", "PLOT-2", "F-0002", evidence=(b,))
    entries += rice_lot("LOT-P3", "PLOT-3", "F-0003", evidence=(c,))
    photos = {a: 0x9F256629F83C4B4C, b: 0x9F256629F83C4B4C ^ 0b10110, c: 0x0123456789ABCDEF}
    sig = [s for s in assess(RiskLedger(entries, photos=photos)).signals if s.code is RiskCode.PHOTO_REUSED]
    assert len(sig) == 1 and set(sig[0].lots) == {"LOT-P1", "LOT-P2"} and sig[0].numbers["hamming_bits"] == 3
    same_farmer = rice_lot("LOT-Q1", "PLOT-1", "F-0001", evidence=(a,))
    same_farmer += rice_lot("LOT-Q2", "PLOT-2", "F-0001", evidence=(a,))
    assert not assess(RiskLedger(same_farmer, photos=photos)).signals


# --- lineage, score, determinism ---------------------------------------------------------------------------


def test_a_packed_lot_inherits_the_signals_of_the_lots_it_came_from() -> None:
    per_rai = float(RICE.typical_kg_per_rai)
    entries = rice_lot("LOT-A", "PLOT-6", rai="6", kg=f"{per_rai * 6:.0f}")
    entries += rice_lot("LOT-B", "PLOT-6", rai="6", kg=f"{per_rai * 6:.0f}")
    entries += rice_lot("LOT-C", "PLOT-6", rai="6", kg=f"{per_rai * 6:.0f}")
    hundred = Quantity(value=Decimal(100))
    pack = Packing(kind="packing", inputs=(LotQuantity(lot_code="LOT-A", quantity=hundred),),
                   outputs=(LotQuantity(lot_code="LOT-M", quantity=hundred),),
                   **base("F-0001", HARVESTED + timedelta(days=3), "MILL-1"))  # fmt: skip
    found = assess(RiskLedger([*entries, entry(pack)], plots(("PLOT-6", "F-0001", "6"))))
    merged = found.for_lot("LOT-M")
    assert "capacity_exceeded" in merged.codes and "LOT-A" in merged.lineage
    assert merged.score > 0 and merged.level.value in {"low", "medium", "high"}


def test_score_is_zero_without_signals_and_grows_with_independent_reasons() -> None:
    assert risk_score([]) == 0 and risk_level(0).value == "none"
    entries, facts = community(40, seed=9)
    clean = assess(RiskLedger(entries, facts)).for_lot("LOT-001")
    assert clean.score == 0 and not clean.signals


def test_the_assessment_is_deterministic() -> None:
    entries, facts = community(45, seed=5)
    entries += rice_lot("LOT-BIG", "PLOT-BIG", "F-9999", rai="10", kg="8000")
    one = assess(RiskLedger(entries, facts))
    two = assess(RiskLedger(list(reversed(entries)), dict(reversed(list(facts.items())))))
    assert [s.to_json() for s in one.signals] == [s.to_json() for s in two.signals]
    assert one.anomaly.scores == two.anomaly.scores and one.anomaly.groups == 46


def test_seasons_are_named_as_thai_farmers_count_them() -> None:
    assert season_of(datetime(2025, 7, 1, tzinfo=ICT)) == "2025-wet"
    assert season_of(datetime(2025, 12, 1, tzinfo=ICT)) == "2026-dry"
    assert season_of(datetime(2026, 2, 1, tzinfo=ICT)) == "2026-dry"


def test_every_risk_code_is_a_verdict_code_of_the_origin_risk_check() -> None:
    from traceability.domain.findings import Check, Code

    assert {c.value for c in RiskCode} == {c.value for c in Code if c.check is Check.ORIGIN_RISK}
