"""photo hashes: the 64-bit perceptual hash of every evidence photo, by the photo's SHA-256

The origin-risk signal ``photo_reused`` compares evidence photos by what they show, not by their bytes: a
photo re-sent under another lot is rarely byte-identical. Hashing a photo means decoding it, so the hash is
computed once (when it is uploaded, or on first use for photos stored before this revision) and kept here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "photo_hashes",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_photo_hashes")),
    )


def downgrade() -> None:
    op.drop_table("photo_hashes")
