"""TraceRegistry.sol on a real Anvil: roles, anchoring, Merkle inclusion, officers, certifications.

Accounts and helpers: see ``registry_kit`` (0 admin, 1 registrar, 2 anchorer, 3 authority admin, 4 and 5
officers, 6 a stranger, 7 a relayer). The attacks a security review found are in ``test_forgery.py``.
"""

from __future__ import annotations

import hashlib

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from registry_kit import (
    ADMIN,
    ANCHORER,
    AUTH_ADMIN,
    OFFICER,
    OFFICER2,
    REGISTRAR,
    RELAYER,
    STRANGER,
    Client,
    advance,
    cert_for,
    now,
    reverts,
    root_of,
    signed,
)
from web3 import Web3

from traceability.chain.eip712 import CertificationData, certification_digest, sign_certification, typed_data
from traceability.chain.registry import OfficerStatus, TraceRegistry, authority_id, lot_id
from traceability.domain.merkle import MerkleTree

# ---------------------------------------------------------------------------------------------- roles


def test_roles_granted_by_constructor(registry: TraceRegistry, accounts: list[LocalAccount]) -> None:
    assert registry.has_role("admin", accounts[ADMIN].address)
    assert registry.has_role("registrar", accounts[REGISTRAR].address)
    assert registry.has_role("anchorer", accounts[ANCHORER].address)
    assert not registry.has_role("anchorer", accounts[ADMIN].address)
    assert not registry.has_role("registrar", accounts[ANCHORER].address)


def test_anchor_by_non_anchorer_reverts(as_: Client, accounts: list[LocalAccount]) -> None:
    for who in (ADMIN, REGISTRAR, STRANGER):
        with reverts("AccessControlUnauthorizedAccount") as info:
            as_(who).anchor(root_of("x"), 1)
        assert info.value.error_name == "AccessControlUnauthorizedAccount"
        assert info.value.contract == as_(who).address
        assert info.value.error_args[0].lower() == accounts[who].address.lower()


def test_add_authority_by_non_registrar_reverts(as_: Client, accounts: list[LocalAccount]) -> None:
    for who in (ADMIN, ANCHORER, STRANGER):
        with reverts("AccessControlUnauthorizedAccount"):
            as_(who).add_authority(authority_id("X"), accounts[AUTH_ADMIN].address)


def test_propose_authority_admin_by_non_registrar_reverts(
    as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    for who in (ADMIN, AUTH_ADMIN, STRANGER):
        with reverts("AccessControlUnauthorizedAccount"):
            as_(who).propose_authority_admin(authority, accounts[STRANGER].address)


def test_officers_managed_only_by_the_authority_admin(
    as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    for who in (ADMIN, REGISTRAR, OFFICER, STRANGER):
        with reverts("NotAuthorityAdmin"):
            as_(who).add_officer(authority, accounts[OFFICER2].address)
        with reverts("NotAuthorityAdmin"):
            as_(who).revoke_officer(authority, accounts[OFFICER].address)
    with reverts("UnknownAuthority"):
        as_(AUTH_ADMIN).add_officer(authority_id("NOPE"), accounts[OFFICER2].address)


def test_authority_lifecycle(w3: Web3, as_: Client, accounts: list[LocalAccount]) -> None:
    registrar = as_(REGISTRAR)
    auth = authority_id("TH-LAO-LIFECYCLE")
    receipt = registrar.add_authority(auth, accounts[AUTH_ADMIN].address)
    assert registrar.authority_admin(auth) == accounts[AUTH_ADMIN].address
    added_at = w3.eth.get_block(receipt.block_number)["timestamp"]
    assert registrar.authority_admin_since(auth) == registrar.authority_added_at(auth) == added_at
    assert registrar.authority_admin_changed_at(auth) is None  # still the first admin
    assert registrar.pending_authority_admin(auth) is None
    assert registrar.authority_admin(authority_id("NOPE")) is None
    assert registrar.authority_admin_since(authority_id("NOPE")) == 0
    assert registrar.authority_admin_changed_at(authority_id("NOPE")) is None
    with reverts("AuthorityExists"):
        registrar.add_authority(auth, accounts[STRANGER].address)
    with reverts("UnknownAuthority"):
        registrar.propose_authority_admin(authority_id("NOPE"), accounts[STRANGER].address)
    with reverts("AlreadyAuthorityAdmin"):
        registrar.propose_authority_admin(auth, accounts[AUTH_ADMIN].address)
    with reverts("ZeroAddress"):
        registrar.add_authority(authority_id("Z"), "0x" + "00" * 20)
    # A new admin takes over officer management once it accepts; the old one loses it.
    advance(w3, 100)
    registrar.propose_authority_admin(auth, accounts[OFFICER2].address)
    assert registrar.pending_authority_admin(auth) == accounts[OFFICER2].address
    as_(AUTH_ADMIN).add_officer(auth, accounts[OFFICER].address)  # still the admin until the acceptance
    accepted = as_(OFFICER2).accept_authority_admin(auth)
    assert registrar.authority_admin(auth) == accounts[OFFICER2].address
    accepted_at = w3.eth.get_block(accepted.block_number)["timestamp"]
    assert registrar.authority_admin_since(auth) == registrar.authority_admin_changed_at(auth) == accepted_at
    assert registrar.authority_added_at(auth) == added_at
    assert registrar.pending_authority_admin(auth) is None
    (changed,) = registrar.contract.events.AuthorityAdminChanged().process_receipt(accepted.raw)
    assert (changed["args"]["previousAdmin"], changed["args"]["newAdmin"]) == (
        accounts[AUTH_ADMIN].address,
        accounts[OFFICER2].address,
    )
    with reverts("NotAuthorityAdmin"):
        as_(AUTH_ADMIN).add_officer(auth, accounts[STRANGER].address)
    as_(OFFICER2).add_officer(auth, accounts[STRANGER].address)
    with reverts("NotPendingAuthorityAdmin"):
        as_(OFFICER2).accept_authority_admin(auth)  # the proposal is used up


# ---------------------------------------------------------------------------------------------- anchoring


def test_anchor_records_block_time_and_emits(w3: Web3, as_: Client) -> None:
    anchorer = as_(ANCHORER)
    root = root_of("batch-1")
    assert anchorer.anchored_at(root) == 0
    receipt = anchorer.anchor(root, 12)
    block = w3.eth.get_block(receipt.block_number)
    assert receipt.newly_anchored
    assert receipt.block_time == block["timestamp"] == anchorer.anchored_at(root)
    assert receipt.count == 12


def test_reanchoring_is_a_noop(w3: Web3, as_: Client, accounts: list[LocalAccount]) -> None:
    anchorer = as_(ANCHORER)
    root = root_of("batch-again")
    first = anchorer.anchor(root, 3)
    at = anchorer.anchored_at(root)
    call = anchorer.contract.functions.anchor(root, 3)
    assert call.call({"from": accounts[ANCHORER].address}) is False
    assert anchorer.contract.functions.anchor(root_of("fresh"), 3).call({"from": accounts[ANCHORER].address})
    advance(w3, 60)
    tx_hash = anchorer.send_anchor(root, 3)
    receipt = anchorer.wait_receipt(tx_hash, 30)
    assert receipt.status == 1
    assert receipt.raw is not None and receipt.raw["logs"] == []  # no event
    assert anchorer.anchored_at(root) == at  # unchanged
    found = anchorer.find_anchor(root)
    assert found is not None and found.tx_hash == first.tx_hash


def test_anchor_rejects_empty_root_and_empty_batch(as_: Client) -> None:
    with reverts("EmptyRoot"):
        as_(ANCHORER).anchor(b"\x00" * 32, 1)
    with reverts("EmptyBatch"):
        as_(ANCHORER).anchor(root_of("empty"), 0)


def test_anchor_gas_is_small_and_independent_of_batch_size(as_: Client) -> None:
    anchorer = as_(ANCHORER)
    gas = {}
    for size in (1, 2, 100, 1024, 4_000_000_000):
        tree_root = root_of(f"gas-{size}")
        gas[size] = anchorer.anchor(tree_root, size).gas_used
    assert all(g < 70_000 for g in gas.values()), gas
    assert max(gas.values()) - min(gas.values()) < 200, gas  # only calldata bytes of `count` differ


# ---------------------------------------------------------------------------------------- Merkle on chain


def verify_on_chain(
    w3: Web3, registry: TraceRegistry, checks: list[tuple[bytes, list[bytes], bytes]]
) -> list[bool]:
    """``verifyEvent`` for many (event hash, proof, root) in one JSON-RPC batch."""
    with w3.batch_requests() as batch:
        for event_hash, proof, root in checks:
            batch.add(registry.contract.functions.verifyEvent(event_hash, proof, root))
        return [bool(r) for r in batch.execute()]


def test_verify_event_agrees_with_python_merkle(w3: Web3, as_: Client) -> None:
    anchorer = as_(ANCHORER)
    outsider = hashlib.sha256(b"not in any batch").digest()
    for size in [*range(1, 34), 1024]:
        events = [hashlib.sha256(f"onchain-{size}-{i}".encode()).digest() for i in range(size)]
        tree = MerkleTree(events)
        assert not anchorer.verify_event(events[0], tree.proof(events[0]), tree.root)  # not anchored yet
        anchorer.anchor(tree.root, size)
        sample = events if size <= 33 else events[::16] + events[-1:]  # every leaf is checked in Python
        good = [(e, tree.proof(e), tree.root) for e in sample]
        assert all(verify_on_chain(w3, anchorer, good)), size
        bad = [(outsider, tree.proof(events[0]), tree.root)]
        if size > 1:
            bad.append((events[0], tree.proof(events[0])[:-1], tree.root))
            bad.append((events[0], tree.proof(events[1]), tree.root))
        assert not any(verify_on_chain(w3, anchorer, bad)), size
    # The client's single call agrees.
    assert anchorer.verify_event(events[5], tree.proof(events[5]), tree.root)


# ---------------------------------------------------------------------------------------------- officers


def test_officer_status_and_validity_window(
    w3: Web3, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    admin = as_(AUTH_ADMIN)
    officer = accounts[OFFICER].address
    status = admin.officer_status(authority, officer)
    assert status.valid_from == status.added_at == now(w3) and status.revoked_at == 0
    assert admin.is_officer_at(authority, officer, now(w3))
    assert not admin.is_officer_at(authority, officer, status.valid_from - 1)
    assert admin.officer_status(authority, accounts[OFFICER2].address) == OfficerStatus(0, 0, 0)
    with reverts("OfficerExists"):
        admin.add_officer(authority, officer)
    with reverts("UnknownOfficer"):
        admin.revoke_officer(authority, accounts[OFFICER2].address)
    with reverts("RevocationInFuture"):
        admin.revoke_officer(authority, officer, now(w3) + 1000)
    advance(w3, 100)
    admin.revoke_officer(authority, officer, 0)
    revoked_at = admin.officer_status(authority, officer).revoked_at
    assert revoked_at == now(w3)
    assert not admin.is_officer_at(authority, officer, revoked_at)
    # A later time cannot un-revoke; an earlier one (compromise found to be older) can be set.
    with reverts("OfficerAlreadyRevoked"):
        admin.revoke_officer(authority, officer, revoked_at)
    admin.revoke_officer(authority, officer, revoked_at - 10)
    assert admin.officer_status(authority, officer).revoked_at == revoked_at - 10
    # A revoked key stays revoked: its history judges what it signed.
    with reverts("OfficerExists"):
        admin.add_officer(authority, officer)


def test_revocation_cannot_precede_valid_from(
    w3: Web3, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    admin = as_(AUTH_ADMIN)
    officer = accounts[OFFICER].address
    valid_from = admin.officer_status(authority, officer).valid_from
    advance(w3, 100)
    with reverts("RevocationBeforeValidFrom") as info:
        admin.revoke_officer(authority, officer, valid_from - 1)
    assert info.value.error_args == (valid_from - 1, valid_from)
    admin.revoke_officer(authority, officer, valid_from)  # the whole term, from its first second
    assert not admin.is_officer_at(authority, officer, valid_from)


def test_officer_added_for_later_records_both_times_and_can_be_revoked_before_starting(
    w3: Web3, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    admin = as_(AUTH_ADMIN)
    officer = accounts[OFFICER2].address
    start = now(w3) + 1000
    receipt = admin.add_officer(authority, officer, start)
    status = admin.officer_status(authority, officer)
    assert status.valid_from == start
    assert status.added_at == w3.eth.get_block(receipt.block_number)["timestamp"] < start
    # Compromised before the term begins: revoking "now" empties the term instead of failing.
    with reverts("RevocationBeforeValidFrom"):
        admin.revoke_officer(authority, officer, start - 1)
    with reverts("RevocationInFuture"):
        admin.revoke_officer(authority, officer, start + 1)
    admin.revoke_officer(authority, officer)
    assert admin.officer_status(authority, officer).revoked_at == start
    advance(w3, 2000)
    assert not any(admin.is_officer_at(authority, officer, t) for t in (start - 1, start, start + 1, now(w3)))


# ---------------------------------------------------------------------------------------------- certify


def test_certify_by_relayer_records_and_emits(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    cert, signature = signed(registry, officer)
    assert (
        registry.certification_digest(cert)
        == "0x" + certification_digest(cert, 31337, registry.address).hex()
    )
    cert_id, receipt = as_(RELAYER).certify(cert, signature)
    assert cert_id == registry.certification_digest(cert)
    assert registry.nonce_of(officer.address) == cert.nonce + 1
    record = registry.certification_of(cert_id)
    assert record == {
        "id": cert_id,
        "lot": "0x" + lot_id(cert.lot_code).hex(),
        "certificate_hash": "0x" + cert.certificate_hash.hex(),
        "authority": "0x" + authority.hex(),
        "officer": officer.address,
        "expires": cert.expires,
        "issued_at": now(w3),
        "revoked_at": 0,
        "revoked_by": None,
        "revoked_by_admin": False,
    }
    assert registry.is_valid(cert_id)
    assert receipt.raw is not None
    (log,) = receipt.raw["logs"]
    assert [bytes(t) for t in log["topics"][1:]] == [bytes.fromhex(cert_id[2:]), cert.lot, authority]
    # What an indexer needs without calling back: the certificate's hash and its expiry.
    (event,) = registry.contract.events.Certified().process_receipt(receipt.raw)
    assert event["args"] == {
        "id": bytes.fromhex(cert_id[2:]),
        "lot": cert.lot,
        "authority": authority,
        "officer": officer.address,
        "certificateHash": cert.certificate_hash,
        "expires": cert.expires,
    }
    assert registry.certification_of("0x" + "ab" * 32) is None


def test_certify_rejects_bad_signatures(
    registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer, other = accounts[OFFICER], accounts[STRANGER]
    cert = cert_for(registry, officer)
    # Signed by someone else (claiming to be the officer).
    document = typed_data(cert, registry.chain_id, registry.address)
    forged = other.sign_message(encode_typed_data(full_message=document)).signature
    with reverts("InvalidSignature"):
        as_(RELAYER).certify(cert, bytes(forged))
    # Signed by the officer, but a field changed afterwards.
    signature = sign_certification(officer, cert, registry.chain_id, registry.address)
    tampered = CertificationData(**{**cert.__dict__, "certificate_hash": b"\x99" * 32})
    with reverts("InvalidSignature"):
        as_(RELAYER).certify(tampered, signature)
    # Signed for another chain / contract.
    wrong_domain = sign_certification(officer, cert, 1, registry.address)
    with reverts("InvalidSignature"):
        as_(RELAYER).certify(cert, wrong_domain)
    with reverts("InvalidSignature"):
        as_(RELAYER).certify(cert, b"\x00" * 65)
    as_(RELAYER).certify(cert, signature)  # the genuine one still goes through


def test_replayed_or_wrong_nonce_reverts(
    registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    cert, signature = signed(registry, officer)
    as_(RELAYER).certify(cert, signature)
    with reverts("InvalidAccountNonce"):
        as_(RELAYER).certify(cert, signature)
    ahead, ahead_sig = signed(registry, officer, nonce=registry.nonce_of(officer.address) + 1)
    with reverts("InvalidAccountNonce"):
        as_(RELAYER).certify(ahead, ahead_sig)


def test_deadline_passed_reverts(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    cert, signature = signed(registry, accounts[OFFICER], deadline=now(w3) + 100)
    advance(w3, 200)
    with reverts("SignatureExpired"):
        as_(RELAYER).certify(cert, signature)


def test_already_expired_certification_reverts(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    cert, signature = signed(registry, accounts[OFFICER], expires=now(w3) - 1)
    with reverts("CertificationExpired"):
        as_(RELAYER).certify(cert, signature)


def test_non_officer_and_revoked_officer_cannot_certify(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    cert, signature = signed(registry, accounts[OFFICER2])  # never added
    with reverts("NotAnOfficer"):
        as_(RELAYER).certify(cert, signature)
    # Added with a future validFrom: not yet.
    as_(AUTH_ADMIN).add_officer(authority, accounts[OFFICER2].address, now(w3) + 1000)
    with reverts("NotAnOfficer"):
        as_(RELAYER).certify(cert, signature)
    # Another authority's officer cannot sign for this one.
    other = authority_id("TH-LAO-OTHER")
    as_(REGISTRAR).add_authority(other, accounts[AUTH_ADMIN].address)
    as_(AUTH_ADMIN).add_officer(other, accounts[OFFICER2].address)
    with reverts("NotAnOfficer"):
        as_(RELAYER).certify(cert, signature)
    # Revoked now.
    as_(AUTH_ADMIN).revoke_officer(authority, accounts[OFFICER].address)
    revoked_cert, revoked_sig = signed(registry, accounts[OFFICER])
    with reverts("NotAnOfficer"):
        as_(RELAYER).certify(revoked_cert, revoked_sig)


def test_past_revocation_invalidates_later_certifications_only(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    before, sig = signed(registry, officer, lot="LOT-BEFORE")
    before_id, _ = as_(RELAYER).certify(before, sig)
    issued_before = now(w3)
    advance(w3, 1000)
    after, sig = signed(registry, officer, lot="LOT-AFTER")
    after_id, _ = as_(RELAYER).certify(after, sig)
    issued_after = now(w3)
    assert registry.is_valid(before_id) and registry.is_valid(after_id)
    # The key is found compromised since halfway between the two.
    compromised_at = issued_before + 500
    assert issued_before < compromised_at < issued_after
    as_(AUTH_ADMIN).revoke_officer(authority, officer.address, compromised_at)
    assert registry.is_valid(before_id)
    assert not registry.is_valid(after_id)
    record = registry.certification_of(after_id)
    assert record is not None and record["revoked_at"] == 0  # the record itself is untouched


# ---------------------------------------------------------------------------------------------- revoke


def test_revoke_by_issuing_officer(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    cert_id, _ = as_(RELAYER).certify(*signed(registry, accounts[OFFICER]))
    receipt = as_(OFFICER).revoke(cert_id, "wrong lot")
    assert not registry.is_valid(cert_id)
    record = registry.certification_of(cert_id)
    assert record is not None and record["revoked_at"] == now(w3)
    assert record["revoked_by"] == accounts[OFFICER].address and not record["revoked_by_admin"]
    (log,) = registry.contract.events.Revoked().process_receipt(receipt.raw)
    assert log["args"]["by"] == accounts[OFFICER].address
    assert log["args"]["reason"] == "wrong lot"
    with reverts("AlreadyRevoked"):
        as_(OFFICER).revoke(cert_id, "again")
    with reverts("AlreadyRevoked"):
        as_(AUTH_ADMIN).revoke(cert_id, "again")


def test_revoke_by_authority_admin(
    registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    cert_id, _ = as_(RELAYER).certify(*signed(registry, accounts[OFFICER]))
    as_(AUTH_ADMIN).revoke(cert_id, "ตรวจพบสารเคมี")
    assert not registry.is_valid(cert_id)
    record = registry.certification_of(cert_id)
    assert record is not None
    assert record["revoked_by"] == accounts[AUTH_ADMIN].address and record["revoked_by_admin"]


def test_revoke_by_stranger_or_revoked_officer_reverts(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    cert_id, _ = as_(RELAYER).certify(*signed(registry, accounts[OFFICER]))
    for who in (STRANGER, RELAYER, REGISTRAR, ADMIN):
        with reverts("NotAllowedToRevoke"):
            as_(who).revoke(cert_id, "nope")
    # A revoked (possibly compromised) officer key cannot revoke good certifications any more.
    advance(w3, 10)  # revoked after the certification's second, not in it
    as_(AUTH_ADMIN).revoke_officer(authority, accounts[OFFICER].address)
    with reverts("NotAllowedToRevoke"):
        as_(OFFICER).revoke(cert_id, "nope")
    with reverts("UnknownCertification"):
        as_(AUTH_ADMIN).revoke("0x" + "12" * 32, "nope")
    assert registry.is_valid(cert_id)  # issued while the officer was valid


def test_is_valid_transitions(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    assert not registry.is_valid("0x" + "00" * 32)
    expiring_id, _ = as_(RELAYER).certify(*signed(registry, accounts[OFFICER], expires=now(w3) + 100))
    forever_id, _ = as_(RELAYER).certify(*signed(registry, accounts[OFFICER], expires=0))
    assert registry.is_valid(expiring_id) and registry.is_valid(forever_id)
    advance(w3, 101)
    assert not registry.is_valid(expiring_id)  # expired
    assert registry.is_valid(forever_id)
    as_(AUTH_ADMIN).revoke(forever_id, "withdrawn")
    assert not registry.is_valid(forever_id)  # revoked
