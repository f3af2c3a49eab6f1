"""Helpers shared by the chain tests: Anvil's public dev accounts by role, time travel, signed certifications.

Accounts (Anvil's public dev keys): 0 admin, 1 registrar, 2 anchorer, 3 authority admin, 4 and 5 officers,
6 a stranger (or thief), 7 a relayer (pays for certify; the officer needs no ether), 8 and 9 spare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from traceability.chain.eip712 import CertificationData, sign_certification
from traceability.chain.registry import TraceRegistry
from traceability.chain.sender import ContractReverted, TxSender
from traceability.domain.merkle import MerkleTree

MNEMONIC = "test test test test test test test test test test test junk"
AUTHORITY = "TH-LAO-320405"  # อบต.หนองสนิท
ADMIN, REGISTRAR, ANCHORER, AUTH_ADMIN, OFFICER, OFFICER2, STRANGER, RELAYER = range(8)

#: ``as_(i)``: the registry client signing as account ``i`` (the ``as_`` fixture).
Client = Callable[[int], TraceRegistry]


def now(w3: Web3) -> int:
    """The latest block's time: what the next transaction sees, unless time is moved on."""
    return int(w3.eth.get_block("latest")["timestamp"])


def advance(w3: Web3, seconds: int) -> None:
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def mine(w3: Web3, blocks: int = 1) -> None:
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def reverts(name: str) -> Any:
    return pytest.raises(ContractReverted, match=rf"reverted: {name}\(")


def cert_for(
    registry: TraceRegistry, officer: LocalAccount, *, lot: str = "SUR-HM-2025-0001", **overrides: Any
) -> CertificationData:
    w3 = registry.w3
    fields: dict[str, Any] = {
        "lot_code": lot,
        "certificate_hash": hashlib.sha256(f"organic certificate for {lot}".encode()).digest(),
        "authority_code": AUTHORITY,
        "officer": officer.address,
        "expires": now(w3) + 365 * 86400,
        "nonce": registry.nonce_of(officer.address),
        "deadline": now(w3) + 3600,
    }
    fields.update(overrides)
    return CertificationData(**fields)


def signed(
    registry: TraceRegistry, officer: LocalAccount, **overrides: Any
) -> tuple[CertificationData, bytes]:
    cert = cert_for(registry, officer, **overrides)
    return cert, sign_certification(officer, cert, registry.chain_id, registry.address)


def root_of(tag: str) -> bytes:
    return MerkleTree([hashlib.sha256(tag.encode()).digest()]).root


def deploy_runtime(sender: TxSender, runtime: bytes) -> str:
    """Deploy a contract whose code is exactly ``runtime``, through init code that copies it and returns it:
    PUSH2 len PUSH2 15 PUSH1 0 CODECOPY PUSH2 len PUSH1 0 RETURN (15 bytes), then the runtime."""
    size = len(runtime).to_bytes(2, "big")
    init = b"\x61" + size + b"\x61\x00\x0f\x60\x00\x39" + b"\x61" + size + b"\x60\x00\xf3"
    assert len(init) == 15
    tx_hash = sender.send({"data": "0x" + (init + runtime).hex()})
    receipt = sender.wait(tx_hash, 30)
    assert receipt.status == 1 and receipt.contract_address is not None
    return receipt.contract_address
