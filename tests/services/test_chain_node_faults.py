"""The chain node SIGKILLed mid-stream while farmers keep recording through a real `trace serve` and a real
`trace worker` anchors, left down a few seconds, then restarted:

* **with its state** (the same ``--state`` file, which Anvil writes once a second, so the newest blocks may
  be lost, final or not): anchoring resumes; every acknowledged event is stored, in exactly one batch, every
  batch anchored by one ``Anchored`` log in the transaction and block its row names; `trace reconcile` is
  clean and every lot's hashes, anchors, links and mass balance verify.
* **without its state** (a fresh chain: the registry and every anchor gone): the worker sends nothing to the
  empty address and marks nothing mined or anchored; it stops, saying what to do. The operator runs
  `trace deploy` (a new registry), `trace reconcile` (every batch anchored before is ``anchor_missing``, exit
  1) and `trace reconcile --repair` (they are reopened), then starts the worker again: every acknowledged
  event ends anchored exactly once on the new registry, and every lot verifies against it.

Clients are threads, each a farmer's phone recording its own lot: single events with an ``Idempotency-Key``,
every fourth request a bulk ``/batch`` of three; a request that fails is sent again, the very same, until
the server acknowledges it. Every process (Anvil, `trace serve`, `trace worker` and its risk learner) runs in
a process group of its own, killed whole when the test ends. Waits poll a condition up to a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from sqlalchemy import func, select
from web3 import Web3

from factories import FARMER_1, FARMER_2, ID_BASE, days_ago, lifecycle, seed_parties
from trace_processes import TraceProcess
from trace_processes import wait_for as wait_until
from traceability.chain.devnode import AnvilNode, free_port
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.errors import ChainUnavailable
from traceability.services.anchoring import Anchorer, reopen_lost_anchors, run_forever
from traceability.services.apikeys import create_api_key
from traceability.services.deploy import ensure_deployed
from traceability.services.events import record_event
from traceability.services.ledger import reconcile, verify_lot
from traceability.services.runtime import Runtime, make_web3, read_deployment
from traceability.store import models
from traceability.store.database import transaction

ANCHORED_TOPIC = Web3.keccak(text="Anchored(bytes32,uint32,uint64)")
#: The verdict's checks that recording and anchoring decide (certification and origin risk: other tests').
LEDGER_CHECKS = ("registry", "hashes", "anchors", "prev_links", "mass_balance")
CONFIRMATIONS = 2
BATCH_MAX = 8
CLIENTS = [("A", FARMER_1, "PLOT-T-01"), ("B", FARMER_1, "PLOT-T-01"), ("C", FARMER_2, "PLOT-T-02")]
OUTAGE_S = 3.0  # the node stays down at least this long, while clients record
DEADLINE_S = 90.0  # for any one wait; a wait ends as soon as its condition holds
wait_for = partial(wait_until, timeout=DEADLINE_S)


# ------------------------------------------------------------------ processes


@dataclass
class Stack:
    """One database, one Anvil with a state file, the var dir `trace deploy` writes, and the processes."""

    db: Any
    node: AnvilNode
    var_dir: Path
    logs: Path
    procs: list[TraceProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
        return clean | {
            "TRACE_VAR_DIR": str(self.var_dir),
            "TRACE_DATABASE_URL": self.db.url,
            "TRACE_RPC_URL": self.node.rpc_url,
            "TRACE_ID_BASE": ID_BASE,
            "TRACE_CONFIRMATIONS": str(CONFIRMATIONS),
            "TRACE_BATCH_MAX": str(BATCH_MAX),
            "TRACE_BATCH_INTERVAL_S": "1",
            "TRACE_RECEIPT_TIMEOUT_S": "20",
            "TRACE_PUBLIC_RATE_PER_MIN": "1000000",
            "TRACE_IMPORTER_RATE_PER_MIN": "1000000",
        }

    def start(self, name: str, *argv: str) -> TraceProcess:
        proc = TraceProcess(self.env(), self.logs / f"{name}.log", *argv)
        self.procs.append(proc)
        return proc

    def serve(self, name: str) -> str:
        port = free_port()
        proc = self.start(name, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.proc.poll() is None, f"trace serve exited:\n{proc.log()[-3000:]}"
            try:
                return requests.get(f"{base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for("trace serve to answer /healthz", ready)
        return base

    def trace(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A one-shot `trace` command, as the operator types it."""
        return subprocess.run(
            [sys.executable, "-m", "traceability.cli", *argv],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def registry(self) -> TraceRegistry:
        """A read-only client of the registry deployment.json names now (the one the operator deployed)."""
        settings = Settings(var_dir=self.var_dir, rpc_url=self.node.rpc_url)
        address = read_deployment(settings, 31337)
        assert address is not None
        return TraceRegistry(
            Web3(Web3.HTTPProvider(self.node.rpc_url, request_kwargs={"timeout": 30})), address
        )

    def kill_node(self) -> None:
        """SIGKILL the node: no state written on the way out (Anvil writes its file once a second)."""
        assert self.node.proc is not None
        os.killpg(self.node.proc.pid, signal.SIGKILL)
        self.node.proc.wait(timeout=10)
        self.node.proc = None


@pytest.fixture
def stack(db, tmp_path) -> Iterator[Stack]:
    """Anvil (one-second blocks, state in var/), a TraceRegistry deployed by `trace deploy`'s service, the
    test's authority, farmers and plots, then `trace serve` and `trace worker` started by the test."""
    var_dir = tmp_path / "var"
    node = AnvilNode(state=var_dir / "anvil-state.json", block_time=1).start()
    stack = Stack(db, node, var_dir, tmp_path)
    try:
        rt = Runtime(Settings(var_dir=var_dir, rpc_url=node.rpc_url, database_url=db.url, id_base=ID_BASE))
        try:
            # The anchor key has sent a transaction before: a redeployment on a fresh chain (nonce 0) then
            # lands at another address, as it would in production.
            dev = Account.from_key(ANVIL_DEV_KEY)
            rt.w3.eth.wait_for_transaction_receipt(
                rt.w3.eth.send_transaction({"from": dev.address, "to": dev.address, "value": 0}), timeout=30
            )
            ensure_deployed(rt)
            seed_parties(rt.sessions, rt.registry)
        finally:
            rt.close()
        yield stack
    finally:
        for proc in stack.procs:
            proc.kill_group()
        node.stop()


# ------------------------------------------------------------------ clients


class Phones:
    """Client threads recording through the API until stopped; ``acked`` holds every event id the server
    acknowledged (201, or 200 for a resend it had stored), each exactly once."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.acked: list[str] = []
        self.lots: list[str] = []
        self.resent = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        tag = uuid.uuid4().hex[:4].upper()
        for name, farmer, plot in CLIENTS:
            lot = f"T-N{tag}-{name}"
            self.lots.append(lot)
            thread = threading.Thread(target=self._phone, args=(lot, farmer, plot), daemon=True)
            self._threads.append(thread)
            thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=DEADLINE_S)
        assert not any(t.is_alive() for t in self._threads), "a client did not finish"
        assert not self.failures, self.failures[:5]

    def _phone(self, lot: str, farmer: dict[str, str], plot: str) -> None:
        try:
            token = self._post("/api/v1/auth/token", farmer, {})["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            common = {"place": {"id": plot}, "plot_id": plot, "crop": "organic-veg"}
            planting = {"kind": "planting", "event_id": str(uuid.uuid4()), "lot_code": lot, "area_rai": "2",
                        "event_time": days_ago(60).isoformat(), **common}  # fmt: skip
            harvest = {"kind": "harvest", "event_id": str(uuid.uuid4()), "lot_code": lot,
                       "event_time": days_ago(20).isoformat(), "quantity": {"value": "900", "uom": "KGM"},
                       **common}  # fmt: skip
            self._record([planting], headers)
            self._record([harvest], headers)
            n = 0
            while not self._stop.is_set():
                n += 1
                size = 3 if n % 4 == 0 else 1
                self._record([self._grading(lot, n, i) for i in range(size)], headers)
                time.sleep(0.5)  # a farmer's next tap; leaves the two cores to the servers
        except Exception as exc:  # noqa: BLE001 - reported by stop(), with the lot
            self.failures.append(f"{lot}: {exc!r}")

    @staticmethod
    def _grading(lot: str, n: int, i: int) -> dict[str, Any]:
        return {
            "kind": "grading",
            "event_id": str(uuid.uuid4()),
            "event_time": days_ago(19).isoformat(),
            "place": {"id": "PH-T"},
            "lot_code": lot,
            "grade": f"เกรด A รอบ {n}.{i}",
            "quantity": {"value": "1", "uom": "KGM"},
            "disposition": "conformant",
        }

    def _record(self, events: list[dict[str, Any]], headers: dict[str, str]) -> None:
        """Send one event (with its Idempotency-Key) or a bulk batch, and the very same again until the
        server acknowledges it; then count its events as acknowledged."""
        if len(events) == 1:
            answer = self._post(
                "/api/v1/events", events[0], {**headers, "Idempotency-Key": events[0]["event_id"]}
            )
            ids = [answer["event_id"]]
        else:
            answer = self._post("/api/v1/events/batch", {"events": events}, headers)
            ids = [item["event_id"] for item in answer["events"]]
        assert ids == [e["event_id"] for e in events], answer
        with self._lock:
            self.acked += ids

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                r = requests.post(f"{self.base}{path}", json=body, headers=headers, timeout=30)
                if r.status_code in (200, 201):
                    return dict(r.json())
                assert r.status_code >= 500, f"{path} refused: {r.status_code} {r.text[:300]}"
                why = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as exc:
                why = repr(exc)
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} never acknowledged: {why}")
            with self._lock:
                self.resent += 1
            time.sleep(0.5)


# ------------------------------------------------------------------ the database and the chain


def batch_rows(stack: Stack) -> list[models.Batch]:
    with transaction(stack.db.sessions) as s:
        rows = list(s.scalars(select(models.Batch).order_by(models.Batch.id)))
        s.expunge_all()
    return rows


def anchored_batches(stack: Stack) -> int:
    return sum(1 for b in batch_rows(stack) if b.status == "anchored")


def all_anchored(stack: Stack) -> bool:
    with transaction(stack.db.sessions) as s:
        open_events = s.scalar(select(func.count()).where(models.Outbox.status != "anchored"))
        open_batches = s.scalar(select(func.count()).where(models.Batch.status != "anchored"))
    return open_events == 0 and open_batches == 0


def assert_anchored_exactly_once(stack: Stack, phones: Phones, registry: TraceRegistry) -> None:
    """Every acknowledged event stored once, in exactly one batch; every batch anchored by exactly one
    ``Anchored`` log of ``registry``, in the transaction and block its row names, on the canonical chain;
    every event's proof verifies on chain; every lot's ledger checks pass."""
    with transaction(stack.db.sessions) as s:
        stored = [str(i) for i in s.scalars(select(models.Event.id))]
        members = s.execute(
            select(models.BatchEvent.event_id, models.Event.hash, models.BatchEvent.proof, models.Batch.root)
            .join(models.Event, models.Event.id == models.BatchEvent.event_id)
            .join(models.Batch, models.Batch.id == models.BatchEvent.batch_id)
        ).all()
        rows = list(s.scalars(select(models.Batch).order_by(models.Batch.id)))
        statuses = Counter(s.scalars(select(models.Outbox.status)))
        verdicts = {lot: verify_lot(s, registry, lot, confirmations=CONFIRMATIONS) for lot in phones.lots}
    acked = phones.acked
    assert len(set(acked)) == len(acked)
    assert sorted(stored) == sorted(acked)  # every acknowledged event stored, and nothing else
    in_batches = Counter(str(event_id) for event_id, _, _, _ in members)
    assert set(in_batches) == set(acked) and set(in_batches.values()) == {1}  # each in exactly one batch
    assert statuses == Counter({"anchored": len(acked)})
    assert {b.status for b in rows} == {"anchored"} and sum(b.event_count for b in rows) == len(acked)
    assert all(registry.verify_events([(h, proof, root) for _, h, proof, root in members]))

    logs = registry.w3.eth.get_logs(
        {"address": registry.address, "fromBlock": 0, "toBlock": "latest", "topics": [ANCHORED_TOPIC]}
    )
    assert Counter(Web3.to_hex(log["topics"][1]) for log in logs) == Counter(b.root.lower() for b in rows)
    where = {
        Web3.to_hex(log["topics"][1]): (Web3.to_hex(log["transactionHash"]), log["blockNumber"])
        for log in logs
    }
    assert all(where[b.root.lower()] == (str(b.tx_hash).lower(), b.block_number) for b in rows)
    canonical = registry.block_hashes({int(b.block_number or 0) for b in rows})
    assert all(canonical[int(b.block_number or 0)] == b.block_hash for b in rows)

    for lot, verdict in verdicts.items():
        checks = {c.check.value: c.severity.value for c in verdict.checks}
        assert {name: checks[name] for name in LEDGER_CHECKS} == dict.fromkeys(LEDGER_CHECKS, "ok"), (
            lot,
            verdict.to_json()["reasons"],
        )


def reconcile_json(stack: Stack, *argv: str) -> tuple[int, dict[str, Any]]:
    done = stack.trace("reconcile", "--json", *argv)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


# ------------------------------------------------------------------ the outage


def record_through_an_outage(
    stack: Stack, *, keep_state: bool
) -> tuple[Phones, TraceProcess, list[models.Batch]]:
    """Clients record while the worker anchors; once a batch is anchored the node is SIGKILLed, stays down
    at least OUTAGE_S while clients keep being acknowledged, and is started again, with its state file or
    with none. Clients record a little more, then stop. Returns them, the worker, and the batch rows as they
    stood while the node was down (nothing can be anchored then)."""
    base = stack.serve("serve")
    worker = stack.start("worker", "worker")
    phones = Phones(base)
    phones.start()
    wait_for("a batch anchored before the node is killed", lambda: anchored_batches(stack) >= 1, log=worker)

    stack.kill_node()
    down_at, acked_at_kill = time.monotonic(), phones.count()
    wait_for(
        "clients acknowledged while the node is down",
        lambda: time.monotonic() - down_at >= OUTAGE_S and phones.count() >= acked_at_kill + BATCH_MAX,
    )
    while_down = batch_rows(stack)
    if not keep_state:
        stack.node.state = stack.var_dir / "anvil-state-fresh.json"  # a node with nothing of the old chain
    stack.node.start()
    acked_at_restart = phones.count()
    wait_for("clients acknowledged after the restart", lambda: phones.count() >= acked_at_restart + BATCH_MAX)
    phones.stop()
    assert phones.count() > acked_at_restart > acked_at_kill  # recorded before, during and after the outage
    return phones, worker, while_down


# SQLite here, PostgreSQL in the next test (the same clients, servers and worker up to the restart): the file
# stays under 90 s on two shared cores. Add "postgresql" here for about 20 s more.
@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_node_killed_and_restarted_with_its_state_loses_nothing_and_anchors_once(stack):
    phones, worker, _ = record_through_an_outage(stack, keep_state=True)
    wait_for("every event anchored after the restart", lambda: all_anchored(stack), log=worker)
    assert worker.proc.poll() is None, worker.log()[-3000:]  # it waited the outage out
    assert "chain unavailable, events stay pending" in worker.log()

    assert_anchored_exactly_once(stack, phones, stack.registry())
    status, report = reconcile_json(stack)
    assert (status, report["problems"]) == (0, []), report


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_node_restarted_without_its_state_is_redeployed_and_everything_anchored_again(stack):
    old = stack.registry()
    phones, worker, while_down = record_through_an_outage(stack, keep_state=False)
    anchored_before = [b.id for b in while_down if b.status == "anchored"]
    assert anchored_before

    # The worker finds no registry at its address: it stops, and says what the operator must do.
    try:
        assert worker.proc.wait(timeout=DEADLINE_S) == 2, worker.log()[-3000:]
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker went on with its registry gone:\n{worker.log()[-3000:]}")
    assert "run `trace deploy`, then `trace reconcile --repair`" in worker.log()
    # It sent nothing to the empty address, and marked nothing mined or anchored on the new chain.
    anchor_key = Account.from_key(ANVIL_DEV_KEY).address
    assert old.w3.eth.get_transaction_count(anchor_key) == 0
    assert not old.w3.eth.get_code(old.address)
    before = {b.id: (b.status, b.tx_hash, b.block_hash) for b in while_down}
    for b in batch_rows(stack):
        if b.status in ("mined", "anchored"):
            assert before.get(b.id) == (b.status, b.tx_hash, b.block_hash), b.id

    # Meanwhile the server says it cannot check now, in JSON (503, not a 500; the operator's details stay in
    # its log).
    with transaction(stack.db.sessions) as session:
        key = create_api_key(session, "importer").key
    importer = {"Authorization": f"Bearer {key}"}
    lot = phones.lots[0]
    r = requests.get(f"{phones.base}/api/v1/lots/{lot}/verify", headers=importer, timeout=60)
    assert (r.status_code, r.json()["error"]["code"]) == (503, "chain_unavailable"), r.text
    # ... and the balancer's health check takes it out: the chain answers blocks but holds no registry.
    ready = requests.get(f"{phones.base}/readyz", timeout=60)
    assert ready.status_code == 503 and ready.json()["checks"]["chain"].startswith("error: RegistryGone"), (
        ready.text
    )

    # The operator: a new registry, the damage reported, the lost anchors reopened, the worker started.
    deployed = stack.trace("deploy")
    assert deployed.returncode == 0 and "deployed at" in deployed.stdout, deployed.stderr
    new = stack.registry()
    assert new.address != old.address and new.is_trace_registry()
    status, report = reconcile_json(stack)
    assert status == 1
    missing = sorted(p["batch_id"] for p in report["problems"] if p["code"] == "anchor_missing")
    assert missing == anchored_before, report
    status, report = reconcile_json(stack, "--repair")
    assert status == 1 and report["repaired"] == anchored_before, report
    for b in batch_rows(stack):  # reopened: on their way to the chain again, none claimed anchored or mined
        assert b.status == "sending" if b.id in anchored_before else b.status != "anchored", (b.id, b.status)

    worker = stack.start("worker-after-deploy", "worker")
    wait_for("every event anchored on the new registry", lambda: all_anchored(stack), log=worker)
    assert_anchored_exactly_once(stack, phones, new)
    status, report = reconcile_json(stack)
    # Every anchor is on the new chain. What remains is the authority registered on the lost chain: enrolments
    # are the registrar's (a cold key's) to make again; reconcile keeps saying so.
    assert {p["code"] for p in report["problems"]} == {"chain_op_missing"}, report
    assert status == 1

    # A server restarted after `trace deploy` answers for the new registry: the lot verifies over HTTP.
    base = stack.serve("serve-after-deploy")
    r = requests.get(f"{base}/api/v1/lots/{lot}/verify", headers=importer, timeout=60)
    assert r.status_code == 200, r.text
    checks = {c["code"]: c["severity"] for c in r.json()["checks"]}
    assert {name: checks[name] for name in LEDGER_CHECKS} == dict.fromkeys(LEDGER_CHECKS, "ok"), r.text


# ------------------------------------------------------------------ anchors a node lost, found again


def _anchored_once(db: Any, registry: TraceRegistry, events: list[Any]) -> Anchorer:
    """Record ``events`` and anchor them (no confirmations asked: the batch is final at once)."""
    for event in events:
        with transaction(db.sessions) as s:
            record_event(s, event, id_base=ID_BASE)
    anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=0)
    anchorer.run_once(poll_s=0.05)
    return anchorer


def _first_batch(db: Any) -> models.Batch:
    with transaction(db.sessions) as s:
        batch = s.scalars(select(models.Batch).order_by(models.Batch.id)).first()
        assert batch is not None
        s.expunge(batch)
    return batch


def test_a_final_anchor_the_restarted_node_lost_is_sent_again_by_the_running_worker(db, tmp_path):
    """The node comes back from a crash without its newest blocks, one of them holding an anchor the worker
    had already marked final: the worker's first pass after the outage finds it gone and sends it again."""
    node = AnvilNode(state=tmp_path / "anvil-state.json").start()
    try:
        w3 = make_web3(node.rpc_url)
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        seed_parties(db.sessions, registry)
        before = w3.provider.make_request("evm_snapshot", [])["result"]
        events = lifecycle()
        anchorer = _anchored_once(db, registry, events[:3])
        lost = _first_batch(db)
        assert lost.status == "anchored" and registry.anchored_at(lost.root) > 0

        # The newest blocks are gone when the node comes back (reverted, then the state written on stop).
        w3.provider.make_request("evm_revert", [before])
        node.stop()
        with pytest.raises(ChainUnavailable):
            anchorer.step()  # the worker's pass during the outage
        node.start()
        assert registry.anchored_at(lost.root) == 0
        for event in events[3:]:
            with transaction(db.sessions) as s:
                record_event(s, event, id_base=ID_BASE)

        anchorer.run_once(poll_s=0.05)
        again = _first_batch(db)
        assert (again.status, again.attempts) == ("anchored", 2)  # sent a second time
        assert registry.anchored_at(again.root) > 0
        assert registry.block_hash(int(again.block_number or 0)) == again.block_hash
        with transaction(db.sessions) as s:
            assert Counter(s.scalars(select(models.Outbox.status))) == Counter({"anchored": 6})
            problems, _ = reconcile(s, registry)
        assert problems == []
    finally:
        node.stop()


def test_repair_finds_an_anchor_that_moved_to_another_block_without_sending_it_again(db, tmp_path):
    """A final anchor whose block left the chain while the same root was anchored in another block (a resend
    that landed): `reconcile` says block_reorged; the repair reopens the batch, and the worker records where
    the root now is, sending nothing."""
    node = AnvilNode().start()
    try:
        w3 = make_web3(node.rpc_url)
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        seed_parties(db.sessions, registry)
        before = w3.provider.make_request("evm_snapshot", [])["result"]
        anchorer = _anchored_once(db, registry, lifecycle()[:2])
        moved = _first_batch(db)
        w3.provider.make_request("evm_revert", [before])
        w3.provider.make_request("evm_mine", [])
        registry.sender.resync_nonce()  # the revert took the anchor's nonce back
        elsewhere = registry.anchor(moved.root, moved.event_count, timeout=30)
        assert elsewhere.block_hash != moved.block_hash
        with transaction(db.sessions) as s:
            problems, _ = reconcile(s, registry)
            assert [p.code for p in problems] == ["block_reorged"]
            assert reopen_lost_anchors(s, registry) == [moved.id]
        sent = w3.eth.get_transaction_count(registry.sender.address)

        anchorer.run_once(poll_s=0.05)
        found = _first_batch(db)
        assert found.status == "anchored" and w3.eth.get_transaction_count(registry.sender.address) == sent
        assert (found.tx_hash, found.block_hash) == (elsewhere.tx_hash, elsewhere.block_hash)
        with transaction(db.sessions) as s:
            problems, _ = reconcile(s, registry)
        assert problems == []
    finally:
        node.stop()


def test_a_transaction_the_node_dropped_is_sent_again_by_a_worker_loop_that_does_not_wait(db):
    """The node forgets a transaction in flight (evicted from its pool, or lost in a restart the worker did
    not see) while events trickle in too slowly to fill the window: once it is older than stuck_tx_s the
    worker loop waits for it, times out, and sends the batch again, instead of waiting for it forever."""
    node = AnvilNode().start()
    try:
        w3 = make_web3(node.rpc_url)
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        seed_parties(db.sessions, registry)
        for event in lifecycle()[:2]:
            with transaction(db.sessions) as s:
                record_event(s, event, id_base=ID_BASE)
        anchorer = Anchorer(
            db.sessions, registry, batch_max=256, confirmations=0, receipt_timeout_s=2, stuck_tx_s=0.5
        )
        w3.provider.make_request("evm_setAutomine", [False])
        assert anchorer.step(wait=False) == 2  # sent, pending
        w3.provider.make_request("anvil_dropAllTransactions", [])
        w3.provider.make_request("evm_setAutomine", [True])

        deadline = time.monotonic() + 30
        run_forever(anchorer, interval_s=0.1, stop=lambda: all_done(db) or time.monotonic() > deadline)
        assert all_done(db), "the dropped transaction was waited for forever"
        assert registry.anchored_at(_first_batch(db).root) > 0
    finally:
        node.stop()


def all_done(db: Any) -> bool:
    with transaction(db.sessions) as s:
        return set(s.scalars(select(models.Outbox.status))) == {"anchored"}
