"""Certification with a key kept off the server (a hardware wallet), over the JSON API on a real Anvil: the
typed data to sign, the signature posted back, checked and relayed; forged, replayed and wrong-authority
signatures refused with a code, and the contract itself refusing an officer's signature for another
authority."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import FARMER_1, ID_BASE, OFFICER_PASSPHRASE, authority_admin
from traceability.chain.eip712 import CertificationData, authority_id, sign_certification
from traceability.chain.sender import ContractReverted
from traceability.config import Settings
from traceability.errors import Conflict, TransactionFailed
from traceability.main import create_app
from traceability.services.certify import certify_lot
from traceability.services.ledger import verify_lot
from traceability.services.parties import unlock_officer_key
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from officer_fixtures import LOT, OTHER_LOT, anchor_all, officer_creds, seed_officer_world  # noqa: E402


@pytest.fixture
def world(db, registry) -> dict[str, Any]:
    return seed_officer_world(db.sessions, registry)


@pytest.fixture
def client(db, anvil, registry, tmp_path, world) -> Iterator[TestClient]:
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
    )
    app = create_app(runtime=Runtime(settings, _engine=db.engine))
    with TestClient(app, client=("10.0.0.9", 40000)) as c:
        yield c


def bearer(client: TestClient, creds: dict[str, str]) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json=creds)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def officer_key(db, officer: models.Officer) -> Any:
    """The officer's key, as their hardware wallet would hold it (opened here only to sign in the test)."""
    with transaction(db.sessions) as s:
        row = s.get(models.Officer, officer.id)
        assert row is not None
        return unlock_officer_key(row, OFFICER_PASSPHRASE)


def ask(client: TestClient, headers: dict[str, str], lot: str = LOT, **params: Any) -> Any:
    query = {"standard": "Thai Hom Mali Rice GI", "scope": "แปลง PLOT-T-01", "note": "ตรวจแล้ว", **params}
    return client.get(f"/api/v1/lots/{lot}/certification-request", params=query, headers=headers)


def signed(account: Any, typed: dict[str, Any]) -> str:
    return "0x" + bytes(account.sign_message(encode_typed_data(full_message=typed)).signature).hex()


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_typed_data_signed_elsewhere_is_verified_relayed_and_the_lot_verifies(db, client, registry, world):
    headers = bearer(client, officer_creds(world["officer"]))
    r = ask(client, headers, expires=0)
    assert r.status_code == 200, r.text
    body = r.json()
    typed, certificate = body["typed_data"], body["certificate"]
    assert typed["primaryType"] == "Certification"
    assert typed["domain"]["verifyingContract"] == registry.address
    assert typed["message"]["officer"] == world["officer"].address
    assert typed["message"]["nonce"] == registry.nonce_of(world["officer"].address)
    assert certificate["note"] == "แปลง PLOT-T-01 — ตรวจแล้ว" and certificate["lot"] == LOT

    signature = signed(officer_key(db, world["officer"]), typed)
    post = {"certificate": certificate, "message": typed["message"], "signature": signature}
    r = client.post(f"/api/v1/lots/{LOT}/certifications", json=post, headers=headers)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["lot_code"] == LOT and made["tx_hash"].startswith("0x")
    assert registry.is_valid(made["cert_id"])
    with transaction(db.sessions) as s:
        record = s.get(models.CertificationRecord, made["cert_id"])
        assert (
            record is not None
            and record.signature == signature
            and record.standard == "Thai Hom Mali Rice GI"
        )

    # Replayed: the same signature again is refused, and so is any other signature with its nonce.
    again = client.post(f"/api/v1/lots/{LOT}/certifications", json=post, headers=headers)
    assert again.status_code == 409 and error_code(again) == "replayed_signature"
    with transaction(db.sessions) as s:
        assert s.scalar(select(func.count()).select_from(models.CertificationRecord)) == 1

    anchor_all(db.sessions, registry)
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, LOT, confirmations=0)
    assert verdict.ok, [f.en for f in verdict.findings]
    assert {c.check.value: c.detail for c in verdict.checks}["certifications"]["valid"] == 1


def test_a_forged_signature_and_a_doctored_message_are_refused_with_nothing_sent(db, client, registry, world):
    headers = bearer(client, officer_creds(world["officer"]))
    body = ask(client, headers).json()
    typed, certificate = body["typed_data"], body["certificate"]
    nonce = registry.nonce_of(world["officer"].address)

    forged = {
        "certificate": certificate,
        "message": typed["message"],
        "signature": signed(Account.create(), typed),
    }
    r = client.post(f"/api/v1/lots/{LOT}/certifications", json=forged, headers=headers)
    assert r.status_code == 403 and error_code(r) == "invalid_signature"

    key = officer_key(db, world["officer"])
    doctored = {**certificate, "standard": "Organic Thailand"}  # not what the hash names
    r = client.post(
        f"/api/v1/lots/{LOT}/certifications",
        json={"certificate": doctored, "message": typed["message"], "signature": signed(key, typed)},
        headers=headers,
    )
    assert r.status_code == 422 and error_code(r) == "certificate_mismatch"

    r = client.post(
        "/api/v1/lots/T-VEG-0002/certifications",
        json={"certificate": certificate, "message": typed["message"], "signature": signed(key, typed)},
        headers=headers,
    )
    assert r.status_code == 422 and error_code(r) == "message_mismatch"

    r = client.post(
        f"/api/v1/lots/{LOT}/certifications",
        json={"certificate": certificate, "message": typed["message"], "signature": "0x1234"},
        headers=headers,
    )
    assert r.status_code == 422 and error_code(r) == "invalid_input"
    assert registry.nonce_of(world["officer"].address) == nonce
    with transaction(db.sessions) as s:
        assert (
            s.scalar(select(func.count()).select_from(models.ChainOp).where(models.ChainOp.kind == "certify"))
            == 0
        )


def test_another_authoritys_lot_is_403_and_the_contract_refuses_such_a_signature(db, client, registry, world):
    headers = bearer(client, officer_creds(world["officer"]))
    r = ask(client, headers, lot=OTHER_LOT)
    assert r.status_code == 403 and error_code(r) == "not_your_lot"

    # The officer's typed data for their own lot, posted against the other authority's lot.
    body = ask(client, headers).json()
    key = officer_key(db, world["officer"])
    post = {"certificate": body["certificate"], "message": body["typed_data"]["message"]}
    r = client.post(
        f"/api/v1/lots/{OTHER_LOT}/certifications",
        json={**post, "signature": signed(key, body["typed_data"])},
        headers=headers,
    )
    assert r.status_code == 403 and error_code(r) == "not_your_lot"

    # Straight to the contract: the officer's own signature naming the other authority reverts.
    other = world["other_authority"].code
    data = CertificationData(
        lot_code=OTHER_LOT,
        certificate_hash=b"\x11" * 32,
        authority_code=other,
        officer=key.address,
        expires=0,
        nonce=registry.nonce_of(key.address),
        deadline=registry.w3.eth.get_block("latest")["timestamp"] + 3600,
    )
    with pytest.raises((ContractReverted, TransactionFailed)) as refused:
        registry.certify(data, sign_certification(key, data, registry.chain_id, registry.address))
    assert "NotAnOfficer" in str(refused.value)
    assert registry.nonce_of(key.address) == data.nonce


def test_a_revoked_officer_and_a_farmer_cannot_certify(db, client, registry, world):
    farmer = bearer(client, FARMER_1)
    r = ask(client, farmer)
    assert r.status_code == 403 and error_code(r) == "officers_only"

    officer = world["officer"]
    headers = bearer(client, officer_creds(officer))
    body = ask(client, headers).json()
    signature = signed(officer_key(db, officer), body["typed_data"])
    authority_admin(registry).revoke_officer(authority_id(world["authority"].code), officer.address)
    r = client.post(
        f"/api/v1/lots/{LOT}/certifications",
        json={
            "certificate": body["certificate"],
            "message": body["typed_data"]["message"],
            "signature": signature,
        },
        headers=headers,
    )
    assert r.status_code == 403 and error_code(r) == "officer_not_valid"
    r = ask(client, headers)
    assert r.status_code == 403 and error_code(r) == "officer_not_valid"
    assert not registry.is_officer_at(
        authority_id(world["authority"].code),
        officer.address,
        registry.w3.eth.get_block("latest")["timestamp"],
    )


def test_the_openapi_document_describes_both_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    request = paths["/api/v1/lots/{lot_code}/certification-request"]["get"]
    assert "eth_signTypedData_v4" in request["description"]
    create = paths["/api/v1/lots/{lot_code}/certifications"]["post"]
    assert "201" in create["responses"] and "replayed_signature" in create["responses"]["409"]["description"]


def test_the_same_certify_form_posted_twice_at_once_certifies_once(db, registry, world):
    """A double tap sends two requests at the same moment: the officer's row lock makes the second find the
    first one's intent under the form's token, instead of signing another certification with the next
    nonce."""
    request = {
        "officer_username": world["officer"].username,
        "passphrase": OFFICER_PASSPHRASE,
        "lot_code": LOT,
        "standard": "GAP",
        "certificate_hash": "0x" + "ab" * 32,
        "place_id": world["authority"].code,
        "id_base": ID_BASE,
        "event_id": uuid.uuid4(),
    }
    nonce = registry.nonce_of(world["officer"].address)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: certify_lot(db.sessions, registry, **request), range(2)))
    assert results[0].cert_id == results[1].cert_id
    assert registry.nonce_of(world["officer"].address) == nonce + 1
    with transaction(db.sessions) as s:
        assert (
            s.scalar(select(func.count()).select_from(models.ChainOp).where(models.ChainOp.kind == "certify"))
            == 1
        )
        assert s.scalar(select(func.count()).select_from(models.CertificationRecord)) == 1
    # The same token for another lot is refused, not taken for the first lot's certification.
    with pytest.raises(Conflict):
        certify_lot(db.sessions, registry, **{**request, "lot_code": "T-VEG-0002"})
