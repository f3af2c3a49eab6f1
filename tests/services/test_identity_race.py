"""The first events of a new ledger may arrive at once: one identifier base is recorded, every request gets
it, none fails (a unique-key race on ``ledger_meta`` was a 500 before)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from traceability.services.identity import ensure_id_base
from traceability.store import models
from traceability.store.database import transaction

BASE = "https://id.example.or.th"


def test_first_requests_at_once_record_one_base(db: Any) -> None:
    start = threading.Barrier(6)
    got: list[str] = []
    failed: list[BaseException] = []

    def first_event() -> None:
        try:
            start.wait()
            with transaction(db.sessions) as session:
                got.append(ensure_id_base(session, BASE))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    threads = [threading.Thread(target=first_event) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failed == []
    assert got == [BASE] * 6
    with transaction(db.sessions) as session:
        assert session.scalar(select(func.count()).select_from(models.LedgerMeta)) == 1
        assert ensure_id_base(session, None) == BASE
