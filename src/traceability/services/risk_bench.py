"""`trace risk-bench`: a seeded synthetic season with injected สวมสิทธิ์, and how much of it the detector finds.

The origin-risk signals (``domain.risk``) claim to catch produce laundered under a certified farm's name
without flagging honest farmers. Claims need a measurement on data where the truth is known, and there is
no public ledger of Thai smallholder harvests with labelled fraud, so this module makes one: a community of
farmers in four districts (อำเภอ) of Surin, Si Sa Ket and Sakon Nakhon, two crop years (ปีการผลิต
2567/68 and 2568/69 as 2024 and 2025), Hom Mali 105 rice in the wet season and watermelon (or organic leafy
vegetables) in the dry season, honest yields drawn from the crop knowledge with district levels, a bad
weather year, farmer skill and the data-entry noise real records have. Into other farmers' records it
injects known cases of every signal, then runs :func:`traceability.domain.risk.assess` on the whole ledger
and counts, per case type, the injected lots caught, and the honest lots flagged.

Everything comes from one seed (``random.Random`` and ``numpy.random.default_rng``, never global state, sets
sorted before they are iterated), so a run can be repeated exactly and seeds used while tuning the detector
can be kept apart from the seeds it is judged on. Pure: no database, no chain.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

import numpy as np
from PIL import Image, ImageEnhance

from traceability.domain.crops import CropKnowledge, crop_knowledge
from traceability.domain.events import (
    BizDocument,
    Cooling,
    CoolingMethod,
    Event,
    Harvest,
    LotQuantity,
    Place,
    Planting,
    Quantity,
    TemperatureReading,
    Transport,
)
from traceability.domain.lineage import LedgerEntry
from traceability.domain.photohash import NEAR, hamming, phash64
from traceability.domain.risk import PlotFact, RiskCode, RiskLedger, Signal, assess

BANGKOK: Final = timezone(timedelta(hours=7))
RICE: Final = "hom-mali-105"
WATERMELON: Final = "watermelon"
VEG: Final = "organic-veg"
COLD_CHAIN: Final = (WATERMELON, VEG)
"""Crops that travel chilled (rice travels as dry paddy, with no logger)."""
YEARS: Final = (2024, 2025)
"""Crop years (ปีการผลิต): May of the year to April of the next, rice first, then the dry-season crop."""
PORT: Final = "PORT-LCB"
PORT_LATLON: Final = (13.08, 100.88)  # Laem Chabang
MIN_FARMERS: Final = 20
"""Below this there are not enough farmer-seasons for a case of every type and honest controls beside."""
GOAL_RECALL: Final = 0.95
GOAL_FALSE_POSITIVE_RATE: Final = 0.02
PHOTO_SIZE: Final = 96


@dataclass(frozen=True)
class District:
    code: str
    name_th: str
    lat: float
    lon: float

    @property
    def authority(self) -> str:
        return f"LAO-{self.code}"

    @property
    def mill(self) -> str:
        return f"MILL-{self.code}"

    @property
    def packing_house(self) -> str:
        return f"PH-{self.code}"


DISTRICTS: Final = (
    District("SRN-MUEANG", "เมืองสุรินทร์", 14.88, 103.49),
    District("SRN-THATUM", "ท่าตูม", 15.32, 103.68),
    District("SSK-RASISALAI", "ราษีไศล", 15.35, 104.16),
    District("SKN-MUEANG", "เมืองสกลนคร", 17.16, 104.15),
)


@dataclass(frozen=True)
class SyntheticSeason:
    """A generated ledger and the truth about it.

    ``injected`` names, per case type, the lots whose records were made false; ``honest_lots`` the lots of
    farmer-seasons nobody touched (the controls the false-positive rate is measured on); ``involved`` the
    rest: other lots of an injected farmer-season, and honest lots whose photo was copied by another farmer
    (the photo signal rightly names them too, so they are neither fraud nor a clean control)."""

    seed: int
    farmers: int
    id_base: str
    ledger: RiskLedger
    injected: dict[RiskCode, list[str]]
    honest_lots: set[str]
    lots: set[str]
    involved: set[str]
    seasons: dict[str, str] = field(default_factory=dict)
    """lot → crop year (``"2024"``), the season its planting belongs to."""

    def injected_lots(self) -> set[str]:
        return {lot for lots in self.injected.values() for lot in lots}


# --- plans: what happened to each lot, before it is written as events ---------------------------------------


@dataclass
class _Farmer:
    code: str
    district: District
    skill: float


@dataclass
class _Plot:
    code: str
    farmer: _Farmer
    area: Decimal
    lat: float
    lon: float
    crops: dict[int, tuple[str, ...]]  # year → crops grown, in order


@dataclass
class _Harvest:
    at: datetime
    kg: Decimal
    photo: bool = False
    copy_of: str | None = None  # lot whose photo this harvest re-uses (photo_reused)


@dataclass
class _Lot:
    code: str
    plot: _Plot
    crop: str
    year: int
    area: Decimal
    planted: datetime
    harvests: list[_Harvest]
    shipped: datetime | None = None
    received: datetime | None = None
    cooling: list[tuple[datetime, Decimal]] = field(default_factory=list)
    transport_readings: list[tuple[datetime, Decimal]] = field(default_factory=list)
    fast: bool = False  # unusual_pattern: driven hard, no stops

    @property
    def farmer(self) -> _Farmer:
        return self.plot.farmer

    @property
    def kg(self) -> Decimal:
        return sum((h.kg for h in self.harvests), Decimal(0))


@dataclass
class _World:
    rng: random.Random
    level: dict[str, float]  # district → yield level
    weather: dict[tuple[int, str], float]  # (year, district) → weather factor
    farmers: list[_Farmer]
    plots: list[_Plot]
    lots: dict[tuple[str, int], list[_Lot]]  # farmer-season → its lots
    counters: dict[tuple[str, int], int] = field(default_factory=dict)

    def group_level(self, crop: str, district: District, year: int) -> float:
        """What a typical rai of ``crop`` yields in this district and year (kg): the level honest lots
        scatter around and injected outliers are measured against."""
        return (
            float(_crop(crop).typical_kg_per_rai)
            * self.level[district.code]
            * self.weather[(year, district.code)]
        )

    def new_code(self, farmer: _Farmer, year: int) -> str:
        key = (farmer.code, year)
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"L{year % 100:02d}-{farmer.code[2:]}-{self.counters[key]:02d}"


def _crop(code: str) -> CropKnowledge:
    known = crop_knowledge(code)
    if known is None:
        raise ValueError(f"no crop knowledge for {code}")
    return known


def _calendar(crop: str, year: int) -> tuple[date, date, date, date]:
    """Planting window and harvest window of an honest farmer in crop year ``year``: rice sown with the
    rains (June–August) and cut in the cool season; watermelon and vegetables on the same paddy after it."""
    if crop == RICE:
        return date(year, 6, 1), date(year, 8, 31), date(year, 10, 15), date(year + 1, 1, 20)
    if crop == WATERMELON:
        return date(year, 11, 1), date(year + 1, 1, 15), date(year + 1, 1, 1), date(year + 1, 4, 30)
    return date(year, 10, 15), date(year + 1, 2, 15), date(year, 11, 1), date(year + 1, 4, 30)


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def _at(rng: random.Random, day: date, first_hour: int = 6, last_hour: int = 17) -> datetime:
    return datetime(
        day.year,
        day.month,
        day.day,
        rng.randint(first_hour, last_hour),
        rng.randrange(0, 60, 5),
        tzinfo=BANGKOK,
    )


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine, mean Earth radius)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _round_kg(rng: random.Random, kg: float) -> Decimal:
    """What a farmer writes: a scale's reading rounded to 10, 50 or 100 kg (never to nothing)."""
    step = rng.choice((10, 10, 50, 100)) if kg >= 1000 else 10
    return Decimal(max(step, int(round(kg / step)) * step))


def _honest_dates(
    rng: random.Random, crop: str, year: int, extra_harvests: int
) -> tuple[datetime, list[datetime]] | None:
    """A planting and its harvest times, in season and inside the crop's growing days (None: no fit)."""
    known = _crop(crop)
    p0, p1, h0, h1 = _calendar(crop, year)
    low, high = known.growing_days_min, known.growing_days_max
    for _ in range(200):
        planted = _day(rng, p0, p1)
        days = round(rng.triangular(low, high, (low + high) / 2))
        firsts = [planted + timedelta(days=days)]
        for _ in range(extra_harvests):
            firsts.append(firsts[-1] + timedelta(days=rng.randint(2, 10)))
        if all(
            h0 <= d <= h1 and known.in_harvest_season(d.month) and low <= (d - planted).days <= high
            for d in firsts
        ):
            start = _at(rng, planted)
            return start, [_at(rng, d) for d in firsts]
    return None


# --- the honest community -----------------------------------------------------------------------------------


def _world(rng: random.Random, farmers: int) -> _World:
    level = {d.code: rng.uniform(0.85, 1.15) for d in DISTRICTS}
    bad_year = rng.choice(YEARS)
    bad = set(rng.sample([d.code for d in DISTRICTS], 2))
    weather = {
        (year, d.code): rng.uniform(0.5, 0.8)
        if year == bad_year and d.code in bad
        else rng.uniform(0.95, 1.05)
        for year in YEARS
        for d in DISTRICTS
    }
    people = [
        _Farmer(f"F-{i:04d}", DISTRICTS[(i - 1) % len(DISTRICTS)], rng.lognormvariate(0, 0.07))
        for i in range(1, farmers + 1)
    ]
    counts = [rng.choices((1, 2, 3, 4), weights=(25, 40, 25, 10))[0] for _ in people]
    i = 0
    while sum(counts) < 2 * farmers:  # at least two plots a farmer on average
        if counts[i % farmers] < 4:
            counts[i % farmers] += 1
        i += 1
    plots: list[_Plot] = []
    for person, count in zip(people, counts, strict=True):
        for k in range(1, count + 1):
            area = min(25.0, max(2.0, rng.lognormvariate(math.log(5.5), 0.6)))
            if rng.random() < 0.1:
                crops: dict[int, tuple[str, ...]] = dict.fromkeys(YEARS, (VEG,))
            else:
                crops = {y: (RICE, WATERMELON) if rng.random() < 0.35 else (RICE,) for y in YEARS}
            plots.append(
                _Plot(
                    code=f"P{person.code[2:]}-{k}",
                    farmer=person,
                    area=Decimal(round(area * 4)) / 4,  # to the งาน (a quarter rai)
                    lat=person.district.lat + rng.uniform(-0.12, 0.12),
                    lon=person.district.lon + rng.uniform(-0.12, 0.12),
                    crops=crops,
                )
            )
    world = _World(rng, level, weather, people, plots, {(p.code, y): [] for p in people for y in YEARS})
    for plot in plots:
        for year in YEARS:
            for crop in plot.crops[year]:
                world.lots[(plot.farmer.code, year)].extend(_honest_lots(world, plot, crop, year))
    return world


def _honest_yield(world: _World, plot: _Plot, crop: str, year: int) -> float:
    """kg per rai: log-normal around the district's level for the year and the farmer's skill, kept below
    the crop's plausible maximum (a real field above it would be the fraud this bench is about)."""
    cap = 0.92 * float(_crop(crop).max_kg_per_rai)
    centre = world.group_level(crop, plot.farmer.district, year) * plot.farmer.skill
    for _ in range(20):
        value = centre * world.rng.lognormvariate(0, 0.17)
        if value <= cap:
            return value
    return cap


def _split_area(rng: random.Random, area: Decimal) -> list[Decimal]:
    """Some farmers plant a plot as two lots (two varieties, two sowing dates), each declaring its part."""
    if area < 3 or rng.random() >= 0.15:
        return [area]
    first = Decimal(round(float(area) * rng.uniform(0.35, 0.65) * 4)) / 4
    return [first, area - first]


def _honest_lots(world: _World, plot: _Plot, crop: str, year: int) -> list[_Lot]:
    rng = world.rng
    per_rai = _honest_yield(world, plot, crop, year)
    lots = []
    for area in _split_area(rng, plot.area):
        extra = rng.choices((0, 1, 2), weights=(80, 14, 6))[0]
        dates = _honest_dates(rng, crop, year, extra)
        if dates is None:
            raise ValueError(f"the crop knowledge of {crop} leaves no honest calendar in {year}")
        planted, times = dates
        total = per_rai * float(area) * rng.uniform(0.97, 1.03)
        shares = [rng.uniform(0.5, 1.5) for _ in times]
        harvests = [
            _Harvest(t, _noisy(rng, total * s / sum(shares)), rng.random() < 0.5)
            for t, s in zip(times, shares, strict=True)
        ]
        lots.append(_Lot(world.new_code(plot.farmer, year), plot, crop, year, area, planted, harvests))
    _cap_plot_season(lots, _crop(crop), plot.area)
    return lots


def _noisy(rng: random.Random, kg: float) -> Decimal:
    """Data-entry noise: a typo of 2–5 % now and then, and the rounding farmers do."""
    if rng.random() < 0.25:
        kg *= 1 + rng.choice((-1, 1)) * rng.uniform(0.02, 0.05)
    return _round_kg(rng, kg)


def _cap_plot_season(lots: Sequence[_Lot], crop: CropKnowledge, area: Decimal) -> None:
    """Keep honest records honest after the noise (rounding up can pass a limit): each lot within 3 % of
    its declared area × maximum, and the plot's season total within area × maximum."""
    for lot in lots:
        _trim(lot.harvests, lot.area * crop.max_kg_per_rai * Decimal("1.03"))
    _trim([h for lot in lots for h in lot.harvests], area * crop.max_kg_per_rai)


def _trim(harvests: Sequence[_Harvest], limit: Decimal) -> None:
    excess = sum((h.kg for h in harvests), Decimal(0)) - limit
    if excess > 0:
        biggest = max(harvests, key=lambda h: h.kg)
        biggest.kg -= Decimal(math.ceil(excess / 10) * 10)


# --- logistics ----------------------------------------------------------------------------------------------


def _origin(lot: _Lot) -> str:
    district = lot.farmer.district
    return district.mill if lot.crop == RICE else district.packing_house


def _places(world: _World) -> dict[str, tuple[float, float]]:
    places: dict[str, tuple[float, float]] = {PORT: PORT_LATLON}
    for d in DISTRICTS:
        places[d.mill] = (round(d.lat + 0.02, 5), round(d.lon - 0.03, 5))
        places[d.packing_house] = (round(d.lat - 0.03, 5), round(d.lon + 0.02, 5))
    for p in world.plots:
        places[p.code] = (round(p.lat, 5), round(p.lon, 5))
    return places


def _celsius(value: float) -> Decimal:
    return Decimal(f"{value:.1f}")


def _in_range(rng: random.Random, crop: CropKnowledge) -> Decimal:
    low, high = float(crop.storage_c_min), float(crop.storage_c_max)
    margin = min(0.5, (high - low) / 4)
    return _celsius(rng.uniform(low + margin, high - margin))


def _logistics(rng: random.Random, lot: _Lot, places: Mapping[str, tuple[float, float]]) -> None:
    """Cooling at the packing house (chilled crops) and the drive to Laem Chabang, with the logger's
    readings every 1–3 h: a realistic time for the road (great circle × 1.3 at 40–70 km/h, 0–6 h stops)."""
    crop = _crop(lot.crop)
    last = max(h.at for h in lot.harvests)
    if lot.crop in COLD_CHAIN:
        start = last + timedelta(hours=rng.uniform(2, 6))
        field_heat = rng.uniform(26, 33)
        steps = rng.randint(2, 4)
        readings = [(start, _celsius(field_heat))]
        target = float(_in_range(rng, crop))
        for i in range(1, steps):
            readings.append(
                (start + timedelta(minutes=30 * i), _celsius(field_heat + (target - field_heat) * i / steps))
            )
        for i in range(rng.randint(2, 4)):
            readings.append((start + timedelta(minutes=30 * (steps + i)), _in_range(rng, crop)))
        lot.cooling = readings
        ship = readings[-1][0] + timedelta(hours=rng.uniform(2, 20))
    else:
        ship = last + timedelta(days=rng.uniform(3, 20))
    ship = ship.replace(second=0, microsecond=0)
    km = _km(places[_origin(lot)], PORT_LATLON) * 1.3
    if lot.fast:
        hours = km / rng.uniform(85, 100)
    else:
        hours = km / rng.uniform(40, 70) + rng.uniform(0, 6)
    lot.shipped = ship
    lot.received = (ship + timedelta(hours=hours)).replace(second=0, microsecond=0)
    lot.transport_readings = _drive_readings(rng, crop, ship, lot.received) if lot.crop in COLD_CHAIN else []


def _drive_readings(
    rng: random.Random, crop: CropKnowledge, start: datetime, end: datetime
) -> list[tuple[datetime, Decimal]]:
    readings = []
    at = start + timedelta(minutes=10)
    while at < end:
        readings.append((at, _in_range(rng, crop)))
        at += timedelta(hours=rng.uniform(1, 3))
    return readings


# --- injections ---------------------------------------------------------------------------------------------


def _eligible(code: RiskCode, lot: _Lot) -> bool:
    if code is RiskCode.COLD_CHAIN_EXCURSION:
        return lot.crop in COLD_CHAIN
    if code is RiskCode.OFF_SEASON_HARVEST:
        return len(_crop(lot.crop).harvest_months) < 12
    return True


@dataclass
class _Case:
    code: RiskCode
    key: tuple[str, int]  # farmer-season
    lot: _Lot  # the lot the case is made on (unusual_pattern: the whole farmer-season)
    injected: list[str] = field(default_factory=list)


def _choose_cases(world: _World, per_type: int) -> list[_Case]:
    """One case per farmer-season, most constrained types first, each on a lot it can be made on."""
    rng = world.rng
    keys = sorted(world.lots)
    rng.shuffle(keys)
    used: set[tuple[str, int]] = set()
    cases = []
    order = (RiskCode.COLD_CHAIN_EXCURSION, RiskCode.OFF_SEASON_HARVEST) + tuple(
        c for c in RiskCode if c not in (RiskCode.COLD_CHAIN_EXCURSION, RiskCode.OFF_SEASON_HARVEST)
    )
    for code in order:
        found = 0
        for key in keys:
            if found == per_type:
                break
            candidates = [lot for lot in world.lots[key] if _eligible(code, lot)]
            if key in used or not candidates:
                continue
            used.add(key)
            cases.append(_Case(code, key, rng.choice(candidates)))
            found += 1
        if found < per_type:
            raise ValueError(f"too few farmer-seasons to inject {per_type} cases of {code.value}")
    return cases


def _too_early(world: _World, case: _Case) -> None:
    """Harvested at 20–70 % of the shortest growing period, in a month the crop is harvested."""
    rng, lot, known = world.rng, case.lot, _crop(case.lot.crop)
    last = lot.harvests[-1]
    days = max(1, round(rng.uniform(0.2, 0.7) * known.growing_days_min))
    lot.harvests = [_Harvest(last.at, lot.kg, any(h.photo for h in lot.harvests))]
    lot.planted = _at(rng, (last.at - timedelta(days=days)).date(), 6, 10)
    case.injected = [lot.code]


def _off_season(world: _World, case: _Case) -> None:
    """Harvested in a month the crop is not harvested there, planted a normal growing period before."""
    rng, lot, known = world.rng, case.lot, _crop(case.lot.crop)
    start, end = date(lot.year, 5, 1), date(lot.year + 1, 4, 30)
    for _ in range(500):
        harvest = _day(rng, start, end)
        days = rng.randint(known.growing_days_min, known.growing_days_max)
        if not known.in_harvest_season(harvest.month) and harvest - timedelta(days=days) >= start:
            lot.planted = _at(rng, harvest - timedelta(days=days))
            lot.harvests = [_Harvest(_at(rng, harvest), lot.kg, any(h.photo for h in lot.harvests))]
            case.injected = [lot.code]
            return
    raise ValueError(f"no off-season month for {lot.crop}")


def _yield_outlier(world: _World, case: _Case) -> None:
    """One harvest at 1.8–3× its group's level; under the plot's capacity when the crop's maximum allows."""
    rng, lot, known = world.rng, case.lot, _crop(case.lot.crop)
    level = world.group_level(lot.crop, lot.farmer.district, lot.year)
    high = min(3.0, 0.97 * float(known.max_kg_per_rai) / level)
    factor = rng.uniform(1.8, high) if high > 1.8 else rng.uniform(1.8, 2.2)
    lot.harvests = [
        _Harvest(lot.harvests[0].at, _round_kg(rng, factor * level * float(lot.area)), lot.harvests[0].photo)
    ]
    case.injected = [lot.code]


def _capacity(world: _World, case: _Case) -> None:
    """The laundering split: several lots on one plot, each declaring its full area with a normal-looking
    yield, together 1.3–2.5× what the plot can grow. Every lot of that plot, crop and season is injected."""
    rng, lot, known = world.rng, case.lot, _crop(case.lot.crop)
    plot, key = lot.plot, case.key
    ratio = rng.uniform(1.3, 2.5)
    looks_normal = world.group_level(lot.crop, lot.farmer.district, lot.year) * rng.uniform(0.9, 1.05)
    count = max(2, math.ceil(ratio * float(known.max_kg_per_rai) / looks_normal))
    each = ratio * float(known.max_kg_per_rai) * float(plot.area) / count
    kept = [x for x in world.lots[key] if not (x.plot is plot and x.crop == lot.crop)]
    dates = _honest_dates(rng, lot.crop, lot.year, 0)
    assert dates is not None  # the honest lot had one
    base_planted, (base_harvest,) = dates
    made = []
    for _ in range(count):
        # All on the field at once (sown within days of each other), so no rotation can explain them.
        planted = base_planted + timedelta(days=rng.randint(-3, 3))
        harvested = base_harvest + timedelta(days=rng.randint(0, 5))
        days = (harvested - planted).days
        if (
            planted.month != base_planted.month  # the same season whichever way seasons are counted
            or not known.in_harvest_season(harvested.month)
            or not known.growing_days_min <= days <= known.growing_days_max
        ):
            planted, harvested = base_planted, base_harvest
        made.append(
            _Lot(
                world.new_code(lot.farmer, lot.year),
                plot,
                lot.crop,
                lot.year,
                plot.area,
                planted,
                [_Harvest(harvested, Decimal(max(10, round(each / 10) * 10)), rng.random() < 0.5)],
            )
        )
    world.lots[key] = kept + made
    case.injected = [x.code for x in made]


def _unusual(world: _World, case: _Case) -> None:
    """A farmer-season a little off in every way at once, each below what a single rule flags: yields
    1.4–1.6× the group's level (still under capacity), growing days just above the minimum, every plot
    split into many small lots, and a hurried drive to the port."""
    rng, key = world.rng, case.key
    made: list[_Lot] = []
    for lot in world.lots[key]:
        known = _crop(lot.crop)
        if any(lot.plot is m.plot and lot.crop == m.crop for m in made):
            continue
        plot = lot.plot
        per_rai = min(
            rng.uniform(1.4, 1.6) * world.group_level(lot.crop, lot.farmer.district, lot.year),
            0.95 * float(known.max_kg_per_rai),
        )
        pieces = rng.randint(2, 4)
        areas = [Decimal(round(float(plot.area) / pieces * 4)) / 4 for _ in range(pieces - 1)]
        areas.append(plot.area - sum(areas, Decimal(0)))
        for area in (a for a in areas if a > 0):
            h0, h1 = _calendar(lot.crop, lot.year)[2:]
            for _ in range(500):
                harvest = _day(rng, h0, h1)
                if known.in_harvest_season(harvest.month):
                    break
            days = round(known.growing_days_min * rng.uniform(1.0, 1.1))
            kg = Decimal(int(per_rai * float(area) / 10) * 10)
            if kg <= 0:
                continue
            made.append(
                _Lot(
                    world.new_code(lot.farmer, lot.year),
                    plot,
                    lot.crop,
                    lot.year,
                    area,
                    _at(rng, harvest - timedelta(days=days)),
                    [_Harvest(_at(rng, harvest), kg, rng.random() < 0.5)],
                    fast=True,
                )
            )
    world.lots[key] = made
    case.injected = [x.code for x in made]


def _impossible_transport(world: _World, case: _Case, places: Mapping[str, tuple[float, float]]) -> None:
    """Received before it was shipped, or so soon after that the road would need 150–2,000 km/h."""
    rng, lot = world.rng, case.lot
    assert lot.shipped is not None
    if rng.random() < 0.5:
        lot.received = lot.shipped - timedelta(hours=rng.uniform(1, 12))
        lot.transport_readings = []
    else:
        km = _km(places[_origin(lot)], PORT_LATLON)
        # whole minutes (as the timestamps are), kept inside 150–2,000 km/h after the rounding
        low, high = math.ceil(60 * km / 2000), math.floor(60 * km / 150)
        minutes = min(high, max(low, round(60 * km / rng.uniform(150, 2000))))
        lot.received = lot.shipped + timedelta(minutes=minutes)
        crop = _crop(lot.crop)
        lot.transport_readings = (
            _drive_readings(rng, crop, lot.shipped, lot.received) if lot.crop in COLD_CHAIN else []
        )
    lot.received = lot.received.replace(second=0, microsecond=0)
    case.injected = [lot.code]


def _cold_chain(world: _World, case: _Case) -> None:
    """A 2–8 h stretch of the drive 5–15 °C outside the crop's range (a failed reefer, a door left open)."""
    rng, lot, crop = world.rng, case.lot, _crop(case.lot.crop)
    assert lot.shipped is not None and lot.received is not None
    hours = rng.uniform(2, 8)
    if (lot.received - lot.shipped) < timedelta(hours=hours + 2):
        lot.received = lot.shipped + timedelta(hours=hours + rng.uniform(2, 4))
        lot.received = lot.received.replace(second=0, microsecond=0)
    begin = lot.shipped + timedelta(minutes=40)
    warm = rng.random() < 0.7
    offset = rng.uniform(5.5, 14.5)

    def bad() -> Decimal:  # each reading 5–15 °C out, wandering a little
        off = offset + rng.uniform(-0.5, 0.5)
        return _celsius(float(crop.storage_c_max) + off if warm else float(crop.storage_c_min) - off)

    before = [r for r in lot.transport_readings if r[0] < begin]
    after_start = begin + timedelta(hours=hours, minutes=15)
    excursion = [(begin + timedelta(minutes=30 * i), bad()) for i in range(int(hours * 2) + 1)]
    after = [(after_start, _in_range(rng, crop))]
    after += _drive_readings(rng, crop, after_start + timedelta(minutes=50), lot.received)
    lot.transport_readings = before + excursion + after
    case.injected = [lot.code]


# --- events -------------------------------------------------------------------------------------------------


class _Writer:
    """Turns plans into the domain's events, with event ids from the seeded generator."""

    def __init__(self, rng: random.Random, places: Mapping[str, tuple[float, float]]) -> None:
        self.rng = rng
        self.places = places
        self.entries: list[tuple[datetime, int, LedgerEntry]] = []

    def place(self, code: str) -> Place:
        lat, lon = self.places[code]
        return Place(id=code, lat=Decimal(f"{lat:.5f}"), lon=Decimal(f"{lon:.5f}"))

    def add(self, event: Event) -> None:
        digest = hashlib.sha256(event.event_id.bytes).hexdigest()
        self.entries.append(
            (event.event_time, len(self.entries), LedgerEntry(hash="0x" + digest, event=event))
        )

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def lot(self, lot: _Lot, evidence: Sequence[tuple[str, ...]]) -> None:
        plot, farmer = lot.plot, lot.farmer
        here = self.place(plot.code)
        self.add(
            Planting(
                kind="planting",
                event_id=self.uuid(),
                event_time=lot.planted,
                lot_code=lot.code,
                plot_id=plot.code,
                crop=lot.crop,
                area_rai=lot.area,
                authority=farmer.district.authority,
                actor=farmer.code,
                place=here,
            )
        )
        for h, photos in zip(lot.harvests, evidence, strict=True):
            self.add(
                Harvest(
                    kind="harvest",
                    event_id=self.uuid(),
                    event_time=h.at,
                    lot_code=lot.code,
                    plot_id=plot.code,
                    crop=lot.crop,
                    quantity=Quantity(value=h.kg),
                    evidence=photos,
                    actor=farmer.code,
                    place=here,
                )
            )
        total = Quantity(value=lot.kg)
        origin = _origin(lot)
        if lot.cooling:
            self.add(
                Cooling(
                    kind="cooling",
                    event_id=self.uuid(),
                    event_time=lot.cooling[-1][0],
                    actor=origin,
                    place=self.place(origin),
                    lot_code=lot.code,
                    quantity=total,
                    method=CoolingMethod.FORCED_AIR,
                    temperatures=tuple(TemperatureReading(time=t, celsius=c) for t, c in lot.cooling),
                )
            )
        assert lot.shipped is not None and lot.received is not None
        bill = (BizDocument(type="bol", number=f"BL-{lot.code}"),)
        items = (LotQuantity(lot_code=lot.code, quantity=total),)
        self.add(
            Transport(
                kind="transport",
                event_id=self.uuid(),
                event_time=lot.shipped,
                actor=origin,
                place=self.place(origin),
                leg="ship",
                items=items,
                source=origin,
                destination=PORT,
                documents=bill,
                vehicle="รถบรรทุกห้องเย็น" if lot.crop in COLD_CHAIN else "รถบรรทุก 10 ล้อ",
            )
        )
        self.add(
            Transport(
                kind="transport",
                event_id=self.uuid(),
                event_time=lot.received,
                actor="EXP-LCB-01",
                place=self.place(PORT),
                leg="receive",
                items=items,
                source=origin,
                destination=PORT,
                documents=bill,
                temperatures=tuple(TemperatureReading(time=t, celsius=c) for t, c in lot.transport_readings),
            )
        )

    def ledger_entries(self) -> list[LedgerEntry]:
        return [e for _, _, e in sorted(self.entries, key=lambda x: (x[0], x[1]))]


# --- photos -------------------------------------------------------------------------------------------------


class _Photos:
    """Small synthetic field photos: smooth random textures, each a different picture (its perceptual hash
    more than :data:`NEAR` bits from every other), and re-encoded, resized, brightened copies of them."""

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen
        self.hashes: dict[str, int] = {}
        self.images: dict[str, bytes] = {}
        self._originals: list[int] = []
        grid = np.mgrid[0:PHOTO_SIZE, 0:PHOTO_SIZE] / PHOTO_SIZE
        self._y, self._x = grid[0], grid[1]

    def _texture(self) -> Image.Image:
        """A few random low-frequency waves (as outer products of 1-D cosines: fast) and blobs, plus noise."""
        g = self.gen
        axis = np.arange(PHOTO_SIZE) / PHOTO_SIZE * np.pi
        field = np.zeros((PHOTO_SIZE, PHOTO_SIZE))
        for _ in range(int(g.integers(5, 9))):
            kx, ky = g.integers(0, 7, size=2)
            u, v = kx * axis + g.uniform(0, 2 * np.pi), ky * axis
            # cos(u + v) over the grid, rows y and columns x
            field += g.uniform(0.3, 1.0) * (np.outer(np.cos(v), np.cos(u)) - np.outer(np.sin(v), np.sin(u)))
        for _ in range(int(g.integers(1, 4))):
            cx, cy, rx, ry = g.uniform(0.1, 0.9, 2).tolist() + g.uniform(0.08, 0.3, 2).tolist()
            dx = ((self._x[0] - cx) / rx) ** 2
            dy = ((self._y[:, 0] - cy) / ry) ** 2
            field += g.uniform(-1.5, 1.5) * (dy[:, None] + dx[None, :] < 1)
        field = (field - field.min()) / (float(np.ptp(field)) or 1.0)
        field += g.normal(0, 0.03, field.shape)
        tint = g.uniform(0.5, 1.0, 3)
        base = g.uniform(0.0, 0.3, 3)
        rgb = np.clip((field[..., None] * tint + base) * 255, 0, 255).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")

    def _keep(self, image: Image.Image, quality: int) -> tuple[str, int]:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        value = phash64(Image.open(io.BytesIO(data)))
        self.hashes[sha] = value
        self.images[sha] = data
        return sha, value

    def original(self) -> str:
        """A new picture, unlike every picture made before."""
        while True:
            sha, value = self._keep(self._texture(), 88)
            taken = np.array(self._originals, dtype=np.uint64)
            if not taken.size or int(np.bitwise_count(taken ^ np.uint64(value)).min()) > NEAR:
                self._originals.append(value)
                return sha
            del self.hashes[sha], self.images[sha]

    def copy(self, sha: str) -> str:
        """The same picture sent again: resized, slightly brighter, re-compressed (a new SHA-256)."""
        source = Image.open(io.BytesIO(self.images[sha])).convert("RGB")
        original = self.hashes[sha]
        for size, bright in (
            (int(self.gen.choice([80, 112, 128])), float(self.gen.uniform(1.03, 1.08))),
            (PHOTO_SIZE, 1.03),
        ):
            image = ImageEnhance.Brightness(source.resize((size, size), Image.Resampling.BILINEAR)).enhance(
                bright
            )
            copied, value = self._keep(image, int(self.gen.integers(70, 86)))
            if copied != sha and hamming(value, original) <= NEAR - 2:
                return copied
            if copied != sha:
                del self.hashes[copied], self.images[copied]
        copied, _ = self._keep(source, 75)  # re-compressed only: always near
        return copied


# --- the season ---------------------------------------------------------------------------------------------


def generate_season(
    seed: int, *, farmers: int = 200, id_base: str = "https://id.example.th"
) -> SyntheticSeason:
    """A ledger of ``farmers`` farmers over two crop years with known injected cases of every signal."""
    if farmers < MIN_FARMERS:
        raise ValueError(f"at least {MIN_FARMERS} farmers are needed for a case of every type")
    rng = random.Random(seed)
    world = _world(rng, farmers)
    per_type = math.ceil(farmers / 10)  # 20 of each type at 200 farmers
    cases = _choose_cases(world, per_type)
    agronomy: dict[RiskCode, Callable[[_World, _Case], None]] = {
        RiskCode.YIELD_OUTLIER: _yield_outlier,
        RiskCode.CAPACITY_EXCEEDED: _capacity,
        RiskCode.TOO_EARLY_HARVEST: _too_early,
        RiskCode.OFF_SEASON_HARVEST: _off_season,
        RiskCode.UNUSUAL_PATTERN: _unusual,
    }
    for case in cases:
        if case.code in agronomy:
            agronomy[case.code](world, case)
    places = _places(world)
    for key in sorted(world.lots):
        for lot in world.lots[key]:
            _logistics(rng, lot, places)
    taken = {c.key for c in cases}  # photo sources come from farmer-seasons with no case, one each
    involved: set[str] = set()
    for case in cases:
        if case.code is RiskCode.IMPOSSIBLE_TRANSPORT:
            _impossible_transport(world, case, places)
        elif case.code is RiskCode.COLD_CHAIN_EXCURSION:
            _cold_chain(world, case)
        elif case.code is RiskCode.PHOTO_REUSED:
            source = _photo_source(world, case, taken)
            case.lot.harvests[0].copy_of = source.code
            source.harvests[0].photo = True
            involved.add(source.code)
            case.injected = [case.lot.code]
    return _finish(seed, farmers, id_base, world, cases, places, involved)


def _photo_source(world: _World, case: _Case, taken: set[tuple[str, int]]) -> _Lot:
    """An honest lot whose harvest photo the case's lot will re-use: another farmer's, or now and then the
    same farmer's from the other season (last year's picture sent again)."""
    rng = world.rng
    own = [k for k in sorted(world.lots) if k[0] == case.key[0] and k != case.key and k not in taken]
    if own and world.lots[own[0]] and rng.random() < 0.25:
        key = own[0]
    else:
        keys = [k for k in sorted(world.lots) if k not in taken and k[0] != case.key[0] and world.lots[k]]
        key = rng.choice(keys)
    taken.add(key)
    return rng.choice(world.lots[key])


def _finish(
    seed: int,
    farmers: int,
    id_base: str,
    world: _World,
    cases: Sequence[_Case],
    places: Mapping[str, tuple[float, float]],
    involved: set[str],
) -> SyntheticSeason:
    photos = _Photos(np.random.default_rng(world.rng.getrandbits(64)))
    writer = _Writer(world.rng, places)
    all_lots = sorted((lot for key in sorted(world.lots) for lot in world.lots[key]), key=lambda x: x.code)
    by_code = {lot.code: lot for lot in all_lots}
    shas: dict[tuple[str, int], str] = {}
    for lot in all_lots:  # originals first, so a copy always has its source
        for i, h in enumerate(lot.harvests):
            if h.photo and h.copy_of is None:
                shas[(lot.code, i)] = photos.original()
    for lot in all_lots:
        for i, h in enumerate(lot.harvests):
            if h.copy_of is not None:
                shas[(lot.code, i)] = photos.copy(shas[(by_code[h.copy_of].code, 0)])
    for lot in all_lots:
        writer.lot(
            lot, [((shas[(lot.code, i)],) if (lot.code, i) in shas else ()) for i in range(len(lot.harvests))]
        )
    injected: dict[RiskCode, list[str]] = {code: [] for code in RiskCode}
    for case in cases:
        injected[case.code].extend(case.injected)
    injected = {code: sorted(lots) for code, lots in injected.items()}
    dirty = {c.key for c in cases}
    lots = set(by_code)
    bad = {lot for codes in injected.values() for lot in codes}
    honest = {
        lot.code for lot in all_lots if (lot.farmer.code, lot.year) not in dirty and lot.code not in involved
    }
    plots = {
        p.code: PlotFact(
            p.code,
            p.farmer.code,
            p.area,
            p.farmer.district.code,
            p.farmer.district.authority,
            round(p.lat, 5),
            round(p.lon, 5),
        )
        for p in world.plots
    }
    ledger = RiskLedger(
        entries=tuple(writer.ledger_entries()), plots=plots, places=dict(places), photos=dict(photos.hashes)
    )
    return SyntheticSeason(
        seed=seed,
        farmers=farmers,
        id_base=id_base,
        ledger=ledger,
        injected=injected,
        honest_lots=honest,
        lots=lots,
        involved=lots - bad - honest,
        seasons={lot.code: str(lot.year) for lot in all_lots},
    )


# --- the measurement ----------------------------------------------------------------------------------------


def score(season: SyntheticSeason, signals: Iterable[Signal], seconds: float) -> dict[str, Any]:
    """Recall per case type and the false-positive rate on honest lots, in the issue's JSON keys.

    A lot is caught for type T when a signal of code T names it; an honest lot is a false positive when any
    signal names it."""
    by_code: dict[RiskCode, set[str]] = defaultdict(set)
    flagged: set[str] = set()
    for signal in signals:
        by_code[signal.code].update(signal.lots)
        flagged.update(signal.lots)
    by_type = {}
    for code in RiskCode:
        lots = season.injected.get(code, [])
        caught = sum(1 for lot in lots if lot in by_code[code])
        by_type[code.value] = {
            "injected": len(lots),
            "caught": caught,
            "recall": round(caught / len(lots), 4) if lots else 0.0,
        }
    honest = len(season.honest_lots)
    return {
        "seed": season.seed,
        "lots": len(season.lots),
        "honest_lots": honest,
        "by_type": by_type,
        "false_positive_rate": round(len(flagged & season.honest_lots) / honest, 4) if honest else 0.0,
        "seconds": round(seconds, 3),
    }


def shortfalls(result: Mapping[str, Any]) -> list[str]:
    """Each goal the result misses, in words (empty: recall ≥ 0.95 for every type and FP ≤ 2 %)."""
    missed = [
        f"{code}: recall {figures['recall']:.4f} < {GOAL_RECALL}"
        for code, figures in result["by_type"].items()
        if figures["recall"] < GOAL_RECALL
    ]
    if result["false_positive_rate"] > GOAL_FALSE_POSITIVE_RATE:
        missed.append(f"false positives {result['false_positive_rate']:.2%} > {GOAL_FALSE_POSITIVE_RATE:.0%}")
    return missed


def goals_met(result: Mapping[str, Any]) -> bool:
    return not shortfalls(result)


Detector = Callable[[RiskLedger], Sequence[Signal]]


def _assess(ledger: RiskLedger) -> Sequence[Signal]:
    return assess(ledger).signals


def run_bench(seed: int, *, farmers: int = 200, detector: Detector | None = None) -> dict[str, Any]:
    """Generate the season for ``seed``, run the detector over its whole ledger, and score it. ``seconds`` is
    the detector's wall time (with mapping its signals to lots); ``generate_seconds`` the generator's."""
    started = time.perf_counter()
    season = generate_season(seed, farmers=farmers)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    signals = tuple((detector or _assess)(season.ledger))
    result = score(season, signals, time.perf_counter() - started)
    result["seconds"] = round(time.perf_counter() - started, 3)
    return {**result, "farmers": farmers, "generate_seconds": round(generated, 3)}


def format_table(result: Mapping[str, Any]) -> str:
    """The plain-text report `trace risk-bench` prints."""
    lines = [
        f"risk bench: seed {result['seed']}, {result.get('farmers', '?')} farmers, {result['lots']} lots "
        f"({result['honest_lots']} honest)",
        f"{'type':<22} {'injected':>8} {'caught':>7} {'recall':>7}",
    ]
    for code, figures in result["by_type"].items():
        lines.append(f"{code:<22} {figures['injected']:>8} {figures['caught']:>7} {figures['recall']:>7.4f}")
    honest = result["honest_lots"]
    flagged = round(result["false_positive_rate"] * honest)
    lines.append(f"false positives: {flagged} of {honest} honest lots = {result['false_positive_rate']:.2%}")
    lines.append(
        f"detector time: {result['seconds']:.3f} s"
        + (
            f" (generating the season: {result['generate_seconds']:.3f} s)"
            if "generate_seconds" in result
            else ""
        )
    )
    missed = shortfalls(result)
    lines.append(
        "goals met: recall >= 0.95 for every type and false positives <= 2 %"
        if not missed
        else "goals NOT met: " + "; ".join(missed)
    )
    return "\n".join(lines)
