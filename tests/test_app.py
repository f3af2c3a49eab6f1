"""The web app: home page in Thai (default) and English, health, readiness, metrics, JSON errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from traceability.api.deps import SessionDep, get_runtime
from traceability.config import Settings
from traceability.errors import Conflict
from traceability.main import create_app
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import migrate

# Nothing listens on port 1: a database that is down.
DEAD_POSTGRES = "postgresql://nobody@127.0.0.1:1/none"


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


def test_readiness_reports_an_unreachable_database_as_503_json(anvil, tmp_path):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url)
    migrate(settings.effective_database_url)
    app = create_app(runtime=Runtime(settings))
    down = Runtime(Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, database_url=DEAD_POSTGRES))
    app.dependency_overrides[get_runtime] = lambda: down  # resources are swapped, not patched
    with TestClient(app) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    checks = r.json()["checks"]
    assert checks["database"].startswith("error: ") and checks["chain"]["chain_id"] == 31337


def test_a_request_commits_once_at_the_end_and_rolls_back_when_it_fails(tmp_path):
    settings = Settings(var_dir=tmp_path, rpc_url="http://127.0.0.1:9")
    migrate(settings.effective_database_url)
    runtime = Runtime(settings)
    app = create_app(runtime=runtime)
    commits: list[str] = []
    rollbacks: list[str] = []
    event.listen(runtime.sessions, "after_commit", lambda s: commits.append("commit"))
    event.listen(runtime.sessions, "after_rollback", lambda s: rollbacks.append("rollback"))

    @app.post("/probe/{key}")
    def probe(key: str, session: SessionDep, fail: bool = False) -> dict[str, str]:
        session.add(models.LedgerMeta(key=key, value="v"))
        session.flush()  # what services do: the row is written but not yet committed
        assert commits == []
        if fail:
            raise Conflict("refused after the write")
        return {"key": key}

    with TestClient(app) as c:
        assert c.post("/probe/kept").status_code == 200
        assert commits == ["commit"]
        commits.clear()
        failed = c.post("/probe/dropped", params={"fail": "true"})
        assert failed.status_code == 409 and failed.json()["error"]["code"] == "conflict"
    assert commits == [] and rollbacks == ["rollback"]
    with runtime.transaction() as session:
        assert {m.key for m in session.scalars(select(models.LedgerMeta))} >= {"kept"}
        assert session.get(models.LedgerMeta, "dropped") is None
