"""Verify a lot: one library for the API, the pages and the offline CLI.

The server's own check is ``verify_bundle(build_bundle(...))``: the same code an importer runs on a bundle
they downloaded, with the chain as the only thing trusted. Checks, per event: the CBV 2.0 hash recomputed
from the EPCIS body equals the hash claimed; the Merkle proof leads to the batch root; the contract says the
root is anchored and the event is included (``verifyEvent``); the anchor's block is canonical and has the
confirmations required. Per lot: hash-chain links (``prev``), mass balance, plausible yield. Per
certification: the EIP-712 signature is the officer's, and the contract says it is valid (signer an officer
of that authority when it was issued, not revoked, not expired).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from traceability.chain.eip712 import CertificationData, certification_digest, recover_signer
from traceability.chain.registry import TraceRegistry
from traceability.domain.epcis import from_epcis
from traceability.domain.events import Certification, lots_touched
from traceability.domain.findings import Finding, Severity, Verdict, worst
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.lineage import (
    LedgerEntry,
    ancestry,
    certifications_and_revocations,
    check_chain_links,
    check_mass_balance,
    check_yield,
)
from traceability.domain.merkle import verify_proof
from traceability.errors import ChainError, InvalidInput


def _b(h: str) -> bytes:
    return bytes.fromhex(h.removeprefix("0x"))


# Which check each finding code belongs to, so the summary marks the failing check rather than "ok".
CHECK_OF = {
    "hash_mismatch": "hashes",
    "event_unreadable": "hashes",
    "not_anchored": "anchors",
    "merkle_proof": "anchors",
    "anchor_missing": "anchors",
    "unconfirmed": "anchors",
    "chain_unavailable": "anchors",
    "chain_not_checked": "anchors",
    "wrong_chain": "anchors",
    "broken_prev_link": "prev_links",
    "forked_chain": "prev_links",
    "lot_origin_missing": "prev_links",
    "lot_created_twice": "prev_links",
    "lot_missing": "prev_links",
    "mass_balance": "mass_balance",
    "implausible_yield": "yield",
    "harvest_plot_mismatch": "yield",
}


def _check(code: str, th: str, en: str, findings: list[Finding], **detail: Any) -> Finding:
    related = [f for f in findings if CHECK_OF.get(f.code, "certifications") == code]
    severity = worst(related)
    return Finding(code, severity, th, en, detail=detail)


def verify_bundle(
    bundle: Mapping[str, Any],
    registry: TraceRegistry | None,
    *,
    confirmations: int = 0,
    yield_tolerance: Decimal = Decimal("1.5"),
) -> Verdict:
    """Check a proof bundle. With ``registry`` None the chain checks are reported as not done (failed)."""
    lot_code = str(bundle.get("lot_code", ""))
    findings: list[Finding] = []
    items = bundle.get("events")
    if not isinstance(items, list) or not items:
        raise InvalidInput("bundle has no events")

    if registry is not None:
        if int(bundle.get("chain_id", -1)) != registry.chain_id:
            findings.append(
                Finding(
                    "wrong_chain",
                    Severity.ERROR,
                    f"หลักฐานอ้างเชน {bundle.get('chain_id')} แต่ RPC เป็นเชน {registry.chain_id}",
                    f"Bundle names chain {bundle.get('chain_id')}, the RPC serves chain {registry.chain_id}",
                )
            )
            return Verdict.of(lot_code, findings, [])
        if str(bundle.get("contract", "")).lower() != registry.address.lower():
            raise InvalidInput("bundle contract does not match the registry checked against")

    entries: list[LedgerEntry] = []
    root_status: dict[str, bool] = {}
    head = registry.head() if registry is not None else 0
    for n, item in enumerate(items):
        body = item.get("epcis") if isinstance(item, Mapping) else None
        claimed = str(item.get("hash", "")) if isinstance(item, Mapping) else ""
        if not isinstance(body, Mapping):
            raise InvalidInput(f"bundle event {n} has no EPCIS body")
        event_ref = str(body.get("eventID", f"#{n}")).removeprefix("urn:uuid:")
        try:
            recomputed = hash_hex(event_hash(dict(body)))
            event = from_epcis(dict(body))
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            # An altered body may no longer even be an event this service emits: that is a finding about
            # this event, not a reason to stop checking the others.
            findings.append(
                Finding(
                    "event_unreadable",
                    Severity.ERROR,
                    f"ข้อมูลเหตุการณ์ {event_ref} ถูกแก้ไขจนอ่านไม่ได้",
                    f"Event {event_ref} was altered and can no longer be read: {str(exc)[:200]}",
                    event_id=event_ref,
                )
            )
            continue
        if recomputed != claimed.lower():
            findings.append(
                Finding(
                    "hash_mismatch",
                    Severity.ERROR,
                    f"ข้อมูลเหตุการณ์ {event_ref} ถูกแก้ไข: แฮชที่คำนวณใหม่ไม่ตรงกับที่บันทึกไว้",
                    f"Event {event_ref} was altered: its recomputed hash does not match the recorded one",
                    event_id=event_ref,
                    detail={"recorded": claimed, "recomputed": recomputed},
                )
            )
        entries.append(LedgerEntry(recomputed, event))
        findings += _check_anchor(
            item.get("anchor"), recomputed, event_ref, registry, head, confirmations, root_status
        )

    lots = ancestry(lot_code, entries)
    if not any(lot_code in lots_touched(e.event) for e in entries):
        findings.append(
            Finding(
                "lot_missing",
                Severity.ERROR,
                f"ไม่มีเหตุการณ์ของล็อต {lot_code}",
                f"No event touches lot {lot_code}",
                lot_code=lot_code,
            )
        )
    findings += check_chain_links(entries, lots)
    findings += check_mass_balance(entries, lots)
    findings += check_yield(entries, yield_tolerance)
    cert_findings, n_valid = _check_certifications(bundle, entries, registry)
    findings += cert_findings
    if n_valid == 0 and not cert_findings:
        findings.append(
            Finding(
                "not_certified",
                Severity.WARNING,
                "ยังไม่มีใบรับรองจาก อปท. ที่ใช้ได้",
                "No valid certification by a local authority",
                lot_code=lot_code,
            )
        )
    checks = [
        _check(
            "hashes",
            "คำนวณแฮช CBV 2.0 ของทุกเหตุการณ์ใหม่",
            "Recomputed every CBV 2.0 event hash",
            findings,
            events=len(items),
        ),
        _check(
            "anchors",
            "ตรวจหลักฐาน Merkle และการบันทึกบนบล็อกเชน",
            "Checked Merkle proofs and on-chain anchors",
            findings,
        ),
        _check(
            "prev_links",
            "ตรวจห่วงโซ่แฮชของทุกล็อต",
            "Checked every lot's hash chain",
            findings,
            lots=sorted(lots),
        ),
        _check("mass_balance", "ตรวจสมดุลปริมาณ", "Checked mass balance", findings),
        _check("yield", "ตรวจผลผลิตต่อไร่", "Checked plausible yield per rai", findings),
        _check(
            "certifications",
            f"ใบรับรองที่ใช้ได้ {n_valid} ฉบับ",
            f"{n_valid} valid certification(s)",
            findings,
            valid=n_valid,
        ),
    ]
    return Verdict.of(lot_code, findings, checks)


def _check_anchor(
    anchor: Any,
    event_hash_hex: str,
    event_ref: str,
    registry: TraceRegistry | None,
    head: int,
    confirmations: int,
    root_status: dict[str, bool],
) -> list[Finding]:
    if not isinstance(anchor, Mapping):
        return [
            Finding(
                "not_anchored",
                Severity.WARNING,
                f"เหตุการณ์ {event_ref} ยังไม่ได้บันทึกลงบล็อกเชน (รอคิว)",
                f"Event {event_ref} is not anchored on the blockchain yet",
                event_id=event_ref,
            )
        ]
    try:
        root = str(anchor["root"])
        proof = [_b(p) for p in anchor["proof"]]
        block_number = int(anchor["block_number"])
        block_hash = str(anchor["block_hash"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"anchor of event {event_ref} is malformed: {exc}") from exc
    if not verify_proof(_b(event_hash_hex), proof, _b(root)):
        return [
            Finding(
                "merkle_proof",
                Severity.ERROR,
                f"หลักฐาน Merkle ของเหตุการณ์ {event_ref} ไม่นำไปสู่รากที่บันทึกบนเชน",
                f"The Merkle proof of event {event_ref} does not lead to its anchored root",
                event_id=event_ref,
                detail={"root": root},
            )
        ]
    if registry is None:
        return [
            Finding(
                "chain_not_checked",
                Severity.ERROR,
                "ไม่ได้ตรวจกับบล็อกเชน",
                "Not checked against the chain",
                event_id=event_ref,
            )
        ]
    try:
        if root not in root_status:
            canonical = registry.block_hash(block_number)
            root_status[root] = registry.anchored_at(_b(root)) > 0 and canonical == block_hash
        on_chain = root_status[root] and registry.verify_event(_b(event_hash_hex), proof, _b(root))
    except ChainError as exc:
        return [
            Finding(
                "chain_unavailable",
                Severity.ERROR,
                f"ติดต่อบล็อกเชนไม่ได้: {exc}",
                f"Chain unreachable: {exc}",
                event_id=event_ref,
            )
        ]
    if not on_chain:
        return [
            Finding(
                "anchor_missing",
                Severity.ERROR,
                f"ไม่พบการบันทึกของเหตุการณ์ {event_ref} บนบล็อกเชน (block {block_number})",
                f"Event {event_ref} is not anchored on chain as claimed (block {block_number})",
                event_id=event_ref,
                detail={"root": root, "block_number": block_number},
            )
        ]
    if head - block_number < confirmations:
        return [
            Finding(
                "unconfirmed",
                Severity.WARNING,
                f"เหตุการณ์ {event_ref} บันทึกแล้วแต่ยังยืนยันไม่ครบ {confirmations} บล็อก",
                f"Event {event_ref} is anchored but has fewer than {confirmations} confirmations",
                event_id=event_ref,
            )
        ]
    return []


def _check_certifications(
    bundle: Mapping[str, Any], entries: list[LedgerEntry], registry: TraceRegistry | None
) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    certs, revocations = certifications_and_revocations(entries)
    signed = {
        str(c.get("id", "")).lower(): c
        for c in bundle.get("certifications", []) or []
        if isinstance(c, Mapping)
    }
    valid = 0
    for cert in certs:
        problem = _certification_problem(cert, signed.get(cert.cert_id.lower()), registry)
        if cert.cert_id in revocations:
            problem = problem or ("certification_revoked", "ใบรับรองถูกเพิกถอนแล้ว", "certification was revoked")
        if problem:
            code, th, en = problem
            findings.append(
                Finding(
                    code,
                    Severity.ERROR,
                    f"ใบรับรอง {cert.standard} ของล็อต {cert.lot_code}: {th}",
                    f"Certification {cert.standard} of lot {cert.lot_code}: {en}",
                    event_id=str(cert.event_id),
                    lot_code=cert.lot_code,
                    detail={"cert_id": cert.cert_id},
                )
            )
        else:
            valid += 1
    return findings, valid


def _certification_problem(
    cert: Certification, signed: Mapping[str, Any] | None, registry: TraceRegistry | None
) -> tuple[str, str, str] | None:
    if registry is None:
        return ("certification_unchecked", "ไม่ได้ตรวจกับบล็อกเชน", "not checked against the chain")
    data = CertificationData(
        lot_code=cert.lot_code,
        certificate_hash=_b(cert.certificate_hash),
        authority_code=cert.authority,
        officer=cert.officer,
        expires=cert.expires,
        nonce=cert.nonce,
        deadline=cert.deadline,
    )
    digest = "0x" + certification_digest(data, registry.chain_id, registry.address).hex()
    if digest != cert.cert_id.lower():
        return ("certification_digest", "ข้อมูลที่ลงนามไม่ตรงกับรหัสใบรับรอง", "signed data does not match its id")
    if signed is not None and str(signed.get("signature", "")).lower() != cert.signature.lower():
        return ("certification_signature", "ลายมือชื่อไม่ตรงกัน", "signature differs from the event's")
    try:
        signer = recover_signer(data, _b(cert.signature), registry.chain_id, registry.address)
    except (ValueError, TypeError):
        signer = ""
    if signer.lower() != cert.officer.lower():
        return (
            "certification_signature",
            "ลายมือชื่อไม่ใช่ของเจ้าหน้าที่ผู้ออกใบรับรอง",
            "signature is not the issuing officer's",
        )
    try:
        if not registry.is_valid(_b(cert.cert_id)):
            return (
                "certification_invalid",
                "บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้ (ถูกเพิกถอน หมดอายุ หรือเจ้าหน้าที่ไม่มีสิทธิ์ ณ เวลาที่ออก)",
                "the chain says it is not valid (revoked, expired, or officer not valid when issued)",
            )
    except ChainError as exc:
        return ("chain_unavailable", f"ติดต่อบล็อกเชนไม่ได้: {exc}", f"chain unreachable: {exc}")
    return None
