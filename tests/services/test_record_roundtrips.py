"""Round trips of recording, counted at the driver (SQLAlchemy's ``before_cursor_execute``): the single path
makes a handful of statements, and a batch makes the same number whatever its size, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from factories import ID_BASE, common, days_ago, q
from traceability.domain.events import Event, Grading, Harvest, Planting
from traceability.services.events import record_event, record_events
from traceability.services.identity import ensure_id_base
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.store import models
from traceability.store.database import transaction


@pytest.fixture
def ledger(db) -> None:
    """A farmer with a plot, and the identifier base recorded (as on any ledger after its first event)."""
    with transaction(db.sessions) as s:
        authority = models.Authority(
            code="LAO-TRIPS", name_th="อบต.ทดสอบ", name_en="Test SAO", district_th="-", province_th="-"
        )
        s.add(authority)
        s.flush()
        farmer = enrol_farmer(
            s, code="F-0001", authority=authority, display_name="เกษตรกรทดสอบ", phone="0810000000", pin="1234"
        )
        enrol_plot(
            s,
            code="PLOT-T-01",
            farmer=farmer,
            village_th="บ้านทดสอบ",
            village_en="Ban Thotsop",
            area_rai=Decimal("1000"),
        )
        ensure_id_base(s, ID_BASE)


@contextmanager
def statements(db) -> Iterator[list[str]]:
    """Every statement sent to the database inside the block (an executemany counts once)."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()[:4]))

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)


def recorded_with(db, record: Callable[[Session], object]) -> list[str]:
    """The statements one call of ``record`` makes in a transaction of its own (commit not counted)."""
    with transaction(db.sessions) as s:
        with statements(db) as sent:
            record(s)
        return list(sent)


def planting(lot: str) -> Planting:
    return Planting(
        kind="planting",
        lot_code=lot,
        plot_id="PLOT-T-01",
        crop="rice",
        area_rai=Decimal("1"),
        **common(when=days_ago(60)),
    )


def harvest(lot: str) -> Harvest:
    return Harvest(
        kind="harvest",
        lot_code=lot,
        plot_id="PLOT-T-01",
        crop="rice",
        quantity=q("100"),
        **common(place="FARM-T-01", when=days_ago(20)),
    )


def grading(lot: str) -> Grading:
    return Grading(
        kind="grading",
        lot_code=lot,
        grade="A",
        quantity=q("10"),
        disposition="non_conformant",
        **common(actor="PH-0001", place="PH-T", when=days_ago(19)),
    )


def inserts(sent: list[str]) -> list[str]:
    return sorted(s for s in sent if s.upper().startswith("INSERT"))


def test_one_event_takes_a_few_statements_and_one_insert_per_table(db, ledger):
    sent = recorded_with(db, lambda s: record_event(s, planting("T-RT-0001"), id_base=ID_BASE))
    # id base, earlier events, lots and heads, plots; then lots, events, event_lots, outbox written
    assert len(sent) <= 8, sent
    assert [s.split()[2].strip('"') for s in inserts(sent)] == ["event_lots", "events", "lots", "outbox"]
    sent = recorded_with(db, lambda s: record_event(s, harvest("T-RT-0001"), id_base=ID_BASE))
    assert len(sent) <= 7, sent
    sent = recorded_with(db, lambda s: record_event(s, grading("T-RT-0001"), id_base=ID_BASE))
    assert len(sent) <= 7, sent  # the lot's history, read once for its mass balance, instead of the plot


@pytest.mark.parametrize("kind", ["new lots", "existing lots"])
def test_a_batchs_statements_do_not_grow_with_its_size(db, ledger, kind):
    def batch(prefix: str, lots: int) -> Callable[[Session], object]:
        codes = [f"{prefix}-{n:04d}" for n in range(lots)]
        events: list[Event] = [planting(c) for c in codes] + [harvest(c) for c in codes]
        if kind == "existing lots":
            with transaction(db.sessions) as s:
                record_events(s, events, id_base=ID_BASE)
            events = [grading(c) for c in codes] + [grading(c) for c in codes]
        return lambda s: record_events(s, events, id_base=ID_BASE)

    small = recorded_with(db, batch("T-RTA", 25))  # 50 events
    large = recorded_with(db, batch("T-RTB", 250))  # 500 events
    one = recorded_with(db, batch("T-RTC", 1))  # 2 events
    assert len(small) == len(large) == len(one), (small, large)
    assert inserts(small) == inserts(large)
