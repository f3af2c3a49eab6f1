"""`trace risk-bench`: the synthetic season is deterministic, large enough, honest where it says so, carries
every injected case it claims, and the bench reports exactly the issue's keys."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from traceability.cli import main
from traceability.config import Settings
from traceability.domain.crops import crop_knowledge
from traceability.domain.events import Cooling, Harvest, Planting, Transport
from traceability.domain.photohash import NEAR, hamming
from traceability.domain.risk import RiskCode, Signal
from traceability.services.risk_bench import (
    BANGKOK,
    PORT_LATLON,
    SyntheticSeason,
    format_table,
    generate_season,
    goals_met,
    run_bench,
    score,
    shortfalls,
)

ISSUE_KEYS = {"seed", "lots", "honest_lots", "by_type", "false_positive_rate", "seconds"}


@dataclass
class LotFacts:
    """One lot as the ledger tells it."""

    planting: Planting
    harvests: list[Harvest] = field(default_factory=list)
    coolings: list[Cooling] = field(default_factory=list)
    ship: Transport | None = None
    receive: Transport | None = None

    @property
    def kg(self) -> Decimal:
        return sum((h.quantity.kg() for h in self.harvests), Decimal(0))


def facts(season: SyntheticSeason) -> dict[str, LotFacts]:
    plantings = {e.event.lot_code: e.event for e in season.ledger.entries if isinstance(e.event, Planting)}
    out = {lot: LotFacts(p) for lot, p in plantings.items()}
    for entry in season.ledger.entries:
        ev = entry.event
        if isinstance(ev, Harvest):
            out[ev.lot_code].harvests.append(ev)
        elif isinstance(ev, Cooling):
            out[ev.lot_code].coolings.append(ev)
        elif isinstance(ev, Transport):
            for item in ev.items:
                setattr(out[item.lot_code], ev.leg, ev)
    return out


def local_day(moment: datetime) -> Any:
    return moment.astimezone(BANGKOK).date()


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def season() -> SyntheticSeason:
    return generate_season(101)


@pytest.fixture(scope="module")
def lots(season: SyntheticSeason) -> dict[str, LotFacts]:
    return facts(season)


# --- determinism --------------------------------------------------------------------------------------------


def _fingerprint(s: SyntheticSeason) -> tuple[Any, ...]:
    return (
        [e.hash + e.event.model_dump_json() for e in s.ledger.entries],
        s.injected,
        sorted(s.honest_lots),
        sorted(s.involved),
        sorted(s.ledger.photos.items()),
        sorted(s.ledger.plots.items()),
    )


def test_the_same_seed_gives_the_same_season_and_another_seed_another():
    first, again, other = (
        generate_season(5, farmers=40),
        generate_season(5, farmers=40),
        generate_season(6, farmers=40),
    )
    assert _fingerprint(first) == _fingerprint(again)
    assert _fingerprint(first)[0] != _fingerprint(other)[0]
    assert first.injected != other.injected


def test_too_few_farmers_is_refused():
    with pytest.raises(ValueError, match="at least 20 farmers"):
        generate_season(1, farmers=10)


# --- size ---------------------------------------------------------------------------------------------------


def test_the_default_season_is_as_large_as_the_issue_asks(season, lots):
    plots = season.ledger.plots
    assert len({p.farmer for p in plots.values()}) >= 200
    assert len(plots) >= 400
    assert all(Decimal(2) <= p.area_rai <= Decimal(25) for p in plots.values())
    assert statistics.median(float(p.area_rai) for p in plots.values()) < 9  # smallholdings: skewed small
    assert len({p.district for p in plots.values()}) == 4
    assert all(14.5 <= p.lat <= 17.5 and 103 <= p.lon <= 104.5 for p in plots.values() if p.lat and p.lon)
    assert {"hom-mali-105", "watermelon"} <= {f.planting.crop for f in lots.values()}
    assert set(season.seasons.values()) == {"2024", "2025"}
    assert set(season.injected) == set(RiskCode)
    assert all(len(codes) >= 20 for codes in season.injected.values()), {
        c.value: len(v) for c, v in season.injected.items()
    }
    assert season.lots == set(lots)
    assert season.honest_lots | season.involved | season.injected_lots() == season.lots
    assert not season.honest_lots & season.involved
    assert not season.injected_lots() & (season.honest_lots | season.involved)
    assert len(season.honest_lots) >= len(season.lots) / 3


def test_a_bad_weather_year_lowers_yields_in_some_districts(season, lots):
    per_rai: dict[tuple[str | None, str], list[float]] = defaultdict(list)
    for lot in sorted(season.honest_lots):
        f = lots[lot]
        if f.planting.crop == "hom-mali-105":
            district = season.ledger.plots[f.planting.plot_id].district
            per_rai[(district, season.seasons[lot])].append(float(f.kg / f.planting.area_rai))
    ratios = [
        statistics.median(per_rai[(d, "2024")]) / statistics.median(per_rai[(d, "2025")])
        for d in {d for d, _ in per_rai}
    ]
    assert min(min(ratios), 1 / max(ratios)) < 0.87


# --- honest lots are honest by the crop knowledge -----------------------------------------------------------


def test_honest_harvests_are_in_season_and_after_a_real_growing_period(season, lots):
    for lot in sorted(season.honest_lots):
        f = lots[lot]
        known = crop_knowledge(f.planting.crop)
        assert known is not None and f.harvests
        planted = local_day(f.planting.event_time)
        for h in f.harvests:
            assert (
                known.growing_days_min <= (local_day(h.event_time) - planted).days <= known.growing_days_max
            )
            assert known.in_harvest_season(h.event_time.astimezone(BANGKOK).month), lot
            assert h.event_time.utcoffset().total_seconds() == 7 * 3600


def test_honest_yields_stay_under_the_crops_maximum(season, lots):
    totals: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for lot, f in lots.items():
        totals[(f.planting.plot_id, f.planting.crop, season.seasons[lot])] += f.kg
    for lot in sorted(season.honest_lots):
        f = lots[lot]
        known = crop_knowledge(f.planting.crop)
        assert known is not None
        assert f.kg / f.planting.area_rai <= known.max_kg_per_rai * Decimal("1.05"), lot
        plot = season.ledger.plots[f.planting.plot_id]
        assert (
            totals[(plot.code, f.planting.crop, season.seasons[lot])] <= plot.area_rai * known.max_kg_per_rai
        )


def test_honest_records_carry_the_noise_of_real_ones(season, lots):
    honest = [lots[lot] for lot in sorted(season.honest_lots)]
    assert sum(len(f.harvests) > 1 for f in honest) >= 20  # harvests split across events
    shared = defaultdict(list)
    for f in honest:
        shared[(f.planting.plot_id, f.planting.crop, f.planting.event_time.year)].append(f)
    assert sum(len(v) > 1 for v in shared.values()) >= 10  # plots planted as two lots, each part of the area
    rounded = [h.quantity.kg() % 100 == 0 for f in honest for h in f.harvests]
    assert 0.1 < sum(rounded) / len(rounded) < 0.9
    with_photo = [bool(h.evidence) for f in honest for h in f.harvests]
    assert 0.35 < sum(with_photo) / len(with_photo) < 0.65


def test_honest_cold_chain_stays_in_range_and_drives_take_road_time(season, lots):
    cold = 0
    for lot in sorted(season.honest_lots):
        f = lots[lot]
        known = crop_knowledge(f.planting.crop)
        assert known is not None and f.ship is not None and f.receive is not None
        hours = (f.receive.event_time - f.ship.event_time).total_seconds() / 3600
        distance = km(season.ledger.places[f.ship.source], PORT_LATLON)
        assert 0 < distance / hours < 60  # straight-line speed of a lorry on Thai roads, stops included
        for reading in f.receive.temperatures + f.ship.temperatures:
            assert known.storage_c_min <= reading.celsius <= known.storage_c_max, lot
        for cooling in f.coolings:
            inside = [known.storage_c_min <= r.celsius <= known.storage_c_max for r in cooling.temperatures]
            assert True in inside and all(inside[inside.index(True) :])  # once in range, it stays there
        if f.receive.temperatures:
            cold += 1
            gaps = [
                (b.time - a.time).total_seconds() / 3600
                for a, b in itertools.pairwise(f.receive.temperatures)
            ]
            assert all(1 <= g <= 3 for g in gaps)
    assert cold >= 50


def test_honest_photos_are_all_different_pictures(season, lots):
    hashes = [
        season.ledger.photos[sha]
        for lot in sorted(season.honest_lots)
        for h in lots[lot].harvests
        for sha in h.evidence
    ]
    assert len(hashes) >= 300
    values = np.array(hashes, dtype=np.uint64)
    for i, value in enumerate(values[:-1]):
        assert int(np.bitwise_count(values[i + 1 :] ^ value).min()) > NEAR


# --- injected cases are what they claim ---------------------------------------------------------------------


def test_injected_cases_carry_their_fault(season, lots):
    def days(f: LotFacts) -> int:
        return (local_day(f.harvests[-1].event_time) - local_day(f.planting.event_time)).days

    for lot in season.injected[RiskCode.TOO_EARLY_HARVEST]:
        f = lots[lot]
        known = crop_knowledge(f.planting.crop)
        assert known is not None
        assert 0.2 * known.growing_days_min - 1 <= days(f) <= 0.7 * known.growing_days_min + 1
        assert known.in_harvest_season(f.harvests[-1].event_time.month)
    for lot in season.injected[RiskCode.OFF_SEASON_HARVEST]:
        f = lots[lot]
        known = crop_knowledge(f.planting.crop)
        assert known is not None
        assert not known.in_harvest_season(f.harvests[-1].event_time.month)
        assert known.growing_days_min <= days(f) <= known.growing_days_max
    for lot in season.injected[RiskCode.IMPOSSIBLE_TRANSPORT]:
        f = lots[lot]
        assert f.ship is not None and f.receive is not None
        hours = (f.receive.event_time - f.ship.event_time).total_seconds() / 3600
        assert hours < 0 or 150 <= km(season.ledger.places[f.ship.source], PORT_LATLON) / hours <= 2001
    for lot in season.injected[RiskCode.COLD_CHAIN_EXCURSION]:
        f = lots[lot]
        known = crop_knowledge(f.planting.crop)
        assert known is not None and f.receive is not None
        out = [
            r.time
            for r in f.receive.temperatures
            if r.celsius >= known.storage_c_max + 5 or r.celsius <= known.storage_c_min - 5
        ]
        assert 2 <= (max(out) - min(out)).total_seconds() / 3600 <= 8


def test_capacity_cases_split_more_than_the_plot_can_grow_into_normal_looking_lots(season, lots):
    by_plot = defaultdict(list)
    for lot in season.injected[RiskCode.CAPACITY_EXCEEDED]:
        f = lots[lot]
        by_plot[(f.planting.plot_id, f.planting.crop, season.seasons[lot])].append(f)
    assert len(by_plot) >= 20
    for (plot_code, crop, _), group in by_plot.items():
        known, plot = crop_knowledge(crop), season.ledger.plots[plot_code]
        assert known is not None and len(group) >= 2
        capacity = plot.area_rai * known.max_kg_per_rai
        assert Decimal("1.25") <= sum(f.kg for f in group) / capacity <= Decimal("2.55")
        for f in group:
            assert f.planting.area_rai == plot.area_rai
            assert f.kg / f.planting.area_rai <= known.typical_kg_per_rai * Decimal("1.3")


def test_reused_photos_are_near_copies_of_an_honest_photo_of_another_farmer_or_season(season, lots):
    owner = {sha: lot for lot, f in lots.items() for h in f.harvests for sha in h.evidence}
    for lot in season.injected[RiskCode.PHOTO_REUSED]:
        (sha,) = lots[lot].harvests[0].evidence
        near = [
            other
            for other, value in season.ledger.photos.items()
            if other != sha and hamming(value, season.ledger.photos[sha]) <= NEAR
        ]
        sources = [owner[s] for s in near if s in owner]
        assert sources and all(src in season.involved for src in sources)
        assert all(
            lots[src].planting.actor != lots[lot].planting.actor or season.seasons[src] != season.seasons[lot]
            for src in sources
        )


def test_yield_outliers_stand_far_above_their_group(season, lots):
    for lot in season.injected[RiskCode.YIELD_OUTLIER]:
        f = lots[lot]
        district = season.ledger.plots[f.planting.plot_id].district
        peers = [
            float(lots[x].kg / lots[x].planting.area_rai)
            for x in season.honest_lots
            if lots[x].planting.crop == f.planting.crop
            and season.ledger.plots[lots[x].planting.plot_id].district == district
            and season.seasons[x] == season.seasons[lot]
        ]
        if len(peers) >= 5:  # a group with too few honest records (a rare crop) has no level to compare with
            assert float(f.kg / f.planting.area_rai) >= 1.5 * statistics.median(peers)


# --- scoring and the CLI ------------------------------------------------------------------------------------


def _signal(code: RiskCode, *lots: str) -> Signal:
    return Signal(code, lots, "ทดสอบ", "test", {}, 0.5)


def test_a_lot_is_caught_only_by_its_own_type_and_any_signal_on_an_honest_lot_is_a_false_positive():
    small = generate_season(3, farmers=40)
    outlier = small.injected[RiskCode.YIELD_OUTLIER][0]
    early = small.injected[RiskCode.TOO_EARLY_HARVEST][0]
    honest = sorted(small.honest_lots)[0]
    involved = sorted(small.involved)[0]
    result = score(
        small,
        [
            _signal(RiskCode.YIELD_OUTLIER, outlier),
            _signal(RiskCode.CAPACITY_EXCEEDED, early),  # the wrong type: not caught as too early
            _signal(RiskCode.PHOTO_REUSED, honest, involved),
        ],
        0.25,
    )
    assert set(result) == ISSUE_KEYS
    assert result["by_type"]["yield_outlier"]["caught"] == 1
    assert result["by_type"]["too_early_harvest"]["caught"] == 0
    assert result["by_type"]["yield_outlier"]["recall"] == round(
        1 / len(small.injected[RiskCode.YIELD_OUTLIER]), 4
    )
    assert result["false_positive_rate"] == round(1 / len(small.honest_lots), 4)
    assert not goals_met(result) and any("yield_outlier" in s for s in shortfalls(result))
    everything = [_signal(code, *lots) for code, lots in small.injected.items()]
    perfect = score(small, everything, 0.1)
    assert goals_met(perfect) and perfect["false_positive_rate"] == 0
    assert "goals met" in format_table(perfect) and "goals NOT met" in format_table(result)


def test_cli_prints_the_issues_json(tmp_path, capsys):
    code = main(["risk-bench", "--json", "--seed", "7", "--farmers", "60"], Settings(var_dir=tmp_path))
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert ISSUE_KEYS <= set(report) <= ISSUE_KEYS | {"farmers", "generate_seconds"}
    assert report["seed"] == 7 and report["farmers"] == 60
    assert set(report["by_type"]) == {c.value for c in RiskCode}
    for figures in report["by_type"].values():
        assert set(figures) == {"injected", "caught", "recall"}
        assert figures["injected"] >= 6 and 0 <= figures["caught"] <= figures["injected"]
        assert figures["recall"] == round(figures["caught"] / figures["injected"], 4)
    assert 0 < report["honest_lots"] < report["lots"]
    assert 0 <= report["false_positive_rate"] <= 1 and report["seconds"] > 0


def test_cli_prints_a_table(tmp_path, capsys):
    assert main(["risk-bench", "--seed", "7", "--farmers", "40"], Settings(var_dir=tmp_path)) == 0
    out = capsys.readouterr().out
    assert "cold_chain_excursion" in out and "false positives" in out and "goals" in out


@pytest.mark.parametrize("argv", [["--farmers", "5"], ["--farmers", "many"], ["--seed", "x"]])
def test_cli_refuses_bad_arguments(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["risk-bench", *argv], Settings(var_dir=tmp_path))
    assert exit_.value.code == 2
    assert "risk-bench" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [201, 202])
def test_the_detector_meets_the_goals_on_a_small_season_it_was_never_tuned_on(seed):
    """Recall ≥ 0.95 for every injected type and false positives ≤ 2 % of honest lots, with the real
    ``domain.risk.assess``, on seeds outside the tuning range (1–100: docs/benchmarks.md)."""
    result = run_bench(seed, farmers=60)
    assert result["honest_lots"] > 100
    assert all(v["injected"] >= 5 for v in result["by_type"].values())
    assert goals_met(result), shortfalls(result)
