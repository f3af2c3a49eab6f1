"""auth: bearer tokens (stored hashed) and sign-in attempts (throttling across processes)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from traceability.domain.states import Role, check_in

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("farmer_id", sa.Integer(), nullable=True),
        sa.Column("officer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(check_in("role", Role), name=op.f("ck_auth_tokens_role")),
        sa.CheckConstraint(
            "(role = 'farmer' AND farmer_id IS NOT NULL AND officer_id IS NULL) OR "
            "(role = 'officer' AND officer_id IS NOT NULL AND farmer_id IS NULL)",
            name=op.f("ck_auth_tokens_one_party"),
        ),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_auth_tokens_farmer_id_farmers")),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["officers.id"], name=op.f("fk_auth_tokens_officer_id_officers")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_auth_tokens")),
    )
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_tokens_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_auth_tokens_farmer_id"), ["farmer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_auth_tokens_officer_id"), ["officer_id"], unique=False)

    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_attempts_account_key_created_at", ["account_key", "created_at"], unique=False
        )
        batch_op.create_index("ix_login_attempts_client_created_at", ["client", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_attempts_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempts_created_at"))
        batch_op.drop_index("ix_login_attempts_client_created_at")
        batch_op.drop_index("ix_login_attempts_account_key_created_at")
    op.drop_table("login_attempts")
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_tokens_officer_id"))
        batch_op.drop_index(batch_op.f("ix_auth_tokens_farmer_id"))
        batch_op.drop_index(batch_op.f("ix_auth_tokens_expires_at"))
    op.drop_table("auth_tokens")
