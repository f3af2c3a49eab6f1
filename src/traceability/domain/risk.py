"""Origin risk: signals that produce may not be what its record says (สวมสิทธิ์), learned from the ledger.

The chain proves a record was not changed after it was written; it cannot prove the record was true. These
signals look for what a false record leaves behind. Pure code: the service (``services.risk``) builds a
:class:`RiskLedger` from the database (or the verifier from a proof bundle alone) and calls :func:`assess`.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any, Final, Literal, NamedTuple, cast

import numpy as np

from traceability.domain.crops import crop_knowledge
from traceability.domain.events import (
    Certification,
    Cooling,
    Event,
    Harvest,
    Packing,
    Place,
    Planting,
    Revocation,
    TemperatureReading,
    Transport,
    lots_touched,
)
from traceability.domain.geo import great_circle_km
from traceability.domain.lineage import LedgerEntry, event_name
from traceability.domain.photohash import hamming
from traceability.domain.yields import (
    MAD_TO_SD,
    CropModel,
    Expectation,
    Prior,
    learn,
    leave_one_out,
    shrink,
    shrink_median,
)


class RiskCode(StrEnum):
    """A signal's stable code (importers' systems read them: add, never rename)."""

    YIELD_OUTLIER = "yield_outlier"
    CAPACITY_EXCEEDED = "capacity_exceeded"
    TOO_EARLY_HARVEST = "too_early_harvest"
    OFF_SEASON_HARVEST = "off_season_harvest"
    IMPOSSIBLE_TRANSPORT = "impossible_transport"
    COLD_CHAIN_EXCURSION = "cold_chain_excursion"
    PHOTO_REUSED = "photo_reused"
    UNUSUAL_PATTERN = "unusual_pattern"


@dataclass(frozen=True)
class PlotFact:
    """What the อปท. enrolled about a plot: whose it is, where, how large."""

    code: str
    farmer: str  # the farmer's pseudonymous party code
    area_rai: Decimal
    district: str | None = None  # grouping key for learning yields (the อำเภอ)
    authority: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class RiskLedger:
    """Everything the signals read. ``entries`` is the whole ledger (basis ``ledger``) or one proof bundle's
    events (basis ``bundle``: no history to learn from, no plots' enrolled areas, no photos). A scope adds
    ``peers``: the facts of the plantings and harvests of the lots its lots are weighed against (their
    yields, plots and seasons are all a signal reads of them), none of them an event of ``entries``."""

    entries: Sequence[LedgerEntry]
    plots: Mapping[str, PlotFact] = field(default_factory=dict)
    places: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # code → (lat, lon)
    photos: Mapping[str, int] = field(default_factory=dict)  # evidence sha256 → 64-bit perceptual hash
    basis: Literal["ledger", "bundle"] = "ledger"
    peers: Sequence[EventFacts] = ()


@dataclass(frozen=True)
class Signal:
    """One reason a lot looks wrong: its code, the lots it is about, plain Thai and English, the numbers.

    The texts name lots, plots and places, never a farmer (not even by pseudonym): the provenance page shows
    them to anyone. ``farmer`` carries the pseudonymous code for the officer and the importer's API."""

    code: RiskCode
    lots: tuple[str, ...]
    th: str
    en: str
    numbers: Mapping[str, Any]
    weight: float  # 0..1: how strongly this alone says the record is false
    event_id: str | None = None
    farmer: str | None = None
    season: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "lots": list(self.lots),
            "event_id": self.event_id,
            "farmer": self.farmer,
            "season": self.season,
            "weight": exact(round(self.weight, 3)),
            "message": {"th": self.th, "en": self.en},
            "numbers": exact(dict(self.numbers)),
        }


def exact(value: Any) -> Any:
    """``value`` with every float written as the Decimal of its shortest repr: the project's JSON refuses
    floats (``domain.codec``), and a figure such as 1.8 must read as 1.8, not 1.8000000000000000444."""
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [exact(v) for v in value]
    return value


# --- settings ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskSettings:
    """Thresholds of the signals. Chosen on the tuning seeds of ``trace risk-bench`` (docs/benchmarks.md)."""

    yield_z: float = 2.0  # z-score above the learned level (pooled spread of the crop, level uncertainty)
    yield_ratio: float = 1.5  # and at least this many times the learned level
    capacity_tolerance: float = 1.0  # a plot's season total above area × crop maximum × this
    early_fraction: float = 0.9  # harvested before this share of the crop's shortest growing period
    max_speed_kmh: float = 120.0  # great-circle speed no lorry keeps up on Thai roads, stops included
    min_distance_km: float = 5.0  # places closer than this are "the same place" for speed
    cold_margin_c: float = 1.0  # a logger's accuracy: readings this close to the range count as in it
    cold_tolerance_min: float = 60.0  # an excursion shorter than this is a door opened, not a broken chain
    photo_near_bits: int = 8  # perceptual hashes this close are the same picture (domain.photohash.NEAR)
    anomaly_min_groups: int = 30  # fewer farmer-seasons than this: too few to learn what is unusual
    anomaly_z: float = 4.0  # robust z of a farmer-season's one-sided distance above which it is flagged
    anomaly_clip: float = 8.0  # robust z of a feature beyond which it counts no further
    anomaly_trees: int = 200  # the isolation forest's (reported beside the distance)
    anomaly_samples: int = 64
    anomaly_seed: int = 0


DEFAULT_SETTINGS = RiskSettings()


# --- seasons, names ----------------------------------------------------------------------------------------

THAI_TIME = timezone(timedelta(hours=7))
_MONTHS_TH = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def season_of(planted: datetime) -> str:
    """The growing season a planting belongs to, as Thai farmers count them: the wet season (ฤดูฝน, planted
    May–October: นาปี rice) or the dry season (ฤดูแล้ง, planted November–April: นาปรัง rice, watermelon
    after the rice), named by the year it ends in: ``2025-wet``, ``2026-dry`` (planted November 2025 to
    April 2026)."""
    local = planted.astimezone(THAI_TIME)
    if 5 <= local.month <= 10:
        return f"{local.year}-wet"
    return f"{local.year + 1 if local.month >= 11 else local.year}-dry"


def _month(moment: datetime) -> int:
    return moment.astimezone(THAI_TIME).month


def season_words(season: str) -> tuple[str, str]:
    """``2025-wet`` → ("ฤดูฝน 2568", "wet season 2025")."""
    year, kind = season.split("-")
    th = "ฤดูฝน" if kind == "wet" else "ฤดูแล้ง"
    return f"{th} {int(year) + 543}", f"{kind} season {year}"


def _num(value: float | Decimal, places: int = 0) -> str:
    return f"{float(value):,.{places}f}"


def _crop_words(code: str) -> tuple[str, str]:
    known = crop_knowledge(code)
    return (known.name_th, known.name_en) if known else (code, code)


def _months(months: Sequence[int]) -> tuple[str, str]:
    return ", ".join(_MONTHS_TH[m - 1] for m in months), ", ".join(_MONTHS_EN[m - 1] for m in months)


# --- the ledger as the signals see it ----------------------------------------------------------------------


RISK_KINDS: Final = ("planting", "harvest", "cooling", "grading", "packing", "transport")
"""The kinds of event origin risk reads: certifications and revocations say nothing about where produce came
from."""


class EventFacts(NamedTuple):
    """What the ledger-wide population (:func:`population_of`) reads of one event, a few hundred bytes in
    place of a parsed event's kilobytes: a service can keep them for every event of a large ledger and learn
    the population again from them without re-reading a body. Events of no other use to it (a cooling or a
    packing without photos) have none (:func:`event_facts`). A tuple: a scope reads thousands."""

    event_id: str
    event_time: datetime
    actor: str
    lots: tuple[str, ...]  # ``lots_touched``
    codes: tuple[str, ...]  # the places and plots it names (:func:`named_codes`)
    evidence: tuple[str, ...] = ()
    planted: tuple[str, str, Decimal] | None = None  # a planting's crop as recorded, plot, declared rai
    harvested: Decimal | None = None  # a harvest's kilograms
    leg: tuple[str, str, str] | None = None  # a transport's leg, source, destination


def named_codes(event: Event) -> tuple[str, ...]:
    """The places and plots ``event`` names: its place, a planting's or harvest's plot, a leg's ends."""
    codes = [event.place.id]
    if isinstance(event, Planting | Harvest):
        codes.append(event.plot_id)
    if isinstance(event, Transport):
        codes += [event.source, event.destination]
    return tuple(dict.fromkeys(codes))


def event_facts(event: Event) -> EventFacts | None:
    """The facts of ``event`` the population reads, or None when it reads nothing of it."""
    planted = (event.crop, event.plot_id, event.area_rai) if isinstance(event, Planting) else None
    harvested = event.quantity.kg() if isinstance(event, Harvest) else None
    leg = (event.leg, event.source, event.destination) if isinstance(event, Transport) else None
    if planted is None and harvested is None and leg is None and not event.evidence:
        return None
    return EventFacts(
        str(event.event_id),
        event.event_time,
        event.actor,
        lots_touched(event),
        named_codes(event),
        tuple(event.evidence),
        planted,
        harvested,
        leg,
    )


class Picking(NamedTuple):
    """One harvest into a lot, as the signals weigh it (a tuple: a scope makes thousands)."""

    event_id: str
    event_time: datetime
    kg: Decimal


@dataclass
class _Lot:
    """A harvest lot: its planting and everything harvested into it (complete once the view is built, so its
    totals are computed once)."""

    code: str
    crop: str
    plot: str
    area_rai: float
    planted: datetime
    farmer: str
    district: str | None
    season: str
    harvests: list[Picking] = field(default_factory=list)

    @cached_property
    def kg(self) -> float:
        return float(sum((h.kg for h in self.harvests), Decimal(0)))

    @cached_property
    def per_rai(self) -> float:
        return self.kg / self.area_rai

    @cached_property
    def last_harvest(self) -> datetime:
        return max(h.event_time for h in self.harvests)


class _Core:
    """What the population reads, indexed once: the events' facts in ledger order, the harvest lots they
    make, the enrolled plots, the places and the photos' hashes."""

    def __init__(
        self,
        facts: Sequence[EventFacts],
        plots: Mapping[str, PlotFact],
        places: Mapping[str, tuple[float, float]],
        photos: Mapping[str, int],
    ) -> None:
        self.facts = facts
        self.plots = plots
        self.places = places
        self.photos = photos
        plantings = {f.lots[0]: f for f in facts if f.planted is not None}
        self.lots: dict[str, _Lot] = {}
        for f in sorted((f for f in facts if f.harvested is not None), key=attrgetter("event_time")):
            planting = plantings.get(f.lots[0])
            if planting is None or planting.planted is None or f.harvested is None:
                continue
            lot = self.lots.get(f.lots[0])
            if lot is None:
                crop, plot, area = planting.planted
                fact = plots.get(plot)
                lot = self.lots[f.lots[0]] = _Lot(
                    code=f.lots[0],
                    crop=canonical_crop(crop),
                    plot=plot,
                    area_rai=float(area),
                    planted=planting.event_time,
                    farmer=fact.farmer if fact else planting.actor,
                    district=fact.district if fact else None,
                    season=season_of(planting.event_time),
                )
            lot.harvests.append(Picking(f.event_id, f.event_time, f.harvested))

    def where(self, code: str, place: Place | None = None) -> tuple[float, float] | None:
        if place is not None and place.lat is not None and place.lon is not None:
            return float(place.lat), float(place.lon)
        known = self.places.get(code)
        if known is not None:
            return known
        fact = self.plots.get(code)
        if fact is not None and fact.lat is not None and fact.lon is not None:
            return fact.lat, fact.lon
        return None


class _View(_Core):
    """The ledger indexed once for every signal."""

    def __init__(self, ledger: RiskLedger) -> None:
        self.ledger = ledger
        self.events = [e.event for e in ledger.entries]
        facts = [f for ev in self.events if (f := event_facts(ev)) is not None]
        if ledger.peers:  # in the ledger's order, as the whole ledger's view has them
            facts = sorted([*facts, *ledger.peers], key=lambda f: (f.event_time, f.event_id))
        super().__init__(facts, ledger.plots, ledger.places, ledger.photos)
        self.crop_of: dict[str, str] = {}
        for e in self.events:
            if isinstance(e, Planting | Harvest):
                self.crop_of.setdefault(e.lot_code, canonical_crop(e.crop))
        for pk in sorted((e for e in self.events if isinstance(e, Packing)), key=lambda e: e.event_time):
            crops = {self.crop_of[i.lot_code] for i in pk.inputs if i.lot_code in self.crop_of}
            if len(crops) == 1:
                for out in pk.outputs:
                    self.crop_of.setdefault(out.lot_code, next(iter(crops)))
        self.origins = self._origins()

    def _origins(self) -> dict[str, set[str]]:
        """lot → the harvest lots it was packed from (itself for a harvest lot)."""
        up: dict[str, set[str]] = defaultdict(set)
        for ev in self.events:
            if isinstance(ev, Packing):
                for out in ev.outputs:
                    up[out.lot_code].update(i.lot_code for i in ev.inputs)
        result: dict[str, set[str]] = {}

        def walk(lot: str, seen: frozenset[str]) -> set[str]:
            if lot in result:
                return result[lot]
            found = {lot} if lot in self.lots else set()
            for p in up.get(lot, ()):
                if p not in seen:
                    found |= walk(p, seen | {lot})
            result[lot] = found
            return found

        for lot in {*up, *self.lots}:
            walk(lot, frozenset())
        return result


def canonical_crop(code: str) -> str:
    known = crop_knowledge(code)
    return known.code if known else code


# --- yield_outlier -----------------------------------------------------------------------------------------

LOO_EXACT_UP_TO = 40
"""Groups up to this size leave the tested lot out exactly; in larger ones one record moves a median by a
negligible amount, so the group is summarised once."""


def _yield_groups(view: _Core) -> dict[str, dict[Hashable, list[_Lot]]]:
    """crop → (district, season) → its harvest lots with a yield, by code: what yields are learned from."""
    by_crop: dict[str, dict[Hashable, list[_Lot]]] = defaultdict(lambda: defaultdict(list))
    for lot in sorted(view.lots.values(), key=lambda x: x.code):
        if lot.kg > 0 and lot.area_rai > 0 and crop_knowledge(lot.crop) is not None:
            by_crop[lot.crop][(lot.district, lot.season)].append(lot)
    return by_crop


def crop_model(crop: str, groups: Mapping[Hashable, Sequence[float]]) -> CropModel:
    """The model of a known crop learned from its log-yields by (district, season): ``domain.yields.learn``
    with the crop's published figures as the prior."""
    known = crop_knowledge(crop)
    assert known is not None
    return learn(groups, Prior.of(float(known.typical_kg_per_rai), float(known.max_kg_per_rai)))


def yield_groups(ledger: RiskLedger) -> dict[str, dict[Hashable, list[float]]]:
    """crop → (district, season) → the log-yields its crop model is learned from, in lot-code order. A
    group lies in one district, so the service can learn a crop's model from each district's groups read
    (and kept) apart, and re-read only the district where something was recorded."""
    return {
        crop: {k: [math.log(x.per_rai) for x in v] for k, v in members.items()}
        for crop, members in _yield_groups(_View(ledger)).items()
    }


GroupKey = tuple[str, str | None, str]
"""A yield group: crop (canonical), district, season."""


def group_levels(view: _Core) -> dict[GroupKey, tuple[int, float]]:
    """The yield groups larger than :data:`LOO_EXACT_UP_TO`, each as (records, median log-yield): all that
    the expectation of any of its lots reads of it."""
    out: dict[GroupKey, tuple[int, float]] = {}
    for crop, members in _yield_groups(view).items():
        for key, group in members.items():
            if len(group) > LOO_EXACT_UP_TO:
                district, season = cast(tuple[str | None, str], key)
                values = [math.log(x.per_rai) for x in group]
                out[(crop, district, season)] = (len(values), statistics.median(values))
    return out


def _yield_expectations(
    view: _Core,
    models: Mapping[str, CropModel] | None = None,
    levels: Mapping[GroupKey, tuple[int, float]] | None = None,
) -> dict[str, Expectation]:
    """Each harvest lot's expected log-yield, learned from the other lots of its crop, district and season
    (with the crop's model from ``models`` when given, else learned from ``view``; a large group's records
    and median from ``levels`` when it is there, else from ``view``)."""
    out: dict[str, Expectation] = {}
    for crop, members in _yield_groups(view).items():
        groups: dict[Hashable, list[float]] = {
            k: [math.log(x.per_rai) for x in v] for k, v in members.items()
        }
        model = (models or {}).get(crop) or crop_model(crop, groups)
        for key, group in members.items():
            values = groups[key]
            district, season = cast(tuple[str | None, str], key)
            level = (levels or {}).get((crop, district, season))
            if level is not None:
                whole: Expectation | None = shrink_median(*level, model)
            else:
                whole = shrink(values, model) if len(values) > LOO_EXACT_UP_TO else None
            for i, lot in enumerate(group):
                out[lot.code] = whole or shrink(leave_one_out(values, i), model)
    return out


def yield_outliers(view: _View, expected: Mapping[str, Expectation], s: RiskSettings) -> list[Signal]:
    signals = []
    for lot in view.lots.values():
        exp = expected.get(lot.code)
        if exp is None:
            continue
        z = exp.z(math.log(lot.per_rai))
        ratio = lot.per_rai / exp.kg_per_rai
        if z <= s.yield_z or ratio < s.yield_ratio:
            continue
        crop_th, crop_en = _crop_words(lot.crop)
        season_th, season_en = season_words(lot.season)
        where_th = f" อำเภอ{lot.district}" if lot.district else ""
        where_en = f" in {lot.district}" if lot.district else ""
        basis_th = f"จากบันทึกอื่น {exp.records} รายการ" if exp.records else "จากค่าปกติของพืช"
        basis_en = f"learned from {exp.records} other records" if exp.records else "the crop's usual yield"
        signals.append(
            Signal(
                RiskCode.YIELD_OUTLIER,
                (lot.code,),
                f"ล็อต {lot.code} เก็บเกี่ยว{crop_th}ได้ไร่ละ {_num(lot.per_rai)} กก. สูงเป็น {ratio:.1f} เท่าของ"
                f"ระดับปกติ{where_th} {season_th} (ไร่ละประมาณ {_num(exp.kg_per_rai)} กก. {basis_th}) "
                "อาจมีผลผลิตจากที่อื่นปนมา",
                f"Lot {lot.code}: {_num(lot.per_rai)} kg of {crop_en} per rai, {ratio:.1f} times the usual "
                f"level{where_en} in the {season_en} (about {_num(exp.kg_per_rai)} kg per rai, {basis_en}); "
                "produce from elsewhere may have been added",
                {
                    "kg_per_rai": round(lot.per_rai, 1),
                    "expected_kg_per_rai": round(exp.kg_per_rai, 1),
                    "ratio": round(ratio, 2),
                    "z": round(z, 2),
                    "records": exp.records,
                    "weight_of_records": round(exp.weight, 3),
                    "district": lot.district,
                },
                weight=min(1.0, 0.45 + 0.08 * (z - s.yield_z) + 0.1 * (ratio - s.yield_ratio)),
                event_id=str(lot.harvests[-1].event_id),
                farmer=lot.farmer,
                season=lot.season,
            )
        )
    return signals


# --- capacity_exceeded -------------------------------------------------------------------------------------


def _overlapping(lots: list[_Lot]) -> list[list[_Lot]]:
    """Lots growing at the same time (planting to last harvest overlap): what one field carried at once."""
    parts: list[list[_Lot]] = []
    end: datetime | None = None
    for lot in sorted(lots, key=lambda x: (x.planted, x.code)):
        if end is None or lot.planted > end:
            parts.append([lot])
            end = lot.last_harvest
        else:
            parts[-1].append(lot)
            end = max(end, lot.last_harvest)
    return parts


def capacity(view: _View, s: RiskSettings) -> list[Signal]:
    signals: list[Signal] = []
    by_plot: dict[tuple[str, str, str], list[_Lot]] = defaultdict(list)
    for lot in view.lots.values():
        if crop_knowledge(lot.crop) is not None:
            by_plot[(lot.plot, lot.crop, lot.season)].append(lot)
    cycles: dict[tuple[str, str, str], int] = {}
    for (plot, crop, season), lots in sorted(by_plot.items()):
        known = crop_knowledge(crop)
        assert known is not None
        fact = view.plots.get(plot)
        area = float(fact.area_rai) if fact else max(x.area_rai for x in lots)
        parts = _overlapping(lots)
        cycles[(plot, crop, season)] = len(parts)
        for part in parts:
            total = sum(x.kg for x in part)
            cap = area * float(known.max_kg_per_rai)
            if total <= cap * s.capacity_tolerance:
                continue
            ratio = total / cap
            crop_th, crop_en = _crop_words(crop)
            season_th, season_en = season_words(season)
            codes = tuple(sorted(x.code for x in part))
            signals.append(
                Signal(
                    RiskCode.CAPACITY_EXCEEDED,
                    codes,
                    f"แปลง {plot} ({_num(area, 2).rstrip('0').rstrip('.')} ไร่) มีบันทึกเก็บเกี่ยว{crop_th} "
                    f"{season_th} รวม {_num(total)} กก. จาก {len(codes)} ล็อต ({', '.join(codes)}) "
                    f"เกินกว่าที่แปลงขนาดนี้ให้ได้ (ไม่เกินไร่ละ {_num(known.max_kg_per_rai)} กก. หรือรวม "
                    f"{_num(cap)} กก.) ถึง {ratio:.1f} เท่า อาจมีผลผลิตจากที่อื่นมาสวมสิทธิ์",
                    f"Plot {plot} ({_num(area, 2).rstrip('0').rstrip('.')} rai) has {_num(total)} kg of "
                    f"{crop_en} recorded in the {season_en} across {len(codes)} lot(s) "
                    f"({', '.join(codes)}), {ratio:.1f} times what a field of that size can give (at most "
                    f"{_num(known.max_kg_per_rai)} kg per rai, {_num(cap)} kg in all); produce from "
                    "elsewhere may have been passed off as this farm's",
                    {
                        "plot": plot,
                        "area_rai": round(area, 4),
                        "harvested_kg": round(total, 3),
                        "max_kg_per_rai": float(known.max_kg_per_rai),
                        "capacity_kg": round(cap, 1),
                        "ratio": round(ratio, 2),
                        "lots": list(codes),
                        "area_source": "enrolment" if fact else "declared",
                    },
                    weight=min(1.0, 0.6 + 0.4 * (ratio - 1)),
                    farmer=part[0].farmer,
                    season=season,
                )
            )
    signals += _farmer_capacity(view, cycles, s)
    return signals


def _farmer_capacity(
    view: _View, cycles: Mapping[tuple[str, str, str], int], s: RiskSettings
) -> list[Signal]:
    """A farmer's season total of a crop above all the land enrolled to them can give: harvests recorded on
    fields that are not theirs (or no one's) add kilograms without adding land."""
    if not view.plots:
        return []
    land: dict[str, float] = defaultdict(float)
    for fact in view.plots.values():
        land[fact.farmer] += float(fact.area_rai)
    by_farmer: dict[tuple[str, str, str], list[_Lot]] = defaultdict(list)
    for lot in view.lots.values():
        if crop_knowledge(lot.crop) is not None:
            by_farmer[(lot.farmer, lot.crop, lot.season)].append(lot)
    signals = []
    for (farmer, crop, season), lots in sorted(by_farmer.items()):
        known = crop_knowledge(crop)
        assert known is not None
        own = [x for x in lots if (f := view.plots.get(x.plot)) is not None and f.farmer == farmer]
        if len(own) == len(lots):
            continue  # every lot is on the farmer's own plots: the plot check covers them
        rounds = max((cycles.get((x.plot, crop, season), 1) for x in lots), default=1)
        cap = land[farmer] * float(known.max_kg_per_rai) * rounds
        total = sum(x.kg for x in lots)
        if total <= cap * s.capacity_tolerance:
            continue
        codes = tuple(sorted(x.code for x in lots))
        crop_th, crop_en = _crop_words(crop)
        season_th, season_en = season_words(season)
        ratio = total / cap if cap else float("inf")
        signals.append(
            Signal(
                RiskCode.CAPACITY_EXCEEDED,
                codes,
                f"เกษตรกรผู้ปลูกล็อต {', '.join(codes)} มีบันทึกเก็บเกี่ยว{crop_th} {season_th} รวม "
                f"{_num(total)} กก. แต่ที่ดินที่ขึ้นทะเบียนไว้ {_num(land[farmer], 1)} ไร่ ให้ได้ไม่เกิน "
                f"{_num(cap)} กก. บางล็อตบันทึกว่ามาจากแปลงที่ไม่ใช่ของเกษตรกรรายนี้",
                f"The farmer of lot(s) {', '.join(codes)} has {_num(total)} kg of {crop_en} recorded in the "
                f"{season_en}, but the {_num(land[farmer], 1)} rai enrolled to them can give at most "
                f"{_num(cap)} kg; some lots are recorded on fields that are not theirs",
                {
                    "farmer": farmer,
                    "harvested_kg": round(total, 3),
                    "enrolled_rai": round(land[farmer], 4),
                    "capacity_kg": round(cap, 1),
                    "ratio": round(ratio, 2) if cap else None,
                    "lots": list(codes),
                    "lots_off_own_plots": sorted(x.code for x in lots if x not in own),
                },
                weight=0.6 if not cap else min(1.0, 0.6 + 0.4 * (ratio - 1)),
                farmer=farmer,
                season=season,
            )
        )
    return signals


# --- too_early_harvest / off_season_harvest ----------------------------------------------------------------


def timing(view: _View, s: RiskSettings) -> list[Signal]:
    signals = []
    for lot in view.lots.values():
        known = crop_knowledge(lot.crop)
        if known is None:
            continue
        crop_th, crop_en = _crop_words(lot.crop)
        first = min(lot.harvests, key=lambda h: h.event_time)
        days = (first.event_time - lot.planted).total_seconds() / 86400
        if days < known.growing_days_min * s.early_fraction:
            signals.append(
                Signal(
                    RiskCode.TOO_EARLY_HARVEST,
                    (lot.code,),
                    f"ล็อต {lot.code} บันทึกว่าเก็บเกี่ยวหลังปลูกเพียง {max(days, 0):.0f} วัน แต่{crop_th}"
                    f"ต้องใช้เวลาอย่างน้อย {known.growing_days_min} วันจึงจะเก็บเกี่ยวได้",
                    f"Lot {lot.code} is recorded as harvested only {max(days, 0):.0f} days after planting, "
                    f"but {crop_en} needs at least {known.growing_days_min} days to be ready",
                    {
                        "days": round(days, 1),
                        "growing_days_min": known.growing_days_min,
                        "planted": lot.planted.isoformat(),
                        "harvested": first.event_time.isoformat(),
                    },
                    weight=min(1.0, 0.6 + 0.8 * (1 - max(days, 0) / known.growing_days_min)),
                    event_id=str(first.event_id),
                    farmer=lot.farmer,
                    season=lot.season,
                )
            )
        off = [h for h in lot.harvests if not known.in_harvest_season(_month(h.event_time))]
        if off:
            h = off[0]
            month = _month(h.event_time)
            months_th, months_en = _months(known.harvest_months)
            signals.append(
                Signal(
                    RiskCode.OFF_SEASON_HARVEST,
                    (lot.code,),
                    f"ล็อต {lot.code} บันทึกว่าเก็บเกี่ยว{crop_th}เดือน{_MONTHS_TH[month - 1]} ซึ่งไม่ใช่ช่วง"
                    f"เก็บเกี่ยวของพืชนี้ (เก็บเกี่ยวเดือน {months_th})",
                    f"Lot {lot.code}: {crop_en} recorded as harvested in {_MONTHS_EN[month - 1]}, when it is "
                    f"not harvested (its harvest months: {months_en})",
                    {"month": month, "harvest_months": list(known.harvest_months)},
                    weight=0.55,
                    event_id=str(h.event_id),
                    farmer=lot.farmer,
                    season=lot.season,
                )
            )
    return signals


# --- impossible_transport ----------------------------------------------------------------------------------


def _stop(ev: Event) -> str:
    """The place a lot is at when ``ev`` happens: a shipment leaves its source, a receipt reaches its
    destination, anything else happens at its place."""
    if isinstance(ev, Transport):
        return ev.source if ev.leg == "ship" else ev.destination
    return ev.place.id


def _place_of(view: _View, ev: Event) -> tuple[float, float] | None:
    code = _stop(ev)
    same = not isinstance(ev, Transport) or code == ev.place.id
    return view.where(code, ev.place if same else None)


def transport(view: _View, s: RiskSettings) -> list[Signal]:
    signals: list[Signal] = []
    on_lot: dict[str, list[Event]] = defaultdict(list)
    for ev in view.events:
        if isinstance(ev, Certification | Revocation):
            continue
        for lot in lots_touched(ev):
            on_lot[lot].append(ev)
    flagged: set[tuple[str, str]] = set()
    for lot, events in sorted(on_lot.items()):
        ordered = sorted(events, key=lambda e: e.event_time)
        ships = {
            (e.source, e.destination): e for e in ordered if isinstance(e, Transport) and e.leg == "ship"
        }
        for ev in ordered:
            if not (isinstance(ev, Transport) and ev.leg == "receive"):
                continue
            ship = ships.get((ev.source, ev.destination))
            if ship is not None and ev.event_time < ship.event_time:
                hours = (ship.event_time - ev.event_time).total_seconds() / 3600
                flagged.add((lot, str(ev.event_id)))
                signals.append(
                    Signal(
                        RiskCode.IMPOSSIBLE_TRANSPORT,
                        (lot,),
                        f"ล็อต {lot} ถูกบันทึกว่ารับเข้าที่ {ev.destination} ก่อนที่จะส่งออกจาก {ev.source} "
                        f"{hours:,.1f} ชั่วโมง ซึ่งเป็นไปไม่ได้",
                        f"Lot {lot} is recorded as received at {ev.destination} {hours:,.1f} hours before it "
                        f"was shipped from {ev.source}, which cannot be",
                        {
                            "kind": "receipt_before_shipment",
                            "from": ev.source,
                            "to": ev.destination,
                            "shipped": ship.event_time.isoformat(),
                            "received": ev.event_time.isoformat(),
                            "hours_early": round(hours, 2),
                        },
                        weight=0.8,
                        event_id=str(ev.event_id),
                    )
                )
        for a, b in zip(ordered, ordered[1:], strict=False):
            if (lot, str(b.event_id)) in flagged:
                continue
            pa, pb = _place_of(view, a), _place_of(view, b)
            if pa is None or pb is None:
                continue
            km = great_circle_km(pa, pb)
            if km < s.min_distance_km:
                continue
            hours = (b.event_time - a.event_time).total_seconds() / 3600
            speed = km / hours if hours > 0 else float("inf")
            if speed <= s.max_speed_kmh:
                continue
            flagged.add((lot, str(b.event_id)))
            speed_words = f"{speed:,.0f}" if hours > 0 else "∞"
            signals.append(
                Signal(
                    RiskCode.IMPOSSIBLE_TRANSPORT,
                    (lot,),
                    f"ล็อต {lot} อยู่ที่ {_stop(a)} แล้วไปอยู่ที่ {_stop(b)} ห่างกัน {km:,.0f} กม. (วัดเป็นเส้นตรง) "
                    f"ภายใน {max(hours, 0):,.1f} ชั่วโมง ต้องเดินทางเร็ว {speed_words} กม./ชม. ซึ่งรถบรรทุก"
                    "ทำไม่ได้",
                    f"Lot {lot} was at {_stop(a)} and then at {_stop(b)}, {km:,.0f} km away in a straight "
                    f"line, within {max(hours, 0):,.1f} hours: {speed_words} km/h, faster than any lorry",
                    {
                        "kind": "too_fast",
                        "from": _stop(a),
                        "to": _stop(b),
                        "km": round(km, 1),
                        "hours": round(hours, 2),
                        "km_per_hour": round(speed, 1) if hours > 0 else None,
                        "max_km_per_hour": s.max_speed_kmh,
                    },
                    weight=min(1.0, 0.6 + 0.1 * (speed / s.max_speed_kmh - 1)) if hours > 0 else 0.9,
                    event_id=str(b.event_id),
                )
            )
    return signals


# --- cold_chain_excursion ----------------------------------------------------------------------------------


def _excursions(
    readings: Sequence[TemperatureReading], low: float, high: float, *, wait_until_in_range: bool
) -> list[tuple[datetime, datetime, float]]:
    """Stretches of readings outside [low, high]: (first out, back in or last reading, worst reading)."""
    ordered = sorted(readings, key=lambda r: r.time)
    if wait_until_in_range:
        start = next((i for i, r in enumerate(ordered) if low <= float(r.celsius) <= high), len(ordered))
        ordered = ordered[start:]
    out: list[tuple[datetime, datetime, float]] = []
    begun: TemperatureReading | None = None
    worst = 0.0
    for r in ordered:
        c = float(r.celsius)
        outside = c < low or c > high
        if outside and begun is None:
            begun, worst = r, c
        elif outside:
            worst = c if abs(c - (low + high) / 2) > abs(worst - (low + high) / 2) else worst
        elif begun is not None:
            out.append((begun.time, r.time, worst))
            begun = None
    if begun is not None:
        out.append((begun.time, ordered[-1].time, worst))
    return out


def cold_chain(view: _View, s: RiskSettings) -> list[Signal]:
    signals = []
    for ev in view.events:
        if not isinstance(ev, Cooling | Transport) or not ev.temperatures:
            continue
        for lot in lots_touched(ev):
            crop = view.crop_of.get(lot)
            known = crop_knowledge(crop) if crop else None
            if known is None:
                continue
            low = float(known.storage_c_min) - s.cold_margin_c
            high = float(known.storage_c_max) + s.cold_margin_c
            stretches = _excursions(ev.temperatures, low, high, wait_until_in_range=isinstance(ev, Cooling))
            if not stretches:
                continue
            begun, ended, worst = max(stretches, key=lambda x: x[1] - x[0])
            minutes = (ended - begun).total_seconds() / 60
            if minutes < s.cold_tolerance_min:
                continue
            crop_th, crop_en = _crop_words(known.code)
            name_th, name_en = event_name(ev)
            lo, hi = _num(known.storage_c_min, 1), _num(known.storage_c_max, 1)
            signals.append(
                Signal(
                    RiskCode.COLD_CHAIN_EXCURSION,
                    (lot,),
                    f"ระหว่าง{name_th}ล็อต {lot} อุณหภูมิอยู่นอกช่วง {lo}–{hi} °C ที่{crop_th}ต้องเก็บ "
                    f"นาน {minutes:,.0f} นาที (ถึง {worst:.1f} °C)",
                    f"During the {name_en} of lot {lot} the temperature was outside the {lo}–{hi} °C "
                    f"{crop_en} must be kept at for {minutes:,.0f} minutes (reaching {worst:.1f} °C)",
                    {
                        "minutes": round(minutes, 1),
                        "worst_c": worst,
                        "range_c": [float(known.storage_c_min), float(known.storage_c_max)],
                        "margin_c": s.cold_margin_c,
                        "tolerance_minutes": s.cold_tolerance_min,
                        "from": begun.isoformat(),
                        "to": ended.isoformat(),
                    },
                    weight=min(1.0, 0.4 + 0.1 * minutes / 60),
                    event_id=str(ev.event_id),
                )
            )
    return signals


# --- photo_reused ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Photo:
    phash: int
    sha256: str
    lot: str
    farmer: str
    season: str
    event_id: str


PAIR_BLOCK: Final = 1 << 22
"""Hash comparisons held in memory at once (8 bytes each) when one band's bucket is compared with itself."""


def near_pairs(hashes: Sequence[int], bits: int) -> set[tuple[int, int]]:
    """The index pairs ``(i, j)``, ``i < j``, of 64-bit ``hashes`` at most ``bits`` apart.

    The 64 bits are cut into ``bits + 1`` bands: two hashes at most ``bits`` apart agree on one band at least
    (pigeonhole), so only hashes sharing a band's value are compared. The comparisons run in numpy, a block
    of a bucket's rows at a time, so memory stays under :data:`PAIR_BLOCK` comparisons and the work is
    the pairs that share a band (about ``9/256`` of all pairs for unrelated photos), never a Python loop
    over them; only the near pairs found come back as Python tuples."""
    values = np.array(hashes, dtype=np.uint64)
    n = bits + 1
    sizes = [64 // n + (1 if i < 64 % n else 0) for i in range(n)]
    pairs: set[tuple[int, int]] = set()
    shift = 0
    for size in sizes:
        keys = (values >> np.uint64(shift)) & np.uint64((1 << size) - 1)
        shift += size
        order = np.argsort(keys, kind="stable")
        cuts = np.flatnonzero(np.diff(keys[order])) + 1
        for bucket in np.split(order, cuts):
            if len(bucket) < 2:
                continue
            members = np.sort(bucket)
            group = values[members]
            rows = max(1, PAIR_BLOCK // len(members))
            for start in range(0, len(members) - 1, rows):
                block = group[start : start + rows]
                near = np.bitwise_count(block[:, None] ^ group[None, start:]) <= bits
                r, c = np.nonzero(near)
                later = c > r  # column c is member start + c, row r is member start + r
                firsts, seconds = members[start + r[later]], members[start + c[later]]
                pairs.update(zip(firsts.tolist(), seconds.tolist(), strict=True))
    return pairs


def photos(view: _Core, s: RiskSettings) -> list[Signal]:
    if not view.photos:
        return []
    found: list[_Photo] = []
    for f in view.facts:
        if not f.evidence:
            continue
        for lot in f.lots:
            harvest = view.lots.get(lot)
            farmer = harvest.farmer if harvest else f.actor
            season = harvest.season if harvest else season_of(f.event_time)
            for sha in f.evidence:
                ph = view.photos.get(sha)
                if ph is not None:
                    found.append(_Photo(ph, sha, lot, farmer, season, f.event_id))
    pairs: set[tuple[int, int]] = set()
    for i, j in near_pairs([p.phash for p in found], s.photo_near_bits):
        a, b = found[i], found[j]
        same_season = a.farmer == b.farmer and a.season == b.season
        if not (a.event_id == b.event_id or a.lot == b.lot or same_season):
            pairs.add((i, j))
    signals = []
    for i, j in sorted(pairs):
        a, b = found[i], found[j]
        bits = hamming(a.phash, b.phash)
        same = "ไฟล์เดียวกัน" if a.sha256 == b.sha256 else "เกือบเหมือนกัน"
        same_en = "the very same file" if a.sha256 == b.sha256 else "a near-identical picture"
        whose_th = "ของเกษตรกรอีกราย" if a.farmer != b.farmer else "ของฤดูอื่น"
        whose_en = "another farmer's" if a.farmer != b.farmer else "another season's"
        signals.append(
            Signal(
                RiskCode.PHOTO_REUSED,
                tuple(sorted({a.lot, b.lot})),
                f"รูปถ่ายหลักฐานของล็อต {b.lot} เป็นรูป{same}กับรูปของล็อต {a.lot} {whose_th} "
                "รูปเดียวกันไม่ควรเป็นหลักฐานของผลผลิตสองแหล่ง",
                f"The evidence photo of lot {b.lot} is {same_en} as the photo of lot {a.lot}, "
                f"{whose_en}: one picture cannot show two different harvests",
                {
                    "lots": sorted({a.lot, b.lot}),
                    "photos": [a.sha256, b.sha256],
                    "hamming_bits": bits,
                    "near_bits": s.photo_near_bits,
                    "same_farmer": a.farmer == b.farmer,
                },
                weight=0.7 if a.sha256 != b.sha256 else 0.8,
                event_id=b.event_id,
                farmer=b.farmer,
                season=b.season,
            )
        )
    return signals


# --- unusual_pattern: an isolation forest over farmer-seasons ---------------------------------------------

FEATURES: tuple[tuple[str, str, str], ...] = (
    ("yield_ratio", "ผลผลิตต่อไร่เทียบกับระดับปกติ (ค่ากลาง)", "yield per rai against the usual level (median)"),
    ("capacity_ratio", "ผลผลิตรวมเทียบกับที่แปลงให้ได้", "season total against what the plots can give"),
    ("growing_ratio", "ระยะปลูกถึงเก็บเกี่ยวเทียบกับขั้นต่ำของพืช", "growing period against the crop's shortest"),
    ("lots_per_rai", "จำนวนล็อตต่อไร่", "lots per rai"),
    ("speed_ratio", "ความเร็วขนส่งเทียบกับที่เป็นไปได้", "transport speed against the possible"),
    ("off_season_share", "สัดส่วนการเก็บเกี่ยวนอกฤดู", "share of harvests out of season"),
)
"""What the multi-signal score looks at per farmer-season: each is a typical (median) value over the farmer's
lots, so one odd lot (which the rules judge) moves it little and a season odd in every lot moves it much."""
SUSPICIOUS_DIRECTION = np.array([1.0, 1.0, -1.0, 1.0, 1.0, 1.0])
"""Which way each feature is suspicious: a shorter growing period, everything else higher."""


def _median(values: Sequence[float], default: float) -> float:
    return float(np.median(values)) if values else default


def _farmer_seasons(
    view: _Core, expected: Mapping[str, Expectation], s: RiskSettings
) -> dict[tuple[str, str], tuple[list[str], list[float]]]:
    """(farmer, season) → (their harvest lots, the feature vector of :data:`FEATURES`)."""
    speed = _leg_speeds(view)
    groups: dict[tuple[str, str], list[_Lot]] = defaultdict(list)
    for lot in view.lots.values():
        groups[(lot.farmer, lot.season)].append(lot)
    rows = {}
    for key, lots in sorted(groups.items()):
        lots.sort(key=lambda x: x.code)
        ratios, growing, speeds = [], [], []
        off, area, kg, cap = 0, 0.0, 0.0, 0.0
        plots_seen: set[str] = set()
        for lot in lots:
            exp = expected.get(lot.code)
            if exp is not None:
                ratios.append(lot.per_rai / exp.kg_per_rai)
            if lot.code in speed:
                speeds.append(speed[lot.code] / s.max_speed_kmh)
            known = crop_knowledge(lot.crop)
            first = min(h.event_time for h in lot.harvests)
            if known is not None:
                growing.append((first - lot.planted).total_seconds() / 86400 / known.growing_days_min)
                off += sum(not known.in_harvest_season(_month(h.event_time)) for h in lot.harvests)
                if lot.plot not in plots_seen:
                    fact = view.plots.get(lot.plot)
                    plot_area = float(fact.area_rai) if fact else lot.area_rai
                    cap += plot_area * float(known.max_kg_per_rai)
                    area += plot_area
                    plots_seen.add(lot.plot)
            kg += lot.kg
        n_harvests = sum(len(x.harvests) for x in lots)
        rows[key] = (
            [x.code for x in lots],
            [
                _median(ratios, 1.0),
                kg / cap if cap else 1.0,
                _median(growing, 1.5),
                len(lots) / area if area else 0.0,
                _median(speeds, 0.0),
                off / n_harvests if n_harvests else 0.0,
            ],
        )
    return rows


def _leg_speeds(view: _Core) -> dict[str, float]:
    """lot → the highest great-circle speed of its legs (shipment to its receipt), km/h."""
    shipped: dict[tuple[str, str, str], datetime] = {}
    for f in view.facts:
        if f.leg is not None and f.leg[0] == "ship":
            for lot in f.lots:
                key = (lot, f.leg[1], f.leg[2])
                shipped[key] = min(shipped.get(key, f.event_time), f.event_time)
    speed: dict[str, float] = defaultdict(float)
    for f in view.facts:
        if f.leg is None or f.leg[0] != "receive":
            continue
        _, source, destination = f.leg
        a, b = view.where(source), view.where(destination)
        if a is None or b is None:
            continue
        for lot in f.lots:
            sent = shipped.get((lot, source, destination))
            hours = (f.event_time - sent).total_seconds() / 3600 if sent else 0.0
            if hours > 0:
                speed[lot] = max(speed[lot], great_circle_km(a, b) / hours)
    return speed


@dataclass(frozen=True)
class AnomalyModel:
    """The multi-signal score per farmer-season: how many there were, each one's distance z (which flags)
    and its isolation-forest z (reported)."""

    groups: int
    scores: Mapping[tuple[str, str], float]
    forest: Mapping[tuple[str, str], float]


def _robust_z(values: np.ndarray) -> np.ndarray:
    """(x − median) / (MAD × 1.4826), column by column; a column without spread by its standard deviation."""
    centre = np.median(values, axis=0)
    scale = MAD_TO_SD * np.median(np.abs(values - centre), axis=0)
    spread = values.std(axis=0)
    scale = np.where(scale > 0, scale, np.where(spread > 0, spread, 1.0))
    result: np.ndarray = (values - centre) / scale
    return result


def unusual(
    view: _Core, expected: Mapping[str, Expectation], s: RiskSettings
) -> tuple[list[Signal], AnomalyModel]:
    """Farmer-seasons odd in several ways at once: what no single rule catches.

    Each feature of :data:`FEATURES` becomes a robust z-score over all farmer-seasons, counted only in its
    suspicious direction (higher yield, shorter growing, more lots per rai, faster legs…) and clipped at
    ``anomaly_clip`` so that one feature far out (which its own rule judges) cannot outweigh several a little
    out. The season's score is the length of that vector (a robust, one-sided Mahalanobis distance with a
    diagonal scale), flagged when it is itself ``anomaly_z`` robust deviations above the ledger's usual.

    An isolation forest (scikit-learn) over the same vectors gives a second score, reported with the numbers:
    on the tuning seeds of ``trace risk-bench`` it ranked the injected seasons above the honest ones less
    cleanly than the distance (similar frauds form a cluster, which masks them from isolation), so it informs
    the officer but does not decide. Both are deterministic: rows are sorted and the forest is seeded."""
    rows = _farmer_seasons(view, expected, s)
    if len(rows) < s.anomaly_min_groups:
        return [], AnomalyModel(len(rows), {}, {})
    keys = sorted(rows)
    matrix = np.array([rows[k][1] for k in keys], dtype=float)
    z = np.clip(_robust_z(matrix) * SUSPICIOUS_DIRECTION, 0.0, s.anomaly_clip)
    distance = np.sqrt((z**2).sum(axis=1))
    flagged_z = _robust_z(distance.reshape(-1, 1)).ravel()
    # Imported here, where the forest is fitted: scikit-learn is the larger part of a server's memory at
    # start, and a process that never learns a population of enough farmer-seasons never needs it.
    from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

    forest = IsolationForest(
        n_estimators=s.anomaly_trees,
        max_samples=min(s.anomaly_samples, len(keys)),
        random_state=s.anomaly_seed,
        n_jobs=1,
    )
    forest.fit(z)
    forest_z = _robust_z((-forest.score_samples(z)).reshape(-1, 1)).ravel()
    signals = []
    for i, key in enumerate(keys):
        if flagged_z[i] <= s.anomaly_z:
            continue
        lots, values = rows[key]
        strongest = [f for f in np.argsort(-z[i], kind="stable")[:3] if z[i][f] > 0]
        parts_th = ", ".join(f"{FEATURES[f][1]} {values[f]:.2f}" for f in strongest)
        parts_en = ", ".join(f"{FEATURES[f][2]} {values[f]:.2f}" for f in strongest)
        farmer, season = key
        season_th, season_en = season_words(season)
        share = float(np.mean(distance < distance[i]))
        signals.append(
            Signal(
                RiskCode.UNUSUAL_PATTERN,
                tuple(lots),
                f"บันทึก{season_th}ของเกษตรกรผู้ปลูกล็อต {', '.join(lots)} ผิดปกติหลายด้านพร้อมกัน มากกว่า "
                f"{share:.0%} ของเกษตรกรในระบบ โดยเฉพาะ {parts_th} ควรไปตรวจสอบที่แปลง",
                f"The {season_en} records of the farmer of lot(s) {', '.join(lots)} are odd in several ways "
                f"at once, more than {share:.0%} of farmer-seasons in the ledger, above all: {parts_en}; "
                "worth a visit",
                {
                    "distance": round(float(distance[i]), 3),
                    "z": round(float(flagged_z[i]), 2),
                    "isolation_forest_z": round(float(forest_z[i]), 2),
                    "farmer_seasons": len(keys),
                    "features": {FEATURES[f][0]: round(values[f], 4) for f in range(len(FEATURES))},
                    "strongest": [FEATURES[f][0] for f in strongest],
                },
                weight=min(0.9, 0.4 + 0.05 * (float(flagged_z[i]) - s.anomaly_z)),
                farmer=farmer,
                season=season,
            )
        )
    model = AnomalyModel(
        len(keys),
        {k: round(float(flagged_z[i]), 4) for i, k in enumerate(keys)},
        {k: round(float(forest_z[i]), 4) for i, k in enumerate(keys)},
    )
    return signals, model


# --- the assessment ----------------------------------------------------------------------------------------


class RiskLevel(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def risk_score(signals: Sequence[Signal]) -> int:
    """0–100: one minus the chance that every reason is innocent, taking each code's strongest signal as an
    independent reason (``weight`` = how strongly it alone says the record is false)."""
    strongest: dict[RiskCode, float] = {}
    for sig in signals:
        strongest[sig.code] = max(strongest.get(sig.code, 0.0), sig.weight)
    innocent = 1.0
    for w in strongest.values():
        innocent *= 1 - min(max(w, 0.0), 1.0)
    return round(100 * (1 - innocent))


def risk_level(score: int) -> RiskLevel:
    if score == 0:
        return RiskLevel.NONE
    return RiskLevel.LOW if score < 40 else RiskLevel.MEDIUM if score < 70 else RiskLevel.HIGH


@dataclass(frozen=True)
class LotRisk:
    """A lot's origin risk: 0–100 and the signals behind it, found on the lot or any lot it came from."""

    lot_code: str
    score: int
    signals: tuple[Signal, ...]
    basis: Literal["ledger", "bundle"]
    lineage: tuple[str, ...] = ()
    model: Mapping[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> RiskLevel:
        return risk_level(self.score)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.code.value for s in self.signals))

    def to_json(self) -> dict[str, Any]:
        return {
            "lot_code": self.lot_code,
            "score": self.score,
            "level": self.level.value,
            "basis": self.basis,
            "codes": list(self.codes),
            "signals": [s.to_json() for s in self.signals],
            "model": exact(dict(self.model)),
        }


@dataclass(frozen=True)
class RiskAssessment:
    """Every signal found in a ledger, and what was learned to find them."""

    signals: tuple[Signal, ...]
    basis: Literal["ledger", "bundle"]
    expected: Mapping[str, Expectation]
    anomaly: AnomalyModel
    origins: Mapping[str, frozenset[str]]
    harvest_lots: int

    def lots_flagged(self) -> set[str]:
        return {lot for s in self.signals for lot in s.lots}

    def about(self, lots: Collection[str]) -> RiskAssessment:
        """What concerns ``lots`` (whole lineages): the signals naming any of them, their expectations and
        origins. :meth:`for_lot` of any of them with its lineage among ``lots`` answers the same."""
        wanted = set(lots)
        return replace(
            self,
            signals=tuple(s for s in self.signals if wanted.intersection(s.lots)),
            expected={k: v for k, v in self.expected.items() if k in wanted},
            origins={k: v for k, v in self.origins.items() if k in wanted},
        )

    def for_lot(self, lot_code: str, lineage: Iterable[str] | None = None) -> LotRisk:
        """The risk of ``lot_code``: the signals on it or on any lot of ``lineage`` (the lot and every lot it
        was packed from; by default what the assessed ledger says)."""
        lots = set(lineage) if lineage is not None else {lot_code} | set(self.origins.get(lot_code, ()))
        lots.add(lot_code)
        mine = tuple(
            sorted(
                (s for s in self.signals if lots & set(s.lots)),
                key=lambda s: (-s.weight, s.code.value, s.lots),
            )
        )
        model = {
            "harvest_lots": self.harvest_lots,
            "farmer_seasons": self.anomaly.groups,
            "anomaly_model": "robust_distance+isolation_forest"
            if self.anomaly.scores
            else "not_enough_records",
        }
        return LotRisk(lot_code, risk_score(mine), mine, self.basis, tuple(sorted(lots)), model)


@dataclass(frozen=True)
class Population:
    """What the whole ledger says that no scope can: the photo pairs (each photo against every other), the
    unusual farmer-seasons (each against all of them, with how many there were), how many harvest lots
    there were, and each known crop's yield model. With it, :func:`assess` of a ledger holding only the lots
    a question is about gives the answers the whole ledger gives."""

    photo_signals: tuple[Signal, ...]
    unusual_signals: tuple[Signal, ...]
    anomaly: AnomalyModel
    harvest_lots: int
    crop_models: Mapping[str, CropModel] = field(default_factory=dict)
    group_levels: Mapping[GroupKey, tuple[int, float]] = field(default_factory=dict)
    """Yield groups larger than :data:`LOO_EXACT_UP_TO` (:func:`group_levels`): a scope need not read their
    lots (a lot's own plot and farmer-season are still read afresh)."""


def population_of(
    facts: Sequence[EventFacts],
    plots: Mapping[str, PlotFact],
    places: Mapping[str, tuple[float, float]],
    photos_by_sha: Mapping[str, int],
    *,
    settings: RiskSettings | None = None,
) -> Population:
    """The ledger-wide part of :func:`assess` from the facts of every event of the ledger (in its order:
    event time, then id), its enrolled plots, places and photos' hashes."""
    s = settings or DEFAULT_SETTINGS
    core = _Core(facts, plots, places, photos_by_sha)
    models = {
        crop: crop_model(crop, {k: [math.log(x.per_rai) for x in v] for k, v in members.items()})
        for crop, members in _yield_groups(core).items()
    }
    anomalous, model = unusual(core, _yield_expectations(core, models), s)
    return Population(
        tuple(photos(core, s)), tuple(anomalous), model, len(core.lots), models, group_levels(core)
    )


def learn_population(ledger: RiskLedger, *, settings: RiskSettings | None = None) -> Population:
    """The ledger-wide part of :func:`assess` over ``ledger`` (the whole ledger)."""
    facts = [f for e in ledger.entries if (f := event_facts(e.event)) is not None]
    return population_of(facts, ledger.plots, ledger.places, ledger.photos, settings=settings)


def assess(
    ledger: RiskLedger,
    *,
    settings: RiskSettings | None = None,
    population: Population | None = None,
    crop_models: Mapping[str, CropModel] | None = None,
) -> RiskAssessment:
    """Every origin-risk signal in ``ledger``. Deterministic: the same ledger gives the same signals, in the
    same order, with the same numbers.

    With ``population`` and ``crop_models`` (each learned from the whole ledger), ``ledger`` may hold only a
    scope: the lots asked about with every lot of the yield groups, plots and farmer-seasons they belong
    to. The photo pairs and the unusual farmer-seasons then come from ``population``, each crop's yield
    model from ``crop_models``, and the signals on the lots asked about are those of the whole ledger (the
    other lots' may be partial)."""
    s = settings or DEFAULT_SETTINGS
    view = _View(ledger)
    expected = _yield_expectations(view, crop_models, population.group_levels if population else None)
    found: list[Signal] = []
    found += yield_outliers(view, expected, s)
    found += capacity(view, s)
    found += timing(view, s)
    found += transport(view, s)
    found += cold_chain(view, s)
    if population is None:
        found += photos(view, s)
        anomalous, model = unusual(view, expected, s)
        harvest_lots = len(view.lots)
    else:
        found += population.photo_signals
        anomalous, model = list(population.unusual_signals), population.anomaly
        harvest_lots = population.harvest_lots
    found += anomalous
    origins = {lot: frozenset(v) for lot, v in view.origins.items()}
    return RiskAssessment(tuple(found), ledger.basis, expected, model, origins, harvest_lots)


# --- the population kept between processes -----------------------------------------------------------------
# The leading worker learns the population and stores it; servers read it. JSON, not pickle: a row of the
# database is never code. Every value reads back as it was written (floats by their shortest repr, Decimals
# and tuples tagged), so an answer from a stored population is the answer from the learned one.


def _tagged(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_tagged(v) for v in value]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, Mapping):
        return {"$map": [[_tagged(k), _tagged(v)] for k, v in value.items()]}
    if isinstance(value, StrEnum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{type(value).__name__} is not kept in a stored population")


def _untagged(value: Any) -> Any:
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    if isinstance(value, dict):
        if "$decimal" in value:
            return Decimal(value["$decimal"])
        if "$tuple" in value:
            return tuple(_untagged(v) for v in value["$tuple"])
        return {_untagged(k): _untagged(v) for k, v in value["$map"]}
    return value


def _signal_fields(sig: Signal) -> list[Any]:
    return [
        sig.code.value,
        sig.lots,
        sig.th,
        sig.en,
        sig.numbers,
        sig.weight,
        sig.event_id,
        sig.farmer,
        sig.season,
    ]


def _signal_of(fields: list[Any]) -> Signal:
    code, lots, th, en, numbers, weight, event_id, farmer, season = fields
    return Signal(RiskCode(code), lots, th, en, numbers, weight, event_id, farmer, season)


def population_to_json(population: Population) -> str:
    """``population`` as JSON text (:func:`population_from_json` reads it back equal)."""
    a = population.anomaly
    value = {
        "photo_signals": [_signal_fields(s) for s in population.photo_signals],
        "unusual_signals": [_signal_fields(s) for s in population.unusual_signals],
        "anomaly": [a.groups, a.scores, a.forest],
        "harvest_lots": population.harvest_lots,
        "crop_models": {
            crop: [m.prior.mu, m.prior.sigma, m.centre, m.tau, m.sigma]
            for crop, m in population.crop_models.items()
        },
        "group_levels": population.group_levels,
    }
    return json.dumps(_tagged(value), separators=(",", ":"), allow_nan=True)


def population_from_json(text: str) -> Population:
    value = _untagged(json.loads(text))
    groups, scores, forest = value["anomaly"]
    return Population(
        tuple(_signal_of(f) for f in value["photo_signals"]),
        tuple(_signal_of(f) for f in value["unusual_signals"]),
        AnomalyModel(groups, scores, forest),
        value["harvest_lots"],
        {
            crop: CropModel(Prior(mu, prior_sigma), centre, tau, sigma)
            for crop, (mu, prior_sigma, centre, tau, sigma) in value["crop_models"].items()
        },
        value["group_levels"],
    )
