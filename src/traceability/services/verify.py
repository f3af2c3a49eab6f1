"""Verify a lot: one library for the API, the pages and the offline CLI.

The server's own check is ``verify_bundle(build_bundle(...))``: the same code an importer runs on a bundle
they downloaded, trusting nothing but the chain and the registry they pin (chain id and address). Checks:

* registry: the bundle names the trusted registry, and the code there is TraceRegistry's
  (``unknown_registry`` otherwise: a forger can deploy their own registry, anchor forged roots and certify
  with their own "officer");
* per event: the CBV 2.0 hash recomputed from the EPCIS body equals the hash claimed; the Merkle proof leads
  to the batch root; the named transaction emitted ``Anchored(root)`` in the very block named; that block is
  canonical and has the confirmations required; the contract says the event is included (``verifyEvent``);
  every event touches a lot of the lineage (an event copied in from another lot makes the bundle fail);
* per lot: hash-chain links (``prev``), mass balance, plausible yield;
* per certification: it is of a lot of the lineage; the EIP-712 signature is the officer's; the contract says
  it is valid (signer an officer of that authority when issued, not revoked, not expired); its authority is
  the authority of every origin plot of its lot; an officer added shortly after the authority's admin changed
  is reported as a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from traceability.chain.eip712 import CertificationData, authority_id, certification_digest, recover_signer
from traceability.chain.registry import AnchorReceipt, TraceRegistry
from traceability.domain.bundle import BundleAnchor, ProofBundle
from traceability.domain.epcis import from_epcis
from traceability.domain.events import Certification, Planting, Revocation, lots_touched
from traceability.domain.findings import Check, Code, Finding, Severity, Verdict, check_result
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.ids import from_hex
from traceability.domain.lineage import (
    LedgerEntry,
    ancestry,
    check_chain_links,
    check_mass_balance,
    check_yield,
    created_lots,
)
from traceability.domain.merkle import verify_proof
from traceability.errors import ChainError, InvalidInput

ADMIN_CHANGE_WINDOW_S = 14 * 24 * 3600
"""An officer added this soon after the authority's admin changed hands gets a warning: a registrar (or a
stolen registrar key) that moved an authority to an admin of its choosing could add "officers" right away."""


def parse_bundle(bundle: ProofBundle | Mapping[str, Any]) -> ProofBundle:
    """The bundle as the model; InvalidInput (HTTP 422, CLI exit 2) naming what is wrong."""
    if isinstance(bundle, ProofBundle):
        return bundle
    try:
        return ProofBundle.model_validate(dict(bundle))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:10]
        )
        raise InvalidInput(f"not a proof bundle this verifier reads: {problems}") from exc


@dataclass
class _ChainCache:
    """Chain answers a bundle needs more than once (one root serves a whole batch)."""

    head: int = 0
    roots: dict[str, bool] = field(default_factory=dict)
    transactions: dict[tuple[str, str], AnchorReceipt | None] = field(default_factory=dict)


def verify_bundle(
    bundle: ProofBundle | Mapping[str, Any],
    registry: TraceRegistry | None,
    *,
    confirmations: int = 0,
    yield_tolerance: Decimal = Decimal("1.5"),
    admin_change_window_s: int = ADMIN_CHANGE_WINDOW_S,
) -> Verdict:
    """Check a proof bundle against ``registry``, the registry the caller trusts (its chain id and address).
    With ``registry`` None the chain checks are reported as not done (failed)."""
    parsed = parse_bundle(bundle)
    lot_code = parsed.lot_code
    findings: list[Finding] = []

    if registry is not None:
        problem = _registry_problem(parsed, registry)
        if problem is not None:
            summary = check_result(
                Check.REGISTRY, "ตรวจสัญญาอัจฉริยะที่อ้างถึง", "Checked the registry named", [problem]
            )
            return Verdict.of(lot_code, [problem], [summary])

    entries: list[LedgerEntry] = []
    cache = _ChainCache()
    try:
        cache.head = registry.head() if registry is not None else 0
    except ChainError:
        cache.head = 0
    for n, item in enumerate(parsed.events):
        body = item.epcis
        event_ref = str(body.get("eventID", f"#{n}")).removeprefix("urn:uuid:")
        try:
            recomputed = hash_hex(event_hash(body))
            event = from_epcis(body)
        except (ValidationError, ValueError, KeyError, TypeError) as exc:
            # An altered body may no longer even be an event this service emits: that is a finding about
            # this event, not a reason to stop checking the others.
            findings.append(
                Finding(
                    Code.EVENT_UNREADABLE,
                    Severity.ERROR,
                    f"ข้อมูลเหตุการณ์ {event_ref} ถูกแก้ไขจนอ่านไม่ได้",
                    f"Event {event_ref} was altered and can no longer be read: {str(exc)[:200]}",
                    event_id=event_ref,
                )
            )
            continue
        if recomputed != item.hash:
            findings.append(
                Finding(
                    Code.HASH_MISMATCH,
                    Severity.ERROR,
                    f"ข้อมูลเหตุการณ์ {event_ref} ถูกแก้ไข: แฮชที่คำนวณใหม่ไม่ตรงกับที่บันทึกไว้",
                    f"Event {event_ref} was altered: its recomputed hash does not match the recorded one",
                    event_id=event_ref,
                    detail={"recorded": item.hash, "recomputed": recomputed},
                )
            )
        entries.append(LedgerEntry(recomputed, event))
        findings += _check_anchor(item.anchor, recomputed, event_ref, registry, confirmations, cache)

    lots = ancestry(lot_code, entries)
    if not any(lot_code in lots_touched(e.event) for e in entries):
        findings.append(
            Finding(
                Code.LOT_MISSING,
                Severity.ERROR,
                f"ไม่มีเหตุการณ์ของล็อต {lot_code}",
                f"No event touches lot {lot_code}",
                lot_code=lot_code,
            )
        )
    in_lineage = [e for e in entries if set(lots_touched(e.event)) & lots]
    for e in entries:
        if not set(lots_touched(e.event)) & lots:
            findings.append(
                Finding(
                    Code.EVENT_OUTSIDE_LINEAGE,
                    Severity.ERROR,
                    f"เหตุการณ์ {e.event.event_id} ไม่เกี่ยวกับล็อตใดในสายการผลิตของ {lot_code} "
                    f"(ล็อต {', '.join(lots_touched(e.event))})",
                    f"Event {e.event.event_id} touches no lot in the lineage of {lot_code} "
                    f"(it is about {', '.join(lots_touched(e.event))})",
                    event_id=str(e.event.event_id),
                )
            )
    findings += check_chain_links(in_lineage, lots)
    findings += check_mass_balance(in_lineage, lots)
    findings += check_yield(in_lineage, yield_tolerance)
    cert_findings, n_valid = _check_certifications(parsed, in_lineage, registry, admin_change_window_s)
    findings += cert_findings
    if n_valid == 0 and not any(f.severity is Severity.ERROR for f in cert_findings):
        findings.append(
            Finding(
                Code.NOT_CERTIFIED,
                Severity.WARNING,
                "ยังไม่มีใบรับรองจาก อปท. ที่ใช้ได้",
                "No valid certification by a local authority",
                lot_code=lot_code,
            )
        )
    checks = [
        check_result(
            Check.REGISTRY,
            "ตรวจว่าเป็นสัญญาอัจฉริยะ TraceRegistry ที่เชื่อถือ",
            "Checked the bundle names the trusted TraceRegistry",
            findings,
            chain_id=parsed.chain_id,
            contract=parsed.contract,
        ),
        check_result(
            Check.HASHES,
            "คำนวณแฮช CBV 2.0 ของทุกเหตุการณ์ใหม่",
            "Recomputed every CBV 2.0 event hash",
            findings,
            events=len(parsed.events),
        ),
        check_result(
            Check.ANCHORS,
            "ตรวจหลักฐาน Merkle และการบันทึกบนบล็อกเชน",
            "Checked Merkle proofs and on-chain anchors",
            findings,
        ),
        check_result(
            Check.PREV_LINKS,
            "ตรวจห่วงโซ่แฮชของทุกล็อต",
            "Checked every lot's hash chain",
            findings,
            lots=sorted(lots),
        ),
        check_result(Check.MASS_BALANCE, "ตรวจสมดุลปริมาณ", "Checked mass balance", findings),
        check_result(Check.YIELD, "ตรวจผลผลิตต่อไร่", "Checked plausible yield per rai", findings),
        check_result(
            Check.CERTIFICATIONS,
            f"ใบรับรองที่ใช้ได้ {n_valid} ฉบับ",
            f"{n_valid} valid certification(s)",
            findings,
            valid=n_valid,
        ),
    ]
    return Verdict.of(lot_code, findings, checks)


def _registry_problem(bundle: ProofBundle, registry: TraceRegistry) -> Finding | None:
    def unknown(th: str, en: str) -> Finding:
        return Finding(
            Code.UNKNOWN_REGISTRY,
            Severity.ERROR,
            th,
            en,
            detail={
                "bundle": {"chain_id": bundle.chain_id, "contract": bundle.contract},
                "trusted": {"chain_id": registry.chain_id, "contract": registry.address.lower()},
            },
        )

    try:
        chain_id = registry.chain_id
        if bundle.chain_id != chain_id or bundle.contract.lower() != registry.address.lower():
            return unknown(
                f"หลักฐานอ้างถึงทะเบียน {bundle.contract} บนเชน {bundle.chain_id} ซึ่งไม่ใช่ทะเบียนที่เชื่อถือ "
                f"({registry.address} บนเชน {chain_id})",
                f"The bundle names registry {bundle.contract} on chain {bundle.chain_id}, not the trusted "
                f"registry {registry.address} on chain {chain_id}",
            )
        if not registry.is_trace_registry():
            return unknown(
                f"ที่อยู่ {registry.address} ไม่มีโค้ดของ TraceRegistry",
                f"The code at {registry.address} is not TraceRegistry's",
            )
    except ChainError as exc:
        return Finding(
            Code.CHAIN_UNAVAILABLE,
            Severity.ERROR,
            f"ติดต่อบล็อกเชนไม่ได้: {exc}",
            f"Chain unreachable: {exc}",
        )
    return None


def _check_anchor(
    anchor: BundleAnchor | None,
    event_hash_hex: str,
    event_ref: str,
    registry: TraceRegistry | None,
    confirmations: int,
    cache: _ChainCache,
) -> list[Finding]:
    def finding(code: Code, severity: Severity, th: str, en: str, **detail: Any) -> list[Finding]:
        return [Finding(code, severity, th, en, event_id=event_ref, detail=detail)]

    if anchor is None:
        return finding(
            Code.NOT_ANCHORED,
            Severity.WARNING,
            f"เหตุการณ์ {event_ref} ยังไม่ได้บันทึกลงบล็อกเชน (รอคิว)",
            f"Event {event_ref} is not anchored on the blockchain yet",
        )
    proof = [from_hex(p) for p in anchor.proof]
    if not verify_proof(from_hex(event_hash_hex), proof, from_hex(anchor.root)):
        return finding(
            Code.MERKLE_PROOF,
            Severity.ERROR,
            f"หลักฐาน Merkle ของเหตุการณ์ {event_ref} ไม่นำไปสู่รากที่บันทึกบนเชน",
            f"The Merkle proof of event {event_ref} does not lead to its anchored root",
            root=anchor.root,
        )
    if registry is None:
        return finding(
            Code.CHAIN_NOT_CHECKED, Severity.ERROR, "ไม่ได้ตรวจกับบล็อกเชน", "Not checked against the chain"
        )
    try:
        key = (anchor.tx_hash, anchor.root)
        if key not in cache.transactions:
            cache.transactions[key] = registry.anchor_in_transaction(anchor.tx_hash, anchor.root)
        emitted = cache.transactions[key]
        if emitted is None or (emitted.block_number, emitted.block_hash.lower()) != (
            anchor.block_number,
            anchor.block_hash,
        ):
            return finding(
                Code.ANCHOR_BLOCK_MISMATCH,
                Severity.ERROR,
                f"ธุรกรรม {anchor.tx_hash} ไม่ได้บันทึกราก {anchor.root} ไว้ในบล็อก {anchor.block_number} "
                "ตามที่หลักฐานอ้าง",
                f"Transaction {anchor.tx_hash} did not anchor root {anchor.root} in block "
                f"{anchor.block_number} as the bundle claims",
                root=anchor.root,
                tx_hash=anchor.tx_hash,
                block_number=anchor.block_number,
            )
        if anchor.root not in cache.roots:
            canonical = registry.block_hash(anchor.block_number)
            on_chain = registry.anchored_at(anchor.root) > 0
            cache.roots[anchor.root] = on_chain and canonical == anchor.block_hash
        included = cache.roots[anchor.root] and registry.verify_event(
            from_hex(event_hash_hex), proof, from_hex(anchor.root)
        )
    except ChainError as exc:
        return finding(
            Code.CHAIN_UNAVAILABLE, Severity.ERROR, f"ติดต่อบล็อกเชนไม่ได้: {exc}", f"Chain unreachable: {exc}"
        )
    if not included:
        return finding(
            Code.ANCHOR_MISSING,
            Severity.ERROR,
            f"ไม่พบการบันทึกของเหตุการณ์ {event_ref} บนบล็อกเชน (บล็อก {anchor.block_number})",
            f"Event {event_ref} is not anchored on chain as claimed (block {anchor.block_number})",
            root=anchor.root,
            block_number=anchor.block_number,
        )
    if cache.head - anchor.block_number < confirmations:
        return finding(
            Code.UNCONFIRMED,
            Severity.WARNING,
            f"เหตุการณ์ {event_ref} บันทึกแล้วแต่ยังยืนยันไม่ครบ {confirmations} บล็อก",
            f"Event {event_ref} is anchored but has fewer than {confirmations} confirmations",
        )
    return []


def _origin_authorities(lot_code: str, entries: list[LedgerEntry]) -> set[str | None]:
    """The authorities (อปท.) of the plots every lot in ``lot_code``'s ancestry was planted on."""
    lots = ancestry(lot_code, entries)
    return {
        e.event.authority
        for e in entries
        if isinstance(e.event, Planting) and set(created_lots(e.event)) & lots
    }


def _check_certifications(
    bundle: ProofBundle,
    entries: list[LedgerEntry],
    registry: TraceRegistry | None,
    admin_change_window_s: int,
) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    certs = [e.event for e in entries if isinstance(e.event, Certification)]
    revocations = {e.event.cert_id: e.event for e in entries if isinstance(e.event, Revocation)}
    signed = {c.id: c for c in bundle.certifications}
    valid = 0
    for cert in certs:
        problem = _certification_problem(cert, signed.get(cert.cert_id), registry)
        if problem is None:
            origins = _origin_authorities(cert.lot_code, entries)
            if origins != {cert.authority}:
                named = ", ".join(sorted(a or "?" for a in origins)) or "?"
                problem = (
                    Code.CERTIFICATION_WRONG_AUTHORITY,
                    f"ออกโดย {cert.authority} แต่แปลงต้นทางอยู่ในเขตของ {named}",
                    f"issued by {cert.authority}, but the origin plots belong to {named}",
                )
        if problem is None and cert.cert_id in revocations:
            problem = (Code.CERTIFICATION_REVOKED, "ใบรับรองถูกเพิกถอนแล้ว", "the certification was revoked")
        if problem is not None:
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
            continue
        valid += 1
        assert registry is not None  # a certification is valid only when checked against the chain
        warning = _admin_change_warning(cert, registry, admin_change_window_s)
        if warning is not None:
            findings.append(warning)
    return findings, valid


def _admin_change_warning(cert: Certification, registry: TraceRegistry, window_s: int) -> Finding | None:
    try:
        changed_at = registry.authority_admin_changed_at(authority_id(cert.authority))
        if changed_at is None:
            return None
        added_at = registry.officer_status(authority_id(cert.authority), cert.officer).added_at
    except ChainError:
        return None  # the validity check above already spoke to the chain; this warning is best effort
    if not changed_at <= added_at <= changed_at + window_s:
        return None
    days = (added_at - changed_at) / 86400
    return Finding(
        Code.OFFICER_AFTER_ADMIN_CHANGE,
        Severity.WARNING,
        f"ใบรับรอง {cert.standard} ของล็อต {cert.lot_code} ลงนามโดยเจ้าหน้าที่ที่ถูกเพิ่ม {days:.1f} วัน "
        f"หลังจากผู้ดูแลของ {cert.authority} เปลี่ยนมือ ควรยืนยันกับ อปท. โดยตรง",
        f"Certification {cert.standard} of lot {cert.lot_code} is signed by an officer added {days:.1f} days "
        f"after {cert.authority}'s admin changed hands; confirm with the authority directly",
        event_id=str(cert.event_id),
        lot_code=cert.lot_code,
        detail={"cert_id": cert.cert_id, "admin_changed_at": changed_at, "officer_added_at": added_at},
    )


def _certification_problem(
    cert: Certification, signed: Any, registry: TraceRegistry | None
) -> tuple[Code, str, str] | None:
    if registry is None:
        return (Code.CERTIFICATION_UNCHECKED, "ไม่ได้ตรวจกับบล็อกเชน", "not checked against the chain")
    data = CertificationData(
        lot_code=cert.lot_code,
        certificate_hash=from_hex(cert.certificate_hash),
        authority_code=cert.authority,
        officer=cert.officer,
        expires=cert.expires,
        nonce=cert.nonce,
        deadline=cert.deadline,
    )
    digest = "0x" + certification_digest(data, registry.chain_id, registry.address).hex()
    if digest != cert.cert_id:
        return (
            Code.CERTIFICATION_DIGEST,
            "ข้อมูลที่ลงนามไม่ตรงกับรหัสใบรับรอง",
            "the signed data does not match its id",
        )
    if signed is not None and signed.signature != cert.signature:
        return (Code.CERTIFICATION_SIGNATURE, "ลายมือชื่อไม่ตรงกัน", "the signature differs from the event's")
    try:
        signer = recover_signer(data, from_hex(cert.signature), registry.chain_id, registry.address)
    except (ValueError, TypeError):
        signer = ""
    if signer.lower() != cert.officer:
        return (
            Code.CERTIFICATION_SIGNATURE,
            "ลายมือชื่อไม่ใช่ของเจ้าหน้าที่ผู้ออกใบรับรอง",
            "the signature is not the issuing officer's",
        )
    try:
        if not registry.is_valid(from_hex(cert.cert_id)):
            return (
                Code.CERTIFICATION_INVALID,
                "บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้ (ถูกเพิกถอน หมดอายุ หรือเจ้าหน้าที่ไม่มีสิทธิ์ ณ เวลาที่ออก)",
                "the chain says it is not valid (revoked, expired, or officer not valid when issued)",
            )
    except ChainError as exc:
        return (Code.CERTIFICATION_UNCHECKED, f"ติดต่อบล็อกเชนไม่ได้: {exc}", f"chain unreachable: {exc}")
    return None


__all__ = ["ADMIN_CHANGE_WINDOW_S", "parse_bundle", "verify_bundle"]
