"""Round trips of recording, counted at the driver (SQLAlchemy's ``before_cursor_execute``, and psycopg's
``Cursor.copy`` for the COPY that writes rows on PostgreSQL): the single path makes a handful of statements,
and a batch makes the same number whatever its size, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
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
    """Every statement sent to the database inside the block (an executemany counts once, as does a COPY,
    which psycopg sends past SQLAlchemy's cursor events: it is counted as psycopg is asked to send it)."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()[:4]))

    copy = psycopg.Cursor.copy

    def counted_copy(cursor: psycopg.Cursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        count(None, cursor, str(statement))
        return copy(cursor, statement, *args, **kwargs)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    psycopg.Cursor.copy = counted_copy  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        psycopg.Cursor.copy = copy  # type: ignore[method-assign]
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


def writes(sent: list[str]) -> list[str]:
    """The tables written, one entry per statement: ``INSERT INTO t ...`` or ``COPY t (...) FROM STDIN``."""
    words = [s.split() for s in sent]
    return sorted(
        (w[2] if w[0].upper() == "INSERT" else w[1]).strip('"')
        for w in words
        if w[0].upper() in ("INSERT", "COPY")
    )


def test_one_event_takes_a_few_statements_and_one_write_per_table(db, ledger):
    sent = recorded_with(db, lambda s: record_event(s, planting("T-RT-0001"), id_base=ID_BASE))
    # id base, earlier events, lots and heads, plots; then lots, events, event_lots, outbox and the event's
    # origin-risk facts written
    assert len(sent) <= 9, sent
    assert writes(sent) == ["event_lots", "events", "lots", "outbox", "risk_facts"]
    sent = recorded_with(db, lambda s: record_event(s, harvest("T-RT-0001"), id_base=ID_BASE))
    assert len(sent) <= 8, sent
    assert "risk_facts" in writes(sent)
    sent = recorded_with(db, lambda s: record_event(s, grading("T-RT-0001"), id_base=ID_BASE))
    assert len(sent) <= 7, sent  # the lot's history, read once for its mass balance, instead of the plot
    assert "risk_facts" not in writes(sent)  # a grading without photos tells origin risk nothing


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
    written = writes(large)
    assert writes(small) == written and len(set(written)) == len(written), written  # once per table
