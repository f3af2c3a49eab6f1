"""Write-ahead chain operations: a crash at any step, then a restart, leaves chain and database agreeing.

Failures are injected as I/O: the client of the process that "dies" talks to the real Anvil through a provider
that raises :class:`Crash` at a chosen request (before or after broadcasting, or when it first asks for a
receipt, i.e. after the tx hash was committed). The restart is a fresh client with a fresh sender, as a new
process would have. The chain is always the real Anvil; the database is SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import psycopg
import pytest
from eth_account import Account
from sqlalchemy import event, select
from web3 import HTTPProvider, Web3

from factories import (
    AUTHORITY_ADMIN_KEY,
    ID_BASE,
    OFFICER_PASSPHRASE,
    authority_admin,
    lifecycle,
    make_authority,
    seed_parties,
)
from traceability.chain.registry import TraceRegistry, authority_id
from traceability.config import ANVIL_DEV_KEY
from traceability.domain import codec
from traceability.domain.states import ChainOpKind, ChainOpStatus, PartyStatus
from traceability.errors import Conflict, Forbidden, InvalidInput
from traceability.services.anchoring import Anchorer
from traceability.services.certify import certify_lot, request_certification, revoke_certification
from traceability.services.chainops import (
    Outcome,
    chain_op_problems,
    process_chain_op,
    resume_chain_ops,
)
from traceability.services.events import record_event
from traceability.services.parties import (
    OFFICER_GAS_ALLOWANCE_WEI,
    enrol_authority,
    enrol_officer,
    request_officer,
    request_officer_revocation,
    revoke_officer,
    unlock_officer_key,
)
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

LOT = "T-VEG-0001"
STEPS = ["intent", "before_send", "after_send", "after_hash"]


class Crash(BaseException):
    """The process dies here: not an Exception, so nothing on the way up catches it and carries on."""


class Link(HTTPProvider):
    """The real Anvil, with a hook called before and after every request (it may raise :class:`Crash`)."""

    def __init__(self, url: str, hook: Callable[[str, str], None] | None = None) -> None:
        super().__init__(url, request_kwargs={"timeout": 30})
        self.hook = hook
        self.methods: list[str] = []

    def make_request(self, method: Any, params: Any) -> Any:
        self.methods.append(str(method))
        if self.hook is not None:
            self.hook("before", str(method))
        response = super().make_request(method, params)
        if self.hook is not None:
            self.hook("after", str(method))
        return response


def crash_at(step: str) -> Callable[[str, str], None]:
    """``before_send``: nothing broadcast. ``after_send``: the first transaction broadcast, its hash not yet
    recorded. ``after_hash``: everything broadcast and the hash committed, dying at the first receipt poll."""
    broadcast = False

    def hook(phase: str, method: str) -> None:
        nonlocal broadcast
        if method == "eth_sendRawTransaction":
            if step == "before_send" and phase == "before":
                raise Crash(step)
            if phase == "after":
                broadcast = True
                if step == "after_send":
                    raise Crash(step)
        if step == "after_hash" and broadcast and phase == "before" and method == "eth_getTransactionReceipt":
            raise Crash(step)

    return hook


def client(anvil, registry, key: str = ANVIL_DEV_KEY, hook=None) -> TraceRegistry:
    """A client of its own (own Web3, own sender and nonce count), as another process would have."""
    return TraceRegistry(Web3(Link(anvil.rpc_url, hook)), registry.address, Account.from_key(key))


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Anvil mines a transaction as it arrives, but seals the block just after answering the send: on a busy
    machine a read made at once can come before it."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sends(reg: TraceRegistry) -> int:
    return reg.w3.provider.methods.count("eth_sendRawTransaction")


def ops(db, kind: str | None = None) -> list[models.ChainOp]:
    with transaction(db.sessions) as s:
        found = s.scalars(select(models.ChainOp).order_by(models.ChainOp.id)).all()
    return [op for op in found if kind is None or op.kind == kind]


def certification_rows(db) -> tuple[list[models.Event], list[models.CertificationRecord]]:
    with transaction(db.sessions) as s:
        events = list(s.scalars(select(models.Event).where(models.Event.kind == "certification")))
        records = list(s.scalars(select(models.CertificationRecord)))
    return events, records


def record_lot(db) -> None:
    for ev in lifecycle()[:2]:
        with transaction(db.sessions) as s:
            record_event(s, ev, id_base=ID_BASE)


def cert_request(parties, **overrides: Any) -> dict[str, Any]:
    return {
        "officer_username": parties["officer"].username,
        "passphrase": OFFICER_PASSPHRASE,
        "lot_code": LOT,
        "standard": "Organic Thailand PGS",
        "certificate_hash": "0x" + "ab" * 32,
        "place_id": "LAO-T",
        "id_base": ID_BASE,
        **overrides,
    }


def officer_request(authority: models.Authority, username: str = "officer-crash") -> dict[str, Any]:
    return {
        "username": username,
        "display_name": "นางสาวสมศรี ตรวจสอบ",
        "authority": authority,
        "password": "officer-password",
        "passphrase": OFFICER_PASSPHRASE,
    }


def officer_added_logs(registry: TraceRegistry, authority: models.Authority, address: str, start: int):
    added = registry.contract.events.OfficerAdded()
    return list(
        added.get_logs(
            argument_filters={"authority": authority_id(authority.code), "officer": address}, from_block=start
        )
    )


@pytest.fixture
def parties(db, registry):
    out = seed_parties(db.sessions, registry, with_officer=True)
    record_lot(db)
    return out


# ------------------------------------------------------------------ certify: a crash at each step


@pytest.mark.parametrize("step", STEPS)
def test_certification_survives_a_crash_at_each_step(db, registry, anvil, parties, step):
    start = registry.head()
    officer = parties["officer"].address
    if step == "intent":
        request_certification(db.sessions, registry, **cert_request(parties))
    else:
        dying = client(anvil, registry, hook=crash_at(step))
        with pytest.raises(Crash):
            certify_lot(db.sessions, dying, **cert_request(parties))
    [op] = ops(db, ChainOpKind.CERTIFY)
    assert op.status == (ChainOpStatus.INTENT if step == "intent" else ChainOpStatus.SENT)
    assert (op.tx_hash is not None) == (step == "after_hash")
    assert certification_rows(db) == ([], [])  # nothing of the result before it is final
    sent_before = step in ("after_send", "after_hash")  # Anvil mines on arrival
    if sent_before:
        assert eventually(lambda: registry.certification_of(op.subject) is not None)
    else:
        assert registry.certification_of(op.subject) is None

    restarted = client(anvil, registry)
    reports = resume_chain_ops(db.sessions, restarted, stale_after_s=0)
    assert [(r.op_id, r.outcome) for r in reports] == [(op.id, Outcome.DONE)]
    # looked up first: what an earlier run sent is never sent again
    assert sends(restarted) == (0 if sent_before else 1)

    logs = [
        log
        for log in registry.contract.events.Certified().get_logs(from_block=start)
        if log["args"]["officer"] == officer
    ]
    assert len(logs) == 1 and "0x" + bytes(logs[0]["args"]["id"]).hex() == op.subject
    events, records = certification_rows(db)
    assert len(events) == 1 and len(records) == 1
    assert records[0].id == op.subject and records[0].event_id == events[0].id
    assert records[0].tx_hash == "0x" + bytes(logs[0]["transactionHash"]).hex()
    [done] = ops(db, ChainOpKind.CERTIFY)
    assert done.status == ChainOpStatus.DONE and done.tx_hash == records[0].tx_hash
    assert done.block_number == logs[0]["blockNumber"]
    assert resume_chain_ops(db.sessions, restarted, stale_after_s=0) == []
    with transaction(db.sessions) as s:
        assert chain_op_problems(s, registry) == []


def test_certification_event_carries_the_local_offset(db, registry, parties):
    certify_lot(db.sessions, registry, **cert_request(parties))
    [ev], _ = certification_rows(db)
    assert codec.loads(ev.body)["eventTimeZoneOffset"] == "+07:00"
    with pytest.raises(InvalidInput):
        request_certification(db.sessions, registry, **cert_request(parties, tz="Mars/Olympus_Mons"))


def test_expired_signature_resumes_to_failed_with_nothing_half_written(db, registry, anvil, w3, parties):
    officer = parties["officer"].address
    request_certification(db.sessions, registry, **cert_request(parties, signature_window_s=1))
    nonce = registry.nonce_of(officer)
    time.sleep(2.2)
    w3.provider.make_request("evm_mine", [])  # a block after the deadline
    restarted = client(anvil, registry)
    [report] = resume_chain_ops(db.sessions, restarted, stale_after_s=0)
    assert report.outcome is Outcome.FAILED and "expired" in (report.error or "")
    assert sends(restarted) == 0
    [op] = ops(db, ChainOpKind.CERTIFY)
    assert op.status == ChainOpStatus.FAILED
    assert registry.certification_of(op.subject) is None and registry.nonce_of(officer) == nonce
    assert certification_rows(db) == ([], [])
    with transaction(db.sessions) as s:
        assert [p.code for p in chain_op_problems(s, registry)] == ["chain_op_failed"]
    assert resume_chain_ops(db.sessions, restarted, stale_after_s=0) == []  # final: not tried again


def test_a_live_claim_is_not_taken_over(db, registry, anvil, parties):
    dying = client(anvil, registry, hook=crash_at("after_hash"))
    with pytest.raises(Crash):
        certify_lot(db.sessions, dying, **cert_request(parties))
    [op] = ops(db, ChainOpKind.CERTIFY)
    restarted = client(anvil, registry)
    # The claim is fresh: its holder may still be waiting for the receipt. Nothing is sent, nothing written.
    [report] = resume_chain_ops(db.sessions, restarted)
    assert report.outcome is Outcome.IN_PROGRESS and sends(restarted) == 0
    assert ops(db, ChainOpKind.CERTIFY)[0].attempts == op.attempts
    [report] = resume_chain_ops(db.sessions, restarted, stale_after_s=0)
    assert report.outcome is Outcome.DONE


def test_claim_is_a_compare_and_set(db, registry, parties):
    op_id = request_certification(db.sessions, registry, **cert_request(parties))
    with transaction(db.sessions) as s:
        first = Repository(s).claim_chain_op(op_id, status=ChainOpStatus.INTENT, attempts=0)
    with transaction(db.sessions) as s:
        second = Repository(s).claim_chain_op(op_id, status=ChainOpStatus.INTENT, attempts=0)
        assert not Repository(s).update_claimed_chain_op(op_id, 2, error="not my claim")
    assert (first, second) == (True, False)
    [op] = ops(db, ChainOpKind.CERTIFY)
    assert (op.status, op.attempts, op.error) == (ChainOpStatus.SENT, 1, None)


def test_certifications_recorded_ahead_take_consecutive_nonces(db, registry, parties):
    first = request_certification(db.sessions, registry, **cert_request(parties))
    second = request_certification(
        db.sessions, registry, **cert_request(parties, certificate_hash="0x" + "cd" * 32)
    )
    nonces = [op.payload["cert"]["nonce"] for op in ops(db, ChainOpKind.CERTIFY)]
    assert nonces[1] == nonces[0] + 1
    # processed out of order, the later one waits for the earlier instead of failing
    assert process_chain_op(db.sessions, registry, second).outcome is Outcome.WAITING
    assert [r.outcome for r in resume_chain_ops(db.sessions, registry)] == [Outcome.DONE, Outcome.DONE]
    assert {op.id for op in ops(db, ChainOpKind.CERTIFY) if op.status == ChainOpStatus.DONE} == {
        first,
        second,
    }
    assert len(certification_rows(db)[1]) == 2


def test_the_anchoring_worker_relays_a_certification_recorded_ahead(db, registry, parties):
    request_certification(db.sessions, registry, **cert_request(parties))
    stats = Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    assert stats.events == 3  # planting, harvest, and the certification the worker finished first
    [op] = ops(db, ChainOpKind.CERTIFY)
    assert op.status == ChainOpStatus.DONE
    assert len(certification_rows(db)[1]) == 1


# ------------------------------------------------------------------ officer enrolment: a crash at each step


@pytest.mark.parametrize("step", STEPS)
def test_officer_enrolment_survives_a_crash_at_each_step(db, registry, anvil, w3, step):
    authority = make_authority(db.sessions, registry)
    start = registry.head()
    if step == "intent":
        request_officer(db.sessions, authority_admin(registry), **officer_request(authority))
    else:
        dying = client(anvil, registry, AUTHORITY_ADMIN_KEY, hook=crash_at(step))
        with pytest.raises(Crash):
            enrol_officer(db.sessions, authority_admin=dying, **officer_request(authority))
    [op] = ops(db, ChainOpKind.ADD_OFFICER)
    with transaction(db.sessions) as s:
        row = Repository(s).officer_by_username("officer-crash")
    assert row is not None and row.status == PartyStatus.PENDING  # the key is kept from the start
    assert unlock_officer_key(row, OFFICER_PASSPHRASE).address == row.address == op.subject
    registered_before = step in ("after_send", "after_hash")
    status = lambda: registry.officer_status(authority_id(authority.code), row.address)  # noqa: E731
    if registered_before:  # sent before the crash: on chain once Anvil has sealed its block
        assert eventually(lambda: status().valid_from != 0)
    else:
        assert status().valid_from == 0

    restarted = client(anvil, registry)  # the worker's client: it broadcasts what the admin signed
    [report] = resume_chain_ops(db.sessions, restarted, stale_after_s=0)
    assert report.outcome is Outcome.DONE, report
    # the registration is never broadcast again once sent; the allowance only if it was not
    assert sends(restarted) == {"intent": 2, "before_send": 2, "after_send": 1, "after_hash": 0}[step]

    with transaction(db.sessions) as s:
        row = Repository(s).officer_by_username("officer-crash")
    assert row is not None and row.status == PartyStatus.ACTIVE
    assert unlock_officer_key(row, OFFICER_PASSPHRASE).address == row.address
    assert len(officer_added_logs(registry, authority, row.address, start)) == 1
    assert registry.officer_status(authority_id(authority.code), row.address).valid_from != 0
    assert w3.eth.get_balance(row.address) == OFFICER_GAS_ALLOWANCE_WEI  # delivered exactly once
    assert resume_chain_ops(db.sessions, restarted, stale_after_s=0) == []
    with transaction(db.sessions) as s:
        assert chain_op_problems(s, registry) == []


def test_officer_whose_nonce_was_taken_fails_and_stays_pending(db, registry, anvil, w3):
    authority = make_authority(db.sessions, registry)
    start = registry.head()
    request_officer(db.sessions, authority_admin(registry), **officer_request(authority))
    [op] = ops(db, ChainOpKind.ADD_OFFICER)
    # The admin's key sends something else first, taking the nonces the registration was signed with.
    other = authority_admin(registry)
    other.wait_receipt(other.send_value(Account.create().address, 1))
    other.wait_receipt(other.send_value(Account.create().address, 1))
    [report] = resume_chain_ops(db.sessions, client(anvil, registry), stale_after_s=0)
    assert report.outcome is Outcome.FAILED and "used by another transaction" in (report.error or "")
    with transaction(db.sessions) as s:
        row = Repository(s).officer_by_username("officer-crash")
        problems = chain_op_problems(s, registry)
    assert row is not None and row.status == PartyStatus.PENDING
    assert officer_added_logs(registry, authority, op.subject, start) == []
    assert w3.eth.get_balance(op.subject) == 0
    assert [p.code for p in problems] == ["chain_op_failed"] and "stays pending" in problems[0].message


def test_officers_recorded_ahead_take_distinct_nonces(db, registry, anvil):
    authority = make_authority(db.sessions, registry)
    admin = authority_admin(registry)
    request_officer(db.sessions, admin, **officer_request(authority, "officer-a"))
    request_officer(db.sessions, admin, **officer_request(authority, "officer-b"))
    nonces = [tx["nonce"] for op in ops(db, ChainOpKind.ADD_OFFICER) for tx in op.payload["txs"]]
    assert len(set(nonces)) == 4
    reports = resume_chain_ops(db.sessions, client(anvil, registry), stale_after_s=0)
    assert [r.outcome for r in reports] == [Outcome.DONE, Outcome.DONE]


def test_a_pending_officer_cannot_certify(db, registry, parties):
    request_officer(db.sessions, authority_admin(registry), **officer_request(parties["authority"]))
    with pytest.raises(Conflict):
        request_certification(
            db.sessions, registry, **cert_request(parties, officer_username="officer-crash")
        )


# ------------------------------------------------------------------ authority and revocation


def test_authority_registration_survives_a_crash_after_broadcast(db, registry, anvil):
    dying = client(anvil, registry, hook=crash_at("after_send"))
    admin = Account.from_key(AUTHORITY_ADMIN_KEY).address
    with pytest.raises(Crash):
        enrol_authority(
            db.sessions,
            code="LAO-CRASH-" + str(time.time_ns())[-6:],
            name_th="อบต.ทดสอบ",
            name_en="Test SAO",
            district_th="อำเภอทดสอบ",
            province_th="จังหวัดทดสอบ",
            admin_address=admin,
            registrar=dying,
        )
    [op] = ops(db, ChainOpKind.ADD_AUTHORITY)
    with transaction(db.sessions) as s:
        assert Repository(s).authority_by_code(op.subject).status == PartyStatus.PENDING
    restarted = client(anvil, registry)
    assert [r.outcome for r in resume_chain_ops(db.sessions, restarted, stale_after_s=0)] == [Outcome.DONE]
    assert sends(restarted) == 0
    with transaction(db.sessions) as s:
        assert Repository(s).authority_by_code(op.subject).status == PartyStatus.ACTIVE
    assert registry.authority_admin(authority_id(op.subject)) == admin


def test_revocation_survives_a_crash_after_broadcast(db, registry, anvil, parties):
    cert = certify_lot(db.sessions, registry, **cert_request(parties))
    dying = client(anvil, registry, hook=crash_at("after_send"))
    revoke = {
        "officer_username": parties["officer"].username,
        "passphrase": OFFICER_PASSPHRASE,
        "cert_id": cert.cert_id,
        "reason": "ตรวจพบการใช้สารเคมีในแปลง",
        "place_id": "LAO-T",
        "id_base": ID_BASE,
    }
    with pytest.raises(Crash):
        revoke_certification(db.sessions, dying, **revoke)
    assert eventually(lambda: registry.certification_of(cert.cert_id)["revoked_at"] != 0)
    with transaction(db.sessions) as s:
        assert not s.scalars(select(models.Event).where(models.Event.kind == "revocation")).all()
    restarted = client(anvil, registry)
    assert [r.outcome for r in resume_chain_ops(db.sessions, restarted, stale_after_s=0)] == [Outcome.DONE]
    assert sends(restarted) == 0
    with transaction(db.sessions) as s:
        assert len(s.scalars(select(models.Event).where(models.Event.kind == "revocation")).all()) == 1
    with pytest.raises(Conflict):  # one revocation per certification
        revoke_certification(db.sessions, registry, **revoke)


# ------------------------------------------------------------------ officer revocation: a crash at each step


def officer_revoked_logs(registry: TraceRegistry, authority: models.Authority, address: str, start: int):
    revoked = registry.contract.events.OfficerRevoked()
    return list(
        revoked.get_logs(
            argument_filters={"authority": authority_id(authority.code), "officer": address}, from_block=start
        )
    )


@pytest.mark.parametrize("step", STEPS)
def test_officer_revocation_survives_a_crash_at_each_step(db, registry, anvil, parties, step):
    authority, officer = parties["authority"], parties["officer"]
    aid = authority_id(authority.code)
    # The earliest time the contract allows: the start of the officer's term, in the past.
    effective_at = registry.officer_status(aid, officer.address).valid_from
    start = registry.head()
    request = {"username": officer.username, "effective_at": effective_at}
    if step == "intent":
        request_officer_revocation(db.sessions, authority_admin(registry), **request)
    else:
        dying = client(anvil, registry, AUTHORITY_ADMIN_KEY, hook=crash_at(step))
        with pytest.raises(Crash):
            revoke_officer(db.sessions, authority_admin=dying, **request)
    [op] = ops(db, ChainOpKind.REVOKE_OFFICER)
    assert op.subject == officer.address and op.status == (
        ChainOpStatus.INTENT if step == "intent" else ChainOpStatus.SENT
    )
    with transaction(db.sessions) as s:
        assert Repository(s).officer_by_username(officer.username).status == PartyStatus.ACTIVE
    sent_before = step in ("after_send", "after_hash")
    if sent_before:  # sent before the crash: on chain once Anvil has sealed its block
        assert eventually(lambda: registry.officer_status(aid, officer.address).revoked_at != 0)
    else:
        assert registry.officer_status(aid, officer.address).revoked_at == 0
    with pytest.raises(Conflict, match="being revoked"):  # one revocation at a time
        request_officer_revocation(db.sessions, authority_admin(registry), **request)

    restarted = client(anvil, registry)  # the worker's client: it broadcasts what the admin signed
    [report] = resume_chain_ops(db.sessions, restarted, stale_after_s=0)
    assert report.outcome is Outcome.DONE, report
    assert sends(restarted) == (0 if sent_before else 1)  # looked up on chain first: never sent twice

    assert len(officer_revoked_logs(registry, authority, officer.address, start)) == 1
    assert registry.officer_status(aid, officer.address).revoked_at == effective_at
    with transaction(db.sessions) as s:
        assert Repository(s).officer_by_username(officer.username).status == PartyStatus.REVOKED
    [done] = ops(db, ChainOpKind.REVOKE_OFFICER)
    assert done.status == ChainOpStatus.DONE and done.tx_hash == op.payload["txs"][0]["hash"]
    assert resume_chain_ops(db.sessions, restarted, stale_after_s=0) == []
    with transaction(db.sessions) as s:
        assert chain_op_problems(s, registry) == []
    with pytest.raises(Forbidden, match="revoked"):
        request_certification(db.sessions, registry, **cert_request(parties))
    with pytest.raises(Conflict, match="already revoked"):
        request_officer_revocation(db.sessions, authority_admin(registry), **request)


def test_a_certification_is_refused_once_the_chain_has_the_revocation(db, registry, anvil, parties):
    # The revocation is on chain but its op not finished (the row still active): the chain decides.
    dying = client(anvil, registry, AUTHORITY_ADMIN_KEY, hook=crash_at("after_send"))
    with pytest.raises(Crash):
        revoke_officer(db.sessions, username=parties["officer"].username, authority_admin=dying)
    with transaction(db.sessions) as s:
        row = Repository(s).officer_by_username(parties["officer"].username)
        assert row is not None and row.status == PartyStatus.ACTIVE
    with pytest.raises(Forbidden, match="not an officer of .* on chain now"):
        request_certification(db.sessions, registry, **cert_request(parties))
    assert ops(db, ChainOpKind.CERTIFY) == []


def test_officer_revocation_refused_by_the_contract_writes_nothing(db, registry, parties):
    officer = parties["officer"]
    valid_from = registry.officer_status(authority_id(parties["authority"].code), officer.address).valid_from
    with pytest.raises(InvalidInput, match="before officer .* validFrom"):
        request_officer_revocation(
            db.sessions, authority_admin(registry), username=officer.username, effective_at=valid_from - 1
        )
    with pytest.raises(Forbidden, match="is not the admin"):
        request_officer_revocation(db.sessions, registry, username=officer.username)
    assert ops(db, ChainOpKind.REVOKE_OFFICER) == []


# ------------------------------------------------------------------ no transaction open during a wait


@contextmanager
def backends_of(db) -> Iterator[set[int]]:
    """The PostgreSQL backend pids of ``db.engine``'s connections from now on (empty for SQLite)."""
    pids: set[int] = set()
    db.engine.dispose()

    def remember(dbapi_conn: Any, _record: Any) -> None:
        if db.dialect == "postgresql":
            pids.add(int(dbapi_conn.info.backend_pid))

    event.listen(db.engine, "connect", remember)
    try:
        yield pids
    finally:
        event.remove(db.engine, "connect", remember)


def assert_no_transaction_open(db, pids: set[int]) -> None:
    assert db.engine.pool.checkedout() == 0  # no session holds a connection
    if db.dialect == "sqlite":
        # Another connection can take the write lock and commit at once.
        path = db.url.split("///", 1)[1]
        with closing(sqlite3.connect(path, timeout=0.2, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE chain_ops SET attempts = attempts")
            conn.execute("COMMIT")
        return
    with psycopg.connect(db.url, connect_timeout=5) as conn:
        conn.execute("SET lock_timeout = '200ms'")
        conn.execute("UPDATE chain_ops SET attempts = attempts")  # no row lock held by anyone
        busy = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND xact_start IS NOT NULL",
            [sorted(pids)],
        ).fetchone()
        assert busy == (0,)


def test_no_database_transaction_is_open_while_a_receipt_is_awaited(db, registry, anvil, parties):
    checked: list[str] = []

    def probe(phase: str, method: str) -> None:
        if phase == "before" and method == "eth_getTransactionReceipt":
            assert_no_transaction_open(db, pids)
            checked.append(method)

    with backends_of(db) as pids:
        certify_lot(db.sessions, client(anvil, registry, hook=probe), **cert_request(parties))
        assert checked, "the receipt was never awaited"
        checked.clear()
        admin = client(anvil, registry, AUTHORITY_ADMIN_KEY, hook=probe)
        enrol_officer(db.sessions, authority_admin=admin, **officer_request(parties["authority"]))
        assert checked
        if db.dialect == "postgresql":
            assert pids  # the probe watched the engine's real connections
