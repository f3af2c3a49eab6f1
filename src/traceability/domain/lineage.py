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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

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


def check_chain_links(entries: Sequence[LedgerEntry], lots: Iterable[str]) -> list[Finding]:
    """Every event on a lot, except the one that created it, must link to an earlier event on that lot."""
    findings: list[Finding] = []
    for lot in sorted(lots):
        on_lot = [e for e in entries if lot in lots_touched(e.event)]
        by_hash = {e.hash: e for e in on_lot}
        creators = [e for e in on_lot if lot in created_lots(e.event)]
        if not creators:
            findings.append(
                _f(
                    Code.LOT_ORIGIN_MISSING,
                    Severity.ERROR,
                    f"ไม่พบเหตุการณ์ที่สร้างล็อต {lot} (การปลูกหรือการบรรจุ)",
                    f"No event creates lot {lot} (planting or packing)",
                    lot_code=lot,
                )
            )
        elif len(creators) > 1:
            findings.append(
                _f(
                    Code.LOT_CREATED_TWICE,
                    Severity.ERROR,
                    f"ล็อต {lot} ถูกสร้างมากกว่าหนึ่งครั้ง",
                    f"Lot {lot} is created by more than one event",
                    lot_code=lot,
                    events=[str(c.event.event_id) for c in creators],
                )
            )
        successors: dict[str, list[LedgerEntry]] = defaultdict(list)
        for e in on_lot:
            if lot in created_lots(e.event):
                continue
            preds = [h for h in e.event.prev if h in by_hash]
            if not preds:
                findings.append(
                    _f(
                        Code.BROKEN_PREV_LINK,
                        Severity.ERROR,
                        f"ห่วงโซ่แฮชของล็อต {lot} ขาด: เหตุการณ์ {e.event.event_id} อ้างถึงเหตุการณ์ก่อนหน้าที่ไม่มีอยู่",
                        f"Hash chain of lot {lot} is broken: event {e.event.event_id} "
                        "links to a previous event that is missing",
                        event_id=e.event.event_id,
                        lot_code=lot,
                        prev=list(e.event.prev),
                    )
                )
                continue
            for p in preds:
                successors[p].append(e)
        for pred_hash, succ in successors.items():
            if len(succ) > 1:
                findings.append(
                    _f(
                        Code.FORKED_CHAIN,
                        Severity.ERROR,
                        f"ห่วงโซ่แฮชของล็อต {lot} แตกเป็นสองสาย",
                        f"Hash chain of lot {lot} forks: two events follow the same event",
                        lot_code=lot,
                        prev=pred_hash,
                        events=[str(s.event.event_id) for s in succ],
                    )
                )
    return findings


@dataclass
class Balance:
    """Kilograms held and in transit per lot, as events are applied in order."""

    held: dict[str, Decimal]
    in_transit: dict[str, Decimal]

    @classmethod
    def empty(cls) -> Balance:
        return cls(defaultdict(Decimal), defaultdict(Decimal))


def apply_event(balance: Balance, event: Event, known_lots: set[str] | None = None) -> list[Finding]:
    """Apply one event to ``balance``; return what does not add up. ``known_lots`` limits the check to the
    lots whose full history is in view (a shipment may carry other lots whose history we don't have)."""
    findings: list[Finding] = []
    eid = event.event_id

    def take(lot: str, kg: Decimal, what_th: str, what_en: str) -> None:
        if known_lots is not None and lot not in known_lots:
            return
        have = balance.held[lot]
        if kg > have:
            findings.append(
                _f(
                    Code.MASS_BALANCE,
                    Severity.ERROR,
                    f"ปริมาณไม่สมดุล: {what_th} {kg} กก. จากล็อต {lot} ซึ่งมีเพียง {have} กก.",
                    f"Mass balance broken: {what_en} {kg} kg from lot {lot}, which holds only {have} kg",
                    event_id=eid,
                    lot_code=lot,
                    requested_kg=str(kg),
                    available_kg=str(have),
                )
            )
        balance.held[lot] = have - kg

    if isinstance(event, Harvest):
        balance.held[event.lot_code] += event.quantity.kg()
    elif isinstance(event, Grading | Cooling):
        lot = event.lot_code
        kg = event.quantity.kg()
        have = balance.held[lot]
        what_th, what_en = ("ลดอุณหภูมิ", "cooled") if isinstance(event, Cooling) else ("คัดเกรด", "graded")
        if (known_lots is None or lot in known_lots) and kg > have:
            findings.append(
                _f(
                    Code.MASS_BALANCE,
                    Severity.ERROR,
                    f"ปริมาณไม่สมดุล: {what_th} {kg} กก. แต่ล็อต {lot} มีเพียง {have} กก.",
                    f"Mass balance broken: {what_en} {kg} kg but lot {lot} holds only {have} kg",
                    event_id=eid,
                    lot_code=lot,
                    requested_kg=str(kg),
                    available_kg=str(have),
                )
            )
        if isinstance(event, Grading) and event.disposition == "non_conformant":
            balance.held[lot] = have - kg
    elif isinstance(event, Packing):
        total_in = sum((i.quantity.kg() for i in event.inputs), Decimal(0))
        total_out = sum((o.quantity.kg() for o in event.outputs), Decimal(0))
        for i in event.inputs:
            take(i.lot_code, i.quantity.kg(), "นำไปบรรจุ", "packed")
        if total_out > total_in:
            findings.append(
                _f(
                    Code.MASS_BALANCE,
                    Severity.ERROR,
                    f"ปริมาณไม่สมดุล: บรรจุได้ {total_out} กก. มากกว่าวัตถุดิบ {total_in} กก.",
                    f"Mass balance broken: packing output {total_out} kg exceeds its input {total_in} kg",
                    event_id=eid,
                    input_kg=str(total_in),
                    output_kg=str(total_out),
                )
            )
        for o in event.outputs:
            balance.held[o.lot_code] += o.quantity.kg()
    elif isinstance(event, Transport):
        for item in event.items:
            kg = item.quantity.kg()
            lot = item.lot_code
            if event.leg == "ship":
                take(lot, kg, "ส่งออก", "shipped")
                balance.in_transit[lot] += kg
            else:
                moving = balance.in_transit[lot]
                if (known_lots is None or lot in known_lots) and kg > moving:
                    findings.append(
                        _f(
                            Code.MASS_BALANCE,
                            Severity.ERROR,
                            f"ปริมาณไม่สมดุล: รับสินค้า {kg} กก. ของล็อต {lot} แต่มีการส่งมาเพียง {moving} กก.",
                            f"Mass balance broken: received {kg} kg of lot {lot} "
                            f"but only {moving} kg was shipped",
                            event_id=eid,
                            lot_code=lot,
                            received_kg=str(kg),
                            in_transit_kg=str(moving),
                        )
                    )
                balance.in_transit[lot] = moving - kg
                balance.held[lot] += kg
    return findings


def check_mass_balance(entries: Sequence[LedgerEntry], lots: set[str]) -> list[Finding]:
    balance = Balance.empty()
    findings: list[Finding] = []
    for entry in time_ordered(entries):
        findings += apply_event(balance, entry.event, lots)
    return findings


def check_yield(entries: Sequence[LedgerEntry], tolerance: Decimal = Decimal("1.5")) -> list[Finding]:
    """Flag harvests above what the planted area could plausibly give, and harvests off another plot."""
    findings: list[Finding] = []
    plantings = {e.event.lot_code: e.event for e in entries if isinstance(e.event, Planting)}
    harvested: dict[str, Decimal] = defaultdict(Decimal)
    for entry in time_ordered(entries):
        ev = entry.event
        if not isinstance(ev, Harvest):
            continue
        planting = plantings.get(ev.lot_code)
        if planting is None:
            continue
        if ev.plot_id != planting.plot_id:
            findings.append(
                _f(
                    Code.HARVEST_PLOT_MISMATCH,
                    Severity.ERROR,
                    f"เก็บเกี่ยวล็อต {ev.lot_code} จากแปลง {ev.plot_id} แต่ปลูกที่แปลง {planting.plot_id}",
                    f"Lot {ev.lot_code} was harvested on plot {ev.plot_id} but planted on {planting.plot_id}",
                    event_id=ev.event_id,
                    lot_code=ev.lot_code,
                )
            )
        if ev.crop != planting.crop:
            findings.append(
                _f(
                    Code.HARVEST_CROP_MISMATCH,
                    Severity.ERROR,
                    f"เก็บเกี่ยวล็อต {ev.lot_code} เป็น {ev.crop} แต่ปลูก {planting.crop}",
                    f"Lot {ev.lot_code} was harvested as {ev.crop} but planted as {planting.crop}",
                    event_id=ev.event_id,
                    lot_code=ev.lot_code,
                )
            )
        harvested[ev.lot_code] += ev.quantity.kg()
        ceiling = MAX_YIELD_KG_PER_RAI.get(planting.crop)
        if ceiling is None:
            continue
        limit = ceiling * planting.area_rai * tolerance
        if harvested[ev.lot_code] > limit:
            findings.append(
                _f(
                    Code.IMPLAUSIBLE_YIELD,
                    Severity.WARNING,
                    f"ผลผลิตล็อต {ev.lot_code} รวม {harvested[ev.lot_code]} กก. สูงเกินกว่าที่แปลง "
                    f"{planting.area_rai} ไร่จะให้ได้ (ไม่เกิน {limit:.0f} กก.) อาจมีการสวมสิทธิ์",
                    f"Lot {ev.lot_code} harvest total {harvested[ev.lot_code]} kg is above what "
                    f"{planting.area_rai} rai can plausibly yield ({limit:.0f} kg): possible origin fraud",
                    event_id=ev.event_id,
                    lot_code=ev.lot_code,
                    harvested_kg=str(harvested[ev.lot_code]),
                    plausible_kg=str(limit),
                )
            )
    return findings


def certifications_and_revocations(
    entries: Sequence[LedgerEntry],
) -> tuple[list[Certification], dict[str, Revocation]]:
    certs = [e.event for e in entries if isinstance(e.event, Certification)]
    revs = {e.event.cert_id: e.event for e in entries if isinstance(e.event, Revocation)}
    return certs, revs
