"""Master data: what place and party codes stand for in exports and public pages, without personal data."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select

from factories import ID_BASE
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY
from traceability.errors import Conflict
from traceability.services.demo import seed_demo
from traceability.services.masterdata import parties, places
from traceability.services.parties import enrol_business
from traceability.store import models
from traceability.store.database import transaction


@pytest.fixture
def demo(db, w3):
    seed_demo(db.sessions, TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY)), id_base=ID_BASE)
    with transaction(db.sessions) as s:
        farmers = [(f.display_name, f.phone) for f in s.scalars(select(models.Farmer))]
    return farmers


def test_a_plot_is_described_by_its_village_and_answered_for_by_its_community_enterprise(db, demo):
    with transaction(db.sessions) as s:
        plot = places(s, ["PLOT-NSN-01"])["PLOT-NSN-01"]
    assert plot.kind == "field"
    assert plot.village_th == "บ้านหนองสนิท หมู่ 1" and plot.village_en == "Ban Nong Sanit, Moo 1"
    assert (plot.district_th, plot.province_th) == ("อำเภอจอมพระ", "จังหวัดสุรินทร์")
    assert (plot.district_en, plot.province_en) == ("Chom Phra District", "Surin")
    assert plot.authority_code == "LAO-NONGSANIT"
    assert plot.operator is not None and plot.operator.code == "CE-NSN-01"
    assert plot.operator.phone == "044-000-111"
    assert plot.address_en == "Ban Nong Sanit, Moo 1, Chom Phra District, Surin"


def test_locations_and_an_authority_office_are_places_and_unknown_codes_are_left_out(db, demo):
    with transaction(db.sessions) as s:
        found = places(s, ["PH-NSN", "PORT-LCB", "LAO-NONGSANIT", "NOWHERE"])
    assert set(found) == {"PH-NSN", "PORT-LCB", "LAO-NONGSANIT"}
    assert found["PH-NSN"].kind == "packing_house" and found["PH-NSN"].operator.code == "CE-NSN-01"
    assert found["PORT-LCB"].operator.kind == "exporter" and found["PORT-LCB"].country == "TH"
    office = found["LAO-NONGSANIT"]
    assert office.kind == "authority_office" and office.operator.phone == "044-000-101"


def test_a_farmer_is_a_pseudonym_of_an_authority_and_nothing_personal_leaves(db, demo):
    with transaction(db.sessions) as s:
        found = parties(s, ["F-0001", "CE-NSN-01", "EXP-0001", "LAO-NONGSANIT", "OFF-0001", "NOBODY"])
        everything = repr(found) + repr(places(s, ["PLOT-NSN-01", "PLOT-NSN-02", "FARM-NSN-01", "PH-NSN"]))
    assert set(found) == {"F-0001", "CE-NSN-01", "EXP-0001", "LAO-NONGSANIT", "OFF-0001"}
    assert found["F-0001"].kind == "farmer" and found["F-0001"].contact is None
    assert found["F-0001"].authority_code == "LAO-NONGSANIT"
    assert found["OFF-0001"].kind == "officer" and found["OFF-0001"].contact.kind == "authority"
    assert found["CE-NSN-01"].contact.name_en.startswith("Ban Nong Sanit Organic Vegetable")
    for name, phone in demo:
        assert name not in everything and phone not in everything


def test_a_business_code_is_enrolled_once(db, demo):
    with transaction(db.sessions) as s, pytest.raises(Conflict):
        enrol_business(s, code="EXP-0001", kind="exporter", name_th="ซ้ำ", name_en="Again")
