"""The `trace` command end to end on SQLite and a real Anvil: migrate, deploy, demo, worker, verify, export,
reconcile, and the offline bundle check with no database at all."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from traceability.cli import main
from traceability.config import Settings
from traceability.domain import codec


@pytest.fixture(scope="module")
def settings(anvil, tmp_path_factory) -> Settings:
    var = tmp_path_factory.mktemp("var")
    return Settings(var_dir=var, rpc_url=anvil.rpc_url, confirmations=0, public_base_url="https://trace.test")


def run(settings, capsys, *argv):
    code = main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def demo(settings):
    # module-scoped set-up through the CLI itself; capsys is function-scoped, so print to a buffer
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["migrate"], settings=settings) == 0
        assert main(["deploy"], settings=settings) == 0
        assert main(["demo", "--json"], settings=settings) == 0
    text = buf.getvalue()
    return json.loads(text[text.index("{", text.index("TraceRegistry")) :])


def test_deploy_is_done_once(settings, demo, capsys):
    code, out, _ = run(settings, capsys, "deploy")
    assert code == 0 and "already deployed" in out
    deployment = json.loads((settings.var_dir / "deployment.json").read_text())
    assert list(deployment) == ["31337"]


def test_demo_prints_lots_and_accounts_and_seeds_only_once(settings, demo, capsys):
    assert demo["seeded"] is True
    assert "NSN-VEG-2609-01A" in demo["lots"] and "NSN-HML-2611-M1" in demo["lots"]
    assert demo["accounts"]["officers"][0]["username"] == "officer.nongsanit"
    assert all(f["pin"] and f["phone"] for f in demo["accounts"]["farmers"])
    code, out, _ = run(settings, capsys, "demo", "--json")
    assert code == 0 and json.loads(out)["seeded"] is False


def test_worker_once_anchors_everything_then_lots_show_it(settings, demo, capsys):
    code, out, _ = run(settings, capsys, "lots", "--json")
    before = {lot["lot_code"]: lot for lot in json.loads(out)["lots"]}
    assert set(demo["lots"]) <= set(before)
    assert any(lot["status"] == "pending" for lot in before.values())
    code, out, _ = run(settings, capsys, "worker", "--once")
    assert code == 0 and "anchored" in out
    code, out, _ = run(settings, capsys, "lots", "--json")
    after = json.loads(out)["lots"]
    assert {lot["status"] for lot in after} == {"anchored"}


def test_verify_exit_codes(settings, demo, capsys):
    run(settings, capsys, "worker", "--once")
    code, out, _ = run(settings, capsys, "verify", "NSN-VEG-2609-01A")
    assert code == 0, out
    assert "VERIFIED" in out and "prev_links" in out and "mass_balance" in out
    code, out, _ = run(settings, capsys, "verify", "NSN-HML-2611-M1")  # merged rice: no certification
    assert code == 1 and "not_certified" in out
    code, _, err = run(settings, capsys, "verify", "NO-SUCH-LOT")
    assert code == 2 and "unknown lot" in err


def test_bundle_verifies_offline_and_tampering_shows(settings, demo, capsys, tmp_path, anvil):
    run(settings, capsys, "worker", "--once")
    code, out, _ = run(settings, capsys, "export", "proof", "NSN-VEG-2609-01A")
    assert code == 0
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(out)
    nodb = Settings(var_dir=tmp_path / "nothing", database_url="postgresql://nobody@127.0.0.1:1/none")
    code, out, _ = run(nodb, capsys, "verify", "--bundle", str(bundle_path), "--rpc", anvil.rpc_url)
    assert code == 0, out

    bundle = codec.loads(bundle_path.read_text())
    harvest = next(e for e in bundle["events"] if e["epcis"].get("bizStep") == "creating_class_instance")
    harvest["epcis"]["quantityList"][0]["quantity"] = Decimal("99999")
    bundle_path.write_text(codec.dumps(bundle))
    code, out, _ = run(nodb, capsys, "verify", "--bundle", str(bundle_path), "--rpc", anvil.rpc_url, "--json")
    verdict = json.loads(out)
    assert code == 1 and verdict["status"] == "failed"
    assert "hash_mismatch" in {r["code"] for r in verdict["reasons"]}

    code, _, err = run(
        nodb, capsys, "verify", "--bundle", str(tmp_path / "missing.json"), "--rpc", anvil.rpc_url
    )
    assert code == 2 and "cannot read bundle" in err


def test_epcis_and_fsma_exports(settings, demo, capsys):
    code, out, _ = run(settings, capsys, "export", "epcis", "NSN-HML-2611-M1")
    doc = json.loads(out)
    assert code == 0 and doc["type"] == "EPCISDocument"
    kinds = {e["type"] for e in doc["epcisBody"]["eventList"]}
    assert "TransformationEvent" in kinds
    code, out, _ = run(settings, capsys, "export", "fsma204", "NSN-HML-2611-M1")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("Traceability Lot Code")
    assert any("NSN-HML-2611-M1" in line and "Transformation" in line for line in lines)


def test_edited_row_fails_verify_and_reconcile(settings, demo, capsys):
    run(settings, capsys, "worker", "--once")
    db = sqlite3.connect(Path(settings.effective_database_url.split("///", 1)[1]))
    row = db.execute("SELECT id, body FROM events WHERE kind = 'harvest' AND body LIKE '%SKN-WM%'").fetchone()
    body = codec.loads(row[1])
    # laundering: pretend the watermelon grew on a certified plot elsewhere
    body["bizLocation"]["id"] = body["bizLocation"]["id"].replace("PLOT-CKR-01", "PLOT-NSN-01")
    db.execute("UPDATE events SET body = ? WHERE id = ?", (codec.dumps(body), row[0]))
    db.commit()
    db.close()
    event_id = body["eventID"].removeprefix("urn:uuid:")
    code, out, _ = run(settings, capsys, "verify", "SKN-WM-2608-01P")
    assert code == 1 and "hash_mismatch" in out and event_id in out
    assert "FAIL  hashes" in out
    code, out, _ = run(settings, capsys, "reconcile")
    assert code == 1 and "hash_mismatch" in out and event_id in out


def test_epcis_export_hashes_with_gs1s_own_tool_to_what_is_anchored(settings, demo, capsys):
    """An importer loads our export into their own tools: GS1's reference implementation must compute the
    very hashes the proof bundle claims (and the chain holds)."""
    from gs1_reference import offline, reference_hashes

    for lot in ("NSN-VEG-2609-01A", "NSN-HML-2611-M1"):
        _, exported, _ = run(settings, capsys, "export", "epcis", lot)
        _, bundle_json, _ = run(settings, capsys, "export", "proof", lot)
        bundle = codec.loads(bundle_json)
        with offline():
            theirs, _ = reference_hashes(exported)
        ours = [f"ni:///sha-256;{e['hash'][2:]}?ver=CBV2.0" for e in bundle["events"]]
        assert theirs == ours
