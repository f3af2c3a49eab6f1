"""Write-ahead chain operations other than anchoring: registering an authority or an officer, revoking an
officer, relaying an officer's certification, revoking one. After a crash at any point the database and the
chain must still agree, so each operation is recorded in ``chain_ops`` and committed *before* anything is
sent, like an anchoring batch, and finished from what the chain says.

States (:class:`~traceability.domain.states.ChainOpStatus`)::

    intent ──claim──▶ sent ──effect found on chain──▶ done
                        └────can never succeed──────▶ failed

- ``intent``: committed with everything needed to send it and to finish it, together with the rows it implies
  in their pending form (an authority or officer row with status ``pending``, its keystore included).
- ``sent``: claimed by one process with a compare-and-set on (status, attempts), so two processes never send
  the same op. The tx hash is committed in its own transaction as soon as it is known. ``attempts`` numbers
  the claims and fences every later write: a process whose claim was taken over writes nothing more.
- ``done``: the effect is on chain, and the transaction that marks it done writes the rows it implies (the
  certification event and record, the revocation event, the party row made ``active`` or ``revoked``).
- ``failed``: it can never succeed (a revert, the signature's deadline passed, its nonce used by another
  transaction); ``error`` says why. Nothing of it was written but its pending rows, which stay pending.

How each kind is sent:

- ``certify``: the officer's EIP-712 signature is in the intent; the relay transaction is signed when it is
  sent, by the service's key (``registry.sender``). A second relay cannot certify twice (the first spends the
  officer's nonce), so before sending anything a restart looks the id up with ``certificationOf``.
- ``add_authority``, ``add_officer`` (and the officer's gas allowance), ``revoke_officer``,
  ``revoke_certification``: the signing key (registrar, authority admin, officer) is at hand only while the
  request is served, so the raw transactions are signed then, with explicit nonces, and kept in the intent. A
  restart looks the effect up on chain first, then broadcasts the very same bytes again unless they were mined
  or their nonce was taken by another transaction. They cannot be fee-bumped later, so they are signed with a
  generous fee cap.

No database transaction is open while a receipt is awaited: claim, record the hash, and finish are three short
transactions, and the chain calls happen between them.

A process that dies holding a claim leaves its op ``sent``; another process takes it over once the claim is
older than ``stale_after_s`` (by default the receipt timeout plus a minute, which a live holder never
exceeds). The anchoring worker calls :func:`resume_chain_ops` at every pass.
"""

from __future__ import annotations

import logging
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from eth_utils.address import to_checksum_address
from eth_utils.hexadecimal import decode_hex, encode_hex
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.exceptions import BlockNotFound, Web3RPCError

from traceability.chain.eip712 import CertificationData, authority_id
from traceability.chain.registry import TraceRegistry, as_bytes32
from traceability.chain.sender import (
    ContractReverted,
    ReceiptTimeout,
    TxReceipt,
    chain_errors,
    receipt_or_none,
)
from traceability.domain.events import Certification, Revocation
from traceability.domain.states import ChainOpKind, ChainOpStatus, PartyStatus
from traceability.errors import (
    ChainConflict,
    ChainError,
    ConfigurationError,
    NotFound,
    TraceabilityError,
    TransactionFailed,
)
from traceability.services.events import RecordedEvent, record_event
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository

log = logging.getLogger(__name__)

#: How much longer than the receipt timeout a claim is honoured before another process may take the op over.
CLAIM_MARGIN_S = 60.0
#: Presigned transactions cannot be replaced with higher fees later: cap the fee at this many base fees.
PRESIGNED_BASE_FEES = 3

UNFINISHED = (ChainOpStatus.INTENT.value, ChainOpStatus.SENT.value)


class Outcome(StrEnum):
    """What one pass over an op did (``ChainOpReport.outcome``)."""

    DONE = "done"  # finished in this pass: on chain, result rows written
    FAILED = "failed"  # became failed in this pass
    ALREADY_DONE = "already_done"
    ALREADY_FAILED = "already_failed"
    IN_PROGRESS = "in_progress"  # another process holds the claim
    PENDING = "pending"  # sent; no receipt yet (or not yet visible): a later pass finishes it
    WAITING = "waiting"  # released unsent: an earlier op of the same signer must land first
    ERROR = "error"  # a chain or database error; the op is left for a later pass


@dataclass(frozen=True)
class ChainOpReport:
    op_id: int
    kind: str
    subject: str
    status: str  # the op's status after this pass
    outcome: Outcome
    tx_hash: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in (ChainOpStatus.DONE, ChainOpStatus.FAILED)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}


@dataclass(frozen=True)
class ChainOpProblem:
    """A chain op ``trace reconcile`` reports: unfinished, failed, or done with its effect gone from chain."""

    code: str  # chain_op_unfinished | chain_op_failed | chain_op_missing | chain_unavailable
    message: str
    op_id: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RawTx:
    """A transaction signed at request time with an explicit nonce, kept whole in the intent."""

    role: str  # add_authority | add_officer | gas_allowance | revoke_officer | revoke
    sender: str
    nonce: int
    raw: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> RawTx:
        return cls(
            str(data["role"]), str(data["sender"]), int(data["nonce"]), str(data["raw"]), str(data["hash"])
        )


# ------------------------------------------------------------------ building intents (used at request time)


def contract_call(signer: TraceRegistry, function: str, *args: Any) -> dict[str, Any]:
    """The ``to`` and ``data`` of a call of ``function`` on the registry."""
    return {"to": signer.address, "data": signer.contract.encode_abi(function, args=list(args))}


def presign(signer: TraceRegistry, role: str, tx: dict[str, Any], nonce: int) -> RawTx:
    """Sign ``tx`` with ``signer``'s key at ``nonce`` without sending it. The gas estimate runs first, so a
    call the contract would refuse raises :class:`ContractReverted` here, before any intent is written."""
    account, sender = signer.account, signer.sender
    if account is None or sender is None:
        raise ConfigurationError("signing a chain operation needs a client with the signing key")
    tx = {"value": 0, **tx, "chainId": signer.chain_id}
    tx["gas"] = sender.estimate_gas(tx, contract=signer.address, decoder=signer.decoder)
    tx.update(_presigned_fees(signer.w3))
    tx["nonce"] = nonce
    signed = account.sign_transaction(tx)
    return RawTx(role, account.address, nonce, encode_hex(signed.raw_transaction), encode_hex(signed.hash))


def _presigned_fees(w3: Web3) -> dict[str, int]:
    with chain_errors():
        base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": int(w3.eth.gas_price) * 3 // 2}
        tip = int(w3.eth.max_priority_fee)
    return {"maxFeePerGas": PRESIGNED_BASE_FEES * int(base_fee) + tip, "maxPriorityFeePerGas": tip}


def allocate_nonces(session: Session, w3: Web3, address: str, count: int) -> list[int]:
    """``count`` transaction nonces for ``address``: from the node's pending count up, skipping those held by
    unfinished ops not yet broadcast (so intents recorded before the worker sends them never collide)."""
    held = {
        tx.nonce
        for op in Repository(session).chain_ops_in(UNFINISHED)
        for tx in _raw_txs(op.payload)
        if tx.sender == address
    }
    with chain_errors():
        nonce = int(w3.eth.get_transaction_count(to_checksum_address(address), "pending"))
    out: list[int] = []
    while len(out) < count:
        if nonce not in held:
            out.append(nonce)
        nonce += 1
    return out


def next_certification_nonce(session: Session, registry: TraceRegistry, officer: str) -> int:
    """The EIP-712 nonce for the officer's next certification: the contract's, or past those held by the
    officer's certifications not yet relayed (the contract takes them strictly in order)."""
    held = {
        _cert_nonce(op.payload)
        for op in Repository(session).chain_ops_in(UNFINISHED, kind=ChainOpKind.CERTIFY)
        if _cert_officer(op.payload) == to_checksum_address(officer)
    }
    nonce = registry.nonce_of(officer)
    while nonce in held:
        nonce += 1
    return nonce


def require_sessionmaker(sessions: object, what: str) -> None:
    """A write-ahead operation commits its intent before it sends: it needs a sessionmaker, not the session of
    a caller's open transaction (whose commit would come only after the wait)."""
    if isinstance(sessions, Session):
        raise TypeError(f"{what} commits its intent before sending: pass the sessionmaker, not a session")


def chain_time(w3: Web3) -> int:
    """The time the next block will carry, as near as the node tells: the pending block's (Anvil and geth
    give it), never before the latest block's. Deadlines are judged by block time, not by this host's clock
    (a dev chain's clock may run ahead of it)."""
    with chain_errors():
        latest = int(w3.eth.get_block("latest")["timestamp"])
        try:
            pending = int(w3.eth.get_block("pending")["timestamp"])
        except (Web3RPCError, BlockNotFound):  # a node without a pending block
            pending = latest
    return max(latest, pending)


def head_block(registry: TraceRegistry) -> int:
    """Where to start looking for an op's logs later (recorded in the intent)."""
    return registry.head()


# ------------------------------------------------------------------ the state machine


@dataclass(frozen=True)
class _Claimed:
    id: int
    kind: str
    subject: str
    payload: dict[str, Any]
    tx_hash: str | None
    claim: int  # the attempts value this process set: every later write is fenced on it


@dataclass(frozen=True)
class _Landed:
    tx_hash: str | None
    block_number: int | None
    note: str | None = None


@dataclass(frozen=True)
class _Obstacle:
    reason: str
    final: bool


class _Kind(Protocol):
    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        """Whether the op's effect is on chain."""

    def landed(self, registry: TraceRegistry, op: _Claimed) -> _Landed | None:
        """The effect, if it is on chain already (and everything the op sends is settled)."""

    def obstacle(
        self, registry: TraceRegistry, op: _Claimed, sessions: sessionmaker[Session]
    ) -> _Obstacle | None:
        """Why sending would be wrong now: for ever (``final``) or until an earlier op lands."""

    def send(self, registry: TraceRegistry, op: _Claimed) -> tuple[str, list[str]]:
        """Send what is still unsent: (the tx hash to record, the hashes to wait for)."""

    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        """Write the rows the op implies, in the transaction that marks it done."""


def process_chain_op(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    op_id: int,
    *,
    timeout: float | None = None,
    stale_after_s: float | None = None,
) -> ChainOpReport:
    """Take op ``op_id`` as far as it goes: claim it, look it up on chain, send it if it is not there, record
    the tx hash, wait for the receipt with no database transaction open, then record the result.

    ``registry`` reads the chain and broadcasts; a certification is relayed from its ``sender`` (the
    service's key). ``timeout``: seconds to wait for a receipt (default: the registry's). ``stale_after_s``:
    how old another process's claim must be before this one takes the op over (default: receipt timeout +
    :data:`CLAIM_MARGIN_S`). Raises the chain error when the chain cannot be reached; the op keeps the error
    and the claim, and another pass takes it over once the claim is stale.
    """
    lease = stale_after_s if stale_after_s is not None else registry.receipt_timeout + CLAIM_MARGIN_S
    taken = _claim(sessions, op_id, lease)
    if isinstance(taken, ChainOpReport):
        return taken
    kind = _KINDS.get(taken.kind)
    try:
        if kind is None:
            raise ConfigurationError(f"this version cannot process chain ops of kind {taken.kind}")
        return _drive(sessions, registry, taken, kind, timeout)
    except ConfigurationError as exc:  # raised before anything is broadcast: hand the op back untouched
        _release(sessions, taken, _Obstacle(exc.message, final=False))
        raise
    except TraceabilityError as exc:  # the chain unreachable, or the result not recordable: keep the claim
        _update(sessions, taken, error=exc.message)
        raise


def resume_chain_ops(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    *,
    timeout: float | None = None,
    stale_after_s: float | None = None,
) -> list[ChainOpReport]:
    """Finish every unfinished op, oldest first, each looked up on chain before anything is sent again. An op
    another live process holds is left to it; an error on one op is reported and the next is tried."""
    with transaction(sessions) as session:
        ids = [op.id for op in Repository(session).chain_ops_in(UNFINISHED)]
    reports: list[ChainOpReport] = []
    for op_id in ids:
        try:
            report = process_chain_op(sessions, registry, op_id, timeout=timeout, stale_after_s=stale_after_s)
        except Exception as exc:  # one broken op must not stop the others, nor the anchoring pass
            if not isinstance(exc, TraceabilityError):
                log.exception("chain op %s: unexpected error", op_id)
            report = _report_of(sessions, op_id, Outcome.ERROR, error=str(exc))
        if report.outcome not in (Outcome.IN_PROGRESS, Outcome.ALREADY_DONE, Outcome.ALREADY_FAILED):
            log.info("chain op %s (%s %s): %s", op_id, report.kind, report.subject, report.outcome.value)
        reports.append(report)
    return reports


def settle_chain_op(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    op_id: int,
    *,
    timeout: float | None = None,
    poll_s: float = 0.2,
) -> ChainOpReport:
    """Process the op now and, if another process holds it, wait (polling, no transaction open) until it
    is finished or ``timeout`` passes. What a request that must answer "done or not" calls."""
    limit = registry.receipt_timeout if timeout is None else timeout
    report = process_chain_op(sessions, registry, op_id, timeout=limit)
    deadline = time.monotonic() + limit
    while report.outcome is Outcome.IN_PROGRESS and time.monotonic() < deadline:
        time.sleep(poll_s)
        report = _report_of(sessions, op_id, Outcome.IN_PROGRESS)
        if report.finished:
            done = report.status == ChainOpStatus.DONE
            report = _report_of(sessions, op_id, Outcome.DONE if done else Outcome.FAILED)
    return report


def raise_unless_done(report: ChainOpReport, what: str) -> None:
    """Turn a report that is not ``done`` into the error a caller shows: failed → TransactionFailed (502);
    still on its way → ChainError ``chain_op_pending`` (202: recorded, a later pass finishes it)."""
    if report.status == ChainOpStatus.DONE:
        return
    if report.status == ChainOpStatus.FAILED:
        raise TransactionFailed(f"{what} failed: {report.error}", tx_hash=report.tx_hash)
    detail = f" ({report.error})" if report.error else ""
    raise ChainError(
        f"{what} is recorded (chain op #{report.op_id}) but not yet final on chain{detail}; "
        "the anchoring worker finishes it",
        tx_hash=report.tx_hash,
        status_code=202,
        code="chain_op_pending",
    )


def chain_op_problems(session: Session, registry: TraceRegistry | None = None) -> list[ChainOpProblem]:
    """What ``trace reconcile`` reports about chain ops: each unfinished one (what it waits for), each failed
    one (why, and the pending row it left), and, given a registry, each done one whose effect is not on
    chain (e.g. its block was reorganised away)."""
    repo = Repository(session)
    problems: list[ChainOpProblem] = []
    for op in repo.chain_ops_in(UNFINISHED):
        last = f"; last error: {op.error}" if op.error else ""
        sent = f", tx {op.tx_hash}" if op.tx_hash else ""
        problems.append(
            ChainOpProblem(
                "chain_op_unfinished",
                f"chain op #{op.id} {op.kind} {op.subject}: {op.status} since "
                f"{op.updated_at:%Y-%m-%d %H:%M:%S}Z after {op.attempts} attempt(s){sent}{last}",
                op.id,
            )
        )
    for op in repo.chain_ops_in([ChainOpStatus.FAILED]):
        left = {
            ChainOpKind.ADD_AUTHORITY: " (its authority row stays pending)",
            ChainOpKind.ADD_OFFICER: " (its officer row stays pending and cannot sign)",
            ChainOpKind.REVOKE_OFFICER: " (its officer row stays active: revoke the officer again)",
        }.get(ChainOpKind(op.kind), "")
        problems.append(
            ChainOpProblem(
                "chain_op_failed", f"chain op #{op.id} {op.kind} {op.subject} failed: {op.error}{left}", op.id
            )
        )
    if registry is None:
        return problems
    for op in repo.chain_ops_in([ChainOpStatus.DONE]):
        kind = _KINDS.get(op.kind)
        if kind is None:
            continue
        snapshot = _Claimed(op.id, op.kind, op.subject, dict(op.payload), op.tx_hash, op.attempts)
        try:
            present = kind.in_effect(registry, snapshot)
        except ChainError as exc:
            problems.append(ChainOpProblem("chain_unavailable", str(exc), op.id))
            break
        if not present:
            problems.append(
                ChainOpProblem(
                    "chain_op_missing",
                    f"chain op #{op.id} {op.kind} {op.subject} is done but its effect is not on chain",
                    op.id,
                )
            )
    return problems


# ------------------------------------------------------------------ steps


def _claim(sessions: sessionmaker[Session], op_id: int, lease_s: float) -> _Claimed | ChainOpReport:
    # Read, then compare-and-set in a transaction of its own whose only statement is the UPDATE: SQLite
    # cannot upgrade a read transaction to a write one when another connection wrote meanwhile.
    with transaction(sessions) as session:
        op = Repository(session).chain_op(op_id)
        if op is None:
            raise NotFound(f"unknown chain op {op_id}")
        status, attempts, updated_at = op.status, op.attempts, op.updated_at
        snapshot = _Claimed(op.id, op.kind, op.subject, dict(op.payload), op.tx_hash, attempts + 1)
    if status == ChainOpStatus.DONE:
        return _report_of(sessions, op_id, Outcome.ALREADY_DONE)
    if status == ChainOpStatus.FAILED:
        return _report_of(sessions, op_id, Outcome.ALREADY_FAILED)
    stale_before = None
    if status == ChainOpStatus.SENT:
        stale_before = models.utcnow() - timedelta(seconds=lease_s)
        if updated_at > stale_before:
            return _report_of(sessions, op_id, Outcome.IN_PROGRESS)
    with transaction(sessions) as session:
        taken = Repository(session).claim_chain_op(
            op_id, status=status, attempts=attempts, stale_before=stale_before
        )
    if not taken:
        return _report_of(sessions, op_id, Outcome.IN_PROGRESS)
    if status == ChainOpStatus.SENT:
        log.warning("chain op %s (%s): taking over a claim idle since %s", op_id, snapshot.kind, updated_at)
    return snapshot


def _drive(
    sessions: sessionmaker[Session],
    registry: TraceRegistry,
    op: _Claimed,
    kind: _Kind,
    timeout: float | None,
) -> ChainOpReport:
    tx_hash = op.tx_hash
    landed = kind.landed(registry, op)  # first, always: an earlier run may have landed it
    if landed is None:
        obstacle = kind.obstacle(registry, op, sessions)
        if obstacle is not None:
            return (
                _fail(sessions, op, obstacle.reason) if obstacle.final else _release(sessions, op, obstacle)
            )
        try:
            tx_hash, awaited = kind.send(registry, op)
        except ContractReverted as exc:  # refused at the gas estimate: nothing was broadcast
            landed = kind.landed(registry, op)
            if landed is None:
                return _fail(sessions, op, f"refused by the contract: {exc.message}")
            awaited = []
        if landed is None:
            if not _update(sessions, op, tx_hash=tx_hash):
                return _report_of(sessions, op.id, Outcome.IN_PROGRESS)
            log.info("chain op %s (%s): sent %s", op.id, op.kind, tx_hash)
            receipts: list[TxReceipt] = []
            try:
                for awaited_hash in awaited:  # no database transaction is open here
                    receipts.append(registry.wait_receipt(awaited_hash, timeout))
            except ReceiptTimeout as exc:
                _update(sessions, op, error=exc.message)
                return _report_of(sessions, op.id, Outcome.PENDING)
            landed = kind.landed(registry, op)
            if landed is None:
                obstacle = kind.obstacle(registry, op, sessions)
                if obstacle is not None and obstacle.final:
                    return _fail(sessions, op, obstacle.reason)
                reverted = next((r for r in receipts if r.status != 1), None)
                if reverted is not None:
                    return _fail(sessions, op, _revert_reason(registry, reverted, op.kind))
                return _report_of(sessions, op.id, Outcome.PENDING)
    return _finish(sessions, op, kind, landed, tx_hash)


def _finish(
    sessions: sessionmaker[Session], op: _Claimed, kind: _Kind, landed: _Landed, tx_hash: str | None
) -> ChainOpReport:
    for attempt in range(3):
        try:
            with transaction(sessions) as session:
                # The fenced status change comes first: it takes the write lock, and a process whose claim
                # was taken over stops here with nothing written.
                done = Repository(session).update_claimed_chain_op(
                    op.id,
                    op.claim,
                    status=ChainOpStatus.DONE.value,
                    tx_hash=landed.tx_hash or tx_hash,
                    block_number=landed.block_number,
                    error=landed.note,
                )
                if done:
                    kind.finish(session, op, landed)
        except ChainConflict:
            if attempt == 2:
                raise
            continue  # another event was appended to the lot at the same moment: read its head again
        if not done:
            return _report_of(sessions, op.id, Outcome.IN_PROGRESS)
        log.info("chain op %s (%s %s): done", op.id, op.kind, op.subject)
        return _report_of(sessions, op.id, Outcome.DONE)
    raise AssertionError("unreachable")  # pragma: no cover


def _fail(sessions: sessionmaker[Session], op: _Claimed, reason: str) -> ChainOpReport:
    if not _update(sessions, op, status=ChainOpStatus.FAILED.value, error=reason):
        return _report_of(sessions, op.id, Outcome.IN_PROGRESS)
    log.warning("chain op %s (%s %s) failed: %s", op.id, op.kind, op.subject, reason)
    return _report_of(sessions, op.id, Outcome.FAILED)


def _release(sessions: sessionmaker[Session], op: _Claimed, obstacle: _Obstacle) -> ChainOpReport:
    # Nothing was sent in this claim; hand the op back so the pass that lands the earlier one can take it.
    _update(sessions, op, status=ChainOpStatus.INTENT.value, error=obstacle.reason)
    return _report_of(sessions, op.id, Outcome.WAITING)


def _update(sessions: sessionmaker[Session], op: _Claimed, **values: object) -> bool:
    with transaction(sessions) as session:
        return Repository(session).update_claimed_chain_op(op.id, op.claim, **values)


def _report_of(
    sessions: sessionmaker[Session], op_id: int, outcome: Outcome, *, error: str | None = None
) -> ChainOpReport:
    with transaction(sessions) as session:
        op = Repository(session).chain_op(op_id)
        if op is None:
            raise NotFound(f"unknown chain op {op_id}")
        return ChainOpReport(op.id, op.kind, op.subject, op.status, outcome, op.tx_hash, error or op.error)


def _revert_reason(registry: TraceRegistry, receipt: TxReceipt, what: str) -> str:
    try:
        registry.raise_for_status(receipt, what)
    except TransactionFailed as exc:
        return exc.message
    return f"{what}: transaction {receipt.tx_hash} did not take effect"


# ------------------------------------------------------------------ presigned transactions


class _TxState(StrEnum):
    MINED = "mined"
    REVERTED = "reverted"
    SUPERSEDED = "superseded"  # not mined, and its nonce was used by another transaction: never will be
    UNMINED = "unmined"


def _raw_txs(payload: dict[str, Any]) -> list[RawTx]:
    return [RawTx.from_json(tx) for tx in payload.get("txs", [])]


def _tx_state(w3: Web3, tx: RawTx) -> tuple[_TxState, TxReceipt | None]:
    receipt = receipt_or_none(w3, tx.hash)
    if receipt is not None:
        return (_TxState.MINED if receipt.status == 1 else _TxState.REVERTED), receipt
    with chain_errors(tx_hash=tx.hash):
        used = int(w3.eth.get_transaction_count(to_checksum_address(tx.sender), "latest"))
    return (_TxState.SUPERSEDED if used > tx.nonce else _TxState.UNMINED), None


def _broadcast(registry: TraceRegistry, tx: RawTx) -> bool:
    """Broadcast the stored bytes; True if the node holds them now (sent or already pooled), False if their
    nonce is already used (then look the transaction up rather than wait for it)."""
    with chain_errors(contract=registry.address, tx_hash=tx.hash):
        try:
            registry.w3.eth.send_raw_transaction(decode_hex(tx.raw))
        except Web3RPCError as exc:
            message = str(exc.message).lower()
            if "nonce too low" in message:
                return False
            if not any(m in message for m in ("already known", "already imported", "known transaction")):
                raise
    if registry.sender is not None and registry.sender.address == tx.sender:
        registry.sender.resync_nonce()  # this process's own sender for that key must count past it
    return True


def _nonce_gap(
    registry: TraceRegistry, sessions: sessionmaker[Session], op: _Claimed, tx: RawTx
) -> _Obstacle | None:
    """Why ``tx`` cannot be mined yet when a lower nonce of its key is unused (a queued transaction waits
    for it): not a reason to give up, but one not to wait for a receipt."""
    with chain_errors(tx_hash=tx.hash):
        pending = int(registry.w3.eth.get_transaction_count(to_checksum_address(tx.sender), "pending"))
    if pending >= tx.nonce:
        return None
    with transaction(sessions) as session:
        holders = [
            other.id
            for other in Repository(session).chain_ops_in(UNFINISHED)
            if other.id != op.id
            and any(t.sender == tx.sender and pending <= t.nonce < tx.nonce for t in _raw_txs(other.payload))
        ]
    if holders:
        return _Obstacle(
            f"waits for chain op #{holders[0]}, which holds an earlier nonce of {tx.sender}", False
        )
    return _Obstacle(
        f"nonces {pending}..{tx.nonce - 1} of {tx.sender} are used by no transaction this service knows of: "
        f"nonce {tx.nonce} cannot be mined until they are",
        final=False,
    )


class _Presigned(ABC):
    """A kind whose transactions were signed at request time (``payload["txs"]``, the first the main one)."""

    what = "transaction"

    @abstractmethod
    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        """Whether the op's effect is on chain now (whoever's transaction put it there)."""

    def conflict(self, registry: TraceRegistry, op: _Claimed) -> str | None:
        return None

    def settled_extras(self, registry: TraceRegistry, op: _Claimed) -> tuple[bool, str | None]:
        """Whether the transactions after the main one are settled, and a note if one never will be."""
        note = None
        for tx in _raw_txs(op.payload)[1:]:
            state, _ = _tx_state(registry.w3, tx)
            if state is _TxState.UNMINED:
                return False, None
            if state is not _TxState.MINED:
                note = f"{tx.role} {tx.hash} {state.value}: nonce {tx.nonce} of {tx.sender}"
        return True, note

    def landed(self, registry: TraceRegistry, op: _Claimed) -> _Landed | None:
        if not self.in_effect(registry, op):
            return None
        settled, note = self.settled_extras(registry, op)
        if not settled:
            return None
        main = _raw_txs(op.payload)[0]
        state, receipt = _tx_state(registry.w3, main)
        if state is _TxState.MINED and receipt is not None:
            return _Landed(receipt.tx_hash, receipt.block_number, note)
        return _Landed(None, None, note)  # in effect by another transaction (e.g. a replacement)

    def obstacle(
        self, registry: TraceRegistry, op: _Claimed, sessions: sessionmaker[Session]
    ) -> _Obstacle | None:
        conflict = self.conflict(registry, op)
        if conflict is not None:
            return _Obstacle(conflict, final=True)
        main = _raw_txs(op.payload)[0]
        state, receipt = _tx_state(registry.w3, main)
        if state is _TxState.REVERTED and receipt is not None:
            return _Obstacle(_revert_reason(registry, receipt, self.what), final=True)
        if state is _TxState.SUPERSEDED:
            return _Obstacle(
                f"nonce {main.nonce} of {main.sender} was used by another transaction, so this {self.what} "
                "can never be mined: request it again",
                final=True,
            )
        if state is _TxState.UNMINED:
            return _nonce_gap(registry, sessions, op, main)
        return None

    def send(self, registry: TraceRegistry, op: _Claimed) -> tuple[str, list[str]]:
        txs = _raw_txs(op.payload)
        # Look all up first, then broadcast back to back: the transactions of one op go out together.
        unmined = [tx for tx in txs if _tx_state(registry.w3, tx)[0] is _TxState.UNMINED]
        return txs[0].hash, [tx.hash for tx in unmined if _broadcast(registry, tx)]

    @abstractmethod
    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        """Write the rows the landed op implies, in the transaction that marks it done."""


class _AddAuthority(_Presigned):
    what = "authority registration"

    def _admin(self, registry: TraceRegistry, op: _Claimed) -> str | None:
        return registry.authority_admin(authority_id(str(op.payload["code"])))

    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        return self._admin(registry, op) == to_checksum_address(str(op.payload["admin"]))

    def conflict(self, registry: TraceRegistry, op: _Claimed) -> str | None:
        admin = self._admin(registry, op)
        if admin is not None and admin != to_checksum_address(str(op.payload["admin"])):
            code, wanted = op.payload["code"], op.payload["admin"]
            return f"authority {code} is registered on chain with admin {admin}, not {wanted}"
        return None

    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        row = session.get(models.Authority, int(op.payload["authority_id"]))
        if row is None:
            raise NotFound(f"authority row {op.payload['authority_id']} of chain op {op.id} is gone")
        row.status = PartyStatus.ACTIVE


class _AddOfficer(_Presigned):
    what = "officer registration"

    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        status = registry.officer_status(
            authority_id(str(op.payload["authority_code"])), str(op.payload["officer"])
        )
        return status.valid_from != 0

    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        row = session.get(models.Officer, int(op.payload["officer_id"]))
        if row is None:
            raise NotFound(f"officer row {op.payload['officer_id']} of chain op {op.id} is gone")
        row.status = PartyStatus.ACTIVE


class _RevokeOfficer(_Presigned):
    """``revokeOfficer(authority, officer, effective_at)``. In effect once the officer's ``revokedAt`` on
    chain is set and no later than the requested time (any time, for "now"): the contract only ever moves a
    revocation earlier, so one already at or before it leaves nothing to do."""

    what = "officer revocation"

    def _term(self, registry: TraceRegistry, op: _Claimed) -> tuple[int, int]:
        status = registry.officer_status(
            authority_id(str(op.payload["authority_code"])), str(op.payload["officer"])
        )
        return status.valid_from, status.revoked_at

    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        _, revoked_at = self._term(registry, op)
        wanted = int(op.payload["effective_at"])
        return revoked_at != 0 and (wanted == 0 or revoked_at <= wanted)

    def conflict(self, registry: TraceRegistry, op: _Claimed) -> str | None:
        valid_from, _ = self._term(registry, op)
        if valid_from == 0:
            code, officer = op.payload["authority_code"], op.payload["officer"]
            return f"officer {officer} is not registered on chain for authority {code}"
        return None

    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        row = session.get(models.Officer, int(op.payload["officer_id"]))
        if row is None:
            raise NotFound(f"officer row {op.payload['officer_id']} of chain op {op.id} is gone")
        row.status = PartyStatus.REVOKED


class _RevokeCertification(_Presigned):
    what = "revocation"

    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        record = registry.certification_of(op.subject)
        signer = _raw_txs(op.payload)[0].sender
        return record is not None and record["revoked_at"] != 0 and record["revoked_by"] == signer

    def conflict(self, registry: TraceRegistry, op: _Claimed) -> str | None:
        if registry.certification_of(op.subject) is None:
            return f"certification {op.subject} is not on chain"
        return None

    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        record_event(
            session, Revocation.model_validate(op.payload["event"]), id_base=str(op.payload["id_base"])
        )


# ------------------------------------------------------------------ relayed certification


def _cert_officer(payload: dict[str, Any]) -> str:
    return to_checksum_address(str(payload["cert"]["officer"]))


def _cert_nonce(payload: dict[str, Any]) -> int:
    return int(payload["cert"]["nonce"])


def certification_data(payload: dict[str, Any]) -> CertificationData:
    c = payload["cert"]
    return CertificationData(
        lot_code=str(c["lot_code"]),
        certificate_hash=as_bytes32(str(c["certificate_hash"])),
        authority_code=str(c["authority_code"]),
        officer=str(c["officer"]),
        expires=int(c["expires"]),
        nonce=int(c["nonce"]),
        deadline=int(c["deadline"]),
    )


class _Certify:
    def in_effect(self, registry: TraceRegistry, op: _Claimed) -> bool:
        return registry.certification_of(op.subject) is not None

    def landed(self, registry: TraceRegistry, op: _Claimed) -> _Landed | None:
        if not self.in_effect(registry, op):
            return None
        # The relay that recorded it may be an earlier run's whose hash was never written: find its log.
        event = registry.contract.events.Certified()
        with chain_errors(contract=registry.address):
            logs = list(
                event.get_logs(
                    argument_filters={"id": as_bytes32(op.subject)},
                    from_block=int(op.payload.get("from_block", 0)),
                )
            )
        if not logs:
            return _Landed(None, None)
        return _Landed(encode_hex(logs[-1]["transactionHash"]), int(logs[-1]["blockNumber"]))

    def obstacle(
        self, registry: TraceRegistry, op: _Claimed, sessions: sessionmaker[Session]
    ) -> _Obstacle | None:
        data = certification_data(op.payload)
        now = chain_time(registry.w3)
        if now > data.deadline:
            return _Obstacle(
                f"the officer's signature expired (deadline {data.deadline}, chain time {now}) before it was "
                "relayed: the officer must sign again",
                final=True,
            )
        if data.expires and data.expires <= now:
            return _Obstacle(f"the certification expired at {data.expires} before it was relayed", final=True)
        current = registry.nonce_of(data.officer)
        if current > data.nonce:
            return _Obstacle(
                f"the officer's nonce {data.nonce} is used (by another certification or a cancelled "
                "signature): this signature can never be recorded",
                final=True,
            )
        if current < data.nonce:
            with transaction(sessions) as session:
                earlier = [
                    o.id
                    for o in Repository(session).chain_ops_in(UNFINISHED, kind=ChainOpKind.CERTIFY)
                    if o.id != op.id
                    and _cert_officer(o.payload) == data.officer
                    and current <= _cert_nonce(o.payload) < data.nonce
                ]
            if earlier:
                return _Obstacle(
                    f"waits for the officer's earlier certification (op #{earlier[0]})", final=False
                )
            return _Obstacle(
                f"the officer's nonce on chain is {current}, below this signature's {data.nonce}, and no "
                "earlier certification of theirs is pending: the officer must sign again",
                final=True,
            )
        return None

    def send(self, registry: TraceRegistry, op: _Claimed) -> tuple[str, list[str]]:
        if registry.sender is None:
            raise ConfigurationError("relaying a certification needs the service's signing key")
        tx_hash = registry.send_certify(
            certification_data(op.payload), decode_hex(str(op.payload["signature"]))
        )
        return tx_hash, [tx_hash]

    def finish(self, session: Session, op: _Claimed, landed: _Landed) -> None:
        payload = op.payload
        event = Certification.model_validate(payload["event"])
        recorded = record_event(session, event, id_base=str(payload["id_base"]))
        if Repository(session).certification(op.subject) is None:
            session.add(
                models.CertificationRecord(
                    id=op.subject,
                    event_id=recorded.event_id,
                    lot_code=event.lot_code,
                    authority_code=event.authority,
                    officer_address=_cert_officer(payload),
                    standard=event.standard,
                    typed_data=payload["typed_data"],
                    signature=str(payload["signature"]),
                    tx_hash=landed.tx_hash,
                )
            )
            session.flush()


_KINDS: dict[str, _Kind] = {
    ChainOpKind.CERTIFY: _Certify(),
    ChainOpKind.REVOKE_CERTIFICATION: _RevokeCertification(),
    ChainOpKind.ADD_AUTHORITY: _AddAuthority(),
    ChainOpKind.ADD_OFFICER: _AddOfficer(),
    ChainOpKind.REVOKE_OFFICER: _RevokeOfficer(),
}


# ------------------------------------------------------------------ reading results back


def recorded_event(session: Session, event_id: str | uuid.UUID, lots: tuple[str, ...]) -> RecordedEvent:
    """The stored event ``event_id`` as the :class:`RecordedEvent` the services return."""
    row = Repository(session).event(event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id))
    if row is None:
        raise NotFound(f"unknown event {event_id}")
    return RecordedEvent(row.id, row.hash, row.kind, lots, created=True)
