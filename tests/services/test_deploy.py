"""`trace deploy` (ensure_deployed): who gets which role, on the dev chain and off it.

Off chain 31337 the anchor key (a hot key on the server) must not also be the admin or the registrar: a thief
of the server would otherwise hold every role. A second Anvil with another chain id stands for such a chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from web3 import Web3

from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.chain.sender import TxSender
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.errors import ConfigurationError
from traceability.services.deploy import ensure_deployed
from traceability.services.runtime import Runtime, read_deployment, write_deployment

OTHER_CHAIN_ID = 4242
# Not one of Anvil's public keys (runtime refuses those off 31337); funded with anvil_setBalance.
ANCHOR_KEY = "0x" + keccak(b"trace test anchor key").hex()
COLD_ADMIN = Account.from_key(keccak(b"trace test cold admin")).address
COLD_REGISTRAR = Account.from_key(keccak(b"trace test cold registrar")).address


@pytest.fixture(scope="module")
def other_chain() -> Iterator[AnvilNode]:
    with AnvilNode(chain_id=OTHER_CHAIN_ID) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        anchor = Account.from_key(ANCHOR_KEY).address
        w3.provider.make_request("anvil_setBalance", [anchor, hex(10**20)])  # type: ignore[arg-type]
        yield node


@pytest.fixture
def anchor() -> LocalAccount:
    account: LocalAccount = Account.from_key(ANCHOR_KEY)
    return account


def runtime(
    monkeypatch: pytest.MonkeyPatch, rpc_url: str, var_dir: Path, anchor_key: str | None, **settings: Any
) -> Runtime:
    """A runtime built from the environment, as `trace deploy` is; role settings default to unset."""
    for name in ("ADMIN_ADDRESS", "REGISTRAR_ADDRESS", "CONTRACT_ADDRESS", "ADMIN_TRANSFER_DELAY_S"):
        monkeypatch.delenv(f"TRACE_{name}", raising=False)
    monkeypatch.setenv("TRACE_RPC_URL", rpc_url)
    monkeypatch.setenv("TRACE_VAR_DIR", str(var_dir))
    if anchor_key is None:
        monkeypatch.delenv("TRACE_ANCHOR_KEY", raising=False)
    else:
        monkeypatch.setenv("TRACE_ANCHOR_KEY", anchor_key)
    for name, value in settings.items():
        monkeypatch.setenv(f"TRACE_{name.upper()}", str(value))
    return Runtime(Settings())


def deploy_other_contract(rt: Runtime) -> str:
    """A contract that is no TraceRegistry (it returns 1 to any call), deployed with the anchor key."""
    sender = TxSender(rt.w3, rt.account)
    receipt = sender.wait(sender.send({"data": "0x600a600c600039600a6000f3600160005260206000f3"}), 30)
    assert receipt.contract_address is not None
    return receipt.contract_address


def test_off_the_dev_chain_the_admin_and_registrar_must_be_other_keys(
    monkeypatch: pytest.MonkeyPatch, other_chain: AnvilNode, anchor: LocalAccount, tmp_path: Path
) -> None:
    url = other_chain.rpc_url
    shouting = "0x" + anchor.address[2:].upper()  # the same address, another spelling
    refused = [
        ({"registrar_address": COLD_REGISTRAR}, "TRACE_ADMIN_ADDRESS is required"),
        ({"admin_address": COLD_ADMIN}, "TRACE_REGISTRAR_ADDRESS is required"),
        (
            {"admin_address": shouting, "registrar_address": COLD_REGISTRAR},
            "TRACE_ADMIN_ADDRESS is the anchor key's address",
        ),
        (
            {"admin_address": COLD_ADMIN, "registrar_address": anchor.address.lower()},
            "TRACE_REGISTRAR_ADDRESS is the anchor key's address",
        ),
        (
            {"admin_address": COLD_ADMIN, "registrar_address": COLD_ADMIN.lower()},
            "are the same address",
        ),
        ({"admin_address": "0x" + "00" * 20, "registrar_address": COLD_REGISTRAR}, "not a usable address"),
        ({"admin_address": "cold-admin", "registrar_address": COLD_REGISTRAR}, "not a usable address"),
    ]
    w3 = Web3(Web3.HTTPProvider(url))
    sent_before = w3.eth.get_transaction_count(anchor.address)
    for settings, message in refused:
        rt = runtime(monkeypatch, url, tmp_path, ANCHOR_KEY, **settings)
        assert rt.chain_id == OTHER_CHAIN_ID
        with pytest.raises(ConfigurationError, match=message):
            ensure_deployed(rt)
    assert w3.eth.get_transaction_count(anchor.address) == sent_before  # nothing was sent
    assert not (tmp_path / "deployment.json").exists()


def test_off_the_dev_chain_roles_and_delay_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, other_chain: AnvilNode, anchor: LocalAccount, tmp_path: Path
) -> None:
    rt = runtime(
        monkeypatch,
        other_chain.rpc_url,
        tmp_path,
        ANCHOR_KEY,
        admin_address=COLD_ADMIN.lower(),
        registrar_address=COLD_REGISTRAR,
        admin_transfer_delay_s=2 * 24 * 3600,
    )
    address, created = ensure_deployed(rt)
    assert created and read_deployment(rt.settings, OTHER_CHAIN_ID) == address
    registry = TraceRegistry(rt.w3, address)
    assert registry.is_trace_registry()
    assert registry.default_admin() == COLD_ADMIN
    assert registry.default_admin_delay() == 2 * 24 * 3600
    assert registry.has_role("registrar", COLD_REGISTRAR)
    assert registry.has_role("anchorer", anchor.address)
    for role in ("admin", "registrar"):
        assert not registry.has_role(role, anchor.address)
    assert ensure_deployed(rt) == (address, False)


def test_off_the_dev_chain_other_code_on_file_is_not_replaced(
    monkeypatch: pytest.MonkeyPatch, other_chain: AnvilNode, tmp_path: Path
) -> None:
    rt = runtime(
        monkeypatch,
        other_chain.rpc_url,
        tmp_path,
        ANCHOR_KEY,
        admin_address=COLD_ADMIN,
        registrar_address=COLD_REGISTRAR,
    )
    other = deploy_other_contract(rt)
    write_deployment(rt.settings, OTHER_CHAIN_ID, other, 0)
    with pytest.raises(ConfigurationError, match="holds other code"):
        ensure_deployed(rt)
    monkeypatch.setenv("TRACE_CONTRACT_ADDRESS", other)
    with pytest.raises(ConfigurationError, match="TRACE_CONTRACT_ADDRESS"):
        ensure_deployed(Runtime(Settings()))


def test_on_the_dev_chain_every_role_defaults_to_the_anchor_account(
    monkeypatch: pytest.MonkeyPatch, w3: Web3, tmp_path: Path
) -> None:
    rt = runtime(monkeypatch, str(w3.provider.endpoint_uri), tmp_path, None)  # type: ignore[attr-defined]
    address, created = ensure_deployed(rt)
    assert created
    registry = TraceRegistry(w3, address)
    me = Account.from_key(ANVIL_DEV_KEY).address
    assert registry.default_admin() == me and registry.default_admin_delay() == 0
    assert registry.has_role("registrar", me) and registry.has_role("anchorer", me)
    assert ensure_deployed(rt) == (address, False)
    # An address on file without code (the dev chain was reset) is deployed anew, and so is one holding
    # other code (a dev chain kept across a change of the contract).
    for stale in ("0x" + "42" * 20, deploy_other_contract(rt)):
        write_deployment(rt.settings, 31337, stale, 0)
        fresh, created = ensure_deployed(rt)
        assert created and fresh not in (address, stale)
        assert read_deployment(rt.settings, 31337) == fresh


def test_on_the_dev_chain_configured_roles_are_used(
    monkeypatch: pytest.MonkeyPatch, w3: Web3, tmp_path: Path
) -> None:
    rt = runtime(
        monkeypatch,
        str(w3.provider.endpoint_uri),  # type: ignore[attr-defined]
        tmp_path,
        None,
        admin_address=COLD_ADMIN,
        registrar_address=COLD_REGISTRAR,
    )
    registry = TraceRegistry(w3, ensure_deployed(rt)[0])
    assert registry.default_admin() == COLD_ADMIN
    assert registry.has_role("registrar", COLD_REGISTRAR)
    assert not registry.has_role("registrar", rt.account.address)
