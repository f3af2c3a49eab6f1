"""Faults the anchoring worker must survive: the chain going away, and a crash between send and record."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select

from factories import ID_BASE, lifecycle, seed_parties
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.errors import ChainUnavailable
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.ledger import reconcile
from traceability.services.runtime import make_web3
from traceability.store import models
from traceability.store.database import transaction


def record(db, events):
    for ev in events:
        with transaction(db.sessions) as s:
            record_event(s, ev, id_base=ID_BASE)


def outbox_statuses(db):
    with transaction(db.sessions) as s:
        return sorted(s.scalars(select(models.Outbox.status)).all())


def test_chain_outage_delays_anchoring_and_loses_nothing(db, tmp_path):
    node = AnvilNode(state=tmp_path / "anvil-state.json").start()
    try:
        registry = TraceRegistry.deploy(make_web3(node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
        seed_parties(db.sessions, registry)
        events = lifecycle()
        record(db, events[:3])
        node.stop()

        # Recording goes on while the chain is down; anchoring fails fast and claims nothing.
        record(db, events[3:])
        anchorer = Anchorer(db.sessions, registry, batch_max=4, confirmations=0)
        with pytest.raises(ChainUnavailable):
            anchorer.step()
        assert outbox_statuses(db) == ["pending"] * 6

        node.start()
        assert registry.anchored_at(b"\x00" * 32) == 0  # same contract, state kept across the restart
        stats = anchorer.run_once(poll_s=0.05)
        assert stats.events == 6 and stats.batches == 2
        assert outbox_statuses(db) == ["anchored"] * 6
        with transaction(db.sessions) as s:
            assert len(s.scalars(select(models.Event)).all()) == 6
            problems, _ = reconcile(s, registry)
            assert problems == []
    finally:
        node.stop()


def test_outage_between_write_ahead_and_send_is_recovered(db, tmp_path):
    node = AnvilNode(state=tmp_path / "anvil-state.json").start()
    try:
        registry = TraceRegistry.deploy(make_web3(node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
        seed_parties(db.sessions, registry)
        record(db, lifecycle()[:2])
        anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=0)
        batch_id = anchorer.claim_batch()
        assert batch_id is not None
        node.stop()
        with pytest.raises(ChainUnavailable):
            anchorer.send_batch(batch_id)
        with transaction(db.sessions) as s:
            assert s.get(models.Batch, batch_id).status == "sending"  # written ahead, kept
        node.start()
        stats = Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
        assert stats.batches == 1 and stats.events == 2
        assert outbox_statuses(db) == ["anchored", "anchored"]
    finally:
        node.stop()


def test_crash_after_send_before_record_is_found_on_chain_not_resent(db, registry, w3):
    seed_parties(db.sessions, registry)
    record(db, lifecycle()[:3])
    crashed = Anchorer(db.sessions, registry, batch_max=256, confirmations=0)
    batch_id = crashed.claim_batch()
    with transaction(db.sessions) as s:
        batch = s.get(models.Batch, batch_id)
        root = bytes.fromhex(batch.root[2:])
    # The worker sent the transaction, then died before writing the tx hash: the row says `sending`, no tx.
    sent_tx = registry.send_anchor(root, 3)
    registry.wait_receipt(sent_tx, timeout=30)
    del crashed
    sender = registry.account.address
    nonce_before = w3.eth.get_transaction_count(sender)
    anchored_at = registry.anchored_at(root)

    stats = Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)

    assert stats.events == 3
    assert w3.eth.get_transaction_count(sender) == nonce_before  # nothing was sent again
    assert registry.anchored_at(root) == anchored_at
    with transaction(db.sessions) as s:
        batch = s.get(models.Batch, batch_id)
        assert batch.status == "anchored"
        assert batch.tx_hash.lower() == sent_tx.lower()


def test_anchor_removed_by_a_reorg_is_sent_again(db, tmp_path):
    # A private Anvil: reverting a snapshot drops blocks for everyone on that chain.
    node = AnvilNode().start()
    try:
        w3 = make_web3(node.rpc_url)
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        seed_parties(db.sessions, registry)
        record(db, lifecycle()[:2])
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
        anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=2)
        anchorer.step()
        with transaction(db.sessions) as s:
            batch = s.scalars(select(models.Batch)).one()
            assert batch.status == "mined"
            first_block, first_hash = batch.block_number, batch.block_hash
            root = bytes.fromhex(batch.root[2:])

        # The block holding the anchor leaves the canonical chain; other blocks take its height.
        w3.provider.make_request("evm_revert", [snapshot])
        for _ in range(3):
            w3.provider.make_request("evm_mine", [])
        assert registry.anchored_at(root) == 0
        assert registry.block_hash(first_block) != first_hash

        def mine() -> None:
            w3.provider.make_request("evm_mine", [])

        stats = anchorer.run_once(poll_s=0.01, on_wait=mine)
        assert stats.events == 2
        assert registry.anchored_at(root) > 0
        with transaction(db.sessions) as s:
            batch = s.scalars(select(models.Batch)).one()
            assert batch.status == "anchored" and batch.attempts == 2
            assert batch.block_hash == registry.block_hash(batch.block_number)
            problems, _ = reconcile(s, registry)
            assert problems == []
    finally:
        node.stop()


def test_worker_process_killed_while_its_batch_is_in_flight(db, tmp_path):
    """A real `trace worker` is SIGKILLed after it sent its batch and before the receipt was recorded."""
    import os
    import signal
    import subprocess
    import sys
    import time

    node = AnvilNode().start()
    worker = None
    try:
        w3 = make_web3(node.rpc_url)
        account = Account.from_key(ANVIL_DEV_KEY)
        registry = TraceRegistry.deploy(w3, account)
        seed_parties(db.sessions, registry)
        record(db, lifecycle())
        w3.provider.make_request("evm_setAutomine", [False])  # the anchor tx will wait in the mempool
        nonce_before = w3.eth.get_transaction_count(account.address)
        env = {
            **os.environ,
            "TRACE_DATABASE_URL": db.url,
            "TRACE_RPC_URL": node.rpc_url,
            "TRACE_CONTRACT_ADDRESS": registry.address,
            "TRACE_VAR_DIR": str(tmp_path),
            "TRACE_CONFIRMATIONS": "0",
            "TRACE_BATCH_INTERVAL_S": "0",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "traceability.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while w3.eth.get_transaction_count(account.address, "pending") == nonce_before:
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never sent its batch"
            time.sleep(0.1)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        with transaction(db.sessions) as s:
            batch = s.scalars(select(models.Batch)).one()
            assert batch.status == "sending" and batch.block_number is None
            root = bytes.fromhex(batch.root[2:])
        assert registry.anchored_at(root) == 0

        w3.provider.make_request("evm_mine", [])  # the sent transaction lands after its sender died
        w3.provider.make_request("evm_setAutomine", [True])
        stats = Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)

        assert stats.events == 6 and registry.anchored_at(root) > 0
        assert w3.eth.get_transaction_count(account.address) == nonce_before + 1  # sent once, never again
        with transaction(db.sessions) as s:
            assert s.scalars(select(models.Batch.status)).all() == ["anchored"]
        assert outbox_statuses(db) == ["anchored"] * 6
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        node.stop()
