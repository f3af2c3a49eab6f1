"""A demo ledger for the provenance page tests: ``trace demo``'s data on its own TraceRegistry, with the
merged rice lot's lineage carried on to 20 events (nine more legs between the port and a Bangkok
warehouse), all of it anchored. Built once per test module; a test that changes the ledger works on a copy
of the file."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from factories import ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain.events import LotQuantity, Place, Quantity, Transport
from traceability.services.anchoring import Anchorer
from traceability.services.demo import DemoResult, seed_demo
from traceability.services.events import record_event
from traceability.store import models
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

PUBLIC = "https://trace.example.th"
MERGED = "NSN-HML-2611-M1"  # two farmers' paddy merged into one milled lot: 20 events in its lineage
PACKED = "NSN-VEG-2609-01A"  # split from the certified vegetable lot, shipped and received
FIELD = "NSN-VEG-2609-01"  # the certified field lot, no GTIN


@dataclass
class DemoLedger:
    path: Path
    registry: TraceRegistry
    result: DemoResult
    farmer_names: list[str]
    farmer_phones: list[str]
    officer_names: list[str]

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def copy(self, to: Path) -> DemoLedger:
        """The same ledger in another file (same registry), for a test that changes it."""
        target = to / "copy.db"
        shutil.copy(self.path, target)
        return DemoLedger(
            target, self.registry, self.result, self.farmer_names, self.farmer_phones, self.officer_names
        )

    def engine(self) -> Engine:
        return make_engine(self.url)

    def settings(self, var_dir: Path, rpc_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "var_dir": var_dir,
            "rpc_url": rpc_url,
            "database_url": self.url,
            "id_base": ID_BASE,
            "contract_address": self.registry.address,
            "confirmations": 0,
            "public_base_url": PUBLIC,
            "public_rate_per_min": 100_000,
        }
        values.update(overrides)
        return Settings(**values)


def anchor_all(sessions: sessionmaker[Session], registry: TraceRegistry) -> None:
    Anchorer(sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)


def more_legs(session: Session, lot: str, count: int) -> None:
    """``count`` more transport legs of ``lot`` (ship, receive, ...) between the port and a warehouse."""
    start = datetime.now(UTC) - timedelta(days=18)
    for i in range(count):
        leg = "ship" if i % 2 == 0 else "receive"
        there = (i // 2) % 2 == 0
        source, destination = ("PORT-LCB", "WH-BKK") if there else ("WH-BKK", "PORT-LCB")
        record_event(
            session,
            Transport(
                kind="transport",
                leg=leg,
                items=(LotQuantity(lot_code=lot, quantity=Quantity(value=Decimal("3500"))),),
                source=source,
                destination=destination,
                event_id=uuid.uuid4(),
                actor="EXP-0001",
                place=Place(id=source if leg == "ship" else destination),
                event_time=start + timedelta(days=i),
            ),
            id_base=ID_BASE,
        )


def build_demo_ledger(directory: Path, w3: Web3) -> DemoLedger:
    path = directory / "demo.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
        result = seed_demo(sessions, registry, id_base=ID_BASE)
        with transaction(sessions) as session:
            more_legs(session, MERGED, 9)
        anchor_all(sessions, registry)
        with transaction(sessions) as session:
            farmers = session.scalars(select(models.Farmer)).all()
            officers = session.scalars(select(models.Officer)).all()
            names = [f.display_name for f in farmers]
            phones = [f.phone for f in farmers if f.phone]
            officer_names = [o.display_name for o in officers]
    finally:
        engine.dispose()
    return DemoLedger(path, registry, result, names, phones, officer_names)


def personal_data_in(html: str, ledger: DemoLedger) -> list[str]:
    """Every farmer's or officer's name, and every farmer's phone number (in any usual writing), found in
    ``html``."""
    found = [name for name in ledger.farmer_names + ledger.officer_names if name in html]
    for phone in ledger.farmer_phones:
        for form in (phone, f"{phone[:3]}-{phone[3:6]}-{phone[6:]}", "+66" + phone[1:], "66" + phone[1:]):
            if form in html:
                found.append(form)
    # Surnames alone still name a family. (Given names alone are not checked: "มะลิ" is also in "หอมมะลิ".)
    found += [
        name.split()[-1] for name in ledger.farmer_names + ledger.officer_names if name.split()[-1] in html
    ]
    return found
