"""Verification asks the chain in JSON-RPC batches (issue 9): the round trips to the node stay a small
constant as a lot's lineage grows from a handful of events to hundreds, with the same verdict; a chain that
fails while a bundle is being checked still gives the verdict's ``chain_unavailable`` findings, never a
traceback.

Round trips are counted by the web3 provider the verifying registry talks through: every HTTP request to the
real Anvil node, one per batch or per single call."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from web3 import Web3
from web3.providers.rpc import HTTPProvider

from factories import ID_BASE, common, days_ago, lifecycle, q, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.domain.bundle import ProofBundle
from traceability.domain.events import Grading
from traceability.domain.findings import Code, Severity, Verdict
from traceability.services.anchoring import Anchorer
from traceability.services.bench_verify import scaling
from traceability.services.events import record_event
from traceability.services.proof import build_bundle
from traceability.services.verify import verify_bundle
from traceability.store.database import transaction

ROUND_TRIPS_MAX = 8
"""Today three: the chain id, the registry check (code and EIP-712 domain, one batch), the batch of reads."""


class CountingProvider(HTTPProvider):
    """An HTTP provider that counts its requests to the node and can be made to fail from the n-th on."""

    def __init__(self, url: str, *, fail_from: int | None = None) -> None:
        super().__init__(url, request_kwargs={"timeout": 30})
        self.round_trips = 0
        self.batched_calls = 0
        self.fail_from = fail_from

    def _count(self) -> None:
        self.round_trips += 1
        if self.fail_from is not None and self.round_trips >= self.fail_from:
            raise requests.exceptions.ConnectionError("connection refused (the node went away)")

    def make_request(self, method: Any, params: Any) -> Any:
        self._count()
        return super().make_request(method, params)

    def make_batch_request(self, batch_requests: list[tuple[Any, Any]]) -> Any:
        self._count()
        self.batched_calls += len(batch_requests)
        return super().make_batch_request(batch_requests)


def counting_registry(
    anvil: Any, registry: TraceRegistry, **kwargs: Any
) -> tuple[TraceRegistry, CountingProvider]:
    provider = CountingProvider(anvil.rpc_url, **kwargs)
    return TraceRegistry(Web3(provider), registry.address), provider


def record_lineage(db: Any, registry: TraceRegistry, lot: str, n_events: int) -> None:
    """Planting and harvest of ``lot`` (1,000 kg), then gradings of 1 kg each up to ``n_events`` events,
    anchored in several batches (so the bundle names several roots, transactions and blocks)."""
    events: list[Any] = lifecycle(lot)[:2]
    for n in range(n_events - 2):
        events.append(
            Grading(
                kind="grading",
                lot_code=lot,
                grade=f"คัดออก ครั้งที่ {n + 1}",
                quantity=q("1"),
                disposition="non_conformant",
                **{**common(place="PH-T", when=days_ago(19)), "event_id": uuid.uuid4()},
            )
        )
    anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=0)
    per_batch = max(2, n_events // 4)
    for start in range(0, len(events), per_batch):
        for event in events[start : start + per_batch]:
            with transaction(db.sessions) as s:
                record_event(s, event, id_base=ID_BASE)
        anchorer.run_once(poll_s=0.05)


def bundle_of(db: Any, registry: TraceRegistry, lot: str) -> ProofBundle:
    with transaction(db.sessions) as s:
        return build_bundle(s, lot, chain_id=registry.chain_id, contract=registry.address)


@pytest.fixture
def lineages(db: Any, registry: TraceRegistry) -> dict[int, ProofBundle]:
    seed_parties(db.sessions, registry)
    sizes = {5: "T-VEG-0005", 50: "T-VEG-0050", 200: "T-VEG-0200"}
    for n, lot in sizes.items():
        record_lineage(db, registry, lot, n)
    return {n: bundle_of(db, registry, lot) for n, lot in sizes.items()}


def test_round_trips_stay_constant_as_the_lineage_grows(lineages, anvil, registry):
    seen: dict[int, int] = {}
    for n, bundle in lineages.items():
        assert len(bundle.events) == n
        reader, provider = counting_registry(anvil, registry)
        verdict = verify_bundle(bundle, reader, confirmations=0)
        seen[n] = provider.round_trips
        # verified but for warnings that are not about the chain (no certification yet, origin risk)
        assert verdict.status.value in {"verified", "warning"}, [f.code for f in verdict.findings]
        assert not any(f.severity is Severity.ERROR for f in verdict.findings), verdict.findings
        assert {c.check.value: c.severity for c in verdict.checks}["anchors"] is Severity.OK
        assert all(e.anchor is not None and e.anchor.included for e in verdict.evidence.events)
        assert provider.batched_calls >= n  # one verifyEvent per event, all inside batches
        assert provider.round_trips <= ROUND_TRIPS_MAX, (n, provider.round_trips)
    assert seen[5] == seen[50] == seen[200], seen


def test_the_verdict_is_the_same_however_the_reads_are_batched(lineages, anvil, registry):
    """Batches of 500 calls, of 7, and one call per request (a provider without batches) give the very same
    verdict, byte for byte, and only the number of round trips differs."""
    bundle = lineages[50]
    verdicts: list[dict[str, Any]] = []
    trips: list[int] = []
    for size in (500, 7, 1):
        reader, provider = counting_registry(anvil, registry)
        reader.batch_size = size
        verdict = verify_bundle(bundle, reader, confirmations=0, now=days_ago(0))
        verdicts.append(_comparable(verdict))
        trips.append(provider.round_trips)
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert trips[0] < trips[1] < trips[2]


def _comparable(verdict: Verdict) -> dict[str, Any]:
    out = verdict.to_json()
    out.pop("checked_at", None)
    return out


def test_a_transaction_that_does_not_exist_fails_only_its_own_event(lineages, anvil, registry):
    """The node answers "no such receipt" inside a batch: that event's anchor is reported as not where the
    bundle says, and every other answer of the batch still counts."""
    bundle = lineages[5]
    data = bundle.to_json()
    forged = data["events"][1]
    assert forged["anchor"] is not None
    forged["anchor"]["tx_hash"] = "0x" + "ab" * 32
    reader, provider = counting_registry(anvil, registry)
    verdict = verify_bundle(data, reader, confirmations=0)
    codes = [(f.code, f.event_id) for f in verdict.findings]
    ref = str(forged["epcis"]["eventID"]).removeprefix("urn:uuid:")
    assert (Code.ANCHOR_BLOCK_MISMATCH, ref) in codes
    assert Code.CHAIN_UNAVAILABLE not in {c for c, _ in codes}
    others = [e for e in verdict.evidence.events if e.event_id != ref]
    assert others and all(e.anchor is not None and e.anchor.included for e in others)
    assert verdict.status.value == "failed"
    assert provider.round_trips <= ROUND_TRIPS_MAX


@pytest.mark.parametrize(("batch_size", "fail_from"), [(500, 3), (20, 5)])
def test_a_chain_that_dies_mid_verification_gives_chain_unavailable(
    lineages, anvil, registry, batch_size, fail_from
):
    """The chain id and the registry check are answered (two requests), then the node goes away: before the
    batch of reads (every event), or after the first two batches of 20 reads (the events whose reads were in
    the lost batches). Those events are reported as not checkable (``chain_unavailable``, what the API turns
    into a 503) exactly as when the reads went one by one: never a traceback and never "verified"."""
    bundle = lineages[50]
    reader, provider = counting_registry(anvil, registry, fail_from=fail_from)
    reader.batch_size = batch_size
    verdict = verify_bundle(bundle, reader, confirmations=0)
    assert provider.round_trips >= fail_from
    unavailable = {f.event_id for f in verdict.findings if f.code is Code.CHAIN_UNAVAILABLE}
    everyone = {e.event_id for e in verdict.evidence.events}
    assert verdict.status.value == "failed"
    assert {c.check.value: c.severity for c in verdict.checks}["anchors"] is Severity.ERROR
    assert "node went away" in next(f.en for f in verdict.findings if f.code is Code.CHAIN_UNAVAILABLE)
    for e in verdict.evidence.events:
        assert e.anchor is not None
        assert (e.anchor.included is None) == (e.event_id in unavailable)  # unknown, not "not included"
        assert e.anchor.included is None or e.anchor.included
    if batch_size == 500:
        assert unavailable == everyone
        assert all(e.anchor is not None and e.anchor.confirmations is None for e in verdict.evidence.events)
    else:
        assert unavailable and unavailable < everyone


def test_scaling_reports_time_round_trips_and_bundle_bytes(anvil, registry, tmp_path):
    """``services.bench_verify.scaling`` (the ``scaling`` key of ``trace bench``) on small lineages: every
    figure present, round trips the same for both lengths, bytes growing with events."""
    out = scaling(registry, anvil.rpc_url, tmp_path, sizes=(10, 40), runs=1)
    assert set(out) == {"10", "40"}
    for figures in out.values():
        assert set(figures) == {"ms", "rpc_calls", "bundle_bytes"}
        assert figures["ms"] > 0 and figures["bundle_bytes"] > 0
    assert out["10"]["rpc_calls"] == out["40"]["rpc_calls"] <= ROUND_TRIPS_MAX
    assert out["40"]["bundle_bytes"] > 3 * out["10"]["bundle_bytes"]


def test_the_registrys_batch_helpers_answer_as_the_single_calls(lineages, anvil, registry):
    """``anchored_at_many``, ``block_hashes`` and ``verify_events`` give what ``anchored_at``, ``block_hash``
    and ``verify_event`` give one by one, in one round trip; a block past the head is None, as singly."""
    anchored = [e for e in lineages[50].events if e.anchor is not None]
    reader, provider = counting_registry(anvil, registry)
    roots = sorted({e.anchor.root for e in anchored})
    blocks = sorted({e.anchor.block_number for e in anchored}) + [10**9]
    items = [(e.hash, e.anchor.proof, e.anchor.root) for e in anchored]
    items.append((anchored[0].hash, anchored[1].anchor.proof, anchored[0].anchor.root))  # a wrong proof
    before = provider.round_trips
    assert reader.anchored_at_many(roots) == {r: registry.anchored_at(r) for r in roots}
    assert reader.block_hashes(blocks) == {n: registry.block_hash(n) for n in blocks}
    answers = reader.verify_events(items)
    assert answers == [registry.verify_event(*item) for item in items]
    assert answers[:-1] == [True] * (len(items) - 1) and answers[-1] is False
    assert provider.round_trips - before == 3
