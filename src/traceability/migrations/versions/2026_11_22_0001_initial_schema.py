"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 05:39:47.791660
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "authorities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name_th", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("district_th", sa.String(length=100), nullable=False),
        sa.Column("province_th", sa.String(length=100), nullable=False),
        sa.Column("admin_address", sa.String(length=42), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorities")),
        sa.UniqueConstraint("code", name=op.f("uq_authorities_code")),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("block_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("root", name=op.f("uq_batches_root")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_status"), ["status"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_events_hash")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_events_idempotency_key")),
    )
    op.create_table(
        "batch_events",
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("proof", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_batch_events_batch_id_batches")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_batch_events_event_id_events")),
        sa.PrimaryKeyConstraint("batch_id", "event_id", name=op.f("pk_batch_events")),
    )
    with op.batch_alter_table("batch_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batch_events_event_id"), ["event_id"], unique=False)

    op.create_table(
        "certifications",
        sa.Column("id", sa.String(length=66), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=False),
        sa.Column("authority_code", sa.String(length=32), nullable=False),
        sa.Column("officer_address", sa.String(length=42), nullable=False),
        sa.Column("standard", sa.String(length=80), nullable=False),
        sa.Column("typed_data", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_certifications_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certifications")),
        sa.UniqueConstraint("event_id", name=op.f("uq_certifications_event_id")),
    )
    with op.batch_alter_table("certifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_certifications_lot_code"), ["lot_code"], unique=False)

    op.create_table(
        "event_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_event_lots_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_lots")),
        sa.UniqueConstraint("lot_code", "seq", name=op.f("uq_event_lots_lot_code_seq")),
    )
    with op.batch_alter_table("event_lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_lots_event_id"), ["event_id"], unique=False)

    op.create_table(
        "farmers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("pin_hash", sa.String(length=200), nullable=True),
        sa.Column("group_th", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authorities.id"], name=op.f("fk_farmers_authority_id_authorities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farmers")),
        sa.UniqueConstraint("code", name=op.f("uq_farmers_code")),
        sa.UniqueConstraint("phone", name=op.f("uq_farmers_phone")),
    )
    op.create_table(
        "officers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("keystore", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authorities.id"], name=op.f("fk_officers_authority_id_authorities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_officers")),
        sa.UniqueConstraint("address", name=op.f("uq_officers_address")),
        sa.UniqueConstraint("username", name=op.f("uq_officers_username")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_outbox_batch_id_batches")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_outbox_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index("ix_outbox_status_id", ["status", "id"], unique=False)

    op.create_table(
        "plots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("farmer_id", sa.Integer(), nullable=False),
        sa.Column("authority_id", sa.Integer(), nullable=False),
        sa.Column("village_th", sa.String(length=200), nullable=False),
        sa.Column("village_en", sa.String(length=200), nullable=False),
        sa.Column("area_rai", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("lat", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("lon", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authorities.id"], name=op.f("fk_plots_authority_id_authorities")
        ),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_plots_farmer_id_farmers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plots")),
        sa.UniqueConstraint("code", name=op.f("uq_plots_code")),
    )
    op.create_table(
        "lots",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("crop", sa.String(length=64), nullable=False),
        sa.Column("product_th", sa.String(length=200), nullable=False),
        sa.Column("product_en", sa.String(length=200), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("authority_id", sa.Integer(), nullable=True),
        sa.Column("plot_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authorities.id"], name=op.f("fk_lots_authority_id_authorities")
        ),
        sa.ForeignKeyConstraint(["plot_id"], ["plots.id"], name=op.f("fk_lots_plot_id_plots")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_lots")),
    )


def downgrade() -> None:

    op.drop_table("lots")
    op.drop_table("plots")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_id")
        batch_op.drop_index(batch_op.f("ix_outbox_batch_id"))

    op.drop_table("outbox")
    op.drop_table("officers")
    op.drop_table("farmers")
    with op.batch_alter_table("event_lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_lots_event_id"))

    op.drop_table("event_lots")
    with op.batch_alter_table("certifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certifications_lot_code"))

    op.drop_table("certifications")
    with op.batch_alter_table("batch_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_events_event_id"))

    op.drop_table("batch_events")
    op.drop_table("events")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_status"))

    op.drop_table("batches")
    op.drop_table("authorities")
