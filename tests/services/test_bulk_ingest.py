"""Bulk recording (``record_events``) keeps every rule of the single path (``record_event``): one table of
cases run through both, and through the API's ``submit_event``/``submit_batch`` for the submitter's rights;
on SQLite and PostgreSQL.

Each case runs in a transaction that is rolled back at its end, so that every path starts from the same
ledger: the case's setup recorded one event at a time, then the event under test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import ID_BASE, common, days_ago, lifecycle, lq, q
from traceability.domain.events import (
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
from traceability.domain.findings import Check, Severity
from traceability.domain.ingest import BALANCE_KINDS
from traceability.domain.lineage import Balance, apply_event
from traceability.domain.states import Role
from traceability.errors import BatchRejected, ChainConflict, TraceabilityError
from traceability.services.auth import Principal
from traceability.services.events import (
    RecordedEvent,
    plan_events,
    record_event,
    record_events,
    stored_event,
    write_planned,
)
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.services.proof import build_bundle
from traceability.services.submissions import submit_batch, submit_event
from traceability.services.verify import verify_bundle
from traceability.store import models
from traceability.store.database import transaction

LOT = "T-BULK-0001"
OTHER_AUTHORITY = "LAO-ELSEWHERE"


# --- events -------------------------------------------------------------------------------------------------


def planting(lot: str = LOT, plot: str = "PLOT-T-01", actor: str = "F-0001", **over: Any) -> Planting:
    fields: dict[str, Any] = {
        "kind": "planting",
        "lot_code": lot,
        "plot_id": plot,
        "crop": "organic-veg",
        "area_rai": Decimal("2.5"),
        **common(actor=actor, place=plot, when=days_ago(60)),
    }
    return Planting(**{**fields, **over})


def harvest(
    lot: str = LOT,
    kg: str = "1000",
    plot: str = "PLOT-T-01",
    actor: str = "F-0001",
    days: float = 20,
    **over: Any,
) -> Harvest:
    fields: dict[str, Any] = {
        "kind": "harvest",
        "lot_code": lot,
        "plot_id": plot,
        "crop": "organic-veg",
        "quantity": q(kg),
        **common(actor=actor, place="FARM-T-01", when=days_ago(days)),
    }
    return Harvest(**{**fields, **over})


def cooling(lot: str = LOT, kg: str = "1000", actor: str = "PH-0001", days: float = 19) -> Cooling:
    return Cooling(
        kind="cooling",
        lot_code=lot,
        quantity=q(kg),
        method="forced_air",
        **common(actor, "PH-T", days_ago(days)),
    )


def grading(
    lot: str = LOT,
    kg: str = "50",
    disposition: str = "non_conformant",
    actor: str = "PH-0001",
    days: float = 19,
    **over: Any,
) -> Grading:
    fields: dict[str, Any] = {
        "kind": "grading",
        "lot_code": lot,
        "grade": "A",
        "quantity": q(kg),
        "disposition": disposition,
        **common(actor, "PH-T", days_ago(days)),
    }
    return Grading(**{**fields, **over})


def packing(inputs: dict[str, str], outputs: dict[str, str], actor: str = "PH-0001") -> Packing:
    return Packing(
        kind="packing",
        inputs=tuple(lq(lot, kg) for lot, kg in inputs.items()),
        outputs=tuple(lq(lot, kg) for lot, kg in outputs.items()),
        gtin="8850999000015" if len(outputs) == 1 else None,
        **common(actor, "PH-T", days_ago(18)),
    )


def transport(
    leg: str, items: dict[str, str], actor: str = "PH-0001", days: float | None = None
) -> Transport:
    when = days_ago(days if days is not None else 17 if leg == "ship" else 16)
    return Transport(
        kind="transport",
        leg=leg,  # type: ignore[arg-type]
        items=tuple(lq(lot, kg) for lot, kg in items.items()),
        source="PH-T",
        destination="PORT-LCB",
        **common(actor, "PH-T" if leg == "ship" else "PORT-LCB", when),
    )


def just_before(event: Event, **over: Any) -> Grading:
    """A grading of the lot ``event`` graded, a millisecond earlier than it (recorded after it): another
    client's grading of the same lot at nearly the same time."""
    assert isinstance(event, Grading)
    return grading(event_time=event.event_time - timedelta(milliseconds=1), **over)


def packed(child: str = "T-BULK-0001A") -> list[Event]:
    """Planting → harvest 1000 kg → packing 900 kg of it into ``child``."""
    return [planting(), harvest(), packing({LOT: "900"}, {child: "880"})]


def shipped() -> list[Event]:
    return [*packed(), transport("ship", {"T-BULK-0001A": "800"})]


# --- the table of rule cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """``setup`` is recorded first, one event at a time; then ``event`` (made fresh for each path, from the
    setup's events) must end as ``expect``: "created", "retry" or an error code with its HTTP status."""

    name: str
    setup: Callable[[], list[tuple[Event, str | None]]]
    event: Callable[[list[Event]], Event]
    expect: str
    status: int = 0
    key: str | None = None
    submitter: str | None = None  # rights cases: "farmer-1", "farmer-2", "officer", "officer-elsewhere"


def plain(events: Callable[[], list[Event]]) -> Callable[[], list[tuple[Event, str | None]]]:
    return lambda: [(e, None) for e in events()]


def nothing() -> list[tuple[Event, str | None]]:
    return []


LEDGER_CASES = [
    Case("planting", nothing, lambda s: planting(), "created"),
    Case("lot_exists", plain(lambda: [planting()]), lambda s: planting(), "lot_exists", 422),
    Case("unknown lot", nothing, lambda s: harvest(), "not_found", 404),
    Case("unknown plot", nothing, lambda s: planting(plot="PLOT-NOWHERE"), "not_found", 404),
    Case("not the actor's plot", nothing, lambda s: planting(plot="PLOT-T-02"), "forbidden", 403),
    Case(
        "authority_mismatch",
        nothing,
        lambda s: planting(authority=OTHER_AUTHORITY),
        "authority_mismatch",
        422,
    ),
    Case(
        "plot_mismatch",
        plain(lambda: [planting()]),
        lambda s: harvest(plot="PLOT-T-02", actor="F-0002"),
        "plot_mismatch",
        422,
    ),
    Case("crop_mismatch", plain(lambda: [planting()]), lambda s: harvest(crop="rice"), "crop_mismatch", 422),
    Case("harvest", plain(lambda: [planting()]), lambda s: harvest(), "created"),
    Case("cooling", plain(lambda: [planting(), harvest()]), lambda s: cooling(kg="1000"), "created"),
    Case(
        "cooling more than held",
        plain(lambda: [planting(), harvest()]),
        lambda s: cooling(kg="1000.5"),
        "mass_balance",
        422,
    ),
    Case(
        "rejecting more than held",
        plain(lambda: [planting(), harvest(), grading(kg="600")]),
        lambda s: grading(kg="401"),
        "mass_balance",
        422,
    ),
    Case(
        "packing more than held",
        plain(lambda: [planting(), harvest(), grading(kg="50")]),
        lambda s: packing({LOT: "951"}, {"T-BULK-0001A": "900"}),
        "mass_balance",
        422,
    ),
    Case(
        "packing out more than in",
        plain(lambda: [planting(), harvest()]),
        lambda s: packing({LOT: "500"}, {"T-BULK-0001A": "501"}),
        "mass_balance",
        422,
    ),
    Case(
        "packing into a lot that exists",
        plain(lambda: [planting(), harvest(), planting("T-BULK-0002")]),
        lambda s: packing({LOT: "500"}, {"T-BULK-0002": "400"}),
        "lot_exists",
        422,
    ),
    Case(
        "packing an unknown lot",
        plain(lambda: [planting(), harvest()]),
        lambda s: packing({LOT: "500", "T-BULK-NONE": "1"}, {"T-BULK-0001A": "400"}),
        "not_found",
        404,
    ),
    Case(
        "merging lots packed by one event",
        plain(lambda: [planting(), harvest(), packing({LOT: "900"}, {"T-BULK-A": "400", "T-BULK-B": "400"})]),
        lambda s: packing({"T-BULK-A": "400", "T-BULK-B": "400"}, {"T-BULK-AB": "790"}),
        "created",
    ),
    Case("shipping", plain(packed), lambda s: transport("ship", {"T-BULK-0001A": "880"}), "created"),
    Case(
        "shipping more than held",
        plain(packed),
        lambda s: transport("ship", {"T-BULK-0001A": "881"}),
        "mass_balance",
        422,
    ),
    Case("receiving", plain(shipped), lambda s: transport("receive", {"T-BULK-0001A": "800"}), "created"),
    Case(
        "receiving more than shipped",
        plain(shipped),
        lambda s: transport("receive", {"T-BULK-0001A": "800.001"}),
        "mass_balance",
        422,
    ),
    # Kilograms are judged in event-time order, as verification replays them: a step recorded after a later
    # one on its lot is accepted when the lot still balances with it in its place, refused when it does not.
    Case(
        "an earlier grading that still balances",
        plain(lambda: [planting(), harvest(), grading(kg="600", days=18)]),
        lambda s: grading(kg="300", days=19),
        "created",
    ),
    Case(
        "an earlier grading of all the lot, before rejects already recorded",
        plain(lambda: [planting(), harvest(), grading(kg="800", days=18)]),
        lambda s: grading(kg="1000", disposition="conformant", days=19),
        "created",  # in recording order only 200 kg are left; at its time all 1,000 kg were there
    ),
    Case(
        "an earlier grading that leaves a later cooling short",
        plain(
            lambda: [planting(), harvest(kg="500"), cooling(kg="500", days=18), harvest(kg="500", days=17)]
        ),
        lambda s: grading(kg="100", days=19),
        "mass_balance",  # 1,000 kg in all, but the cooling of 500 kg would find 400
        422,
    ),
    Case(
        "an earlier grading short at its own time",
        plain(lambda: [planting(), harvest(kg="300"), harvest(kg="700", days=17)]),
        lambda s: grading(kg="500", disposition="conformant", days=19),
        "mass_balance",  # only 300 kg had been harvested by then
        422,
    ),
    Case(
        "two gradings of one lot at nearly the same time that balance",
        plain(lambda: [planting(), harvest(), grading(kg="400")]),
        lambda s: just_before(s[-1], kg="400"),
        "created",
    ),
    Case(
        "two gradings of one lot at nearly the same time that do not balance",
        plain(lambda: [planting(), harvest(), grading(kg="600")]),
        lambda s: just_before(s[-1], kg="500"),
        "mass_balance",
        422,
    ),
    Case(
        "shipping a lot before the packing that made it",
        plain(packed),
        lambda s: transport("ship", {"T-BULK-0001A": "800"}, days=18.5),
        "mass_balance",
        422,
    ),
    Case(
        "receiving before the shipment",
        plain(shipped),
        lambda s: transport("receive", {"T-BULK-0001A": "800"}, days=17.5),
        "mass_balance",
        422,
    ),
    Case(
        "an earlier shipment that leaves the later one short",
        plain(lambda: [*packed(), transport("ship", {"T-BULK-0001A": "500"}, days=16)]),
        lambda s: transport("ship", {"T-BULK-0001A": "400"}, days=17),
        "mass_balance",
        422,
    ),
    Case("resending a stored event", plain(lambda: [planting()]), lambda s: s[0], "retry"),
    Case(
        "resending an event id with other content",
        plain(lambda: [planting()]),
        lambda s: s[0].model_copy(update={"area_rai": Decimal(3)}),
        "event_conflict",
        409,
    ),
    Case(
        "resending under its Idempotency-Key",
        lambda: [(planting(), "key-1")],
        lambda s: s[0],
        "retry",
        key="key-1",
    ),
    Case(
        "an Idempotency-Key used for another event",
        lambda: [(planting(), "key-1")],
        lambda s: planting("T-BULK-0002"),
        "idempotency_conflict",
        409,
        key="key-1",
    ),
]

RIGHTS_CASES = [
    Case("a farmer plants on their plot", nothing, lambda s: planting(), "created", submitter="farmer-1"),
    Case(
        "a farmer plants on another's plot",
        nothing,
        lambda s: planting(),
        "not_your_plot",
        403,
        submitter="farmer-2",
    ),
    Case(
        "a farmer grades another's lot",
        plain(lambda: [planting(), harvest()]),
        lambda s: grading(),
        "not_your_lot",
        403,
        submitter="farmer-2",
    ),
    Case(
        "a farmer ships what was packed from their lot",
        plain(packed),
        lambda s: transport("ship", {"T-BULK-0001A": "100"}),
        "created",
        submitter="farmer-1",
    ),
    Case(
        "a farmer ships a merge with another's produce",
        plain(
            lambda: [
                planting(),
                harvest(),
                planting("T-BULK-0002", plot="PLOT-T-02", actor="F-0002"),
                harvest("T-BULK-0002", plot="PLOT-T-02", actor="F-0002"),
                packing({LOT: "500", "T-BULK-0002": "500"}, {"T-BULK-MIX": "990"}),
            ]
        ),
        lambda s: transport("ship", {"T-BULK-MIX": "100"}),
        "not_your_lot",
        403,
        submitter="farmer-1",
    ),
    Case(
        "an officer harvests for their อปท.",
        plain(lambda: [planting()]),
        lambda s: harvest(),
        "created",
        submitter="officer",
    ),
    Case(
        "an officer of another อปท. harvests",
        plain(lambda: [planting()]),
        lambda s: harvest(),
        "not_your_plot",
        403,
        submitter="officer-elsewhere",
    ),
    Case(
        "an officer of another อปท. grades",
        plain(lambda: [planting(), harvest()]),
        lambda s: grading(),
        "not_your_lot",
        403,
        submitter="officer-elsewhere",
    ),
    Case(
        "a farmer's unknown lot is the ledger's 404",
        nothing,
        lambda s: grading(),
        "not_found",
        404,
        submitter="farmer-1",
    ),
]


# --- fixtures and helpers -----------------------------------------------------------------------------------


@pytest.fixture
def parties(db) -> dict[str, Any]:
    """An อปท. with two farmers and a plot each (F-0001 on PLOT-T-01, F-0002 on PLOT-T-02), and another อปท.
    Recording reads no chain, so the อปท. is not registered on one."""
    with transaction(db.sessions) as s:
        authority = models.Authority(
            code="LAO-TBULK",
            name_th="อบต.หนองสนิท",
            name_en="Nong Sanit SAO",
            district_th="-",
            province_th="-",
        )
        other = models.Authority(
            code=OTHER_AUTHORITY, name_th="อบต.อื่น", name_en="Other SAO", district_th="-", province_th="-"
        )
        s.add_all([authority, other])
        s.flush()
        for n, (village_th, village_en) in enumerate(
            (("บ้านหนองสนิท", "Ban Nong Sanit"), ("บ้านโคกกลาง", "Ban Khok Klang"))
        ):
            farmer = enrol_farmer(
                s,
                code=f"F-000{n + 1}",
                authority=authority,
                display_name=f"เกษตรกรทดสอบ {n + 1}",
                phone=f"08{n + 1}0000000",
                pin="1234",
            )
            enrol_plot(
                s,
                code=f"PLOT-T-0{n + 1}",
                farmer=farmer,
                village_th=village_th,
                village_en=village_en,
                area_rai=Decimal("2.5"),
            )
        return {"authority_id": authority.id, "authority_code": authority.code, "other_id": other.id}


@pytest.fixture
def rolled_back(db, parties) -> Callable[[], Iterator[Session]]:
    """Sessions whose work is always rolled back: every path of a case starts from the same ledger."""

    def open_session() -> Iterator[Session]:
        session = db.sessions()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    return open_session


def principal(session: Session, who: str, parties: dict[str, Any]) -> Principal:
    """The token's principal for ``who`` (rights are checked on the principal; no token is needed)."""
    if who.startswith("farmer"):
        code = "F-0001" if who == "farmer-1" else "F-0002"
        farmer = session.scalars(select(models.Farmer).where(models.Farmer.code == code)).one()
        return Principal(Role.FARMER, code, parties["authority_id"], farmer_id=farmer.id)
    if who == "officer-elsewhere":
        return Principal(Role.OFFICER, "OFF-9999", parties["other_id"])
    return Principal(Role.OFFICER, "OFF-0001", parties["authority_id"])


def as_json(event: Event) -> dict[str, Any]:
    """The event as a client posts it: its JSON without ``actor``."""
    return event.model_dump(mode="json", exclude={"actor"})


def counts(session: Session) -> tuple[int, ...]:
    return tuple(
        int(session.scalar(select(func.count()).select_from(m)) or 0)
        for m in (models.Event, models.EventLot, models.Lot, models.Outbox)
    )


def outcome_of(
    run: Callable[..., list[RecordedEvent] | RecordedEvent], *args: Any, **kwargs: Any
) -> tuple[str, int]:
    """What ``run(*args, **kwargs)`` did: ("created" | "retry", 0), or the error's code and status; a batch's
    refusal as its one refused item's code."""
    try:
        result = run(*args, **kwargs)
    except BatchRejected as exc:
        assert len(exc.items) == 1, exc.items
        return str(exc.items[0]["code"]), exc.status_code
    except TraceabilityError as exc:
        return exc.code, exc.status_code
    recorded = result[-1] if isinstance(result, list) else result
    return ("created" if recorded.created else "retry"), 0


def assert_balanced_as_verified(session: Session, lots: tuple[str, ...]) -> None:
    """Each lot's proof bundle passes verification's mass balance (kilograms replayed in event-time order);
    no registry is trusted here, so only the checks that need no chain are read."""
    for lot in lots:
        verdict = verify_bundle(build_bundle(session, lot, chain_id=31337, contract="0x" + "00" * 20), None)
        moved = next(c for c in verdict.checks if c.check is Check.MASS_BALANCE)
        assert moved.severity is Severity.OK, (lot, [f.en for f in verdict.findings])


def set_up(session: Session, case: Case) -> list[Event]:
    setup = case.setup()
    for event, key in setup:
        record_event(session, event, id_base=ID_BASE, idempotency_key=key)
    return [event for event, _ in setup]


# --- the rule cases through every path ----------------------------------------------------------------------


@pytest.mark.parametrize("case", LEDGER_CASES, ids=lambda c: c.name)
def test_every_ledger_rule_is_the_same_one_at_a_time_and_in_a_batch(db, rolled_back, case):
    for name in ("record_event", "record_events"):
        for session in rolled_back():
            setup = set_up(session, case)
            before = counts(session)
            event = case.event(setup)
            if name == "record_event":
                outcome = outcome_of(record_event, session, event, id_base=ID_BASE, idempotency_key=case.key)
            else:
                outcome = outcome_of(
                    record_events, session, [event], id_base=ID_BASE, idempotency_keys=[case.key]
                )
            assert outcome == (case.expect, case.status), name
            if case.expect != "created":
                assert counts(session) == before, f"{name} stored something it refused"
            else:
                assert_balanced_as_verified(session, lots_touched(event))
    # The setup and the event in one batch: the event is judged against the batch's earlier items.
    for session in rolled_back():
        setup = case.setup()
        items = [*setup, (case.event([e for e, _ in setup]), case.key)]
        outcome = outcome_of(
            record_events,
            session,
            [e for e, _ in items],
            id_base=ID_BASE,
            idempotency_keys=[k for _, k in items],
        )
        assert outcome == (case.expect, case.status), "in one batch"
        if case.status:
            assert counts(session)[0] == 0
        elif case.expect == "created":
            assert_balanced_as_verified(session, lots_touched(items[-1][0]))


@pytest.mark.parametrize("case", RIGHTS_CASES, ids=lambda c: c.name)
def test_every_right_is_the_same_through_submit_event_and_submit_batch(db, rolled_back, parties, case):
    for name in ("submit_event", "submit_batch"):
        for session in rolled_back():
            setup = set_up(session, case)
            who = principal(session, case.submitter or "", parties)
            data = as_json(case.event(setup))
            before = counts(session)
            if name == "submit_event":
                outcome = outcome_of(submit_event, session, who, data, id_base=ID_BASE)
            else:
                outcome = outcome_of(submit_batch, session, who, [data], id_base=ID_BASE)
            assert outcome == (case.expect, case.status), name
            if case.expect != "created":
                assert counts(session) == before


# --- batches ------------------------------------------------------------------------------------------------


def test_a_step_refused_in_event_time_order_says_what_comes_up_short_and_when(db, parties):
    cooled = cooling(kg="500", days=18)
    with transaction(db.sessions) as s:
        for event in (planting(), harvest(kg="500"), cooled, harvest(kg="500", days=17)):
            record_event(s, event, id_base=ID_BASE)
    early = grading(kg="100", days=19)
    with pytest.raises(TraceabilityError) as caught, transaction(db.sessions) as s:
        record_event(s, early, id_base=ID_BASE)
    assert caught.value.code == "mass_balance" and caught.value.status_code == 422
    assert caught.value.message == (
        f"This grading at {early.event_time.isoformat()} comes before steps already recorded on lot {LOT}, "
        "and a lot's kilograms are checked in the order its steps happened: with it, the cooling at "
        f"{cooled.event_time.isoformat()} comes up short (The cooling of lot {LOT} covers 500 kg, but only "
        "400 kg were left)"
    )
    too_early = grading(kg="600", disposition="conformant", days=19)
    with pytest.raises(BatchRejected) as refused, transaction(db.sessions) as s:
        record_events(s, [too_early], id_base=ID_BASE)
    assert refused.value.status_code == 422
    assert refused.value.items == [
        {
            "index": 0,
            "code": "mass_balance",
            "message": f"The grading of lot {LOT} sorts 600 kg, but only 500 kg were left at its time, "
            f"{too_early.event_time.isoformat()}: steps already recorded on the lot happened after it, and a "
            "lot's kilograms are checked in the order its steps happened",
        }
    ]


def test_an_append_that_loses_the_race_for_a_lots_next_place_is_a_chain_conflict(db, parties):
    """Two clients judge a grading of one lot against the same ledger; the second to write finds the lot's
    next place in its chain taken (unique lot and seq) and gets a 409 to retry, with nothing of it stored."""
    with transaction(db.sessions) as s:
        record_events(s, [planting(), harvest()], id_base=ID_BASE)
    first, second = db.sessions(), db.sessions()
    try:
        ahead = plan_events(first, [grading(kg="10")], id_base=ID_BASE)
        behind = plan_events(second, [grading(kg="20")], id_base=ID_BASE)
        write_planned(first, ahead)
        first.commit()
        with pytest.raises(ChainConflict) as caught:
            write_planned(second, behind)
        assert caught.value.status_code == 409 and caught.value.code == "chain_conflict"
    finally:
        for session in (first, second):
            session.rollback()
            session.close()
    with transaction(db.sessions) as s:
        assert counts(s) == (3, 3, 1, 3)


def test_a_batch_with_refused_items_stores_nothing_and_names_every_one(db, parties):
    events = [
        planting(),
        harvest("T-BULK-NONE"),  # 1: no such lot (404)
        harvest(),
        cooling(kg="2000"),  # 3: more than the 1,000 kg harvested (422)
        grading(kg="10"),
        planting(plot="PLOT-T-02"),  # 5: the lot exists by now (422)
    ]
    with pytest.raises(BatchRejected) as caught, transaction(db.sessions) as s:
        record_events(s, events, id_base=ID_BASE)
    assert [(i["index"], i["code"]) for i in caught.value.items] == [
        (1, "not_found"),
        (3, "mass_balance"),
        (5, "lot_exists"),
    ]
    assert caught.value.status_code == 422  # 404 and 422 mixed
    with transaction(db.sessions) as s:
        assert counts(s) == (0, 0, 0, 0)
    # One status shared by every refusal is the batch's.
    with pytest.raises(BatchRejected) as caught, transaction(db.sessions) as s:
        record_events(s, [harvest(), grading()], id_base=ID_BASE)
    assert caught.value.status_code == 404 and [i["index"] for i in caught.value.items] == [0, 1]


def test_submit_batch_names_unparsable_and_refused_items_in_order(db, parties):
    with transaction(db.sessions) as s:
        who = principal(s, "farmer-2", parties)
        bad = {**as_json(harvest()), "quantity": {"value": "-5", "uom": "KGM"}}
        items = [
            as_json(planting("T-BULK-0009", plot="PLOT-T-02")),
            as_json(planting()),
            bad,
            "not an object",
        ]
        with pytest.raises(BatchRejected) as caught:
            submit_batch(s, who, items, id_base=ID_BASE)
        assert [(i["index"], i["code"]) for i in caught.value.items] == [
            (1, "not_your_plot"),
            (2, "invalid_event"),
            (3, "invalid_event"),
        ]
        assert caught.value.status_code == 422
        assert counts(s) == (0, 0, 0, 0)


def test_dependent_items_in_one_batch_from_planting_to_receipt(db, parties):
    events: list[Event] = [
        planting(),
        harvest(),
        cooling(kg="1000"),
        grading(kg="50"),
        packing({LOT: "950"}, {"T-BULK-0001A": "500", "T-BULK-0001B": "440"}),
        transport("ship", {"T-BULK-0001A": "500", "T-BULK-0001B": "440"}),
        transport("receive", {"T-BULK-0001A": "500"}),
    ]
    with transaction(db.sessions) as s:
        recorded = record_events(s, events, id_base=ID_BASE)
    assert [r.created for r in recorded] == [True] * len(events)
    with transaction(db.sessions) as s:
        rows = {e.id: e for e in s.scalars(select(models.Event))}
        links = {
            (link.event_id, link.lot_code): (link.seq, link.role)
            for link in s.scalars(select(models.EventLot))
        }
        lots = {lot.code: lot for lot in s.scalars(select(models.Lot))}
        assert counts(s) == (7, 10, 3, 7)
        hashes = [rows[r.event_id].hash for r in recorded]
        prevs = [stored_event(rows[r.event_id]).prev for r in recorded]
    assert prevs[:5] == [(), (hashes[0],), (hashes[1],), (hashes[2],), (hashes[3],)]
    assert prevs[5] == (hashes[4],)  # both shipped lots' head is the packing: named once
    assert prevs[6] == (hashes[5],)
    assert [links[(recorded[n].event_id, LOT)][0] for n in range(5)] == [1, 2, 3, 4, 5]
    assert links[(recorded[4].event_id, LOT)][1] == "in"
    assert links[(recorded[4].event_id, "T-BULK-0001A")] == (1, "out")
    assert links[(recorded[5].event_id, "T-BULK-0001B")] == (2, "subject")
    assert links[(recorded[6].event_id, "T-BULK-0001A")] == (3, "subject")
    assert (
        lots["T-BULK-0001A"].crop == "organic-veg"
        and lots["T-BULK-0001A"].authority_id == lots[LOT].authority_id
    )
    assert lots[LOT].plot_id is not None and lots["T-BULK-0001A"].plot_id is None
    planted = stored_event(rows[recorded[0].event_id])
    assert isinstance(planted, Planting) and planted.authority == parties["authority_code"]


def test_a_farmers_harvest_of_a_lot_planted_earlier_in_the_batch_is_theirs(db, parties):
    with transaction(db.sessions) as s:
        mine = principal(s, "farmer-1", parties)
        recorded = submit_batch(s, mine, [as_json(planting()), as_json(harvest())], id_base=ID_BASE)
        assert [r.created for r in recorded] == [True, True]
    with transaction(db.sessions) as s:
        theirs = principal(s, "farmer-2", parties)
        items = [as_json(grading())]
        with pytest.raises(BatchRejected) as caught:
            submit_batch(s, theirs, items, id_base=ID_BASE)
        assert caught.value.status_code == 403 and caught.value.items[0]["code"] == "not_your_lot"


def test_a_batch_resent_or_repeated_is_a_retry(db, parties):
    events = lifecycle()
    keys = [f"key-{n}" for n in range(len(events))]
    with transaction(db.sessions) as s:
        first = record_events(s, events, id_base=ID_BASE, idempotency_keys=keys)
    with transaction(db.sessions) as s:
        again = record_events(s, events, id_base=ID_BASE, idempotency_keys=keys)
        assert [r.created for r in again] == [False] * len(events)
        assert [r.hash for r in again] == [r.hash for r in first]
        # An item repeated later in the same batch is a retry of the earlier one; changed, a conflict.
        extra = planting("T-BULK-0005")
        twice = record_events(s, [extra, extra], id_base=ID_BASE)
        assert [r.created for r in twice] == [True, False] and twice[0].hash == twice[1].hash
    with pytest.raises(BatchRejected) as caught, transaction(db.sessions) as s:
        other = planting("T-BULK-0006")
        record_events(s, [other, other.model_copy(update={"area_rai": Decimal(1)})], id_base=ID_BASE)
    assert caught.value.status_code == 409 and caught.value.items == [
        {"index": 1, "code": "event_conflict", "message": caught.value.items[0]["message"]}
    ]
    with transaction(db.sessions) as s:
        assert counts(s)[0] == len(events) + 1


# --- the same rows whichever path recorded them -------------------------------------------------------------


def ledger_rows(session: Session) -> dict[str, Any]:
    return {
        "events": sorted(
            (str(e.id), e.kind, e.actor, e.event_time, e.body, e.hash, e.idempotency_key)
            for e in session.scalars(select(models.Event))
        ),
        "links": sorted(
            (str(link.event_id), link.lot_code, link.seq, link.role)
            for link in session.scalars(select(models.EventLot))
        ),
        "lots": sorted(
            (lot.code, lot.crop, lot.product_th, lot.product_en, lot.gtin, lot.authority_id, lot.plot_id)
            for lot in session.scalars(select(models.Lot))
        ),
        "outbox": sorted((str(o.event_id), o.status) for o in session.scalars(select(models.Outbox))),
    }


def test_stored_rows_are_identical_whichever_path_recorded_them(db, rolled_back, parties):
    events: list[Event] = [
        *lifecycle(),
        planting("T-BULK-0002", plot="PLOT-T-02", actor="F-0002"),
        harvest("T-BULK-0002", kg="700", plot="PLOT-T-02", actor="F-0002"),
        packing({"T-VEG-0001B": "440", "T-BULK-0002": "700"}, {"T-BULK-MIX": "1100"}),
        transport("ship", {"T-BULK-MIX": "1000"}),
    ]
    keys = [f"k-{n}" if n % 2 else None for n in range(len(events))]
    seen: list[dict[str, Any]] = []
    for session in rolled_back():
        for event, key in zip(events, keys, strict=True):
            assert record_event(session, event, id_base=ID_BASE, idempotency_key=key).created
        seen.append(ledger_rows(session))
    for session in rolled_back():
        assert all(r.created for r in record_events(session, events, id_base=ID_BASE, idempotency_keys=keys))
        seen.append(ledger_rows(session))
    for session in rolled_back():  # in two batches, the second depending on the first
        record_events(session, events[:4], id_base=ID_BASE, idempotency_keys=keys[:4])
        record_events(session, events[4:], id_base=ID_BASE, idempotency_keys=keys[4:])
        seen.append(ledger_rows(session))
    assert len(seen[0]["events"]) == len(events) and len(seen[0]["links"]) == 14
    assert seen[0] == seen[1] == seen[2]


def test_only_the_balance_kinds_change_or_check_a_lots_kilograms():
    """The snapshot reads only events of BALANCE_KINDS: every other kind must leave a balance as it was and
    find nothing short, even on a lot that holds nothing."""
    revocation = Revocation(
        kind="revocation",
        lot_code=LOT,
        cert_id="0x" + "ab" * 32,
        reason="ทดสอบ",
        **common("OFF-0001", "LAO-T"),
    )
    events: list[Event] = [
        planting(),
        harvest(),
        cooling(kg="10"),
        grading(kg="10", disposition="conformant"),
        grading(kg="10"),
        packing({LOT: "500"}, {"T-BULK-0001A": "400"}),
        transport("ship", {"T-BULK-0001A": "100"}),
        transport("receive", {"T-BULK-0001A": "100"}),
        revocation,
    ]
    balance = Balance.empty()
    for event in events:
        before = (dict(balance.held), dict(balance.in_transit))
        found = apply_event(balance, event)
        if event.kind not in BALANCE_KINDS:
            assert (dict(balance.held), dict(balance.in_transit)) == before, event.kind
            assert not apply_event(Balance.empty(), event), event.kind
        assert not found, event.kind
    assert balance.held[LOT] == Decimal(490) and balance.held["T-BULK-0001A"] == Decimal(400)
