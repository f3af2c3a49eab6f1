"""The TraceRegistry client: roles, anchoring roots, authorities and officers, certifications.

The client is given its ``Web3`` (it never builds a provider), the contract address and, to write, a local
account; transactions go through one :class:`~traceability.chain.sender.TxSender` per key. Reads and writes
raise the project's chain errors (:mod:`traceability.errors`), keeping the tx hash and contract address;
reverts are :class:`~traceability.chain.sender.ContractReverted` with the contract's custom error name.

Hashes and ids are returned as 0x-prefixed hex strings; roots, ids and other bytes32 arguments may be given as
32 bytes or as 0x hex. Addresses are returned checksummed, the zero address as None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils.abi import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from eth_utils.address import to_checksum_address
from eth_utils.conversions import hexstr_if_str, to_bytes
from eth_utils.hexadecimal import decode_hex, encode_hex
from web3 import Web3
from web3._utils.method_formatters import receipt_formatter
from web3.contract import Contract
from web3.exceptions import BadFunctionCallOutput, BlockNotFound, ContractLogicError
from web3.types import EventData, FilterParams, LogReceipt

from traceability.chain.artifacts import load_artifact
from traceability.chain.eip712 import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    CertificationData,
    authority_id,
    certification_digest,
    lot_id,
)
from traceability.chain.sender import (
    ContractReverted,
    ReceiptTimeout,
    RevertDecoder,
    TxReceipt,
    TxSender,
    _reverted,
    chain_errors,
    receipt_or_none,
    wait_for_receipt,
)
from traceability.errors import ChainError, ConfigurationError, TransactionFailed

__all__ = [
    "AnchorReceipt",
    "AnchoredLog",
    "ChainRead",
    "ContractReverted",
    "ReceiptTimeout",
    "RegistryGone",
    "OfficerStatus",
    "TraceRegistry",
    "TxReceipt",
    "authority_id",
    "lot_id",
]

ROLES = {
    "admin": b"\x00" * 32,
    "registrar": Web3.keccak(text="REGISTRAR_ROLE"),
    "anchorer": Web3.keccak(text="ANCHORER_ROLE"),
}

_ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True)
class AnchorReceipt:
    """Where a root was anchored: the transaction that emitted its ``Anchored`` event and that block."""

    tx_hash: str
    block_number: int
    block_hash: str
    block_time: int
    gas_used: int
    root: str = ""
    count: int = 0
    newly_anchored: bool = True


@dataclass(frozen=True)
class AnchoredLog:
    """One ``Anchored(root, count, timestamp)`` log of the registry: a root an anchorer wrote."""

    root: str
    count: int
    timestamp: int
    block_number: int
    block_hash: str
    tx_hash: str


@dataclass(frozen=True)
class OfficerStatus:
    """An officer's term for an authority: ``valid_from`` 0 = never added, ``revoked_at`` 0 = not revoked,
    ``added_at`` the block time the authority's admin added it (``valid_from`` may be set earlier)."""

    valid_from: int
    revoked_at: int
    added_at: int = 0

    def valid_at(self, time: int) -> bool:
        started = self.valid_from != 0 and self.valid_from <= time
        return started and (self.revoked_at == 0 or time < self.revoked_at)


class RegistryGone(ChainError):
    """The registry's address holds no contract any more: the chain was reset (a node restarted without its
    state) or the RPC now serves another chain. Nothing can be anchored at, or checked against, that address:
    the operator deploys anew (``trace deploy``) and has the batches the lost registry held anchored again
    (``trace reconcile --repair``)."""

    code = "registry_gone"


@dataclass(frozen=True)
class ChainRead:
    """One read for :meth:`TraceRegistry.read_many`: a JSON-RPC method and params, and how to turn the node's
    raw ``result`` into what the one-at-a-time method returns (so a batch answers exactly as single calls do).
    ``key`` names the read, so equal reads are sent once."""

    key: Hashable
    method: str
    params: tuple[Any, ...]
    decode: Callable[[Any], Any] = dataclasses.field(compare=False, repr=False)
    decoder: RevertDecoder | None = dataclasses.field(default=None, compare=False, repr=False)


def as_bytes32(value: bytes | str) -> bytes:
    """32 bytes from bytes or 0x hex; ValueError otherwise."""
    raw = hexstr_if_str(to_bytes, value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def _address_or_none(value: str) -> str | None:
    return None if int(value, 16) == 0 else to_checksum_address(value)


class TraceRegistry:
    """One deployed TraceRegistry. ``account`` signs writes (None: read-only)."""

    #: Blocks per ``eth_getLogs`` request when looking an anchor up (public RPCs cap the range).
    log_chunk_blocks = 10_000

    def __init__(
        self,
        w3: Web3,
        address: str,
        account: LocalAccount | None = None,
        *,
        sender: TxSender | None = None,
        receipt_timeout: float = 120.0,
    ) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.account = account
        if sender is not None and account is not None and sender.address != account.address:
            raise ConfigurationError("the sender signs with a different account than the registry's")
        if sender is None and account is not None:
            sender = TxSender(w3, account)
        self._sender = sender
        self.receipt_timeout = receipt_timeout
        self.abi: list[dict[str, Any]] = load_artifact("TraceRegistry")["abi"]
        self.contract: Contract = w3.eth.contract(address=self.address, abi=cast(Any, self.abi))
        self.decoder = RevertDecoder(self.abi)
        self._chain_id: int | None = None
        self._events = {item["name"]: item for item in self.abi if item["type"] == "event"}
        self._functions: dict[str, tuple[bytes, list[str], list[str]]] = {}

    @classmethod
    def deploy(
        cls,
        w3: Web3,
        account: LocalAccount,
        *,
        admin: str | None = None,
        registrar: str | None = None,
        anchorer: str | None = None,
        admin_delay: int = 0,
        sender: TxSender | None = None,
        receipt_timeout: float = 120.0,
    ) -> TraceRegistry:
        """Deploy from ``account``; each role defaults to ``account`` itself (fine for a dev chain only).

        ``admin_delay``: seconds a transfer of DEFAULT_ADMIN_ROLE waits before the new admin can accept it.
        """
        if sender is not None and sender.address != account.address:
            raise ConfigurationError("the sender signs with a different account than the deployer")
        if not 0 <= admin_delay < 2**48:
            raise ConfigurationError(f"admin_delay must fit in uint48, got {admin_delay}")
        artifact = load_artifact("TraceRegistry")
        sender = sender or TxSender(w3, account)
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        me = account.address
        data = factory.constructor(
            admin_delay,
            to_checksum_address(admin or me),
            to_checksum_address(registrar or me),
            to_checksum_address(anchorer or me),
        ).data_in_transaction
        tx_hash = sender.send({"data": data}, decoder=RevertDecoder(artifact["abi"]))
        receipt = sender.wait(tx_hash, receipt_timeout)
        if receipt.status != 1 or receipt.contract_address is None:
            raise TransactionFailed("TraceRegistry deployment failed", tx_hash=tx_hash)
        return cls(w3, receipt.contract_address, account, sender=sender, receipt_timeout=receipt_timeout)

    @property
    def sender(self) -> TxSender | None:
        """The transaction sender of this client's key (None when read-only)."""
        return self._sender

    # ------------------------------------------------------------------ chain facts

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            with chain_errors(contract=self.address):
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def is_trace_registry(self) -> bool:
        """Whether ``address`` holds this artifact's TraceRegistry: its runtime code equals the artifact's
        ``deployedBytecode`` outside the immutables, and the immutables hold this contract's own EIP-712
        domain (the certification digest it computes and its ``eip712Domain`` match ours), so a signature
        made for another contract or chain cannot be valid here.

        False for an address without code (e.g. a dev chain that was reset) and for any other contract. The
        contract's *state* is not checked: init code of one's own could have written storage before
        returning these bytes; only the creation transaction's input proves that.
        """
        artifact = load_artifact("TraceRegistry")
        expected = decode_hex(artifact["deployedBytecode"])
        probe = CertificationData(
            lot_code="is_trace_registry",
            certificate_hash=b"\x00" * 32,
            authority_code="is_trace_registry",
            officer=_ZERO_ADDRESS,
            expires=0,
            nonce=0,
            deadline=0,
        )
        ours = encode_hex(certification_digest(probe, self.chain_id, self.address))
        # the code and the contract's own EIP-712 domain in one round trip
        code_read = ChainRead(("code",), "eth_getCode", (self.address, "latest"), decode_hex)
        digest_read = self._read_call("certificationDigest", probe.as_tuple(), post=encode_hex)
        domain_read = self._read_call("eip712Domain")
        answers = self.read_many([code_read, digest_read, domain_read])
        if isinstance(answers[code_read.key], ChainError):
            raise answers[code_read.key]
        code = bytearray(answers[code_read.key])
        if len(code) != len(expected):
            return False
        for ranges in artifact["immutableReferences"].values():
            for r in ranges:
                start, end = int(r["start"]), int(r["start"]) + int(r["length"])
                code[start:end] = expected[start:end]  # the artifact leaves immutables zero
        if bytes(code) != expected:
            return False
        digest, domain = answers[digest_read.key], answers[domain_read.key]
        if isinstance(digest, ContractReverted) or isinstance(domain, ContractReverted):
            return False  # e.g. an immutable holding a malformed short string
        for answer in (digest, domain):
            if isinstance(answer, ChainError):
                raise answer
        _fields, name, version, chain_id, verifying_contract, _salt, _ext = domain
        return (
            digest == ours
            and (name, version) == (DOMAIN_NAME, DOMAIN_VERSION)
            and int(chain_id) == self.chain_id
            and to_checksum_address(verifying_contract) == self.address
        )

    def head(self) -> int:
        with chain_errors(contract=self.address):
            return int(self.w3.eth.block_number)

    def head_checked(self) -> int:
        """:meth:`head`, and in the same round trip a probe that the registry is still there
        (``anchoredAt`` answers 32 bytes; an address with no code answers none): :class:`RegistryGone`
        otherwise. The anchoring worker calls it before each pass, so it never sends to, or trusts, an
        address a chain reset emptied."""
        zero = self._read_call("anchoredAt", b"\x00" * 32)
        probe = ChainRead(("registry_probe",), "eth_call", zero.params, lambda r: len(decode_hex(r)) > 0)
        head = self.read_head()
        answers = self.read_many([head, probe])
        for read in (head, probe):
            if isinstance(answers[read.key], ChainError):
                raise answers[read.key]
        if not answers[probe.key]:
            raise self._gone()
        return int(answers[head.key])

    def _gone(self) -> RegistryGone:
        return RegistryGone(
            f"no TraceRegistry answers at {self.address} on chain {self.chain_id}: the chain was reset or"
            " replaced; run `trace deploy`, then `trace reconcile --repair`",
            contract=self.address,
        )

    def block_hash(self, number: int) -> str | None:
        """The hash of canonical block ``number`` now, None if the chain is not that long."""
        with chain_errors(contract=self.address):
            try:
                return encode_hex(self.w3.eth.get_block(number)["hash"])
            except BlockNotFound:
                return None

    # ------------------------------------------------------------------ batched reads

    #: Calls per JSON-RPC batch request (public nodes cap a batch; 500 keeps one lineage in a request or two).
    batch_size = 500

    def read_many(self, reads: Iterable[ChainRead]) -> dict[Hashable, Any]:
        """Answer every read in as few round trips as the batch size allows: each answer by its read's key,
        the value a single call would give, or the :class:`ChainError` that call would have raised (a node
        that fails a whole batch fails each of its reads). Never raises for a read's sake.

        Why not ``w3.batch_requests()``: web3 raises for the whole batch on the first read that fails (a
        receipt that does not exist, a reverted call), losing every other answer; a verifier needs each
        answer on its own, so the raw responses are decoded here, one by one."""
        unique: dict[Hashable, ChainRead] = {}
        for read in reads:
            unique.setdefault(read.key, read)
        pending = list(unique.values())
        out: dict[Hashable, Any] = {}
        for start in range(0, len(pending), self.batch_size):
            chunk = pending[start : start + self.batch_size]
            for read, answer in zip(chunk, self._send_batch(chunk), strict=True):
                out[read.key] = answer
        return out

    def _send_batch(self, chunk: Sequence[ChainRead]) -> list[Any]:
        requests = [(cast(Any, read.method), list(read.params)) for read in chunk]
        provider = self.w3.provider
        try:
            with chain_errors(contract=self.address):
                if hasattr(provider, "make_batch_request"):
                    raw: Any = provider.make_batch_request(requests)
                else:  # a provider without batches: one request per read, same answers
                    raw = [provider.make_request(method, params) for method, params in requests]
        except ChainError as exc:
            return [exc] * len(chunk)
        if not isinstance(raw, list) or len(raw) != len(chunk):
            message = raw.get("error", {}).get("message") if isinstance(raw, dict) else None
            failed = ChainError(
                f"node refused the batch: {message or 'malformed answer'}", contract=self.address
            )
            return [failed] * len(chunk)
        return [self._answer(read, response) for read, response in zip(chunk, raw, strict=True)]

    def _answer(self, read: ChainRead, response: Any) -> Any:
        """One raw JSON-RPC response as the single call's value or its ChainError."""
        error = response.get("error") if isinstance(response, dict) else {"message": "malformed answer"}
        try:
            if error:
                message = str(error.get("message", error))
                data = error.get("data")
                if read.method == "eth_call" and ("revert" in message.lower() or data):
                    raise _reverted(
                        ContractLogicError(message, data=data if isinstance(data, str) else None),
                        read.decoder,
                        None,
                        self.address,
                    )
                if read.method == "eth_getTransactionReceipt" and "indexing" in message.lower():
                    return None  # as receipt_or_none: not known yet
                raise ChainError(f"node refused: {message}", contract=self.address)
            with chain_errors(contract=self.address, decoder=read.decoder):
                return read.decode(response.get("result"))
        except ChainError as exc:
            return exc
        except (ValueError, TypeError, KeyError, AttributeError, DecodingError) as exc:  # does not decode
            return ChainError(f"unreadable answer to {read.method}: {exc}", contract=self.address)

    def read_head(self) -> ChainRead:
        """:meth:`head` as a batch read."""
        return ChainRead(("head",), "eth_blockNumber", (), lambda r: int(r, 16))

    def read_block_hash(self, number: int) -> ChainRead:
        """:meth:`block_hash` as a batch read (None if the chain is not that long)."""

        def decode(result: Any) -> str | None:
            return None if result is None else encode_hex(decode_hex(result["hash"]))

        return ChainRead(("block", number), "eth_getBlockByNumber", (hex(number), False), decode)

    def read_receipt(self, tx_hash: str) -> ChainRead:
        """The receipt of ``tx_hash`` (any status) as a batch read; None while it is not mined."""

        def decode(result: Any) -> TxReceipt | None:
            return None if result is None else TxReceipt.from_web3(receipt_formatter(result))

        return ChainRead(("receipt", tx_hash), "eth_getTransactionReceipt", (tx_hash,), decode)

    def read_anchor_in_transaction(self, tx_hash: str, root: bytes | str) -> ChainRead:
        """:meth:`anchor_in_transaction` as a batch read."""
        root32 = as_bytes32(root)

        def decode(result: Any) -> AnchorReceipt | None:
            if result is None:
                return None
            receipt = TxReceipt.from_web3(receipt_formatter(result))
            return None if receipt.status != 1 else self._anchor_in_receipt(receipt, root32)

        key = ("receipt", tx_hash, encode_hex(root32))
        return ChainRead(key, "eth_getTransactionReceipt", (tx_hash,), decode)

    def _read_call(self, name: str, *args: Any, post: Callable[[Any], Any] = lambda v: v) -> ChainRead:
        """A view function of the contract as a batch read; ``post`` shapes the value as the method does."""
        selector, inputs, types = self._function(name)
        data = encode_hex(selector + abi_encode(inputs, args))

        def decode(result: Any) -> Any:
            values = abi_decode(types, decode_hex(result))
            return post(values[0] if len(values) == 1 else values)

        call = {"to": self.address, "data": data}
        return ChainRead(("call", name, data), "eth_call", (call, "latest"), decode, self.decoder)

    def _function(self, name: str) -> tuple[bytes, list[str], list[str]]:
        """The selector, input and output types of the view function ``name``, worked out once: web3's own
        encoder re-validates the whole ABI on every call (about 3 ms each, most of a long lineage's time)."""
        known = self._functions.get(name)
        if known is None:
            (abi,) = [item for item in self.abi if item["type"] == "function" and item["name"] == name]
            known = (
                function_abi_to_4byte_selector(cast(Any, abi)),
                get_abi_input_types(cast(Any, abi)),
                get_abi_output_types(cast(Any, abi)),
            )
            self._functions[name] = known
        return known

    def read_anchored_at(self, root: bytes | str) -> ChainRead:
        return self._read_call("anchoredAt", as_bytes32(root), post=int)

    def read_verify_event(
        self, event_hash: bytes | str, proof: Sequence[bytes] | Sequence[str], root: bytes | str
    ) -> ChainRead:
        return self._read_call(
            "verifyEvent", as_bytes32(event_hash), [as_bytes32(p) for p in proof], as_bytes32(root), post=bool
        )

    def read_certification_of(self, cert_id: bytes | str) -> ChainRead:
        raw = as_bytes32(cert_id)
        return self._read_call("certificationOf", raw, post=lambda v: _certification_record(raw, v))

    def read_is_valid(self, cert_id: bytes | str) -> ChainRead:
        return self._read_call("isValid", as_bytes32(cert_id), post=bool)

    def read_officer_status(self, authority: bytes | str, officer: str) -> ChainRead:
        return self._read_call(
            "officerStatus", as_bytes32(authority), to_checksum_address(officer), post=_officer_status
        )

    def read_is_officer_at(self, authority: bytes | str, officer: str, time: int) -> ChainRead:
        return self._read_call(
            "isOfficerAt", as_bytes32(authority), to_checksum_address(officer), time, post=bool
        )

    def read_authority_admin_since(self, authority: bytes | str) -> ChainRead:
        return self._read_call("authorityAdminSince", as_bytes32(authority), post=int)

    def read_authority_added_at(self, authority: bytes | str) -> ChainRead:
        return self._read_call("authorityAddedAt", as_bytes32(authority), post=int)

    def anchored_at_many(self, roots: Iterable[bytes | str]) -> dict[str, int]:
        """:meth:`anchored_at` of every root (0x hex keys), batched; ChainError if any read failed."""
        reads = {encode_hex(as_bytes32(r)): self.read_anchored_at(r) for r in roots}
        return _all_or_raise(reads, self.read_many(reads.values()))

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str | None]:
        """:meth:`block_hash` of every block number, batched; ChainError if any read failed."""
        reads = {n: self.read_block_hash(n) for n in numbers}
        return _all_or_raise(reads, self.read_many(reads.values()))

    def receipts(self, tx_hashes: Iterable[str]) -> dict[str, TxReceipt | None]:
        """The receipt of every transaction (None: not mined yet), batched; ChainError if any read failed."""
        reads = {tx_hash: self.read_receipt(tx_hash) for tx_hash in tx_hashes}
        return _all_or_raise(reads, self.read_many(reads.values()))

    def head_and_block_hashes(self, numbers: Iterable[int]) -> tuple[int, dict[int, str | None]]:
        """:meth:`head` and :meth:`block_hashes` in one round trip; ChainError if any read failed."""
        reads: dict[Any, ChainRead] = {n: self.read_block_hash(n) for n in numbers}
        reads["head"] = self.read_head()
        answers = _all_or_raise(reads, self.read_many(reads.values()))
        return int(answers.pop("head")), answers

    def verify_events(
        self, items: Sequence[tuple[bytes | str, Sequence[bytes] | Sequence[str], bytes | str]]
    ) -> list[bool]:
        """:meth:`verify_event` of every (event hash, proof, root), batched, in order."""
        reads = {n: self.read_verify_event(*item) for n, item in enumerate(items)}
        answers = _all_or_raise(reads, self.read_many(reads.values()))
        return [bool(answers[n]) for n in range(len(items))]

    # ------------------------------------------------------------------ plumbing

    def _call(self, name: str, *args: Any) -> Any:
        with chain_errors(contract=self.address, decoder=self.decoder):
            try:
                return getattr(self.contract.functions, name)(*args).call()
            except BadFunctionCallOutput as exc:  # web3's word for "no data came back": no code there
                raise self._gone() from exc

    def _require_sender(self) -> TxSender:
        if self._sender is None:
            raise ConfigurationError("this TraceRegistry client has no signing account")
        return self._sender

    def _send(self, name: str, *args: Any) -> str:
        data = self.contract.encode_abi(name, args=list(args))
        return self._require_sender().send(
            {"to": self.address, "data": data}, contract=self.address, decoder=self.decoder
        )

    def wait_receipt(
        self, tx_hash: str, timeout: float | None = None, *, replace_after: float | None = None
    ) -> TxReceipt:
        """The receipt of ``tx_hash`` whatever its status; ReceiptTimeout if none within ``timeout`` s.

        With ``replace_after`` (needs a signing account), a transaction pending that long is replaced at the
        same nonce with higher fees; the receipt is then the mined one's, whose ``tx_hash`` may differ.
        """
        limit = self.receipt_timeout if timeout is None else timeout
        if replace_after is not None:
            return self._require_sender().wait(
                tx_hash, limit, replace_after=replace_after, contract=self.address
            )
        return wait_for_receipt(self.w3, tx_hash, limit, contract=self.address)

    def _transact(self, name: str, *args: Any) -> TxReceipt:
        tx_hash = self._send(name, *args)
        receipt = self.wait_receipt(tx_hash)
        self.raise_for_status(receipt, name)
        return receipt

    def raise_for_status(self, receipt: TxReceipt, what: str = "transaction") -> None:
        """Raise TransactionFailed for a receipt with status 0 (ContractReverted with the custom error when
        replaying the transaction on the state before its block reproduces the revert)."""
        if receipt.status != 1:
            raise self._failure(receipt, what)

    def _failure(self, receipt: TxReceipt, what: str) -> TransactionFailed:
        try:
            tx = self.w3.eth.get_transaction(cast(Any, receipt.tx_hash))
            call = {key: tx[key] for key in ("from", "to", "value", "gas")} | {"data": tx["input"]}
            with chain_errors(contract=self.address, tx_hash=receipt.tx_hash, decoder=self.decoder):
                self.w3.eth.call(cast(Any, call), max(receipt.block_number - 1, 0))
        except ContractReverted as exc:
            return exc
        except Exception:  # noqa: BLE001 - diagnosis is best effort; the failure itself is certain
            pass
        return TransactionFailed(f"{what} reverted", tx_hash=receipt.tx_hash, contract=self.address)

    def _logs(self, receipt: TxReceipt, event: str) -> list[EventData]:
        """The ``event`` logs this contract emitted in ``receipt`` (none from other contracts)."""
        if receipt.raw is None:
            return []
        topic = event_abi_to_log_topic(cast(Any, self._events[event]))
        handler = getattr(self.contract.events, event)()
        return [
            handler.process_log(log)
            for log in receipt.raw["logs"]
            if log["address"] == self.address and log["topics"] and bytes(log["topics"][0]) == topic
        ]

    # ------------------------------------------------------------------ roles

    def has_role(self, role: str, account: str) -> bool:
        """``role`` is ``admin``, ``registrar`` or ``anchorer``."""
        return bool(self._call("hasRole", ROLES[role], to_checksum_address(account)))

    def grant_role(self, role: str, account: str) -> TxReceipt:
        """Grant ``registrar`` or ``anchorer`` (sent by the admin). The admin role itself only moves by
        :meth:`begin_default_admin_transfer` and :meth:`accept_default_admin_transfer`."""
        return self._transact("grantRole", ROLES[role], to_checksum_address(account))

    def default_admin(self) -> str | None:
        """The holder of DEFAULT_ADMIN_ROLE."""
        return _address_or_none(str(self._call("defaultAdmin")))

    def default_admin_delay(self) -> int:
        """Seconds a new default admin must wait, after the transfer begins, before accepting."""
        return int(self._call("defaultAdminDelay"))

    def pending_default_admin(self) -> tuple[str | None, int]:
        """(proposed new default admin or None, unix time after which it may accept; 0 if none)."""
        new_admin, schedule = self._call("pendingDefaultAdmin")
        return _address_or_none(str(new_admin)), int(schedule)

    def begin_default_admin_transfer(self, new_admin: str) -> TxReceipt:
        """Propose ``new_admin`` for DEFAULT_ADMIN_ROLE (sent by the admin); it may accept after the delay."""
        return self._transact("beginDefaultAdminTransfer", to_checksum_address(new_admin))

    def cancel_default_admin_transfer(self) -> TxReceipt:
        return self._transact("cancelDefaultAdminTransfer")

    def accept_default_admin_transfer(self) -> TxReceipt:
        """Take DEFAULT_ADMIN_ROLE (sent by the proposed admin once the delay has passed)."""
        return self._transact("acceptDefaultAdminTransfer")

    # ------------------------------------------------------------------ anchoring

    def send_anchor(self, root: bytes | str, count: int) -> str:
        """Broadcast ``anchor(root, count)`` and return its tx hash without waiting (record it, then wait)."""
        return self._send("anchor", as_bytes32(root), count)

    def anchor(self, root: bytes | str, count: int, *, timeout: float | None = None) -> AnchorReceipt:
        """Anchor ``root`` and wait for the receipt. If the root was anchored already (the call is then a
        no-op on chain), the original anchor is returned with ``newly_anchored=False``."""
        root32 = as_bytes32(root)
        tx_hash = self.send_anchor(root32, count)
        receipt = self.wait_receipt(tx_hash, timeout)
        self.raise_for_status(receipt, "anchor")
        anchored = self._anchor_in_receipt(receipt, root32)
        if anchored is not None:
            return anchored
        original = self.find_anchor(root32)
        if original is None:
            raise ChainError(
                "anchor() emitted nothing but the root is not anchored",
                tx_hash=tx_hash,
                contract=self.address,
            )
        return dataclasses.replace(original, newly_anchored=False)

    def anchored_at(self, root: bytes | str) -> int:
        """The block time ``root`` was anchored at; 0 if it is not anchored."""
        return int(self._call("anchoredAt", as_bytes32(root)))

    def anchor_in_transaction(self, tx_hash: str, root: bytes | str) -> AnchorReceipt | None:
        """The anchor of ``root`` made by transaction ``tx_hash``: its receipt, only if the transaction is
        mined, succeeded and emitted this registry's ``Anchored(root)``; else None (pending or unknown,
        failed, another root, another contract, or a re-anchoring no-op). Ties a root to its block."""
        root32 = as_bytes32(root)
        receipt = receipt_or_none(self.w3, tx_hash, contract=self.address)
        if receipt is None or receipt.status != 1:
            return None
        return self._anchor_in_receipt(receipt, root32)

    def anchor_in_receipt(self, receipt: TxReceipt, root: bytes | str) -> AnchorReceipt | None:
        """The anchor of ``root`` that ``receipt``'s transaction made; None if it failed, emitted no
        ``Anchored(root)`` of this registry (e.g. a re-anchoring no-op), or anchored another root."""
        return None if receipt.status != 1 else self._anchor_in_receipt(receipt, as_bytes32(root))

    def _anchor_in_receipt(self, receipt: TxReceipt, root32: bytes) -> AnchorReceipt | None:
        for event in self._logs(receipt, "Anchored"):
            if bytes(event["args"]["root"]) == root32:
                return AnchorReceipt(
                    tx_hash=receipt.tx_hash,
                    block_number=receipt.block_number,
                    block_hash=receipt.block_hash,
                    block_time=int(event["args"]["timestamp"]),
                    gas_used=receipt.gas_used,
                    root=encode_hex(root32),
                    count=int(event["args"]["count"]),
                )
        return None

    def find_anchor(self, root: bytes | str, from_block: int = 0) -> AnchorReceipt | None:
        """The transaction and block that anchored ``root``, from its ``Anchored`` log; None if not on chain.

        Scans backwards from the head in chunks of ``log_chunk_blocks`` down to ``from_block``: recent anchors
        are found in one request. Compare ``block_hash`` with :meth:`block_hash` later to detect a reorg.
        """
        root32 = as_bytes32(root)
        if self.anchored_at(root32) == 0:
            return None
        topic = event_abi_to_log_topic(cast(Any, self._events["Anchored"]))
        to_block = self.head()
        retries = 3
        while to_block >= from_block:
            start = max(from_block, to_block - self.log_chunk_blocks + 1)
            params: FilterParams = {
                "address": self.address,
                "fromBlock": start,
                "toBlock": to_block,
                "topics": [cast(Any, topic), cast(Any, root32)],
            }
            with chain_errors(contract=self.address):
                found = self.w3.eth.get_logs(params)
            logs: list[LogReceipt] = [log for log in found if not log.get("removed")]
            if logs:
                anchored = self.anchor_in_transaction(encode_hex(logs[-1]["transactionHash"]), root32)
                if anchored is not None:
                    return anchored
                if retries == 0:
                    raise ChainError(
                        "the node lists an Anchored log whose transaction it cannot produce",
                        tx_hash=encode_hex(logs[-1]["transactionHash"]),
                        contract=self.address,
                    )
                retries -= 1
                continue  # reorged out between the two requests: look again
            to_block = start - 1
        return None

    def anchored_logs(self, from_block: int = 0, to_block: int | None = None) -> list[AnchoredLog]:
        """Every ``Anchored`` log of this registry in blocks ``from_block``..``to_block`` (default: the head),
        oldest first. Read in ranges of ``log_chunk_blocks`` (public RPCs cap a range); logs a node marks
        removed (reorganised away) are left out. ``trace reconcile`` compares them with the batch rows: a
        root no row explains was written by someone else holding the anchor key."""
        topic = event_abi_to_log_topic(cast(Any, self._events["Anchored"]))
        last = self.head() if to_block is None else to_block
        out: list[AnchoredLog] = []
        start = max(from_block, 0)
        while start <= last:
            end = min(last, start + self.log_chunk_blocks - 1)
            params: FilterParams = {
                "address": self.address,
                "fromBlock": start,
                "toBlock": end,
                "topics": [cast(Any, topic)],
            }
            with chain_errors(contract=self.address):
                found = self.w3.eth.get_logs(params)
            out += [_anchored_log(log) for log in found if not log.get("removed")]
            start = end + 1
        return out

    def verify_event(
        self, event_hash: bytes | str, proof: Sequence[bytes] | Sequence[str], root: bytes | str
    ) -> bool:
        """The contract's own check: ``root`` anchored and ``proof`` leads from ``event_hash`` to it."""
        return bool(
            self._call(
                "verifyEvent", as_bytes32(event_hash), [as_bytes32(p) for p in proof], as_bytes32(root)
            )
        )

    # ------------------------------------------------------------------ authorities and officers

    # Non-blocking forms: broadcast and return the tx hash, so a caller can record it (write-ahead) before it
    # waits for the receipt with no database transaction open. Finish with wait_receipt + raise_for_status.
    def send_add_authority(self, authority: bytes | str, admin: str) -> str:
        return self._send("addAuthority", as_bytes32(authority), to_checksum_address(admin))

    def send_add_officer(self, authority: bytes | str, officer: str, valid_from: int = 0) -> str:
        return self._send("addOfficer", as_bytes32(authority), to_checksum_address(officer), valid_from)

    def send_certify(self, cert: CertificationData, signature: bytes) -> str:
        return self._send("certify", cert.as_tuple(), bytes(signature))

    def send_revoke(self, cert_id: bytes | str, reason: str) -> str:
        return self._send("revoke", as_bytes32(cert_id), reason)

    def send_value(self, to: str, value_wei: int) -> str:
        """Send ether from this client's key (e.g. an officer's gas allowance); the tx hash, no wait."""
        return self._require_sender().send({"to": to_checksum_address(to), "value": value_wei})

    def add_authority(self, authority: bytes | str, admin: str) -> TxReceipt:
        """Register ``authority`` (bytes32 id, see :func:`authority_id`) with ``admin`` managing officers."""
        return self._transact("addAuthority", as_bytes32(authority), to_checksum_address(admin))

    def propose_authority_admin(self, authority: bytes | str, new_admin: str | None) -> TxReceipt:
        """Propose ``new_admin`` for ``authority`` (sent by the registrar); it takes office when it accepts.
        None withdraws the proposal."""
        proposed = _ZERO_ADDRESS if new_admin is None else new_admin
        return self._transact("proposeAuthorityAdmin", as_bytes32(authority), to_checksum_address(proposed))

    def accept_authority_admin(self, authority: bytes | str) -> TxReceipt:
        """Take office as ``authority``'s admin (sent by the proposed admin)."""
        return self._transact("acceptAuthorityAdmin", as_bytes32(authority))

    def authority_admin(self, authority: bytes | str) -> str | None:
        return _address_or_none(str(self._call("authorityAdmin", as_bytes32(authority))))

    def authority_admin_since(self, authority: bytes | str) -> int:
        """The block time the current admin of ``authority`` took office; 0 if the authority is unknown."""
        return int(self._call("authorityAdminSince", as_bytes32(authority)))

    def authority_added_at(self, authority: bytes | str) -> int:
        """The block time ``authority`` was added at; 0 if it is unknown."""
        return int(self._call("authorityAddedAt", as_bytes32(authority)))

    def authority_admin_changed_at(self, authority: bytes | str) -> int | None:
        """When ``authority``'s current admin took over from another; None while the first admin (the one it
        was added with, or one accepted in the same second) is still in office, or if it is unknown.

        Officers added soon after this time deserve a second look: a takeover would add its own."""
        since, added = self.authority_admin_since(authority), self.authority_added_at(authority)
        return since if since > added else None

    def pending_authority_admin(self, authority: bytes | str) -> str | None:
        return _address_or_none(str(self._call("pendingAuthorityAdmin", as_bytes32(authority))))

    def add_officer(self, authority: bytes | str, officer: str, valid_from: int = 0) -> TxReceipt:
        """Add ``officer`` to ``authority`` from ``valid_from`` (unix s; 0 = now). Sent by its admin."""
        return self._transact("addOfficer", as_bytes32(authority), to_checksum_address(officer), valid_from)

    def revoke_officer(self, authority: bytes | str, officer: str, effective_at: int = 0) -> TxReceipt:
        """Revoke ``officer`` as of ``effective_at`` (unix s; may be past but not before its ``valid_from``;
        0 = now). Sent by its admin."""
        return self._transact(
            "revokeOfficer", as_bytes32(authority), to_checksum_address(officer), effective_at
        )

    def officer_status(self, authority: bytes | str, officer: str) -> OfficerStatus:
        answer = self._call("officerStatus", as_bytes32(authority), to_checksum_address(officer))
        return _officer_status(answer)

    def is_officer_at(self, authority: bytes | str, officer: str, time: int) -> bool:
        return bool(self._call("isOfficerAt", as_bytes32(authority), to_checksum_address(officer), time))

    # ------------------------------------------------------------------ certifications

    def nonce_of(self, officer: str) -> int:
        """The nonce the officer's next certification must carry."""
        return int(self._call("nonces", to_checksum_address(officer)))

    def cancel_nonce(self) -> tuple[int, TxReceipt]:
        """Void this key's next nonce, so a certification signed with it can never be recorded; the nonce
        voided and the receipt. Sent by the officer (it pays the gas)."""
        receipt = self._transact("cancelNonce")
        logs = self._logs(receipt, "NonceCancelled")
        if not logs:
            raise ChainError(
                "cancelNonce() succeeded without a NonceCancelled event",
                tx_hash=receipt.tx_hash,
                contract=self.address,
            )
        return int(logs[0]["args"]["nonce"]), receipt

    def certification_digest(self, cert: CertificationData) -> str:
        """The contract's EIP-712 digest (= certification id) of ``cert``, as computed on chain."""
        return encode_hex(self._call("certificationDigest", cert.as_tuple()))

    def certify(self, cert: CertificationData, signature: bytes) -> tuple[str, TxReceipt]:
        """Relay the officer's signed certification; its id (the EIP-712 digest) and the receipt."""
        receipt = self._transact("certify", cert.as_tuple(), bytes(signature))
        logs = self._logs(receipt, "Certified")
        if not logs:
            raise ChainError(
                "certify() succeeded without a Certified event",
                tx_hash=receipt.tx_hash,
                contract=self.address,
            )
        return encode_hex(logs[0]["args"]["id"]), receipt

    def revoke(self, cert_id: bytes | str, reason: str) -> TxReceipt:
        """Revoke a certification (by its issuing officer or the authority's admin); the record is kept."""
        return self._transact("revoke", as_bytes32(cert_id), reason)

    def is_valid(self, cert_id: bytes | str) -> bool:
        """The contract's verdict: recorded, not revoked (a void revocation aside), not expired, and issued
        while its officer was valid."""
        return bool(self._call("isValid", as_bytes32(cert_id)))

    def certification_of(self, cert_id: bytes | str) -> dict[str, Any] | None:
        """The recorded certification (hex hashes, unix times, 0 = none); None if ``cert_id`` is unknown.

        ``revoked_by`` is who revoked it (None if not revoked) and ``revoked_by_admin`` whether as the
        authority's admin. A revocation by the officer's key at or after the officer's own revocation time is
        kept here but void: :meth:`is_valid` is the verdict.
        """
        raw = as_bytes32(cert_id)
        return _certification_record(raw, self._call("certificationOf", raw))


def _certification_record(cert_id: bytes, values: Any) -> dict[str, Any] | None:
    """``certificationOf``'s answer as :meth:`TraceRegistry.certification_of` returns it."""
    (lot, certificate_hash, authority, officer, expires, issued_at, revoked_at, revoked_by,
     revoked_by_admin) = values  # fmt: skip
    if int(issued_at) == 0:
        return None
    return {
        "id": encode_hex(cert_id),
        "lot": encode_hex(lot),
        "certificate_hash": encode_hex(certificate_hash),
        "authority": encode_hex(authority),
        "officer": to_checksum_address(officer),
        "expires": int(expires),
        "issued_at": int(issued_at),
        "revoked_at": int(revoked_at),
        "revoked_by": _address_or_none(str(revoked_by)),
        "revoked_by_admin": bool(revoked_by_admin),
    }


def _anchored_log(log: LogReceipt) -> AnchoredLog:
    """An ``Anchored`` log decoded: the root is its indexed topic, count and timestamp its data."""
    count, timestamp = abi_decode(["uint32", "uint64"], bytes(log["data"]))
    return AnchoredLog(
        root=encode_hex(bytes(log["topics"][1])),
        count=int(count),
        timestamp=int(timestamp),
        block_number=int(log["blockNumber"]),
        block_hash=encode_hex(bytes(log["blockHash"])),
        tx_hash=encode_hex(bytes(log["transactionHash"])),
    )


def _officer_status(values: Any) -> OfficerStatus:
    valid_from, revoked_at, added_at = values
    return OfficerStatus(int(valid_from), int(revoked_at), int(added_at))


def _all_or_raise(reads: dict[Any, ChainRead], answers: dict[Hashable, Any]) -> dict[Any, Any]:
    """The answers by the caller's own keys; the first ChainError among them raised."""
    out = {}
    for key, read in reads.items():
        answer = answers[read.key]
        if isinstance(answer, ChainError):
            raise answer
        out[key] = answer
    return out
