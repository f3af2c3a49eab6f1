"""`trace reconcile` reports every finding issue 10 names, each produced on purpose on a real Anvil and on
SQLite and PostgreSQL: a row whose body no longer hashes to its hash, event rows deleted (a batch short of
its events, a gap in a lot's hash chain), anchors not final, and roots on chain that no batch row explains.
Each finding names its row, batch or root, and the command's exit status says what kind of finding it is:
0 clean, 1 a problem, 3 only anchoring still under way."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from eth_account import Account
from sqlalchemy import select

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.cli import main
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain import codec
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.ledger import Discrepancy, reconcile
from traceability.store import models
from traceability.store.database import transaction

if TYPE_CHECKING:  # the top conftest's class; a module named conftest is whichever was imported last
    from conftest import Database

GRADING, PACKING = 2, 3  # lifecycle()'s grading and packing: packing names grading's hash in its prev


@dataclass
class Ledger:
    """A registry of the test's own (so every root on it is this ledger's), six events anchored in one
    batch, and the block the registry was deployed in."""

    db: Database
    registry: TraceRegistry
    deployed_at: int
    events: list[Any]
    settings: Settings


@pytest.fixture
def ledger(db: Database, w3, anvil, tmp_path: Path) -> Iterator[Ledger]:
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    deployed_at = int(w3.eth.block_number)
    seed_parties(db.sessions, registry)
    recorded = []
    for event in lifecycle():
        with transaction(db.sessions) as session:
            recorded.append(record_event(session, event, id_base=ID_BASE))
    stats = Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    assert stats.events == 6 and stats.batches == 1
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=db.url,
        rpc_url=anvil.rpc_url,
        contract_address=registry.address,
        contract_block=deployed_at,
        confirmations=0,
    )
    yield Ledger(db, registry, deployed_at, recorded, settings)


def report(ledger: Ledger, *, confirmations: int = 0) -> list[Discrepancy]:
    with transaction(ledger.db.sessions) as session:
        problems, _ = reconcile(
            session, ledger.registry, confirmations=confirmations, logs_from_block=ledger.deployed_at
        )
    return problems


def cli(ledger: Ledger, capsys, **settings: Any) -> tuple[int, dict[str, Any], str]:
    """``trace reconcile --json`` and ``trace reconcile`` (text); the exit status must be the same."""
    configured = ledger.settings.model_copy(update=settings)
    code = main(["reconcile", "--json"], settings=configured)
    out = capsys.readouterr()
    assert out.err == "", out.err
    text_code = main(["reconcile"], settings=configured)
    text = capsys.readouterr().out
    assert text_code == code, text
    return code, json.loads(out.out), text


def batch_id(ledger: Ledger) -> int:
    with transaction(ledger.db.sessions) as session:
        return int(session.scalars(select(models.Batch.id)).one())


def raw_execute(db: Database, statements: list[tuple[str, dict[str, Any]]], *, foreign_keys: bool) -> None:
    """Write to the database behind the service's back, as an intruder with database access would; with
    ``foreign_keys`` False the database's own checks are off too (SQLite: the pragma; PostgreSQL: replica
    mode, which fires no foreign-key trigger)."""
    if db.dialect == "sqlite":
        conn = sqlite3.connect(db.url.split("///", 1)[1])
        try:
            conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            for sql, params in statements:
                conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()
        return
    with psycopg.connect(db.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=False) as conn:
        if not foreign_keys:
            conn.execute("SET session_replication_role = replica")
        for sql, params in statements:
            conn.execute(sql.replace(":id", "%(id)s").replace(":body", "%(body)s"), params)
        conn.commit()


def event_key(db: Database, event_id: Any) -> Any:
    """The event id as the driver compares it with the events table (SQLite keeps UUIDs as 32 hex
    characters, PostgreSQL as uuid)."""
    with transaction(db.sessions) as session:
        row = session.get(models.Event, event_id)
        assert row is not None
        if db.dialect != "sqlite":
            return row.id
        stored = session.connection().exec_driver_sql("SELECT id FROM events WHERE hash = ?", (row.hash,))
        return str(stored.scalar_one())


def delete_event(ledger: Ledger, index: int, *, leave_leaf: bool) -> Any:
    """Delete one event's row and its rows in other tables; with ``leave_leaf`` its batch leaf stays (so it
    points at no event). Returns the recorded event."""
    gone = ledger.events[index]
    key = event_key(ledger.db, gone.event_id)
    tables = ["risk_facts", "event_lots", "outbox", *([] if leave_leaf else ["batch_events"])]
    statements = [(f"DELETE FROM {t} WHERE event_id = :id", {"id": key}) for t in tables]
    statements.append(("DELETE FROM events WHERE id = :id", {"id": key}))
    raw_execute(ledger.db, statements, foreign_keys=not leave_leaf)
    return gone


def test_a_clean_ledger_reconciles_ok_with_exit_0(ledger, capsys):
    assert report(ledger) == []
    code, result, text = cli(ledger, capsys)
    assert code == 0 and result["ok"] is True and result["status"] == "ok"
    assert result["problems"] == [] and result["counts"] == {}
    assert result["stats"]["events"] == 6 and result["stats"]["batches"] == 1
    assert "reconcile: OK" in text


def test_an_edited_body_is_a_hash_mismatch_naming_the_row(ledger, capsys):
    harvest = ledger.events[1]
    with transaction(ledger.db.sessions) as session:
        body = codec.loads(session.get(models.Event, harvest.event_id).body)
    body["quantityList"][0]["quantity"] = Decimal("5000")  # more produce on paper than was grown
    _update_body(ledger, harvest.event_id, codec.dumps(body))
    problems = report(ledger)
    assert [(p.code, p.event_id) for p in problems] == [("hash_mismatch", str(harvest.event_id))]
    assert str(harvest.event_id) in problems[0].message and harvest.hash in problems[0].message
    code, result, text = cli(ledger, capsys)
    assert code == 1 and result["ok"] is False and result["status"] == "problems"
    assert result["counts"] == {"hash_mismatch": 1}
    assert f"PROBLEM hash_mismatch: event {harvest.event_id}" in text


def _update_body(ledger: Ledger, event_id: Any, body: str) -> None:
    key = event_key(ledger.db, event_id)
    raw_execute(ledger.db, [("UPDATE events SET body = :body WHERE id = :id", {"body": body, "id": key})],
                foreign_keys=True)  # fmt: skip


def test_a_deleted_event_row_with_its_leaf_left_is_named_by_its_batch(ledger, capsys):
    """Foreign keys bypassed: the batch leaf still names the deleted event's id."""
    gone = delete_event(ledger, GRADING, leave_leaf=True)
    packing = ledger.events[PACKING]
    batch = batch_id(ledger)
    problems = report(ledger)
    missing = [p for p in problems if p.code == "event_missing"]
    by_leaf = [p for p in missing if p.batch_id == batch]
    assert [p.event_id for p in by_leaf] == [str(gone.event_id)]
    assert f"batch {batch}: its event {gone.event_id} has no event row" == by_leaf[0].message
    # the lot's hash chain has a gap where the row was: the next event names a hash no row holds
    by_chain = [p for p in missing if p.batch_id is None]
    assert [p.event_id for p in by_chain] == [str(packing.event_id)]
    assert gone.hash in by_chain[0].message and "(packing)" in by_chain[0].message
    assert {p.code for p in problems} == {"event_missing", "root_mismatch"}
    code, result, _ = cli(ledger, capsys)
    assert code == 1 and result["counts"] == {"event_missing": 2, "root_mismatch": 1}


def test_a_deleted_event_row_and_everything_pointing_at_it_still_shows(ledger, capsys):
    """Deleted the way the database allows (its rows in every table first): the batch counts it missing and
    the hash chain names its hash."""
    gone = delete_event(ledger, GRADING, leave_leaf=False)
    batch = batch_id(ledger)
    problems = report(ledger)
    missing = [p for p in problems if p.code == "event_missing"]
    assert [(p.batch_id, p.message) for p in missing if p.batch_id is not None] == [
        (batch, f"batch {batch}: 1 of its 6 event rows are missing")
    ]
    gaps = [p for p in missing if p.batch_id is None]
    assert [p.event_id for p in gaps] == [str(ledger.events[PACKING].event_id)]
    assert gone.hash in gaps[0].message
    code, result, text = cli(ledger, capsys)
    assert code == 1 and result["status"] == "problems"
    assert f"PROBLEM event_missing: batch {batch}: 1 of its 6 event rows are missing" in text


def test_batches_not_final_exit_3(ledger, w3, capsys):
    # Anchored with 0 confirmations; an operator now asks for 1000: not final until they come.
    batch = batch_id(ledger)
    problems = report(ledger, confirmations=1000)
    assert [(p.code, p.batch_id) for p in problems] == [("anchor_not_final", batch)]
    assert "of the 1000 confirmations" in problems[0].message and problems[0].not_final
    code, result, text = cli(ledger, capsys, confirmations=1000)
    assert code == 3 and result["ok"] is False and result["status"] == "not_final"
    assert result["counts"] == {"anchor_not_final": 1}
    assert f"WAIT anchor_not_final: batch {batch} (root " in text and "not final yet" in text

    # A new event written ahead into a batch not yet sent, then sent and mined, with 2 confirmations asked.
    with transaction(ledger.db.sessions) as session:
        seed = lifecycle(lot="T-VEG-0009", child_a="T-VEG-0009A", child_b="T-VEG-0009B")[0]
        record_event(session, seed, id_base=ID_BASE)
    anchorer = Anchorer(ledger.db.sessions, ledger.registry, batch_max=256, confirmations=2)
    try:
        second = anchorer.claim_batch()
        assert second is not None
        [sending] = [p for p in report(ledger, confirmations=2) if p.batch_id == second]
        assert sending.code == "anchor_not_final"
        assert "written ahead, not mined, not sent yet" in sending.message
        anchorer.send_batch(second)
    finally:
        anchorer.close()
    with transaction(ledger.db.sessions) as session:
        mined = session.get(models.Batch, second)
        assert mined is not None and mined.status == "mined"
        block = mined.block_number
    head = int(w3.eth.block_number)
    [waiting] = [p for p in report(ledger, confirmations=2) if p.batch_id == second]
    assert waiting.message.endswith(f"mined in block {block}, {head - block} of 2 confirmation(s), not final")
    # The first batch, anchored with none, has fewer than 2 blocks on top of it too, unless blocks came.
    with transaction(ledger.db.sessions) as session:
        first_block = session.get(models.Batch, batch).block_number
    expected = {second} | ({batch} if head - first_block < 2 else set())
    code, result, _ = cli(ledger, capsys, confirmations=2)
    assert code == 3 and {p["batch_id"] for p in result["problems"]} == expected
    assert result["counts"] == {"anchor_not_final": len(expected)}

    # A problem among them makes it exit 1: "not final" never hides one.
    _update_body(ledger, ledger.events[0].event_id, "{}")
    code, result, _ = cli(ledger, capsys, confirmations=2)
    assert code == 1 and result["counts"] == {"anchor_not_final": len(expected), "body_unreadable": 1}


def test_a_root_anchored_behind_the_ledgers_back_is_unexplained(ledger, capsys):
    """Someone else holding the anchor key (here the dev account itself) anchors a root of their own."""
    foreign = "0x" + "5a" * 32
    receipt = ledger.registry.anchor(foreign, 3)
    ledger.registry.log_chunk_blocks = 2  # read the logs in many small ranges: none may fall between
    problems = report(ledger)
    assert [(p.code, p.root) for p in problems] == [("unexplained_root", foreign)]
    message = problems[0].message
    assert foreign in message and f"block {receipt.block_number}" in message and receipt.tx_hash in message
    assert "3 events" in message and "no batch row holds it" in message
    code, result, text = cli(ledger, capsys)
    assert code == 1 and result["counts"] == {"unexplained_root": 1}
    assert result["problems"][0]["root"] == foreign
    assert f"PROBLEM unexplained_root: root {foreign}" in text
    # the scan starts at the registry's deployment: a range after the foreign anchor does not see it
    with transaction(ledger.db.sessions) as session:
        later, _ = reconcile(session, ledger.registry, logs_from_block=receipt.block_number + 1)
    assert later == []
