"""Operability over the real app (SQLite and PostgreSQL, a real Anvil): a full flow (a farmer signs in with
phone and PIN and records events, an officer signs in, an importer verifies with an API key, a batch is
anchored) leaves no secret in any log line, raw or JSON-formatted; every response carries a request id, which
the log lines written while answering it carry too; /metrics counts what happened (events recorded, the
verdict's outcome, latency by route template, batches and gas); /readyz tells the signer's balance and says
when it is low; the worker warns once an interval while it is."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from factories import ID_BASE, days_ago, seed_parties
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.apikeys import create_api_key
from traceability.services.observability import BalanceWatch, log_handler, redact, request_id
from traceability.services.parties import enrol_farmer, enrol_plot
from traceability.services.runtime import Runtime
from traceability.store.database import transaction

PHONE = "0897654321"
PIN = "58293716"
LOT = "T-OBS-0001"
PLOT = "PLOT-OBS-01"


@pytest.fixture
def flow_app(db, anvil, registry, tmp_path) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    parties = seed_parties(db.sessions, registry, with_officer=True)
    with transaction(db.sessions) as session:
        authority = session.merge(parties["authority"])
        farmer = enrol_farmer(
            session, code="F-0093", authority=authority, display_name="นางทดสอบ บันทึก", phone=PHONE, pin=PIN
        )
        enrol_plot(
            session,
            code=PLOT,
            farmer=farmer,
            village_th="บ้านทดสอบ",
            village_en="Ban Thotsop",
            area_rai=Decimal("2"),
        )
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
    )
    with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine)), client=("10.0.0.9", 4000)) as c:
        yield c, parties


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def events(kinds: list[str]) -> list[dict[str, Any]]:
    body = {
        "planting": {
            "kind": "planting",
            "event_time": days_ago(60).isoformat(),
            "place": {"id": PLOT, "lat": "14.8818", "lon": "103.4936"},
            "lot_code": LOT,
            "plot_id": PLOT,
            "crop": "organic-veg",
            "variety": "ผักคะน้า",
            "area_rai": "2",
        },
        "harvest": {
            "kind": "harvest",
            "event_time": days_ago(20).isoformat(),
            "place": {"id": "FARM-T-01"},
            "lot_code": LOT,
            "plot_id": PLOT,
            "crop": "organic-veg",
            "quantity": {"value": "500", "uom": "KGM"},
        },
    }
    return [{**body[k], "event_id": str(uuid.uuid4())} for k in kinds]


def test_a_full_flow_logs_no_secret_carries_request_ids_and_moves_the_metrics(
    db, flow_app, registry, caplog: pytest.LogCaptureFixture
) -> None:
    client, parties = flow_app
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = log_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        before = client.get("/metrics").text
        # The farmer signs in with phone and PIN and records a planting and a harvest.
        r = client.post("/api/v1/auth/token", json={"phone": PHONE, "pin": PIN})
        assert r.status_code == 200, r.text
        farmer_token = r.json()["access_token"]
        farmer = {"Authorization": f"Bearer {farmer_token}"}
        for event in events(["planting", "harvest"]):
            r = client.post("/api/v1/events", json=event, headers=farmer)
            assert r.status_code == 201, r.text
        # A wrong PIN and a wrong password are refused (and must not be logged either).
        assert client.post("/api/v1/auth/token", json={"phone": PHONE, "pin": "41938527"}).status_code == 401
        username = parties["officer"].username
        bad = client.post("/api/v1/auth/token", json={"username": username, "password": "wrong-pass-9"})
        assert bad.status_code == 401
        # The officer signs in with username and password.
        r = client.post("/api/v1/auth/token", json={"username": username, "password": "officer-password"})
        assert r.status_code == 200, r.text
        officer_token = r.json()["access_token"]
        lot = client.get(f"/api/v1/lots/{LOT}", headers={"Authorization": f"Bearer {officer_token}"})
        assert lot.status_code == 200, lot.text
        # An anchoring pass, then the importer verifies with an API key.
        Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
        with transaction(db.sessions) as session:
            api_key = create_api_key(session, "obs-importer").key
        verify = client.get(f"/api/v1/lots/{LOT}/verify", headers={"Authorization": f"Bearer {api_key}"})
        assert verify.status_code == 200, verify.text
        outcome = verify.json()["status"]
        after = client.get("/metrics").text
    finally:
        root.removeHandler(handler)

    # No secret in any record as the app wrote it (caplog formats each when it is emitted) nor in JSON.
    raw = caplog.text
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and raw
    for secret in (
        PIN,
        "41938527",
        "officer-password",
        "wrong-pass-9",
        api_key,
        farmer_token,
        officer_token,
        ANVIL_DEV_KEY,
        ANVIL_DEV_KEY.removeprefix("0x"),
        PHONE,
    ):
        assert secret not in raw, secret
        assert secret not in stream.getvalue(), secret
    for entry in lines:
        assert {"time", "level", "logger", "message"} <= entry.keys()

    # Request ids: a fresh one on every response, and on the log lines written while answering it.
    ids = [verify.headers["X-Request-ID"], lot.headers["X-Request-ID"]]
    assert all(re.fullmatch(r"[0-9a-f]{16}", rid) for rid in ids) and ids[0] != ids[1]
    logged = {entry.get("request_id") for entry in lines}
    assert set(ids) <= logged
    access = [e for e in lines if e.get("request_id") == ids[0] and e["logger"] == "traceability.access"]
    assert access and access[0]["message"] == "GET /api/v1/lots/{lot_code}/verify 200"

    # Metrics moved by what happened.
    recorded = "trace_events_recorded_total"
    for kind in ("planting", "harvest"):
        assert sample(after, recorded, kind=kind) == sample(before, recorded, kind=kind) + 1
    assert sample(after, recorded, kind="packing") == sample(before, recorded, kind="packing")
    verified = "trace_verifications_total"
    assert sample(after, verified, outcome=outcome) == sample(before, verified, outcome=outcome) + 1
    route = {"route": "/api/v1/lots/{lot_code}/verify", "method": "GET"}
    assert sample(after, "trace_http_request_duration_seconds_count", **route) == 1
    assert (
        sample(after, "trace_http_request_duration_seconds_count", route="/api/v1/events", method="POST") == 2
    )
    assert LOT not in "".join(re.findall(r'route="[^"]*"', after))  # templates, never raw paths
    assert sample(after, "trace_batches", status="anchored") == 1
    assert sample(after, "trace_batches", status="sending") == 0
    assert sample(after, "trace_anchor_gas_used") > 21_000
    assert sample(after, "trace_outbox_pending") == 0


def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(flow_app) -> None:
    client, _ = flow_app
    assert client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.01_x"}).headers["X-Request-ID"] == (
        "lb-7f3a.01_x"
    )
    for bad in ("x" * 65, "has space", "<script>", ""):
        rid = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{16}", rid), bad
    # An unknown path is counted under one label, not its own.
    assert client.get("/no/such/path/123").status_code == 404
    metrics = client.get("/metrics").text
    assert sample(metrics, "trace_http_request_duration_seconds_count", route="unmatched", method="GET") == 1
    assert "/no/such/path" not in metrics
    # So is a made-up method.
    assert client.request("BREW", "/healthz").status_code == 405
    metrics = client.get("/metrics").text
    assert sample(metrics, "trace_http_request_duration_seconds_count", route="/healthz", method="OTHER") == 1
    assert "BREW" not in metrics


def test_a_bugs_500_still_leaves_with_the_security_headers_a_request_id_and_one_logged_traceback(
    db, anvil, registry, tmp_path
) -> None:
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=db.url, id_base=ID_BASE)
    app = create_app(runtime=Runtime(settings, _engine=db.engine))

    def broken() -> None:
        raise RuntimeError("a bug nobody caught")

    app.add_api_route("/api/v1/broken", broken)
    app.add_api_route("/broken", broken)
    seen: list[tuple[logging.LogRecord, str | None]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record, request_id.get()))

    errors = logging.getLogger("traceability.errors")
    keep = Keep(level=logging.ERROR)
    errors.addHandler(keep)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            api = client.get("/api/v1/broken", headers={"X-Request-ID": "bug-1"})
            page = client.get("/broken", headers={"X-Request-ID": "bug-2"})
            metrics = client.get("/metrics").text
    finally:
        errors.removeHandler(keep)
    assert api.status_code == 500 and api.json()["error"]["code"] == "internal_error"
    assert "a bug nobody caught" not in api.text  # the cause is logged, never told to the client
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "ระบบขัดข้อง" in page.text and "Sorry" in page.text
    for r, rid in ((api, "bug-1"), (page, "bug-2")):
        assert r.headers["X-Request-ID"] == rid
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        sample(metrics, "trace_http_request_duration_seconds_count", route="/api/v1/broken", method="GET")
        == 1
    )
    assert [(rid, rec.exc_info is not None) for rec, rid in seen] == [("bug-1", True), ("bug-2", True)]


def test_readyz_tells_the_signer_balance_and_whether_it_is_low(db, anvil, registry, w3, tmp_path) -> None:
    address = registry.account.address if registry.account else ""
    balance = int(w3.eth.get_balance(address))
    for threshold, low in ((balance + 1, True), (1, False)):
        settings = Settings(
            var_dir=tmp_path,
            rpc_url=anvil.rpc_url,
            database_url=db.url,
            contract_address=registry.address,
            min_balance_wei=threshold,
        )
        with TestClient(create_app(runtime=Runtime(settings, _engine=db.engine))) as client:
            r = client.get("/readyz")
        assert r.status_code == 200, r.text  # still ready when low, but it says so
        checks = r.json()["checks"]
        assert checks["low_balance"] is low
        assert checks["signer"]["address"] == address and checks["signer"]["balance_wei"] > 0


def test_the_worker_warns_once_an_interval_while_the_balance_is_low(w3, registry, caplog) -> None:
    address = registry.account.address if registry.account else ""
    log = logging.getLogger("traceability.workers.anchor")
    balance = int(w3.eth.get_balance(address))
    low = BalanceWatch(lambda: int(w3.eth.get_balance(address)), address, balance + 1, 3600.0, log)
    fine = BalanceWatch(lambda: int(w3.eth.get_balance(address)), address, 1, 3600.0, log)
    with caplog.at_level(logging.WARNING, logger=log.name):
        low()
        low()  # within the interval: not again
        fine()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "balance low" in warnings[0].getMessage()
    assert address in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("text", "gone", "kept"),
    [
        ("Authorization: Bearer ttk_abcdef0123456789", "ttk_abcdef0123456789", "Authorization"),
        ('{"phone": "0811111111", "pin": "4321"}', "0811111111", "111"),
        ('{"phone": "0811111111", "pin": "4321"}', "4321", '"pin"'),
        ("password=hunter22 passphrase='a b c' x", "hunter22", " x"),
        ("passphrase='a b c' next", "a b c", "next"),
        ("api_key: ttk_secret_value", "ttk_secret_value", "api_key"),
        ("call +66 81 234 5678 now", "234 5678", "678 now"),
        (f"signing with {ANVIL_DEV_KEY}", ANVIL_DEV_KEY[6:], "signing with 0xac09"),
        ("pending_events=3 lot T-API-0001 on 2026-11-23 06:20:13", "", "pending_events=3 lot T-API-0001"),
    ],
)
def test_redaction_masks_what_looks_like_a_secret(text: str, gone: str, kept: str) -> None:
    masked = redact(text)
    assert kept in masked
    if gone:
        assert gone not in masked
    else:
        assert masked == text


def test_the_json_formatter_writes_one_object_a_line_with_secrets_masked() -> None:
    stream = io.StringIO()
    log = logging.getLogger("traceability.test_observability")
    log.propagate = False
    log.addHandler(log_handler("json", stream))
    log.setLevel(logging.DEBUG)
    token = request_id.set("req-42")
    try:
        log.info("farmer %s signed in with pin=%s", PHONE, PIN, extra={"pin": PIN, "phone": PHONE, "n": 3})
    finally:
        request_id.reset(token)
        log.handlers.clear()
        log.propagate = True
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["request_id"] == "req-42" and entry["level"] == "INFO" and entry["n"] == 3
    assert entry["logger"] == "traceability.test_observability"
    assert entry["message"] == "farmer *******321 signed in with pin=[REDACTED]"
    assert entry["pin"] == "[REDACTED]" and entry["phone"] == "*******321"
    assert PIN not in line and PHONE not in line


def test_trace_serve_and_worker_log_json_lines_and_other_commands_text(tmp_path) -> None:
    """In a fresh interpreter (no host's logging configured): `configure_logging` as `trace` calls it, and the
    dictConfig handed to uvicorn, write JSON lines with secrets masked; text stays text."""
    script = f"""
import logging
from traceability.services.observability import configure_logging
configure_logging(logging.INFO, "json")
logging.getLogger("uvicorn.access").info('%s - "%s" %d', "10.0.0.1:1", "GET /p/X?pin={PIN}", 200)
logging.getLogger("traceability.x").debug("below the level")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stderr
    (line,) = out.splitlines()
    entry = json.loads(line)
    assert (
        entry["logger"] == "uvicorn.access"
        and entry["message"] == '10.0.0.1:1 - "GET /p/X?pin=[REDACTED]" 200'
    )
    text = script.replace('"json"', '"text"')
    out = subprocess.run([sys.executable, "-c", text], capture_output=True, text=True, check=True).stderr
    assert out.count("\n") == 1 and " INFO uvicorn.access: " in out and PIN not in out
