"""The importer API's verdict is reused for at most 10 s while the lineage's rows and the chain's head hold,
on SQLite and PostgreSQL with a real Anvil: served again with its `Age`, and verified afresh after a new
event, its anchoring, a certification, a revocation, a reorganisation on chain, or when its time is up. The
ledger is looked at once every ``RECHECK_S`` (a quarter second) and the head once every ``HEAD_TTL_S`` (a
second): a change shows on the first call after that, never before it is looked at; the caches run on a
clock the tests hold, so that is exact."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from web3 import Web3

from factories import ID_BASE
from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain import codec
from traceability.domain.events import LotQuantity, Place, Quantity, Transport
from traceability.domain.findings import Verdict
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.apikeys import create_api_key
from traceability.services.certify import certify_lot, revoke_certification
from traceability.services.demo import DemoResult, seed_demo
from traceability.services.events import record_event
from traceability.services.provenance import (
    HEAD_TTL_S,
    RECHECK_S,
    REFRESH_AT,
    VERIFY_TTL_S,
    VerifyCache,
    kept_verdict,
    verified_lot,
)
from traceability.services.runtime import Runtime, make_web3
from traceability.store.database import transaction

LOT = "NSN-HML-2611-M1"  # the demo's milled rice of two farms, 3,500 kg at Laem Chabang port


@dataclass
class Ledger:
    db: Any
    registry: TraceRegistry
    demo: DemoResult
    w3: Web3


def _ledger(db: Any, w3: Web3) -> Ledger:
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    demo = seed_demo(db.sessions, registry, id_base=ID_BASE)
    anchor(db, registry)
    return Ledger(db, registry, demo, w3)


@pytest.fixture
def ledger(db, w3) -> Ledger:
    return _ledger(db, w3)


def anchor(db: Any, registry: TraceRegistry) -> None:
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)


def ship_to_bangkok(db: Any) -> None:
    """One more event on the lot: shipped from the port to the Bangkok warehouse."""
    with transaction(db.sessions) as s:
        record_event(
            s,
            Transport(
                kind="transport",
                leg="ship",
                items=(LotQuantity(lot_code=LOT, quantity=Quantity(value=Decimal("3500"))),),
                source="PORT-LCB",
                destination="WH-BKK",
                event_id=uuid.uuid4(),
                actor="EXP-0001",
                place=Place(id="PORT-LCB"),
                event_time=datetime.now(UTC) - timedelta(hours=1),
            ),
            id_base=ID_BASE,
        )


class Verifier:
    """``verified_lot`` over a cache whose clock the test holds; counts the verifications it makes."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.now = 1000.0
        self.cache = VerifyCache(clock=lambda: self.now)
        self.verdicts: list[Verdict] = []

    def encode(self, verdict: Verdict) -> bytes:
        self.verdicts.append(verdict)
        return codec.dumps(verdict.to_json()).encode()

    def __call__(self) -> tuple[dict[str, Any], float]:
        with transaction(self.ledger.db.sessions) as s:
            body, age = verified_lot(
                s, self.ledger.registry, LOT, encode=self.encode, cache=self.cache, confirmations=0
            )
        assert body is not None
        return codec.loads(body), age

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_a_verdict_is_served_again_and_renewed_by_one_caller_before_its_ten_seconds_are_up(ledger):
    verify = Verifier(ledger)
    first, age = verify()
    assert age == 0 and len(verify.verdicts) == 1
    verify.tick(REFRESH_AT * VERIFY_TTL_S - 0.5)
    again, age = verify()
    assert again == first and age == pytest.approx(REFRESH_AT * VERIFY_TTL_S - 0.5)
    assert len(verify.verdicts) == 1
    verify.tick(1.0)  # three quarters of its life spent: the next caller verifies afresh
    _fresh, age = verify()
    assert age == 0 and len(verify.verdicts) == 2
    verify.tick(VERIFY_TTL_S + 0.1)  # never served past its ten seconds
    _fresh, age = verify()
    assert age == 0 and len(verify.verdicts) == 3


def test_the_event_loop_serves_a_verdict_only_while_the_ledger_and_the_head_were_looked_at_just_now(ledger):
    """``kept_verdict`` takes no session and no chain client: what it serves, it serves from memory, and only
    within a quarter second of the last look at the ledger, a second of the last read of the head, and
    before the entry is due for renewal; otherwise the route goes to ``verified_lot``, which looks."""
    verify = Verifier(ledger)
    first, _ = verify()
    kept = kept_verdict(verify.cache, LOT)
    assert kept is not None and codec.loads(kept[0]) == first and kept[1] == 0
    verify.tick(RECHECK_S)
    assert kept_verdict(verify.cache, LOT) is None  # the ledger is due a look: this caller is sent to take it
    assert kept_verdict(verify.cache, LOT) is not None  # the others are served while it looks,
    verify.tick(RECHECK_S)
    assert kept_verdict(verify.cache, LOT) is None  # but never on a look half a second old
    assert kept_verdict(verify.cache, LOT) is None
    verify()  # looks, finds it unchanged
    verify.tick(RECHECK_S / 2)
    kept = kept_verdict(verify.cache, LOT)
    assert kept is not None and kept[1] == pytest.approx(RECHECK_S * 2.5)
    verify.tick(HEAD_TTL_S)
    assert kept_verdict(verify.cache, LOT) is None  # the head is due a read
    verify()
    assert kept_verdict(verify.cache, LOT) is not None
    verify.tick(REFRESH_AT * VERIFY_TTL_S)
    verify()  # renews it: verified afresh
    assert kept_verdict(verify.cache, LOT) is not None and len(verify.verdicts) == 2
    assert kept_verdict(verify.cache, "NO-SUCH-LOT") is None


def test_one_caller_renews_an_entry_while_the_others_serve_it_and_one_makes_a_missing_one(ledger):
    verify = Verifier(ledger)
    verify()
    cache, key = verify.cache, (LOT,)
    with transaction(ledger.db.sessions) as s:
        head = cache.head(ledger.registry)
        kept, role = cache.lookup(s, key, head)
        assert kept is not None and role == "serve"
        verify.tick(REFRESH_AT * VERIFY_TTL_S + 0.1)
        kept, role = cache.lookup(s, key, head)
        assert kept is not None and role == "lead"
        renewing, role = cache.lookup(s, key, head)  # while the leader verifies: the entry is still valid
        assert renewing is kept and role == "serve"
        cache.made(key)
        nothing, role = cache.lookup(s, ("NO-SUCH-LOT",), head)
        assert nothing is None and role == "lead"
        cache.made(("NO-SUCH-LOT",))


def test_a_new_event_and_its_anchoring_are_verified_afresh_within_a_quarter_second(ledger):
    verify = Verifier(ledger)
    before, _ = verify()
    events = len(before["evidence"]["events"])
    ship_to_bangkok(ledger.db)
    assert verify() == (before, 0)  # the ledger was looked at less than a quarter second ago
    verify.tick(RECHECK_S)
    recorded, age = verify()
    assert age == 0 and len(recorded["evidence"]["events"]) == events + 1
    assert "not_anchored" in {r["code"] for r in recorded["reasons"]}
    anchor(ledger.db, ledger.registry)
    verify.tick(RECHECK_S)
    anchored, age = verify()
    assert age == 0 and "not_anchored" not in {r["code"] for r in anchored["reasons"]}
    assert anchored["status"] == before["status"] and len(verify.verdicts) == 3


def test_a_certification_and_its_revocation_are_verified_afresh_within_a_quarter_second(ledger):
    verify = Verifier(ledger)
    before, _ = verify()
    officer = ledger.demo.officers[0]
    certified = certify_lot(
        ledger.db.sessions,
        ledger.registry,
        officer_username=officer["username"],
        passphrase=officer["passphrase"],
        lot_code=LOT,
        standard="GAP",
        certificate_hash="0x" + hashlib.sha256(b"gap").hexdigest(),
        place_id=officer["authority"],
        id_base=ID_BASE,
        expires=int(time.time()) + 400 * 24 * 3600,
    )
    anchor(ledger.db, ledger.registry)
    verify.tick(RECHECK_S)
    shown, age = verify()
    certifications = shown["evidence"]["certifications"]
    assert age == 0 and len(certifications) == len(before["evidence"]["certifications"]) + 1
    revoke_certification(
        ledger.db.sessions,
        ledger.registry,
        officer_username=officer["username"],
        passphrase=officer["passphrase"],
        cert_id=certified.cert_id,
        reason="ตรวจพบการใช้สารเคมี",
        place_id=officer["authority"],
        id_base=ID_BASE,
    )
    verify.tick(RECHECK_S)
    revoked, age = verify()
    assert age == 0 and revoked != shown and len(verify.verdicts) == 3
    assert any(c["revoked"] for c in revoked["evidence"]["certifications"])


def test_an_anchor_reorganised_away_on_chain_is_seen_with_the_next_head(db, tmp_path: Path):
    """A private Anvil: reverting a snapshot drops blocks for everyone on that chain. The ledger still says
    the event is anchored (the worker has not looked yet): only the chain's new head tells the cache."""
    node = AnvilNode().start()
    try:
        w3 = make_web3(node.rpc_url)
        ledger = _ledger(db, w3)
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        ship_to_bangkok(db)
        anchor(db, ledger.registry)
        verify = Verifier(ledger)
        anchored, _ = verify()
        assert "not_anchored" not in {r["code"] for r in anchored["reasons"]}
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
        for _ in range(3):
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        verify.tick(HEAD_TTL_S + 0.1)  # the head is read again
        reorganised, age = verify()
        assert age == 0 and len(verify.verdicts) == 2
        assert reorganised["status"] == "failed" and anchored["status"] != "failed"
    finally:
        node.stop()


@pytest.fixture
def api(ledger, anvil, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], list[float]]]:
    """The app, an API key, and the verdict cache's clock."""
    with transaction(ledger.db.sessions) as s:
        key = create_api_key(s, "importer").key
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=ledger.db.url,
        id_base=ID_BASE,
        contract_address=ledger.registry.address,
        confirmations=0,
        importer_rate_per_min=100_000,
    )
    app = create_app(runtime=Runtime(settings, _engine=ledger.db.engine))
    now = [1000.0]
    app.state.verify_cache = VerifyCache(clock=lambda: now[0])
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {key}"}, now


def test_the_api_says_how_old_a_verdict_it_serves_again_is_and_shows_a_new_event_a_quarter_second_on(
    api, ledger
):
    client, auth, now = api
    first = client.get(f"/api/v1/lots/{LOT}/verify", headers=auth)
    assert first.status_code == 200 and first.headers["age"] == "0"
    now[0] += 1.1
    again = client.get(f"/api/v1/lots/{LOT}/verify", headers=auth)
    assert again.content == first.content and again.headers["age"] == "1"
    assert again.json()["checked_at"] == first.json()["checked_at"]  # when it was checked, as it was
    ship_to_bangkok(ledger.db)
    stale = client.get(f"/api/v1/lots/{LOT}/verify", headers=auth)
    assert stale.content == first.content  # the ledger and the head were looked at just now
    now[0] += RECHECK_S
    fresh = client.get(f"/api/v1/lots/{LOT}/verify", headers=auth)
    assert fresh.headers["age"] == "0"
    assert len(fresh.json()["evidence"]["events"]) == len(first.json()["evidence"]["events"]) + 1
