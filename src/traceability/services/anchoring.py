"""Anchor pending events: Merkle-batch them, write the batch ahead, send one transaction, wait for it to be
final, then mark it anchored. Every step re-reads state, so a restart at any point resumes safely.

Batch states: ``sending`` (row and root written; a transaction may or may not have been sent) →
``mined`` (receipt seen: tx hash, block number and block hash stored) → ``anchored`` (confirmations reached,
block hash still canonical). A ``sending`` batch is looked up on chain before anything is sent again; a
``mined`` batch whose block left the canonical chain (a reorg) is looked up again and re-sent if its anchor
is gone. Re-anchoring a root is a no-op on chain, so a duplicate send can never anchor twice.

Pipelining: a pass claims and sends batches while fewer than ``max_in_flight`` await receipts, each written
ahead (row and root committed) before its transaction goes out with the sender's next nonce; receipts are
then read oldest first, all in one JSON-RPC batch (the worker loop waits for the oldest only when the window
is full). After a full batch, the next one is claimed on a second thread while this one is sent and while
receipts are awaited and batches finalized: the claim (one SELECT, one UPDATE, one INSERT of every proof,
a commit) is most of a batch's cost, and the database works on it while this thread talks to the chain.
That claim commits its batch ahead like any other; it is sent by the next pass, oldest first. Batches in
flight, and one claimed ahead, are known only to this process: after any failure it forgets them and they
are ``sending`` rows like any a crash leaves, found by the recovery above (looked up on chain first, sent
again only if absent).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from traceability.chain.registry import AnchorReceipt, RegistryGone, TraceRegistry, TxReceipt
from traceability.domain.ids import from_hex, to_hex
from traceability.domain.merkle import MerkleTree
from traceability.domain.states import BatchStatus, OutboxStatus
from traceability.errors import ChainError, ChainUnavailable, Conflict
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

log = logging.getLogger(__name__)

#: Batches sent and not yet mined, at most. On a chain with a block time every batch made within one block
#: time goes into the next block: eight of 1,024 events carry 8,192 events a second on one-second blocks,
#: while a failure leaves at most eight ``sending`` rows for the recovery to look up.
MAX_IN_FLIGHT = 8

#: The steps of a batch at which a test may have the worker SIGKILL itself (``TRACE_TEST_CRASH_AT``, honoured
#: on the dev chain only: ``workers.anchor``): inside the claim's transaction, after its commit (written
#: ahead), after its transaction is sent and before that is recorded, after its receipt is read and before
#: that is recorded.
CRASH_POINTS = ("after_claim", "after_write_ahead", "after_send", "after_receipt")


@dataclass
class AnchorStats:
    batches: int = 0
    events: int = 0
    gas_used: int = 0


@dataclass(frozen=True)
class _Flight:
    """A batch this process wrote ahead; ``tx_hash`` once it is sent (at ``sent``, monotonic seconds)."""

    batch_id: int
    root: bytes
    count: int
    tx_hash: str = ""
    sent: float = 0.0


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
        max_in_flight: int = MAX_IN_FLIGHT,
        crash_at: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.crash_at = crash_at  # a test hook: see CRASH_POINTS
        self.registry = registry
        self.batch_max = batch_max
        self.confirmations = confirmations
        self.receipt_timeout_s = receipt_timeout_s
        self.stuck_tx_s = stuck_tx_s
        self.max_in_flight = max(1, max_in_flight)
        self.stats = AnchorStats()
        self._in_flight: list[_Flight] = []  # sent by this process, oldest first
        self._unrecorded: list[tuple[int, str, datetime]] = []  # (batch, tx hash, when) sent this pass
        # The next full batch, claimed on the claimer's thread while this one talks to the chain.
        self._claimer: ThreadPoolExecutor | None = None  # started at the first claim ahead
        self._ahead: Future[_Flight | None] | None = None
        #: Whether the last pass left events for a full batch (or had no room to look): loop again at once.
        self.backlog = False
        #: Check the newest anchors again before the next pass: at start, and after any failure (the node
        #: may have crashed and come back without its newest blocks): :meth:`recheck_anchors`.
        self._recheck_due = True

    @property
    def _skip_locked(self) -> bool:
        bind = self.sessions.kw.get("bind")
        return bind is not None and bind.dialect.name == "postgresql"

    # --- step 1: claim and write ahead ----------------------------------------------------------------
    def claim_batch(self) -> int | None:
        """Take up to batch_max pending events into a new ``sending`` batch (committed). None if none."""
        claimed = self._claim(1)
        return None if claimed is None else claimed.batch_id

    def _claim(self, minimum: int) -> _Flight | None:
        """Claim a batch of at least ``minimum`` events in one transaction: one SELECT (FOR UPDATE SKIP
        LOCKED on PostgreSQL), the batch row, one UPDATE of the outbox rows, one INSERT of every proof."""
        with transaction(self.sessions) as session:
            repo = Repository(session)
            rows = repo.claim_pending(self.batch_max, skip_locked=self._skip_locked)
            if not rows or len(rows) < minimum:
                return None
            event_of = {from_hex(h): event_id for _, event_id, h in rows}
            tree = MerkleTree(list(event_of))
            batch_id = repo.add_batch(to_hex(tree.root), len(rows))
            # A node is a sibling in the proofs of every leaf under its neighbour: spelled once, shared.
            spelled: dict[bytes, str] = {}
            proofs = [
                (event_of[h], [spelled.get(p) or spelled.setdefault(p, to_hex(p)) for p in proof])
                for h, proof in tree.proofs()
            ]
            if repo.batch_claimed(batch_id, [outbox_id for outbox_id, _, _ in rows], proofs) != len(rows):
                # Rolled back whole: another claimer took some of these rows since they were read.
                raise Conflict("pending events were claimed elsewhere meanwhile; claim again")
            self._crash_point("after_claim")
        self._crash_point("after_write_ahead")
        return _Flight(batch_id, tree.root, len(rows))

    def _crash_point(self, step: str) -> None:
        """The test hook: die here as a power cut would (SIGKILL: no cleanup, no rollback sent), so a test
        restarts from exactly this state. One comparison when no hook is set."""
        if self.crash_at == step:
            log.warning("test hook TRACE_TEST_CRASH_AT: SIGKILL at %s", step)
            os.kill(os.getpid(), signal.SIGKILL)

    # --- step 2: send, or find what an earlier run sent -----------------------------------------------
    def send_batch(self, batch_id: int) -> None:
        """Resume a ``sending`` batch: look it up on chain, send it only if absent, wait for its receipt."""
        with transaction(self.sessions) as session:
            batch = session.get(models.Batch, batch_id)
            if batch is None or batch.status != BatchStatus.SENDING:
                return
            found = self.registry.find_anchor(from_hex(batch.root))
            if found is None:
                tx_hash = self.registry.send_anchor(from_hex(batch.root), batch.event_count)
                self._crash_point("after_send")
                batch.tx_hash = tx_hash
                batch.attempts += 1
                batch.sent_at = datetime.now(UTC)
                log.info("batch %s: sent %s (%d events)", batch.id, tx_hash, batch.event_count)
        self._await_receipt(batch_id)

    def _send_new(self, flight: _Flight) -> None:
        """Send a batch this pass has just written ahead; :meth:`_record_sent` records its transaction. No
        lookup first: its row was committed a moment ago by this process, so nothing can have sent its root
        yet."""
        tx_hash = self.registry.send_anchor(flight.root, flight.count)
        self._crash_point("after_send")
        log.info("batch %s: sent %s (%d events)", flight.batch_id, tx_hash, flight.count)
        self._in_flight.append(_Flight(flight.batch_id, flight.root, flight.count, tx_hash, time.monotonic()))
        self._unrecorded.append((flight.batch_id, tx_hash, datetime.now(UTC)))

    def _record_sent(self) -> None:
        """Record the transactions of the batches this pass sent, all in one transaction. The hash is only
        a hint for the recovery, which looks each root up on chain before it sends again: a crash before
        this commit costs at most a re-send that is a no-op on chain, as a crash just after a send always
        could."""
        if self._unrecorded:
            sent, self._unrecorded = self._unrecorded, []
            with transaction(self.sessions) as session:
                repo = Repository(session)
                for batch_id, tx_hash, sent_at in sent:
                    repo.batch_sent(batch_id, tx_hash, sent_at)

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
        self._mark_mined({batch_id: found})

    def collect(self, *, wait: bool) -> int:
        """Record the receipts of the batches in flight. With ``wait``, block for the oldest one's (stuck,
        it is replaced with higher fees after ``stuck_tx_s``); the others' are read in one JSON-RPC batch
        and taken if mined. A transaction mined without anchoring its root (reverted, or a no-op) leaves its
        batch ``sending`` for the recovery. Returns the batches newly mined."""
        if not self._in_flight:
            return 0
        receipts: dict[str, TxReceipt | None] = {}
        oldest = self._in_flight[0]
        # Pending past stuck_tx_s, the oldest is waited for even by a pass that would not wait: replaced with
        # higher fees, or, if the node no longer knows it (evicted, or lost when the node restarted), timed
        # out into a failure whose recovery looks its batch up and sends it again. Never pending forever.
        if wait or time.monotonic() - oldest.sent >= self.stuck_tx_s:
            receipts[oldest.tx_hash] = self.registry.wait_receipt(
                oldest.tx_hash, timeout=self.receipt_timeout_s, replace_after=self.stuck_tx_s
            )
        rest = [f.tx_hash for f in self._in_flight if f.tx_hash not in receipts]
        if rest:
            receipts.update(self.registry.receipts(rest))
        mined: dict[int, AnchorReceipt] = {}
        still: list[_Flight] = []
        for flight in self._in_flight:
            receipt = receipts[flight.tx_hash]
            if receipt is None:
                still.append(flight)
                continue
            found = self.registry.anchor_in_receipt(receipt, flight.root) or self.registry.find_anchor(
                flight.root
            )
            if found is None:
                log.warning(
                    "batch %s: %s mined without anchoring it; it will be sent again",
                    flight.batch_id,
                    receipt.tx_hash,
                )
                continue
            mined[flight.batch_id] = found
        self._in_flight = still
        return self._mark_mined(mined)

    def _mark_mined(self, found: dict[int, AnchorReceipt]) -> int:
        """Record where each batch was anchored (one transaction); the batches newly mined."""
        if found:
            self._crash_point("after_receipt")
        done = 0
        with transaction(self.sessions) as session:
            for batch_id, anchor in found.items():
                batch = session.get(models.Batch, batch_id)
                if batch is None or batch.status != BatchStatus.SENDING:
                    continue
                # The log names the transaction that anchored: a fee-bumped replacement, or an earlier run's.
                batch.tx_hash = anchor.tx_hash
                batch.block_number = anchor.block_number
                batch.block_hash = anchor.block_hash
                batch.block_time = datetime.fromtimestamp(anchor.block_time, UTC)
                if batch.gas_used is None:
                    batch.gas_used = anchor.gas_used
                batch.status = BatchStatus.MINED
                self.stats.gas_used += anchor.gas_used or 0
                done += 1
        return done

    # --- step 3: finality ---------------------------------------------------------------------------
    def finalize(self) -> int:
        """Mark mined batches anchored once final; re-check any whose block was reorganised away.

        One query for the mined batches, one JSON-RPC batch for the head and their blocks' hashes, one
        UPDATE of their outbox rows."""
        done: list[int] = []
        with transaction(self.sessions) as session:
            repo = Repository(session)
            mined = repo.batches_in([BatchStatus.MINED])
            if not mined:
                return 0
            head, canonical = self.registry.head_and_block_hashes(
                {b.block_number for b in mined if b.block_number is not None}
            )
            for batch in mined:
                assert batch.block_number is not None
                if canonical[batch.block_number] != batch.block_hash:
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
                    self.stats.batches += 1
                    self.stats.events += batch.event_count
                    done.append(batch.id)
            repo.set_outbox_status(done, OutboxStatus.ANCHORED)
        return len(done)

    # --- the loop's body ----------------------------------------------------------------------------
    def recover(self) -> None:
        """Resume batches an earlier run left behind (crash, outage) before making new ones."""
        ahead = self._claimed_ahead()
        ours = {f.batch_id for f in self._in_flight} | ({ahead.batch_id} if ahead is not None else set())
        with transaction(self.sessions) as session:
            stale = [b.id for b in Repository(session).batches_in([BatchStatus.SENDING]) if b.id not in ours]
        for batch_id in stale:
            self.send_batch(batch_id)
        from traceability.services.chainops import resume_chain_ops

        # Certifications and registrations written ahead but not finished: finish them, or report why not.
        resume_chain_ops(self.sessions, self.registry, timeout=self.receipt_timeout_s)

    def step(self, *, claim: bool = True, partial: bool = True, wait: bool = True) -> int:
        """One pass: recover; claim and send batches until ``max_in_flight`` are in flight (after the
        first, full ones only; with ``partial`` False the first must be full too); take the receipts
        already there, waiting for the oldest one's with ``wait`` or when no more may be in flight;
        finalize. After each full batch the next is claimed ahead on the claimer's thread (see the module
        docstring), and it is the first this or the next pass sends. Without ``claim``, nothing new is
        claimed. Returns events newly claimed; :attr:`backlog` says whether a full batch may still wait."""
        claimed = 0
        self.backlog = claim
        try:
            # Fails fast: nothing is claimed while the chain is down (ChainUnavailable) or the registry is
            # gone from it (RegistryGone, a chain reset: the worker stops rather than send to an empty
            # address). Inside the try: a node that went away may come back without the transactions in
            # flight (their nonces too), so an outage is a failure like any other (:meth:`_abandon`).
            head = self.registry.head_checked()
            if self._recheck_due:
                self.recheck_anchors(head)
            self.recover()
            try:
                while claim and len(self._in_flight) < self.max_in_flight:
                    flight = self._take_claim(1 if partial and claimed == 0 else self.batch_max)
                    if flight is None:
                        self.backlog = False
                        break
                    claimed += flight.count
                    if flight.count >= self.batch_max:
                        self._claim_ahead()
                    self._send_new(flight)
            finally:
                self._record_sent()
            self.collect(wait=(wait and claim) or len(self._in_flight) >= self.max_in_flight)
            self.finalize()
        except BaseException:
            self._abandon()
            raise
        return claimed

    def recheck_anchors(self, head: int) -> list[int]:
        """Check again the batches marked anchored in the :data:`RECHECK_BLOCKS` blocks below ``head`` (and
        any above it): a node that crashed can come back without its newest blocks, final or not (Anvil
        writes its ``--state`` file once a second; geth keeps its newest state in memory), and an anchor it
        lost must be sent again, not reported as anchored. Two batched reads; nothing when none is lost."""
        with transaction(self.sessions) as session:
            reopened = reopen_lost_anchors(session, self.registry, since_block=head - RECHECK_BLOCKS)
        self._recheck_due = False
        return reopened

    def _claim_ahead(self) -> None:
        if self._claimer is None:
            self._claimer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anchor-claim")
        self._ahead = self._claimer.submit(self._claim, self.batch_max)

    def _claimed_ahead(self) -> _Flight | None:
        """The batch claimed ahead, once its claim has finished (it may raise); None if there is none."""
        if self._ahead is None:
            return None
        ahead = self._ahead.result()
        if ahead is None:
            self._ahead = None
        return ahead

    def _take_claim(self, minimum: int) -> _Flight | None:
        """The batch claimed ahead if there is one, else a batch of at least ``minimum`` claimed now."""
        ahead = self._claimed_ahead()
        self._ahead = None
        return ahead if ahead is not None else self._claim(minimum)

    def _abandon(self) -> None:
        """After a failure, trust nothing remembered: batches in flight, and one claimed ahead once its
        claim has finished, become plain ``sending`` rows for :meth:`recover` (looked up on chain before any
        resend), the nonce is counted again by the node, and the newest anchors are checked again."""
        self._recheck_due = True
        self._in_flight = []
        self._unrecorded = []
        self._forget_ahead()
        if self.registry.sender is not None:
            self.registry.sender.resync_nonce()

    def _forget_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.exception()  # wait: its batch is committed, or not at all, before it is forgotten
            self._ahead = None

    def close(self) -> None:
        """Let a claim under way finish (committed, or rolled back) and stop the claimer's thread (a later
        pass starts another). A batch claimed ahead and not sent stays ``sending``: recovery sends it."""
        self._forget_ahead()
        if self._claimer is not None:
            self._claimer.shutdown(wait=True)
            self._claimer = None

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
                # A head that never moved while it was watched for at least half the run is a stall too,
                # even when timeout_s < stall_s. A head first seen just now (a slow first step ate the
                # run) says nothing about the chain.
                watched_still = head_since == first_seen and stalled >= timeout_s / 2
                why = (
                    stall_message(progress.head, stalled)
                    if stalled >= stall_s or watched_still
                    else f"still waiting: {progress.describe()}"
                )
                raise ChainError(f"anchoring did not finish within {timeout_s:g} s: {why}")
            if claimed == 0:
                if on_wait is not None:
                    on_wait()
                time.sleep(min(poll_s, max(next_progress - time.monotonic(), 0.0)))


#: How far below the head :meth:`Anchorer.recheck_anchors` looks: more blocks than a node loses in a crash
#: (geth rewinds at most 128 blocks to its last state on disk; Anvil about one second's).
RECHECK_BLOCKS = 256


def reopen_lost_anchors(
    session: Session, registry: TraceRegistry, *, since_block: int | None = None
) -> list[int]:
    """Anchored batches (in blocks from ``since_block`` on, else all) whose anchor ``registry`` no longer
    holds as recorded, put back on their way to the chain: a root not anchored there goes back to
    ``sending`` (:meth:`Anchorer.recover` looks it up, then sends it again, as after a reorg); a root
    anchored in another block than recorded goes back to ``mined`` (:meth:`Anchorer.finalize` finds where
    and counts confirmations again). Their events' outbox rows go back to ``batched``: nothing reads as
    anchored that the chain does not hold. Returns the batches reopened. ``trace reconcile --repair`` runs
    it over every batch (after a chain reset and ``trace deploy``), the worker over the newest ones."""
    query = select(models.Batch).where(models.Batch.status == BatchStatus.ANCHORED)
    if since_block is not None:
        query = query.where(models.Batch.block_number >= since_block)
    batches = session.scalars(query.order_by(models.Batch.id)).all()
    if not batches:
        return []
    on_chain = registry.anchored_at_many([b.root for b in batches])
    canonical = registry.block_hashes({b.block_number for b in batches if b.block_number is not None})
    reopened: list[int] = []
    for batch in batches:
        if on_chain[batch.root.lower()] == 0 or batch.block_number is None:
            log.warning(
                "batch %s: root %s not on chain (tx %s lost); sending again",
                batch.id,
                batch.root,
                batch.tx_hash,
            )
            batch.status = BatchStatus.SENDING
            batch.tx_hash = batch.block_hash = batch.block_time = batch.block_number = None
        elif canonical.get(batch.block_number) != batch.block_hash:
            log.warning(
                "batch %s: block %s no longer canonical; looking its anchor up", batch.id, batch.block_number
            )
            batch.status = BatchStatus.MINED
        else:
            continue
        batch.anchored_at = None
        reopened.append(batch.id)
    Repository(session).set_outbox_status(reopened, OutboxStatus.BATCHED)
    return reopened


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


def run_forever(
    anchorer: Anchorer,
    *,
    interval_s: float,
    stop: Callable[[], bool],
    watch: Callable[[], None] | None = None,
) -> None:
    """The worker loop: full batches as soon as batch_max events wait, and again at once while they keep
    waiting (sustained throughput needs no pause between passes); a partial batch every interval_s.

    Each pass tries to claim: a full batch at any time, a partial one once interval_s has passed since the
    last claim. The claim itself says whether enough events wait (no count of the pending events first:
    on a large backlog that count costs as much as a claim). ``watch`` is called before each pass (the
    signer's balance check, which limits itself to once an interval)."""
    last_claim = 0.0
    try:
        while not stop():
            busy = False
            try:
                if watch is not None:
                    watch()
                interval_due = time.monotonic() - last_claim >= interval_s
                # No wait for a receipt while the window has room: the next batch is built meanwhile.
                if anchorer.step(partial=interval_due, wait=False):
                    last_claim = time.monotonic()
                busy = anchorer.backlog
            except RegistryGone as exc:
                log.error("anchoring stopped: %s", exc)
                raise  # nothing to anchor at: stop, as a worker started now would refuse to (`trace deploy`)
            except ChainUnavailable as exc:
                log.warning("chain unavailable, events stay pending: %s", exc)
            except ChainError as exc:
                log.error("anchoring error: %s", exc)
            except Exception:  # a database hiccup must not end the worker; the next pass re-reads all state
                log.exception("anchoring pass failed; retrying")
            if busy:
                continue
            for _ in range(10):
                if stop():
                    return
                time.sleep(min(0.5, max(interval_s, 0.1)) / 10)
    finally:
        anchorer.close()
