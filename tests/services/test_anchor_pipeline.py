"""The pipelined anchoring worker: several batches in flight at once, each anchored exactly once with every
proof verifying on chain; a worker killed with batches in flight resumes with nothing anchored twice and
nothing skipped; bulk claims store what the one-at-a-time code stored; the loop takes full batches at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.ids import from_hex, to_hex
from traceability.domain.merkle import MerkleTree
from traceability.services.anchoring import Anchorer, run_forever
from traceability.services.events import record_event
from traceability.services.ledger import reconcile
from traceability.services.runtime import make_web3
from traceability.store import models
from traceability.store.database import transaction


def record(db, events) -> None:
    for ev in events:
        with transaction(db.sessions) as s:
            record_event(s, ev, id_base=ID_BASE)


def batches(db) -> list[models.Batch]:
    with transaction(db.sessions) as s:
        rows = s.scalars(select(models.Batch).order_by(models.Batch.id)).all()
        s.expunge_all()
        return list(rows)


def assert_every_event_anchored_once_and_proven(db, registry: TraceRegistry) -> None:
    """Each event in exactly one anchored batch, and the contract's verifyEvent accepts its stored proof."""
    with transaction(db.sessions) as s:
        rows = s.execute(
            select(models.Event.hash, models.BatchEvent.proof, models.Batch.root, models.Batch.status)
            .join(models.BatchEvent, models.BatchEvent.event_id == models.Event.id)
            .join(models.Batch, models.Batch.id == models.BatchEvent.batch_id)
        ).all()
        events = s.scalars(select(models.Event.hash)).all()
        outbox = s.scalars(select(models.Outbox.status)).all()
        problems, _ = reconcile(s, registry)
    assert sorted(h for h, _, _, _ in rows) == sorted(events)  # every event once: none skipped, none twice
    assert {status for _, _, _, status in rows} == {"anchored"}
    assert set(outbox) == {"anchored"}
    assert all(registry.verify_events([(h, proof, root) for h, proof, root, _ in rows]))
    assert problems == []


def test_batches_in_flight_together_are_each_anchored_once_and_verify(db, tmp_path):
    node = AnvilNode().start()
    try:
        w3 = make_web3(node.rpc_url)
        account = Account.from_key(ANVIL_DEV_KEY)
        registry = TraceRegistry.deploy(w3, account)
        seed_parties(db.sessions, registry)
        record(db, lifecycle())
        w3.provider.make_request("evm_setAutomine", [False])  # transactions wait in the mempool
        nonce_before = w3.eth.get_transaction_count(account.address)
        anchorer = Anchorer(db.sessions, registry, batch_max=2, confirmations=0)

        assert anchorer.step(wait=False) == 6  # three batches of two claimed, written ahead and sent

        sent = batches(db)
        assert [(b.status, b.event_count, b.attempts) for b in sent] == [("sending", 2, 1)] * 3
        assert len({b.tx_hash for b in sent}) == 3 and all(b.tx_hash for b in sent)
        assert w3.eth.get_transaction_count(account.address, "pending") == nonce_before + 3
        assert all(registry.anchored_at(from_hex(b.root)) == 0 for b in sent)  # none mined yet

        w3.provider.make_request("evm_mine", [])  # one block takes all three, in nonce order
        w3.provider.make_request("evm_setAutomine", [True])
        stats = anchorer.run_once(poll_s=0.05)

        assert stats.batches == 3 and stats.events == 6
        anchored = batches(db)
        assert len({b.block_number for b in anchored}) == 1
        assert [b.tx_hash for b in anchored] == [b.tx_hash for b in sent]  # receipts of the sent ones
        assert w3.eth.get_transaction_count(account.address) == nonce_before + 3  # nothing sent again
        assert_every_event_anchored_once_and_proven(db, registry)
    finally:
        node.stop()


@pytest.mark.parametrize("mempool", ["mined after the crash", "lost with the crash"])
def test_worker_killed_with_batches_in_flight_resumes_without_duplicates_or_gaps(db, tmp_path, mempool):
    """A real `trace worker` is SIGKILLed with three batches sent and none mined. Their transactions then
    land (nothing may be sent again) or are lost from the node's mempool (each must be sent again, once)."""
    node = AnvilNode().start()
    worker = None
    try:
        w3 = make_web3(node.rpc_url)
        account = Account.from_key(ANVIL_DEV_KEY)
        registry = TraceRegistry.deploy(w3, account)
        seed_parties(db.sessions, registry)
        record(db, lifecycle())
        w3.provider.make_request("evm_setAutomine", [False])
        nonce_before = w3.eth.get_transaction_count(account.address)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRACE_")},
            "TRACE_DATABASE_URL": db.url,
            "TRACE_RPC_URL": node.rpc_url,
            "TRACE_CONTRACT_ADDRESS": registry.address,
            "TRACE_VAR_DIR": str(tmp_path),
            "TRACE_CONFIRMATIONS": "0",
            "TRACE_BATCH_MAX": "2",
            "TRACE_BATCH_INTERVAL_S": "0",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "traceability.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while w3.eth.get_transaction_count(account.address, "pending") < nonce_before + 3:
            assert time.monotonic() < deadline and worker.poll() is None, "the worker sent no three batches"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        in_flight = batches(db)
        assert [(b.status, b.block_number) for b in in_flight] == [("sending", None)] * 3
        assert all(registry.anchored_at(from_hex(b.root)) == 0 for b in in_flight)

        if mempool == "mined after the crash":
            w3.provider.make_request("evm_mine", [])
        else:
            w3.provider.make_request("anvil_dropAllTransactions", [])
            assert w3.eth.get_transaction_count(account.address, "pending") == nonce_before
        w3.provider.make_request("evm_setAutomine", [True])
        stats = Anchorer(db.sessions, registry, batch_max=2, confirmations=0).run_once(poll_s=0.05)

        assert stats.events == 6 and stats.batches == 3
        # Three anchoring transactions in all: the landed ones were found, the lost ones sent once more.
        assert w3.eth.get_transaction_count(account.address) == nonce_before + 3
        resumed = batches(db)
        assert [b.root for b in resumed] == [b.root for b in in_flight]
        # A batch killed between its send and the record of it shows 0 attempts: found on chain all the same.
        resent = 0 if mempool == "mined after the crash" else 1
        assert [b.attempts for b in resumed] == [b.attempts + resent for b in in_flight]
        assert_every_event_anchored_once_and_proven(db, registry)
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        node.stop()


def test_bulk_claim_stores_what_the_one_at_a_time_claim_stored(db, registry):
    seed_parties(db.sessions, registry)
    record(db, lifecycle())
    with transaction(db.sessions) as s:
        pending = s.execute(
            select(models.Outbox.event_id, models.Event.hash)
            .join(models.Event, models.Event.id == models.Outbox.event_id)
            .order_by(models.Outbox.id)
        ).all()

    batch_id = Anchorer(db.sessions, registry, batch_max=5, confirmations=0).claim_batch()

    # What the earlier code wrote for the oldest five: a tree over their hashes, one proof per event.
    claimed = pending[:5]
    tree = MerkleTree([from_hex(h) for _, h in claimed])
    expected = {event_id: [to_hex(p) for p in tree.proof(from_hex(h))] for event_id, h in claimed}
    with transaction(db.sessions) as s:
        batch = s.get(models.Batch, batch_id)
        assert (batch.root, batch.event_count, batch.status, batch.attempts) == (
            to_hex(tree.root),
            5,
            "sending",
            0,
        )
        stored = {e.event_id: e.proof for e in s.scalars(select(models.BatchEvent))}
        outbox = {o.event_id: (o.status, o.batch_id) for o in s.scalars(select(models.Outbox))}
    assert stored == expected
    assert outbox == {
        **{event_id: ("batched", batch_id) for event_id, _ in claimed},
        pending[5][0]: ("pending", None),
    }


def test_the_worker_loop_anchors_full_batches_without_waiting_for_the_interval(db, registry):
    seed_parties(db.sessions, registry)
    record(db, lifecycle())  # six events: three full batches of two
    anchorer = Anchorer(db.sessions, registry, batch_max=2, confirmations=0)
    deadline = time.monotonic() + 60

    def anchored_count() -> int:
        with transaction(db.sessions) as s:
            return len(s.scalars(select(models.Outbox).where(models.Outbox.status == "anchored")).all())

    run_forever(anchorer, interval_s=3600, stop=lambda: anchored_count() == 6 or time.monotonic() > deadline)

    assert anchored_count() == 6
    assert [(b.event_count, b.status) for b in batches(db)] == [(2, "anchored")] * 3
    assert_every_event_anchored_once_and_proven(db, registry)


@pytest.mark.parametrize("next_run", ["the same worker", "a worker started after it stopped"])
def test_a_batch_claimed_ahead_is_sent_once_by_the_next_pass_or_the_recovery(db, registry, next_run):
    """After a full batch the next one is claimed (written ahead) while the first is sent. The same worker
    sends it in its next pass; one that stops holding it leaves a ``sending`` row that the next run's
    recovery sends. Either way every event is anchored once, one transaction per batch."""
    seed_parties(db.sessions, registry)
    record(db, lifecycle())  # six events: three full batches of two
    w3 = registry.w3
    nonce_before = w3.eth.get_transaction_count(registry.account.address)
    anchorer = Anchorer(db.sessions, registry, batch_max=2, confirmations=0, max_in_flight=1)

    assert anchorer.step(wait=False) == 2  # the window holds one batch: the second is only claimed ahead

    if next_run == "the same worker":
        stats = anchorer.run_once(poll_s=0.05)
        assert stats.batches == 3
    else:
        anchorer.close()  # lets the claim ahead finish, as a stopping worker does
        held = batches(db)
        assert [(b.status, b.attempts, b.tx_hash is None) for b in held] == [
            ("anchored", 1, False),
            ("sending", 0, True),
        ]
        stats = Anchorer(db.sessions, registry, batch_max=2, confirmations=0).run_once(poll_s=0.05)
        assert stats.batches == 2  # the recovered batch, then the third
    done = batches(db)
    assert [(b.status, b.event_count, b.attempts) for b in done] == [("anchored", 2, 1)] * 3
    assert w3.eth.get_transaction_count(registry.account.address) == nonce_before + 3
    assert_every_event_anchored_once_and_proven(db, registry)


def test_a_failed_claim_ahead_leaves_nothing_claimed_and_the_next_pass_goes_on(db, registry, monkeypatch):
    """A claim ahead that fails (the database refusing it) is rolled back whole; the pass that meets the
    failure forgets what it held, and the next pass anchors everything once."""
    seed_parties(db.sessions, registry)
    record(db, lifecycle())
    anchorer = Anchorer(db.sessions, registry, batch_max=2, confirmations=0, max_in_flight=1)
    real_claim = anchorer._claim
    calls = []

    def claim_failing_second(minimum: int):
        calls.append(minimum)
        if len(calls) == 2:
            raise OperationalError("UPDATE outbox", {}, Exception("database is locked"))
        return real_claim(minimum)

    monkeypatch.setattr(anchorer, "_claim", claim_failing_second)
    assert anchorer.step(wait=False) == 2
    with pytest.raises(OperationalError):
        anchorer.step(wait=False)  # meets the failed claim ahead
    with transaction(db.sessions) as s:
        assert sorted(s.scalars(select(models.Outbox.status)).all()) == ["anchored"] * 2 + ["pending"] * 4

    stats = anchorer.run_once(poll_s=0.05)
    assert stats.batches == 3
    assert_every_event_anchored_once_and_proven(db, registry)
