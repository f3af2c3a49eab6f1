"""The anchoring worker process: one leader at a time, then the anchoring loop (and, beside it, the learning
of the origin-risk population: ``workers.risk_learner``)."""

from __future__ import annotations

import logging
import signal
from contextlib import ExitStack
from functools import partial

from traceability.config import ANVIL_CHAIN_ID
from traceability.errors import ConfigurationError, Conflict
from traceability.services.anchoring import CRASH_POINTS, Anchorer, AnchorStats, run_forever
from traceability.services.leader import leadership
from traceability.services.observability import BalanceWatch
from traceability.services.risk import population_due
from traceability.services.runtime import Runtime
from traceability.workers.risk_learner import RiskLearner

log = logging.getLogger(__name__)


def make_anchorer(rt: Runtime) -> Anchorer:
    s = rt.settings
    return Anchorer(
        rt.sessions,
        rt.registry,
        batch_max=s.batch_max,
        confirmations=s.confirmations,
        receipt_timeout_s=s.receipt_timeout_s,
        stuck_tx_s=s.stuck_tx_s,
        crash_at=crash_hook(rt),
    )


def crash_hook(rt: Runtime) -> str | None:
    """``TRACE_TEST_CRASH_AT``: the step at which tests have the worker SIGKILL itself. A test hook only, so
    it is refused off the dev chain (a worker that would kill itself must never run in production)."""
    step = rt.settings.test_crash_at
    if not step:
        return None
    if step not in CRASH_POINTS:
        raise ConfigurationError(f"TRACE_TEST_CRASH_AT={step!r}: expected one of {', '.join(CRASH_POINTS)}")
    if rt.chain_id != ANVIL_CHAIN_ID:
        raise ConfigurationError(f"TRACE_TEST_CRASH_AT is a test hook, refused on chain {rt.chain_id}")
    return step


def lead(rt: Runtime, *, wait: bool) -> ExitStack:
    """Take the leader lock; with ``wait``, say so when another worker leads, then wait to take over (an
    operator reading the log of a worker that does nothing should know why)."""
    held = ExitStack()
    try:
        held.enter_context(leadership(rt.engine, rt.settings.var_dir, wait=False))
    except Conflict:
        if not wait:
            raise
        log.info("another anchoring worker leads; this one waits to take over")
        held.enter_context(leadership(rt.engine, rt.settings.var_dir, wait=True))
    return held


BALANCE_CHECK_S = 60.0
"""How often the leading worker reads its signer's balance (and warns while it is below the threshold)."""


def balance_watch(rt: Runtime) -> BalanceWatch:
    address = rt.account.address
    return BalanceWatch(
        lambda: int(rt.w3.eth.get_balance(address)),
        address,
        rt.settings.min_balance_wei,
        max(BALANCE_CHECK_S, rt.settings.batch_interval_s),
        log,
    )


def run_worker(rt: Runtime, *, once: bool, timeout_s: float = 600.0) -> AnchorStats:
    """Lead, then anchor: with ``once``, everything pending until final (ChainError after ``timeout_s``)."""
    anchorer = make_anchorer(rt)
    with lead(rt, wait=not once):
        if once:
            try:
                return anchorer.run_once(
                    timeout_s=timeout_s,
                    progress_s=rt.settings.worker_progress_s,
                    stall_s=rt.settings.stall_warning_s,
                )
            finally:
                anchorer.close()
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        log.info(
            "anchoring worker leading: batch_max=%s interval=%ss, up to %s batches in flight",
            anchorer.batch_max,
            rt.settings.batch_interval_s,
            anchorer.max_in_flight,
        )
        learner = RiskLearner(
            partial(population_due, rt.sessions),
            env={
                "TRACE_DATABASE_URL": rt.settings.effective_database_url,
                "TRACE_VAR_DIR": str(rt.settings.var_dir.resolve()),
            },
        )
        learner.start()
        try:
            run_forever(
                anchorer,
                interval_s=rt.settings.batch_interval_s,
                stop=lambda: stopping,
                watch=balance_watch(rt),
            )
        finally:
            learner.stop()
        return anchorer.stats
