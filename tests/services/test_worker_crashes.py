"""The anchoring worker as a real process, SIGKILLed at each step of a batch; and two workers started at once
on one PostgreSQL, the leader SIGKILLed mid-stream. Each test ends with the same proof of exactly-once: every
acknowledged event is stored, is in exactly one batch, every batch is anchored, every root was anchored by
exactly one transaction of the anchor key (counted by its nonce: a re-sent root is a no-op on chain that no
log shows, but it still takes a nonce), reconcile is clean and every lot's hashes, anchors and links verify.

The worker dies at an exact step through its test hook ``TRACE_TEST_CRASH_AT`` (``services/anchoring.py``
``CRASH_POINTS``, honoured on the dev chain only), which SIGKILLs the process at that point. Every worker runs
in a process group of its own, killed whole by the test: the leading worker starts ``trace risk-learn`` as a
child, which a SIGKILL of its parent would otherwise orphan. Waits poll a condition up to a deadline.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import create_engine, func, select, text
from web3 import Web3

from factories import ID_BASE, lifecycle, seed_parties
from trace_processes import TraceProcess, wait_for
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.domain.ids import from_hex
from traceability.errors import Conflict
from traceability.services.anchoring import CRASH_POINTS
from traceability.services.events import record_event
from traceability.services.leader import leadership
from traceability.services.ledger import reconcile, verify_lot
from traceability.services.risk import relearn
from traceability.services.runtime import make_web3
from traceability.store import models
from traceability.store.database import transaction

ANCHORED_TOPIC = Web3.keccak(text="Anchored(bytes32,uint32,uint64)")
#: Checks of a verdict that anchoring decides; certification and origin risk are other tests' business.
LEDGER_CHECKS = ("registry", "hashes", "anchors", "prev_links", "mass_balance")
LEADS = "anchoring worker leading"
WAITS = "another anchoring worker leads; this one waits to take over"


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    """A chain of this module's own (automining): the workers' sends move the dev key's nonce, which the
    session's node must not see."""
    with AnvilNode() as anvil:
        yield anvil


@dataclass
class Ledger:
    """One database, a TraceRegistry deployed for this test alone (its logs are this test's), and what was
    acknowledged: every event id recorded, and every lot code."""

    db: Any
    registry: TraceRegistry
    node: AnvilNode
    var_dir: Path
    event_ids: list[str]
    lots: list[str]

    @property
    def w3(self) -> Web3:
        return self.registry.w3

    def sent(self) -> int:
        """Transactions the anchor key (the dev key, as the workers use on 31337) has had mined."""
        return int(self.w3.eth.get_transaction_count(Account.from_key(ANVIL_DEV_KEY).address))

    def record(self, tag: str, lifecycles: int) -> None:
        """Record ``lifecycles`` lots' lives (six events, three lots each), each event in its own
        transaction as the API does; each is acknowledged once its transaction commits."""
        for n in range(lifecycles):
            lot = f"T-{tag}-{n:03d}"
            for event in lifecycle(lot, f"{lot}A", f"{lot}B"):
                with transaction(self.db.sessions) as s:
                    record_event(s, event, id_base=ID_BASE)
                self.event_ids.append(str(event.event_id))
            self.lots += [lot, f"{lot}A", f"{lot}B"]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
        return env | {
            "TRACE_DATABASE_URL": self.db.url,
            "TRACE_RPC_URL": self.node.rpc_url,
            "TRACE_CONTRACT_ADDRESS": self.registry.address,
            "TRACE_VAR_DIR": str(self.var_dir),
            "TRACE_ID_BASE": ID_BASE,
            "TRACE_CONFIRMATIONS": "0",
            "TRACE_BATCH_INTERVAL_S": "0",
            **extra,
        }


@pytest.fixture
def ledger(db, node, tmp_path) -> Ledger:
    registry = TraceRegistry.deploy(make_web3(node.rpc_url), Account.from_key(ANVIL_DEV_KEY))
    seed_parties(db.sessions, registry)
    # A fresh origin-risk population: a leading worker learns none for the next minute, so the two shared
    # cores go to what is tested here (the process group is killed whole all the same).
    relearn(db.sessions, None)
    return Ledger(db, registry, node, tmp_path, [], [])


@pytest.fixture
def spawn(tmp_path) -> Iterator[Callable[..., TraceProcess]]:
    """Start workers; every one is killed with its whole process group when the test ends."""
    started: list[TraceProcess] = []

    def start(env: dict[str, str], name: str, *argv: str) -> TraceProcess:
        worker = TraceProcess(env, tmp_path / f"{name}.log", "worker", *argv)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill_group(hard=True)


def leader_lock_free(ledger: Ledger) -> bool:
    """Whether no worker holds the leader lock now (a killed one's is released once its connection, or its
    file handle, is gone)."""
    try:
        with leadership(ledger.db.engine, ledger.var_dir, wait=False):
            return True
    except Conflict:
        return False


def batches(ledger: Ledger) -> list[models.Batch]:
    with transaction(ledger.db.sessions) as s:
        rows = list(s.scalars(select(models.Batch).order_by(models.Batch.id)))
        s.expunge_all()
    return rows


def outbox(ledger: Ledger) -> Counter[str]:
    with transaction(ledger.db.sessions) as s:
        return Counter(s.scalars(select(models.Outbox.status)))


def unfinished(ledger: Ledger) -> int:
    """Events not yet anchored, plus batches not yet final."""
    with transaction(ledger.db.sessions) as s:
        events = s.scalar(select(func.count()).where(models.Outbox.status != "anchored"))
        open_batches = s.scalar(select(func.count()).where(models.Batch.status != "anchored"))
    return int(events or 0) + int(open_batches or 0)


def on_chain(ledger: Ledger, batch: models.Batch) -> bool:
    return ledger.registry.anchored_at(from_hex(batch.root)) > 0


def assert_anchored_exactly_once(ledger: Ledger, sent_before: int) -> None:
    """Nothing lost, nothing skipped, nothing anchored twice: see the module docstring."""
    with transaction(ledger.db.sessions) as s:
        stored = [str(i) for i in s.scalars(select(models.Event.id))]
        members = s.execute(
            select(models.BatchEvent.event_id, models.Event.hash, models.BatchEvent.proof, models.Batch.root)
            .join(models.Event, models.Event.id == models.BatchEvent.event_id)
            .join(models.Batch, models.Batch.id == models.BatchEvent.batch_id)
        ).all()
        rows = list(s.scalars(select(models.Batch).order_by(models.Batch.id)))
        statuses = Counter(s.scalars(select(models.Outbox.status)))
        problems, _ = reconcile(s, ledger.registry)
        verdicts = {lot: verify_lot(s, ledger.registry, lot, confirmations=0) for lot in ledger.lots}
    acknowledged = ledger.event_ids
    assert len(set(acknowledged)) == len(acknowledged)
    assert sorted(stored) == sorted(acknowledged)  # every acknowledged event stored, nothing else
    in_batches = Counter(str(event_id) for event_id, _, _, _ in members)
    assert set(in_batches) == set(acknowledged)  # none skipped ...
    assert set(in_batches.values()) == {1}  # ... none in two batches
    assert statuses == Counter({"anchored": len(acknowledged)})
    assert [b.status for b in rows] == ["anchored"] * len(rows)
    assert sum(b.event_count for b in rows) == len(acknowledged)
    assert all(ledger.registry.verify_events([(h, proof, root) for _, h, proof, root in members]))

    # On chain: one Anchored log per batch root, in the transaction and block the batch row names ...
    logs = ledger.w3.eth.get_logs(
        {"address": ledger.registry.address, "fromBlock": 0, "toBlock": "latest", "topics": [ANCHORED_TOPIC]}
    )
    logged = Counter(Web3.to_hex(log["topics"][1]) for log in logs)
    assert logged == Counter(b.root.lower() for b in rows)
    where = {
        Web3.to_hex(log["topics"][1]): (Web3.to_hex(log["transactionHash"]), log["blockNumber"])
        for log in logs
    }
    assert all(where[b.root.lower()] == (b.tx_hash.lower(), b.block_number) for b in rows)
    # ... and one transaction of the anchor key per batch: nothing was sent twice, not even as a no-op.
    assert ledger.sent() - sent_before == len(rows)

    assert problems == []
    for lot, verdict in verdicts.items():
        checks = {c.check.value: c.severity.value for c in verdict.checks}
        assert {name: checks[name] for name in LEDGER_CHECKS} == dict.fromkeys(LEDGER_CHECKS, "ok"), (
            lot,
            verdict.to_json()["reasons"],
        )


# ------------------------------------------------------------------ 1. killed at each step of a batch

BATCH_MAX = 8  # twelve events first: a full batch of eight, then four


def assert_crash_state(ledger: Ledger, step: str, sent_before: int) -> None:
    """What the database and the chain hold right after the SIGKILL at ``step``."""
    found = batches(ledger)
    if step == "after_claim":  # the claim's transaction died uncommitted: nothing claimed
        assert found == []
        assert outbox(ledger) == Counter({"pending": 12})
        assert ledger.sent() == sent_before
        return
    first = found[0]
    assert first.event_count == BATCH_MAX and all(b.status == "sending" for b in found)
    if step == "after_write_ahead":  # written ahead, committed, never sent
        assert len(found) == 1 and first.tx_hash is None and first.attempts == 0
        assert outbox(ledger) == Counter({"batched": 8, "pending": 4})
        assert not on_chain(ledger, first) and ledger.sent() == sent_before
    elif step == "after_send":  # sent (and mined: Anvil automines), its transaction not recorded
        assert len(found) == 1 and first.tx_hash is None and first.attempts == 0
        wait_for("the sent anchor to be mined", lambda: on_chain(ledger, first), timeout=30)
        assert ledger.sent() == sent_before + 1
    else:  # after_receipt: the receipt was read, the batch not yet recorded as mined
        assert first.tx_hash is not None and first.attempts == 1 and first.block_number is None
        assert on_chain(ledger, first)


@pytest.mark.parametrize("step", CRASH_POINTS)
def test_a_worker_killed_at_each_step_of_a_batch_loses_nothing_and_anchors_nothing_twice(ledger, spawn, step):
    ledger.record("CRASH", 2)
    sent_before = ledger.sent()

    dying = spawn(ledger.env(TRACE_BATCH_MAX=str(BATCH_MAX), TRACE_TEST_CRASH_AT=step), f"dying-{step}")
    assert dying.wait(timeout=90) == -signal.SIGKILL, dying.log()[-3000:]
    assert f"SIGKILL at {step}" in dying.log()
    dying.kill_group(hard=True)  # and its risk learner, if it had started one
    assert_crash_state(ledger, step, sent_before)

    ledger.record("DOWN", 1)  # recorded while no worker runs: kept pending, not lost
    wait_for("the dead worker's leader lock to be released", lambda: leader_lock_free(ledger), timeout=30)
    fresh = spawn(ledger.env(TRACE_BATCH_MAX=str(BATCH_MAX)), f"fresh-{step}", "--once", "--timeout", "90")
    assert fresh.wait(timeout=150) == 0, fresh.log()[-3000:]
    assert "anchored 18 events in" in fresh.log()  # all of them by the fresh worker: none was final before
    assert_anchored_exactly_once(ledger, sent_before)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_the_crash_hook_is_refused_off_its_list_of_steps(ledger, spawn):
    worker = spawn(ledger.env(TRACE_TEST_CRASH_AT="after_lunch"), "refused", "--once", "--timeout", "30")
    assert worker.wait(timeout=60) == 2
    assert "TRACE_TEST_CRASH_AT='after_lunch': expected one of after_claim" in worker.log()
    assert "Traceback" not in worker.log()


# ------------------------------------------------------------------ 2. two workers at once on PostgreSQL

LIFECYCLES = 20  # 120 events before the leader is killed, 120 more after
MIN_BATCHES_BEFORE_KILL = 2


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_two_workers_started_at_once_one_leads_and_the_other_takes_over_when_it_is_killed(ledger, spawn):
    sent_before = ledger.sent()
    killed = threading.Event()
    failures: list[BaseException] = []

    def recorder() -> None:
        """A stream of events while the workers start, anchor, and one of them dies."""
        try:
            ledger.record("TWO", LIFECYCLES)
            if not killed.wait(timeout=300):
                raise TimeoutError("the leader was never killed")
            ledger.record("AFTER", LIFECYCLES)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    stream = threading.Thread(target=recorder, name="recorder")
    env = ledger.env(TRACE_BATCH_MAX="16", TRACE_BATCH_INTERVAL_S="0.2")
    stream.start()
    try:
        workers = [spawn(env, "one"), spawn(env, "two")]  # the same instant, as far as two Popens go

        def roles_known() -> bool:
            return sum(LEADS in w.log() for w in workers) == 1 and sum(WAITS in w.log() for w in workers) == 1

        wait_for("one worker leading and one waiting", roles_known, timeout=90)
        leader, follower = workers if LEADS in workers[0].log() else workers[::-1]
        assert WAITS not in leader.log() and LEADS not in follower.log()
        assert leader.proc.poll() is None and follower.proc.poll() is None

        def anchored_some() -> bool:
            return sum(b.status == "anchored" for b in batches(ledger)) >= MIN_BATCHES_BEFORE_KILL

        wait_for("the leader to anchor a few batches", anchored_some, timeout=90)
        leader.kill_group(hard=True)  # SIGKILL, mid-stream, with whatever it had in flight
        assert leader.proc.returncode == -signal.SIGKILL
        anchored_by_leader = {b.id for b in batches(ledger) if b.status == "anchored"}
        killed.set()  # the second half of the stream is recorded from now on

        wait_for("the follower to take over", lambda: LEADS in follower.log(), timeout=90)
        stream.join(timeout=180)
        assert not stream.is_alive() and not failures, failures
        wait_for("every event anchored", lambda: unfinished(ledger) == 0, timeout=120)
    finally:
        killed.set()
        stream.join(timeout=180)

    follower.proc.send_signal(signal.SIGTERM)  # a clean stop of the one left
    assert follower.wait(timeout=60) == 0, follower.log()[-3000:]
    log = follower.log()
    assert log.index(WAITS) < log.index(LEADS)
    assert len(ledger.event_ids) == 12 * LIFECYCLES
    assert {b.id for b in batches(ledger)} - anchored_by_leader  # the follower anchored the rest
    assert_anchored_exactly_once(ledger, sent_before)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_ledgers_in_two_schemas_of_one_database_each_have_a_leader(db, tmp_path):
    """PostgreSQL's advisory locks belong to the whole database: the leader lock is keyed by schema, so two
    ledgers (tenants, or test runs side by side) do not wait on each other; one ledger still has one."""
    with db.engine.begin() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar()
        other = f"{schema}_b"
        conn.execute(text(f"CREATE SCHEMA {other}"))
    other_engine = create_engine(db.url.replace(schema, other))
    try:
        with leadership(db.engine, tmp_path / "a", wait=False):
            with leadership(other_engine, tmp_path / "b", wait=False):  # another schema: leads too
                pass
            with pytest.raises(Conflict):
                with leadership(db.engine, tmp_path / "c", wait=False):  # this schema: one leader
                    pass
    finally:
        other_engine.dispose()
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {other}"))
