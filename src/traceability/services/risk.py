"""Origin risk from the ledger: the signals of ``domain.risk`` for a lot's verdict, the officer's risk queue
and the provenance page, at a cost bounded by what the lot's signals compare it with, not by the ledger.

A lot's risk reads its **scope**: the events of its lineage (the lot and every lot it was packed from), and
the plantings and harvests of the lots each signal weighs it against: its yield group (same crop, district
and season), its plot's other lots and its farmer's season of the crop, plus those plots and places. Three
things need more than a scope, and each is kept apart, bounded in size:

* a crop's yield model (centre and spreads, ``domain.yields``) is learned from every lot of the crop: its
  log-yields are kept per district, each district re-read only when its plantings or harvests changed, and
  the model is re-learned like the population below (the lot's own yield group is always read afresh);
* the photo pairs (a photo against every other photo) and the unusual farmer-seasons (one against all of
  them) are the ledger's **population**: learned from the whole ledger once, and again when the ledger has
  changed, at most every :data:`POPULATION_TTL_S` seconds (so between two learnings a new photo or a new
  season's pattern waits up to that long; everything else is seen at once);
* scoped assessments are kept while the ledger and the population are unchanged (one query on primary keys
  says whether the ledger is), and parsed events while recently read (lots of one group share peers).

Every cache is a bounded LRU. What is not yet bounded: learning the population reads the whole ledger (paid
once per process, then at most once per TTL while the ledger changes, never per lot), and a district's kept
log-yields are one float per lot of the crop there.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from sqlalchemy.orm import Session

from traceability.domain.events import Cooling, Grading, Harvest, Packing, Planting, Transport
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import (
    LotRisk,
    PlotFact,
    Population,
    RiskAssessment,
    RiskLedger,
    RiskSettings,
    assess,
    canonical_crop,
    crop_model,
    learn_population,
    season_bounds,
    season_of,
    yield_groups,
)
from traceability.domain.yields import CropModel
from traceability.services.history import parsed_event
from traceability.services.photos import photo_hashes
from traceability.store import models
from traceability.store.repository import Repository

POPULATION_TTL_S: Final = 60.0
CACHE_ENTRIES: Final = 256
"""Entries per cache: scoped assessments, district yields, populations (one per database and settings)."""
PARSED_EVENTS: Final = 4096
"""Parsed events kept (a few kilobytes each): lots of one yield group share their peers' events."""
_NO_FILES: Final = Path("/nonexistent/evidence")
RISK_KINDS: Final = ("planting", "harvest", "cooling", "grading", "packing", "transport")
"""Certifications and revocations say nothing about where produce came from."""
YIELD_KINDS: Final = ("planting", "harvest")
"""What a peer lot is weighed by: its yield, its plot, its season."""

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class Lru(Generic[_K, _V]):
    """A thread-safe map keeping its ``size`` most recently used entries."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[_K, _V] = OrderedDict()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class RiskCaches:
    """What one process keeps between requests (tests make their own, with their own clock)."""

    clock: Callable[[], float] = time.monotonic
    population_ttl_s: float = POPULATION_TTL_S
    size: int = CACHE_ENTRIES
    parsed_events: int = PARSED_EVENTS
    events: Lru[Hashable, LedgerEntry] = field(init=False)
    aliases: Lru[Hashable, tuple[tuple[Any, ...], dict[str, list[str]]]] = field(init=False)
    populations: Lru[Hashable, tuple[tuple[Any, ...], float, Population]] = field(init=False)
    districts: Lru[Hashable, tuple[Any, dict[Hashable, list[float]]]] = field(init=False)
    crops: Lru[Hashable, tuple[tuple[Any, ...], float, CropModel | None]] = field(init=False)
    assessments: Lru[Hashable, tuple[tuple[Any, ...], Population, bool, float, RiskAssessment]] = field(
        init=False
    )

    def __post_init__(self) -> None:
        self.events = Lru(self.parsed_events)
        self.aliases = Lru(self.size)
        self.populations = Lru(self.size)
        self.districts = Lru(self.size)
        self.crops = Lru(self.size)
        self.assessments = Lru(self.size)

    def clear(self) -> None:
        self.events.clear()
        self.aliases.clear()
        for cache in (self.populations, self.districts, self.crops, self.assessments):
            cache.clear()


CACHES = RiskCaches()


def _database(session: Session) -> str:
    bind = session.get_bind()
    return bind.url.render_as_string(hide_password=True) if hasattr(bind, "url") else repr(bind)


def _entries(rows: Iterable[models.Event], caches: RiskCaches | None = None) -> list[LedgerEntry]:
    """The rows as the signals read them; an unreadable body is the verdict's finding, not a risk signal.
    With ``caches``, each body is parsed once while it stays among the recently read (a recorded event
    never changes: its id names its content)."""
    out = []
    for row in rows:
        key = (row.hash, row.id)
        entry = caches.events.get(key) if caches is not None else None
        if entry is None:
            event = parsed_event(row)
            if event is None:
                continue
            entry = LedgerEntry(row.hash, event)
            if caches is not None:
                caches.events.put(key, entry)
        out.append(entry)
    return out


def _plots_and_places(
    rows: Iterable[tuple[models.Plot, str, models.Authority]], places: Iterable[tuple[str, Any, Any]]
) -> tuple[dict[str, PlotFact], dict[str, tuple[float, float]]]:
    """Enrolled plots as facts (farmer, area, district, coordinates), and every coordinate known by code:
    a plot's, overridden by a named place's."""
    plots: dict[str, PlotFact] = {}
    where: dict[str, tuple[float, float]] = {}
    for plot, farmer_code, authority in rows:
        lat = float(plot.lat) if plot.lat is not None else None
        lon = float(plot.lon) if plot.lon is not None else None
        plots[plot.code] = PlotFact(
            plot.code,
            farmer_code,
            plot.area_rai,
            district=authority.district_th,
            authority=authority.code,
            lat=lat,
            lon=lon,
        )
        if lat is not None and lon is not None:
            where[plot.code] = (lat, lon)
    for code, lat, lon in places:
        where[code] = (float(lat), float(lon))
    return plots, where


def risk_ledger(session: Session, evidence_dir: Path | None) -> RiskLedger:
    """The whole ledger as the signals read it: every event that moves or describes produce, every enrolled
    plot, every known place, and every evidence photo's hash. Only the population is learned from it."""
    repo = Repository(session)
    entries = _entries(repo.events_of_kinds(RISK_KINDS))
    plots, places = _plots_and_places(repo.plot_facts(), repo.place_coordinates())
    shas = sorted({sha for e in entries for sha in e.event.evidence})
    # Without an evidence directory only hashes already stored are read (none is computed from a file).
    photos = photo_hashes(session, evidence_dir or _NO_FILES, shas) if shas else {}
    return RiskLedger(entries, plots, places, photos, "ledger")


# --- the scope ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskScope:
    """The lots a question is about (``lots``: lineages), the lots their signals weigh them against
    (``peers``), the farmers whose enrolled land counts, and the crops whose yield models are needed."""

    lots: frozenset[str]
    peers: frozenset[str]
    farmers: frozenset[int]
    crops: frozenset[str]


def _aliases(session: Session, caches: RiskCaches) -> dict[str, list[str]]:
    """canonical crop → the crop codes lots were planted as (kept while the ledger is unchanged)."""
    repo = Repository(session)
    version = repo.risk_ledger_version()
    found = caches.aliases.get(_database(session))
    if found is not None and found[0] == version:
        return found[1]
    out: dict[str, list[str]] = defaultdict(list)
    for code in sorted(repo.risk_lot_crops()):
        out[canonical_crop(code)].append(code)
    caches.aliases.put(_database(session), (version, dict(out)))
    return dict(out)


def risk_scope(session: Session, lots: Iterable[str], *, caches: RiskCaches = CACHES) -> RiskScope:
    """What the signals on ``lots`` read: for each harvest lot among them, the lots of its crop planted in
    its season in its district or on its farmer's plots (its yield group, its plot's other lots and its
    farmer's season), in one query per distinct (crop, season, district, farmer)."""
    repo = Repository(session)
    asked = frozenset(lots)
    plantings = repo.risk_plantings(sorted(asked))
    if not plantings:
        return RiskScope(asked, frozenset(), frozenset(), frozenset())
    aliases = _aliases(session, caches)
    keys = {
        (canonical_crop(crop), season_of(planted), district, farmer)
        for _, crop, farmer, district, planted in plantings
    }
    own = {canonical_crop(crop): crop for _, crop, *_ in plantings}  # a crop newer than the kept aliases
    peers: set[str] = set()
    for crop, season, district, farmer in sorted(keys):
        since, until = season_bounds(season)
        codes = sorted({*aliases.get(crop, ()), own[crop]})
        peers |= repo.risk_peer_lots(codes, since, until, district, farmer)
    return RiskScope(
        asked,
        frozenset(peers - asked),
        frozenset(farmer for *_, farmer, _, _ in plantings),
        frozenset(crop for crop, *_ in keys),
    )


def scoped_ledger(session: Session, scope: RiskScope, *, caches: RiskCaches | None = None) -> RiskLedger:
    """The scope as the signals read it: every produce event of its lots, the plantings and harvests of its
    peers (in the whole ledger's order), the plots they name and their farmers' other plots, the places they
    name. No photos: photo pairs are the population's."""
    repo = Repository(session)
    rows = {row.id: row for row in repo.risk_events(sorted(scope.lots), RISK_KINDS)}
    for row in repo.risk_events(sorted(scope.peers), YIELD_KINDS):
        rows.setdefault(row.id, row)
    entries = _entries(sorted(rows.values(), key=lambda e: (e.event_time, e.id)), caches)
    codes: set[str] = set()
    for entry in entries:
        event = entry.event
        codes.add(event.place.id)
        if isinstance(event, Planting | Harvest):
            codes.add(event.plot_id)
        if isinstance(event, Transport):
            codes |= {event.source, event.destination}
    plots, places = _plots_and_places(
        repo.risk_plots(sorted(codes), sorted(scope.farmers)), repo.risk_places(sorted(codes))
    )
    return RiskLedger(entries, plots, places, {}, "ledger")


# --- what needs more than a scope --------------------------------------------------------------------------


def ledger_population(
    session: Session,
    evidence_dir: Path | None,
    version: tuple[Any, ...],
    *,
    settings: RiskSettings | None = None,
    caches: RiskCaches = CACHES,
) -> Population:
    """The photo pairs and unusual farmer-seasons of the whole ledger at ``version``: kept while the ledger
    is unchanged, and while it changes re-learned at most every ``population_ttl_s`` seconds."""
    key = (_database(session), settings)
    found = caches.populations.get(key)
    now = caches.clock()
    if found is not None and (found[0] == version or now - found[1] < caches.population_ttl_s):
        return found[2]
    population = learn_population(risk_ledger(session, evidence_dir), settings=settings)
    caches.populations.put(key, (version, now, population))
    return population


def yield_models(
    session: Session, crops: Iterable[str], version: tuple[Any, ...], *, caches: RiskCaches = CACHES
) -> tuple[dict[str, CropModel], bool]:
    """Each crop's yield model as the whole ledger learns it, from its log-yields kept per district: a
    district is re-read only when one of its plantings or harvests of the crop was recorded. A crop-wide
    statistic like the population, it is re-learned while the ledger changes at most every TTL (the lot's
    own group is read afresh with its scope). Also says whether every model is the ledger's at ``version``."""
    database = _database(session)
    out: dict[str, CropModel] = {}
    aliases: dict[str, list[str]] | None = None
    now = caches.clock()
    current = True
    for crop in sorted(crops):
        found = caches.crops.get((database, crop))
        if found is None or (found[0] != version and now - found[1] >= caches.population_ttl_s):
            aliases = aliases or _aliases(session, caches)
            found = (version, now, _learn_crop(session, crop, aliases.get(crop, [crop]), caches))
            caches.crops.put((database, crop), found)
        current = current and found[0] == version
        if found[2] is not None:
            out[crop] = found[2]
    return out, current


def _learn_crop(session: Session, crop: str, codes: Sequence[str], caches: RiskCaches) -> CropModel | None:
    repo = Repository(session)
    database = _database(session)
    groups: dict[Hashable, list[float]] = {}
    for district, stamp in sorted(repo.risk_yield_fingerprints(codes).items()):
        key = (database, crop, district)
        found = caches.districts.get(key)
        if found is None or found[0] != stamp:
            entries = _entries(repo.risk_yield_events(codes, district), caches)
            plot_codes = sorted({e.event.plot_id for e in entries if isinstance(e.event, Planting)})
            plots, places = _plots_and_places(repo.risk_plots(plot_codes, []), [])
            learned = yield_groups(RiskLedger(entries, plots, places)).get(crop, {})
            found = (stamp, learned)
            caches.districts.put(key, found)
        groups.update(found[1])
    return crop_model(crop, groups) if groups else None


# --- answers -----------------------------------------------------------------------------------------------


def scoped_assessment(
    session: Session,
    lots: Iterable[str],
    evidence_dir: Path | None,
    *,
    settings: RiskSettings | None = None,
    caches: RiskCaches = CACHES,
) -> RiskAssessment:
    """The signals on ``lots`` (whole lineages) as the whole ledger gives them, read from their scope and
    kept while neither the ledger nor the population learned from it changes."""
    asked = frozenset(lots)
    version = Repository(session).risk_ledger_version()
    population = ledger_population(session, evidence_dir, version, settings=settings, caches=caches)
    key = (_database(session), asked, settings)
    now = caches.clock()
    found = caches.assessments.get(key)
    if found is not None and found[0] == version and found[1] is population:
        # one made with a crop model or population learned before ``version`` holds only until its TTL
        if found[2] or now - found[3] < caches.population_ttl_s:
            return found[4]
    scope = risk_scope(session, asked, caches=caches)
    models, current = yield_models(session, scope.crops, version, caches=caches)
    assessment = assess(
        scoped_ledger(session, scope, caches=caches),
        settings=settings,
        population=population,
        crop_models=models,
    )
    learned = caches.populations.get((_database(session), settings))
    fresh = current and learned is not None and learned[0] == version
    caches.assessments.put(key, (version, population, fresh, now, assessment))
    return assessment


def lineages(session: Session, lots: Iterable[str]) -> dict[str, frozenset[str]]:
    """lot → the lot and every lot it was packed from, for many lots at once (one query per generation)."""
    repo = Repository(session)
    parents: dict[str, set[str]] = {}
    frontier = set(lots)
    while frontier:
        found = repo.risk_packing_parents(sorted(frontier))
        parents.update({lot: found.get(lot, set()) for lot in frontier})
        frontier = {p for ps in found.values() for p in ps} - parents.keys()
    out: dict[str, frozenset[str]] = {}

    def walk(lot: str) -> frozenset[str]:
        if lot not in out:
            out[lot] = frozenset()  # a cycle (none should exist) ends here
            out[lot] = frozenset({lot}).union(*(walk(p) for p in sorted(parents.get(lot, ()))))
        return out[lot]

    return {lot: walk(lot) for lot in lots}


def lot_risk(
    session: Session,
    lot_code: str,
    evidence_dir: Path | None,
    *,
    lineage: Sequence[str] | None = None,
    caches: RiskCaches = CACHES,
) -> LotRisk:
    """The origin risk of one lot: the signals on it and on every lot it was packed from."""
    lots = sorted(lineage) if lineage is not None else sorted(lineages(session, [lot_code])[lot_code])
    return scoped_assessment(session, lots, evidence_dir, caches=caches).for_lot(lot_code, lots)


@dataclass(frozen=True)
class QueueEntry:
    """One lot in an officer's risk queue."""

    lot_code: str
    product_th: str
    product_en: str
    risk: LotRisk


def risk_queue(
    session: Session, authority_id: int, evidence_dir: Path, *, caches: RiskCaches = CACHES
) -> list[QueueEntry]:
    """The authority's lots (planted on its plots, or packed from them), highest risk first, then by code:
    one assessment over their lineages' scope."""
    own = Repository(session).lots_of_authority(authority_id)
    lineage = lineages(session, [lot.code for lot in own])
    assessment = scoped_assessment(session, set().union(*lineage.values()), evidence_dir, caches=caches)
    entries = [
        QueueEntry(lot.code, lot.product_th, lot.product_en, assessment.for_lot(lot.code)) for lot in own
    ]
    return sorted(entries, key=lambda e: (-e.risk.score, e.lot_code))


def bundle_risk(entries: Sequence[LedgerEntry], lot_code: str, lineage: Sequence[str]) -> LotRisk:
    """The origin risk a proof bundle shows by itself: its own events against the crop knowledge (no
    district history, no enrolled plot areas, no photos: those need the ledger)."""
    relevant = [e for e in entries if isinstance(e.event, _RISK_TYPES)]
    return assess(RiskLedger(relevant, basis="bundle")).for_lot(lot_code, lineage)


_RISK_TYPES = (Planting, Harvest, Cooling, Grading, Packing, Transport)
