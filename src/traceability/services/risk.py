"""Origin risk from the ledger: the signals of ``domain.risk`` for a lot's verdict, the officer's risk queue
and the provenance page, at a cost bounded by what the lot's signals compare it with, not by the ledger.

A lot's risk reads its **scope**: the events of its lineage (the lot and every lot it was packed from), and
the plantings and harvests of the lots each signal weighs it against: its yield group (same crop, district
and season), its plot's other lots and its farmer's season of the crop, plus those plots and places. The
peers are read from ``risk_facts``, a few hundred bytes per event written with the event (never a peer's
body), by indexed queries.

What needs more than a scope is the ledger's **population**: the photo pairs (a photo against every other),
the unusual farmer-seasons (one against all of them) and each crop's yield model (centre and spreads, learned
from every lot of the crop; the lot's own yield group is always read afresh with its scope). It is learned
from every risk fact by :func:`learn_and_store`, which keeps it in ``risk_populations``:

* the leading ``trace worker`` runs it (as ``trace risk-learn``, a process of its own at low priority, so
  that neither the worker nor a server ever holds the whole ledger's facts) whenever the ledger has changed
  and the stored population is at least :data:`POPULATION_TTL_S` seconds old; an operator may run it too;
* a server reads the stored population (one primary-key query per question says whether it is new) and
  learns one itself only when none is stored yet (a fresh ledger, before the worker's first learning).

So a new photo, a new farmer-season's pattern or a crop's new yield model shows in answers within that TTL
plus one learning; everything read from the scope is seen at once. Scoped assessments are kept while the
ledger and the population are unchanged, parsed events while recently read (lots of one group share peers).
Bounded: every cache is an LRU of fixed size; a request reads its scope, linear in the size of a yield group.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from traceability.domain.events import Cooling, Grading, Harvest, Packing, Planting, Transport
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import (
    DEFAULT_SETTINGS,
    RISK_KINDS,
    GroupKey,
    LotRisk,
    PlotFact,
    Population,
    RiskAssessment,
    RiskLedger,
    RiskSettings,
    assess,
    canonical_crop,
    named_codes,
    population_from_json,
    population_of,
    population_to_json,
    season_of,
)
from traceability.services.history import parsed_event
from traceability.services.photos import photo_hashes
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.models import utcnow
from traceability.store.repository import Repository

log = logging.getLogger(__name__)

POPULATION_TTL_S: Final = 60.0
"""How old the stored population may be, while the ledger changes, before the worker learns it again."""
DEFAULT_POPULATION: Final = "default"
"""The stored population's key: learned with the default settings (others are learned by their process)."""
CACHE_ENTRIES: Final = 256
"""Entries per cache: scoped assessments, populations (one per database and settings)."""
QUEUE_CHUNK: Final = 512
"""Lots of an officer's queue assessed together (with their lineages: a few thousand events)."""
PARSED_EVENTS: Final = 4096
"""Parsed events kept (a few kilobytes each): lots of one yield group share their peers' events."""
_NO_FILES: Final = Path("/nonexistent/evidence")

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
    populations: Lru[Hashable, tuple[Any, float, Population]] = field(init=False)
    assessments: Lru[Hashable, tuple[tuple[Any, ...], Population, RiskAssessment]] = field(init=False)
    learnings: int = field(init=False, default=0)
    """Populations this process learned (a server: only when none was stored)."""

    def __post_init__(self) -> None:
        self.events = Lru(self.parsed_events)
        self.populations = Lru(self.size)
        self.assessments = Lru(self.size)

    def clear(self) -> None:
        self.events.clear()
        for cache in (self.populations, self.assessments):
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
    rows: Iterable[tuple[Any, ...]], places: Iterable[tuple[str, Any, Any]]
) -> tuple[dict[str, PlotFact], dict[str, tuple[float, float]]]:
    """Enrolled plots (rows of code, farmer's code, rai, district, authority, lat, lon) as facts, and every
    coordinate known by code: a plot's, overridden by a named place's."""
    plots: dict[str, PlotFact] = {}
    where: dict[str, tuple[float, float]] = {}
    for code, farmer_code, area_rai, district, authority, lat_, lon_ in rows:
        lat = float(lat_) if lat_ is not None else None
        lon = float(lon_) if lon_ is not None else None
        plots[code] = PlotFact(
            code, farmer_code, area_rai, district=district, authority=authority, lat=lat, lon=lon
        )
        if lat is not None and lon is not None:
            where[code] = (lat, lon)
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


def risk_scope(
    session: Session,
    lots: Iterable[str],
    *,
    large_groups: Collection[GroupKey] = frozenset(),
    caches: RiskCaches = CACHES,
) -> RiskScope:
    """What the signals on ``lots`` read: for each harvest lot among them, the lots of its crop planted in
    its season in its district or on its farmer's plots (its yield group, its plot's other lots and its
    farmer's season): one query for the plantings asked about, one for the plots per distinct
    (district, farmer) and one for the lots planted on them per (crop, season, district, farmer). A yield
    group among ``large_groups`` (the population's :attr:`~Population.group_levels`) is not read: its
    records and median come from the population."""
    repo = Repository(session)
    asked = frozenset(lots)
    plantings = repo.risk_plantings(sorted(asked))
    if not plantings:
        return RiskScope(asked, frozenset(), frozenset(), frozenset())
    keys = {
        (canonical_crop(crop), season_of(planted), district, farmer)
        for _, crop, farmer, district, planted in plantings
    }
    wanted = {
        (crop, season, district if (crop, district, season) not in large_groups else None, farmer)
        for crop, season, district, farmer in keys
    }
    plots = {
        (d, f): repo.risk_peer_plots(d, f) for d, f in sorted({(d, f) for _, _, d, f in wanted}, key=str)
    }
    peers = {
        lot
        for crop, season, district, farmer in sorted(wanted, key=str)
        for lot in repo.risk_planted_lots(plots[(district, farmer)], crop, season)
    }
    return RiskScope(
        asked,
        frozenset(peers - asked),
        frozenset(farmer for *_, farmer, _, _ in plantings),
        frozenset(crop for crop, *_ in keys),
    )


def scoped_ledger(
    session: Session, scope: RiskScope, evidence_dir: Path | None = None, *, caches: RiskCaches = CACHES
) -> RiskLedger:
    """The scope as the signals read it: every produce event of its lots, the facts of its peers' plantings
    and harvests (``risk_facts``: no peer's body is parsed), the plots they name and their farmers' other
    plots, the places they name. No photos: photo pairs are the population's."""
    repo = Repository(session)
    entries = _entries(repo.risk_events(sorted(scope.lots), RISK_KINDS), caches)
    peers = repo.risk_yield_facts(sorted(scope.peers))
    codes = {code for entry in entries for code in named_codes(entry.event)}
    codes.update(code for f in peers for code in f.codes)
    plots, places = _plots_and_places(
        repo.risk_plots(sorted(codes), sorted(scope.farmers)), repo.risk_places(sorted(codes))
    )
    return RiskLedger(entries, plots, places, {}, "ledger", peers)


# --- what needs more than a scope --------------------------------------------------------------------------


def learn_population(
    session: Session, evidence_dir: Path | None, *, settings: RiskSettings | None = None
) -> Population:
    """The population of the whole ledger, learned from every risk fact (streamed from the table), every
    plot and place, and the hashes of the photos the facts name (computed from stored originals where
    ``evidence_dir`` holds them and no hash is stored yet)."""
    repo = Repository(session)
    facts = list(repo.risk_all_facts())
    shas = sorted({sha for f in facts for sha in f.evidence})
    photos = photo_hashes(session, evidence_dir or _NO_FILES, shas) if shas else {}
    plots, places = _plots_and_places(repo.plot_facts(), repo.place_coordinates())
    return population_of(facts, plots, places, photos, settings=settings)


def _version_text(version: tuple[Any, ...]) -> str:
    return json.dumps([None if v is None else str(v) for v in version])


def learn_and_store(session: Session, evidence_dir: Path | None) -> tuple[tuple[str, datetime], Population]:
    """Learn the population (default settings) at the ledger's present version and store it in place of the
    last one, in the caller's transaction. The version is read first: a recording committed while the facts
    are read makes the stored version older than what was learned, never newer (the next check learns
    again). Returns (version, learned at), as :meth:`Repository.stored_population_stamp` reads them, and
    the population."""
    repo = Repository(session)
    stamp = (_version_text(repo.risk_ledger_version()), utcnow())
    population = learn_population(session, evidence_dir)
    repo.store_population(DEFAULT_POPULATION, *stamp, population_to_json(population))
    return stamp, population


def relearn(sessions: sessionmaker[Session], evidence_dir: Path | None) -> Population:
    """:func:`learn_and_store` in a transaction of its own (``trace risk-learn``)."""
    with transaction(sessions) as session:
        return learn_and_store(session, evidence_dir)[1]


@dataclass(frozen=True)
class PopulationState:
    """Whether the stored population is missing or behind the ledger, and how old it is."""

    stored: bool
    current: bool
    age_s: float

    def due(self, ttl_s: float) -> bool:
        """Whether the population should be learned again now."""
        return not self.stored or (not self.current and self.age_s >= ttl_s)


def population_state(session: Session) -> PopulationState:
    repo = Repository(session)
    found = repo.stored_population_stamp(DEFAULT_POPULATION)
    if found is None:
        return PopulationState(False, False, math.inf)
    version, learned_at = found
    age = (utcnow() - learned_at).total_seconds()
    return PopulationState(True, version == _version_text(repo.risk_ledger_version()), age)


def population_due(sessions: sessionmaker[Session], ttl_s: float = POPULATION_TTL_S) -> bool:
    """Whether the stored population should be learned again now: none is stored, or the ledger has changed
    since and it is at least ``ttl_s`` old."""
    with transaction(sessions) as session:
        return population_state(session).due(ttl_s)


def ledger_population(
    session: Session,
    evidence_dir: Path | None,
    version: tuple[Any, ...],
    *,
    settings: RiskSettings | None = None,
    caches: RiskCaches = CACHES,
) -> Population:
    """The photo pairs, unusual farmer-seasons and crop models of the whole ledger: the stored one (read
    again only when a newer one was stored), or, when none is stored yet, learned here and stored. With
    other than the default settings, learned by this process and kept while the ledger is unchanged or for
    ``population_ttl_s``."""
    database = _database(session)
    if settings is not None and settings != DEFAULT_SETTINGS:
        key = (database, settings)
        found = caches.populations.get(key)
        now = caches.clock()
        if found is not None and (found[0] == version or now - found[1] < caches.population_ttl_s):
            return found[2]
        population = learn_population(session, evidence_dir, settings=settings)
        caches.learnings += 1
        caches.populations.put(key, (version, now, population))
        return population
    stored_key = (database, DEFAULT_POPULATION)
    repo = Repository(session)
    stamp = repo.stored_population_stamp(DEFAULT_POPULATION)
    kept = caches.populations.get(stored_key)
    if stamp is not None and kept is not None and kept[0] == stamp:
        return kept[2]
    if stamp is not None:
        stored = repo.stored_population(DEFAULT_POPULATION)
        if stored is not None:
            version_text, learned_at, body = stored
            population = population_from_json(body)
            caches.populations.put(stored_key, ((version_text, learned_at), 0.0, population))
            return population
    stamp, population = _learn_first(session, evidence_dir, caches)
    caches.populations.put(stored_key, (stamp, 0.0, population))
    return population


def _learn_first(
    session: Session, evidence_dir: Path | None, caches: RiskCaches
) -> tuple[tuple[str, datetime], Population]:
    """No population stored yet: learn it here and store it, in a session of its own where the bind allows
    (committed: the caller's transaction may be a reading one, or roll back)."""
    bind = session.get_bind()
    caches.learnings += 1
    if isinstance(bind, Engine):
        with Session(bind) as own, own.begin():
            return learn_and_store(own, evidence_dir)
    return learn_and_store(session, evidence_dir)


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
    kept while neither the ledger nor the population learned from it changes (only what concerns ``lots``:
    their peers' expectations and the signals on peers alone are dropped)."""
    asked = frozenset(lots)
    version = Repository(session).risk_ledger_version()
    population = ledger_population(session, evidence_dir, version, settings=settings, caches=caches)
    key = (_database(session), asked, settings)
    found = caches.assessments.get(key)
    if found is not None and found[0] == version and found[1] is population:
        return found[2]
    scope = risk_scope(session, asked, large_groups=population.group_levels.keys(), caches=caches)
    models = {crop: population.crop_models[crop] for crop in scope.crops if crop in population.crop_models}
    assessment = assess(
        scoped_ledger(session, scope, evidence_dir, caches=caches),
        settings=settings,
        population=population,
        crop_models=models,
    ).about(asked)
    caches.assessments.put(key, (version, population, assessment))
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
    one assessment per :data:`QUEUE_CHUNK` lots over their lineages' scope, so that the events held at once
    stay bounded however many lots the authority has (each lot's answer is its scope's, chunk or not)."""
    own = Repository(session).lots_of_authority(authority_id)
    lineage = lineages(session, [lot.code for lot in own])
    entries = []
    for start in range(0, len(own), QUEUE_CHUNK):
        some = own[start : start + QUEUE_CHUNK]
        lots = set().union(*(lineage[lot.code] for lot in some))
        assessment = scoped_assessment(session, lots, evidence_dir, caches=caches)
        entries += [
            QueueEntry(lot.code, lot.product_th, lot.product_en, assessment.for_lot(lot.code)) for lot in some
        ]
    return sorted(entries, key=lambda e: (-e.risk.score, e.lot_code))


def bundle_risk(entries: Sequence[LedgerEntry], lot_code: str, lineage: Sequence[str]) -> LotRisk:
    """The origin risk a proof bundle shows by itself: its own events against the crop knowledge (no
    district history, no enrolled plot areas, no photos: those need the ledger)."""
    relevant = [e for e in entries if isinstance(e.event, _RISK_TYPES)]
    return assess(RiskLedger(relevant, basis="bundle")).for_lot(lot_code, lineage)


_RISK_TYPES = (Planting, Harvest, Cooling, Grading, Packing, Transport)
