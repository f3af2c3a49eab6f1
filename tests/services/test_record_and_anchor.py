"""Recording events, anchoring them, and verifying lots: on SQLite and PostgreSQL, against a real Anvil."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, text

from factories import (
    ID_BASE,
    OFFICER_PASSPHRASE,
    common,
    days_ago,
    lifecycle,
    lq,
    make_authority,
    make_officer,
    q,
    seed_parties,
)
from traceability.domain import codec
from traceability.domain.events import Harvest, Packing, Transport
from traceability.errors import Conflict, Forbidden, InvalidEvent
from traceability.services.anchoring import Anchorer
from traceability.services.certify import certify_lot, revoke_certification
from traceability.services.events import record_event, stored_event
from traceability.services.ledger import list_lots, reconcile, verify_lot
from traceability.store import models
from traceability.store.database import transaction


def record_all(db, events, **kw):
    out = []
    for ev in events:
        with transaction(db.sessions) as s:
            out.append(record_event(s, ev, id_base=ID_BASE, **kw))
    return out


def anchor_all(db, registry, **kw):
    return Anchorer(
        db.sessions, registry, batch_max=kw.pop("batch_max", 256), confirmations=0, **kw
    ).run_once(poll_s=0.05)


def certify(db, registry, parties, lot):
    return certify_lot(
        db.sessions,
        registry,
        officer_username=parties["officer"].username,
        passphrase=OFFICER_PASSPHRASE,
        lot_code=lot,
        standard="Organic Thailand PGS",
        certificate_hash="0x" + "ab" * 32,
        place_id="LAO-T",
        id_base=ID_BASE,
    )


@pytest.fixture
def parties(db, registry):
    return seed_parties(db.sessions, registry, with_officer=True)


def test_events_link_into_each_lots_hash_chain(db, registry, parties):
    recorded = record_all(db, lifecycle())
    with transaction(db.sessions) as s:
        rows = {r.id: r for r in s.scalars(select(models.Event))}
        assert len(rows) == 6
        by_id = [rows[r.event_id] for r in recorded]
        prevs = [stored_event(r).prev for r in by_id]
        # planting starts the chain; each later event names the lot's previous hash
        assert prevs[0] == ()
        assert prevs[1] == (by_id[0].hash,)
        assert prevs[3] == (by_id[2].hash,)  # packing: only the input lot has a head
        assert prevs[4] == (by_id[3].hash,)  # ship of the child lot follows its packing
        # in the EPCIS body they are CBV 2.0 Event Hash IDs
        assert codec.loads(by_id[1].body)["tt:prev"] == [f"ni:///sha-256;{by_id[0].hash[2:]}?ver=CBV2.0"]
        statuses = {o.status for o in s.scalars(select(models.Outbox))}
        assert statuses == {"pending"}


def test_retry_with_the_same_key_or_id_never_duplicates(db, registry, parties):
    planting = lifecycle()[0]
    first = record_all(db, [planting], idempotency_key="phone-retry-1")[0]
    again = record_all(db, [planting], idempotency_key="phone-retry-1")[0]
    again_no_key = record_all(db, [planting])[0]
    assert first.created and not again.created and not again_no_key.created
    assert first.hash == again.hash == again_no_key.hash
    other = planting.model_copy(update={"event_id": uuid.uuid4()})
    with pytest.raises(Conflict):
        record_all(db, [other], idempotency_key="phone-retry-1")
    with transaction(db.sessions) as s:
        assert s.scalar(select(models.Event).where(models.Event.id == planting.event_id)) is not None
        assert len(s.scalars(select(models.Event)).all()) == 1


def test_resending_an_event_id_with_a_different_body_is_a_conflict(db, registry, parties):
    planting, harvest = lifecycle()[:2]
    first = record_all(db, [planting, harvest])
    # the service filled in the planting's authority and each event's prev: a plain retry is the same event
    assert [r.created for r in record_all(db, [planting, harvest])] == [False, False]
    changed = harvest.model_copy(update={"quantity": q("1500")})
    with pytest.raises(Conflict) as err:
        record_all(db, [changed])
    assert err.value.status_code == 409 and err.value.code == "event_conflict"
    with pytest.raises(Conflict):
        record_all(db, [planting.model_copy(update={"variety": "ผักกาดหอม"})])
    with transaction(db.sessions) as s:
        row = s.get(models.Event, harvest.event_id)
        assert row is not None and row.hash == first[1].hash  # the first body stands
        assert stored_event(row).quantity == q("1000")


def test_a_planting_records_the_authority_of_its_plot(db, registry, parties):
    planting = lifecycle()[0]
    record_all(db, [planting])
    with transaction(db.sessions) as s:
        stored = stored_event(s.get(models.Event, planting.event_id))
    assert stored.authority == parties["authority"].code
    wrong = lifecycle(lot="T-VEG-0002")[0].model_copy(update={"authority": "LAO-ELSEWHERE"})
    with pytest.raises(InvalidEvent) as err:
        record_all(db, [wrong])
    assert err.value.code == "authority_mismatch"


def test_a_harvest_of_another_crop_than_planted_is_refused(db, registry, parties):
    planting, harvest = lifecycle()[:2]
    record_all(db, [planting])
    with pytest.raises(InvalidEvent) as err:
        record_all(db, [harvest.model_copy(update={"crop": "watermelon"})])
    assert err.value.code == "crop_mismatch"


def test_a_farmer_cannot_write_for_someone_elses_plot(db, registry, parties):
    planting = lifecycle()[0].model_copy(update={"actor": "F-0002"})
    with pytest.raises(Forbidden):
        record_all(db, [planting])


def test_taking_more_than_a_lot_holds_is_refused(db, registry, parties):
    record_all(db, lifecycle()[:3])  # 50 kg rejected: 950 kg left
    too_much = Packing(
        kind="packing",
        inputs=(lq("T-VEG-0001", "951"),),
        outputs=(lq("T-VEG-0001X", "900"),),
        **common(place="PH-T", when=days_ago(18)),
    )
    with pytest.raises(InvalidEvent) as err:
        record_all(db, [too_much])
    assert err.value.code == "mass_balance"
    gain = Packing(
        kind="packing",
        inputs=(lq("T-VEG-0001", "100"),),
        outputs=(lq("T-VEG-0001X", "120"),),
        **common(place="PH-T", when=days_ago(18)),
    )
    with pytest.raises(InvalidEvent):
        record_all(db, [gain])
    with transaction(db.sessions) as s:
        assert s.get(models.Lot, "T-VEG-0001X") is None  # nothing half-written


def test_anchored_certified_lot_verifies(db, registry, parties):
    record_all(db, lifecycle())
    certify(db, registry, parties, "T-VEG-0001")
    stats = anchor_all(db, registry)
    assert stats.events == 7 and stats.batches == 1
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001A", confirmations=0)
        assert verdict.status.value == "verified", verdict.to_json()
        lots = {lot.code: lot for lot in list_lots(s)}
        assert lots["T-VEG-0001A"].status == "anchored"
        problems, _ = reconcile(s, registry)
        assert problems == []


def test_unanchored_or_uncertified_lot_is_not_verified(db, registry, parties):
    record_all(db, lifecycle())
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001A", confirmations=0)
    assert verdict.status.value == "warning"
    codes = {f.code for f in verdict.findings}
    assert {"not_anchored", "not_certified"} <= codes


def test_edited_event_row_fails_verification_naming_it(db, registry, parties):
    recorded = record_all(db, lifecycle())
    certify(db, registry, parties, "T-VEG-0001")
    anchor_all(db, registry)
    harvest = recorded[1]
    with transaction(db.sessions) as s:
        row = s.get(models.Event, harvest.event_id)
        body = codec.loads(row.body)
        body["quantityList"][0]["quantity"] = Decimal("5000")  # a laundering edit: more produce on paper
        s.execute(
            text("UPDATE events SET body = :b WHERE hash = :h"), {"b": codec.dumps(body), "h": harvest.hash}
        )
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001A", confirmations=0)
        problems, _ = reconcile(s, registry)
    assert verdict.status.value == "failed"
    mismatch = [f for f in verdict.findings if f.code == "hash_mismatch"]
    assert [f.event_id for f in mismatch] == [str(harvest.event_id)]
    assert [p.event_id for p in problems if p.code == "hash_mismatch"] == [str(harvest.event_id)]


def test_event_deleted_from_the_middle_breaks_the_prev_link(db, registry, parties):
    recorded = record_all(db, lifecycle())
    certify(db, registry, parties, "T-VEG-0001")
    anchor_all(db, registry)
    grading = recorded[2]
    with transaction(db.sessions) as s:
        s.execute(delete(models.BatchEvent).where(models.BatchEvent.event_id == grading.event_id))
        s.execute(delete(models.Outbox).where(models.Outbox.event_id == grading.event_id))
        s.execute(delete(models.EventLot).where(models.EventLot.event_id == grading.event_id))
        s.execute(delete(models.Event).where(models.Event.id == grading.event_id))
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001A", confirmations=0)
    assert verdict.status.value == "failed"
    broken = [f for f in verdict.findings if f.code == "broken_prev_link"]
    assert broken and broken[0].lot_code == "T-VEG-0001"
    assert broken[0].event_id == str(recorded[3].event_id)  # the packing that followed the deleted grading


def test_revoked_certification_fails_verification(db, registry, parties):
    record_all(db, lifecycle())
    cert = certify(db, registry, parties, "T-VEG-0001")
    revoke_certification(
        db.sessions,
        registry,
        officer_username=parties["officer"].username,
        passphrase=OFFICER_PASSPHRASE,
        cert_id=cert.cert_id,
        reason="ตรวจพบการใช้สารเคมีในแปลง",
        place_id="LAO-T",
        id_base=ID_BASE,
    )
    anchor_all(db, registry)
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001A", confirmations=0)
    assert verdict.status.value == "failed"
    assert {"certification_invalid", "certification_revoked"} & {f.code for f in verdict.findings}


def test_officer_needs_their_passphrase_and_their_own_authority(db, registry, parties):
    record_all(db, lifecycle()[:2])
    with pytest.raises(Forbidden):
        certify_lot(
            db.sessions,
            registry,
            officer_username=parties["officer"].username,
            passphrase="wrong",
            lot_code="T-VEG-0001",
            standard="GAP",
            certificate_hash="0x" + "cd" * 32,
            place_id="LAO-T",
            id_base=ID_BASE,
        )
    other = make_officer(db.sessions, registry, make_authority(db.sessions, registry))
    with pytest.raises(Forbidden):
        certify_lot(
            db.sessions,
            registry,
            officer_username=other.username,
            passphrase=OFFICER_PASSPHRASE,
            lot_code="T-VEG-0001",
            standard="GAP",
            certificate_hash="0x" + "cd" * 32,
            place_id="LAO-T",
            id_base=ID_BASE,
        )


def test_harvest_above_plausible_yield_is_flagged(db, registry, parties):
    events = lifecycle()[:1] + [
        Harvest(
            kind="harvest",
            lot_code="T-VEG-0001",
            plot_id="PLOT-T-01",
            crop="organic-veg",
            quantity=q("20000"),
            **common(when=days_ago(20)),
        )
    ]
    record_all(db, events)
    certify(db, registry, parties, "T-VEG-0001")
    anchor_all(db, registry)
    with transaction(db.sessions) as s:
        verdict = verify_lot(s, registry, "T-VEG-0001", confirmations=0)
    assert verdict.status.value == "warning"
    # the fixed ceiling per crop, and the origin-risk signals: far above the crop's yield, beyond the plot
    assert [f.code for f in verdict.findings if f.code.check.value == "yield"] == ["implausible_yield"]
    risk = {f.code.value for f in verdict.findings if f.code.check.value == "origin_risk"}
    assert {"yield_outlier", "capacity_exceeded"} <= risk
    assert all(f.severity.value == "warning" for f in verdict.findings)
    assert verdict.risk is not None and verdict.risk.score > 50


def test_per_event_mode_anchors_one_event_per_batch(db, registry, parties):
    record_all(db, lifecycle()[:3])
    stats = anchor_all(db, registry, batch_max=1)
    assert stats.batches == 3 and stats.events == 3
    with transaction(db.sessions) as s:
        roots = s.scalars(select(models.Batch.root)).all()
        assert len(set(roots)) == 3
        assert all(len(p) == 0 for p in s.scalars(select(models.BatchEvent.proof)))


def test_confirmations_are_waited_for(db, registry, parties, w3):
    record_all(db, lifecycle()[:2])
    anchorer = Anchorer(db.sessions, registry, batch_max=256, confirmations=3)
    anchorer.step()
    with transaction(db.sessions) as s:
        assert s.scalars(select(models.Batch.status)).all() == ["mined"]
    mined = 0

    def mine() -> None:
        nonlocal mined
        w3.provider.make_request("evm_mine", [])
        mined += 1

    stats = anchorer.run_once(poll_s=0.01, on_wait=mine)
    assert stats.events == 2 and mined >= 3
    with transaction(db.sessions) as s:
        assert s.scalars(select(models.Batch.status)).all() == ["anchored"]


def test_shipment_of_more_than_held_is_refused(db, registry, parties):
    record_all(db, lifecycle()[:4])
    ship = Transport(
        kind="transport",
        leg="ship",
        items=(lq("T-VEG-0001A", "501"),),
        source="PH-T",
        destination="PORT-LCB",
        **common(place="PH-T", when=days_ago(17)),
    )
    with pytest.raises(InvalidEvent):
        record_all(db, [ship])


def test_bundle_is_plain_json(db, registry, parties):
    from traceability.services.proof import build_bundle

    record_all(db, lifecycle())
    anchor_all(db, registry)
    with transaction(db.sessions) as s:
        bundle = build_bundle(s, "T-VEG-0001A", chain_id=registry.chain_id, contract=registry.address)
    doc = json.loads(codec.dumps(bundle.to_json()))
    assert {"chain_id", "contract", "lot_code", "@context", "events", "certifications"} <= set(doc)
    item = doc["events"][0]
    assert set(item) == {"epcis", "hash", "anchor"}
    assert set(item["anchor"]) == {"root", "proof", "tx_hash", "block_number", "block_hash"}
