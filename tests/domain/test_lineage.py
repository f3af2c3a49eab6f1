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
