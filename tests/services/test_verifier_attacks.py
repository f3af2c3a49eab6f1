"""Attacks on the verifier that need the service's own database: each made the verifier say "verified" (or
count a certification) before it was fixed. The bundle-level attacks (a forger's registry, a copied
certification, an anchor moved to another block) are in tests/cli/test_cli.py."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal

from eth_account import Account

from factories import (
    ID_BASE,
    OFFICER_PASSPHRASE,
    common,
    lifecycle,
    make_authority,
    make_officer,
)
from traceability.chain.eip712 import CertificationData, sign_certification
from traceability.domain.events import Certification, Place
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.ledger import verify_lot
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.store.database import transaction


def test_a_certification_by_another_authoritys_officer_does_not_count(db, registry):
    """The contract lets an officer of authority A sign a certification naming A for any lot code. On a lot
    grown on a plot of authority B that is not a certification anyone should rely on."""
    home = make_authority(db.sessions, registry)
    other = make_authority(db.sessions, registry)
    officer = make_officer(db.sessions, registry, other)
    with transaction(db.sessions) as s:
        farmer = enrol_farmer(
            s, code="F-0001", authority=home, display_name="นางสมพร ใจดี", phone="0811111111", pin="1234"
        )
        enrol_plot(
            s,
            code="PLOT-T-01",
            farmer=farmer,
            village_th="บ้านหนองสนิท",
            village_en="Ban Nong Sanit",
            area_rai=Decimal("2.5"),
        )
    lot = "T-VEG-0001"
    for event in lifecycle(lot)[:2]:
        with transaction(db.sessions) as s:
            record_event(s, event, id_base=ID_BASE)

    # The other authority's officer signs with their own key; anyone may relay it, and the chain accepts it.
    key = Account.decrypt(officer.keystore, OFFICER_PASSPHRASE)
    signer = Account.from_key(key)
    data = CertificationData(
        lot_code=lot,
        certificate_hash=hashlib.sha256(b"not their plot").digest(),
        authority_code=other.code,
        officer=signer.address,
        expires=0,
        nonce=registry.nonce_of(signer.address),
        # the chain's clock, not ours: other tests may have moved the shared Anvil's time forward
        deadline=int(registry.w3.eth.get_block("latest")["timestamp"]) + 3600,
    )
    signature = sign_certification(signer, data, registry.chain_id, registry.address)
    cert_id, _ = registry.certify(data, signature)
    assert registry.is_valid(cert_id)
    with transaction(db.sessions) as s:
        record_event(
            s,
            Certification(
                kind="certification",
                lot_code=lot,
                authority=other.code,
                officer=signer.address,
                standard="Organic Thailand PGS",
                certificate_hash="0x" + data.certificate_hash.hex(),
                expires=0,
                nonce=data.nonce,
                deadline=data.deadline,
                signature="0x" + signature.hex(),
                cert_id=cert_id,
                **{**common(actor="OFF-0001"), "place": Place(id=other.code), "event_id": uuid.uuid4()},
            ),
            id_base=ID_BASE,
        )
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)

    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, lot, confirmations=0)
    codes = {f.code for f in verdict.findings}
    assert verdict.status == "failed"
    assert "certification_wrong_authority" in codes
    assert {c.check: c.detail for c in verdict.checks}["certifications"]["valid"] == 0


def test_an_officer_added_just_after_the_authoritys_admin_changed_hands_is_a_warning(db, registry):
    """The registrar can move an authority to a new admin (proposed, then accepted); an officer that admin
    adds right away might be a takeover's own. The chain cannot tell; the verifier says so in plain words."""
    import time

    from factories import seed_parties
    from traceability.chain.eip712 import authority_id
    from traceability.chain.registry import TraceRegistry
    from traceability.services.certify import certify_lot
    from traceability.services.parties import enrol_officer

    parties = seed_parties(db.sessions, registry)
    authority = parties["authority"]
    new_admin = Account.create()
    registry.w3.provider.make_request("anvil_setBalance", [new_admin.address, hex(10**20)])
    time.sleep(1.1)  # the change must come in a later block second than the authority's creation
    registry.propose_authority_admin(authority_id(authority.code), new_admin.address)
    TraceRegistry(registry.w3, registry.address, new_admin).accept_authority_admin(
        authority_id(authority.code)
    )
    assert registry.authority_admin_changed_at(authority_id(authority.code)) is not None
    officer = enrol_officer(
        db.sessions,
        username="officer-after-change",
        display_name="เจ้าหน้าที่ใหม่",
        authority=authority,
        password="officer-password",
        passphrase=OFFICER_PASSPHRASE,
        authority_admin=TraceRegistry(registry.w3, registry.address, new_admin),
    )
    for event in lifecycle()[:2]:
        with transaction(db.sessions) as s:
            record_event(s, event, id_base=ID_BASE)
    certify_lot(
        db.sessions,
        registry,
        officer_username=officer.username,
        passphrase=OFFICER_PASSPHRASE,
        lot_code="T-VEG-0001",
        standard="Organic Thailand PGS",
        certificate_hash="0x" + "ab" * 32,
        place_id=authority.code,
        id_base=ID_BASE,
    )
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)

    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001", confirmations=0)
    assert verdict.status == "warning"
    assert [f.code for f in verdict.findings] == ["officer_after_admin_change"]
    assert {c.check: c.detail for c in verdict.checks}["certifications"]["valid"] == 1
