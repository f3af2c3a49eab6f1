"""foundations: fixed ledger facts (id_base), write-ahead chain operations, party status, CHECK constraints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from traceability.domain.states import (
    BatchStatus,
    ChainOpKind,
    ChainOpStatus,
    LotRole,
    OutboxStatus,
    PartyStatus,
    check_in,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ledger_meta")),
    )
    op.create_table(
        "chain_ops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(check_in("kind", ChainOpKind), name=op.f("ck_chain_ops_kind")),
        sa.CheckConstraint(check_in("status", ChainOpStatus), name=op.f("ck_chain_ops_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_ops")),
    )
    with op.batch_alter_table("chain_ops", schema=None) as batch_op:
        batch_op.create_index("ix_chain_ops_status_id", ["status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_ops_subject"), ["subject"], unique=False)

    for table in ("authorities", "officers"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "status", sa.String(length=12), nullable=False, server_default=PartyStatus.ACTIVE.value
                )
            )
            batch_op.create_check_constraint(op.f(f"ck_{table}_status"), check_in("status", PartyStatus))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("status", server_default=None)

    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_batches_status"), check_in("status", BatchStatus))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_outbox_status"), check_in("status", OutboxStatus))
    with op.batch_alter_table("event_lots", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_event_lots_role"), check_in("role", LotRole))


def downgrade() -> None:
    with op.batch_alter_table("event_lots", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_event_lots_role"), type_="check")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_status"), type_="check")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_batches_status"), type_="check")
    for table in ("officers", "authorities"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_status"), type_="check")
            batch_op.drop_column("status")
    with op.batch_alter_table("chain_ops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_ops_subject"))
        batch_op.drop_index("ix_chain_ops_status_id")
    op.drop_table("chain_ops")
    op.drop_table("ledger_meta")
