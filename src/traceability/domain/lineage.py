"""Lineage, hash-chain links, mass balance and plausible yield over a set of events. Pure code.

Each lot is a hash chain: an event that touches a lot it did not create names, in ``prev``, the hash of the
lot's previous event. Packing (a transformation) joins chains, so a lot's lineage is a DAG back to planting.
Mass balance follows quantities in kilograms through every event, in event-time order:

* harvest adds to the lot;
* cooling and a ``conformant`` grading observe part of the lot: no more than it holds;
* a ``non_conformant`` grading (rejected produce) takes its quantity out of the lot;
* packing takes each input quantity from its input lot and creates the outputs, whose total may not exceed
  the inputs' total (packing loses weight, it never gains it);
* shipping moves a quantity from the lot into transit; receiving may take back no more than is in transit.

More out than in is how laundered produce (สวมสิทธิ์) shows up, so it is an error, not a warning.

Each check returns its findings and, alongside them, its evidence (``domain.evidence``): what it looked at,
computed in the same pass, so that a verdict can show an importer every link, every kilogram and every
harvest per rai without checking twice. The ``check_*`` functions return the findings alone.

Finding texts are for people who are not engineers (a buyer, an importer's compliance officer, an อปท.
officer): they say what happened to which lot in kilograms, in Thai and in English.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Generic, TypeVar

from traceability.domain.events import (
    Certification,
    Cooling,
    Event,
    Grading,
    Harvest,
    Packing,
    Planting,
    Revocation,
    Transport,
    lots_touched,
)
from traceability.domain.evidence import LotKg, MassBalanceEntry, MovementKind, PrevLink, YieldEvidence
from traceability.domain.findings import Code, Finding, Severity

# Highest plausible harvest per rai (1 rai = 1,600 m²) in kilograms, by crop code. Thai averages are far lower
# (Hom Mali rice in Surin ≈ 350–450 kg/rai; watermelon ≈ 3–4 t/rai); these ceilings leave room for a very good
# season, and the settings' tolerance multiplies them before a harvest is flagged.
MAX_YIELD_KG_PER_RAI: Mapping[str, Decimal] = {
    "hom-mali-105": Decimal("700"),
    "rice": Decimal("900"),
    "organic-veg": Decimal("3000"),
    "vegetable": Decimal("3000"),
    "watermelon": Decimal("6000"),
}

KG_PER_RAI_PLACES = Decimal("0.01")

# What each kind of event is called in a sentence ("the shipment of lot X"): Thai, English.
_EVENT_NAMES: Mapping[str, tuple[str, str]] = {
    "planting": ("การปลูก", "planting"),
    "harvest": ("การเก็บเกี่ยว", "harvest"),
    "cooling": ("การลดอุณหภูมิ", "cooling"),
    "grading": ("การคัดเกรด", "grading"),
    "packing": ("การบรรจุ", "packing"),
    "ship": ("การส่งสินค้า", "shipment"),
    "receive": ("การรับสินค้า", "receipt"),
    "certification": ("การรับรอง", "certification"),
    "revocation": ("การเพิกถอนใบรับรอง", "revocation of a certification"),
}


def event_name(event: Event) -> tuple[str, str]:
    """The event's kind as a person says it, in Thai and English: ``("การส่งสินค้า", "shipment")``."""
    key = event.leg if isinstance(event, Transport) else event.kind
    return _EVENT_NAMES[key]


def kg_words(kg: Decimal) -> str:
    """Kilograms as people write them: ``1,190``, ``2.5`` (never negative: an overdrawn lot has 0 left)."""
    return f"{max(kg, Decimal(0)).normalize():,f}"


_T = TypeVar("_T")


@dataclass(frozen=True)
class Checked(Generic[_T]):
    """A check's findings (what is wrong) and its evidence (what it looked at)."""

    findings: list[Finding] = field(default_factory=list)
    evidence: list[_T] = field(default_factory=list)


@dataclass(frozen=True)
class LedgerEntry:
    """One event with the hash it is known by (0x hex of its CBV 2.0 Event Hash ID)."""

    hash: str
    event: Event


def created_lots(event: Event) -> tuple[str, ...]:
    """Lots an event brings into existence: planting its lot, packing its outputs."""
    if isinstance(event, Planting):
        return (event.lot_code,)
    if isinstance(event, Packing):
        return tuple(o.lot_code for o in event.outputs)
    return ()


def parents(entries: Iterable[LedgerEntry]) -> dict[str, set[str]]:
    """lot → the lots it was packed from."""
    result: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        if isinstance(entry.event, Packing):
            for out in entry.event.outputs:
                result[out.lot_code].update(i.lot_code for i in entry.event.inputs)
    return result


def ancestry(lot_code: str, entries: Iterable[LedgerEntry]) -> set[str]:
    """The lot and every lot it descends from."""
    up = parents(entries)
    seen = {lot_code}
    todo = [lot_code]
    while todo:
        for p in up.get(todo.pop(), ()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


def time_ordered(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    # The hash chain fixes order within a lot; event time (stable on ties) orders across lots.
    return sorted(entries, key=lambda e: e.event.event_time)


def _f(code: Code, sev: Severity, th: str, en: str, **kw: object) -> Finding:
    detail = {k: v for k, v in kw.items() if k not in ("event_id", "lot_code")}
    event_id = kw.get("event_id")
    lot_code = kw.get("lot_code")
    return Finding(
        code,
        sev,
        th,
        en,
        event_id=str(event_id) if event_id is not None else None,
        lot_code=str(lot_code) if lot_code is not None else None,
        detail=detail,
    )


# --- hash-chain links --------------------------------------------------------------------------------------


def chain_links(entries: Sequence[LedgerEntry], lots: Iterable[str]) -> Checked[PrevLink]:
    """Every event on a lot, except the one that created it, must link to an earlier event on that lot.

    Evidence: for every event and every lot of ``lots`` it continues, the link it makes (the hash named, found
    among the lot's events, or none); then every hash it names that is no event of ``entries``."""
    findings: list[Finding] = []
    links: dict[str, list[PrevLink]] = defaultdict(list)
    linked: dict[str, set[str]] = defaultdict(set)
    for lot in sorted(lots):
        on_lot = [e for e in entries if lot in lots_touched(e.event)]
        by_hash = {e.hash: e for e in on_lot}
        creators = [e for e in on_lot if lot in created_lots(e.event)]
        if not creators:
            findings.append(
                _f(
                    Code.LOT_ORIGIN_MISSING,
                    Severity.ERROR,
                    f"ไม่พบบันทึกการปลูกหรือการบรรจุที่เป็นจุดเริ่มต้นของล็อต {lot} จึงบอกไม่ได้ว่าสินค้ามาจากไหน",
                    f"There is no record of where lot {lot} began (no planting or packing record), "
                    "so its origin cannot be shown",
                    lot_code=lot,
                )
            )
        elif len(creators) > 1:
            findings.append(
                _f(
                    Code.LOT_CREATED_TWICE,
                    Severity.ERROR,
                    f"ล็อต {lot} มีบันทึกจุดเริ่มต้น (ปลูกหรือบรรจุ) มากกว่าหนึ่งรายการ ซึ่งจริงได้เพียงรายการเดียว",
                    f"Lot {lot} has more than one starting record (planted or packed more than once); "
                    "only one of them can be true",
                    lot_code=lot,
                    events=[str(c.event.event_id) for c in creators],
                )
            )
        successors: dict[str, list[LedgerEntry]] = defaultdict(list)
        for e in on_lot:
            if lot in created_lots(e.event):
                continue
            eid = str(e.event.event_id)
            preds = [h for h in e.event.prev if h in by_hash]
            if not preds:
                links[eid].append(PrevLink(eid, lot, None, False))
                name_th, name_en = event_name(e.event)
                findings.append(
                    _f(
                        Code.BROKEN_PREV_LINK,
                        Severity.ERROR,
                        f"ประวัติของล็อต {lot} ขาดตอน: บันทึก{name_th} ({e.event.event_id}) อ้างถึงบันทึกก่อนหน้า"
                        "ที่ไม่มีอยู่ในประวัติ อาจมีบันทึกถูกลบหรือถูกแก้ไข",
                        f"The history of lot {lot} has a gap: the {name_en} record {e.event.event_id} "
                        "points back to an earlier record that is not there; a record may have been removed "
                        "or changed",
                        event_id=e.event.event_id,
                        lot_code=lot,
                        prev=list(e.event.prev),
                    )
                )
                continue
            for p in preds:
                links[eid].append(PrevLink(eid, lot, p, True))
                linked[eid].add(p)
                successors[p].append(e)
        for pred_hash, succ in successors.items():
            if len(succ) > 1:
                findings.append(
                    _f(
                        Code.FORKED_CHAIN,
                        Severity.ERROR,
                        f"ประวัติของล็อต {lot} แยกเป็นสองทาง: มีบันทึก {len(succ)} รายการอ้างว่าต่อจากบันทึกเดียวกัน "
                        "อาจมีการแทรกบันทึกเข้ามาภายหลัง",
                        f"The history of lot {lot} splits: {len(succ)} records each claim to come right "
                        "after the same earlier record; one may have been slipped in later",
                        lot_code=lot,
                        prev=pred_hash,
                        events=[str(s.event.event_id) for s in succ],
                    )
                )
    evidence: list[PrevLink] = []
    for e in entries:
        eid = str(e.event.event_id)
        evidence += links.get(eid, [])
        evidence += [PrevLink(eid, None, h, False) for h in e.event.prev if h not in linked[eid]]
    return Checked(findings, evidence)


def check_chain_links(entries: Sequence[LedgerEntry], lots: Iterable[str]) -> list[Finding]:
    """The findings of :func:`chain_links`."""
    return chain_links(entries, lots).findings


# --- mass balance ------------------------------------------------------------------------------------------


@dataclass
class Balance:
    """Kilograms held and in transit per lot, as events are applied in order."""

    held: dict[str, Decimal]
    in_transit: dict[str, Decimal]

    @classmethod
    def empty(cls) -> Balance:
        return cls(defaultdict(Decimal), defaultdict(Decimal))


def _overdrawn(event: Event, lot: str, kg: Decimal, have: Decimal, **detail: object) -> Finding:
    """What was overdrawn, in numbers: 'The shipment of lot X sends 1,500 kg, but only 1,190 kg were left'.
    The same text refuses such an event when it is recorded, so it states the numbers and accuses no one
    (docs/verification.md says what more out than in can mean)."""
    name_th, name_en = event_name(event)
    n, left = kg_words(kg), kg_words(have)
    if isinstance(event, Transport) and event.leg == "receive":
        th = f"{name_th}ล็อต {lot} รับเข้า {n} กก. แต่มีการส่งมาเพียง {left} กก."
        en = f"The {name_en} of lot {lot} takes in {n} kg, but only {left} kg were shipped"
    else:
        verb_th, verb_en = {
            "packing": ("ใช้", "uses"),
            "ship": ("ส่งออก", "sends"),
            "grading": ("คัด", "sorts"),
            "cooling": ("ครอบคลุม", "covers"),
        }[event.leg if isinstance(event, Transport) else event.kind]
        th = f"{name_th}ล็อต {lot} {verb_th} {n} กก. แต่ล็อตนี้เหลืออยู่เพียง {left} กก."
        en = f"The {name_en} of lot {lot} {verb_en} {n} kg, but only {left} kg were left"
    return _f(
        Code.MASS_BALANCE,
        Severity.ERROR,
        th,
        en,
        event_id=event.event_id,
        lot_code=lot,
        **detail,
    )


def apply_event_evidence(
    balance: Balance, event: Event, known_lots: set[str] | None = None
) -> tuple[list[Finding], MassBalanceEntry | None]:
    """:func:`apply_event` with its evidence: the event's movement of kilograms (None for events that move
    none: planting, certification, revocation)."""
    findings: list[Finding] = []
    eid = event.event_id
    inputs: list[LotKg] = []
    outputs: list[LotKg] = []

    def checked(lot: str) -> bool:
        return known_lots is None or lot in known_lots

    def take(lot: str, kg: Decimal) -> None:
        if not checked(lot):
            inputs.append(LotKg(lot, kg, None, False))
            return
        have = balance.held[lot]
        inputs.append(LotKg(lot, kg, have))
        if kg > have:
            findings.append(_overdrawn(event, lot, kg, have, requested_kg=str(kg), available_kg=str(have)))
        balance.held[lot] = have - kg

    kind: MovementKind
    if isinstance(event, Harvest):
        kind = MovementKind.HARVEST
        balance.held[event.lot_code] += event.quantity.kg()
        outputs.append(LotKg(event.lot_code, event.quantity.kg()))
    elif isinstance(event, Grading | Cooling):
        lot = event.lot_code
        kg = event.quantity.kg()
        have = balance.held[lot]
        rejected = isinstance(event, Grading) and event.disposition == "non_conformant"
        if isinstance(event, Cooling):
            kind = MovementKind.COOLING
        else:
            kind = MovementKind.GRADING_REJECT if rejected else MovementKind.GRADING
        inputs.append(LotKg(lot, kg, have if checked(lot) else None, checked(lot)))
        if checked(lot) and kg > have:
            findings.append(_overdrawn(event, lot, kg, have, requested_kg=str(kg), available_kg=str(have)))
        if rejected:
            balance.held[lot] = have - kg
    elif isinstance(event, Packing):
        kind = MovementKind.TRANSFORMATION
        total_in = sum((i.quantity.kg() for i in event.inputs), Decimal(0))
        total_out = sum((o.quantity.kg() for o in event.outputs), Decimal(0))
        for i in event.inputs:
            take(i.lot_code, i.quantity.kg())
        if total_out > total_in:
            made = ", ".join(o.lot_code for o in event.outputs)
            n_out, n_in = kg_words(total_out), kg_words(total_in)
            findings.append(
                _f(
                    Code.MASS_BALANCE,
                    Severity.ERROR,
                    f"การบรรจุได้สินค้า {n_out} กก. (ล็อต {made}) จากวัตถุดิบเพียง {n_in} กก. "
                    "การบรรจุทำให้น้ำหนักลดลงได้แต่เพิ่มไม่ได้ อาจมีสินค้าจากที่อื่นปะปนเข้ามา",
                    f"The packing makes {n_out} kg (lot {made}) from only {n_in} kg put in; packing can lose "
                    "weight but never gain it, so produce from elsewhere may have been added",
                    event_id=eid,
                    input_kg=str(total_in),
                    output_kg=str(total_out),
                )
            )
        for o in event.outputs:
            balance.held[o.lot_code] += o.quantity.kg()
            outputs.append(LotKg(o.lot_code, o.quantity.kg()))
    elif isinstance(event, Transport):
        kind = MovementKind.SHIPPING if event.leg == "ship" else MovementKind.RECEIVING
        for item in event.items:
            kg = item.quantity.kg()
            lot = item.lot_code
            if event.leg == "ship":
                take(lot, kg)
                balance.in_transit[lot] += kg
            else:
                moving = balance.in_transit[lot]
                inputs.append(LotKg(lot, kg, moving if checked(lot) else None, checked(lot)))
                if checked(lot) and kg > moving:
                    findings.append(
                        _overdrawn(event, lot, kg, moving, received_kg=str(kg), in_transit_kg=str(moving))
                    )
                balance.in_transit[lot] = moving - kg
                balance.held[lot] += kg
                outputs.append(LotKg(lot, kg))
    else:
        return findings, None
    entry = MassBalanceEntry(str(eid), kind, event.event_time, tuple(inputs), tuple(outputs), not findings)
    return findings, entry


def apply_event(balance: Balance, event: Event, known_lots: set[str] | None = None) -> list[Finding]:
    """Apply one event to ``balance``; return what does not add up. ``known_lots`` limits the check to the
    lots whose full history is in view (a shipment may carry other lots whose history we don't have)."""
    return apply_event_evidence(balance, event, known_lots)[0]


def mass_balance(entries: Sequence[LedgerEntry], lots: set[str]) -> Checked[MassBalanceEntry]:
    """Mass balance over ``entries`` in event-time order, with every movement of kilograms as evidence."""
    balance = Balance.empty()
    result: Checked[MassBalanceEntry] = Checked()
    for entry in time_ordered(entries):
        found, moved = apply_event_evidence(balance, entry.event, lots)
        result.findings.extend(found)
        if moved is not None:
            result.evidence.append(moved)
    return result


def check_mass_balance(entries: Sequence[LedgerEntry], lots: set[str]) -> list[Finding]:
    """The findings of :func:`mass_balance`."""
    return mass_balance(entries, lots).findings


# --- plausible yield ---------------------------------------------------------------------------------------


def plausible_yield(
    entries: Sequence[LedgerEntry], tolerance: Decimal = Decimal("1.5")
) -> Checked[YieldEvidence]:
    """Flag harvests above what the planted area could plausibly give, and harvests off another plot or of
    another crop than planted. Evidence: every harvest, its lot's harvests so far per rai and the ceiling."""
    findings: list[Finding] = []
    evidence: list[YieldEvidence] = []
    plantings = {e.event.lot_code: e.event for e in entries if isinstance(e.event, Planting)}
    harvested: dict[str, Decimal] = defaultdict(Decimal)
    for entry in time_ordered(entries):
        ev = entry.event
        if not isinstance(ev, Harvest):
            continue
        harvested[ev.lot_code] += ev.quantity.kg()
        total = harvested[ev.lot_code]
        planting = plantings.get(ev.lot_code)
        if planting is None:
            evidence.append(
                YieldEvidence(
                    str(ev.event_id),
                    ev.lot_code,
                    ev.plot_id,
                    ev.crop,
                    ev.quantity.kg(),
                    total,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                )  # fmt: skip
            )
            continue
        before = len(findings)
        if ev.plot_id != planting.plot_id:
            findings.append(
                _f(
                    Code.HARVEST_PLOT_MISMATCH,
                    Severity.ERROR,
                    f"ล็อต {ev.lot_code} ปลูกที่แปลง {planting.plot_id} แต่บันทึกว่าเก็บเกี่ยวจากแปลง {ev.plot_id} "
                    "ผลผลิตอาจมาจากแปลงอื่น",
                    f"Lot {ev.lot_code} was planted on plot {planting.plot_id} but recorded as harvested on "
                    f"plot {ev.plot_id}: the produce may come from another field",
                    event_id=ev.event_id,
                    lot_code=ev.lot_code,
                )
            )
        if ev.crop != planting.crop:
            findings.append(
                _f(
                    Code.HARVEST_CROP_MISMATCH,
                    Severity.ERROR,
                    f"ล็อต {ev.lot_code} ปลูก {planting.crop} แต่บันทึกว่าเก็บเกี่ยวได้ {ev.crop} ผลผลิตอาจมาจากแปลงอื่น",
                    f"Lot {ev.lot_code} was planted as {planting.crop} but recorded as harvested as "
                    f"{ev.crop}: the produce may come from another field",
                    event_id=ev.event_id,
                    lot_code=ev.lot_code,
                )
            )
        # rounded up, so that a yield above the ceiling never shows as equal to it
        per_rai = (total / planting.area_rai).quantize(KG_PER_RAI_PLACES, rounding=ROUND_CEILING)
        crop_max = MAX_YIELD_KG_PER_RAI.get(planting.crop)
        ceiling = crop_max * tolerance if crop_max is not None else None
        if crop_max is not None and ceiling is not None:
            limit = crop_max * planting.area_rai * tolerance
            if total > limit:
                got, rai, each, most = (kg_words(v) for v in (total, planting.area_rai, per_rai, ceiling))
                findings.append(
                    _f(
                        Code.IMPLAUSIBLE_YIELD,
                        Severity.WARNING,
                        f"ล็อต {ev.lot_code} เก็บเกี่ยวรวม {got} กก. จากพื้นที่ {rai} ไร่ (ไร่ละ {each} กก.) "
                        f"มากกว่าที่พืชนี้ ({planting.crop}) ให้ผลผลิตได้จริง (ไม่เกินไร่ละ {most} กก. "
                        f"หรือรวม {limit:,.0f} กก.) อาจมีผลผลิตจากแปลงอื่นมาสวมสิทธิ์",
                        f"Lot {ev.lot_code}: {got} kg harvested from {rai} rai ({each} kg per rai), more "
                        f"than {planting.crop} can plausibly give (at most {most} kg per rai, "
                        f"{limit:,.0f} kg in all); produce from other farms may have been passed off as "
                        "this lot",
                        event_id=ev.event_id,
                        lot_code=ev.lot_code,
                        harvested_kg=str(total),
                        plausible_kg=str(limit),
                    )
                )
        ok: bool | None = len(findings) == before
        if ok and ceiling is None:
            ok = None  # nothing to judge the quantity by
        evidence.append(
            YieldEvidence(
                str(ev.event_id),
                ev.lot_code,
                ev.plot_id,
                ev.crop,
                ev.quantity.kg(),
                total,
                planting.area_rai,
                planting.plot_id,
                planting.crop,
                per_rai,
                ceiling,
                ok,
            )  # fmt: skip
        )
    return Checked(findings, evidence)


def check_yield(entries: Sequence[LedgerEntry], tolerance: Decimal = Decimal("1.5")) -> list[Finding]:
    """The findings of :func:`plausible_yield`."""
    return plausible_yield(entries, tolerance).findings


def certifications_and_revocations(
    entries: Sequence[LedgerEntry],
) -> tuple[list[Certification], dict[str, Revocation]]:
    certs = [e.event for e in entries if isinstance(e.event, Certification)]
    revs = {e.event.cert_id: e.event for e in entries if isinstance(e.event, Revocation)}
    return certs, revs
