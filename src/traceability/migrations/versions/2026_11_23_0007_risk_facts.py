"""risk facts and the learned population: origin risk reads tables, not every event's body

A lot's origin risk compares it with the lots planted in its district, on its plots and by its farmer that
season, and with what the whole ledger says (photo pairs, unusual farmer-seasons, crop yield models). Until
this revision every process kept the facts of every event in memory, read from the bodies: at a million
events that was most of a server's memory. Now each event's facts are written with it (``risk_facts``), a
lot's peers are found by SQL, and the population is learned once by the leading worker into
``risk_populations``, which servers read. Events recorded before this revision get their facts here, read
from their stored bodies.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from traceability.domain import codec
from traceability.domain.epcis import from_epcis
from traceability.domain.risk import RISK_KINDS

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_CHUNK = 2000


def upgrade() -> None:
    op.create_table(
        "risk_facts",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=False),
        sa.Column("lots", sa.Text(), nullable=False),
        sa.Column("codes", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("crop", sa.String(length=40), nullable=True),
        sa.Column("crop_key", sa.String(length=40), nullable=True),
        sa.Column("plot", sa.String(length=40), nullable=True),
        sa.Column("area_rai", sa.String(length=40), nullable=True),
        sa.Column("season", sa.String(length=12), nullable=True),
        sa.Column("kg", sa.String(length=40), nullable=True),
        sa.Column("leg", sa.String(length=8), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=True),
        sa.Column("destination", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_risk_facts_event_id_events")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_risk_facts")),
    )
    op.create_index("ix_risk_facts_planted", "risk_facts", ["plot", "crop_key", "season"])
    op.create_index("ix_risk_facts_lot_code", "risk_facts", ["lot_code"])
    op.create_table(
        "risk_populations",
        sa.Column("settings", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("settings", name=op.f("pk_risk_populations")),
    )
    _backfill()


def _backfill() -> None:
    """The facts of every event already recorded, read from its body in chunks (an unreadable body has
    none: the verdict reports it, origin risk cannot read it)."""
    from traceability.store.models import RiskFact
    from traceability.store.repository import risk_fact_row

    bind = op.get_bind()
    events = sa.table(
        "events", sa.column("id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("body", sa.Text())
    )
    after = None
    while True:
        query = (
            sa.select(events.c.id, events.c.body).where(events.c.kind.in_(RISK_KINDS)).order_by(events.c.id)
        )
        if after is not None:
            query = query.where(events.c.id > after)
        chunk = bind.execute(query.limit(BACKFILL_CHUNK)).all()
        if not chunk:
            return
        rows = []
        for _, body in chunk:
            try:
                row = risk_fact_row(from_epcis(codec.loads(body)))
            except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
                continue
            if row is not None:
                rows.append(row)
        if rows:
            bind.execute(sa.insert(RiskFact), rows)
        after = chunk[-1][0]


def downgrade() -> None:
    op.drop_table("risk_populations")
    op.drop_index("ix_risk_facts_lot_code", table_name="risk_facts")
    op.drop_index("ix_risk_facts_planted", table_name="risk_facts")
    op.drop_table("risk_facts")
