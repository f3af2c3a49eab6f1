"""The migrations are the schema: they must build a database the models agree with, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from traceability.store.models import Base


def test_models_and_migrations_agree(db):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_head_creates_every_table(db):
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_states_are_check_constrained(db):
    """A status or role outside its enum never reaches the database, on either backend."""
    import uuid

    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from traceability.domain.states import BatchStatus

    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO batches (root, event_count, status, attempts, created_at) "
                "VALUES (:root, 1, :status, 0, CURRENT_TIMESTAMP)"
            ),
            {"root": "0x" + "11" * 32, "status": BatchStatus.SENDING.value},
        )
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO batches (root, event_count, status, attempts, created_at) "
                "VALUES ('0x22', 1, 'sent', 0, CURRENT_TIMESTAMP)"
            )
        )
    event_id = uuid.uuid4()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (id, kind, event_time, recorded_at, actor, body, hash) "
                "VALUES (:id, 'harvest', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'F-1', '{}', '0x33')"
            ),
            {"id": event_id.hex if db.dialect == "sqlite" else str(event_id)},
        )
    for sql in (
        "INSERT INTO outbox (event_id, status, created_at) VALUES (:id, 'waiting', CURRENT_TIMESTAMP)",
        "INSERT INTO event_lots (event_id, lot_code, seq, role) VALUES (:id, 'LOT-1', 1, 'owner')",
    ):
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text(sql), {"id": event_id.hex if db.dialect == "sqlite" else str(event_id)})
