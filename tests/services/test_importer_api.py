"""The importer API over HTTP on a real Anvil: API keys made, listed and revoked with `trace apikey` (stored
only hashed, on SQLite and PostgreSQL), refused without a key, with a revoked key or a sign-in token, rate
limited per key; the verdict of anchored demo lots; the proof bundle posted back (as served, tampered, naming
another registry, garbage, too big); the EPCIS and FSMA 204 exports; the public registry answer; a chain that
does not answer; and an example for every operation of the OpenAPI document."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import ID_BASE, seed_parties
from traceability.chain.registry import TraceRegistry
from traceability.cli import main
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain import codec
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.apikeys import create_api_key, hash_key, record_use
from traceability.services.demo import DemoResult, seed_demo
from traceability.services.proof import build_bundle
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import make_engine, make_sessionmaker, migrate, transaction

PACKED = "NSN-VEG-2609-01A"  # split from the certified vegetable lot, shipped and received: verified
MERGED = "NSN-HML-2611-M1"  # two farmers' paddy milled together, never certified: warning
UNKNOWN = "NSN-NONE-0000"

KEYED = [
    ("GET", f"/api/v1/lots/{PACKED}/verify"),
    ("GET", f"/api/v1/lots/{PACKED}/proof"),
    ("POST", "/api/v1/verify"),
    ("GET", f"/api/v1/lots/{PACKED}/epcis"),
    ("GET", f"/api/v1/lots/{PACKED}/fsma204.csv"),
    ("GET", "/api/v1/fsma204.csv?product=organic-veg&from=2026-01-01&to=2026-12-31"),
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def call(client: TestClient, method: str, path: str, key: str | None = None, body: bytes = b"{}") -> Any:
    headers = bearer(key) if key else {}
    if method == "POST":
        return client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
    return client.get(path, headers=headers)


def run_cli(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out, out.err


# --- API keys: the command, the storage, the refusals (SQLite and PostgreSQL) ------------------------------


@pytest.fixture
def keyed_app(db, anvil, registry, tmp_path) -> Iterator[tuple[Settings, TestClient, dict[str, Any]]]:
    parties = seed_parties(db.sessions, registry, with_officer=True)
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
    )
    with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine)), client=("10.0.0.7", 4000)) as c:
        yield settings, c, parties


def test_apikey_create_prints_the_key_alone_on_its_last_line_and_stores_only_its_hash(db, keyed_app, capsys):
    settings, client, _ = keyed_app
    code, out, err = run_cli(settings, capsys, "apikey", "create", "acme-foods.us")
    assert code == 0, err
    lines = out.rstrip("\n").split("\n")
    key = lines[-1]
    assert len(lines) >= 2 and key.startswith("ttk_") and " " not in key and len(key) == 47
    assert key not in "\n".join(lines[:-1])  # said once, on its own line
    with transaction(db.sessions) as s:
        rows = s.scalars(select(models.ApiKey)).all()
        stored = [{c.name: getattr(row, c.name) for c in models.ApiKey.__table__.columns} for row in rows]
    assert (
        len(stored) == 1 and stored[0]["key_hash"] == hash_key(key) and stored[0]["name"] == "acme-foods.us"
    )
    assert not any(key in str(value) for value in stored[0].values())
    assert key.startswith(stored[0]["prefix"]) and len(stored[0]["prefix"]) < 16
    # The key opens the importer API (an unknown lot is a 404, not a 401).
    answer = client.get(f"/api/v1/lots/{UNKNOWN}/epcis", headers=bearer(key))
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_lot"

    # A name is never reused, not even after a revocation; a bad name is a usage error.
    code, out, err = run_cli(settings, capsys, "apikey", "create", "acme-foods.us")
    assert code == 1 and "already exists" in err and "ttk_" not in out + err
    code, _, err = run_cli(settings, capsys, "apikey", "create", "bad name!")
    assert code == 2 and "name" in err
    code, _, err = run_cli(settings, capsys, "apikey", "create", "x" * 65)
    assert code == 2


def test_apikey_list_never_prints_a_key_and_revoke_makes_it_401(db, keyed_app, capsys):
    settings, client, _ = keyed_app
    keys = {}
    for name in ("importer-a", "importer-b"):
        code, out, _ = run_cli(settings, capsys, "apikey", "create", name)
        assert code == 0
        keys[name] = out.rstrip("\n").split("\n")[-1]
    ok = client.get(f"/api/v1/lots/{UNKNOWN}/proof", headers=bearer(keys["importer-a"]))
    assert ok.status_code == 404

    code, out, _ = run_cli(settings, capsys, "apikey", "revoke", "importer-a")
    assert code == 0 and "revoked" in out
    for method, path in KEYED:
        answer = call(client, method, path, keys["importer-a"])
        assert answer.status_code == 401, (path, answer.text)
        assert (
            answer.json()["error"]["code"] == "unauthorized"
            and "revoked" in answer.json()["error"]["message"]
        )
        assert answer.headers["www-authenticate"] == "Bearer"
    # the other key still works
    assert client.get(f"/api/v1/lots/{UNKNOWN}/proof", headers=bearer(keys["importer-b"])).status_code == 404

    code, out, _ = run_cli(settings, capsys, "apikey", "revoke", "importer-a")
    assert code == 0 and "already revoked" in out
    code, _, err = run_cli(settings, capsys, "apikey", "revoke", "no-such-key")
    assert code == 1 and "no API key named" in err

    for argv in (("apikey", "list"), ("apikey", "list", "--json")):
        code, out, _ = run_cli(settings, capsys, *argv)
        assert code == 0
        assert "importer-a" in out and "importer-b" in out
        assert not any(key in out for key in keys.values())
        assert all(key[:12] in out for key in keys.values())  # prefixes tell them apart
    listed = {k["name"]: k for k in json.loads(out)["keys"]}
    assert listed["importer-a"]["revoked_at"] and listed["importer-a"]["active"] is False
    assert listed["importer-b"]["revoked_at"] is None and listed["importer-b"]["last_used_at"]


def test_last_use_is_written_at_most_once_a_minute(db, keyed_app):
    _, client, _ = keyed_app
    with transaction(db.sessions) as s:
        key = create_api_key(s, "poller").key
    assert client.get(f"/api/v1/lots/{UNKNOWN}/epcis", headers=bearer(key)).status_code == 404
    with transaction(db.sessions) as s:
        row = s.scalars(select(models.ApiKey).where(models.ApiKey.name == "poller")).one()
        first, key_id = row.last_used_at, row.id
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    for _ in range(3):
        assert client.get(f"/api/v1/lots/{UNKNOWN}/epcis", headers=bearer(key)).status_code == 404
    with transaction(db.sessions) as s:
        again = s.scalars(select(models.ApiKey.last_used_at).where(models.ApiKey.id == key_id)).one()
    assert again == first  # no write on every request
    with transaction(db.sessions) as s:
        assert record_use(s, key_id, now=first + timedelta(seconds=59)) is False
        assert record_use(s, key_id, now=first + timedelta(seconds=61)) is True


def test_no_key_a_made_up_key_and_sign_in_tokens_are_refused_on_every_importer_endpoint(keyed_app):
    _, client, parties = keyed_app
    farmer = client.post("/api/v1/auth/token", json={"phone": "0811111111", "pin": "1234"}).json()
    officer = client.post(
        "/api/v1/auth/token",
        json={"username": parties["officer"].username, "password": "officer-password"},
    ).json()
    assert farmer["role"] == "farmer" and officer["role"] == "officer"
    for method, path in KEYED:
        for key in (None, "ttk_" + "A" * 43, "not-even-a-key"):
            answer = call(client, method, path, key)
            assert answer.status_code == 401, (path, key, answer.text)
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
        for token in (farmer["access_token"], officer["access_token"]):
            answer = call(client, method, path, token)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json()["error"] == {
                "code": "forbidden",
                "message": "importer endpoints take an API key, not a sign-in token",
            }
    # Basic credentials are not a bearer key either.
    answer = client.get(f"/api/v1/lots/{PACKED}/verify", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert answer.status_code == 401


# --- the demo ledger, anchored ----------------------------------------------------------------------------


class Demo:
    def __init__(self, url: str, registry: TraceRegistry, result: DemoResult, rpc_url: str) -> None:
        self.url, self.registry, self.result, self.rpc_url = url, registry, result, rpc_url
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)

    def settings(self, var_dir: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "var_dir": var_dir,
            "rpc_url": self.rpc_url,
            "database_url": self.url,
            "id_base": ID_BASE,
            "contract_address": self.registry.address,
            "confirmations": 0,
        }
        return Settings(**{**values, **overrides})

    def key(self, name: str) -> str:
        with transaction(self.sessions) as s:
            return create_api_key(s, name).key


@pytest.fixture(scope="module")
def demo(anvil, w3, tmp_path_factory) -> Iterator[Demo]:
    """`trace demo`'s data on a TraceRegistry of its own, every event anchored (what `trace worker --once`
    does), in a SQLite file shared by this module's tests (they only read it, and add keys)."""
    path = tmp_path_factory.mktemp("importer") / "demo.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    registry = TraceRegistry.deploy(w3, Account.from_key(ANVIL_DEV_KEY))
    result = seed_demo(sessions, registry, id_base=ID_BASE)
    Anchorer(sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    engine.dispose()
    found = Demo(url, registry, result, anvil.rpc_url)
    yield found
    found.engine.dispose()


@pytest.fixture(scope="module")
def key(demo) -> str:
    return demo.key("importer-demo")


@pytest.fixture
def client(demo, tmp_path) -> Iterator[TestClient]:
    app = create_app(runtime=Runtime(demo.settings(tmp_path), _engine=demo.engine))
    with TestClient(app, client=("10.0.0.8", 4000)) as c:
        yield c


def test_a_keys_requests_are_rate_limited_per_key_with_retry_after(demo, tmp_path):
    app = create_app(runtime=Runtime(demo.settings(tmp_path, importer_rate_per_min=2), _engine=demo.engine))
    first, second = demo.key("rate-1"), demo.key("rate-2")
    with TestClient(app) as client:
        path = f"/api/v1/lots/{UNKNOWN}/epcis"
        assert [client.get(path, headers=bearer(first)).status_code for _ in range(2)] == [404, 404]
        limited = client.get(path, headers=bearer(first))
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get(path, headers=bearer(second)).status_code == 404  # per key, not for everyone
        # a request without a valid key is refused before it costs the key anything
        assert client.get(path, headers=bearer("ttk_" + "B" * 43)).status_code == 401


def test_an_anchored_certified_lot_is_verified_with_every_check_and_its_evidence(demo, client, key):
    answer = client.get(f"/api/v1/lots/{PACKED}/verify", headers=bearer(key))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    verdict = answer.json()
    assert verdict["lot_code"] == PACKED and verdict["status"] == "verified" and verdict["reasons"] == []
    assert [c["code"] for c in verdict["checks"]] == [
        "registry",
        "hashes",
        "anchors",
        "prev_links",
        "mass_balance",
        "yield",
        "certifications",
        "origin_risk",
    ]
    assert all(c["severity"] == "ok" and c["message"]["th"] and c["message"]["en"] for c in verdict["checks"])
    assert verdict["registry"] == {"chain_id": 31337, "contract": demo.registry.address.lower()} or (
        verdict["registry"]["contract"].lower() == demo.registry.address.lower()
        and verdict["registry"]["chain_id"] == 31337
    )
    events = verdict["evidence"]["events"]
    assert events and all(e["hash_ok"] and e["anchor"]["tx_hash"].startswith("0x") for e in events)
    assert all(e["anchor"]["block_number"] > 0 and e["anchor"]["included"] for e in events)
    # exact decimals survive: kilograms are strings, never floats
    assert all(isinstance(m["output_kg"], str) for m in verdict["evidence"]["mass_balance"])
    # origin risk learned from the whole ledger: an honest lot has no signal and a score of 0
    risk = verdict["risk"]
    assert risk["lot_code"] == PACKED and risk["basis"] == "ledger"
    assert risk["score"] == 0 and risk["level"] == "none" and risk["signals"] == []


def test_the_demo_laundering_lot_is_flagged_by_the_verify_api_and_its_posted_bundle(demo, client, key):
    """The trader's rice merged into a certified farmer's lot beyond the plot's capacity: the API's verdict
    (learned from the ledger) and the verdict of its posted proof bundle (the bundle alone) both warn."""
    case = demo.result.laundering
    verdict = client.get(f"/api/v1/lots/{case['lot']}/verify", headers=bearer(key)).json()
    assert verdict["status"] == "warning" and verdict["risk"]["basis"] == "ledger"
    assert verdict["risk"]["score"] >= 70 and "capacity_exceeded" in verdict["risk"]["codes"]
    [check] = [c for c in verdict["checks"] if c["code"] == "origin_risk"]
    assert check["severity"] == "warning" and check["detail"]["score"] == verdict["risk"]["score"]
    reason = next(r for r in verdict["reasons"] if r["code"] == "capacity_exceeded")
    assert case["plot"] in reason["message"]["en"] and case["plot"] in reason["message"]["th"]
    assert "F-0" not in reason["message"]["en"] + reason["message"]["th"]  # texts never name a farmer
    bundle = client.get(f"/api/v1/lots/{case['lot']}/proof", headers=bearer(key))
    posted = client.post("/api/v1/verify", content=bundle.content, headers=bearer(key)).json()
    assert posted["status"] == "warning" and posted["risk"]["basis"] == "bundle"
    assert "capacity_exceeded" in posted["risk"]["codes"]
    honest = client.get(f"/api/v1/lots/{PACKED}/verify", headers=bearer(key)).json()
    assert honest["risk"]["score"] == 0


def test_an_uncertified_lot_is_a_warning_with_a_coded_reason_in_thai_and_english(client, key):
    verdict = client.get(f"/api/v1/lots/{MERGED}/verify", headers=bearer(key)).json()
    assert verdict["status"] == "warning"
    [reason] = [r for r in verdict["reasons"] if r["code"] == "not_certified"]
    assert reason["check"] == "certifications" and reason["severity"] == "warning"
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in reason["message"]["th"])
    assert "certification" in reason["message"]["en"] and reason["message"]["en"] != reason["message"]["th"]


def test_an_unknown_lot_is_a_404_in_json_on_every_lot_endpoint(client, key):
    for suffix in ("verify", "proof", "epcis", "fsma204.csv"):
        for lot in (UNKNOWN, "no such lot", "x"):
            answer = client.get(f"/api/v1/lots/{lot}/{suffix}", headers=bearer(key))
            assert answer.status_code == 404, (suffix, lot)
            assert answer.json()["error"]["code"] == "unknown_lot"


def test_the_proof_bundle_posted_back_verifies_and_any_changed_byte_fails_naming_the_event(client, key, demo):
    proof = client.get(f"/api/v1/lots/{PACKED}/proof", headers=bearer(key))
    assert proof.status_code == 200 and proof.headers["content-type"] == "application/json"
    bundle = codec.loads(proof.content)
    assert bundle["lot_code"] == PACKED and bundle["contract"].lower() == demo.registry.address.lower()
    again = client.post("/api/v1/verify", content=proof.content, headers=bearer(key))
    assert again.status_code == 200 and again.json()["status"] == "verified"

    # One byte of one event: the harvest's 1250 kg becomes 1251 kg.
    raw = proof.content
    [harvest] = [e for e in bundle["events"] if e["epcis"].get("tt:kind", "").endswith("#harvest")]
    quantity = harvest["epcis"]["quantityList"][0]["quantity"]
    harvest["epcis"]["quantityList"][0]["quantity"] = quantity + 1
    tampered = codec.dumps(bundle).encode()
    assert len(tampered) == len(raw) and sum(a != b for a, b in zip(tampered, raw, strict=True)) == 1
    verdict = client.post("/api/v1/verify", content=tampered, headers=bearer(key)).json()
    assert verdict["status"] == "failed"
    event_id = harvest["epcis"]["eventID"].removeprefix("urn:uuid:")
    mismatch = [r for r in verdict["reasons"] if r["code"] == "hash_mismatch"]
    assert [r["event_id"] for r in mismatch] == [event_id]
    assert mismatch[0]["message"]["th"] and event_id in mismatch[0]["message"]["en"]


def test_a_bundle_naming_another_registry_fails_as_unknown_registry(client, key):
    bundle = codec.loads(client.get(f"/api/v1/lots/{PACKED}/proof", headers=bearer(key)).content)
    bundle["contract"] = "0x" + "11" * 20
    verdict = client.post("/api/v1/verify", content=codec.dumps(bundle), headers=bearer(key)).json()
    assert verdict["status"] == "failed"
    assert [r["code"] for r in verdict["reasons"]] == ["unknown_registry"]


def test_what_is_not_a_bundle_is_a_422_naming_what_is_wrong_and_a_huge_body_a_413(client, key):
    cases = [
        (b"", "invalid_json"),
        (b"not json at all", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2, 3]", "not_a_bundle"),
        (b'{"lot_code": "NSN-VEG-2609-01A"}', "invalid_input"),
    ]
    for body, code in cases:
        answer = client.post("/api/v1/verify", content=body, headers=bearer(key))
        assert answer.status_code == 422, body
        assert answer.json()["error"]["code"] == code
    missing = client.post("/api/v1/verify", content=b'{"lot_code": "NSN-VEG-2609-01A"}', headers=bearer(key))
    assert "events" in missing.json()["error"]["message"] and "chain_id" in missing.json()["error"]["message"]

    # Over 1 MiB is fine here (a long lineage's bundle), over 16 MiB is not.
    two_mib = b'{"padding": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    assert client.post("/api/v1/verify", content=two_mib, headers=bearer(key)).status_code == 422
    assert client.post("/api/v1/events", content=two_mib, headers=bearer(key)).status_code == 413
    huge = client.post("/api/v1/verify", content=b"{" + b" " * (16 * 1024 * 1024) + b"}", headers=bearer(key))
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"


def test_the_epcis_endpoint_answers_an_epcis_document(client, key):
    answer = client.get(f"/api/v1/lots/{PACKED}/epcis", headers=bearer(key))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/ld+json"
    document = codec.loads(answer.content)
    assert document["type"] == "EPCISDocument" and document["schemaVersion"] == "2.0"
    assert len(document["epcisBody"]["eventList"]) >= 5


def _csv_rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text)) if row and not row[0].startswith("#")]


def test_the_fsma204_endpoints_answer_csv_attachments(client, key):
    answer = client.get(f"/api/v1/lots/{PACKED}/fsma204.csv", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == f'attachment; filename="fsma204-{PACKED}.csv"'
    rows = _csv_rows(answer.text)
    assert len(rows) >= 3 and any(PACKED in cell for row in rows for cell in row)

    today = datetime.now(UTC).date()
    path = f"/api/v1/fsma204.csv?product=organic-veg&from={today - timedelta(days=300)}&to={today}"
    answer = client.get(path, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="fsma204-organic-veg-')
    assert len(_csv_rows(answer.text)) >= 3


def test_the_fsma204_range_refuses_bad_dates_reversed_and_overlong_ranges_in_json(client, key):
    bad = [
        "product=organic-veg&from=2026-13-01&to=2026-12-31",
        "product=organic-veg&from=yesterday&to=2026-12-31",
        "product=organic-veg&from=2026-01-01",
        "product=organic-veg&from=2026-12-31&to=2026-01-01",
        "product=organic-veg&from=2025-01-01&to=2026-01-02",
        "product=no-such-food&from=2026-01-01&to=2026-01-31",
    ]
    for query in bad:
        answer = client.get(f"/api/v1/fsma204.csv?{query}", headers=bearer(key))
        assert answer.status_code == 422, (query, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"]["code"] and answer.json()["error"]["message"]
    # a leap year is 366 days: allowed
    ok = client.get(
        "/api/v1/fsma204.csv?product=organic-veg&from=2028-01-01&to=2028-12-31", headers=bearer(key)
    )
    assert ok.status_code == 200, ok.text


def test_the_registry_is_public_so_anyone_can_pin_it_and_rate_limited_per_client(demo, tmp_path):
    app = create_app(runtime=Runtime(demo.settings(tmp_path, public_rate_per_min=1), _engine=demo.engine))
    with TestClient(app, client=("10.0.0.9", 4000)) as client:
        answer = client.get("/api/v1/registry")
        assert answer.status_code == 200
        info = answer.json()
        assert info["chain_id"] == 31337 and info["contract"].lower() == demo.registry.address.lower()
        assert info["contract"] in info["pin"]["en"] and info["contract"] in info["pin"]["th"]
        codes = [client.get("/api/v1/registry").status_code for _ in range(12)]
        assert 429 in codes
    with TestClient(app, client=("10.0.0.10", 4000)) as other:
        assert other.get("/api/v1/registry").status_code == 200


def test_a_chain_that_does_not_answer_is_a_503_in_json(demo, tmp_path, key):
    app = create_app(
        runtime=Runtime(demo.settings(tmp_path, rpc_url="http://127.0.0.1:9"), _engine=demo.engine)
    )
    with TestClient(app) as client:
        for method, path in (
            ("GET", f"/api/v1/lots/{PACKED}/verify"),
            ("GET", f"/api/v1/lots/{PACKED}/proof"),
        ):
            answer = call(client, method, path, key)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "chain_unavailable"
            assert int(answer.headers["retry-after"]) > 0
        with transaction(demo.sessions) as s:
            bundle = build_bundle(s, PACKED, chain_id=31337, contract=demo.registry.address).to_json()
        answer = client.post("/api/v1/verify", content=codec.dumps(bundle), headers=bearer(key))
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "chain_unavailable"
        # the ledger's own exports need no chain
        assert client.get(f"/api/v1/lots/{PACKED}/epcis", headers=bearer(key)).status_code == 200


# --- the OpenAPI document ---------------------------------------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _has_example(spec: dict[str, Any], media_type: str, media: dict[str, Any]) -> bool:
    if "example" in media or media.get("examples"):
        return True
    if media_type == "text/html":
        return True  # the page a browser gets at the same address: the machine forms carry the examples
    schema = _resolve(spec, media.get("schema", {}))
    if media_type.startswith("image/") and not media_type.startswith("image/svg"):
        # A raster image cannot be shown inline: declaring it binary is what documents it.
        return schema.get("type") == "string" and schema.get("format") == "binary"
    return "example" in schema or bool(schema.get("examples"))


def test_every_operation_in_the_openapi_document_has_examples(client):
    """So an importer's developer can integrate from /docs alone: every operation's success response, and its
    request body when it takes one, carry an example (in the media type or in the schema it names)."""
    spec = client.get("/openapi.json").json()
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            name = f"{method.upper()} {path}"
            success = sorted(code for code in op["responses"] if code.startswith("2"))
            assert success, name
            for code in success:
                content = op["responses"][code].get("content", {})
                if not content or not all(_has_example(spec, t, media) for t, media in content.items()):
                    missing.append(f"{name}: response {code}")
            body = op.get("requestBody")
            if body and not all(_has_example(spec, t, media) for t, media in body["content"].items()):
                missing.append(f"{name}: request body")
    assert not missing, "operations without an example:\n" + "\n".join(missing)


def test_the_importer_operations_say_how_to_authenticate(client):
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["ImporterApiKey"]
    assert (
        scheme["type"] == "http"
        and scheme["scheme"] == "bearer"
        and "trace apikey create" in scheme["description"]
    )
    importer_ops = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "importer" in op.get("tags", [])
    ]
    assert len(importer_ops) == 7
    for path, _method, op in importer_ops:
        if path == "/api/v1/registry":
            assert "security" not in op
        else:
            assert op["security"] == [{"ImporterApiKey": []}], path
            assert {"401", "403", "429"} <= set(op["responses"]), path


def test_an_api_key_only_reads_it_cannot_record_or_certify(db, keyed_app):
    """DESIGN: an importer key can only read. The farmers' and officers' endpoints do not take it."""
    _, client, _ = keyed_app
    with transaction(db.sessions) as s:
        key = create_api_key(s, "read-only").key
    event = {
        "kind": "planting",
        "event_id": "0b06adc7-f898-44d6-9e3b-89c823d0f32f",
        "event_time": "2026-09-08T08:30:00+07:00",
        "place": {"id": "PLOT-T-01"},
        "lot_code": "T-KEY-0001",
        "plot_id": "PLOT-T-01",
        "crop": "organic-veg",
        "area_rai": "2.5",
    }
    writes = [
        client.post("/api/v1/events", json=event, headers=bearer(key)),
        client.post("/api/v1/events/batch", json={"events": [event]}, headers=bearer(key)),
        client.get("/api/v1/lots/T-KEY-0001/certification-request?standard=GAP", headers=bearer(key)),
        client.get("/api/v1/lots/T-KEY-0001", headers=bearer(key)),
    ]
    assert [w.status_code for w in writes] == [401, 401, 401, 401]
    with transaction(db.sessions) as s:
        assert s.scalars(select(models.Event)).first() is None
