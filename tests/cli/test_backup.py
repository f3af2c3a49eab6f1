"""`trace backup` / `trace restore` on SQLite and PostgreSQL: a ledger recorded and anchored on the real Anvil
is backed up, restored into fresh migrated databases of both kinds, and every lot then verifies against the
chain exactly as it did before; refusals write nothing."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from eth_account import Account
from sqlalchemy import create_engine, func, inspect, select, text

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.cli import main
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.services.anchoring import Anchorer
from traceability.services.backup import backup
from traceability.services.demo import seed_demo
from traceability.services.events import record_event
from traceability.store import models
from traceability.store.database import MIGRATIONS, make_engine, migrate, transaction

POSTGRES_URL = os.environ.get("TRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def fresh_database(kind: str, tmp_path: Path, revision: str = "head") -> Iterator[str]:
    """The URL of a new database migrated to ``revision``: a SQLite file or a new PostgreSQL schema."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:8]}.db'}"
        migrate(url, revision)
        yield url
        return
    schema = f"r_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    try:
        migrate(url, revision)
        yield url
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in models.Base.metadata.sorted_tables
                if t.name in present
            }
    finally:
        engine.dispose()


def settings_for(url: str, registry: TraceRegistry, anvil, tmp_path: Path) -> Settings:
    var = tmp_path / f"var-{uuid.uuid4().hex[:8]}"
    return Settings(
        var_dir=var,
        database_url=url,
        rpc_url=anvil.rpc_url,
        contract_address=registry.address,
        confirmations=0,
    )


def run(settings: Settings, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(path: Path) -> tuple[list[dict[str, object]], list[str]]:
    """A backup's table list (names, columns, counts) and its row lines: what must survive a round trip."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        return header["tables"], f.readlines()


def verdicts(settings: Settings, capsys, lots: list[str]) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for lot in lots:
        code, text_out, err = run(settings, capsys, "verify", lot, "--json")
        assert code in (0, 1), err
        verdict = json.loads(text_out)
        out[lot] = (verdict["status"], sorted(r["code"] for r in verdict["reasons"]))
    return out


@pytest.fixture
def demo_ledger(db, w3):
    """The demo, recorded and anchored on a registry of its own (the demo registers its authorities)."""
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    result = seed_demo(db.sessions, registry, id_base=ID_BASE)
    stats = Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    assert stats.events > 0
    return registry, result.lots


def test_a_restored_database_verifies_against_the_chain_on_both_databases(
    db, demo_ledger, anvil, tmp_path, capsys
):
    registry, lots = demo_ledger
    source = settings_for(db.url, registry, anvil, tmp_path)
    before = verdicts(source, capsys, lots)
    # the demo's certified lots verify; its uncertified merge and laundering case do not (and must not after)
    assert sum(status == "verified" for status, _ in before.values()) >= 3, before
    assert {status for status, _ in before.values()} != {"verified"}

    file = tmp_path / "ledger.trace-backup.gz"
    code, out, err = run(source, capsys, "backup", str(file), "--json")
    assert code == 0, err
    summary = json.loads(out)
    source_counts = counts(db.url)
    assert summary["counts"] == source_counts and summary["rows"] == sum(source_counts.values())
    assert (
        source_counts["events"] > 0 and source_counts["batches"] > 0 and source_counts["certifications"] > 0
    )
    tables, rows = rows_of(file)

    for kind in ("sqlite", "postgresql"):  # a SQLite restore of a PostgreSQL backup too, and the reverse
        with fresh_database(kind, tmp_path) as url:
            target = settings_for(url, registry, anvil, tmp_path)
            code, out, err = run(target, capsys, "restore", str(file))
            assert code == 0, err
            assert "restored" in out
            assert counts(url) == source_counts
            assert verdicts(target, capsys, lots) == before, kind
            code, out, err = run(target, capsys, "reconcile")
            assert code == 0 and "reconcile: OK" in out, out + err
            # every value read back exactly: a backup of the restored database holds the same rows
            again = tmp_path / f"again-{kind}.gz"
            assert run(target, capsys, "backup", str(again))[0] == 0
            assert rows_of(again) == (tables, rows)
            # new rows get fresh ids (PostgreSQL's sequences were moved past the restored ones)
            code, out, err = run(target, capsys, "apikey", "create", "after-restore")
            assert code == 0, err
            code, out, err = run(target, capsys, "restore", str(file))
            assert code == 2 and "not empty" in err


@pytest.fixture
def small_ledger(db, registry, tmp_path):
    """A recorded (not anchored) lifecycle and its backup file."""
    seed_parties(db.sessions, registry, with_officer=True)
    for event in lifecycle():
        with transaction(db.sessions) as s:
            record_event(s, event, id_base=ID_BASE)
    file = tmp_path / "small.gz"
    backup(db.engine, file)
    return file


def refused(db, registry, anvil, tmp_path, capsys, file: Path, *, revision: str = "head") -> str:
    """Restore ``file`` into a fresh database of the same kind as ``db``: it must exit 2 and write nothing."""
    with fresh_database(db.dialect, tmp_path, revision) as url:
        code, out, err = run(settings_for(url, registry, anvil, tmp_path), capsys, "restore", str(file))
        assert code == 2 and err.startswith("trace restore: error: "), (code, out, err)
        assert set(counts(url).values()) == {0}
        return err


def rewrite(source: Path, target: Path, change) -> Path:
    with gzip.open(source, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    with gzip.open(target, "wt", encoding="utf-8") as f:
        f.writelines(change(lines))
    return target


def test_restore_refuses_a_database_that_is_not_empty(db, registry, anvil, tmp_path, capsys, small_ledger):
    before = counts(db.url)
    code, _, err = run(settings_for(db.url, registry, anvil, tmp_path), capsys, "restore", str(small_ledger))
    assert code == 2 and "not empty" in err and "trace migrate" in err
    assert counts(db.url) == before


def test_restore_refuses_another_revision(db, registry, anvil, tmp_path, capsys, small_ledger):
    versions = sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py"))
    previous = next(
        line.split("=", 1)[1].strip().strip("\"'")
        for line in (MIGRATIONS / "versions" / versions[-2]).read_text().splitlines()
        if line.startswith("revision")
    )
    err = refused(db, registry, anvil, tmp_path, capsys, small_ledger, revision=previous)
    assert f"at revision {previous}" in err and "trace migrate" in err


def test_restore_refuses_an_unmigrated_database(db, registry, anvil, tmp_path, capsys, small_ledger):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(url).dispose()
    code, _, err = run(settings_for(url, registry, anvil, tmp_path), capsys, "restore", str(small_ledger))
    assert code == 2 and "not migrated" in err and "trace migrate" in err


def test_restore_refuses_a_truncated_gzip_file(db, registry, anvil, tmp_path, capsys, small_ledger):
    data = small_ledger.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert "not a readable backup" in refused(db, registry, anvil, tmp_path, capsys, cut)


def test_restore_refuses_a_file_cut_at_a_line_and_rolls_back_what_it_loaded(
    db, registry, anvil, tmp_path, capsys, small_ledger
):
    # whole lines dropped near the end: every table before them was inserted, then all is rolled back
    short = rewrite(small_ledger, tmp_path / "short.gz", lambda lines: lines[:-4])
    err = refused(db, registry, anvil, tmp_path, capsys, short)
    assert "truncated" in err


def test_restore_refuses_a_garbled_file(db, registry, anvil, tmp_path, capsys, small_ledger):
    def garble(lines: list[str]) -> list[str]:
        at = next(i for i, line in enumerate(lines) if line.startswith('{"table":"events"}')) + 1
        row = json.loads(lines[at])
        row[0] = "not-a-uuid"
        return [*lines[:at], json.dumps(row) + "\n", *lines[at + 1 :]]

    assert "garbled" in refused(
        db, registry, anvil, tmp_path, capsys, rewrite(small_ledger, tmp_path / "g.gz", garble)
    )

    def stringly(lines: list[str]) -> list[str]:
        # SQLite itself would take a string into an integer column: restore checks each value's type
        at = next(i for i, line in enumerate(lines) if line.startswith('{"table":"event_lots"}')) + 1
        row = json.loads(lines[at])
        seq = [c for t in json.loads(lines[0])["tables"] if t["name"] == "event_lots" for c in t["columns"]]
        row[seq.index("seq")] = "7"
        return [*lines[:at], json.dumps(row) + "\n", *lines[at + 1 :]]

    assert "garbled" in refused(
        db, registry, anvil, tmp_path, capsys, rewrite(small_ledger, tmp_path / "s.gz", stringly)
    )
    junk = rewrite(small_ledger, tmp_path / "j.gz", lambda lines: [*lines[:5], "{not json\n", *lines[6:]])
    assert "not JSON" in refused(db, registry, anvil, tmp_path, capsys, junk)
    plain = tmp_path / "plain.txt"
    plain.write_text("hello\n")
    assert "not a readable backup" in refused(db, registry, anvil, tmp_path, capsys, plain)


def test_restore_refuses_another_format_version(db, registry, anvil, tmp_path, capsys, small_ledger):
    def bump(lines: list[str]) -> list[str]:
        header = json.loads(lines[0])
        header["version"] = 99
        return [json.dumps(header) + "\n", *lines[1:]]

    err = refused(db, registry, anvil, tmp_path, capsys, rewrite(small_ledger, tmp_path / "v.gz", bump))
    assert "format version 99" in err


def test_backup_is_one_snapshot_while_others_write(db, registry, tmp_path, small_ledger):
    """A row committed by another connection while the backup is under way is not in it: the header's counts
    and the rows are of one moment, and the file restores."""
    before = counts(db.url)

    def write_meanwhile(table: str, _rows: int) -> None:
        if table == models.Base.metadata.sorted_tables[0].name:
            with transaction(db.sessions) as s:
                s.add(models.PhotoHash(sha256="ab" * 32, phash="0" * 16, created_at=datetime.now(UTC)))

    file = tmp_path / "during.gz"
    summary = backup(db.engine, file, on_table=write_meanwhile)
    assert summary.rows == before
    assert counts(db.url)["photo_hashes"] == before["photo_hashes"] + 1
    tables, rows = rows_of(file)
    assert {t["name"]: t["rows"] for t in tables} == before
    with fresh_database(db.dialect, tmp_path) as url:
        engine = make_engine(url)
        try:
            from traceability.services.backup import restore

            restore(engine, file)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM photo_hashes")).scalar_one() == 0
        finally:
            engine.dispose()
        assert counts(url) == before


def test_backup_refuses_an_unmigrated_database_and_an_unwritable_file(db, registry, anvil, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    create_engine(url).dispose()
    file = tmp_path / "b.gz"
    code, _, err = run(settings_for(url, registry, anvil, tmp_path), capsys, "backup", str(file))
    assert code == 2 and err.startswith("trace backup: error: ") and "not migrated" in err
    assert not file.exists() and not list(tmp_path.glob("*.partial"))
    missing = tmp_path / "no-such-dir" / "b.gz"
    code, _, err = run(settings_for(db.url, registry, anvil, tmp_path), capsys, "backup", str(missing))
    assert code == 2 and "cannot write the backup" in err
    assert not missing.parent.exists()
