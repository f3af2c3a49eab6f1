"""The attacks a security review found, each played against the real contract on Anvil and now refused.

Accounts and helpers: see ``registry_kit``. Every test here failed (or could not even be written) against the
contract before the review's fixes.
"""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.hexadecimal import encode_hex
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
    now,
    reverts,
    signed,
)
from web3 import Web3
from web3.exceptions import ContractLogicError

from traceability.chain.registry import TraceRegistry
from traceability.chain.sender import TxSender

SPARE = 8

# ------------------------------------------------------------------------------------- DEFAULT_ADMIN_ROLE


def test_default_admin_moves_only_in_two_steps_after_the_delay(
    w3: Web3, accounts: list[LocalAccount], senders: list[TxSender]
) -> None:
    delay = 3 * 24 * 3600
    admin = TraceRegistry.deploy(
        w3,
        accounts[ADMIN],
        sender=senders[ADMIN],
        registrar=accounts[REGISTRAR].address,
        anchorer=accounts[ANCHORER].address,
        admin_delay=delay,
    )
    new_admin = TraceRegistry(w3, admin.address, accounts[SPARE], sender=senders[SPARE])
    stranger = TraceRegistry(w3, admin.address, accounts[STRANGER], sender=senders[STRANGER])
    assert admin.default_admin() == accounts[ADMIN].address
    assert admin.default_admin_delay() == delay
    assert admin.pending_default_admin() == (None, 0)

    # The attack: a stolen admin key hands the role to the thief in one transaction, as AccessControl allowed.
    with reverts("AccessControlEnforcedDefaultAdminRules"):
        admin.grant_role("admin", accounts[STRANGER].address)

    begun = admin.begin_default_admin_transfer(accounts[SPARE].address)
    begun_at = int(w3.eth.get_block(begun.block_number)["timestamp"])
    assert admin.pending_default_admin() == (accounts[SPARE].address, begun_at + delay)
    with reverts("AccessControlEnforcedDefaultAdminDelay"):
        new_admin.accept_default_admin_transfer()  # too early
    with reverts("AccessControlInvalidDefaultAdmin"):
        stranger.accept_default_admin_transfer()  # not the one proposed
    advance(w3, delay - 60)
    with reverts("AccessControlEnforcedDefaultAdminDelay"):
        new_admin.accept_default_admin_transfer()  # still a minute early: time for the owner to cancel
    advance(w3, 120)
    new_admin.accept_default_admin_transfer()
    assert admin.default_admin() == accounts[SPARE].address
    assert admin.has_role("admin", accounts[SPARE].address)
    assert not admin.has_role("admin", accounts[ADMIN].address)
    assert admin.pending_default_admin() == (None, 0)


def test_a_begun_admin_transfer_can_be_cancelled_before_it_is_accepted(
    w3: Web3, accounts: list[LocalAccount], senders: list[TxSender]
) -> None:
    admin = TraceRegistry.deploy(w3, accounts[ADMIN], sender=senders[ADMIN], admin_delay=3600)
    thief = TraceRegistry(w3, admin.address, accounts[STRANGER], sender=senders[STRANGER])
    admin.begin_default_admin_transfer(accounts[STRANGER].address)
    admin.cancel_default_admin_transfer()  # the rightful owner noticed within the delay
    advance(w3, 7200)
    with reverts("AccessControlInvalidDefaultAdmin"):
        thief.accept_default_admin_transfer()
    assert admin.default_admin() == accounts[ADMIN].address


# --------------------------------------------------------------------------------------- authority admins


def test_registrar_cannot_take_over_an_authority_in_one_transaction(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    registrar = as_(REGISTRAR)
    thief = accounts[REGISTRAR].address  # a stolen registrar key wants to appoint officers of its own

    # The one-step setter is gone from the bytecode: calling its selector reverts (there is no fallback).
    selector = function_signature_to_4byte_selector("setAuthorityAdmin(bytes32,address)")
    data = encode_hex(selector + abi_encode(["bytes32", "address"], [authority, thief]))
    with pytest.raises(ContractLogicError):
        w3.eth.call({"from": thief, "to": registry.address, "data": data})  # type: ignore[typeddict-item]

    since = registrar.authority_admin_since(authority)
    proposed = registrar.propose_authority_admin(authority, thief)
    (event,) = registry.contract.events.AuthorityAdminProposed().process_receipt(proposed.raw)
    assert (event["args"]["currentAdmin"], event["args"]["proposed"]) == (accounts[AUTH_ADMIN].address, thief)
    # Proposing changed nothing: the admin is the same and the registrar still cannot add officers.
    assert registrar.authority_admin(authority) == accounts[AUTH_ADMIN].address
    assert registrar.authority_admin_since(authority) == since
    assert registrar.pending_authority_admin(authority) == thief
    with reverts("NotAuthorityAdmin"):
        registrar.add_officer(authority, accounts[OFFICER2].address)
    # Nobody but the proposed address can accept, not even the current admin or the default admin.
    for who in (STRANGER, AUTH_ADMIN, ADMIN, OFFICER):
        with reverts("NotPendingAuthorityAdmin"):
            as_(who).accept_authority_admin(authority)
    # Withdrawn, the proposal cannot be accepted either.
    registrar.propose_authority_admin(authority, None)
    assert registrar.pending_authority_admin(authority) is None
    with reverts("NotPendingAuthorityAdmin"):
        registrar.accept_authority_admin(authority)
    assert registrar.authority_admin(authority) == accounts[AUTH_ADMIN].address


def test_only_the_proposed_admin_accepts_and_its_start_is_recorded(
    w3: Web3, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    as_(REGISTRAR).propose_authority_admin(authority, accounts[OFFICER2].address)
    # A newer proposal replaces the older: the first address can no longer accept.
    as_(REGISTRAR).propose_authority_admin(authority, accounts[STRANGER].address)
    with reverts("NotPendingAuthorityAdmin"):
        as_(OFFICER2).accept_authority_admin(authority)
    advance(w3, 500)
    accepted = as_(STRANGER).accept_authority_admin(authority)
    assert as_(STRANGER).authority_admin(authority) == accounts[STRANGER].address
    accepted_at = w3.eth.get_block(accepted.block_number)["timestamp"]
    assert as_(STRANGER).authority_admin_since(authority) == accepted_at


# ------------------------------------------------------------------------------------- stolen officer key


def test_thief_with_an_officer_key_cannot_undo_its_past_certifications(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    c1, _ = as_(RELAYER).certify(*signed(registry, officer, lot="LOT-C1"))
    t1 = now(w3)
    advance(w3, 1000)
    t2 = now(w3)  # the key is stolen about now, unnoticed
    advance(w3, 1000)
    as_(OFFICER).revoke(c1, "revoked with the stolen key")  # the thief signs as the officer
    t3 = now(w3)
    assert not registry.is_valid(c1)
    record = registry.certification_of(c1)
    assert record is not None
    assert record["revoked_at"] == t3
    assert record["revoked_by"] == officer.address and not record["revoked_by_admin"]

    # The authority's admin learns of the theft and revokes the key as of t2.
    as_(AUTH_ADMIN).revoke_officer(authority, officer.address, t2)
    assert t1 < t2 < t3
    assert registry.is_valid(c1)  # the thief's revocation is void; C1 was issued while the key was good
    # The record keeps what happened; the admin can still revoke C1 for real.
    record = registry.certification_of(c1)
    assert record is not None and record["revoked_by"] == officer.address
    as_(AUTH_ADMIN).revoke(c1, "withdrawn by the authority")
    assert not registry.is_valid(c1)
    with reverts("AlreadyRevoked"):
        as_(AUTH_ADMIN).revoke(c1, "again")


def test_officer_revocation_in_the_same_second_as_the_key_revocation_is_void(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    cert_id, _ = as_(RELAYER).certify(*signed(registry, officer))
    advance(w3, 100)
    as_(OFFICER).revoke(cert_id, "thief")
    revoked_at = now(w3)
    as_(AUTH_ADMIN).revoke_officer(authority, officer.address, revoked_at)  # "at or after": void
    assert registry.is_valid(cert_id)


def test_officer_revocation_before_the_key_was_revoked_still_counts(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    cert_id, _ = as_(RELAYER).certify(*signed(registry, officer))
    advance(w3, 10)
    as_(OFFICER).revoke(cert_id, "wrong lot")  # the officer's own, genuine revocation
    advance(w3, 1000)
    t2 = now(w3)
    as_(AUTH_ADMIN).revoke_officer(authority, officer.address, t2)
    assert not registry.is_valid(cert_id)
    with reverts("AlreadyRevoked"):
        as_(AUTH_ADMIN).revoke(cert_id, "again")


def test_authority_admin_revocation_always_counts(
    w3: Web3, registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    early, _ = as_(RELAYER).certify(*signed(registry, officer, lot="LOT-EARLY"))
    advance(w3, 10)
    late, _ = as_(RELAYER).certify(*signed(registry, officer, lot="LOT-LATE"))
    advance(w3, 1000)
    t2 = now(w3)
    advance(w3, 1000)
    as_(AUTH_ADMIN).revoke(early, "residue found")
    as_(AUTH_ADMIN).revoke_officer(authority, officer.address, t2)  # after both were issued
    as_(AUTH_ADMIN).revoke(late, "residue found")
    assert not registry.is_valid(early)  # revoked by the admin before the key was revoked
    assert not registry.is_valid(late)  # and after it


# ------------------------------------------------------------------------------------------ nonces


def test_cancelled_nonce_voids_a_signature_not_yet_relayed(
    registry: TraceRegistry, as_: Client, authority: bytes, accounts: list[LocalAccount]
) -> None:
    officer = accounts[OFFICER]
    cert, signature = signed(registry, officer)  # handed to a relayer, then regretted
    nonce, receipt = as_(OFFICER).cancel_nonce()
    assert nonce == cert.nonce
    assert registry.nonce_of(officer.address) == cert.nonce + 1
    (event,) = registry.contract.events.NonceCancelled().process_receipt(receipt.raw)
    assert event["args"] == {"account": officer.address, "nonce": cert.nonce}
    with reverts("InvalidAccountNonce"):
        as_(RELAYER).certify(cert, signature)
    as_(RELAYER).certify(*signed(registry, officer))  # a signature over the next nonce is fine
