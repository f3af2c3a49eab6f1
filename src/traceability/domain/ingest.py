"""Decide a batch of events against one snapshot of the ledger, in order; map the accepted ones. Pure code.

The service loads a :class:`Ledger` (the lots, heads, plots, earlier events and balances the batch touches) in
a few set-based queries; :func:`decide` then judges every item in batch order against that snapshot as it
would stand after the items before it: a harvest may follow its planting in the same batch, a shipment its
packing. Each item ends as one :data:`Outcome`:

* :class:`Retry`: the same event was stored before (same ``event_id`` or ``Idempotency-Key``, same content);
* :class:`Refusal`: the error the single-event path raises for it (its class, code and message);
* :class:`Accepted`: the rows to write (the event completed with ``prev`` and a planting's อปท., its EPCIS
  body and CBV 2.0 hash, its place in each lot's hash chain, the lots it creates).

A refused item changes nothing in the view, so later items are judged as if it had never been sent, which is
what recording them one at a time would do.

Rules, in the order the single path applies them (the order decides which error an item gets): the
submitter's rights (API submissions only), idempotency, then the ledger's own rules: a created lot must not
exist, every other lot must (404), a planting's plot and อปท., a harvest's plot and crop, mass balance, and a
head on every continued lot.

Mass balance is judged as verification judges it (``lineage.mass_balance``): each lot's steps replayed in
event-time order, ties in the order they were recorded. A step at or after the latest one on its lots takes
the fast path: it is checked against the lots' running totals, which are what such a replay holds at its
time. A step earlier than one already on its lots (recorded late: two clients grading one lot at nearly the
same time, a phone that was offline) is judged by replaying its lots with the step in its place: refused if
it, or any step after it, then comes up short where it did not before.
"""

from __future__ import annotations

import uuid
from bisect import insort
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from traceability.domain import codec
from traceability.domain.catalog import crop
from traceability.domain.epcis import from_epcis, in_canonical_order, to_epcis
from traceability.domain.events import (
    Cooling,
    Event,
    Grading,
    Harvest,
    Packing,
    Planting,
    Transport,
    lots_touched,
)
from traceability.domain.findings import Finding
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.lineage import (
    Balance,
    LedgerEntry,
    apply_event,
    check_mass_balance,
    created_lots,
    event_name,
)
from traceability.domain.states import LotRole, Role
from traceability.errors import Conflict, Forbidden, InvalidEvent, NotFound, TraceabilityError


@dataclass(frozen=True)
class LotFacts:
    """A lot row: what later events on the lot are checked against and mapped with."""

    code: str
    crop: str
    product_th: str
    product_en: str
    gtin: str | None
    authority_id: int | None
    plot_id: int | None


@dataclass(frozen=True)
class PlotFacts:
    """An enrolled plot with the codes of its farmer and its อปท."""

    id: int
    code: str
    farmer_id: int
    farmer_code: str
    authority_id: int
    authority_code: str


@dataclass(frozen=True)
class PriorEvent:
    """An event already recorded (or accepted earlier in the batch) that a retry is compared with."""

    event_id: uuid.UUID
    hash: str
    kind: str
    body: str


@dataclass(frozen=True)
class Submitter:
    """Who submits over the API, whose rights are checked: a farmer (``farmer_id``) or an officer of the อปท.
    ``authority_id``."""

    role: Role
    authority_id: int
    farmer_id: int | None = None


@dataclass(frozen=True)
class Ledger:
    """What the ledger holds of everything a batch touches.

    ``history`` holds every stored event of :data:`BALANCE_KINDS` touching the lots whose balance the batch
    needs, in (event_time, recorded_at) order, the order verification replays them in; ``parents`` maps a lot
    to the lots it was packed from (only loaded to check a farmer's rights, which follow a lot's lineage back
    to its origin plots)."""

    id_base: str
    lots: Mapping[str, LotFacts]
    heads: Mapping[str, tuple[int, str]]
    plots: Mapping[str, PlotFacts]
    by_id: Mapping[uuid.UUID, PriorEvent]
    by_key: Mapping[str, PriorEvent]
    history: Sequence[Event] = ()
    parents: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Retry:
    """The item was recorded before with the same content: nothing new to write."""

    event_id: uuid.UUID
    hash: str
    kind: str
    lots: tuple[str, ...]


@dataclass(frozen=True)
class Refusal:
    error: TraceabilityError


@dataclass(frozen=True)
class LotLink:
    """The event's place in one lot's hash chain."""

    lot_code: str
    seq: int
    role: LotRole


@dataclass(frozen=True)
class Accepted:
    """A new event and the rows it writes."""

    event: Event
    body: str
    hash: str
    lots: tuple[str, ...]
    links: tuple[LotLink, ...]
    new_lots: tuple[LotFacts, ...]
    idempotency_key: str | None


Outcome = Retry | Refusal | Accepted


MOVING_KINDS = ("harvest", "grading", "packing", "transport")
"""Kinds of event that change a lot's kilograms in :func:`traceability.domain.lineage.apply_event` (planting,
cooling, certification and revocation change none): a lot's running total is a sum of these alone."""

BALANCE_KINDS = (*MOVING_KINDS, "cooling")
"""Kinds a replay of a lot's kilograms in event-time order needs: those that move them, and cooling, which
checks what the lot holds at its time (a step recorded late and earlier in time can leave a cooling short)."""

_Step = tuple[datetime, int, Event]
"""An event on a lot's timeline: (event time, the order it was recorded in, the event). Tuples sort as
verification orders a lot's events: by event time, ties in recording order."""


def needs_balance(event: Event) -> bool:
    """Whether recording ``event`` checks its lots' mass balance (planting, harvest, certification and
    revocation neither take out nor observe quantities)."""
    return isinstance(event, Cooling | Grading | Packing | Transport)


def decide(
    items: Sequence[tuple[Event, str | None]],
    ledger: Ledger,
    *,
    enforce_ownership: bool = True,
    submitter: Submitter | None = None,
) -> list[Outcome]:
    """Judge each (event, idempotency key) in order against ``ledger`` as the items before it leave it.

    ``enforce_ownership``: a farmer's planting and harvest must name a plot of their own (the actor's).
    ``submitter``: also check the API submitter's rights (a farmer's plots and lots, an officer's อปท.)."""
    view = _View(ledger)
    return [view.judge(event, key, enforce_ownership, submitter) for event, key in items]


class _View:
    """The ledger as the batch's accepted items so far leave it."""

    def __init__(self, ledger: Ledger) -> None:
        self.id_base = ledger.id_base
        self.plots = ledger.plots
        self.plots_by_id = {p.id: p for p in ledger.plots.values()}
        self.lots = dict(ledger.lots)
        self.heads = dict(ledger.heads)
        self.by_id = dict(ledger.by_id)
        self.by_key = dict(ledger.by_key)
        self.parents = dict(ledger.parents)
        # Each lot's kilograms are a sum of its events' movements, so one pass over the union of the needed
        # lots' histories gives each of them what a replay of its own history would.
        self.balance = Balance.empty()
        # Each lot's events of BALANCE_KINDS in verification's order, for a step that comes before some.
        self.timeline: defaultdict[str, list[_Step]] = defaultdict(list)
        for order, stored in enumerate(ledger.history):
            apply_event(self.balance, stored)
            for lot in lots_touched(stored):
                self.timeline[lot].append((stored.event_time, order, stored))
        self.recorded = len(ledger.history)

    def judge(
        self, event: Event, key: str | None, enforce_ownership: bool, submitter: Submitter | None
    ) -> Outcome:
        touched = lots_touched(event)
        kept = {lot: (self.balance.held[lot], self.balance.in_transit[lot]) for lot in touched}
        try:
            if submitter is not None:
                self._authorise(submitter, event)
            retry = self._retry(event, key, touched)
            if retry is not None:
                return retry
            accepted = self._accept(event, key, touched, enforce_ownership)
        except TraceabilityError as exc:
            self._restore(kept)
            return Refusal(exc)
        self._remember(accepted)
        return accepted

    def _restore(self, kept: Mapping[str, tuple[Decimal, Decimal]]) -> None:
        for lot, (held, moving) in kept.items():
            self.balance.held[lot] = held
            self.balance.in_transit[lot] = moving

    # --- rights (API submissions) ------------------------------------------------------------------------

    def _authorise(self, submitter: Submitter, event: Event) -> None:
        """403 unless the submitter may write ``event``: a farmer for their own plots and lots, an officer for
        plots and lots of their อปท. Unknown plots and lots are left to the ledger's own 404."""
        if isinstance(event, Planting | Harvest):
            plot = self.plots.get(event.plot_id)
            if plot is not None and not _owns_plot(submitter, plot):
                raise Forbidden(f"plot {event.plot_id} is not yours to write for", code="not_your_plot")
        for code in lots_touched(event):
            lot = self.lots.get(code)
            if lot is None:
                continue
            if submitter.role == Role.OFFICER:
                allowed = lot.authority_id == submitter.authority_id
            else:
                allowed = self._farmer_owns_lineage(submitter, code)
            if not allowed:
                raise Forbidden(f"lot {code} is not yours to write for", code="not_your_lot")

    def _farmer_owns_lineage(self, submitter: Submitter, lot_code: str) -> bool:
        """A farmer's lot is one whose every origin plot is theirs (a merge with another farmer's produce is
        the packing house's or the officer's to write for)."""
        origins = 0
        for code in sorted(self._lineage(lot_code)):
            lot = self.lots.get(code)
            if lot is None or lot.plot_id is None:
                continue
            plot = self.plots_by_id.get(lot.plot_id)
            if plot is None or plot.farmer_id != submitter.farmer_id:
                return False
            origins += 1
        return origins > 0

    def _lineage(self, lot_code: str) -> set[str]:
        seen = {lot_code}
        todo = [lot_code]
        while todo:
            for parent in self.parents.get(todo.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    # --- idempotency -------------------------------------------------------------------------------------

    def _retry(self, event: Event, key: str | None, touched: tuple[str, ...]) -> Retry | None:
        """The stored event if this is a retry of it (same key, or the same client-made event id)."""
        if key:
            prior = self.by_key.get(key)
            if prior is not None:
                if prior.event_id != event.event_id:
                    raise Conflict(
                        "Idempotency-Key was already used for a different event", code="idempotency_conflict"
                    )
                return _same(prior, event, touched)
        prior = self.by_id.get(event.event_id)
        return _same(prior, event, touched) if prior is not None else None

    # --- the ledger's rules ------------------------------------------------------------------------------

    def _accept(
        self, event: Event, key: str | None, touched: tuple[str, ...], enforce_ownership: bool
    ) -> Accepted:
        new_lots = created_lots(event)
        for lot in new_lots:
            if lot in self.lots:
                raise InvalidEvent(f"lot {lot} already exists", code="lot_exists")
        gtins: dict[str, str] = {}
        for lot in touched:
            if lot in new_lots:
                continue
            existing = self.lots.get(lot)
            if existing is None:
                raise NotFound(f"unknown lot {lot}")
            if existing.gtin:
                gtins[lot] = existing.gtin

        created: list[LotFacts] = []
        if isinstance(event, Planting):
            plot = self._plot_of(event.plot_id, event.actor, enforce_ownership)
            if event.authority is not None and event.authority != plot.authority_code:
                raise InvalidEvent(
                    f"plot {event.plot_id} belongs to {plot.authority_code}, not {event.authority}",
                    code="authority_mismatch",
                )
            event = event.model_copy(update={"authority": plot.authority_code})
            c = crop(event.crop)
            created.append(
                LotFacts(event.lot_code, event.crop, c.name_th, c.name_en, None, plot.authority_id, plot.id)
            )
        elif isinstance(event, Harvest):
            lot_facts = self.lots[event.lot_code]
            plot = self._plot_of(event.plot_id, event.actor, enforce_ownership)
            if lot_facts.plot_id != plot.id:
                raise InvalidEvent(
                    f"lot {event.lot_code} was not planted on plot {event.plot_id}", code="plot_mismatch"
                )
            if lot_facts.crop != event.crop:
                raise InvalidEvent(
                    f"lot {event.lot_code} was planted as {lot_facts.crop}, not {event.crop}",
                    code="crop_mismatch",
                )
        elif isinstance(event, Packing):
            first = self.lots[event.inputs[0].lot_code]
            for out in event.outputs:
                if event.gtin:
                    gtins[out.lot_code] = event.gtin
                created.append(
                    LotFacts(
                        code=out.lot_code,
                        crop=first.crop,
                        product_th=first.product_th,
                        product_en=first.product_en,
                        gtin=event.gtin,
                        authority_id=first.authority_id,
                        plot_id=None,
                    )
                )

        # Applied to the running balance at once: a refusal further down puts the lots back (judge).
        checked = set(touched)
        if needs_balance(event) and self._before_recorded(event, touched):
            self._replay_in_time_order(event, checked)
            apply_event(self.balance, event, checked)  # the totals move on; the replay has judged the step
        else:
            problems = apply_event(self.balance, event, checked)
            if problems:
                raise InvalidEvent(problems[0].en, code="mass_balance")

        missing = [lot for lot in touched if lot not in new_lots and lot not in self.heads]
        if missing:
            raise InvalidEvent(f"lot has no history yet: {', '.join(missing)}", code="unknown_lot")
        # Lots packed by one event share it as their head: a merge of them names it once (prev never repeats).
        prev = tuple(dict.fromkeys(self.heads[lot][1] for lot in touched if lot not in new_lots))
        event = event.model_copy(update={"prev": prev})

        body = in_canonical_order(to_epcis(event, id_base=self.id_base, gtins=gtins))
        links = tuple(
            LotLink(lot, self.heads[lot][0] + 1 if lot in self.heads else 1, _role(event, lot, new_lots))
            for lot in touched
        )
        return Accepted(
            event=event,
            body=codec.dumps(body),
            hash=hash_hex(event_hash(body)),
            lots=touched,
            links=links,
            new_lots=tuple(created),
            idempotency_key=key,
        )

    # --- mass balance in event-time order --------------------------------------------------------------

    def _before_recorded(self, event: Event, touched: tuple[str, ...]) -> bool:
        """Whether a step already on one of ``touched`` is later in event time than ``event``. If none is,
        ``event`` comes last in verification's replay (an equal time is ordered after the step recorded
        first), so the lots' running totals are what that replay holds at its time."""
        for lot in touched:
            steps = self.timeline.get(lot)
            if steps and event.event_time < steps[-1][0]:
                return True
        return False

    def _replay_in_time_order(self, event: Event, checked: set[str]) -> None:
        """Refuse ``event`` (``mass_balance``) if replaying the ``checked`` lots in event-time order with it
        in its place, exactly as verification does (:func:`traceability.domain.lineage.check_mass_balance`),
        finds it short, or finds short a later step that was not short without it. A step that was short
        before (a ledger recorded before this rule) is not this event's doing, so it does not refuse it."""
        steps = sorted({step[1]: step for lot in checked for step in self.timeline.get(lot, ())}.values())
        before = [LedgerEntry("", step[2]) for step in steps]
        found = check_mass_balance([*before, LedgerEntry("", event)], checked)
        if not found:
            return
        mine = str(event.event_id)
        own = [f for f in found if f.event_id == mine]
        if own:
            raise InvalidEvent(_short_at_its_time(event, own[0]), code="mass_balance")
        known = {(f.event_id, f.lot_code) for f in check_mass_balance(before, checked)}
        for finding in found:
            if (finding.event_id, finding.lot_code) not in known:
                later = next(s[2] for s in steps if str(s[2].event_id) == finding.event_id)
                raise InvalidEvent(_leaves_later_short(event, later, finding), code="mass_balance")

    def _plot_of(self, plot_code: str, actor: str, enforce_ownership: bool) -> PlotFacts:
        """The plot, which a farmer may write events for only if it is theirs."""
        plot = self.plots.get(plot_code)
        if plot is None:
            raise NotFound(f"unknown plot {plot_code}")
        if enforce_ownership and plot.farmer_code != actor:
            raise Forbidden(f"plot {plot_code} does not belong to {actor}")
        return plot

    def _remember(self, accepted: Accepted) -> None:
        """Move the view on past an accepted item (its balance was applied when it was judged)."""
        event = accepted.event
        for link in accepted.links:
            self.heads[link.lot_code] = (link.seq, accepted.hash)
        for lot in accepted.new_lots:
            self.lots[lot.code] = lot
        if event.kind in BALANCE_KINDS:
            step = (event.event_time, self.recorded, event)
            self.recorded += 1
            for code in accepted.lots:
                insort(self.timeline[code], step)
        if isinstance(event, Packing):
            inputs = frozenset(i.lot_code for i in event.inputs)
            for out in event.outputs:
                self.parents[out.lot_code] = inputs
        prior = PriorEvent(event.event_id, accepted.hash, event.kind, accepted.body)
        self.by_id[event.event_id] = prior
        if accepted.idempotency_key:
            self.by_key[accepted.idempotency_key] = prior


def _short_at_its_time(event: Event, finding: Finding) -> str:
    if finding.lot_code is None:  # a packing's outputs over its inputs: short whatever its time
        return finding.en
    return (
        f"{finding.en} at its time, {event.event_time.isoformat()}: steps already recorded on the lot "
        "happened after it, and a lot's kilograms are checked in the order its steps happened"
    )


def _leaves_later_short(event: Event, later: Event, finding: Finding) -> str:
    _, name = event_name(event)
    _, later_name = event_name(later)
    return (
        f"This {name} at {event.event_time.isoformat()} comes before steps already recorded on lot "
        f"{finding.lot_code}, and a lot's kilograms are checked in the order its steps happened: with it, "
        f"the {later_name} at {later.event_time.isoformat()} comes up short ({finding.en})"
    )


def _role(event: Event, lot: str, new_lots: tuple[str, ...]) -> LotRole:
    if lot in new_lots:
        return LotRole.OUT
    return LotRole.IN if isinstance(event, Packing) else LotRole.SUBJECT


def _owns_plot(submitter: Submitter, plot: PlotFacts) -> bool:
    if submitter.role == Role.OFFICER:
        return plot.authority_id == submitter.authority_id
    return plot.farmer_id == submitter.farmer_id


def _same(prior: PriorEvent, event: Event, touched: tuple[str, ...]) -> Retry:
    """The stored event, if ``event`` says the same thing; a 409 if it is another event under the same id."""
    stored = from_epcis(codec.loads(prior.body))
    filled: dict[str, object] = {"prev": ()}
    if isinstance(event, Planting) and event.authority is None:
        filled["authority"] = None  # filled in from the plot when it was first recorded
    if stored.model_copy(update=filled) != event.model_copy(update={"prev": ()}):
        raise Conflict(
            f"event {event.event_id} was already recorded with different content", code="event_conflict"
        )
    return Retry(prior.event_id, prior.hash, prior.kind, touched)
