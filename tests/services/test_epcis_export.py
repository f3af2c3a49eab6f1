"""The EPCIS 2.0 export of a lot's whole lineage, on the demo data anchored on a real Anvil: valid against
GS1's schema, ``eventID``s that are the anchored CBV 2.0 hashes (GS1's own tool recomputes them), master data
for every place, party and lot it names in Thai and English and with no personal data; and the identifier
URIs ``/place/{code}`` and ``/party/{code}`` answering the same master data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator
from sqlalchemy import select

from factories import ID_BASE
from gs1_reference import offline, reference_hashes
from traceability.chain.registry import TraceRegistry
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain import codec
from traceability.domain.epcis import MDA, NS, VTYPE_CLASS, VTYPE_LOCATION, VTYPE_PARTY, named_identifiers
from traceability.domain.ids import hash_ni
from traceability.domain.states import OutboxStatus
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.demo import seed_demo
from traceability.services.exports import export_epcis
from traceability.services.identifiers import attribute_values
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
VEG, VEG_A = "NSN-VEG-2609-01", "NSN-VEG-2609-01A"
RICE_1, RICE_2, RICE_M = "NSN-HML-2606-02", "NSN-HML-2606-03", "NSN-HML-2611-M1"


@cache
def validator() -> Draft7Validator:
    schema = json.loads((CONFORMANCE / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]


@pytest.fixture
def demo(db, w3) -> list[str]:
    """The demo seeded on a fresh registry and every event anchored: the demo's lot codes."""
    fresh = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    lots = seed_demo(db.sessions, fresh, id_base=ID_BASE).lots
    Anchorer(db.sessions, fresh, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    return lots


def export(db, lot: str) -> tuple[dict[str, Any], str]:
    """The export as the API serialises it (``codec``: member order kept, exact decimals)."""
    with transaction(db.sessions) as s:
        document = export_epcis(s, lot)
    return codec.loads(codec.dumps(document)), codec.dumps(document)


def vocabulary(document: dict[str, Any], vtype: str) -> dict[str, dict[str, list[Any]]]:
    """Element id → attributes by id, for one vocabulary type of the document's master data."""
    lists = document["epcisHeader"]["epcisMasterData"]["vocabularyList"]
    return {
        e["id"]: attribute_values(e) for v in lists if v["type"] == vtype for e in v["vocabularyElementList"]
    }


def thai(values: list[Any] | None) -> str:
    assert values and values[0]["@language"] == "th"
    text: str = values[0]["@value"]
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in text), text
    return text


def test_every_demo_lot_exports_valid_epcis_whose_event_ids_are_the_anchored_hashes(db, demo):
    with transaction(db.sessions) as s:
        anchored = set(
            s.scalars(
                select(models.Event.hash)
                .join(models.Outbox, models.Outbox.event_id == models.Event.id)
                .where(models.Outbox.status == OutboxStatus.ANCHORED)
            )
        )
        farmers = [(f.display_name, f.phone) for f in s.scalars(select(models.Farmer))]
    assert len(farmers) == 5 and all(name and phone for name, phone in farmers)
    for lot in demo:
        document, text = export(db, lot)
        assert schema_errors(document) == [], lot
        events = document["epcisBody"]["eventList"]
        ids = [e["eventID"] for e in events]
        assert all(i.startswith("ni:///sha-256;") and i.endswith("?ver=CBV2.0") for i in ids)
        assert len(set(ids)) == len(ids) > 0, lot
        assert set(ids) <= {hash_ni(h) for h in anchored}, lot  # each ID is an anchored hash
        with offline():
            theirs, _ = reference_hashes(text)  # GS1's tool on the whole document, as served
        assert theirs == ids, lot
        for name, phone in farmers:  # no personal data anywhere: not in events, not in master data
            assert name not in text and phone not in text, lot
        assert "urn:uuid:" not in text


def test_the_export_follows_the_lineage_both_ways(db, demo):
    harvest_lot, _ = export(db, VEG)  # forward: to the shipment and receipt of the packed lot
    shipped = [
        e
        for e in harvest_lot["epcisBody"]["eventList"]
        if e.get("bizStep") in ("shipping", "receiving")
        and any(q["epcClass"].endswith(f"/10/{VEG_A}") for q in e["quantityList"])
    ]
    assert [e["bizStep"] for e in shipped] == ["shipping", "receiving"]

    merged, _ = export(db, RICE_M)  # backward: every contributing farm's planting and harvest
    origins = {
        (e["bizStep"], e["bizLocation"]["id"].rsplit("/", 1)[1])
        for e in merged["epcisBody"]["eventList"]
        if e.get("bizStep") in ("commissioning", "creating_class_instance") and e["type"] == "ObjectEvent"
    }
    assert origins == {
        (step, plot)
        for step in ("commissioning", "creating_class_instance")
        for plot in ("PLOT-NSN-02", "PLOT-NSN-03")
    }

    one_farm, _ = export(db, RICE_1)  # a contributing lot reaches the merged lot's shipment
    steps = [e.get("bizStep") for e in one_farm["epcisBody"]["eventList"]]
    assert "shipping" in steps and "receiving" in steps
    # ... but not the other farm's own harvest
    assert not any(
        e.get("bizLocation", {}).get("id", "").endswith("/PLOT-NSN-03")
        for e in one_farm["epcisBody"]["eventList"]
    )


def test_master_data_describes_everything_named_in_thai_and_english(db, demo):
    for lot in (VEG, VEG_A, RICE_M):
        document, _ = export(db, lot)
        named = named_identifiers(document["epcisBody"]["eventList"])
        places = vocabulary(document, VTYPE_LOCATION)
        parties = vocabulary(document, VTYPE_PARTY)
        classes = vocabulary(document, VTYPE_CLASS)
        assert set(named.places) <= set(places) and named.places, lot
        assert set(named.parties) <= set(parties) and named.parties, lot
        assert set(named.lots) <= set(classes), lot
        for uri, attrs in places.items():
            assert attrs[MDA + "name"][0] and thai(attrs.get(NS + "nameTh")), uri
            assert attrs[MDA + "countryCode"] == ["TH"], uri
            assert thai(attrs.get(NS + "streetAddressOneTh")) and attrs[MDA + "streetAddressOne"][0], uri
            for ref in attrs.get(NS + "operator", []) + attrs.get(NS + "authority", []):
                assert ref in parties, ref  # what a place refers to is described too
        for uri, attrs in parties.items():
            assert attrs[MDA + "name"][0] and thai(attrs.get(NS + "nameTh")), uri
            kind = attrs[NS + "partyKind"][0]
            if kind == "farmer":
                assert MDA + "phone" not in attrs and MDA + "streetAddressOne" not in attrs, uri
                assert attrs[NS + "authority"][0] in parties
            else:
                assert attrs[MDA + "phone"][0] and thai(attrs.get(NS + "streetAddressOneTh")), uri
        for uri, attrs in classes.items():
            assert attrs[MDA + "descriptionShort"][0] and thai(attrs.get(NS + "descriptionShortTh")), uri
            assert attrs[MDA + "lotNumber"] == [uri.rsplit("/", 1)[1]] and attrs[NS + "crop"][0]
    rice, _ = export(db, RICE_M)
    merged = vocabulary(rice, VTYPE_CLASS)
    [m1] = [attrs for uri, attrs in merged.items() if uri.endswith(RICE_M)]
    assert m1[NS + "variety"] == ["ขาวดอกมะลิ 105"] and m1[NS + "crop"] == ["hom-mali-105"]
    veg, _ = export(db, VEG_A)
    ph = vocabulary(veg, VTYPE_LOCATION)[f"{ID_BASE}/place/PH-NSN"]
    assert ph[MDA + "name"] == ["Ban Nong Sanit community packing house"]
    assert thai(ph[NS + "nameTh"]) == "โรงคัดบรรจุผัก วิสาหกิจชุมชนบ้านหนองสนิท"
    assert ph[MDA + "city"] == ["Chom Phra District"] and ph[MDA + "state"] == ["Surin"]
    assert ph[NS + "operator"] == [f"{ID_BASE}/party/CE-NSN-01"]


def test_the_schema_check_of_master_data_is_real(db, demo):
    document, _ = export(db, VEG_A)
    element = document["epcisHeader"]["epcisMasterData"]["vocabularyList"][0]["vocabularyElementList"][0]
    element["attributes"][0]["attribute"] = ["not", "a", "value"]
    del element["id"]
    assert len(schema_errors(document)) >= 2


# --- the identifier URIs ----------------------------------------------------------------------------------


@pytest.fixture
def client(db, anvil, tmp_path, demo) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine))) as c:
        yield c


def test_identifier_uris_answer_the_master_data_the_export_carries(db, client):
    veg, _ = export(db, VEG_A)
    carried = {
        e["id"]: e
        for v in veg["epcisHeader"]["epcisMasterData"]["vocabularyList"]
        for e in v["vocabularyElementList"]
    }
    for path in ("/place/PH-NSN", "/party/CE-NSN-01", "/party/F-0001"):
        answer = client.get(path, headers={"Accept": "application/ld+json"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/ld+json")
        document = codec.loads(answer.content)
        assert document["@context"] and document["id"] == f"{ID_BASE}{path}"
        assert document["attributes"] == carried[document["id"]]["attributes"], path
    party = codec.loads(client.get("/party/CE-NSN-01").content)  # no preference: JSON-LD
    attrs = attribute_values(party)
    assert party["type"] == VTYPE_PARTY
    assert attrs[MDA + "name"] == ["Ban Nong Sanit Organic Vegetable Community Enterprise"]
    assert attrs[MDA + "phone"] == ["044-000-111"]


def test_a_farmers_identifier_shows_no_name_or_phone(db, client):
    with transaction(db.sessions) as s:
        farmer = s.scalars(select(models.Farmer).where(models.Farmer.code == "F-0001")).one()
        name, phone = farmer.display_name, farmer.phone
    assert name and phone
    answer = client.get("/party/F-0001", headers={"Accept": "application/ld+json"})
    attrs = attribute_values(answer.json())
    assert attrs[NS + "partyKind"] == ["farmer"] and MDA + "phone" not in attrs
    assert attrs[MDA + "name"] == ["Farmer F-0001 of Nong Sanit Subdistrict Administrative Organization"]
    page = client.get("/party/F-0001", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for text in (answer.text, page.text):
        assert name not in text and phone not in text
    assert "เกษตรกร F-0001" in page.text and "<script" not in page.text


def test_a_place_page_is_thai_by_default_and_english_on_request(client):
    th = client.get("/place/PH-NSN", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert th.status_code == 200 and 'lang="th"' in th.text
    assert "โรงคัดบรรจุผัก วิสาหกิจชุมชนบ้านหนองสนิท" in th.text and "โรงคัดบรรจุ" in th.text
    assert "<script" not in th.text and th.headers["vary"] == "Accept"
    en = client.get("/place/PH-NSN?lang=en", headers={"Accept": "text/html"})
    assert 'lang="en"' in en.text and "Ban Nong Sanit community packing house" in en.text
    assert "Packing house" in en.text and "044-000-111" in en.text


def test_unknown_identifiers_are_404_in_json_and_in_html(client):
    answer = client.get("/place/NO-SUCH-PLACE", headers={"Accept": "application/ld+json"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert client.get("/party/NO-SUCH-PARTY").status_code == 404
    page = client.get("/party/NO-SUCH-PARTY", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "ไม่พบ" in page.text and "<script" not in page.text
    page = client.get("/place/NO-SUCH-PLACE?lang=en", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "We know no place with the code NO-SUCH-PLACE." in page.text
    assert client.get("/place/" + "X" * 500).status_code == 404


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_identifier_uris_are_rate_limited(db, anvil, tmp_path, demo):
    settings = Settings(
        var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE, public_rate_per_min=1
    )
    with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine))) as c:
        answers = [c.get("/place/PH-NSN") for _ in range(11)]  # a burst of 10, then the limit
        assert [a.status_code for a in answers[:10]] == [200] * 10
        assert answers[10].status_code == 429 and int(answers[10].headers["retry-after"]) >= 1
        page = c.get("/place/PH-NSN", headers={"Accept": "text/html"})
        assert page.status_code == 429 and "กรุณารอสักครู่" in page.text and "<script" not in page.text


def test_the_identifiers_are_documented_in_openapi(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/place/{code}", "/party/{code}"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert content["application/ld+json"]["example"]["id"].startswith("https://")
        assert "404" in paths[path]["get"]["responses"]
