"""Fixtures for the chain tests: Anvil's dev accounts, one sender per key, a registry with separate roles."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from registry_kit import ADMIN, ANCHORER, AUTH_ADMIN, AUTHORITY, MNEMONIC, OFFICER, REGISTRAR, Client
from web3 import Web3

from traceability.chain.registry import TraceRegistry, authority_id
from traceability.chain.sender import TxSender


@pytest.fixture(scope="session")
def accounts() -> list[LocalAccount]:
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(10)]


@pytest.fixture(scope="session")
def senders(w3: Web3, accounts: list[LocalAccount]) -> list[TxSender]:
    """One sender per key for the whole session, as in production (one signing process per key)."""
    return [TxSender(w3, a) for a in accounts]


@pytest.fixture
def registry(w3: Web3, accounts: list[LocalAccount], senders: list[TxSender]) -> TraceRegistry:
    """A fresh registry: account 0 admin, 1 registrar, 2 anchorer."""
    return TraceRegistry.deploy(
        w3,
        accounts[ADMIN],
        sender=senders[ADMIN],
        registrar=accounts[REGISTRAR].address,
        anchorer=accounts[ANCHORER].address,
    )


@pytest.fixture
def as_(w3: Web3, registry: TraceRegistry, accounts: list[LocalAccount], senders: list[TxSender]) -> Client:
    """``as_(i)``: the registry client signing as account ``i``."""

    def client(i: int) -> TraceRegistry:
        return TraceRegistry(w3, registry.address, accounts[i], sender=senders[i])

    return client


@pytest.fixture
def authority(as_: Client, accounts: list[LocalAccount]) -> bytes:
    """The authority with its admin and officer 4 (valid from now); officer 5 is not added."""
    auth = authority_id(AUTHORITY)
    as_(REGISTRAR).add_authority(auth, accounts[AUTH_ADMIN].address)
    as_(AUTH_ADMIN).add_officer(auth, accounts[OFFICER].address)
    return auth
