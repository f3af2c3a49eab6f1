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
  it is valid (signer an officer of that authority when issued, not revoked, not expired: when it is not, the
  contract's record says which, so a revoked, an expired and an otherwise invalid certification each have
  their own code); its authority is the authority of every origin plot of its lot; an officer added shortly
  after the authority's admin changed is reported as a warning. An expired certification is a warning (the
  lot is no longer certified; nothing in its record is false), every other problem an error.

The verdict carries the evidence of every check (``domain.evidence``): per event its hashes, links and
anchor (with the block time the contract recorded), per movement of kilograms the balance before and after,
per harvest its yield per rai, per certification its signer and status; all from answers already fetched for
the checks (one ``anchoredAt`` per root, one receipt per anchoring transaction, one ``certificationOf`` and
one ``isValid`` per certification), so the evidence costs no request of its own but ``certificationOf``.
``docs/verification.md`` documents it field by field.

The chain is asked in JSON-RPC batches (issue 9): the bundle is first read and checked locally (hashes,
events, the lineage), then every chain read the judgement needs (distinct transactions, blocks and roots, each
event's ``verifyEvent``, each certification's record and validity) is sent in batches of up to
``TraceRegistry.batch_size`` calls, then the judgement runs in the bundle's order on the answers, so the
verdict is the one the one-call-at-a-time verifier gave and its round trips grow with batches, not events. A
read that fails (the node went away, a receipt it does not know) fails only what depended on it, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from pydantic import ValidationError

from traceability.chain.eip712 import CertificationData, authority_id, certification_digest, recover_signer
from traceability.chain.registry import AnchorReceipt, ChainRead, OfficerStatus, TraceRegistry
from traceability.domain.bundle import BundleAnchor, BundleCertification, BundleEvent, ProofBundle
from traceability.domain.epcis import from_epcis
from traceability.domain.events import Certification, Event, Planting, Revocation, lots_touched
from traceability.domain.evidence import (
    AnchorEvidence,
    CertificationEvidence,
    CertStatus,
    EventEvidence,
    Evidence,
    PrevLink,
    RegistryRef,
    from_unix,
)
from traceability.domain.findings import Check, Code, Finding, Severity, Verdict, check_result
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.ids import from_hex
from traceability.domain.lineage import (
    LedgerEntry,
    ancestry,
    chain_links,
    created_lots,
    event_name,
    mass_balance,
    plausible_yield,
)
from traceability.domain.merkle import verify_proof
from traceability.domain.risk import LotRisk, Signal, exact
from traceability.errors import ChainError, InvalidInput
from traceability.services.risk import bundle_risk

THAI_TIME = timezone(timedelta(hours=7), "ICT")
"""Days in the reasons' text are Thai calendar days (the lots are Thai): the Buddhist era in Thai."""

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


class _Answers:
    """The chain's answers, fetched ahead in JSON-RPC batches (``TraceRegistry.read_many``) so a lineage
    costs a few round trips however many events it has. Asking for a read that was not fetched ahead sends it
    on its own (correct, only slower). A read whose request failed raises its ChainError each time it is
    asked, as the single call did."""

    def __init__(self, registry: TraceRegistry) -> None:
        self.registry = registry
        self.known: dict[Hashable, Any] = {}

    def fetch(self, reads: Iterable[ChainRead]) -> None:
        wanted = [r for r in reads if r.key not in self.known]
        if wanted:
            self.known.update(self.registry.read_many(wanted))

    def __call__(self, read: ChainRead) -> Any:
        if read.key not in self.known:
            self.fetch([read])
        answer = self.known[read.key]
        if isinstance(answer, ChainError):
            raise answer
        return answer


@dataclass
class _ChainCache:
    """Chain answers a bundle needs more than once (one root serves a whole batch), and the batched answers
    they are judged from (None without a registry)."""

    head: int = 0
    roots: dict[str, bool] = field(default_factory=dict)
    anchored_at: dict[str, int] = field(default_factory=dict)
    transactions: dict[tuple[str, str], AnchorReceipt | None] = field(default_factory=dict)
    ask: _Answers | None = None


@dataclass
class _Local:
    """One bundle event as read locally, before the chain is asked anything: its recomputed hash and the
    event, or why it could not be read."""

    ref: str
    item: BundleEvent
    recomputed: str | None
    event: Event | None
    error: Exception | None = None


@dataclass
class _Read:
    """One bundle event as read: claimed and recomputed hash, the event (None if unreadable), its anchor."""

    ref: str
    claimed: str
    recomputed: str | None
    event: Event | None
    anchor: AnchorEvidence | None
    kind: str | None


def _trusted(registry: TraceRegistry | None) -> RegistryRef:
    if registry is None:
        return RegistryRef(None, None)
    try:
        chain_id: int | None = registry.chain_id
    except ChainError:
        chain_id = None
    return RegistryRef(chain_id, registry.address.lower())


def verify_bundle(
    bundle: ProofBundle | Mapping[str, Any],
    registry: TraceRegistry | None,
    *,
    confirmations: int = 0,
    yield_tolerance: Decimal = Decimal("1.5"),
    admin_change_window_s: int = ADMIN_CHANGE_WINDOW_S,
    now: datetime | None = None,
    risk: LotRisk | None = None,
) -> Verdict:
    """Check a proof bundle against ``registry``, the registry the caller trusts (its chain id and address).
    With ``registry`` None the chain checks are reported as not done (failed). ``now`` is the verdict's
    ``checked_at`` (the current time by default). ``risk`` is the lot's origin risk as the ledger's holder
    assessed it (``services.risk.lot_risk``); without it, the origin-risk signals are computed from the
    bundle's own events (``basis: bundle``)."""
    parsed = parse_bundle(bundle)
    lot_code = parsed.lot_code
    checked_at = (now or datetime.now(UTC)).replace(microsecond=0)
    findings: list[Finding] = []

    if registry is not None:
        problem = _registry_problem(parsed, registry)
        if problem is not None:
            summary = check_result(
                Check.REGISTRY, "ตรวจสัญญาอัจฉริยะที่อ้างถึง", "Checked the registry named", [problem]
            )
            return Verdict.of(
                lot_code, [problem], [summary], registry=_trusted(registry), checked_at=checked_at
            )

    # 1. Everything that needs no chain: hashes, events, the lineage.
    local = [_read_local(n, item) for n, item in enumerate(parsed.events)]
    entries = [LedgerEntry(r.recomputed, r.event) for r in local if r.event is not None and r.recomputed]
    lineage_lots = ancestry(lot_code, entries)
    lineage = [e for e in entries if set(lots_touched(e.event)) & lineage_lots]
    # 2. Every chain read those need, in a few batched round trips.
    cache = _ChainCache()
    if registry is not None:
        cache.ask = _prefetch(registry, local, lineage)
        try:
            cache.head = cache.ask(registry.read_head())
        except ChainError:
            cache.head = 0
    # 3. Judge, in the bundle's order, with the answers.
    entries = []
    reads: list[_Read] = []
    for r in local:
        item, event_ref, recomputed, event = r.item, r.ref, r.recomputed, r.event
        if event is None:
            # An altered body may no longer even be an event this service emits: that is a finding about
            # this event, not a reason to stop checking the others.
            findings.append(
                Finding(
                    Code.EVENT_UNREADABLE,
                    Severity.ERROR,
                    f"บันทึก {event_ref} ถูกแก้ไขจนอ่านไม่ได้แล้ว จึงเชื่อถือไม่ได้",
                    f"The record {event_ref} has been altered so that it can no longer be read, so it cannot "
                    f"be trusted ({str(r.error)[:200]})",
                    event_id=event_ref,
                )
            )
            kind = str(item.epcis.get("tt:kind", "")).rsplit("#", 1)[-1] or None
            reads.append(_Read(event_ref, item.hash, recomputed, None, _unchecked(item.anchor), kind))
            continue
        assert recomputed is not None
        if recomputed != item.hash:
            name_th, name_en = event_name(event)
            findings.append(
                Finding(
                    Code.HASH_MISMATCH,
                    Severity.ERROR,
                    f"บันทึก{name_th} {event_ref} ถูกแก้ไขหลังจากถูกผนึกไว้: ลายนิ้วมือดิจิทัล (แฮช) ที่คำนวณจากข้อมูล"
                    "ตอนนี้ไม่ตรงกับที่บันทึกไว้",
                    f"The {name_en} record {event_ref} has been changed since it was sealed: the digital "
                    "fingerprint (hash) of what it says now differs from the one recorded",
                    event_id=event_ref,
                    detail={"recorded": item.hash, "recomputed": recomputed},
                )
            )
        entries.append(LedgerEntry(recomputed, event))
        anchor_findings, anchor = _check_anchor(
            item.anchor, recomputed, event_ref, registry, confirmations, cache
        )
        findings += anchor_findings
        reads.append(_Read(event_ref, item.hash, recomputed, event, anchor, event.kind))

    lots = ancestry(lot_code, entries)
    if not any(lot_code in lots_touched(e.event) for e in entries):
        findings.append(
            Finding(
                Code.LOT_MISSING,
                Severity.ERROR,
                f"ไม่มีบันทึกใดในหลักฐานที่เป็นของล็อต {lot_code}",
                f"No record in the bundle is about lot {lot_code}",
                lot_code=lot_code,
            )
        )
    in_lineage = [e for e in entries if set(lots_touched(e.event)) & lots]
    for e in entries:
        if not set(lots_touched(e.event)) & lots:
            about = ", ".join(lots_touched(e.event))
            findings.append(
                Finding(
                    Code.EVENT_OUTSIDE_LINEAGE,
                    Severity.ERROR,
                    f"บันทึก {e.event.event_id} เป็นของล็อต {about} ซึ่งไม่ได้อยู่ในที่มาของล็อต {lot_code} "
                    "จึงไม่ควรอยู่ในหลักฐานนี้",
                    f"The record {e.event.event_id} is about lot {about}, which is not part of where lot "
                    f"{lot_code} came from, so it does not belong in this proof",
                    event_id=str(e.event.event_id),
                )
            )
    links = chain_links(in_lineage, lots)
    moved = mass_balance(in_lineage, lots)
    yields = plausible_yield(in_lineage, yield_tolerance)
    findings += links.findings + moved.findings + yields.findings
    certified = _check_certifications(parsed, in_lineage, registry, admin_change_window_s, cache.ask)
    findings += certified.findings
    n_valid = certified.valid
    if n_valid == 0 and not any(f.severity is Severity.ERROR for f in certified.findings):
        findings.append(
            Finding(
                Code.NOT_CERTIFIED,
                Severity.WARNING,
                f"ล็อต {lot_code} ยังไม่มีใบรับรองจาก อปท. ที่ใช้ได้ในตอนนี้",
                f"Lot {lot_code} has no certification by a local authority (อปท.) that is valid now",
                lot_code=lot_code,
            )
        )
    if risk is None:
        risk = bundle_risk(in_lineage, lot_code, sorted(lots))
    findings += [risk_finding(signal, lot_code) for signal in risk.signals]
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
        check_result(
            Check.ORIGIN_RISK,
            f"ตรวจสัญญาณการสวมสิทธิ์ คะแนนความเสี่ยง {risk.score}/100"
            + (" ไม่พบความผิดปกติ" if not risk.signals else ""),
            f"Checked the origin-risk signals: risk score {risk.score}/100"
            + (", no anomalies found" if not risk.signals else ""),
            findings,
            score=risk.score,
            level=risk.level.value,
            basis=risk.basis,
        ),
    ]
    evidence = Evidence(
        events=_event_evidence(reads, links.evidence, lots),
        mass_balance=tuple(moved.evidence),
        yields=tuple(yields.evidence),
        certifications=tuple(certified.evidence),
    )
    return Verdict.of(
        lot_code,
        findings,
        checks,
        evidence=evidence,
        registry=_trusted(registry),
        checked_at=checked_at,
        risk=risk,
    )


def _read_local(n: int, item: BundleEvent) -> _Local:
    """Hash and read one bundle event (no chain)."""
    body = item.epcis
    event_ref = str(body.get("eventID", f"#{n}")).removeprefix("urn:uuid:")
    recomputed: str | None = None
    try:
        recomputed = hash_hex(event_hash(body))
        return _Local(event_ref, item, recomputed, from_epcis(body))
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        return _Local(event_ref, item, recomputed, None, exc)


def _prefetch(registry: TraceRegistry, local: list[_Local], lineage: list[LedgerEntry]) -> _Answers:
    """Fetch every chain read the judgement will ask for, in batches: the head; per distinct anchoring
    transaction its receipt, per distinct block its hash, per distinct root ``anchoredAt``; per event whose
    Merkle proof holds ``verifyEvent``; per certification of the lineage its record, ``isValid``, its
    authority's admin change and its officer's status; then, for certifications the contract calls invalid,
    what explains why. A read the judgement turns out not to need costs no round trip of its own."""
    ask = _Answers(registry)
    reads: list[ChainRead] = [registry.read_head()]
    for r in local:
        anchor = r.item.anchor
        if r.event is None or r.recomputed is None or anchor is None:
            continue
        try:
            proof = [from_hex(p) for p in anchor.proof]
            if not verify_proof(from_hex(r.recomputed), proof, from_hex(anchor.root)):
                continue
            reads += [
                registry.read_anchor_in_transaction(anchor.tx_hash, anchor.root),
                registry.read_block_hash(anchor.block_number),
                registry.read_anchored_at(anchor.root),
                registry.read_verify_event(from_hex(r.recomputed), proof, from_hex(anchor.root)),
            ]
        except ValueError:
            continue  # malformed: the judgement reports it without asking the chain
    certs = [e.event for e in lineage if isinstance(e.event, Certification)]
    for cert in certs:
        try:
            authority = authority_id(cert.authority)
            reads += [
                registry.read_certification_of(cert.cert_id),
                registry.read_is_valid(cert.cert_id),
                registry.read_authority_admin_since(authority),
                registry.read_authority_added_at(authority),
                registry.read_officer_status(authority, cert.officer),
            ]
        except ValueError:
            continue
    ask.fetch(reads)
    ask.fetch(_why_reads(registry, certs, ask))
    return ask


def _why_reads(registry: TraceRegistry, certs: list[Certification], ask: _Answers) -> list[ChainRead]:
    """The reads :func:`_why_invalid` makes for the certifications the contract said are not valid."""
    reads: list[ChainRead] = []
    for cert in certs:
        try:
            if ask(registry.read_is_valid(cert.cert_id)):
                continue
            record = ask(registry.read_certification_of(cert.cert_id))
        except (ChainError, ValueError):
            continue
        if record is None:
            continue
        reads.append(
            registry.read_is_officer_at(record["authority"], record["officer"], int(record["issued_at"]))
        )
        if record["revoked_at"] and record["revoked_by"] is not None:
            reads.append(registry.read_officer_status(record["authority"], record["revoked_by"]))
    return reads


def _event_evidence(reads: list[_Read], links: list[PrevLink], lots: set[str]) -> tuple[EventEvidence, ...]:
    by_event: dict[str, list[PrevLink]] = defaultdict(list)
    for link in links:
        by_event[link.event_id].append(link)
    out = []
    for r in reads:
        touched = lots_touched(r.event) if r.event is not None else ()
        out.append(
            EventEvidence(
                event_id=str(r.event.event_id) if r.event is not None else r.ref,
                kind=r.kind,
                lots=touched,
                event_time=r.event.event_time if r.event is not None else None,
                hash=r.claimed,
                recomputed=r.recomputed,
                prev=tuple(by_event.get(str(r.event.event_id), ())) if r.event is not None else (),
                anchor=r.anchor,
                in_lineage=bool(set(touched) & lots),
            )
        )
    return tuple(out)


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
                f"หลักฐานนี้อ้างถึงทะเบียน {bundle.contract} บนเชน {bundle.chain_id} ซึ่งไม่ใช่ทะเบียนที่เชื่อถือ "
                f"({registry.address} บนเชน {chain_id}) ใครก็ตั้งทะเบียนของตนเองได้ บันทึกในทะเบียนอื่นจึงพิสูจน์อะไรไม่ได้",
                f"The bundle names registry {bundle.contract} on chain {bundle.chain_id}, not the trusted "
                f"registry {registry.address} on chain {chain_id}; anyone can set up a registry of their "
                "own, so records in another one prove nothing",
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
            f"ติดต่อบล็อกเชนไม่ได้ จึงยังตรวจไม่ได้: {exc}",
            f"The blockchain could not be reached, so nothing could be checked: {exc}",
        )
    return None


def _unchecked(anchor: BundleAnchor | None, merkle_ok: bool = False) -> AnchorEvidence | None:
    if anchor is None:
        return None
    return AnchorEvidence(
        root=anchor.root,
        proof=tuple(anchor.proof),
        tx_hash=anchor.tx_hash,
        block_number=anchor.block_number,
        block_hash=anchor.block_hash,
        merkle_ok=merkle_ok,
    )


def _check_anchor(
    anchor: BundleAnchor | None,
    event_hash_hex: str,
    event_ref: str,
    registry: TraceRegistry | None,
    confirmations: int,
    cache: _ChainCache,
) -> tuple[list[Finding], AnchorEvidence | None]:
    """The anchor's findings and its evidence (what was checked, with the chain's answers)."""

    def finding(code: Code, severity: Severity, th: str, en: str, **detail: Any) -> list[Finding]:
        return [Finding(code, severity, th, en, event_id=event_ref, detail=detail)]

    if anchor is None:
        return finding(
            Code.NOT_ANCHORED,
            Severity.WARNING,
            f"บันทึก {event_ref} ยังไม่ได้ผนึกลงบล็อกเชน (อยู่ในคิว มักใช้เวลาไม่กี่นาที)",
            f"The record {event_ref} is not sealed on the blockchain yet (it is queued; this usually takes "
            "a few minutes)",
        ), None
    proof = [from_hex(p) for p in anchor.proof]
    if not verify_proof(from_hex(event_hash_hex), proof, from_hex(anchor.root)):
        return finding(
            Code.MERKLE_PROOF,
            Severity.ERROR,
            f"หลักฐาน Merkle ของบันทึก {event_ref} ไม่นำไปสู่ชุดที่ผนึกไว้บนบล็อกเชน (ราก {anchor.root}) ตามที่อ้าง",
            f"The Merkle proof of record {event_ref} does not lead to the sealed batch it claims "
            f"(root {anchor.root})",
            root=anchor.root,
        ), _unchecked(anchor)
    if registry is None:
        return finding(
            Code.CHAIN_NOT_CHECKED,
            Severity.ERROR,
            f"บันทึก {event_ref} ไม่ได้ตรวจกับบล็อกเชน (ไม่ได้ระบุบล็อกเชนที่จะตรวจ)",
            f"The record {event_ref} was not checked against the blockchain (no blockchain was given)",
        ), _unchecked(anchor, merkle_ok=True)
    seen = _unchecked(anchor, merkle_ok=True)
    assert seen is not None
    ask = cache.ask or _Answers(registry)
    try:
        key = (anchor.tx_hash, anchor.root)
        if key not in cache.transactions:
            cache.transactions[key] = ask(registry.read_anchor_in_transaction(anchor.tx_hash, anchor.root))
        emitted = cache.transactions[key]
        if emitted is None or (emitted.block_number, emitted.block_hash.lower()) != (
            anchor.block_number,
            anchor.block_hash,
        ):
            return finding(
                Code.ANCHOR_BLOCK_MISMATCH,
                Severity.ERROR,
                f"ธุรกรรม {anchor.tx_hash} ไม่ได้ผนึกชุด {anchor.root} ไว้ในบล็อก {anchor.block_number} "
                "ตามที่หลักฐานอ้าง",
                f"Transaction {anchor.tx_hash} did not seal batch {anchor.root} in block "
                f"{anchor.block_number} as the bundle claims",
                root=anchor.root,
                tx_hash=anchor.tx_hash,
                block_number=anchor.block_number,
            ), _with(seen, cache, anchor.root, included=False)
        if anchor.root not in cache.roots:
            canonical = ask(registry.read_block_hash(anchor.block_number))
            cache.anchored_at[anchor.root] = ask(registry.read_anchored_at(anchor.root))
            cache.roots[anchor.root] = cache.anchored_at[anchor.root] > 0 and canonical == anchor.block_hash
        included = cache.roots[anchor.root] and bool(
            ask(registry.read_verify_event(from_hex(event_hash_hex), proof, from_hex(anchor.root)))
        )
    except ChainError as exc:
        return finding(
            Code.CHAIN_UNAVAILABLE,
            Severity.ERROR,
            f"ติดต่อบล็อกเชนไม่ได้ จึงยังตรวจบันทึก {event_ref} ไม่ได้: {exc}",
            f"The blockchain could not be reached, so the record {event_ref} could not be checked: {exc}",
        ), _with(seen, cache, anchor.root)
    seen = _with(seen, cache, anchor.root, included=included)
    if not included:
        return finding(
            Code.ANCHOR_MISSING,
            Severity.ERROR,
            f"ไม่พบบันทึก {event_ref} บนบล็อกเชนตามที่อ้าง (บล็อก {anchor.block_number})",
            f"The record {event_ref} is not on the blockchain as the bundle claims (block "
            f"{anchor.block_number})",
            root=anchor.root,
            block_number=anchor.block_number,
        ), seen
    if cache.head - anchor.block_number < confirmations:
        return finding(
            Code.UNCONFIRMED,
            Severity.WARNING,
            f"บันทึก {event_ref} ผนึกบนบล็อกเชนแล้ว แต่ยังมีบล็อกต่อท้ายไม่ครบ {confirmations} บล็อก "
            "โปรดตรวจอีกครั้งในอีกไม่กี่นาที",
            f"The record {event_ref} is sealed on the blockchain, but fewer than {confirmations} blocks have "
            "followed it yet; check again in a few minutes",
        ), seen
    return [], seen


def _with(
    seen: AnchorEvidence, cache: _ChainCache, root: str, *, included: bool | None = None
) -> AnchorEvidence:
    """``seen`` with what the chain said: the block time the contract recorded for ``root`` (if asked), the
    confirmations, and whether the event is included."""
    at = cache.anchored_at.get(root, 0)
    depth = cache.head - seen.block_number if cache.head else None
    return replace(seen, block_time=from_unix(at), included=included, confirmations=depth)


def _origin_authorities(lot_code: str, entries: list[LedgerEntry]) -> set[str | None]:
    """The authorities (อปท.) of the plots every lot in ``lot_code``'s ancestry was planted on."""
    lots = ancestry(lot_code, entries)
    return {
        e.event.authority
        for e in entries
        if isinstance(e.event, Planting) and set(created_lots(e.event)) & lots
    }


@dataclass
class _Certified:
    findings: list[Finding] = field(default_factory=list)
    evidence: list[CertificationEvidence] = field(default_factory=list)
    valid: int = 0


@dataclass
class _CertCheck:
    """What checking one certification against the chain found: a problem (code, Thai, English) or None,
    its status, the key its signature recovers to, and the chain's record of it."""

    problem: tuple[Code, str, str] | None
    status: CertStatus
    signer: str | None = None
    record: dict[str, Any] | None = None


def _check_certifications(
    bundle: ProofBundle,
    entries: list[LedgerEntry],
    registry: TraceRegistry | None,
    admin_change_window_s: int,
    ask: _Answers | None = None,
) -> _Certified:
    out = _Certified()
    certs = [e.event for e in entries if isinstance(e.event, Certification)]
    revocations = {e.event.cert_id: e.event for e in entries if isinstance(e.event, Revocation)}
    signed = {c.id: c for c in bundle.certifications}
    if registry is not None and ask is None:
        ask = _Answers(registry)
    for cert in certs:
        checked = _certification_check(cert, signed.get(cert.cert_id), registry, ask)
        if checked.problem is None:
            origins = _origin_authorities(cert.lot_code, entries)
            if origins != {cert.authority}:
                named = ", ".join(sorted(a or "?" for a in origins)) or "?"
                checked.status = CertStatus.INVALID
                checked.problem = (
                    Code.CERTIFICATION_WRONG_AUTHORITY,
                    f"ออกโดย {cert.authority} แต่แปลงที่ปลูกอยู่ในเขตของ {named} ซึ่งเป็นผู้มีหน้าที่รับรองแปลงนั้น",
                    f"it was issued by {cert.authority}, but the fields it grew on belong to {named}, the "
                    "authority that can vouch for them",
                )
        if checked.problem is None and cert.cert_id in revocations:
            checked.status = CertStatus.REVOKED
            checked.problem = (
                Code.CERTIFICATION_REVOKED,
                "ใบรับรองถูกเพิกถอนแล้ว",
                "it has been withdrawn (revoked)",
            )
        record = checked.record or {}
        out.evidence.append(
            CertificationEvidence(
                cert_id=cert.cert_id,
                event_id=str(cert.event_id),
                lot_code=cert.lot_code,
                standard=cert.standard,
                authority=cert.authority,
                officer=cert.officer,
                recovered_signer=checked.signer,
                issued=from_unix(int(record.get("issued_at", 0))),
                expires=from_unix(cert.expires),
                tx_hash=_tx_hash(signed.get(cert.cert_id)),
                status=checked.status,
                revoked=from_unix(int(record.get("revoked_at", 0))),
            )
        )
        if checked.problem is not None:
            code, th, en = checked.problem
            out.findings.append(
                Finding(
                    code,
                    Severity.WARNING if code is Code.CERTIFICATION_EXPIRED else Severity.ERROR,
                    f"ใบรับรอง {cert.standard} ของล็อต {cert.lot_code}: {th}",
                    f"Certification {cert.standard} of lot {cert.lot_code}: {en}",
                    event_id=str(cert.event_id),
                    lot_code=cert.lot_code,
                    detail={"cert_id": cert.cert_id},
                )
            )
            continue
        out.valid += 1
        assert registry is not None and ask is not None  # valid only when checked against the chain
        warning = _admin_change_warning(cert, registry, admin_change_window_s, ask)
        if warning is not None:
            out.findings.append(warning)
    return out


def _tx_hash(signed: BundleCertification | None) -> str | None:
    return signed.tx_hash if signed is not None else None


def _admin_change_warning(
    cert: Certification, registry: TraceRegistry, window_s: int, ask: _Answers
) -> Finding | None:
    authority = authority_id(cert.authority)
    try:
        # TraceRegistry.authority_admin_changed_at, from the batched answers
        since = int(ask(registry.read_authority_admin_since(authority)))
        if since <= int(ask(registry.read_authority_added_at(authority))):
            return None
        changed_at = since
        added_at = ask(registry.read_officer_status(authority, cert.officer)).added_at
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


def _certification_check(
    cert: Certification,
    signed: BundleCertification | None,
    registry: TraceRegistry | None,
    ask: _Answers | None,
) -> _CertCheck:
    if registry is None or ask is None:
        return _CertCheck(
            (
                Code.CERTIFICATION_UNCHECKED,
                "ไม่ได้ตรวจกับบล็อกเชน (ไม่ได้ระบุบล็อกเชนที่จะตรวจ)",
                "not checked against the blockchain (no blockchain was given)",
            ),
            CertStatus.UNCHECKED,
        )
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
    try:
        signer: str | None = recover_signer(
            data, from_hex(cert.signature), registry.chain_id, registry.address
        ).lower()
    except (ValueError, TypeError):
        signer = None
    if digest != cert.cert_id:
        return _CertCheck(
            (
                Code.CERTIFICATION_DIGEST,
                "รายละเอียดที่ลงนามไม่ตรงกับรหัสใบรับรอง (ถูกแก้ไขหลังลงนาม)",
                "the signed details do not match its id (they were changed after signing)",
            ),
            CertStatus.INVALID,
            signer,
        )
    if signed is not None and signed.signature != cert.signature:
        return _CertCheck(
            (
                Code.CERTIFICATION_SIGNATURE,
                "ลายมือชื่อในหลักฐานไม่ตรงกับที่บันทึกไว้",
                "the signature in the bundle differs from the recorded one",
            ),
            CertStatus.INVALID,
            signer,
        )
    if signer != cert.officer:
        return _CertCheck(
            (
                Code.CERTIFICATION_SIGNATURE,
                "ลายมือชื่อไม่ใช่ของเจ้าหน้าที่ผู้ออกใบรับรอง",
                "the signature is not the issuing officer's",
            ),
            CertStatus.INVALID,
            signer,
        )
    try:
        record = ask(registry.read_certification_of(cert.cert_id))
        if ask(registry.read_is_valid(cert.cert_id)):
            return _CertCheck(None, CertStatus.VALID, signer, record)
        return _why_invalid(cert, record, registry, signer, ask)
    except ChainError as exc:
        return _CertCheck(
            (
                Code.CERTIFICATION_UNCHECKED,
                f"ติดต่อบล็อกเชนไม่ได้ จึงยังตรวจไม่ได้: {exc}",
                f"the blockchain could not be reached, so it could not be checked: {exc}",
            ),
            CertStatus.UNCHECKED,
            signer,
        )


def _why_invalid(
    cert: Certification,
    record: dict[str, Any] | None,
    registry: TraceRegistry,
    signer: str | None,
    ask: _Answers,
) -> _CertCheck:
    """The contract's ``isValid`` said no: its record says why, in the contract's own order (a revocation that
    stands; an officer not valid when it was issued; else it has expired)."""
    if record is None:
        return _CertCheck(
            (
                Code.CERTIFICATION_INVALID,
                "บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้: ไม่มีบันทึกใบรับรองนี้",
                "the blockchain says it is not valid: it has no record of it",
            ),
            CertStatus.INVALID,
            signer,
        )
    if record["revoked_at"]:
        stands = record["revoked_by_admin"] or _officer_revocation_stands(record, registry, ask)
        if stands:
            day_th, day_en = _day(int(record["revoked_at"]))
            return _CertCheck(
                (
                    Code.CERTIFICATION_REVOKED,
                    f"บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้: ถูกเพิกถอนแล้วเมื่อ {day_th}",
                    f"the blockchain says it no longer counts: it was withdrawn (revoked) on {day_en}",
                ),
                CertStatus.REVOKED,
                signer,
                record,
            )
    if not ask(registry.read_is_officer_at(record["authority"], record["officer"], int(record["issued_at"]))):
        return _CertCheck(
            (
                Code.CERTIFICATION_INVALID,
                "บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้: ผู้ลงนามไม่ได้เป็นเจ้าหน้าที่ของ อปท. นี้ในเวลาที่ออกใบรับรอง",
                "the blockchain says it is not valid: the signer was not an officer of this authority "
                "when it was issued",
            ),
            CertStatus.INVALID,
            signer,
            record,
        )
    if cert.expires:
        day_th, day_en = _day(cert.expires)
        return _CertCheck(
            (
                Code.CERTIFICATION_EXPIRED,
                f"บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้: หมดอายุแล้วเมื่อ {day_th} ต้องต่ออายุก่อนจึงจะใช้ได้อีก",
                f"the blockchain says it no longer counts: it expired on {day_en} and must be renewed",
            ),
            CertStatus.EXPIRED,
            signer,
            record,
        )
    return _CertCheck(
        (
            Code.CERTIFICATION_INVALID,
            "บล็อกเชนระบุว่าใบรับรองใช้ไม่ได้",
            "the blockchain says it is not valid",
        ),
        CertStatus.INVALID,
        signer,
        record,
    )


def _day(seconds: int) -> tuple[str, str]:
    """A chain time as a Thai calendar day: ``22 พ.ย. 2569`` and ``22 Nov 2026``."""
    day = datetime.fromtimestamp(seconds, THAI_TIME).date()
    return f"{format_date(day, 'd MMM', locale='th')} {day.year + 543}", format_date(
        day, "d MMM y", locale="en"
    )


def _officer_revocation_stands(record: dict[str, Any], registry: TraceRegistry, ask: _Answers) -> bool:
    """A revocation by the issuing officer's key counts only if made before that officer was revoked (from
    then on the key may be a thief's): the contract's ``_revocationStands``."""
    if record["revoked_by"] is None:
        return False
    status: OfficerStatus = ask(registry.read_officer_status(record["authority"], record["revoked_by"]))
    return status.revoked_at == 0 or int(record["revoked_at"]) < status.revoked_at


__all__ = ["ADMIN_CHANGE_WINDOW_S", "parse_bundle", "verify_bundle"]


def risk_finding(signal: Signal, lot_code: str) -> Finding:
    """An origin-risk signal as a verdict's finding: always a warning (the data look wrong; nothing in the
    record is proven false), with the signal's numbers and every lot it names."""
    lot = lot_code if lot_code in signal.lots else (signal.lots[0] if signal.lots else None)
    return Finding(
        Code(signal.code.value),
        Severity.WARNING,
        signal.th,
        signal.en,
        event_id=signal.event_id,
        lot_code=lot,
        detail=exact({**signal.numbers, "lots": list(signal.lots), "weight": round(signal.weight, 3)}),
    )
