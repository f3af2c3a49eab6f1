"""Anchor pending events: Merkle-batch them, write the batch ahead, send one transaction, wait for it to be
final, then mark it anchored. Every step re-reads state, so a restart at any point resumes safely.

Batch states: ``sending`` (row and root written; a transaction may or may not have been sent) →
``mined`` (receipt seen: tx hash, block number and block hash stored) → ``anchored`` (confirmations reached,
block hash still canonical). A ``sending`` batch is looked up on chain before anything is sent again; a
``mined`` batch whose block left the canonical chain (a reorg) is looked up again and re-sent if its anchor
is gone. Re-anchoring a root is a no-op on chain, so a duplicate send can never anchor twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.registry import TraceRegistry
from traceability.domain.ids import from_hex, to_hex
from traceability.domain.merkle import MerkleTree
from traceability.domain.states import BatchStatus, OutboxStatus
from traceability.errors import ChainError, ChainUnavailable
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

log = logging.getLogger(__name__)


@dataclass
class AnchorStats:
    batches: int = 0
    events: int = 0
    gas_used: int = 0


class Anchorer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: TraceRegistry,
        *,
        batch_max: int,
        confirmations: int,
        receipt_timeout_s: float = 120.0,
        stuck_tx_s: float = 90.0,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.batch_max = batch_max
        self.confirmations = confirmations
        self.receipt_timeout_s = receipt_timeout_s
        self.stuck_tx_s = stuck_tx_s
        self.stats = AnchorStats()

    @property
    def _skip_locked(self) -> bool:
        bind = self.sessions.kw.get("bind")
        return bind is not None and bind.dialect.name == "postgresql"

    # --- step 1: claim and write ahead ----------------------------------------------------------------
    def claim_batch(self) -> int | None:
        """Take up to batch_max pending events into a new ``sending`` batch (committed). None if none."""
        with transaction(self.sessions) as session:
            repo = Repository(session)
            claimed = repo.claim_pending(self.batch_max, skip_locked=self._skip_locked)
            if not claimed:
                return None
            hashes = [from_hex(h) for _, h in claimed]
            tree = MerkleTree(hashes)
            batch = models.Batch(root=to_hex(tree.root), event_count=len(claimed), status=BatchStatus.SENDING)
            session.add(batch)
            session.flush()
            for outbox, h in claimed:
                outbox.status = OutboxStatus.BATCHED
                outbox.batch_id = batch.id
                session.add(
                    models.BatchEvent(
                        batch_id=batch.id,
                        event_id=outbox.event_id,
                        proof=[to_hex(p) for p in tree.proof(from_hex(h))],
                    )
                )
            return batch.id

    # --- step 2: send, or find what an earlier run sent -----------------------------------------------
    def send_batch(self, batch_id: int) -> None:
        with transaction(self.sessions) as session:
            batch = session.get(models.Batch, batch_id)
            if batch is None or batch.status != BatchStatus.SENDING:
                return
            found = self.registry.find_anchor(from_hex(batch.root))
            if found is None:
                tx_hash = self.registry.send_anchor(from_hex(batch.root), batch.event_count)
                batch.tx_hash = tx_hash
                batch.attempts += 1
                batch.sent_at = datetime.now(UTC)
                log.info("batch %s: sent %s (%d events)", batch.id, tx_hash, batch.event_count)
        self._await_receipt(batch_id)

    def _await_receipt(self, batch_id: int) -> None:
        # Read, wait with no transaction open (a receipt can take minutes), then write in a fresh one.
        with transaction(self.sessions) as session:
            batch = session.get(models.Batch, batch_id)
            if batch is None or batch.status != BatchStatus.SENDING:
                return
            root, tx_hash = from_hex(batch.root), batch.tx_hash
        found = self.registry.find_anchor(root)
        if found is None and tx_hash:
            self.registry.wait_receipt(tx_hash, timeout=self.receipt_timeout_s, replace_after=self.stuck_tx_s)
            found = self.registry.find_anchor(root)
        if found is None:
            # Not on chain and no transaction of ours pending: leave it `sending`; the next pass resends.
            return
        with transaction(self.sessions) as session:
            batch = session.get(models.Batch, batch_id)
            if batch is None or batch.status != BatchStatus.SENDING:
                return
            # The log names the transaction that anchored: a fee-bumped replacement, or an earlier run's.
            batch.tx_hash = found.tx_hash
            batch.block_number = found.block_number
            batch.block_hash = found.block_hash
            batch.block_time = datetime.fromtimestamp(found.block_time, UTC)
            if batch.gas_used is None:
                batch.gas_used = found.gas_used
            batch.status = BatchStatus.MINED
            self.stats.gas_used += found.gas_used or 0

    # --- step 3: finality ---------------------------------------------------------------------------
    def finalize(self) -> int:
        """Mark mined batches anchored once final; re-check any whose block was reorganised away."""
        done = 0
        with transaction(self.sessions) as session:
            repo = Repository(session)
            head = self.registry.head()
            for batch in repo.batches_in([BatchStatus.MINED]):
                assert batch.block_number is not None
                canonical = self.registry.block_hash(batch.block_number)
                if canonical != batch.block_hash:
                    found = self.registry.find_anchor(from_hex(batch.root))
                    if found is None:
                        log.warning("batch %s: anchor gone after a reorg; sending again", batch.id)
                        # The dropped transaction took its nonce with it: count again from the node.
                        if self.registry.sender is not None:
                            self.registry.sender.resync_nonce()
                        batch.status = BatchStatus.SENDING
                        batch.tx_hash = None
                        batch.block_number = batch.block_hash = None
                        continue
                    batch.block_number, batch.block_hash = found.block_number, found.block_hash
                    batch.tx_hash = found.tx_hash
                if head - batch.block_number >= self.confirmations:
                    batch.status = BatchStatus.ANCHORED
                    batch.anchored_at = datetime.now(UTC)
                    repo.set_outbox_status(batch.id, OutboxStatus.ANCHORED)
                    self.stats.batches += 1
                    self.stats.events += batch.event_count
                    done += 1
        return done

    # --- the loop's body ----------------------------------------------------------------------------
    def recover(self) -> None:
        """Resume batches an earlier run left behind (crash, outage) before making new ones."""
        with transaction(self.sessions) as session:
            stale = [b.id for b in Repository(session).batches_in([BatchStatus.SENDING])]
        for batch_id in stale:
            self.send_batch(batch_id)
        from traceability.services.chainops import resume_chain_ops

        # Certifications and registrations written ahead but not finished: finish them, or report why not.
        resume_chain_ops(self.sessions, self.registry, timeout=self.receipt_timeout_s)

    def step(self) -> int:
        """One pass: recover, anchor up to one batch, finalize. Returns events newly claimed."""
        self.registry.head()  # fails fast with ChainUnavailable: nothing is claimed while the chain is down
        self.recover()
        batch_id = self.claim_batch()
        claimed = 0
        if batch_id is not None:
            with transaction(self.sessions) as session:
                b = session.get(models.Batch, batch_id)
                claimed = b.event_count if b else 0
            self.send_batch(batch_id)
        self.finalize()
        return claimed

    def unfinished(self) -> int:
        with transaction(self.sessions) as session:
            repo = Repository(session)
            return repo.pending_count() + len(repo.batches_in([BatchStatus.SENDING, BatchStatus.MINED]))

    def progress(self) -> AnchorProgress:
        """What anchoring waits for now: events pending, batches in flight, and the chain head."""
        with transaction(self.sessions) as session:
            repo = Repository(session)
            pending = repo.pending_count()
            batches = repo.batches_in([BatchStatus.SENDING, BatchStatus.MINED])
            sending = sum(1 for b in batches if b.status == BatchStatus.SENDING)
            mined = [
                (b.id, b.block_number)
                for b in batches
                if b.status == BatchStatus.MINED and b.block_number is not None
            ]
        return AnchorProgress(
            head=self.registry.head(),
            pending_events=pending,
            sending=sending,
            mined=sorted(mined),
            confirmations=self.confirmations,
        )

    def run_once(
        self,
        *,
        timeout_s: float = 600.0,
        poll_s: float = 0.5,
        on_wait: Callable[[], None] | None = None,
        progress_s: float = 5.0,
        stall_s: float = 30.0,
    ) -> AnchorStats:
        """Anchor everything pending and wait until it is all final (``trace worker --once``).

        While it waits it logs what for every ``progress_s``, and warns when the head has not moved for
        ``stall_s``: confirmations never come on a node that mines only on transactions. After ``timeout_s``
        it raises ChainError saying what it still waits for (and that the chain has stalled, if it has).
        """
        start = time.monotonic()
        deadline = start + timeout_s
        next_progress = start + progress_s
        head: int | None = None
        head_since = first_seen = next_stall_warning = start
        while True:
            claimed = self.step()
            progress = self.progress()
            if progress.done:
                return self.stats
            now = time.monotonic()
            if progress.head != head:
                if head is None:
                    first_seen = now
                head, head_since, next_stall_warning = progress.head, now, now + stall_s
            if now >= next_progress:
                log.info("waiting: %s", progress.describe())
                # On the schedule, not "progress_s after this line": the gaps must not creep past progress_s.
                next_progress += progress_s
                if next_progress <= now:
                    next_progress = now + progress_s
            if now >= next_stall_warning:
                log.warning("%s", stall_message(progress.head, now - head_since))
                next_stall_warning = now + stall_s
            if now > deadline:
                stalled = now - head_since
                # A head that never moved in the whole run is a stall too, even when timeout_s < stall_s.
                why = (
                    stall_message(progress.head, stalled)
                    if stalled >= stall_s or head_since == first_seen
                    else f"still waiting: {progress.describe()}"
                )
                raise ChainError(f"anchoring did not finish within {timeout_s:g} s: {why}")
            if claimed == 0:
                if on_wait is not None:
                    on_wait()
                time.sleep(min(poll_s, max(next_progress - time.monotonic(), 0.0)))


@dataclass(frozen=True)
class AnchorProgress:
    """A snapshot of what ``run_once`` waits for. ``mined`` holds (batch id, block it was mined in)."""

    head: int
    pending_events: int
    sending: int
    mined: list[tuple[int, int]]
    confirmations: int

    @property
    def done(self) -> bool:
        return self.pending_events == 0 and self.sending == 0 and not self.mined

    def describe(self) -> str:
        text = (
            f"batches sending={self.sending} mined={len(self.mined)}, events pending={self.pending_events}, "
            f"chain head {self.head}"
        )
        shown = [
            f"batch {batch_id} (block {block}) needs block {block + self.confirmations}"
            for batch_id, block in self.mined[:10]
        ]
        if len(self.mined) > 10:
            shown.append(f"and {len(self.mined) - 10} more")
        if shown:
            text += f"; TRACE_CONFIRMATIONS={self.confirmations}: " + ", ".join(shown)
        return text


def stall_message(head: int, stalled_s: float) -> str:
    return (
        f"no new block for {stalled_s:.0f} s (head {head}): the chain is not producing blocks; "
        "a dev node that mines only on transactions needs a block time (anvil --block-time 1), "
        "or set TRACE_CONFIRMATIONS=0"
    )


def run_forever(anchorer: Anchorer, *, interval_s: float, stop: Callable[[], bool]) -> None:
    """The worker loop: a batch as soon as batch_max events wait, else every interval_s."""
    last_claim = 0.0
    while not stop():
        try:
            with transaction(anchorer.sessions) as session:
                pending = Repository(session).pending_count()
            due = pending >= anchorer.batch_max or (pending and time.monotonic() - last_claim >= interval_s)
            if due:
                anchorer.step()
                last_claim = time.monotonic()
            else:
                anchorer.recover()
                anchorer.finalize()
        except ChainUnavailable as exc:
            log.warning("chain unavailable, events stay pending: %s", exc)
        except ChainError as exc:
            log.error("anchoring error: %s", exc)
        except Exception:  # a database hiccup must not end the worker; the next pass re-reads all state
            log.exception("anchoring pass failed; retrying")
        for _ in range(10):
            if stop():
                return
            time.sleep(min(0.5, max(interval_s, 0.1)) / 10)
