"""The Python client: deploy, anchor write-ahead and recovery, reorg helpers, errors, nonces, stuck
transactions, and EIP-712 typed data that matches the contract."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak
from eth_utils.conversions import to_bytes
from registry_kit import deploy_runtime, mine
from web3 import Web3
from web3.utils.address import get_create_address

from traceability.chain.artifacts import load_artifact
from traceability.chain.devnode import AnvilNode, free_port
from traceability.chain.eip712 import (
    CERTIFICATION_TYPEHASH,
    CertificationData,
    certification_digest,
    recover_signer,
    sign_certification,
    typed_data,
    typed_data_digest,
)
from traceability.chain.registry import (
    AnchorReceipt,
    ContractReverted,
    ReceiptTimeout,
    TraceRegistry,
    authority_id,
    lot_id,
)
from traceability.chain.sender import TxSender
from traceability.domain.merkle import MerkleTree
from traceability.errors import ChainError, ChainUnavailable, ConfigurationError, TransactionFailed


@pytest.fixture(scope="module")
def registry(w3: Web3, accounts: list[LocalAccount], senders: list[TxSender]) -> TraceRegistry:
    """Deployed by account 0 (admin and registrar); account 8 is the anchorer."""
    return TraceRegistry.deploy(w3, accounts[0], sender=senders[0], anchorer=accounts[8].address)


@pytest.fixture(scope="module")
def anchorer(
    w3: Web3, registry: TraceRegistry, accounts: list[LocalAccount], senders: list[TxSender]
) -> TraceRegistry:
    return TraceRegistry(w3, registry.address, accounts[8], sender=senders[8])


def root(tag: str) -> bytes:
    return MerkleTree([hashlib.sha256(tag.encode()).digest()]).root


# ---------------------------------------------------------------------------------------------- deploy


def test_deploy_defaults_and_roles(registry: TraceRegistry, accounts: list[LocalAccount], w3: Web3) -> None:
    assert registry.is_trace_registry()
    assert registry.chain_id == 31337 == w3.eth.chain_id
    assert Web3.is_checksum_address(registry.address)
    assert registry.has_role("admin", accounts[0].address)
    assert registry.has_role("registrar", accounts[0].address)
    assert registry.has_role("anchorer", accounts[8].address)
    assert not registry.has_role("anchorer", accounts[0].address)
    assert registry.default_admin() == accounts[0].address
    assert registry.default_admin_delay() == 0


def test_is_trace_registry_checks_the_runtime_code(
    w3: Web3, registry: TraceRegistry, senders: list[TxSender]
) -> None:
    assert TraceRegistry(w3, registry.address).is_trace_registry()  # read-only clients can check too
    assert not TraceRegistry(w3, "0x" + "42" * 20).is_trace_registry()  # no code (a reset dev chain)
    other = deploy_runtime(senders[9], bytes.fromhex("600160005260206000f3"))  # returns 1 to any call
    assert not TraceRegistry(w3, other).is_trace_registry()
    runtime = bytes.fromhex(load_artifact()["deployedBytecode"][2:])
    altered = bytearray(runtime)
    altered[len(altered) // 2] ^= 0xFF
    assert not TraceRegistry(w3, deploy_runtime(senders[9], bytes(altered))).is_trace_registry()


def test_is_trace_registry_refuses_our_code_with_a_foreign_domain(
    w3: Web3, registry: TraceRegistry, accounts: list[LocalAccount], senders: list[TxSender]
) -> None:
    """Our runtime deployed by other init code, which chose the immutables: the code equals the artifact
    outside them, so only the EIP-712 domain check tells a replaying copy from a genuine one."""
    genuine = bytes(w3.eth.get_code(registry.address))
    # A plain copy caches another address than its own, so it rebuilds its own domain: as good as a fresh
    # deployment (its state aside, which no code check covers).
    assert TraceRegistry(w3, deploy_runtime(senders[9], genuine)).is_trace_registry()

    # A copy that believes it is at its own address but caches the genuine registry's domain separator
    # accepts, as its own, every signature made for the genuine registry.
    deployer = accounts[9].address
    fake_address = get_create_address(deployer, w3.eth.get_transaction_count(deployer, "pending"))
    code = bytearray(genuine)
    ranges = [r for refs in load_artifact()["immutableReferences"].values() for r in refs]
    genuine_address_word = to_bytes(hexstr=registry.address).rjust(32, b"\0")
    cached_this = [r for r in ranges if code[r["start"] : r["start"] + 32] == genuine_address_word]
    assert len(cached_this) == 1
    start = cached_this[0]["start"]
    code[start : start + 32] = to_bytes(hexstr=fake_address).rjust(32, b"\0")
    fake = TraceRegistry(w3, deploy_runtime(senders[9], bytes(code)))
    assert fake.address == fake_address
    cert = make_cert(accounts[4].address)
    assert fake.certification_digest(cert) == registry.certification_digest(cert)  # the replay
    assert not fake.is_trace_registry()

    # Immutables filled with rubbish.
    for r in ranges:
        code[r["start"] : r["start"] + r["length"]] = b"\x11" * r["length"]
    assert not TraceRegistry(w3, deploy_runtime(senders[9], bytes(code))).is_trace_registry()


def test_grant_role(w3: Web3, accounts: list[LocalAccount], senders: list[TxSender]) -> None:
    fresh = TraceRegistry.deploy(w3, accounts[0], sender=senders[0])
    assert not fresh.has_role("anchorer", accounts[9].address)
    fresh.grant_role("anchorer", accounts[9].address)
    assert fresh.has_role("anchorer", accounts[9].address)


# ---------------------------------------------------------------------------------------------- anchoring


def test_send_anchor_then_wait_then_find(w3: Web3, anchorer: TraceRegistry) -> None:
    r = root("write-ahead")
    assert anchorer.find_anchor(r) is None
    tx_hash = anchorer.send_anchor(r, 7)
    assert tx_hash.startswith("0x") and len(tx_hash) == 66
    receipt = anchorer.wait_receipt(tx_hash, timeout=30)
    assert receipt.status == 1 and receipt.tx_hash == tx_hash
    found = anchorer.find_anchor(r)
    assert found == AnchorReceipt(
        tx_hash=tx_hash,
        block_number=receipt.block_number,
        block_hash=receipt.block_hash,
        block_time=anchorer.anchored_at(r),
        gas_used=receipt.gas_used,
        root="0x" + r.hex(),
        count=7,
    )
    assert found.block_time == w3.eth.get_block(receipt.block_number)["timestamp"]
    # Hex input works the same as bytes.
    assert anchorer.find_anchor("0x" + r.hex()) == found


def test_find_anchor_scans_back_in_chunks(w3: Web3, anchorer: TraceRegistry) -> None:
    r = root("old anchor")
    first = anchorer.anchor(r, 1)
    mine(w3, 25)
    client = TraceRegistry(w3, anchorer.address)
    client.log_chunk_blocks = 4
    found = client.find_anchor(r)
    assert found is not None and found.tx_hash == first.tx_hash
    assert client.find_anchor(r, from_block=first.block_number) == found
    assert client.find_anchor(r, from_block=first.block_number + 1) is None


def test_anchor_twice_returns_the_original_anchor(w3: Web3, anchorer: TraceRegistry) -> None:
    r = root("twice")
    first = anchorer.anchor(r, 2)
    mine(w3, 2)
    again = anchorer.anchor(r, 2)
    assert not again.newly_anchored
    assert (again.tx_hash, again.block_number, again.block_time) == (first.tx_hash, first.block_number,
                                                                      first.block_time)  # fmt: skip


def test_head_and_block_hash(w3: Web3, anchorer: TraceRegistry) -> None:
    anchored = anchorer.anchor(root("confirm"), 1)
    assert anchorer.block_hash(anchored.block_number) == anchored.block_hash
    before = anchorer.head()
    assert before >= anchored.block_number
    mine(w3, 3)
    assert anchorer.head() == before + 3
    assert anchorer.block_hash(anchored.block_number) == anchored.block_hash
    assert anchorer.block_hash(anchorer.head() + 1000) is None


def test_anchor_in_transaction_ties_a_root_to_its_block(
    w3: Web3,
    registry: TraceRegistry,
    anchorer: TraceRegistry,
    accounts: list[LocalAccount],
    senders: list[TxSender],
) -> None:
    r, other = root("tied"), root("tied-other")
    anchored = anchorer.anchor(r, 5)
    other_tx = anchorer.anchor(other, 1).tx_hash
    reader = TraceRegistry(w3, anchorer.address)
    found = reader.anchor_in_transaction(anchored.tx_hash, r)
    assert found == anchored
    assert found is not None and found.block_hash == w3.eth.get_block(found.block_number)["hash"].to_0x_hex()
    assert reader.anchor_in_transaction(anchored.tx_hash, "0x" + r.hex()) == anchored
    # A transaction that anchored another root does not prove this one, nor the other way round.
    assert reader.anchor_in_transaction(other_tx, r) is None
    assert reader.anchor_in_transaction(anchored.tx_hash, other) is None
    # A transaction that anchored nothing: another call to the registry, plain ether, a no-op re-anchoring.
    not_anchor = registry.add_authority(authority_id("TH-LAO-TIED"), registry.address).tx_hash
    assert reader.anchor_in_transaction(not_anchor, r) is None
    ether = senders[9].send({"to": accounts[6].address, "value": 1})
    assert reader.wait_receipt(ether, 30).status == 1
    assert reader.anchor_in_transaction(ether, r) is None
    again = anchorer.send_anchor(r, 5)
    assert reader.wait_receipt(again, 30).status == 1
    assert reader.anchor_in_transaction(again, r) is None
    # A failed transaction, and one the node does not know.
    data = anchorer.contract.encode_abi("anchor", args=[root("failed"), 0])
    failed = senders[8].send({"to": anchorer.address, "data": data, "gas": 100_000})
    assert reader.wait_receipt(failed, 30).status == 0
    assert reader.anchor_in_transaction(failed, root("failed")) is None
    assert reader.anchor_in_transaction("0x" + "ab" * 32, r) is None
    # The same log emitted by another registry at the same root is not this registry's anchor.
    twin = TraceRegistry.deploy(w3, accounts[0], sender=senders[0])
    twin_tx = twin.anchor(root("twin"), 1).tx_hash
    assert twin.anchor_in_transaction(twin_tx, root("twin")) is not None
    assert reader.anchor_in_transaction(twin_tx, root("twin")) is None


# ---------------------------------------------------------------------------------------------- errors


def test_read_only_client_reads_but_refuses_to_write(w3: Web3, anchorer: TraceRegistry) -> None:
    anchored = anchorer.anchor(root("read-only"), 1)
    reader = TraceRegistry(w3, anchorer.address)
    assert reader.anchored_at(root("read-only")) == anchored.block_time
    assert reader.wait_receipt(anchored.tx_hash, 5).block_hash == anchored.block_hash
    with pytest.raises(ConfigurationError):
        reader.anchor(root("nope"), 1)


def test_revert_is_transaction_failed_with_error_name_and_contract(
    w3: Web3, registry: TraceRegistry, accounts: list[LocalAccount]
) -> None:
    stranger = TraceRegistry(w3, registry.address, accounts[6])
    with pytest.raises(TransactionFailed) as info:
        stranger.anchor(root("stranger"), 1)
    assert isinstance(info.value, ContractReverted)
    assert info.value.error_name == "AccessControlUnauthorizedAccount"
    assert info.value.contract == registry.address
    assert info.value.code == "tx_failed" and info.value.status_code == 502


def test_mined_failure_keeps_tx_hash_and_decodes_the_error(
    anchorer: TraceRegistry, senders: list[TxSender]
) -> None:
    data = anchorer.contract.encode_abi("anchor", args=[b"\x00" * 32, 1])
    # An explicit gas limit skips the estimate, so the revert happens on chain.
    tx_hash = senders[8].send({"to": anchorer.address, "data": data, "gas": 100_000})
    receipt = anchorer.wait_receipt(tx_hash, 30)
    assert receipt.status == 0
    with pytest.raises(ContractReverted) as info:
        anchorer.raise_for_status(receipt, "anchor")
    assert info.value.error_name == "EmptyRoot"
    assert info.value.tx_hash == tx_hash
    assert tx_hash in str(info.value)


def test_unreachable_node_is_chain_unavailable(accounts: list[LocalAccount]) -> None:
    dead = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{free_port()}", exception_retry_configuration=None))
    client = TraceRegistry(dead, "0x" + "42" * 20, accounts[8])
    with pytest.raises(ChainUnavailable) as info:
        client.anchored_at(root("x"))
    assert info.value.contract == client.address
    with pytest.raises(ChainUnavailable):
        client.send_anchor(root("x"), 1)
    with pytest.raises(ChainUnavailable):
        client.head()


# ---------------------------------------------------------------------------------------------- nonces


def test_concurrent_sends_get_distinct_nonces(w3: Web3, anchorer: TraceRegistry) -> None:
    hashes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        try:
            h = anchorer.send_anchor(root(f"thread-{i}"), 1)
            with lock:
                hashes.append(h)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    nonces = sorted(int(w3.eth.get_transaction(h)["nonce"]) for h in hashes)  # type: ignore[arg-type]
    assert nonces == list(range(nonces[0], nonces[0] + 8))
    assert all(anchorer.wait_receipt(h, 30).status == 1 for h in hashes)


def test_sender_recovers_when_another_process_used_the_key(
    w3: Web3, anchorer: TraceRegistry, accounts: list[LocalAccount]
) -> None:
    anchorer.anchor(root("before other"), 1)  # the shared sender now holds a local nonce
    other = TraceRegistry(w3, anchorer.address, accounts[8])  # a second sender for the same key
    other.anchor(root("other process"), 1)
    assert anchorer.anchor(root("after other"), 1).newly_anchored  # "nonce too low" → resync → sent


# ----------------------------------------------------------------------------------------- stuck transactions


@pytest.fixture
def manual_chain() -> Iterator[Web3]:
    """A private Anvil that mines only when told to (the shared one automines)."""
    with AnvilNode() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        yield w3


def test_stuck_transaction_is_replaced_with_higher_fees(
    manual_chain: Web3, accounts: list[LocalAccount]
) -> None:
    w3 = manual_chain
    w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    client = TraceRegistry.deploy(w3, accounts[0], receipt_timeout=10)
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    r = root("stuck")
    first = client.send_anchor(r, 3)
    with pytest.raises(ReceiptTimeout) as info:
        client.wait_receipt(first, timeout=0.3)
    assert info.value.tx_hash == first and isinstance(info.value, ChainError)

    sender = client.sender
    assert sender is not None
    assert sender.replace_if_stuck(first, after_s=3600) is None  # not stuck long enough yet
    old: Any = w3.eth.get_transaction(first)  # type: ignore[arg-type]
    second = sender.replace_if_stuck(first, after_s=0)
    assert second is not None and second != first
    new: Any = w3.eth.get_transaction(second)  # type: ignore[arg-type]
    assert new["nonce"] == old["nonce"]
    assert new["maxPriorityFeePerGas"] * 8 >= old["maxPriorityFeePerGas"] * 9
    assert new["maxFeePerGas"] * 8 >= old["maxFeePerGas"] * 9
    third = sender.replace_if_stuck(first, after_s=0)  # follows the chain of replacements
    assert third is not None and third not in (first, second)

    mine(w3)
    assert client.wait_receipt(third, 5).status == 1
    with pytest.raises(ReceiptTimeout):
        client.wait_receipt(first, 0.2)
    found = client.find_anchor(r)
    assert found is not None and found.tx_hash == third  # recovery looks the root up, not a tx hash
    assert sender.replace_if_stuck(third, after_s=0) is None  # mined: nothing to replace

    # A sender that did not send it (a restarted process) reads the pending tx back from the node.
    pending = client.send_anchor(root("stuck after restart"), 1)
    restarted = TxSender(w3, accounts[0])
    replacement = restarted.replace_if_stuck(pending, after_s=3600)
    assert replacement is not None
    mine(w3)
    assert client.wait_receipt(replacement, 5).status == 1


def test_wait_receipt_replaces_a_stuck_transaction(manual_chain: Web3, accounts: list[LocalAccount]) -> None:
    w3 = manual_chain
    w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    client = TraceRegistry.deploy(w3, accounts[0])
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    r = root("waited and replaced")
    first = client.send_anchor(r, 1)
    miner = threading.Timer(0.8, mine, args=(w3,))
    miner.start()
    try:
        receipt = client.wait_receipt(first, timeout=10, replace_after=0.2)
    finally:
        miner.join()
    assert receipt.status == 1
    assert receipt.tx_hash != first  # the replacement got mined
    found = client.find_anchor(r)
    assert found is not None and found.tx_hash == receipt.tx_hash
    with pytest.raises(ConfigurationError):
        TraceRegistry(w3, client.address).wait_receipt(first, 1, replace_after=0.1)


# ---------------------------------------------------------------------------------------------- EIP-712


def test_ids_are_keccak_of_utf8_codes() -> None:
    assert lot_id("SUR-HM-2025-0001") == keccak(b"SUR-HM-2025-0001")
    assert authority_id("อบต.หนองสนิท") == keccak("อบต.หนองสนิท".encode())
    with pytest.raises(ValueError):
        lot_id("")


def test_typehash_matches_the_contract(registry: TraceRegistry) -> None:
    assert registry.contract.functions.CERTIFICATION_TYPEHASH().call() == CERTIFICATION_TYPEHASH


def make_cert(officer: str, nonce: int = 0) -> CertificationData:
    return CertificationData(
        lot_code="SKN-WM-2025-0042",
        certificate_hash=hashlib.sha256(b"GAP certificate").digest(),
        authority_code="TH-LAO-470101",
        officer=officer.lower(),
        expires=2_000_000_000,
        nonce=nonce,
        deadline=1_900_000_000,
    )


def test_digest_matches_the_contract_and_typed_data_round_trips(
    registry: TraceRegistry, accounts: list[LocalAccount]
) -> None:
    officer = accounts[4]
    cert = make_cert(officer.address)
    assert cert.officer == officer.address  # checksummed
    digest = certification_digest(cert, registry.chain_id, registry.address)
    assert "0x" + digest.hex() == registry.certification_digest(cert)

    document = typed_data(cert, registry.chain_id, registry.address)
    assert document["primaryType"] == "Certification"
    assert document["domain"] == {
        "name": "TraceRegistry",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": registry.address,
    }
    reloaded = json.loads(json.dumps(document))  # what a proof bundle carries
    assert typed_data_digest(reloaded) == digest
    signature = sign_certification(officer, cert, registry.chain_id, registry.address)
    assert len(signature) == 65
    assert recover_signer(reloaded, signature) == officer.address
    assert recover_signer(cert, signature, registry.chain_id, registry.address) == officer.address
    with pytest.raises(ValueError):
        recover_signer(cert, signature)
    reloaded["message"]["nonce"] = 1
    assert recover_signer(reloaded, signature) != officer.address
    domain = registry.contract.functions.eip712Domain().call()
    assert (domain[1], domain[2], domain[3], domain[4]) == ("TraceRegistry", "1", 31337, registry.address)


def test_sign_refuses_another_account_and_bad_fields(accounts: list[LocalAccount]) -> None:
    cert = make_cert(accounts[4].address)
    with pytest.raises(ValueError):
        sign_certification(accounts[5], cert, 31337, "0x" + "42" * 20)
    with pytest.raises(ValueError):
        CertificationData("L", b"\x01" * 31, "A", accounts[4].address, 0, 0, 0)
    with pytest.raises(ValueError):
        CertificationData("L", b"\x01" * 32, "A", accounts[4].address, 2**64, 0, 0)


def test_certify_revoke_through_the_client(
    w3: Web3, registry: TraceRegistry, accounts: list[LocalAccount], senders: list[TxSender]
) -> None:
    admin, officer, relayer = accounts[3], accounts[4], accounts[7]
    auth = authority_id("TH-LAO-470101")
    registry.add_authority(auth, admin.address)
    as_admin = TraceRegistry(w3, registry.address, admin, sender=senders[3])
    as_admin.add_officer(auth, officer.address)
    status = registry.officer_status(auth, officer.address)
    assert status.valid_from > 0 and status.revoked_at == 0 and status.valid_at(status.valid_from)
    assert status.added_at == status.valid_from

    now = int(w3.eth.get_block("latest")["timestamp"])
    cert = CertificationData("SKN-WM-2025-0042", b"\x07" * 32, "TH-LAO-470101", officer.address, 0,
                             registry.nonce_of(officer.address), now + 600)  # fmt: skip
    signature = sign_certification(officer, cert, registry.chain_id, registry.address)
    relay = TraceRegistry(w3, registry.address, relayer, sender=senders[7])
    cert_id, receipt = relay.certify(cert, signature)
    assert receipt.status == 1
    assert cert_id == "0x" + certification_digest(cert, registry.chain_id, registry.address).hex()
    assert registry.is_valid(cert_id)
    record = registry.certification_of(cert_id)
    assert (
        record is not None and record["officer"] == officer.address and record["lot"] == "0x" + cert.lot.hex()
    )
    assert w3.eth.get_balance(officer.address) == w3.eth.get_balance(
        officer.address, receipt.block_number - 1
    )

    as_admin.revoke(cert_id, "sample failed residue test")
    assert not registry.is_valid(cert_id)
    with pytest.raises(ContractReverted, match="AlreadyRevoked"):
        as_admin.revoke(cert_id, "again")
