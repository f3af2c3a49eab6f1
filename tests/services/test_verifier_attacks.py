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
