"""An officer's world for the officer page, API and browser tests: the test authority with its officer, two
farmers and their lots (``factories.seed_farmer_lots``), and another authority with its own officer, farmer,
plot and lot, so that every test can try the wrong authority too."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from factories import (
    ID_BASE,
    common,
    days_ago,
    make_authority,
    make_officer,
    seed_farmer_lots,
    seed_parties,
)
from traceability.chain.registry import TraceRegistry
from traceability.domain.events import Planting
from traceability.services.anchoring import Anchorer
from traceability.services.events import record_event
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.store.database import transaction

OFFICER_PASSWORD = "officer-password"
LOT = "T-VEG-0001"  # F-0001's lot, of the test authority
OTHER_LOT = "O-RICE-0001"  # of the other authority


def seed_other_authority(sessions: sessionmaker[Session], registry: TraceRegistry) -> Any:
    """A second อปท. (random code) with its farmer F-0901, plot PLOT-O-01 and the lot OTHER_LOT planted."""
    other = make_authority(sessions, registry)
    with transaction(sessions) as session:
        farmer = enrol_farmer(
            session,
            code="F-0901",
            authority=other,
            display_name="นายสมหมาย นาดี",
            phone="0899999999",
            pin="9999",
        )
        enrol_plot(
            session,
            code="PLOT-O-01",
            farmer=farmer,
            village_th="บ้านนาดี",
            village_en="Ban Na Di",
            area_rai=Decimal("3"),
        )
    with transaction(sessions) as session:
        planting = Planting(
            kind="planting",
            lot_code=OTHER_LOT,
            plot_id="PLOT-O-01",
            crop="hom-mali-105",
            area_rai=Decimal("3"),
            **common(actor="F-0901", place="PLOT-O-01", when=days_ago(40)),
        )
        record_event(session, planting, id_base=ID_BASE)
    return other


def seed_officer_world(sessions: sessionmaker[Session], registry: TraceRegistry) -> dict[str, Any]:
    parties = seed_parties(sessions, registry, with_officer=True)
    seeded = seed_farmer_lots(sessions, registry)
    other = seed_other_authority(sessions, registry)
    return {
        **parties,
        **seeded,
        "other_authority": other,
        "other_officer": make_officer(sessions, registry, other),
    }


def officer_creds(officer: Any) -> dict[str, str]:
    return {"username": officer.username, "password": OFFICER_PASSWORD}


def anchor_all(sessions: sessionmaker[Session], registry: TraceRegistry) -> None:
    """Anchor every pending event and wait for it (no confirmations on the test chain)."""
    Anchorer(sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)


def field(html: str, name: str) -> str:
    """The value of the first hidden field ``name`` of a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no field {name}"
    return found.group(1)
