from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY


@pytest.fixture(scope="session")
def registry(w3: Web3) -> TraceRegistry:
    """One TraceRegistry for the session, deployed with Anvil's dev key #0 in every role."""
    return TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
