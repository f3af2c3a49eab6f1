"""public master data and importer keys: businesses, locations, authorities' public contact, API keys

FSMA 204 location descriptions and EPCIS master data need a business name, address and phone for every
place an event names; farmers are described by the community enterprise they sell through, never by their
own name or number. Every new column on an existing table is nullable, so parties enrolled before migrate
as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from traceability.domain.catalog import BusinessKind, LocationKind
from traceability.domain.states import check_in

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "businesses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("name_th", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("address_th", sa.String(length=300), nullable=True),
        sa.Column("address_en", sa.String(length=300), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("phone", sa.String(length=24), nullable=True),
        sa.Column("authority_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(check_in("kind", BusinessKind), name=op.f("ck_businesses_kind")),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authorities.id"], name=op.f("fk_businesses_authority_id_authorities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_businesses")),
        sa.UniqueConstraint("code", name=op.f("uq_businesses_code")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name_th", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("address_th", sa.String(length=300), nullable=True),
        sa.Column("address_en", sa.String(length=300), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("lat", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("lon", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("authority_id", sa.Integer(), nullable=True),
        sa.Column("business_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(check_in("kind", LocationKind), name=op.f("ck_locations_kind")),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authorities.id"], name=op.f("fk_locations_authority_id_authorities")
        ),
        sa.ForeignKeyConstraint(
            ["business_id"], ["businesses.id"], name=op.f("fk_locations_business_id_businesses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("code", name=op.f("uq_locations_code")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    with op.batch_alter_table("authorities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("district_en", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("province_en", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("address_th", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("address_en", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("phone", sa.String(length=24), nullable=True))
    # Not a batch (copy-and-move) on SQLite: farmers is referenced by plots, lots and tokens, and a copy would
    # break those references. SQLite adds a nullable column with a named REFERENCES clause in place.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE farmers ADD COLUMN business_id INTEGER "
            "CONSTRAINT fk_farmers_business_id_businesses REFERENCES businesses (id)"
        )
    else:
        op.add_column("farmers", sa.Column("business_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_farmers_business_id_businesses"), "farmers", "businesses", ["business_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE farmers DROP COLUMN business_id")
    else:
        op.drop_constraint(op.f("fk_farmers_business_id_businesses"), "farmers", type_="foreignkey")
        op.drop_column("farmers", "business_id")
    # In place (SQLite 3.35+ drops a column no index or constraint names): a copy-and-move of authorities
    # would break the rows that reference it.
    for column in ("phone", "address_en", "address_th", "province_en", "district_en"):
        op.drop_column("authorities", column)
    op.drop_table("api_keys")
    op.drop_table("locations")
    op.drop_table("businesses")
