"""The provenance page is kept rendered per (lot, language, address) while its lineage's fingerprint holds,
on SQLite and PostgreSQL with a real Anvil: a repeat scan costs no query when the ledger was looked at less
than ``RECHECK_S`` (a quarter second) ago and one query otherwise (and a 304 to a phone that holds the page),
and whatever the ledger says next is on the first page asked for once that quarter second is up — a new
event, its anchoring, a certification and its revocation, an anchor the worker records as reorganised away,
a changed body — never later than the verdict's own 30 seconds or a certification's expiry. The app's page
cache runs on a clock the tests hold, so "within a quarter second" is exact: before it, the old page."""

from __future__ import annotations

import hashlib
import re
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
from provenance_fixtures import MERGED, PUBLIC, anchor_all, more_legs
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from factories import ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain.events import LotQuantity, Place, Quantity, Transport
from traceability.main import create_app
from traceability.services.certify import certify_lot, revoke_certification
from traceability.services.demo import DemoResult, seed_demo
from traceability.services.events import record_event
from traceability.services.provenance import (
    RECHECK_S,
    REFRESH_AT,
    VERDICT_TTL_S,
    LineageCache,
    PageCache,
    VerdictCache,
    kept_page,
    rendered_page,
)
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction


@dataclass
class Served:
    db: Any
    registry: TraceRegistry
    demo: DemoResult
    client: TestClient
    now: list[float]  # the page cache's clock

    def quarter_second_later(self) -> None:
        """Move the page cache's clock on by ``RECHECK_S``: its next answer looks at the ledger again."""
        self.now[0] += RECHECK_S


@pytest.fixture
def served(db, w3, anvil, tmp_path: Path) -> Iterator[Served]:
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    demo = seed_demo(db.sessions, registry, id_base=ID_BASE)
    with transaction(db.sessions) as s:
        more_legs(s, MERGED, 9)
    anchor_all(db.sessions, registry)
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
        public_base_url=PUBLIC,
        public_rate_per_min=100_000,
    )
    app = create_app(runtime=Runtime(settings, _engine=db.engine))
    now = [1000.0]
    app.state.page_cache = PageCache(clock=lambda: now[0])
    with TestClient(app) as client:
        yield Served(db, registry, demo, client, now)


def counted(served: Served, request: Any) -> tuple[Any, list[str]]:
    """``request()``'s answer and the SQL statements it ran."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa_event.listen(served.db.engine, "before_cursor_execute", count)
    try:
        return request(), statements
    finally:
        sa_event.remove(served.db.engine, "before_cursor_execute", count)


def receive_at_the_warehouse(session: Any) -> None:
    """The next leg of ``MERGED`` after the fixture's nine: received at the Bangkok warehouse."""
    record_event(
        session,
        Transport(
            kind="transport",
            leg="receive",
            items=(LotQuantity(lot_code=MERGED, quantity=Quantity(value=Decimal("3500"))),),
            source="PORT-LCB",
            destination="WH-BKK",
            event_id=uuid.uuid4(),
            actor="EXP-0001",
            place=Place(id="WH-BKK"),
            event_time=datetime.now(UTC) - timedelta(days=1),
        ),
        id_base=ID_BASE,
    )


def steps(html: str) -> list[str]:
    return re.findall(r'data-step="([a-z]+)"', html)


def waiting(html: str) -> int:
    """Timeline steps not anchored yet."""
    return len(re.findall(r'<li class="(?: other)?" data-step=', html))


def status(html: str) -> str:
    found = re.search(r'id="verdict" class="[^"]*" data-status="([a-z]+)"', html)
    assert found is not None
    return found.group(1)


def certification(html: str) -> str:
    return html[html.index('id="certification"') : html.index('id="timeline"')]


def test_a_repeat_scan_is_the_same_page_from_one_query_a_quarter_second_and_a_304_for_the_phone_that_has_it(
    served,
):
    first = served.client.get(f"/p/{MERGED}", params={"lang": "en"})
    assert first.status_code == 200 and len(steps(first.text)) == 20
    again, statements = counted(served, lambda: served.client.get(f"/p/{MERGED}", params={"lang": "en"}))
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert statements == []  # the ledger was looked at less than a quarter second ago
    served.quarter_second_later()
    looked, statements = counted(served, lambda: served.client.get(f"/p/{MERGED}", params={"lang": "en"}))
    assert looked.content == first.content
    assert len(statements) == 1, statements  # the lineage's fingerprint, nothing else
    for _ in range(3):
        _same, statements = counted(served, lambda: served.client.get(f"/p/{MERGED}", params={"lang": "en"}))
        assert statements == []  # and not again within the next quarter second
    not_modified = served.client.get(
        f"/p/{MERGED}", params={"lang": "en"}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == first.headers["etag"]
    thai = served.client.get(f"/p/{MERGED}")  # another language is another page
    assert '<html lang="th">' in thai.text and thai.headers["etag"] != first.headers["etag"]
    stale = served.client.get(f"/p/{MERGED}", headers={"If-None-Match": '"not-this-page"'})
    assert stale.status_code == 200 and stale.content == thai.content


def test_while_one_scan_looks_at_the_ledger_the_others_are_served_for_at_most_another_quarter_second(served):
    """What the event loop serves without a thread (``kept_page``): one scan a quarter second is sent to look
    at the ledger; the scans that arrive while it looks get the kept page, but never on a look half a second
    old."""
    served.client.get(f"/p/{MERGED}")
    cache, variant = served.client.app.state.page_cache, ("th", f"/p/{MERGED}")
    assert kept_page(cache, MERGED, variant=variant) is not None
    served.quarter_second_later()
    assert kept_page(cache, MERGED, variant=variant) is None  # this scan is sent to look
    assert kept_page(cache, MERGED, variant=variant) is not None  # the next ones are served meanwhile
    served.quarter_second_later()
    assert kept_page(cache, MERGED, variant=variant) is None
    assert kept_page(cache, MERGED, variant=variant) is None  # half a second: nobody is served from memory
    _page, statements = counted(served, lambda: served.client.get(f"/p/{MERGED}"))
    assert len(statements) == 1, statements  # the look
    assert kept_page(cache, MERGED, variant=variant) is not None
    assert kept_page(cache, MERGED, variant=("en", f"/p/{MERGED}")) is None  # never rendered in English


def test_a_new_event_shows_within_a_quarter_second_and_so_does_its_anchoring(served):
    before = served.client.get(f"/p/{MERGED}").text
    assert waiting(before) == 0
    with transaction(served.db.sessions) as s:
        receive_at_the_warehouse(s)
    assert served.client.get(f"/p/{MERGED}").text == before  # the lag the cache allows, and no more:
    served.quarter_second_later()
    recorded = served.client.get(f"/p/{MERGED}").text
    assert len(steps(recorded)) == 21 and waiting(recorded) == 1
    assert status(recorded) != "verified"  # an event not anchored yet is a warning
    anchor_all(served.db.sessions, served.registry)
    served.quarter_second_later()
    anchored = served.client.get(f"/p/{MERGED}").text
    assert len(steps(anchored)) == 21 and waiting(anchored) == 0
    assert status(anchored) == status(before)


def test_a_certification_and_its_revocation_show_within_a_quarter_second(served):
    officer = served.demo.officers[0]
    before = served.client.get(f"/p/{MERGED}", params={"lang": "en"}).text
    assert "Organic Thailand" not in certification(before)
    certified = certify_lot(
        served.db.sessions,
        served.registry,
        officer_username=officer["username"],
        passphrase=officer["passphrase"],
        lot_code=MERGED,
        standard="Organic Thailand",
        certificate_hash="0x" + hashlib.sha256(b"organic").hexdigest(),
        place_id=officer["authority"],
        id_base=ID_BASE,
        expires=int(time.time()) + 400 * 24 * 3600,
    )
    served.quarter_second_later()
    shown = certification(served.client.get(f"/p/{MERGED}", params={"lang": "en"}).text)
    assert "Organic Thailand" in shown and 'data-state="revoked"' not in shown
    revoke_certification(
        served.db.sessions,
        served.registry,
        officer_username=officer["username"],
        passphrase=officer["passphrase"],
        cert_id=certified.cert_id,
        reason="ตรวจพบการใช้สารเคมี",
        place_id=officer["authority"],
        id_base=ID_BASE,
    )
    served.quarter_second_later()
    revoked = served.client.get(f"/p/{MERGED}", params={"lang": "en"}).text
    assert 'data-state="revoked"' in certification(revoked)
    assert steps(revoked).count("revocation") == 1


def test_an_anchor_the_worker_finds_reorganised_away_is_shown_waiting_within_a_quarter_second(served):
    """What the worker writes when a batch's block left the canonical chain (``Anchorer.finalize``: back to
    ``sending``, its transaction and block forgotten): the page stops showing those events as anchored."""
    before = served.client.get(f"/p/{MERGED}").text
    assert waiting(before) == 0
    with transaction(served.db.sessions) as s:
        batch_id = s.scalars(
            select(models.BatchEvent.batch_id)
            .join(models.EventLot, models.EventLot.event_id == models.BatchEvent.event_id)
            .where(models.EventLot.lot_code == MERGED)
            .limit(1)
        ).one()
        s.execute(
            update(models.Batch)
            .where(models.Batch.id == batch_id)
            .values(status="sending", tx_hash=None, block_number=None, block_hash=None)
        )
    served.quarter_second_later()
    after = served.client.get(f"/p/{MERGED}").text
    assert waiting(after) > 0 and status(after) != "verified"


def test_a_kept_page_lives_no_longer_than_its_verdict_and_a_changed_body_is_seen_within_a_quarter_second(
    served,
):
    """The service itself, with the caches' clocks in the test's hand."""
    now = [1000.0]
    pages = LineageCache[Any](clock=lambda: now[0])
    verdicts = VerdictCache(clock=lambda: now[0])
    rendered: list[str] = []

    def render(provenance: Any, verdict: Any) -> bytes:
        rendered.append(verdict.status)
        return f"{len(provenance.steps)} {verdict.status}".encode()

    def page() -> bytes:
        with transaction(served.db.sessions) as s:
            return rendered_page(
                s,
                served.registry,
                MERGED,
                variant=("th", "/p/x"),
                render=render,
                cache=pages,
                confirmations=0,
                verdicts=verdicts,
            ).body

    first = page()
    now[0] += REFRESH_AT * VERDICT_TTL_S - 0.5
    assert page() == first and len(rendered) == 1
    now[0] += 1.0  # three quarters of the verdict's 30 s spent: verified and rendered again
    assert page() == first and len(rendered) == 2
    now[0] += VERDICT_TTL_S + 0.1  # and never kept past them
    assert page() == first and len(rendered) == 3
    with transaction(served.db.sessions) as s:
        row = s.scalars(
            select(models.Event)
            .join(models.EventLot, models.EventLot.event_id == models.Event.id)
            .where(models.EventLot.lot_code == MERGED, models.Event.kind == "transport")
            .limit(1)
        ).one()
        s.execute(
            update(models.Event)
            .where(models.Event.id == row.id)
            .values(body=row.body.replace("3500", "3900"))
        )
    now[0] += RECHECK_S
    assert page().endswith(b"failed") and rendered[-1] == "failed"  # a body changed behind the ledger's back
