"""Send transactions from one key: its nonce, fees, gas, stuck-transaction replacement, and error wrapping.

One :class:`TxSender` per key per process (the design runs one signing process per key): it hands out nonces
itself, under a lock, starting from the node's ``pending`` transaction count, so concurrent sends never
collide; after a failed send it re-reads the count rather than guess whether the node kept the transaction.

Errors from web3 and requests are re-raised as the project's chain errors (see :func:`chain_errors`):
unreachable node → :class:`ChainUnavailable`; a revert → :class:`ContractReverted` (a
:class:`TransactionFailed`) naming the contract's custom error when the ABI knows it; any other node
refusal → :class:`ChainError`. Each keeps the transaction hash and the contract address when known.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.hexadecimal import decode_hex, encode_hex
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TooManyRequests,
    TransactionIndexingInProgress,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams
from web3.types import TxReceipt as Web3Receipt

from traceability.errors import ChainError, ChainUnavailable, TransactionFailed

# The factor geth's txpool wants (10%) plus room; anvil and besu accept it too.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 9, 8  # x 1.125
GAS_MARGIN = 1.25
# How long the fees read from the node serve new sends: the max fee of 2 x base fee + tip stays valid while
# the base fee rises (at most 12.5% a block) for several blocks, so fees a second old are as good as fresh,
# and a worker sending many batches a second saves two requests per transaction.
FEE_REUSE_S = 1.0

_ERROR_STRING = decode_hex("0x08c379a0")  # Error(string)
_PANIC = decode_hex("0x4e487b71")  # Panic(uint256)


class ContractReverted(TransactionFailed):
    """A call or transaction reverted; ``error_name``: its custom error (or ``Error``, ``Panic``) if known."""

    def __init__(
        self,
        message: str,
        *,
        error_name: str | None = None,
        error_args: tuple[Any, ...] = (),
        tx_hash: str | None = None,
        contract: str | None = None,
    ) -> None:
        super().__init__(message, tx_hash=tx_hash, contract=contract)
        self.error_name = error_name
        self.error_args = error_args


class ReceiptTimeout(ChainError):
    """No receipt within the time allowed: the transaction may still be pending, or was dropped."""

    code = "chain_timeout"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return encode_hex(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


class RevertDecoder:
    """Names the revert data of a contract from its ABI's ``error`` entries (plus ``Error`` and ``Panic``)."""

    def __init__(self, abi: Sequence[dict[str, Any]] = ()) -> None:
        self._errors: dict[bytes, tuple[str, list[str]]] = {
            _ERROR_STRING: ("Error", ["string"]),
            _PANIC: ("Panic", ["uint256"]),
        }
        for item in abi:
            if item.get("type") == "error":
                # An error's selector is computed like a function's: keccak256("Name(types)")[:4].
                selector = function_abi_to_4byte_selector(cast(Any, item))
                self._errors[selector] = (str(item["name"]), get_abi_input_types(cast(Any, item)))

    def decode(self, data: str | bytes | None) -> tuple[str, tuple[Any, ...]] | None:
        if not data:
            return None
        try:
            raw = data if isinstance(data, bytes) else decode_hex(data)
        except ValueError:
            return None
        known = self._errors.get(raw[:4])
        if known is None:
            return None
        name, types = known
        try:
            return name, tuple(abi_decode(types, raw[4:]))
        except (DecodingError, ValueError, OverflowError):
            return name, ()


def _reverted(
    exc: ContractLogicError, decoder: RevertDecoder | None, tx_hash: str | None, contract: str | None
) -> ContractReverted:
    data = exc.data if isinstance(exc.data, str) else None
    decoded = (decoder or RevertDecoder()).decode(data)
    if decoded is None:
        return ContractReverted(f"reverted: {exc.message or exc}", tx_hash=tx_hash, contract=contract)
    name, args = decoded
    return ContractReverted(
        f"reverted: {name}({', '.join(_show(a) for a in args)})",
        error_name=name,
        error_args=args,
        tx_hash=tx_hash,
        contract=contract,
    )


@contextmanager
def chain_errors(
    *, contract: str | None = None, tx_hash: str | None = None, decoder: RevertDecoder | None = None
) -> Iterator[None]:
    """Re-raise web3/requests exceptions raised inside as the project's chain errors."""
    try:
        yield
    except ChainError:
        raise
    except ContractLogicError as exc:
        raise _reverted(exc, decoder, tx_hash, contract) from exc
    except (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        ProviderConnectionError,
        TooManyRequests,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise ChainUnavailable(f"chain node unreachable: {exc}", tx_hash=tx_hash, contract=contract) from exc
    except requests.exceptions.RequestException as exc:
        raise ChainUnavailable(f"chain node error: {exc}", tx_hash=tx_hash, contract=contract) from exc
    except TimeExhausted as exc:
        raise ReceiptTimeout(str(exc), tx_hash=tx_hash, contract=contract) from exc
    except Web3RPCError as exc:
        raise ChainError(f"node refused: {exc.message}", tx_hash=tx_hash, contract=contract) from exc


@dataclass(frozen=True)
class TxReceipt:
    """The parts of a receipt the application keeps. ``raw`` is web3's receipt (logs and all)."""

    tx_hash: str
    block_number: int
    block_hash: str
    status: int
    gas_used: int
    contract_address: str | None = None
    raw: Web3Receipt | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_web3(cls, receipt: Web3Receipt) -> TxReceipt:
        address = receipt.get("contractAddress")
        return cls(
            tx_hash=encode_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            block_hash=encode_hex(receipt["blockHash"]),
            status=int(receipt["status"]),
            gas_used=int(receipt["gasUsed"]),
            contract_address=str(address) if address else None,
            raw=receipt,
        )


def receipt_or_none(w3: Web3, tx_hash: str, *, contract: str | None = None) -> TxReceipt | None:
    """The receipt of ``tx_hash`` if it is mined, else None."""
    with chain_errors(contract=contract, tx_hash=tx_hash):
        try:
            return TxReceipt.from_web3(w3.eth.get_transaction_receipt(cast(Any, tx_hash)))
        except (TransactionNotFound, TransactionIndexingInProgress):
            return None


def wait_for_receipt(
    w3: Web3, tx_hash: str, timeout: float, *, contract: str | None = None, poll_interval: float = 0.1
) -> TxReceipt:
    """The receipt of ``tx_hash`` (any status), polled by web3; :class:`ReceiptTimeout` after ``timeout``."""
    with chain_errors(contract=contract, tx_hash=tx_hash):
        try:
            receipt = w3.eth.wait_for_transaction_receipt(
                cast(Any, tx_hash), timeout=timeout, poll_latency=poll_interval
            )
        except TimeExhausted:
            raise ReceiptTimeout(
                f"no receipt within {timeout:g}s", tx_hash=tx_hash, contract=contract
            ) from None
    return TxReceipt.from_web3(receipt)


@dataclass
class _Sent:
    tx: dict[str, Any]
    sent_at: float
    replaced_by: str | None = None


class TxSender:
    """Signs with ``account`` and sends through ``w3``. Thread-safe; one instance per key per process."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        gas_margin: float = GAS_MARGIN,
        fee_reuse_s: float = FEE_REUSE_S,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.gas_margin = gas_margin
        self.fee_reuse_s = fee_reuse_s
        self._fees_read: tuple[float, dict[str, int]] | None = None  # (when, fees) last read for a send
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._sent: dict[str, _Sent] = {}

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            with chain_errors():
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    # ------------------------------------------------------------------ fees and gas

    def _recent_fees(self) -> dict[str, int]:
        """:meth:`_fees`, read again once they are ``fee_reuse_s`` old (a replacement reads them fresh)."""
        now = time.monotonic()
        if self._fees_read is None or now - self._fees_read[0] >= self.fee_reuse_s:
            self._fees_read = (now, self._fees())
        return dict(self._fees_read[1])

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees from the node (max fee = 2 x base fee + tip); a legacy gas price without base fee."""
        block = self.w3.eth.get_block("latest")
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        tip = int(self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": 2 * int(base_fee) + tip, "maxPriorityFeePerGas": tip}

    def estimate_gas(
        self, tx: dict[str, Any], *, contract: str | None = None, decoder: RevertDecoder | None = None
    ) -> int:
        """The node's estimate with a margin; a revert surfaces here, before anything is signed."""
        with chain_errors(contract=contract, decoder=decoder):
            estimate = self.w3.eth.estimate_gas(cast(TxParams, {**tx, "from": self.address}))
        return math.ceil(int(estimate) * self.gas_margin)

    # ------------------------------------------------------------------ nonces

    def _take_nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = int(self.w3.eth.get_transaction_count(self.account.address, "pending"))
        return self._next_nonce

    def resync_nonce(self) -> None:
        """Forget the local nonce: the next send re-reads the node's pending count."""
        with self._lock:
            self._next_nonce = None

    # ------------------------------------------------------------------ sending

    def send(
        self, tx: dict[str, Any], *, contract: str | None = None, decoder: RevertDecoder | None = None
    ) -> str:
        """Sign and broadcast ``tx`` (``to``, ``data``, optional ``value``, ``gas``); its hash, no wait."""
        tx = {k: v for k, v in tx.items() if k not in ("from", "nonce")}
        tx.setdefault("value", 0)
        tx["chainId"] = self.chain_id
        if "gas" not in tx:
            tx["gas"] = self.estimate_gas(tx, contract=contract, decoder=decoder)
        with chain_errors(contract=contract, decoder=decoder):
            if not any(k in tx for k in ("gasPrice", "maxFeePerGas")):
                tx.update(self._recent_fees())
            with self._lock:
                for attempt in (1, 2):
                    tx["nonce"] = self._take_nonce()
                    signed = self.account.sign_transaction(tx)
                    try:
                        self.w3.eth.send_raw_transaction(signed.raw_transaction)
                    except Web3RPCError as exc:
                        self._next_nonce = None
                        if attempt == 1 and "nonce too low" in str(exc.message).lower():
                            continue  # another sender used this key; take the node's count and retry once
                        raise
                    except BaseException:
                        self._next_nonce = None
                        raise
                    self._next_nonce = tx["nonce"] + 1
                    tx_hash = encode_hex(signed.hash)
                    self._sent[tx_hash] = _Sent(dict(tx), time.monotonic())
                    return tx_hash
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(
        self,
        tx_hash: str,
        timeout: float,
        *,
        replace_after: float | None = None,
        contract: str | None = None,
        poll_interval: float = 0.1,
    ) -> TxReceipt:
        """The receipt of ``tx_hash`` (whatever its status); :class:`ReceiptTimeout` after ``timeout`` s.

        With ``replace_after``, a transaction still pending after that many seconds is replaced at the same
        nonce with higher fees (:meth:`replace_if_stuck`), and again every ``replace_after`` s; the receipt
        returned is then the one that was mined, so its ``tx_hash`` may differ from the one given.
        """
        if replace_after is None:
            return wait_for_receipt(self.w3, tx_hash, timeout, contract=contract, poll_interval=poll_interval)
        start = time.monotonic()
        deadline = start + timeout
        next_replacement = start + replace_after
        hashes = [tx_hash]
        while True:
            for candidate in reversed(hashes):
                receipt = receipt_or_none(self.w3, candidate, contract=contract)
                if receipt is not None:
                    return receipt
            now = time.monotonic()
            if now >= deadline:
                raise ReceiptTimeout(f"no receipt within {timeout:g}s", tx_hash=hashes[-1], contract=contract)
            if now >= next_replacement:
                replacement = self.replace_if_stuck(hashes[-1], replace_after, contract=contract)
                if replacement is not None:
                    hashes.append(replacement)
                next_replacement = now + replace_after
            time.sleep(min(poll_interval, max(deadline - now, 0.0)))

    def replace_if_stuck(self, tx_hash: str, after_s: float, *, contract: str | None = None) -> str | None:
        """Re-send a transaction pending for at least ``after_s`` at the same nonce with fees >= 12.5% higher.

        Returns the replacement's hash, or None when there is nothing to replace (mined, unknown to the node,
        not ours, or not yet ``after_s`` old). A transaction this process did not send (e.g. after a restart)
        is read back from the node and counts as old enough. If it was replaced before, the latest
        replacement is the one bumped. Either of the two may end up mined: look the effect up, not the hash.
        """
        with chain_errors(contract=contract, tx_hash=tx_hash):
            with self._lock:
                current = tx_hash
                while (entry := self._sent.get(current)) is not None and entry.replaced_by:
                    current = entry.replaced_by
                sent = self._sent.get(current)
            if receipt_or_none(self.w3, current, contract=contract) is not None:
                return None  # mined
            if sent is None:
                tx = self._pending_tx_from_node(current)
                if tx is None:
                    return None
            elif time.monotonic() - sent.sent_at < after_s:
                return None
            else:
                tx = dict(sent.tx)
            tx.update(self._bumped_fees(tx))
            signed = self.account.sign_transaction(tx)
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                message = str(exc.message).lower()
                if "nonce too low" in message or "already known" in message:
                    return None  # the original was mined (or this exact tx is already pooled) meanwhile
                raise
            new_hash = encode_hex(signed.hash)
            with self._lock:
                if current in self._sent:
                    self._sent[current].replaced_by = new_hash
                self._sent[new_hash] = _Sent(dict(tx), time.monotonic())
            return new_hash

    def _pending_tx_from_node(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            found = self.w3.eth.get_transaction(cast(Any, tx_hash))
        except TransactionNotFound:
            return None
        if found.get("blockNumber") is not None or str(found["from"]) != self.address:
            return None
        tx: dict[str, Any] = {
            "to": found.get("to"),
            "data": encode_hex(found["input"]),
            "value": int(found["value"]),
            "gas": int(found["gas"]),
            "nonce": int(found["nonce"]),
            "chainId": self.chain_id,
        }
        if found.get("maxFeePerGas") is not None:
            tx["maxFeePerGas"] = int(found["maxFeePerGas"])
            tx["maxPriorityFeePerGas"] = int(found["maxPriorityFeePerGas"])
        else:
            tx["gasPrice"] = int(found["gasPrice"])
        if tx["to"] is None:
            del tx["to"]
        return tx

    def _bumped_fees(self, tx: dict[str, Any]) -> dict[str, int]:
        def bump(old: int) -> int:
            return max(old * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR + 1, old + 1)

        market = self._fees()
        if "gasPrice" in tx:
            return {"gasPrice": max(bump(int(tx["gasPrice"])), market.get("gasPrice", 0))}
        tip = max(bump(int(tx["maxPriorityFeePerGas"])), market.get("maxPriorityFeePerGas", 0))
        max_fee = max(bump(int(tx["maxFeePerGas"])), market.get("maxFeePerGas", 0), tip)
        return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
