"""One leader among anchoring workers, disjoint claims under concurrency, and the anchor key rules."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from factories import ID_BASE, lifecycle, seed_parties
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.errors import ConfigurationError, Conflict
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.runtime import anchor_account
from traceability.store import models
from traceability.store.database import transaction
from traceability.store.repository import Repository
from traceability.workers.anchor import leadership


def test_only_one_worker_leads(db, tmp_path):
    with leadership(db.engine, tmp_path, wait=False):
        with pytest.raises(Conflict):
            with leadership(db.engine, tmp_path, wait=False):
                pass
    with leadership(db.engine, tmp_path, wait=False):  # released on exit: the next one may lead
        pass


# Row locks with SKIP LOCKED are PostgreSQL's; SQLite has one writer at a time, so there is nothing to race.
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_concurrent_claims_never_share_an_event(db, registry):
    with transaction(db.sessions) as s:
        seed_parties(s, registry)
    for ev in lifecycle():
        with transaction(db.sessions) as s:
            record_event(s, ev, id_base=ID_BASE)
    holder = db.sessions()
    try:
        held = Repository(holder).claim_pending(2, skip_locked=True)  # locked, not committed yet
        assert len(held) == 2
        other = Anchorer(db.sessions, registry, batch_max=256, confirmations=0)
        batch_id = other.claim_batch()
        with transaction(db.sessions) as s:
            claimed = set(s.scalars(select(models.Outbox.event_id).where(models.Outbox.batch_id == batch_id)))
        assert len(claimed) == 4
        assert claimed.isdisjoint({o.event_id for o, _ in held})
    finally:
        holder.rollback()
        holder.close()


def test_dev_key_is_refused_off_the_dev_chain():
    assert anchor_account(Settings(), 31337).address.startswith("0x")
    with pytest.raises(ConfigurationError):
        anchor_account(Settings(), 1)  # no key configured on a real chain
    with pytest.raises(ConfigurationError):
        anchor_account(Settings(anchor_key=ANVIL_DEV_KEY), 8453)
    with pytest.raises(ConfigurationError):
        anchor_account(Settings(anchor_key="0x1234"), 31337)
