"""What a buyer sees when they scan a pack: the public view of a lot, and its verdict, cached briefly.

:func:`lot_provenance` reads a lot's whole lineage (the lot and every lot it was packed or merged from) in a
handful of queries, whatever its length: the lineage's lots, their events, the events' anchors, the origin
plots, their อปท. and the named places, each in one query. It returns plain dataclasses; no ORM object leaves
this module, and nothing personal is in them (PDPA): a farmer appears nowhere — not by name, not by phone,
not even by pseudonym — and places are named by village, by the public name of a packing house or port, or
by their place code. An officer is named by role only.

:func:`public_verdict` runs the same verification as the officer's page and the importer's API
(``services.ledger.verify_lot``) and keeps the answer in this process for at most :data:`VERDICT_TTL_S`
seconds, keyed by the lot, the database, the registry and a fingerprint of the ledger state the verdict
depends on (the lineage's events and their stored bodies, which of them are anchored and where): a new
event, an anchoring, a certification or a revocation recorded in the ledger — or a stored body changed behind
the ledger's back — changes the fingerprint and so is seen at once. What the fingerprint cannot see is a
change on chain alone (say a certification revoked on chain whose revocation event is not recorded yet):
that is why an entry lives 30 seconds at most.

:func:`rendered_page` keeps each finished page (per lot, language and address, in a :class:`LineageCache` of
the app) and :func:`verified_lot` each encoded verdict of the importer API: :func:`lineage_fingerprint` reads
the fingerprint above for the lineage the entry was made from, in one query, and the entry is served only
while it is unchanged — a page for no longer than its verdict may be shown or a certification on it stays
valid, an API verdict for at most :data:`VERIFY_TTL_S` seconds and while the chain's head block is the same.
That query is asked once every :data:`RECHECK_S` seconds per entry, so either answer may lag the ledger by a
quarter second (half a second at most: while one request looks, the others are still served); a scan in
between costs no query, and the routes serve it from the event loop with :func:`kept_page` and
:func:`kept_verdict`, without a thread.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar

from sqlalchemy import bindparam, select

from traceability.chain.registry import TraceRegistry
from traceability.domain.catalog import crop as crop_names
from traceability.domain.events import (
    LOT_CODE_RE,
    Certification,
    Cooling,
    Event,
    Grading,
    Harvest,
    Packing,
    Planting,
    Revocation,
    Transport,
)
from traceability.domain.findings import Severity, Status, Verdict
from traceability.domain.gs1 import gtin14
from traceability.domain.risk import LotRisk
from traceability.domain.states import BatchStatus
from traceability.errors import ChainError, NotFound
from traceability.services.history import CertState, certification_state, parsed_event, step_of
from traceability.services.ledger import verify_lot
from traceability.services.runtime import DbSession
from traceability.store import models
from traceability.store.repository import Repository

VERDICT_TTL_S: Final = 30.0
"""How long a verified/warning/failed verdict is reused while the ledger's fingerprint is unchanged."""
UNAVAILABLE_TTL_S: Final = 5.0
"""How long "the chain did not answer" is reused: long enough that a shop full of scans during an outage does
not queue behind the RPC timeout, short enough that the page recovers as soon as the chain does."""
MAX_CACHED_LOTS: Final = 4096
VERIFY_TTL_S: Final = 10.0
"""How long the importer API reuses an encoded verdict while the lineage's rows and the chain head hold."""
HEAD_TTL_S: Final = 1.0
"""How long a read of the chain's head block is reused by the verdict cache."""
RECHECK_S: Final = 0.25
"""How long a kept page or verdict is served on its last look at the ledger (:func:`lineage_fingerprint`)
before the ledger is asked again. One request then takes the next look while the others go on being served
the entry, for at most another :data:`RECHECK_S`: so either answer lags a change in the ledger by a quarter
second, half a second at the very most. A lot scanned over and over costs a query every quarter second, not
one per scan, and a scan the cache answers touches neither the database nor a thread
(:meth:`LineageCache.recent`)."""
REFRESH_AT: Final = 0.75
"""The share of a cached answer's life after which one caller renews it while the others go on serving it."""
LEAD_WAIT_S: Final = 30.0
"""How long a caller that finds nothing cached waits for the one already making the answer."""
T = TypeVar("T")
Role = Literal["serve", "lead", "make"]

Registry = TraceRegistry
"""The chain client a verdict is checked with, by a name the web layer may use (it imports no chain)."""
VerdictStatus = Literal["verified", "warning", "failed", "unavailable"]
LOCATION_KINDS_NAMED: Final = frozenset({"packing_house", "cold_store", "warehouse", "port", "office"})
"""Locations shown by their name. A ``farm`` is a farmer's own holding (its name may well be the farmer's), so
it is shown by the village of the plot instead."""


# --------------------------------------------------------------------------------------- view data


@dataclass(frozen=True)
class Origin:
    """Where the produce of one origin plot grew: village, อำเภอ, จังหวัด and the อปท. that vouches for it.
    The English district and province are the Thai ones where the authority has no English recorded."""

    village_th: str
    village_en: str
    district_th: str
    district_en: str
    province_th: str
    province_en: str
    authority_th: str
    authority_en: str


@dataclass(frozen=True)
class Place:
    """Where an event happened, without personal data: the village of a plot, the name of a packing house or
    port, or else the place code."""

    th: str
    en: str


@dataclass(frozen=True)
class Anchor:
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class Step:
    """One event of the lineage on the timeline. ``step`` is its kind, a transport split into ``ship`` and
    ``receive`` and a rejecting grading as ``rejected``. ``lot_code`` is the lot it is about (for a packing,
    the lot it made); ``joined_from`` the input lots a packing or merge took in ("from lot X");
    ``quantity_kg`` what it moved for the lineage, where there is a quantity."""

    step: str
    event_time: datetime
    lot_code: str
    joined_from: tuple[str, ...]
    quantity_kg: Decimal | None
    place: Place
    detail: str | None  # a variety, a grade, a certification's standard
    anchor: Anchor | None


@dataclass(frozen=True)
class PublicCertification:
    """A certification as a buyer reads it: the standard, the issuing อปท. (the signer is "an officer of the
    อปท.", a role, never a name), when issued, until when, and its state now."""

    lot_code: str
    standard: str
    authority_th: str
    authority_en: str
    issued: datetime
    expires: datetime | None
    state: CertState


@dataclass(frozen=True)
class Provenance:
    code: str
    gtin: str | None
    product_th: str
    product_en: str
    crop_th: str
    crop_en: str
    varieties: tuple[str, ...]
    grades: tuple[str, ...]
    origins: tuple[Origin, ...]
    steps: tuple[Step, ...]
    certifications: tuple[PublicCertification, ...]
    lineage: tuple[str, ...]
    fingerprint: str

    @property
    def latest_anchor(self) -> Anchor | None:
        """The anchor of the latest anchored event: the transaction that sealed the lot's story so far."""
        anchored = [s.anchor for s in self.steps if s.anchor is not None]
        return max(anchored, key=lambda a: a.block_number) if anchored else None


@dataclass(frozen=True)
class Reason:
    """One finding of the verdict in plain words (the finding's own Thai and English text)."""

    th: str
    en: str
    error: bool


@dataclass(frozen=True)
class PublicVerdict:
    status: VerdictStatus
    reasons: tuple[Reason, ...]
    checked_at: datetime
    risk: LotRisk | None = None  # the origin-risk score and signals (None when the chain did not answer)


# --------------------------------------------------------------------------------------- the lot


def lot_provenance(session: DbSession, lot_code: str, *, now: datetime | None = None) -> Provenance:
    """The public view of ``lot_code``; NotFound ``unknown_lot`` when the ledger has no such lot."""
    repo = Repository(session)
    lot = repo.lot(lot_code.strip().upper())
    if lot is None:
        raise NotFound(f"unknown lot {lot_code[:40]}", code="unknown_lot")
    now = now or datetime.now(UTC)
    lineage = repo.lineage_lots(lot.code)
    lots = repo.lots_by_codes(sorted(lineage))
    rows = repo.events_touching(sorted(lineage))
    anchors = repo.anchors_for([row.id for row in rows])
    parsed = [(row, parsed_event(row)) for row in rows]
    events = [event for _row, event in parsed if event is not None]

    plot_codes = {e.plot_id for e in events if isinstance(e, Planting | Harvest)}
    plot_codes |= {e.place.id for e in events}  # an event may take place on the plot itself
    plots = repo.plots_for(sorted(plot_codes), sorted({x.plot_id for x in lots if x.plot_id is not None}))
    cert_authorities = {e.authority for e in events if isinstance(e, Certification)}
    authorities = repo.authorities_for(sorted({p.authority_id for p in plots}), sorted(cert_authorities))
    locations = {loc.code: loc for loc in repo.locations_by_codes(sorted({e.place.id for e in events}))}
    plots_by_code = {p.code: p for p in plots}
    by_id = {a.id: a for a in authorities}
    by_code = {a.code: a for a in authorities}

    origin_plots = _origin_plots(events, lots, plots)
    steps = []
    for row, event in sorted(parsed, key=lambda pair: (pair[0].event_time, pair[0].recorded_at)):
        batch = anchors[row.id][0] if row.id in anchors else None
        anchor = (
            Anchor(batch.block_number or 0, batch.tx_hash or "")
            if batch is not None and batch.tx_hash
            else None
        )
        about, joined = _lots_of(event, lineage, lot.code)
        steps.append(
            Step(
                step=step_of(row.kind, event),
                event_time=row.event_time,
                lot_code=about,
                joined_from=joined,
                quantity_kg=_quantity(event, lineage),
                place=_place(event, plots_by_code, locations, by_code),
                detail=_detail(event),
                anchor=anchor,
            )
        )
    names = crop_names(lot.crop)
    return Provenance(
        code=lot.code,
        gtin=lot.gtin,
        product_th=lot.product_th,
        product_en=lot.product_en,
        crop_th=names.name_th,
        crop_en=names.name_en,
        varieties=_unique(e.variety for e in events if isinstance(e, Planting | Harvest)),
        grades=_unique(e.grade for e in events if isinstance(e, Grading) and e.disposition == "conformant"),
        origins=tuple(_origin(p, by_id[p.authority_id]) for p in origin_plots if p.authority_id in by_id),
        steps=tuple(steps),
        certifications=tuple(_certifications(events, by_code, now)),
        lineage=tuple(sorted(lineage)),
        fingerprint=_fingerprint(rows, anchors),
    )


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _lots_of(event: Event | None, lineage: set[str], own: str) -> tuple[str, tuple[str, ...]]:
    """(the lineage lot the event is about, the input lots it joined in). A packing is about the lineage lot
    it made and names what it was made from; a shipment is about the lineage lot it carried."""
    if event is None:
        return own, ()
    if isinstance(event, Packing):
        made = [o.lot_code for o in event.outputs if o.lot_code in lineage]
        inputs = tuple(i.lot_code for i in event.inputs)
        return (made[0] if made else event.outputs[0].lot_code), inputs
    if isinstance(event, Transport):
        carried = [i.lot_code for i in event.items if i.lot_code in lineage]
        return (carried[0] if carried else event.items[0].lot_code), ()
    return event.lot_code, ()


def _quantity(event: Event | None, lineage: set[str]) -> Decimal | None:
    if isinstance(event, Harvest | Cooling | Grading):
        return event.quantity.kg()
    if isinstance(event, Packing | Transport):
        items = event.outputs if isinstance(event, Packing) else event.items
        ours = [i.quantity.kg() for i in items if i.lot_code in lineage]
        return sum(ours, Decimal(0)) if ours else None
    return None


def _detail(event: Event | None) -> str | None:
    if isinstance(event, Planting | Harvest):
        return event.variety
    if isinstance(event, Grading):
        return event.grade
    if isinstance(event, Certification):
        return event.standard
    return None


def _place(
    event: Event | None,
    plots: dict[str, models.Plot],
    locations: dict[str, models.Location],
    authorities: dict[str, models.Authority],
) -> Place:
    if event is None:
        return Place("", "")
    if isinstance(event, Planting | Harvest) and event.plot_id in plots:
        plot = plots[event.plot_id]
        return Place(plot.village_th, plot.village_en)
    code = event.place.id
    if code in plots:
        return Place(plots[code].village_th, plots[code].village_en)
    if isinstance(event, Certification | Revocation) and code in authorities:
        return Place(authorities[code].name_th, authorities[code].name_en)
    location = locations.get(code)
    if location is not None and location.kind in LOCATION_KINDS_NAMED:
        return Place(location.name_th, location.name_en)
    return Place(code, code)


def _origin_plots(
    events: Sequence[Event], lots: Sequence[models.Lot], plots: Sequence[models.Plot]
) -> list[models.Plot]:
    """The plots the lineage was planted (or harvested) on, in the order the ledger first names them."""
    by_code = {p.code: p for p in plots}
    by_id = {p.id: p for p in plots}
    order: list[models.Plot] = []
    for event in sorted((e for e in events if isinstance(e, Planting | Harvest)), key=lambda e: e.event_time):
        if event.plot_id in by_code:
            order.append(by_code[event.plot_id])
    order += [by_id[x.plot_id] for x in lots if x.plot_id is not None and x.plot_id in by_id]
    return list({p.id: p for p in order}.values())


def _origin(plot: models.Plot, authority: models.Authority) -> Origin:
    return Origin(
        village_th=plot.village_th,
        village_en=plot.village_en,
        district_th=authority.district_th,
        district_en=authority.district_en or authority.district_th,
        province_th=authority.province_th,
        province_en=authority.province_en or authority.province_th,
        authority_th=authority.name_th,
        authority_en=authority.name_en,
    )


def _certifications(
    events: Sequence[Event], authorities: dict[str, models.Authority], now: datetime
) -> list[PublicCertification]:
    """Every certification of a lineage lot with its state now (``history.certification_state``)."""
    revoked = {e.cert_id for e in events if isinstance(e, Revocation)}
    out = []
    for event in sorted((e for e in events if isinstance(e, Certification)), key=lambda e: e.event_time):
        state, expires = certification_state(event, revoked, now)
        authority = authorities.get(event.authority)
        out.append(
            PublicCertification(
                lot_code=event.lot_code,
                standard=event.standard,
                authority_th=authority.name_th if authority else event.authority,
                authority_en=authority.name_en if authority else event.authority,
                issued=event.event_time,
                expires=expires,
                state=state,
            )
        )
    return out


def _fingerprint(
    rows: Sequence[models.Event], anchors: Mapping[uuid.UUID, tuple[models.Batch, list[str]]]
) -> str:
    """A digest of everything in the ledger the verdict reads: each event's id, stored hash and stored body,
    and the batch (root, transaction, block) it is anchored in. Certifications and revocations are events, so
    they count too."""
    sealed: list[tuple[str, str, str, str]] = []
    for row in rows:
        anchor = anchors.get(row.id)
        batch = anchor[0] if anchor is not None else None
        seal = f"{batch.root}|{batch.tx_hash}|{batch.block_number}|{batch.block_hash}" if batch else "-"
        sealed.append((str(row.id), row.hash, seal, row.body))
    return _digest(sealed)


def _digest(sealed: Iterable[tuple[str, str, str, str]]) -> str:
    """``count:anchored:sha256`` over (event id, stored hash, anchor or ``-``, stored body), in id order."""
    ordered = sorted(sealed)
    digest = hashlib.sha256()
    for event_id, event_hash, seal, body in ordered:
        digest.update(f"{event_id}|{event_hash}|{seal}|".encode())
        digest.update(hashlib.sha256(body.encode()).digest())
    anchored = sum(1 for item in ordered if item[2] != "-")
    return f"{len(ordered)}:{anchored}:{digest.hexdigest()}"


_ANCHORED: Final = (
    select(models.BatchEvent.event_id, models.Batch)
    .join(models.Batch, models.Batch.id == models.BatchEvent.batch_id)
    .where(models.Batch.status == BatchStatus.ANCHORED)
    .subquery()
)
_SEALED_ROWS: Final = (
    select(
        models.Event.id,
        models.Event.hash,
        models.Event.body,
        _ANCHORED.c.root,
        _ANCHORED.c.tx_hash,
        _ANCHORED.c.block_number,
        _ANCHORED.c.block_hash,
    )
    .outerjoin(_ANCHORED, _ANCHORED.c.event_id == models.Event.id)
    .where(
        models.Event.id.in_(
            select(models.EventLot.event_id).where(
                models.EventLot.lot_code.in_(bindparam("lots", expanding=True))
            )
        )
    )
)
"""(event id, hash, body, batch root, transaction, block number, block hash) of every event touching the
lots ``:lots``, the batch columns None where the event is not anchored. Built once: it is asked on every
cached page and verdict."""


def lineage_fingerprint(session: DbSession, lineage: Sequence[str]) -> str:
    """The same fingerprint as :attr:`Provenance.fingerprint`, read in one query for a lineage already known.

    Sound for a cached lineage because the lineage of a lot only grows by an event that touches one of its
    lots (a packing that outputs one of them), and that event changes this fingerprint."""
    # Core, not ORM, execution: the rows are plain columns, and this runs on every cached answer.
    rows = session.connection().execute(_SEALED_ROWS, {"lots": list(lineage)}).all()
    return _digest(
        (
            str(event_id),
            event_hash,
            f"{root}|{tx_hash}|{block_number}|{block_hash}" if root is not None else "-",
            body,
        )
        for event_id, event_hash, body, root, tx_hash, block_number, block_hash in rows
    )


# --------------------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class _Cached:
    fingerprint: str
    until: float
    verdict: PublicVerdict


class VerdictCache:
    """Verdicts per (database, registry, lot), each kept while its fingerprint holds, for at most its TTL.
    Thread-safe; bounded (the least recently used go first). Two requests for the same lot that miss at the
    same moment may both verify: harmless, and simpler than making one wait on the other's RPC calls."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_CACHED_LOTS):
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, ...], _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], fingerprint: str) -> PublicVerdict | None:
        found = self.lookup(key, fingerprint)
        return found[0] if found is not None else None

    def lookup(self, key: tuple[str, ...], fingerprint: str) -> tuple[PublicVerdict, float] | None:
        """The cached verdict and the seconds it may still be used, or None."""
        with self._lock:
            found = self._entries.get(key)
            now = self._clock()
            if found is None or found.fingerprint != fingerprint or found.until <= now:
                return None
            self._entries.move_to_end(key)
            return found.verdict, found.until - now

    def put(self, key: tuple[str, ...], fingerprint: str, verdict: PublicVerdict, ttl_s: float) -> None:
        with self._lock:
            self._entries[key] = _Cached(fingerprint, self._clock() + ttl_s, verdict)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


VERDICTS = VerdictCache()
"""The process's verdict cache (each `trace serve` process has its own)."""


def public_verdict(
    session: DbSession,
    registry: TraceRegistry,
    provenance: Provenance,
    *,
    confirmations: int,
    yield_tolerance: Decimal = Decimal("1.5"),
    evidence_dir: Path | None = None,
    cache: VerdictCache = VERDICTS,
) -> PublicVerdict:
    """The lot's verdict in plain words, from the cache when the ledger has not changed since (≤ 30 s), else
    verified afresh against the chain. A chain that does not answer gives ``unavailable``, never an error
    page: the buyer still sees the lot's story."""
    verdict, _left_s = _public_verdict(
        session,
        registry,
        provenance,
        confirmations=confirmations,
        yield_tolerance=yield_tolerance,
        evidence_dir=evidence_dir,
        cache=cache,
    )
    return verdict


def _public_verdict(
    session: DbSession,
    registry: TraceRegistry,
    provenance: Provenance,
    *,
    confirmations: int,
    yield_tolerance: Decimal,
    evidence_dir: Path | None,
    cache: VerdictCache,
    reuse: bool = True,
) -> tuple[PublicVerdict, float]:
    """:func:`public_verdict` and the seconds it may still be shown; verified afresh unless ``reuse``."""
    bind = session.get_bind()
    database = bind.url.render_as_string(hide_password=True) if hasattr(bind, "url") else repr(bind)
    key = (database, str(registry.address).lower(), provenance.code)
    found = cache.lookup(key, provenance.fingerprint) if reuse else None
    if found is not None:
        return found
    try:
        verdict = verify_lot(
            session,
            registry,
            provenance.code,
            confirmations=confirmations,
            yield_tolerance=yield_tolerance,
            evidence_dir=evidence_dir,
        )
    except ChainError:
        unavailable = PublicVerdict("unavailable", (), datetime.now(UTC))
        cache.put(key, provenance.fingerprint, unavailable, UNAVAILABLE_TTL_S)
        return unavailable, UNAVAILABLE_TTL_S
    statuses: dict[Status, VerdictStatus] = {
        Status.VERIFIED: "verified",
        Status.WARNING: "warning",
        Status.FAILED: "failed",
    }
    status = statuses[verdict.status]
    reasons = tuple(dict.fromkeys(Reason(f.th, f.en, f.severity is Severity.ERROR) for f in verdict.findings))
    result = PublicVerdict(status, reasons, datetime.now(UTC), verdict.risk)
    cache.put(key, provenance.fingerprint, result, VERDICT_TTL_S)
    return result, VERDICT_TTL_S


def registry_identity(registry: TraceRegistry) -> tuple[str, int | None]:
    """(address, chain id) of the registry the page's verdict trusts; the chain id is None when the chain
    cannot be asked (it is cached by the client once known)."""
    try:
        return str(registry.address), registry.chain_id
    except ChainError:
        return str(registry.address), None


# --------------------------------------------------------------------------------------- rendered answers


@dataclass(frozen=True)
class Kept(Generic[T]):
    """A cached answer: what it was made from (the lineage, its fingerprint, the chain head if it was read),
    the answer itself, when it was made and stops being served, and when the ledger was last seen to still
    say what it did (this cache's clock)."""

    lineage: tuple[str, ...]
    fingerprint: str
    head: int | None
    value: T
    made: float
    until: float
    checked: float


class LineageCache(Generic[T]):
    """Finished answers (a rendered page, an encoded verdict) per key, each served while its lineage's
    fingerprint (one query, :func:`lineage_fingerprint`, asked at most every :data:`RECHECK_S` seconds) and,
    where it was read, the chain head are unchanged, and never past its own expiry. Thread-safe, bounded
    (least recently used go first); one per app, so the key need not name the database or the registry."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CACHED_LOTS,
        recheck_s: float = RECHECK_S,
    ):
        self.clock = clock
        self.recheck_s = recheck_s
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, ...], Kept[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._head: tuple[float, int] | None = None
        self._head_asked = False
        self._leaders: dict[tuple[str, ...], threading.Event] = {}
        self._looking: dict[tuple[str, ...], float] = {}  # key → when one caller was sent to look
        self._head_wanted: float | None = None  # when one caller was sent to read the head

    def recent(self, key: tuple[str, ...], head: int | None = None) -> Kept[T] | None:
        """The entry for ``key`` if it can be served without asking anything: ``head`` is the one it was made
        at, it is not yet due for renewal (:meth:`lookup`), and the ledger was seen unchanged less than
        :attr:`recheck_s` ago — or less than twice that while another caller is on its way to look. None
        sends the caller to :meth:`lookup`, which looks; the first caller to find the look due is the one
        sent, so under a burst of scans one request a quarter second leaves the event loop, not every request
        that arrives before the look is done. Made for a route on the event loop: no query, no thread, no
        wait beyond this cache's lock."""
        with self._lock:
            found = self._entries.get(key)
            now = self.clock()
            if (
                found is None
                or found.head != head
                or now >= found.made + REFRESH_AT * (found.until - found.made)
            ):
                return None
            age = now - found.checked
            if age >= self.recheck_s:
                sent = self._looking.get(key)
                if sent is None or now - sent >= self.recheck_s:  # no one is looking (or never came back)
                    self._looking[key] = now
                    return None
                if age >= 2 * self.recheck_s:
                    return None
            self._entries.move_to_end(key)
            return found

    def fresh(self, session: DbSession, key: tuple[str, ...], head: int | None = None) -> Kept[T] | None:
        """The entry for ``key`` if it has not expired and the ledger (and ``head``) still say what it did:
        the ledger is asked only when it was last asked :attr:`recheck_s` ago or more."""
        with self._lock:
            found = self._entries.get(key)
            now = self.clock()
            if found is None or found.until <= now or found.head != head:
                return None
            self._entries.move_to_end(key)
            if now - found.checked < self.recheck_s:
                return found
        try:
            if lineage_fingerprint(session, found.lineage) != found.fingerprint:
                return None
            seen = replace(found, checked=now)
            with self._lock:
                if self._entries.get(key) is found:  # not replaced by a newer answer meanwhile
                    self._entries[key] = seen
            return seen
        finally:
            with self._lock:
                self._looking.pop(key, None)

    def lookup(
        self, session: DbSession, key: tuple[str, ...], head: int | None = None
    ) -> tuple[Kept[T] | None, Role]:
        """The entry to serve for ``key`` and what the caller is to do: ``serve`` it; ``lead`` (make a new
        one, then call :meth:`made`); or ``make`` one without leading. One caller at a time leads per key:
        the first to find no entry, or one whose life is three quarters spent (:data:`REFRESH_AT`), so an
        entry is renewed before it expires while the others go on serving it, and callers that find none
        wait for the leader's (up to :data:`LEAD_WAIT_S`) instead of all verifying the same lot at once."""
        kept = self.fresh(session, key, head)
        if kept is not None and self.clock() < kept.made + REFRESH_AT * (kept.until - kept.made):
            return kept, "serve"
        with self._lock:
            leader = self._leaders.get(key)
            if leader is None:
                self._leaders[key] = threading.Event()
                return kept, "lead"
        if kept is not None:
            return kept, "serve"  # being renewed by another caller, and still valid
        leader.wait(LEAD_WAIT_S)
        kept = self.fresh(session, key, head)
        return (kept, "serve") if kept is not None else (None, "make")

    def made(self, key: tuple[str, ...]) -> None:
        """The leader for ``key`` is done (whether or not it put an entry): wake whoever waits for it."""
        with self._lock:
            leader = self._leaders.pop(key, None)
        if leader is not None:
            leader.set()

    def put(
        self,
        key: tuple[str, ...],
        lineage: Iterable[str],
        fingerprint: str,
        value: T,
        ttl_s: float,
        head: int | None = None,
        *,
        checked: float,
    ) -> Kept[T]:
        """Keep ``value`` for ``ttl_s`` seconds from now; ``checked`` is when ``fingerprint`` was read (this
        cache's clock), so that the time spent making the answer counts against :attr:`recheck_s`."""
        now = self.clock()
        kept = Kept(tuple(sorted(lineage)), fingerprint, head, value, now, now + ttl_s, checked)
        with self._lock:
            self._looking.pop(key, None)
            self._entries[key] = kept
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                gone, _ = self._entries.popitem(last=False)
                self._looking.pop(gone, None)
        return kept

    def age_s(self, kept: Kept[T]) -> float:
        return max(0.0, self.clock() - kept.made)

    def recent_head(self) -> int | None:
        """The chain's block number if it was read less than :data:`HEAD_TTL_S` seconds ago, or less than
        twice that while another caller is reading it or on its way to; else None, and the caller goes
        through :meth:`head`, which asks the node (the first caller to find the read due is the one sent)."""
        with self._lock:
            known, now = self._head, self.clock()
            if known is None:
                return None
            age = now - known[0]
            if age < HEAD_TTL_S:
                return known[1]
            wanted = self._head_wanted is not None and now - self._head_wanted < HEAD_TTL_S
            if age < 2 * HEAD_TTL_S and (self._head_asked or wanted):
                return known[1]
            self._head_wanted = now
            return None

    def head(self, registry: TraceRegistry) -> int:
        """The chain's block number, asked at most every :data:`HEAD_TTL_S` seconds (else ChainError). While
        one caller asks, the others take the number read before (older by that one round trip at most)
        rather than all asking the node at once."""
        now = self.clock()
        with self._lock:
            known = self._head
            if known is not None and (now - known[0] < HEAD_TTL_S or self._head_asked):
                return known[1]
            self._head_asked = True
        try:
            number = registry.head()
        finally:
            with self._lock:
                self._head_asked = False
        with self._lock:
            self._head = (now, number)
            self._head_wanted = None
        return number


@dataclass(frozen=True)
class RenderedPage:
    """A provenance page as sent: its bytes and their entity tag."""

    body: bytes
    etag: str


PageCache = LineageCache[RenderedPage]
"""The cache of rendered provenance pages, one per app."""


def rendered_page(
    session: DbSession,
    registry: TraceRegistry,
    lot_code: str,
    *,
    variant: tuple[str, ...],
    render: Callable[[Provenance, PublicVerdict], bytes],
    cache: PageCache,
    confirmations: int,
    yield_tolerance: Decimal = Decimal("1.5"),
    evidence_dir: Path | None = None,
    verdicts: VerdictCache = VERDICTS,
) -> RenderedPage:
    """The rendered page of ``lot_code`` (``variant`` names what else it depends on: language, address),
    reused while its lineage's fingerprint holds and no longer than its verdict may be shown (≤ 30 s) or
    the next certification on it expires; else read, verified (:func:`public_verdict`) and rendered afresh.
    NotFound ``unknown_lot`` when the ledger has no such lot."""
    key = (lot_code, *variant)
    kept, role = cache.lookup(session, key)
    if kept is not None and role == "serve":
        return kept.value
    try:
        checked = cache.clock()
        # Kept under the fingerprint of the very rows it shows: an event recorded while the page is being
        # made changes the next look's fingerprint, so such a page is made again rather than kept.
        provenance = lot_provenance(session, lot_code)
        verdict, left_s = _public_verdict(
            session,
            registry,
            provenance,
            confirmations=confirmations,
            yield_tolerance=yield_tolerance,
            evidence_dir=evidence_dir,
            cache=verdicts,
            reuse=kept is None,  # renewing a page ahead of its expiry: its verdict is due too
        )
        body = render(provenance, verdict)
        page = RenderedPage(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        now = datetime.now(UTC)
        expiries = [c.expires for c in provenance.certifications if c.expires is not None and c.expires > now]
        if expiries:
            left_s = min(left_s, (min(expiries) - now).total_seconds())
        cache.put(key, provenance.lineage, provenance.fingerprint, page, left_s, checked=checked)
        return page
    finally:
        if role == "lead":
            cache.made(key)


def kept_page(cache: PageCache, lot_code: str, *, variant: tuple[str, ...]) -> RenderedPage | None:
    """The page :func:`rendered_page` would give for ``lot_code`` and ``variant`` when the cache can answer
    without asking the ledger or the chain (:meth:`LineageCache.recent`), else None: then call
    :func:`rendered_page`. For a route on the event loop."""
    kept = cache.recent((lot_code, *variant))
    return kept.value if kept is not None else None


VerifyCache = LineageCache[bytes]
"""The cache of encoded verdicts (the importer API's JSON), one per app."""


def verified_lot(
    session: DbSession,
    registry: TraceRegistry,
    lot_code: str,
    *,
    encode: Callable[[Verdict], bytes | None],
    cache: VerifyCache,
    confirmations: int,
    yield_tolerance: Decimal = Decimal("1.5"),
    evidence_dir: Path | None = None,
) -> tuple[bytes | None, float]:
    """``services.ledger.verify_lot`` of ``lot_code``, encoded by ``encode``, and its age in seconds.

    An encoded verdict is reused for at most :data:`VERIFY_TTL_S` seconds while the lineage's rows (events,
    stored bodies, anchors: :func:`lineage_fingerprint`, looked at every :data:`RECHECK_S` seconds) and the
    chain's head block (asked once a second) are unchanged: a new event, an anchoring, a certification or
    revocation, or a reorganisation the worker recorded is seen within a quarter second (half a second at
    most, :data:`RECHECK_S`), any new block within the head's second (two at most). What is not seen before
    the entry expires is the origin risk's view of the rest of the ledger (other lots' yields) and a
    certification expiring by the clock. ``encode`` returns None for an answer not to keep (the chain did
    not answer); ChainError when the head cannot be read."""
    head = cache.head(registry)
    kept, role = cache.lookup(session, (lot_code,), head)
    if kept is not None and role == "serve":
        return kept.value, cache.age_s(kept)
    try:
        lineage = sorted(Repository(session).lineage_lots(lot_code))
        checked = cache.clock()
        fingerprint = lineage_fingerprint(session, lineage)
        verdict = verify_lot(
            session,
            registry,
            lot_code,
            confirmations=confirmations,
            yield_tolerance=yield_tolerance,
            evidence_dir=evidence_dir,
        )
        value = encode(verdict)
        if value is not None:
            cache.put((lot_code,), lineage, fingerprint, value, VERIFY_TTL_S, head, checked=checked)
        return value, 0.0
    finally:
        if role == "lead":
            cache.made((lot_code,))


def kept_verdict(cache: VerifyCache, lot_code: str) -> tuple[bytes, float] | None:
    """What :func:`verified_lot` would give for ``lot_code`` (the encoded verdict and its age) when the cache
    can answer without asking the ledger or the chain: the head was read less than :data:`HEAD_TTL_S` ago
    and is the verdict's, and the ledger was seen unchanged less than :data:`RECHECK_S` ago (each up to twice
    that while another request reads or looks: :meth:`LineageCache.recent_head`, :meth:`LineageCache.recent`).
    Else None: then call :func:`verified_lot`. For a route on the event loop."""
    head = cache.recent_head()
    kept = cache.recent((lot_code,), head) if head is not None else None
    return (kept.value, cache.age_s(kept)) if kept is not None else None


# --------------------------------------------------------------------------------------- resolver lookups


@dataclass(frozen=True)
class LotKey:
    """A lot the ledger holds, as its public addresses name it (``gtin`` as GTIN-14, or None)."""

    code: str
    gtin: str | None


def normalise_lot_code(value: str) -> str | None:
    """``value`` as a lot code (upper case), or None when it cannot be one (``domain.events.LOT_CODE_RE``)."""
    code = value.strip().upper()
    return code if re.fullmatch(LOT_CODE_RE, code) else None


def find_lot(session: DbSession, lot_code: str, *, gtin: str | None = None) -> LotKey:
    """The lot ``lot_code``; with ``gtin``, only if the lot was packed under that GTIN (compared as GTIN-14).
    NotFound (404) ``unknown_lot``, ``invalid_gtin`` (not a GTIN: wrong length or check digit) or
    ``gtin_mismatch`` (another product's GTIN): a GS1 resolver answers 404 for a key it does not serve."""
    code = normalise_lot_code(lot_code)
    lot = Repository(session).lot(code) if code else None
    if lot is None:
        raise NotFound(f"unknown lot {lot_code[:40]}", code="unknown_lot")
    own = gtin14(lot.gtin) if lot.gtin else None
    if gtin is not None:
        try:
            asked = gtin14(gtin)
        except ValueError as exc:
            raise NotFound(f"not a GTIN: {gtin[:20]} ({exc})", code="invalid_gtin") from None
        if asked != own:
            raise NotFound(f"lot {lot.code} is not a lot of GTIN {asked}", code="gtin_mismatch")
    return LotKey(lot.code, own)
