"""Hash-chain links, mass balance and plausible yield over plain events (no database, no chain)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from traceability.domain.events import (
    Cooling,
    Grading,
    Harvest,
    LotQuantity,
    Packing,
    Place,
    Planting,
    Quantity,
    Transport,
)
from traceability.domain.lineage import (
    LedgerEntry,
    ancestry,
    check_chain_links,
    check_mass_balance,
    check_yield,
)

T0 = datetime(2026, 6, 1, 8, tzinfo=UTC)


def h(n: int) -> str:
    return "0x" + f"{n:064x}"


def common(n: int, prev: tuple[str, ...] = ()) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "actor": "F-0001",
        "place": Place(id="PLOT-1"),
        "event_time": T0 + timedelta(days=n),
        "prev": prev,
    }


def kg(v: str) -> Quantity:
    return Quantity(value=Decimal(v))


def lq(lot: str, v: str) -> LotQuantity:
    return LotQuantity(lot_code=lot, quantity=kg(v))


def ledger() -> list[LedgerEntry]:
    """Two plantings merged into one lot, shipped and received: each event hash is h(index)."""
    events = [
        Planting(
            kind="planting",
            lot_code="LOT-A1",
            plot_id="PLOT-1",
            crop="hom-mali-105",
            area_rai=Decimal("8"),
            **common(0),
        ),
        Planting(
            kind="planting",
            lot_code="LOT-B1",
            plot_id="PLOT-2",
            crop="hom-mali-105",
            area_rai=Decimal("5"),
            **common(1),
        ),
        Harvest(
            kind="harvest",
            lot_code="LOT-A1",
            plot_id="PLOT-1",
            crop="hom-mali-105",
            quantity=kg("3000"),
            **common(2, (h(0),)),
        ),
        Harvest(
            kind="harvest",
            lot_code="LOT-B1",
            plot_id="PLOT-2",
            crop="hom-mali-105",
            quantity=kg("2000"),
            **common(3, (h(1),)),
        ),
        Grading(
            kind="grading",
            lot_code="LOT-A1",
            grade="ตกเกรด ความชื้นสูง",
            quantity=kg("100"),
            disposition="non_conformant",
            **common(4, (h(2),)),
        ),
        Packing(
            kind="packing",
            inputs=(lq("LOT-A1", "2900"), lq("LOT-B1", "2000")),
            outputs=(lq("LOT-M1", "4800"),),
            **common(5, (h(4), h(3))),
        ),
        Transport(
            kind="transport",
            leg="ship",
            items=(lq("LOT-M1", "4800"),),
            source="MILL-1",
            destination="PORT-LCB",
            **common(6, (h(5),)),
        ),
        Transport(
            kind="transport",
            leg="receive",
            items=(lq("LOT-M1", "4800"),),
            source="MILL-1",
            destination="PORT-LCB",
            **common(7, (h(6),)),
        ),
    ]
    return [LedgerEntry(h(i), e) for i, e in enumerate(events)]


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_a_consistent_ledger_has_no_findings():
    entries = ledger()
    lots = ancestry("LOT-M1", entries)
    assert lots == {"LOT-M1", "LOT-A1", "LOT-B1"}
    assert check_chain_links(entries, lots) == []
    assert check_mass_balance(entries, lots) == []
    assert check_yield(entries) == []


def test_a_missing_event_breaks_the_chain_of_the_lot_it_was_on():
    entries = [e for e in ledger() if e.hash != h(4)]  # the grading of LOT-A1 is gone
    findings = check_chain_links(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    assert codes(findings) == ["broken_prev_link"]
    assert findings[0].lot_code == "LOT-A1" and findings[0].event_id == str(entries[4].event.event_id)


def test_two_events_after_the_same_one_fork_the_chain():
    entries = ledger()
    extra = Grading(
        kind="grading",
        lot_code="LOT-B1",
        grade="B",
        quantity=kg("10"),
        disposition="conformant",
        **common(4, (h(3),)),
    )  # follows the harvest, as the packing does
    findings = check_chain_links([*entries, LedgerEntry(h(99), extra)], {"LOT-B1"})
    assert codes(findings) == ["forked_chain"]


def test_a_lot_without_its_planting_has_no_origin():
    entries = [e for e in ledger() if e.hash != h(1)]
    assert "lot_origin_missing" in codes(check_chain_links(entries, {"LOT-B1"}))


def test_receiving_more_than_was_shipped_is_a_mass_balance_error():
    entries = ledger()
    last = entries[-1].event
    assert isinstance(last, Transport)
    entries[-1] = LedgerEntry(h(7), last.model_copy(update={"items": (lq("LOT-M1", "4801"),)}))
    findings = check_mass_balance(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    assert codes(findings) == ["mass_balance"]
    assert findings[0].detail["received_kg"] == "4801"


def test_packing_more_than_its_inputs_is_a_mass_balance_error():
    entries = ledger()
    pack = entries[5].event
    assert isinstance(pack, Packing)
    # laundering: 300 kg of outside rice appear in the merged lot
    entries[5] = LedgerEntry(h(5), pack.model_copy(update={"outputs": (lq("LOT-M1", "5100"),)}))
    findings = check_mass_balance(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    assert "mass_balance" in codes(findings)


def test_taking_from_a_lot_more_than_it_holds_is_an_error():
    entries = ledger()
    pack = entries[5].event
    assert isinstance(pack, Packing)
    entries[5] = LedgerEntry(
        h(5), pack.model_copy(update={"inputs": (lq("LOT-A1", "2950"), lq("LOT-B1", "2000"))})
    )
    findings = check_mass_balance(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    assert codes(findings) == ["mass_balance"] and findings[0].lot_code == "LOT-A1"


def test_harvest_beyond_what_the_area_can_yield_is_flagged():
    entries = ledger()
    harvest = entries[2].event
    assert isinstance(harvest, Harvest)
    # 8 rai of Hom Mali: ceiling 700 kg/rai x 8 x 1.5 = 8,400 kg
    entries[2] = LedgerEntry(h(2), harvest.model_copy(update={"quantity": kg("8401")}))
    findings = check_yield(entries, Decimal("1.5"))
    assert codes(findings) == ["implausible_yield"] and findings[0].lot_code == "LOT-A1"
    assert check_yield(entries, Decimal("2")) == []


def test_harvest_on_another_plot_than_planted_is_an_error():
    entries = ledger()
    harvest = entries[2].event
    assert isinstance(harvest, Harvest)
    entries[2] = LedgerEntry(h(2), harvest.model_copy(update={"plot_id": "PLOT-9"}))
    assert codes(check_yield(entries)) == ["harvest_plot_mismatch"]


def test_rejected_produce_leaves_the_lot_and_accepted_produce_is_only_observed():
    entries = ledger()
    accepted = Grading(
        kind="grading",
        lot_code="LOT-A1",
        grade="เกรด A",
        quantity=kg("2900"),
        disposition="conformant",
        **common(4, (h(4),)),
    )
    # the accepted 2,900 kg stay in the lot: the packing can still take all of them
    assert check_mass_balance([*entries, LedgerEntry(h(50), accepted)], {"LOT-A1", "LOT-B1", "LOT-M1"}) == []
    # but a grading cannot observe more than the lot holds after the 100 kg rejected
    too_much = accepted.model_copy(update={"quantity": kg("2901")})
    findings = check_mass_balance([*entries, LedgerEntry(h(51), too_much)], {"LOT-A1"})
    assert codes(findings) == ["mass_balance"] and findings[0].detail["available_kg"] == "2900"


def test_cooling_more_than_the_lot_holds_is_an_error():
    entries = ledger()
    cooled = Cooling(
        kind="cooling",
        lot_code="LOT-B1",
        quantity=kg("2000.5"),
        method="hydro_cooling",
        **common(3, (h(3),)),
    )
    findings = check_mass_balance([*entries, LedgerEntry(h(60), cooled)], {"LOT-B1"})
    assert codes(findings) == ["mass_balance"]


def test_harvesting_another_crop_than_planted_is_an_error():
    entries = ledger()
    harvest = entries[2].event
    assert isinstance(harvest, Harvest)
    entries[2] = LedgerEntry(h(2), harvest.model_copy(update={"crop": "watermelon"}))
    assert codes(check_yield(entries)) == ["harvest_crop_mismatch"]


# --- the evidence each check returns with its findings ---------------------------------------------------


def test_chain_link_evidence_names_each_lots_previous_event():
    from traceability.domain.lineage import chain_links

    entries = ledger()
    lots = {"LOT-A1", "LOT-B1", "LOT-M1"}
    checked = chain_links(entries, lots)
    assert checked.findings == check_chain_links(entries, lots) == []
    by_event = {}
    for link in checked.evidence:
        by_event.setdefault(link.event_id, []).append((link.lot_code, link.hash, link.found))
    ids = [str(e.event.event_id) for e in entries]
    assert ids[0] not in by_event and ids[1] not in by_event  # plantings create their lots: no link
    assert by_event[ids[2]] == [("LOT-A1", h(0), True)]
    # the packing continues both input lots (its output is new): one link each
    assert sorted(by_event[ids[5]]) == [("LOT-A1", h(4), True), ("LOT-B1", h(3), True)]
    assert by_event[ids[7]] == [("LOT-M1", h(6), True)]


def test_a_missing_event_shows_in_the_link_evidence_as_not_found():
    from traceability.domain.lineage import chain_links

    entries = [e for e in ledger() if e.hash != h(4)]  # the grading of LOT-A1 is gone
    checked = chain_links(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    packing = str(entries[4].event.event_id)
    links = sorted(
        (p.lot_code or "", p.hash or "", p.found) for p in checked.evidence if p.event_id == packing
    )
    # no link for LOT-A1 (its previous event is missing), and the hash it names shows as not found
    assert links == [("", h(4), False), ("LOT-A1", "", False), ("LOT-B1", h(3), True)]
    assert codes(checked.findings) == ["broken_prev_link"]
    assert "gap" in checked.findings[0].en and "ขาดตอน" in checked.findings[0].th


def test_mass_balance_evidence_follows_every_kilogram():
    from traceability.domain.lineage import mass_balance

    entries = ledger()
    lots = {"LOT-A1", "LOT-B1", "LOT-M1"}
    checked = mass_balance(entries, lots)
    assert checked.findings == []
    kinds = [m.kind.value for m in checked.evidence]
    assert kinds == ["harvest", "harvest", "grading_reject", "transformation", "shipping", "receiving"]
    assert all(m.ok for m in checked.evidence)
    packing = checked.evidence[3].to_json()
    assert packing["inputs"] == [
        {"lot_code": "LOT-A1", "kg": "2900", "available_kg": "2900", "checked": True},
        {"lot_code": "LOT-B1", "kg": "2000", "available_kg": "2000", "checked": True},
    ]
    assert packing["outputs"] == [{"lot_code": "LOT-M1", "kg": "4800"}]
    assert (packing["input_kg"], packing["output_kg"]) == ("4900", "4800")
    reject = checked.evidence[2].to_json()
    assert reject["inputs"] == [{"lot_code": "LOT-A1", "kg": "100", "available_kg": "3000", "checked": True}]
    receipt = checked.evidence[5].to_json()
    assert receipt["inputs"][0]["available_kg"] == "4800"  # what was in transit


def test_an_overdrawn_shipment_is_said_in_kilograms_and_its_evidence_does_not_add_up():
    from traceability.domain.lineage import mass_balance

    entries = ledger()
    ship = entries[6].event
    assert isinstance(ship, Transport)
    entries[6] = LedgerEntry(h(6), ship.model_copy(update={"items": (lq("LOT-M1", "5500"),)}))
    checked = mass_balance(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    [finding] = checked.findings
    assert finding.code == "mass_balance" and finding.lot_code == "LOT-M1"
    assert "The shipment of lot LOT-M1 sends 5,500 kg, but only 4,800 kg were left" in finding.en
    assert "การส่งสินค้าล็อต LOT-M1" in finding.th and "5,500 กก." in finding.th and "4,800 กก." in finding.th
    assert finding.detail == {"requested_kg": "5500", "available_kg": "4800"}
    assert [m.ok for m in checked.evidence] == [True, True, True, True, False, True]


def test_a_shipment_carrying_a_lot_outside_the_lineage_does_not_check_that_lot():
    from traceability.domain.lineage import mass_balance

    entries = ledger()
    ship = entries[6].event
    assert isinstance(ship, Transport)
    both = (lq("LOT-M1", "4800"), lq("LOT-X9", "700"))
    entries[6] = LedgerEntry(h(6), ship.model_copy(update={"items": both}))
    checked = mass_balance(entries, {"LOT-A1", "LOT-B1", "LOT-M1"})
    assert checked.findings == []
    assert checked.evidence[4].to_json()["inputs"] == [
        {"lot_code": "LOT-M1", "kg": "4800", "available_kg": "4800", "checked": True},
        {"lot_code": "LOT-X9", "kg": "700", "available_kg": None, "checked": False},
    ]


def test_yield_evidence_gives_each_harvest_per_rai_against_the_ceiling():
    from traceability.domain.lineage import plausible_yield

    entries = ledger()
    checked = plausible_yield(entries, Decimal("1.5"))
    assert checked.findings == []
    a, b = (y.to_json() for y in checked.evidence)
    assert a == {
        "event_id": str(entries[2].event.event_id),
        "lot_code": "LOT-A1",
        "plot_id": "PLOT-1",
        "crop": "hom-mali-105",
        "area_rai": "8",
        "harvest_kg": "3000",
        "lot_harvest_kg": "3000",
        "kg_per_rai": "375",
        "ceiling_kg_per_rai": "1050",
        "planted_plot_id": "PLOT-1",
        "planted_crop": "hom-mali-105",
        "ok": True,
    }
    assert (b["lot_code"], b["kg_per_rai"], b["ok"]) == ("LOT-B1", "400", True)

    harvest = entries[2].event
    assert isinstance(harvest, Harvest)
    entries[2] = LedgerEntry(h(2), harvest.model_copy(update={"quantity": kg("8401")}))
    checked = plausible_yield(entries, Decimal("1.5"))
    [finding] = checked.findings
    assert "8,401 kg harvested from 8 rai (1,050.13 kg per rai)" in finding.en
    assert "at most 1,050 kg per rai, 8,400 kg in all" in finding.en
    assert "8,401 กก." in finding.th and "ไร่ละ 1,050 กก." in finding.th
    assert checked.evidence[0].ok is False and str(checked.evidence[0].kg_per_rai) == "1050.13"


def test_a_crop_without_a_ceiling_or_a_harvest_without_planting_is_not_judged():
    from traceability.domain.lineage import plausible_yield

    entries = [e for e in ledger() if e.hash != h(1)]  # LOT-B1's planting is not in view
    [a, b] = plausible_yield(entries).evidence
    assert a.ok is True and b.ok is None and b.area_rai is None and b.kg_per_rai is None
    planting = entries[0].event
    harvest = entries[1].event
    assert isinstance(planting, Planting) and isinstance(harvest, Harvest)
    entries[0] = LedgerEntry(h(0), planting.model_copy(update={"crop": "durian"}))
    entries[1] = LedgerEntry(h(2), harvest.model_copy(update={"crop": "durian"}))
    first = plausible_yield(entries).evidence[0]
    assert first.ok is None and first.ceiling_kg_per_rai is None and str(first.kg_per_rai) == "375.00"
