"""The buyer's provenance page, the lot's public proof bundle and the GS1 Digital Link resolver, over HTTP on
a real Anvil with the demo ledger: every demo lot in Thai and English with its origin, timeline, certification
and verdict and no personal data; revoked, expired and tampered lots said so plainly; the page's weight; the
friendly 404; content negotiation (page, EPCIS, linkset); rate limits; and the service's few queries on SQLite
and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from provenance_fixtures import (
    FIELD,
    MERGED,
    PACKED,
    PUBLIC,
    DemoLedger,
    anchor_all,
    build_demo_ledger,
    more_legs,
    personal_data_in,
)
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from factories import ID_BASE
from traceability.chain.devnode import AnvilNode
from traceability.domain import codec
from traceability.domain.bundle import ProofBundle
from traceability.domain.gs1 import gtin14
from traceability.main import create_app
from traceability.services.certify import certify_lot, revoke_certification
from traceability.services.demo import seed_demo
from traceability.services.provenance import RECHECK_S, VerdictCache, lot_provenance
from traceability.services.runtime import Runtime, make_web3
from traceability.services.verify import verify_bundle
from traceability.store import models
from traceability.store.database import make_sessionmaker, transaction

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, w3) -> DemoLedger:
    return build_demo_ledger(tmp_path_factory.mktemp("provenance"), w3)


def client_for(ledger: DemoLedger, anvil, tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    engine = ledger.engine()
    runtime = Runtime(ledger.settings(tmp_path, anvil.rpc_url, **settings), _engine=engine)
    try:
        with TestClient(create_app(runtime=runtime), follow_redirects=False) as c:
            yield c
    finally:
        engine.dispose()


@pytest.fixture
def client(ledger, anvil, tmp_path) -> Iterator[TestClient]:
    yield from client_for(ledger, anvil, tmp_path)


@pytest.fixture
def own_ledger(ledger, tmp_path) -> DemoLedger:
    """A copy of the demo ledger for a test that changes it (the same registry on chain)."""
    return ledger.copy(tmp_path)


@pytest.fixture
def own_client(own_ledger, anvil, tmp_path) -> Iterator[TestClient]:
    yield from client_for(own_ledger, anvil, tmp_path)


def facts(ledger: DemoLedger) -> dict[str, dict[str, Any]]:
    """What the database says each lot's page must show: product names and its origin's place names."""
    engine = ledger.engine()
    out: dict[str, dict[str, Any]] = {}
    try:
        with transaction(make_sessionmaker(engine)) as s:
            for lot in s.scalars(select(models.Lot)).all():
                out[lot.code] = {"product_th": lot.product_th, "product_en": lot.product_en, "gtin": lot.gtin}
            plots = {p.code: p for p in s.scalars(select(models.Plot)).all()}
            authorities = {a.id: a for a in s.scalars(select(models.Authority)).all()}
            origin = {
                "NSN-VEG": ["PLOT-NSN-01"],
                "NSN-HML-2606-02": ["PLOT-NSN-02"],
                "NSN-HML-2606-03": ["PLOT-NSN-03"],
                "NSN-HML-2611": ["PLOT-NSN-02", "PLOT-NSN-03"],
                "NSN-HML-2607-0": ["PLOT-NSN-05"],
                "NSN-HML-2612-M2": ["PLOT-NSN-05"],
                "SKN-WM": ["PLOT-CKR-01"],
            }
            for code in out:
                prefix = next(p for p in origin if code.startswith(p))
                out[code]["origins"] = [
                    {
                        "village_th": plots[c].village_th,
                        "village_en": plots[c].village_en,
                        "district_th": authorities[plots[c].authority_id].district_th,
                        "district_en": authorities[plots[c].authority_id].district_en
                        or authorities[plots[c].authority_id].district_th,
                        "province_th": authorities[plots[c].authority_id].province_th,
                        "province_en": authorities[plots[c].authority_id].province_en
                        or authorities[plots[c].authority_id].province_th,
                        "authority_th": authorities[plots[c].authority_id].name_th,
                        "authority_en": authorities[plots[c].authority_id].name_en,
                    }
                    for c in origin[prefix]
                ]
    finally:
        engine.dispose()
    return out


def steps(html: str) -> list[tuple[str, str]]:
    """(step, lot) of every timeline entry, in page order."""
    return re.findall(r'data-step="([a-z]+)" data-lot="([A-Z0-9-]+)"', html)


def status(html: str) -> str:
    found = re.search(r'id="verdict" class="[^"]*" data-status="([a-z]+)"', html)
    assert found is not None, "no verdict on the page"
    return found.group(1)


def visible(html: str) -> str:
    """The page's text, without tags and styles."""
    text = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def fail_codes() -> list[str]:
    from traceability.domain.findings import Code

    return [c.value for c in Code]


# ------------------------------------------------------------------ every demo lot, in both languages


def test_every_demo_lot_shows_product_origin_timeline_and_verdict_in_thai_and_english(client, ledger):
    expected = facts(ledger)
    assert sorted(ledger.result.lots) == sorted(expected)
    for code in ledger.result.lots:
        for lang in ("th", "en"):
            answer = client.get(f"/p/{code}", params={"lang": lang} if lang == "en" else None)
            assert answer.status_code == 200, (code, lang, answer.text[:500])
            assert answer.headers["content-type"].startswith("text/html")
            html = answer.text
            assert f'<html lang="{lang}">' in html
            assert expected[code][f"product_{lang}"] in html
            for origin in expected[code]["origins"]:
                for key in ("village", "district", "province", "authority"):
                    assert origin[f"{key}_{lang}"] in html, (code, lang, key)
            # the verdict, with the block, the transaction and the registry anyone can pin
            assert status(html) in ("verified", "warning"), (code, status(html))
            assert ledger.registry.address in html and ">31337<" in html
            assert re.search(r'<dd class="mono">\d+</dd>', html), "no block number"
            tx = re.search(r'title="(0x[0-9a-f]{64})">0x[0-9a-f]{8}…[0-9a-f]{6}<', html)
            assert tx is not None, "no transaction hash"
            # the timeline: oldest first, each step anchored
            found = steps(html)
            assert found and found[0][0] == "planting"
            assert html.count("✓") >= len(found)
            # check it yourself
            assert f'href="/p/{code}/proof.json"' in html and "trace verify \\\n  --bundle" in html
            # nothing personal, no script, nothing from another host
            assert personal_data_in(html, ledger) == []
            assert "<script" not in html.lower()
            assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "a request to another host"
            # plain words, never a finding's code
            assert not any(f">{c}<" in html or f" {c} " in visible(html) for c in fail_codes())
        th = client.get(f"/p/{code}").text
        assert "ยืนยันบนบล็อกเชนแล้ว" in th and "ตรวจสอบด้วยตัวเอง" in th
        en = client.get(f"/p/{code}", params={"lang": "en"}).text
        assert "Verified on the blockchain" in en and "Check it yourself" in en


def test_the_packed_lots_timeline_runs_from_planting_to_the_port_in_order(client, ledger):
    html = client.get(f"/p/{PACKED}").text
    assert [s for s, _lot in steps(html)] == [
        "planting",
        "harvest",
        "cooling",
        "grading",
        "rejected",
        "packing",
        "ship",
        "receive",
        "certification",
    ]
    # the field lot's steps are told as its own, and the packing says where the packed lot came from
    assert [lot for _s, lot in steps(html)][:5] == [FIELD] * 5
    assert re.search(rf'data-step="packing" data-lot="{PACKED}".*?จากล็อต {FIELD}', html, re.S)
    times = re.findall(r"(\d{1,2} \S+ 25\d\d เวลา \d\d:\d\d น\.)", html)
    assert len(times) == len(steps(html)), "every step has its Thai (Buddhist era) date and time"
    assert "1,250 กก." in html and "600 กก." in html
    assert status(html) == "verified"
    assert "ลดอุณหภูมิผลผลิต" in html  # Thai step names on the Thai page
    assert "Planted" not in html and "Harvested" not in html


def test_a_merged_lot_is_one_lineage_with_both_farms(client, ledger):
    html = client.get(f"/p/{MERGED}", params={"lang": "en"}).text
    found = steps(html)
    lots = {lot for _s, lot in found}
    assert {"NSN-HML-2606-02", "NSN-HML-2606-03", MERGED} <= lots
    plantings = [lot for step, lot in found if step == "planting"]
    assert sorted(plantings) == ["NSN-HML-2606-02", "NSN-HML-2606-03"]
    packing = found.index(("packing", MERGED))
    assert all(step != "packing" for step, _lot in found[:packing])
    assert re.search(
        rf'data-step="packing" data-lot="{MERGED}".*?from lot NSN-HML-2606-02, NSN-HML-2606-03', html, re.S
    )
    assert "Ban Khok Klang, Moo 4" in html and "Ban Nong Sanit, Moo 2" in html
    assert "Made from lots: NSN-HML-2606-02, NSN-HML-2606-03" in html
    # not certified: said so, and the verdict is a warning in plain words
    assert "No certificate" in html
    assert status(html) == "warning"
    assert re.search(r'data-status="warning">.*?<li>[^<]{10,}</li>', html, re.S)


def test_a_certified_lot_names_the_standard_the_authority_and_an_officer_role_only(client, ledger):
    en = client.get(f"/p/{PACKED}", params={"lang": "en"}).text
    section = en[en.index('id="certification"') : en.index('id="timeline"')]
    assert "Organic Thailand PGS" in section and "Valid" in section
    assert "an officer of Nong Sanit Subdistrict Administrative Organization" in section
    assert "Valid until" in section and f"For lot {FIELD}" in section
    th = client.get(f"/p/{PACKED}").text
    section = th[th.index('id="certification"') : th.index('id="timeline"')]
    assert "เจ้าหน้าที่ขององค์การบริหารส่วนตำบลหนองสนิท" in section and "ใช้ได้" in section
    assert re.search(r"\d{1,2} \S+ 25\d\d", section), "dates in the Buddhist era"
    assert personal_data_in(th + en, ledger) == []


# ------------------------------------------------------------------ revoked, expired, tampered


def _officer(ledger: DemoLedger) -> dict[str, str]:
    return ledger.result.officers[0]


@pytest.fixture
def fresh_chain(tmp_path) -> Iterator[tuple[AnvilNode, DemoLedger]]:
    """The demo on an Anvil of its own: expiry is judged by wall-clock time on the page and by block time on
    chain, and other tests move the shared node's clock days ahead."""
    with AnvilNode() as node:
        (tmp_path / "chain").mkdir()
        yield node, build_demo_ledger(tmp_path / "chain", make_web3(node.rpc_url))


@pytest.fixture
def fresh_client(fresh_chain, tmp_path) -> Iterator[TestClient]:
    node, ledger = fresh_chain
    yield from client_for(ledger, node, tmp_path)


def test_a_revoked_and_an_expired_certification_are_said_so(fresh_chain, fresh_client):
    _node, own_ledger = fresh_chain
    own_client = fresh_client
    engine = own_ledger.engine()
    sessions = make_sessionmaker(engine)
    officer = _officer(own_ledger)
    expiring_in = (
        8  # certifying takes a few seconds (a keystore is opened per certification): margin under load
    )
    try:
        certified = [
            certify_lot(
                sessions,
                own_ledger.registry,
                officer_username=officer["username"],
                passphrase=officer["passphrase"],
                lot_code=MERGED,
                standard=standard,
                certificate_hash="0x" + hashlib.sha256(standard.encode()).hexdigest(),
                place_id=officer["authority"],
                id_base=ID_BASE,
                expires=expires,
            )
            for standard, expires in (
                ("GAP", int(time.time()) + expiring_in),
                ("Thai Hom Mali Rice GI", int(time.time()) + 400 * 24 * 3600),
            )
        ]
        revoke_certification(
            sessions,
            own_ledger.registry,
            officer_username=officer["username"],
            passphrase=officer["passphrase"],
            cert_id=certified[1].cert_id,
            reason="ตรวจพบการปนข้าวพันธุ์อื่น",
            place_id=officer["authority"],
            id_base=ID_BASE,
        )
        anchor_all(sessions, own_ledger.registry)
    finally:
        engine.dispose()
    time.sleep(expiring_in + 1)
    th = own_client.get(f"/p/{MERGED}").text
    section = th[th.index('id="certification"') : th.index('id="timeline"')]
    assert 'data-state="revoked"' in section and 'data-state="expired"' in section
    assert "ถูกเพิกถอน" in section and "หมดอายุ" in section
    assert "ข้าวหอมมะลิไทย สิ่งบ่งชี้ทางภูมิศาสตร์ (GI)" in section  # a known standard, in Thai
    assert "b-ok" not in section  # neither is shown as valid
    assert status(th) != "verified"
    en = own_client.get(f"/p/{MERGED}", params={"lang": "en"}).text
    section = en[en.index('id="certification"') : en.index('id="timeline"')]
    assert "Revoked" in section and "Expired" in section and "no longer vouches" in section
    assert [s for s, _lot in steps(en)].count("revocation") == 1


def test_a_tampered_event_turns_the_page_to_failed_within_a_quarter_second_with_a_plain_reason(
    own_ledger, own_client
):
    assert status(own_client.get(f"/p/{PACKED}").text) == "verified"  # now in the page's verdict cache
    engine = own_ledger.engine()
    try:
        with transaction(make_sessionmaker(engine)) as s:
            harvest = s.scalars(
                select(models.Event)
                .join(models.EventLot, models.EventLot.event_id == models.Event.id)
                .where(models.EventLot.lot_code == FIELD, models.Event.kind == "harvest")
            ).one()
            assert '"1250"' in harvest.body or "1250" in harvest.body
            s.execute(
                update(models.Event)
                .where(models.Event.id == harvest.id)
                .values(body=harvest.body.replace("1250", "1450", 1))
            )
    finally:
        engine.dispose()
    time.sleep(RECHECK_S)  # a kept page is checked against the ledger at most every RECHECK_S
    th = own_client.get(f"/p/{PACKED}").text
    assert status(th) == "failed"
    assert "ตรวจสอบไม่ผ่าน" in th
    reasons = re.findall(r"<li>([^<]+)</li>", th[th.index('id="verdict"') : th.index('id="product"')])
    assert reasons and all(re.search("[\u0e00-\u0e7f]", r) for r in reasons), reasons
    en = own_client.get(f"/p/{PACKED}", params={"lang": "en"}).text
    assert status(en) == "failed" and "Not verified" in en
    assert not any(c in visible(en).split() for c in fail_codes())


# ------------------------------------------------------------------ weight, 404, proof bundle


def test_a_twenty_event_lineage_page_weighs_at_most_30_kb_with_its_styles(client):
    for lang in ("th", "en"):
        answer = client.get(f"/p/{MERGED}", params={"lang": lang})
        html = answer.text
        assert len(steps(html)) == 20
        total = len(answer.content)
        for sheet in re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html):
            total += len(client.get(sheet).content)
        assert total <= 30 * 1024, f"{lang}: {total} bytes"


@pytest.mark.parametrize(
    ("path", "lang", "words"),
    [
        ("/p/NO-SUCH-LOT", "th", "ไม่พบล็อตสินค้า"),
        ("/p/NO-SUCH-LOT?lang=en", "en", "Lot not found"),
        ("/p/x%20y", "th", "ไม่พบล็อตสินค้า"),
        ("/01/08850001000019/10/NO-SUCH-LOT?lang=en", "en", "Lot not found"),
    ],
)
def test_an_unknown_lot_is_a_friendly_html_404_in_the_right_language(client, path, lang, words):
    answer = client.get(path, headers={"accept": BROWSER})
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert f'<html lang="{lang}">' in answer.text and words in answer.text
    assert "<script" not in answer.text


def test_a_lot_code_typed_into_the_address_is_never_markup(client):
    answer = client.get("/p/%3Cb%3EHI%3Cb%3E", params={"lang": "en"})
    assert answer.status_code == 404 and "<b>HI" not in answer.text and "&lt;b&gt;HI" in answer.text


def test_a_chain_outage_still_shows_the_lots_story_and_says_it_cannot_check(ledger, tmp_path):
    engine = ledger.engine()
    settings = ledger.settings(tmp_path, "http://127.0.0.1:9")  # nothing listens there
    try:
        with TestClient(create_app(runtime=Runtime(settings, _engine=engine))) as c:
            page = c.get(f"/p/{PACKED}", params={"lang": "en"})
            assert page.status_code == 200 and status(page.text) == "unavailable"
            assert "Cannot check with the blockchain right now" in page.text
            assert len(steps(page.text)) == 9 and ledger.registry.address in page.text
            proof = c.get(f"/p/{PACKED}/proof.json")
            assert proof.status_code == 503 and proof.json()["error"]["code"] == "chain_unavailable"
    finally:
        engine.dispose()


def test_the_proof_bundle_downloads_and_verifies_against_the_chain(client, ledger):
    answer = client.get(f"/p/{PACKED}/proof.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-disposition"] == f'attachment; filename="{PACKED}-proof.json"'
    bundle = ProofBundle.model_validate(codec.loads(answer.content))
    assert bundle.lot_code == PACKED and bundle.contract == ledger.registry.address.lower()
    assert bundle.chain_id == 31337 and FIELD in bundle.lineage_lots
    assert verify_bundle(bundle, ledger.registry).status.value == "verified"
    assert personal_data_in(answer.text, ledger) == []
    missing = client.get("/p/NO-SUCH-LOT/proof.json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_lot"


# ------------------------------------------------------------------ the resolver


def test_the_resolver_gives_a_browser_the_page(client, ledger):
    gtin = facts(ledger)[PACKED]["gtin"]
    for key in (gtin14(gtin), gtin14(gtin)[1:]):  # GTIN-14 and the GTIN-13 it pads
        answer = client.get(f"/01/{key}/10/{PACKED}", headers={"accept": BROWSER})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        assert status(answer.text) == "verified" and "ผักอินทรีย์" in answer.text
        assert 'rel="linkset"' in answer.headers["link"] and "Accept" in answer.headers["vary"]
    en = client.get(f"/01/{gtin14(gtin)}/10/{PACKED}?lang=en", headers={"accept": BROWSER})
    assert en.status_code == 200 and "Verified on the blockchain" in en.text


def _lots_in(document: dict[str, Any]) -> set[str]:
    """The lot codes the EPCIS document's events name (Digital Link ``/10/{lot}`` or ``/lot/{lot}`` URIs)."""
    text = codec.dumps(document["epcisBody"]["eventList"])
    return {a or b for a, b in re.findall(r"/10/([A-Z0-9-]+)|/lot/([A-Z0-9-]+)", text)}


def test_the_resolver_gives_the_epcis_document_for_ld_json_or_link_type_epcis(client, ledger):
    gtin = gtin14(facts(ledger)[PACKED]["gtin"])
    for answer in (
        client.get(f"/01/{gtin}/10/{PACKED}", headers={"accept": "application/ld+json"}),
        client.get(f"/01/{gtin}/10/{PACKED}", params={"linkType": "gs1:epcis"}, headers={"accept": BROWSER}),
        client.get(f"/lot/{PACKED}", headers={"accept": "application/ld+json"}),
    ):
        assert answer.status_code == 200, answer.text[:300]
        assert answer.headers["content-type"].startswith("application/ld+json")
        document = codec.loads(answer.content)
        assert document["type"] == "EPCISDocument"
        assert PACKED in _lots_in(document) and FIELD in _lots_in(document)
        assert _lots_in(document) <= {PACKED, FIELD, "NSN-VEG-2609-01B"}


def test_the_resolver_gives_the_linkset_with_the_gs1_link_types(client, ledger):
    gtin = gtin14(facts(ledger)[PACKED]["gtin"])
    anchor = f"{PUBLIC}/01/{gtin}/10/{PACKED}"
    for answer in (
        client.get(f"/01/{gtin}/10/{PACKED}", params={"linkType": "linkset"}),
        client.get(f"/01/{gtin}/10/{PACKED}", headers={"accept": "application/linkset+json"}),
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/linkset+json")
        [links] = answer.json()["linkset"]
        assert links["anchor"] == anchor
        voc = "https://gs1.org/voc/"
        for link_type in ("pip", "epcis", "certificationInfo", "traceability", "defaultLink"):
            assert links[voc + link_type], link_type
            for link in links[voc + link_type]:
                assert set(link) == {"href", "title", "type", "hreflang"}
        pip = {link["hreflang"][0]: link["href"] for link in links[voc + "pip"]}
        assert pip == {"th": f"{PUBLIC}/p/{PACKED}", "en": f"{PUBLIC}/p/{PACKED}?lang=en"}
        assert links[voc + "traceability"][0]["href"] == f"{PUBLIC}/p/{PACKED}/proof.json"
        assert links[voc + "epcis"][0]["type"] == "application/ld+json"
    # the links lead where they say
    followed = client.get(f"/01/{gtin}/10/{PACKED}", params={"linkType": "gs1:epcis"})
    assert codec.loads(followed.content)["type"] == "EPCISDocument"
    proof = client.get(f"/01/{gtin}/10/{PACKED}", params={"linkType": "gs1:traceability"})
    assert proof.status_code == 307 and proof.headers["location"] == f"/p/{PACKED}/proof.json"
    # the lot's identifier-base URI answers the same, anchored at the identifier in its events
    [links] = client.get(f"/lot/{FIELD}", params={"linkType": "linkset"}).json()["linkset"]
    assert links["anchor"] == f"{ID_BASE}/lot/{FIELD}"


def test_the_resolver_refuses_a_gtin_that_is_not_the_lots_and_an_unknown_link_type(client, ledger):
    gtin = gtin14(facts(ledger)[PACKED]["gtin"])
    other = gtin14(facts(ledger)[MERGED]["gtin"])
    bad_check = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    for key, code in ((other, "gtin_mismatch"), (bad_check, "invalid_gtin"), ("123", "invalid_gtin")):
        page = client.get(f"/01/{key}/10/{PACKED}", headers={"accept": BROWSER})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        machine = client.get(f"/01/{key}/10/{PACKED}", headers={"accept": "application/ld+json"})
        assert machine.status_code == 404 and machine.json()["error"]["code"] == code
    field_lot = client.get(f"/01/{gtin}/10/{FIELD}", headers={"accept": "application/linkset+json"})
    assert field_lot.status_code == 404 and field_lot.json()["error"]["code"] == "gtin_mismatch"
    unknown = client.get(f"/01/{gtin}/10/{PACKED}", params={"linkType": "gs1:recipeInfo"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_link_type"
    assert "gs1:recipeInfo" in unknown.json()["error"]["message"]


def test_every_public_route_is_rate_limited_per_client(ledger, anvil, tmp_path):
    for c in client_for(ledger, anvil, tmp_path, public_rate_per_min=1):
        gtin = gtin14(facts(ledger)[PACKED]["gtin"])
        for _ in range(10):  # the burst: max(10, rate // 10)
            assert c.get(f"/p/{PACKED}").status_code == 200
        page = c.get(f"/p/{PACKED}")
        assert page.status_code == 429 and int(page.headers["retry-after"]) >= 1
        assert page.headers["content-type"].startswith("text/html") and "กรุณารอสักครู่" in page.text
        english = c.get(f"/p/{PACKED}", params={"lang": "en"})
        assert english.status_code == 429 and "Please wait a moment" in english.text
        for path, headers in (
            (f"/p/{PACKED}/proof.json", {}),
            (f"/01/{gtin}/10/{PACKED}", {"accept": "application/linkset+json"}),
            (f"/lot/{PACKED}", {"accept": "application/ld+json"}),
        ):
            answer = c.get(path, headers=headers)
            assert answer.status_code == 429 and answer.json()["error"]["code"] == "rate_limited", path
            assert int(answer.headers["retry-after"]) >= 1
        assert c.get(f"/01/{gtin}/10/{PACKED}", headers={"accept": BROWSER}).status_code == 429
        # another client address has its own allowance
        elsewhere = TestClient(c.app, client=("10.0.0.8", 40000))
        assert elsewhere.get(f"/p/{PACKED}").status_code == 200
    for c in client_for(ledger, anvil, tmp_path, public_rate_per_min=1):
        assert c.get(f"/p/{PACKED}").status_code == 200  # a new app, a fresh bucket


def test_the_json_forms_are_documented_and_the_pages_are_not(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert "/p/{lot_code}" not in paths
    proof = paths["/p/{lot_code}/proof.json"]["get"]
    assert proof["summary"] and proof["responses"]["200"]["content"]["application/json"]["example"]
    resolver = paths["/01/{gtin}/10/{lot}"]["get"]
    content = resolver["responses"]["200"]["content"]
    assert content["application/ld+json"]["example"]["type"] == "EPCISDocument"
    assert content["application/linkset+json"]["example"]["linkset"]
    assert {p["name"] for p in resolver["parameters"]} >= {"gtin", "lot", "linkType"}
    assert "/lot/{lot_code}" in paths


# ------------------------------------------------------------------ the service itself


def test_the_verdict_cache_keeps_an_answer_30_seconds_and_only_while_the_ledger_is_unchanged():
    from traceability.services.provenance import PublicVerdict

    now = [1000.0]
    cache = VerdictCache(clock=lambda: now[0])
    verdict = PublicVerdict("verified", (), datetime.now(UTC))
    cache.put(("db", "0xreg", "LOT-1"), "fp1", verdict, 30.0)
    assert cache.get(("db", "0xreg", "LOT-1"), "fp1") is verdict
    assert cache.get(("db", "0xreg", "LOT-1"), "fp2") is None  # the ledger changed
    assert cache.get(("db", "0xother", "LOT-1"), "fp1") is None  # another registry
    now[0] += 29.9
    assert cache.get(("db", "0xreg", "LOT-1"), "fp1") is verdict
    now[0] += 0.2
    assert cache.get(("db", "0xreg", "LOT-1"), "fp1") is None


def test_the_public_view_is_read_in_a_few_queries_whatever_the_lineage(db, w3):
    """On SQLite and PostgreSQL: a 20-event lineage costs no more queries than a short one (no query per
    event), and nothing in the view names a farmer."""
    from eth_account import Account

    from traceability.chain.registry import TraceRegistry
    from traceability.config import ANVIL_DEV_KEY

    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    seed_demo(db.sessions, registry, id_base=ID_BASE)
    with transaction(db.sessions) as s:
        more_legs(s, MERGED, 9)
    anchor_all(db.sessions, registry)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        with transaction(db.sessions) as s:
            statements.clear()
            long = lot_provenance(s, MERGED)
            long_queries = len(statements)
            statements.clear()
            short = lot_provenance(s, "SKN-WM-2608-01")
            short_queries = len(statements)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert len(long.steps) == 20 and len(short.steps) == 6
    assert long_queries <= 12, statements
    assert long_queries - short_queries <= 2  # one more generation of lots to walk, not one per event
    assert [s.event_time for s in long.steps] == sorted(s.event_time for s in long.steps)
    assert {o.village_th for o in long.origins} == {"บ้านโคกกลาง หมู่ 4", "บ้านหนองสนิท หมู่ 2"}
    assert all(s.anchor is not None for s in long.steps)
    text = repr(long) + repr(short)
    assert "F-000" not in text and "081234" not in text and "นาย" not in text
    assert long.latest_anchor is not None and long.fingerprint.startswith("20:20:")
    assert lot_provenance.__module__ == "traceability.services.provenance"
    assert timedelta(0) <= datetime.now(UTC) - max(s.event_time for s in long.steps)


def test_the_english_page_gives_recorded_thai_text_in_english_beside_the_thai(client):
    en = client.get(f"/p/{PACKED}", params={"lang": "en"}).text
    product = en[en.index('id="product"') : en.index('id="origin"')]
    assert "Chinese kale and lettuce (ผักคะน้าและผักกาดหอม)" in product
    assert "Grade A (เกรด A)" in product
    th = client.get(f"/p/{PACKED}").text
    assert "Chinese kale" not in th and "ผักคะน้าและผักกาดหอม" in th
