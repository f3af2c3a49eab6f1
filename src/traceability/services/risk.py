"""Origin risk from the ledger: the signals of ``domain.risk`` for a lot's verdict, the officer's risk queue
and the provenance page, at a cost bounded by what the lot's signals compare it with, not by the ledger.

A lot's risk reads its **scope**: the events of its lineage (the lot and every lot it was packed from), and
the plantings and harvests of the lots each signal weighs it against: its yield group (same crop, district
and season), its plot's other lots and its farmer's season of the crop, plus those plots and places. What
needs more than a scope is the ledger's **population**: the photo pairs (a photo against every other), the
unusual farmer-seasons (one against all of them) and each crop's yield model (centre and spreads, learned
from every lot of the crop; the lot's own yield group is always read afresh with its scope).

Both read :class:`~traceability.domain.risk.EventFacts`, a few hundred bytes per event that plants,
harvests, moves produce or carries a photo, kept per database (:class:`LedgerFacts`) and brought up to date
before each use by reading only the events recorded since (events never change; the outbox's primary key
says what is new, and ids found missing are looked for again). A request parses the bodies of its lineage's
events and of what was recorded since the last reading, never a peer's; a learning parses none.

When the population is learned, and what an answer may lag by:

* the first time a process is asked about a database, synchronously (it then reads every body once: about
  7 s of CPU at 100,000 events);
* afterwards, when the ledger has changed and the last learning is at least :data:`POPULATION_TTL_S`
  seconds old, **in a background thread** while requests go on with the last population: a new photo, a
  new farmer-season's pattern or a crop's new yield model shows in answers within that TTL plus one
  learning (about a second of CPU at 100,000 events); everything read from the scope is seen at once;
* scoped assessments are kept while the ledger and the population are unchanged (one query on primary keys
  says whether the ledger is), and parsed events while recently read (lots of one group share peers).

Bounded: every cache is an LRU of fixed size; a request reads its scope and what is new, and never learns
the population (but for a process's first); a learning holds the facts and one population. Not bounded: the
facts themselves, linear in the ledger's produce events (about 50 MB at 100,000 events, where parsing them
all once took 760 MB), and the scope, linear in the size of a yield group.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from traceability.domain.events import Cooling, Grading, Harvest, Packing, Planting, Transport
from traceability.domain.lineage import LedgerEntry
from traceability.domain.risk import (
    EventFacts,
    LotRisk,
    PlotFact,
    Population,
    RiskAssessment,
    RiskLedger,
    RiskSettings,
    assess,
    canonical_crop,
    event_facts,
    named_codes,
    population_of,
    season_of,
)
from traceability.services.history import parsed_event
from traceability.services.photos import photo_hashes
from traceability.store import models
from traceability.store.repository import Repository

log = logging.getLogger(__name__)

POPULATION_TTL_S: Final = 60.0
CACHE_ENTRIES: Final = 256
"""Entries per cache: scoped assessments, populations (one per database and settings)."""
LEDGERS: Final = 4
"""Databases whose facts are kept (tens of megabytes each at 100,000 events): a server reads one."""
GAP_HORIZON_S: Final = 600.0
"""How long an outbox id missing below the highest read is looked for again: a recording's transaction
(a few queries) is committed or rolled back well within it; a rolled-back one leaves its id missing."""
QUEUE_CHUNK: Final = 512
"""Lots of an officer's queue assessed together (with their lineages: a few thousand events)."""
PARSED_EVENTS: Final = 4096
"""Parsed events kept (a few kilobytes each): lots of one yield group share their peers' events."""
_NO_FILES: Final = Path("/nonexistent/evidence")
RISK_KINDS: Final = ("planting", "harvest", "cooling", "grading", "packing", "transport")
"""Certifications and revocations say nothing about where produce came from."""
POPULATION_KINDS: Final = ("planting", "harvest", "transport")
"""Kinds whose every event the population reads; the other :data:`RISK_KINDS` only when they carry photos."""

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


class LedgerFacts:
    """The facts of every produce event of one database, kept in ledger order and brought up to date from
    what was recorded since the last reading. The highest outbox id read, and the ids missing below it (a
    recording not yet committed when read; looked for again for :data:`GAP_HORIZON_S`), say what is new;
    photos whose hash was not known yet are asked for again at each reading. Read and used under
    :attr:`lock`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.lock = threading.Lock()
        self._clock = clock
        self._facts: dict[tuple[datetime, uuid.UUID], EventFacts] = {}
        self._ordered: list[EventFacts] | None = []
        self._yields: dict[str, list[EventFacts]] = defaultdict(list)  # lot → its plantings and harvests
        self._planted: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # (plot, crop, season) → lots
        self._seen = 0
        self._gaps: dict[int, float] = {}  # outbox id → when it was first found missing
        self.photos: dict[str, int] = {}
        self._unhashed: set[str] = set()

    def read(self, session: Session, evidence_dir: Path | None) -> None:
        """Read what was recorded since the last reading."""
        repo = Repository(session)
        now = self._clock()
        self._gaps = {i: t for i, t in self._gaps.items() if now - t < GAP_HORIZON_S}
        gaps = sorted(self._gaps)
        seen = set(repo.risk_recorded_ids(self._seen, gaps))
        shas: set[str] = set(self._unhashed)
        if seen:
            self._read_events(repo, gaps, seen, shas)
        # Without an evidence directory only hashes already stored are read (none is computed from a file).
        found = photo_hashes(session, evidence_dir or _NO_FILES, sorted(shas)) if shas else {}
        self.photos.update(found)
        self._unhashed = shas - found.keys()

    def _read_events(self, repo: Repository, gaps: list[int], seen: set[int], shas: set[str]) -> None:
        now = self._clock()
        photo_kinds = [k for k in RISK_KINDS if k not in POPULATION_KINDS]
        for outbox_id, row in repo.risk_recorded_events(self._seen, gaps, POPULATION_KINDS, photo_kinds):
            seen.add(outbox_id)  # committed since the ids were read
            event = parsed_event(row)
            facts = event_facts(event) if event is not None else None
            if facts is not None and (row.event_time, row.id) not in self._facts:
                self._facts[(row.event_time, row.id)] = facts
                if facts.planted is not None or facts.harvested is not None:
                    self._yields[facts.lots[0]].append(facts)
                if facts.planted is not None:
                    crop, plot, _ = facts.planted
                    season = season_of(facts.event_time)
                    self._planted[(plot, canonical_crop(crop), season)].add(facts.lots[0])
                shas.update(facts.evidence)
        for i in seen:
            self._gaps.pop(i, None)
        top = max(seen)
        low = self._seen + 1 if self._seen else min(seen)
        self._gaps.update((i, now) for i in range(low, top) if i not in seen)
        self._seen = max(self._seen, top)
        self._ordered = None

    def holds(self, newest: int | None) -> bool:
        """Whether nothing recorded up to outbox id ``newest`` can be missing (no id found missing is still
        awaited, no photo's hash)."""
        return not self._gaps and not self._unhashed and (newest or 0) <= self._seen

    def facts(self) -> list[EventFacts]:
        """Every fact, in the ledger's order (event time, then id), as ``Repository.events_of_kinds``."""
        if self._ordered is None:
            self._ordered = [self._facts[k] for k in sorted(self._facts)]
        return self._ordered

    def planted_on(self, plots: Iterable[str], crop: str, season: str) -> set[str]:
        """The lots of ``crop`` (canonical) planted on ``plots`` in ``season``."""
        return {lot for plot in plots for lot in self._planted.get((plot, crop, season), ())}

    def yield_facts(self, lots: Iterable[str]) -> list[EventFacts]:
        """The plantings and harvests of ``lots``."""
        return [f for lot in sorted(set(lots)) for f in self._yields.get(lot, ())]


@dataclass
class RiskCaches:
    """What one process keeps between requests (tests make their own, with their own clock). With
    ``background``, a population older than its TTL is learned again in a thread while requests go on with
    the last one (the process-wide :data:`CACHES`); without, in the request that finds it old."""

    clock: Callable[[], float] = time.monotonic
    population_ttl_s: float = POPULATION_TTL_S
    size: int = CACHE_ENTRIES
    parsed_events: int = PARSED_EVENTS
    background: bool = False
    events: Lru[Hashable, LedgerEntry] = field(init=False)
    populations: Lru[Hashable, tuple[tuple[Any, ...], float, Population]] = field(init=False)
    ledgers: Lru[Hashable, LedgerFacts] = field(init=False)
    assessments: Lru[Hashable, tuple[tuple[Any, ...], Population, RiskAssessment]] = field(init=False)
    learnings: int = field(init=False, default=0)
    _learners: dict[Hashable, threading.Thread] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.events = Lru(self.parsed_events)
        self.populations = Lru(self.size)
        self.ledgers = Lru(LEDGERS)
        self.assessments = Lru(self.size)

    def ledger_facts(self, database: str) -> LedgerFacts:
        with self._lock:
            found = self.ledgers.get(database)
            if found is None:
                found = LedgerFacts(self.clock)
                self.ledgers.put(database, found)
            return found

    def learn_later(self, key: Hashable, learn: Callable[[], None]) -> None:
        """Run ``learn`` in a thread unless one is already learning ``key``."""
        with self._lock:
            running = self._learners.get(key)
            if running is not None and running.is_alive():
                return
            thread = threading.Thread(target=learn, name="risk-population", daemon=True)
            self._learners[key] = thread
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the populations being learned in the background."""
        with self._lock:
            threads = list(self._learners.values())
        for thread in threads:
            thread.join(timeout)

    def clear(self) -> None:
        self.events.clear()
        for cache in (self.populations, self.ledgers, self.assessments):
            cache.clear()


CACHES = RiskCaches(background=True)


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


def risk_scope(session: Session, lots: Iterable[str], *, caches: RiskCaches = CACHES) -> RiskScope:
    """What the signals on ``lots`` read: for each harvest lot among them, the lots of its crop planted in
    its season in its district or on its farmer's plots (its yield group, its plot's other lots and its
    farmer's season): one query for the plantings asked about and one for the plots per distinct
    (district, farmer); the lots planted on those plots come from the ledger's facts, up to date."""
    repo = Repository(session)
    asked = frozenset(lots)
    plantings = repo.risk_plantings(sorted(asked))
    if not plantings:
        return RiskScope(asked, frozenset(), frozenset(), frozenset())
    keys = {
        (canonical_crop(crop), season_of(planted), district, farmer)
        for _, crop, farmer, district, planted in plantings
    }
    plots = {(d, f): repo.risk_peer_plots(d, f) for d, f in sorted({(d, f) for _, _, d, f in keys})}
    ledger = _read_facts(session, None, caches)
    with ledger.lock:
        peers = {
            lot
            for crop, season, district, farmer in keys
            for lot in ledger.planted_on(plots[(district, farmer)], crop, season)
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
    and harvests (from the ledger's facts, brought up to date first: no peer's body is parsed in a request),
    the plots they name and their farmers' other plots, the places they name. No photos: photo pairs are the
    population's."""
    repo = Repository(session)
    entries = _entries(repo.risk_events(sorted(scope.lots), RISK_KINDS), caches)
    ledger = _read_facts(session, evidence_dir, caches)
    with ledger.lock:
        peers = ledger.yield_facts(scope.peers)
    codes = {code for entry in entries for code in named_codes(entry.event)}
    codes.update(code for f in peers for code in f.codes)
    plots, places = _plots_and_places(
        repo.risk_plots(sorted(codes), sorted(scope.farmers)), repo.risk_places(sorted(codes))
    )
    return RiskLedger(entries, plots, places, {}, "ledger", peers)


# --- what needs more than a scope --------------------------------------------------------------------------


def _read_facts(session: Session, evidence_dir: Path | None, caches: RiskCaches) -> LedgerFacts:
    """The ledger's facts, up to date. Read (when the newest outbox id says something is new) in a session
    of their own where the bind allows, committed (photo hashes computed from stored originals are kept), so
    that they hold only committed events: a caller's transaction that recorded events and then rolls back
    must not leave its events among them. One thread reads at a time: requests that find the facts up to
    date take no second connection."""
    ledger = caches.ledger_facts(_database(session))
    newest = Repository(session).risk_newest_recorded()
    bind = session.get_bind()
    with ledger.lock:
        if not ledger.holds(newest) and isinstance(bind, Engine):
            with Session(bind) as own, own.begin():
                ledger.read(own, evidence_dir)
        elif not ledger.holds(newest):
            ledger.read(session, evidence_dir)
    return ledger


def _learn(
    session: Session, evidence_dir: Path | None, settings: RiskSettings | None, caches: RiskCaches
) -> Population:
    """The population of the ledger ``session`` reads: its facts brought up to date, then learned."""
    repo = Repository(session)
    ledger = _read_facts(session, evidence_dir, caches)
    with ledger.lock:
        facts, photos = ledger.facts(), dict(ledger.photos)
    plots, places = _plots_and_places(repo.plot_facts(), repo.place_coordinates())
    caches.learnings += 1
    return population_of(facts, plots, places, photos, settings=settings)


def ledger_population(
    session: Session,
    evidence_dir: Path | None,
    version: tuple[Any, ...],
    *,
    settings: RiskSettings | None = None,
    caches: RiskCaches = CACHES,
) -> Population:
    """The photo pairs, unusual farmer-seasons and crop models of the whole ledger at ``version``: kept while
    the ledger is unchanged, and while it changes learned again once the last learning is ``population_ttl_s``
    old (in the background, the last one answering meanwhile, when ``caches.background``)."""
    key = (_database(session), settings)
    found = caches.populations.get(key)
    now = caches.clock()
    if found is not None and (found[0] == version or now - found[1] < caches.population_ttl_s):
        return found[2]
    bind = session.get_bind()
    if found is not None and caches.background and isinstance(bind, Engine):
        caches.learn_later(key, lambda: _learn_apart(bind, key, evidence_dir, settings, caches))
        return found[2]
    population = _learn(session, evidence_dir, settings, caches)
    caches.populations.put(key, (version, now, population))
    return population


def _learn_apart(
    engine: Engine,
    key: Hashable,
    evidence_dir: Path | None,
    settings: RiskSettings | None,
    caches: RiskCaches,
) -> None:
    """Learn the population in a session of its own, committed like a worker's pass (photo hashes computed
    from stored originals are kept), and put it in place of the last one."""
    try:
        with Session(engine) as session, session.begin():
            now = caches.clock()
            version = Repository(session).risk_ledger_version()
            population = _learn(session, evidence_dir, settings, caches)
        caches.populations.put(key, (version, now, population))
    except Exception:  # the next request past the TTL tries again; answers keep the last population
        log.exception("learning the origin-risk population failed")


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
    found = caches.assessments.get(key)
    if found is not None and found[0] == version and found[1] is population:
        return found[2]
    scope = risk_scope(session, asked, caches=caches)
    models = {crop: population.crop_models[crop] for crop in scope.crops if crop in population.crop_models}
    assessment = assess(
        scoped_ledger(session, scope, evidence_dir, caches=caches),
        settings=settings,
        population=population,
        crop_models=models,
    )
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
