"""What a farmer's forms offer: only their own plots and lots, what is left in each lot by the ledger's own
mass balance, the plot they used last and the places their lots have been."""

from __future__ import annotations

from decimal import Decimal

import pytest

from factories import ID_BASE, common, days_ago, q, seed_farmer_lots, seed_parties
from traceability.domain.events import Cooling, Grading, Harvest
from traceability.errors import InvalidEvent, NotFound
from traceability.services.choices import farmer_choices
from traceability.services.events import record_event
from traceability.services.parties import enrol_farmer
from traceability.store.database import transaction
from traceability.store.repository import Repository


@pytest.fixture
def seeded(db, registry):
    seed_parties(db.sessions, registry)
    seed_farmer_lots(db.sessions, registry)
    return db


def choices_of(db, farmer_code: str):
    with transaction(db.sessions) as s:
        farmer = Repository(s).farmer_by_code(farmer_code)
        assert farmer is not None
        return farmer_choices(s, farmer.id)


def test_a_farmer_is_offered_only_their_own_plots_and_lots(seeded):
    mine = choices_of(seeded, "F-0001")
    assert [p.code for p in mine.plots] == ["PLOT-T-01"]
    plot = mine.plots[0]
    assert (plot.village_th, plot.village_en, plot.area_rai) == (
        "บ้านหนองสนิท",
        "Ban Nong Sanit",
        Decimal("2.5"),
    )
    assert plot.authority.startswith("LAO-T")
    assert {lot.code for lot in mine.lots} == {"T-VEG-0001", "T-VEG-0001A", "T-VEG-0001B"}
    theirs = choices_of(seeded, "F-0002")
    assert [p.code for p in theirs.plots] == ["PLOT-T-02"]
    assert [lot.code for lot in theirs.lots] == ["T-VEG-0002"]
    assert "PLOT-T-01" not in theirs.places and "PH-T" not in theirs.places


def test_each_lot_shows_what_the_mass_balance_leaves_and_its_last_step(seeded):
    lots = {lot.code: lot for lot in choices_of(seeded, "F-0001").lots}
    origin, shipped, kept = lots["T-VEG-0001"], lots["T-VEG-0001A"], lots["T-VEG-0001B"]
    # 1000 kg harvested, 50 kg rejected, 950 kg packed into 500 + 440 kg; the 500 kg lot is shipped.
    assert (origin.available_kg, origin.stage, origin.plot, origin.crop) == (
        Decimal(0),
        "packing",
        "PLOT-T-01",
        "organic-veg",
    )
    assert (shipped.available_kg, shipped.stage, shipped.plot) == (Decimal(0), "transport", None)
    assert (kept.available_kg, kept.stage, kept.product_th) == (Decimal(440), "packing", "ผักอินทรีย์")
    assert choices_of(seeded, "F-0002").lots[0].available_kg == Decimal(0)


def test_available_kg_is_exactly_what_the_service_will_accept(seeded):
    def grade(kg: str) -> None:
        with transaction(seeded.sessions) as s:
            record_event(
                s,
                Grading(
                    kind="grading",
                    lot_code="T-VEG-0001B",
                    grade="A",
                    quantity=q(kg),
                    disposition="non_conformant",
                    **common(place="PH-T", when=days_ago(1)),
                ),
                id_base=ID_BASE,
            )

    with pytest.raises(InvalidEvent):
        grade("440.001")
    grade("40")
    with transaction(seeded.sessions) as s:
        record_event(
            s,
            Cooling(
                kind="cooling",
                lot_code="T-VEG-0001B",
                quantity=q("400"),
                method="ice",
                **common(place="PH-T", when=days_ago(0.5)),
            ),
            id_base=ID_BASE,
        )
    kept = choices_of(seeded, "F-0001").lot("T-VEG-0001B")
    assert kept is not None
    # A rejection takes out of the lot; a cooling only observes it.
    assert (kept.available_kg, kept.stage) == (Decimal(400), "cooling")


def test_last_plot_and_places_follow_the_farmers_latest_events(seeded):
    mine = choices_of(seeded, "F-0001")
    assert mine.last_plot == "PLOT-T-01"
    assert mine.places == ("PLOT-T-01", "PH-T", "PORT-LCB", "FARM-T-01")
    with transaction(seeded.sessions) as s:
        record_event(
            s,
            Harvest(
                kind="harvest",
                lot_code="T-VEG-0002",
                plot_id="PLOT-T-02",
                crop="organic-veg",
                quantity=q("300"),
                **common(actor="F-0002", place="PLOT-T-02", when=days_ago(1)),
            ),
            id_base=ID_BASE,
        )
    theirs = choices_of(seeded, "F-0002")
    assert theirs.last_plot == "PLOT-T-02" and theirs.places == ("PLOT-T-02",)
    assert theirs.lot("T-VEG-0002") is not None and theirs.lots[0].available_kg == Decimal(300)
    assert theirs.plot("PLOT-T-01") is None and theirs.lot("T-VEG-0001") is None


def test_a_farmer_with_nothing_yet_gets_empty_choices_and_an_unknown_one_a_404(seeded):
    with transaction(seeded.sessions) as s:
        repo = Repository(s)
        neighbour = repo.farmer_by_code("F-0001")
        assert neighbour is not None
        authority = repo.authority(neighbour.authority_id)
        assert authority is not None
        new = enrol_farmer(
            s,
            code="F-0003",
            authority=authority,
            display_name="นางมาลี ดีงาม",
            phone="0833333333",
            pin="2468",
        )
        empty = farmer_choices(s, new.id)
    assert (empty.plots, empty.lots, empty.last_plot, empty.places) == ((), (), None, ())
    with transaction(seeded.sessions) as s, pytest.raises(NotFound):
        farmer_choices(s, 999_999)
