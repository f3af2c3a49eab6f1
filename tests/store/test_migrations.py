"""The migrations are the schema: they must build a database the models agree with, on both backends."""

from __future__ import annotations

import os
import uuid as _uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from traceability.store.database import alembic_config, make_engine, migrate
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


# --- 0004: plot name, crop, standard and boundary --------------------------------------------------------


POSTGRES_URL = os.environ.get("TRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
AUTHORITY = "(SELECT id FROM authorities WHERE code = 'LAO-OLD')"
FARMER = "(SELECT id FROM farmers WHERE code = 'F-0001')"


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no migration run yet): a SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    schema = f"t_{_uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _old_plot(engine: Engine) -> None:
    """A farmer and a plot as revision 0003 knew them (no name, crop, standard or boundary)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO authorities (code, name_th, name_en, district_th, province_th, status, "
                "created_at) VALUES ('LAO-OLD', 'อบต.เก่า', 'Old SAO', 'อำเภอ', 'จังหวัด', 'active', "
                "CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO farmers (code, authority_id, display_name, created_at) "
                f"VALUES ('F-0001', {AUTHORITY}, 'นางสมพร ใจดี', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO plots (code, farmer_id, authority_id, village_th, village_en, area_rai, "
                f"created_at) VALUES ('PLOT-OLD-01', {FARMER}, {AUTHORITY}, 'บ้านเก่า', 'Ban Kao', 2.5, "
                "CURRENT_TIMESTAMP)"
            )
        )


def _insert_plot(engine: Engine, code: str, **columns: object) -> None:
    names = ", ".join(columns)
    values = ", ".join(f":{k}" for k in columns)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO plots (code, farmer_id, authority_id, village_th, village_en, area_rai, "
                f"created_at, {names}) VALUES (:code, {FARMER}, {AUTHORITY}, 'บ้าน', 'Ban', 1, "
                f"CURRENT_TIMESTAMP, {values})"
            ),
            {"code": code, **columns},
        )


def test_plots_enrolled_before_0004_migrate_and_the_new_columns_are_checked(blank_url):
    migrate(blank_url, "0003")
    engine = make_engine(blank_url)
    try:
        _old_plot(engine)
        migrate(blank_url)
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT code, name, crop, standard, boundary, boundary_area_rai FROM plots")
            ).one()
        assert tuple(row) == ("PLOT-OLD-01", None, None, None, None, None)

        polygon = '{"type": "Polygon", "coordinates": [[[103, 15], [103.001, 15], [103, 15.001], [103, 15]]]}'
        _insert_plot(
            engine,
            "PLOT-NEW-01",
            name="แปลงหลังบ้าน",
            standard="pgs",
            boundary=polygon,
            boundary_area_rai=7.7,
            boundary_flagged=False,
        )
        refused: list[dict[str, object]] = [
            {"name": "ผิดมาตรฐาน", "standard": "organic-ish"},  # not a FarmingStandard
            {"name": "ไม่มีพื้นที่", "boundary": polygon},  # a boundary without its computed area and flag
            {"name": "ไม่มีขอบเขต", "boundary_area_rai": 1.0, "boundary_flagged": True},
            {"name": "แปลงหลังบ้าน"},  # the same farmer's plot name twice
        ]
        for n, columns in enumerate(refused):
            with pytest.raises(IntegrityError):
                _insert_plot(engine, f"PLOT-BAD-{n}", **columns)
        _insert_plot(engine, "PLOT-KEY-1", name="ก", enrolment_key="k-1")
        with pytest.raises(IntegrityError):  # one enrolment form makes one plot
            _insert_plot(engine, "PLOT-KEY-2", name="ข", enrolment_key="k-1")
    finally:
        engine.dispose()


def test_0004_downgrades_and_upgrades_again_keeping_the_plots(blank_url):
    migrate(blank_url, "0003")
    engine = make_engine(blank_url)
    try:
        _old_plot(engine)
        migrate(blank_url)
        command.downgrade(alembic_config(blank_url), "0003")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT code FROM plots")).scalar_one() == "PLOT-OLD-01"
        migrate(blank_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM plots WHERE name IS NULL")).scalar_one() == 1
    finally:
        engine.dispose()


def test_0006_creates_and_drops_the_photo_hashes_table(blank_url):
    migrate(blank_url, "0005")
    engine = make_engine(blank_url)
    try:
        assert "photo_hashes" not in inspect(engine).get_table_names()
        migrate(blank_url, "0006")
        columns = {c["name"]: c for c in inspect(engine).get_columns("photo_hashes")}
        assert set(columns) == {"sha256", "phash", "created_at"}
        assert not any(c["nullable"] for c in columns.values())
        key = inspect(engine).get_pk_constraint("photo_hashes")
        assert (key["name"], key["constrained_columns"]) == ("pk_photo_hashes", ["sha256"])
        command.downgrade(alembic_config(blank_url), "0005")
        assert "photo_hashes" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
