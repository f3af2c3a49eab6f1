"""plot details: name, crop, farming standard, GeoJSON boundary with its computed area and flag, enrolment key

Every new column is nullable, so plots enrolled before (by the CLI, the demo or a benchmark) migrate as they
are; the enrolment service requires name, crop and standard for new plots.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from traceability.domain.catalog import FarmingStandard
from traceability.domain.states import check_in

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOUNDARY_COMPLETE = (
    "(boundary IS NULL AND boundary_area_rai IS NULL AND boundary_flagged IS NULL) OR "
    "(boundary IS NOT NULL AND boundary_area_rai IS NOT NULL AND boundary_flagged IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("plots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("crop", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("standard", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("boundary", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("boundary_area_rai", sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.add_column(sa.Column("boundary_flagged", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("enrolment_key", sa.String(length=36), nullable=True))
        batch_op.create_check_constraint(op.f("ck_plots_standard"), check_in("standard", FarmingStandard))
        batch_op.create_check_constraint(op.f("ck_plots_boundary_complete"), BOUNDARY_COMPLETE)
        batch_op.create_unique_constraint(batch_op.f("uq_plots_enrolment_key"), ["enrolment_key"])
        batch_op.create_unique_constraint(batch_op.f("uq_plots_farmer_id_name"), ["farmer_id", "name"])


def downgrade() -> None:
    with op.batch_alter_table("plots", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_plots_farmer_id_name"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_plots_enrolment_key"), type_="unique")
        batch_op.drop_constraint(op.f("ck_plots_boundary_complete"), type_="check")
        batch_op.drop_constraint(op.f("ck_plots_standard"), type_="check")
        batch_op.drop_column("enrolment_key")
        batch_op.drop_column("boundary_flagged")
        batch_op.drop_column("boundary_area_rai")
        batch_op.drop_column("boundary")
        batch_op.drop_column("standard")
        batch_op.drop_column("crop")
        batch_op.drop_column("name")
