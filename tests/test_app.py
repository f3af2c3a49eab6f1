"""The web app: home page in Thai (default) and English, health, readiness, metrics, JSON errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from traceability.config import Settings
from traceability.main import create_app
from traceability.services.runtime import Runtime
from traceability.store.database import migrate


@pytest.fixture
def client(anvil, tmp_path):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url)
    migrate(settings.effective_database_url)
    with TestClient(create_app(runtime=Runtime(settings))) as c:
        yield c


def test_home_page_is_thai_by_default_and_english_on_request(client):
    th = client.get("/")
    assert th.status_code == 200 and 'lang="th"' in th.text
    assert "ระบบตรวจสอบย้อนกลับผลผลิตชุมชน" in th.text and "ยังไม่มีล็อตสินค้า" in th.text
    en = client.get("/?lang=en")
    assert 'lang="en"' in en.text and "Community produce traceability" in en.text and "No lots yet" in en.text


def test_health_readiness_and_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["checks"]["chain"]["chain_id"] == 31337
    assert body["checks"]["pending_events"] == 0
    metrics = client.get("/metrics")
    assert "trace_outbox_pending 0.0" in metrics.text


def test_readiness_reports_an_unreachable_chain(tmp_path):
    settings = Settings(var_dir=tmp_path, rpc_url="http://127.0.0.1:9")
    migrate(settings.effective_database_url)
    with TestClient(create_app(runtime=Runtime(settings))) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"] == "ok"


def test_unknown_path_is_a_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
