"""One leader among anchoring workers, disjoint claims under concurrency, and the anchor key rules."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import select

from factories import ID_BASE, lifecycle, seed_parties
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.errors import ChainError, ConfigurationError, Conflict
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.leader import leadership
from traceability.services.runtime import anchor_account
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository


def test_only_one_worker_leads(db, tmp_path):
    with leadership(db.engine, tmp_path, wait=False):
        with pytest.raises(Conflict):
            with leadership(db.engine, tmp_path, wait=False):
                pass
    with leadership(db.engine, tmp_path, wait=False):  # released on exit: the next one may lead
        pass


# Row locks with SKIP LOCKED are PostgreSQL's; SQLite has one writer at a time, so there is nothing to race.
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_concurrent_claims_never_share_an_event(db, registry):
    with transaction(db.sessions) as s:
        seed_parties(s, registry)
    for ev in lifecycle():
        with transaction(db.sessions) as s:
            record_event(s, ev, id_base=ID_BASE)
    holder = db.sessions()
    try:
        held = Repository(holder).claim_pending(2, skip_locked=True)  # locked, not committed yet
        assert len(held) == 2
        other = Anchorer(db.sessions, registry, batch_max=256, confirmations=0)
        batch_id = other.claim_batch()
        with transaction(db.sessions) as s:
            claimed = set(s.scalars(select(models.Outbox.event_id).where(models.Outbox.batch_id == batch_id)))
        assert len(claimed) == 4
        assert claimed.isdisjoint({event_id for _, event_id, _ in held})
    finally:
        holder.rollback()
        holder.close()


def test_dev_key_is_refused_off_the_dev_chain():
    assert anchor_account(Settings(), 31337).address.startswith("0x")
    with pytest.raises(ConfigurationError):
        anchor_account(Settings(), 1)  # no key configured on a real chain
    with pytest.raises(ConfigurationError):
        anchor_account(Settings(anchor_key=ANVIL_DEV_KEY), 8453)
    with pytest.raises(ConfigurationError):
        anchor_account(Settings(anchor_key="0x1234"), 31337)


def _record_one_event(db, registry) -> None:
    with transaction(db.sessions) as s:
        seed_parties(s, registry)
    with transaction(db.sessions) as s:
        record_event(s, lifecycle()[0], id_base=ID_BASE)


def test_run_once_logs_what_it_waits_for_and_gives_up_on_a_stalled_chain(db, registry, caplog):
    # The session's Anvil mines only on transactions: after the anchor's block nothing comes, so two
    # confirmations never do.
    _record_one_event(db, registry)
    caplog.set_level(logging.INFO, logger="traceability.services.anchoring")
    anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=2)
    start = time.monotonic()
    with pytest.raises(ChainError) as failure:
        anchorer.run_once(timeout_s=2.0, poll_s=0.05, progress_s=0.4, stall_s=1.0)
    assert 2.0 <= time.monotonic() - start < 6.0
    message = failure.value.message
    assert "no new block for" in message and "the chain is not producing blocks" in message
    assert "anvil --block-time 1" in message and "TRACE_CONFIRMATIONS=0" in message

    with transaction(db.sessions) as s:
        batch = s.scalars(select(models.Batch)).one()
    assert batch.status == "mined" and batch.block_number is not None
    progress = [r for r in caplog.records if r.getMessage().startswith("waiting: ")]
    assert 3 <= len(progress) <= 6, [r.getMessage() for r in progress]
    gaps = [b.created - a.created for a, b in zip(progress, progress[1:], strict=False)]
    assert all(0.3 <= gap < 0.8 for gap in gaps), gaps
    line = progress[-1].getMessage()
    assert "batches sending=0 mined=1, events pending=0" in line
    assert f"chain head {batch.block_number}" in line
    assert f"batch {batch.id} (block {batch.block_number}) needs block {batch.block_number + 2}" in line
    stalls = [r for r in caplog.records if r.levelno == logging.WARNING and "no new block" in r.getMessage()]
    assert stalls and "not producing blocks" in stalls[0].getMessage()


def test_run_once_does_not_call_a_slow_chain_stalled(db, registry, w3, caplog):
    _record_one_event(db, registry)
    caplog.set_level(logging.INFO, logger="traceability.services.anchoring")
    last_block = time.monotonic()

    def slow_blocks() -> None:  # a block every 0.3 s: slower than the progress interval, faster than a stall
        nonlocal last_block
        if time.monotonic() - last_block >= 0.3:
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            last_block = time.monotonic()

    anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=3)
    stats = anchorer.run_once(timeout_s=10.0, poll_s=0.05, on_wait=slow_blocks, progress_s=0.2, stall_s=0.6)
    assert stats.events == 1 and stats.batches == 1
    assert any(r.getMessage().startswith("waiting: ") for r in caplog.records)
    assert not [r for r in caplog.records if "no new block" in r.getMessage()]


def test_run_once_timing_out_on_a_moving_chain_says_what_it_still_waits_for(db, registry, w3):
    _record_one_event(db, registry)

    def a_block() -> None:
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=1000)
    with pytest.raises(ChainError) as failure:
        anchorer.run_once(timeout_s=1.0, poll_s=0.1, on_wait=a_block, progress_s=0.5, stall_s=5.0)
    message = failure.value.message
    assert "still waiting: batches sending=0 mined=1" in message and "TRACE_CONFIRMATIONS=1000" in message
    assert "not producing blocks" not in message


def test_a_slow_first_step_that_eats_the_whole_run_is_not_called_a_stall(db, registry):
    # Seen in CI on a loaded machine: the first step took longer than the whole timeout, so the head was
    # first read at the deadline and "never moved" — 0 s of watching is no evidence of a stalled chain.
    _record_one_event(db, registry)

    class SlowFirstStep(Anchorer):
        slept = False

        def step(self) -> int:
            if not self.slept:
                self.slept = True
                time.sleep(1.2)
            return super().step()

    anchorer = SlowFirstStep(db.sessions, registry, batch_max=256, confirmations=1000)
    with pytest.raises(ChainError) as failure:
        anchorer.run_once(timeout_s=1.0, poll_s=0.1, progress_s=0.5, stall_s=5.0)
    message = failure.value.message
    assert "still waiting: batches sending=0 mined=1" in message
    assert "not producing blocks" not in message
