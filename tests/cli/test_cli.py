"""The `trace` command end to end on SQLite and a real Anvil: migrate, deploy, demo, worker, verify, export,
reconcile, and the offline bundle check with no database at all."""

from __future__ import annotations

import csv
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


def registry_address(settings: Settings) -> str:
    return str(json.loads(settings.deployment_file.read_text())["31337"]["address"])


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
    [importer] = demo["accounts"]["importers"]
    assert importer["name"] == "demo-importer" and importer["api_key"].startswith("ttk_")
    code, out, _ = run(settings, capsys, "apikey", "list", "--json")
    assert code == 0 and "demo-importer" in out and importer["api_key"] not in out
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


def test_the_demo_laundering_lot_is_flagged_by_trace_verify_and_honest_lots_stay_clean(
    settings, demo, capsys
):
    """The demo's สวมสิทธิ์ case: a trader's rice recorded as a second lot on a certified farmer's plot and
    merged into a certified export lot. Chain, mass balance and the fixed yield ceiling all pass; origin risk
    does not."""
    run(settings, capsys, "worker", "--once")
    case = demo["laundering"]
    code, out, _ = run(settings, capsys, "verify", case["lot"])
    assert code == 1 and "WARNING" in out, out
    assert "origin risk" in out and "capacity_exceeded" in out
    code, out, _ = run(settings, capsys, "verify", case["lot"], "--json")
    verdict = json.loads(out)
    assert verdict["status"] == "warning" and verdict["risk"]["level"] == "high"
    [signal] = [s for s in verdict["risk"]["signals"] if s["code"] == "capacity_exceeded"]
    assert set(signal["lots"]) == set(case["lots"].split(",")) and signal["numbers"]["plot"] == case["plot"]
    assert Decimal(signal["numbers"]["harvested_kg"]) > Decimal(signal["numbers"]["capacity_kg"])
    reason = next(r for r in verdict["reasons"] if r["code"] == "capacity_exceeded")
    assert reason["severity"] == "warning" and reason["check"] == "origin_risk"
    allowed = {"capacity_exceeded", "yield_outlier", "unusual_pattern"}
    assert {r["code"] for r in verdict["reasons"]} <= allowed
    for lot in demo["lots"]:
        if lot in {case["lot"], *case["lots"].split(",")}:
            continue
        code, out, _ = run(settings, capsys, "verify", lot, "--json")
        risk = json.loads(out)["risk"]
        assert risk["score"] == 0 and risk["signals"] == [], (lot, risk)


def test_bundle_verifies_offline_and_tampering_shows(settings, demo, capsys, tmp_path, anvil):
    run(settings, capsys, "worker", "--once")
    code, out, _ = run(settings, capsys, "export", "proof", "NSN-VEG-2609-01A")
    assert code == 0
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(out)
    nodb = Settings(var_dir=tmp_path / "nothing", database_url="postgresql://nobody@127.0.0.1:1/none")
    trusted = registry_address(settings)
    code, _, err = run(nodb, capsys, "verify", "--bundle", str(bundle_path), "--rpc", anvil.rpc_url)
    assert code == 2 and "--registry" in err  # no deployment configured here: say which registry to trust
    code, out, _ = run(
        nodb, capsys, "verify", "--bundle", str(bundle_path), "--rpc", anvil.rpc_url, "--registry", trusted
    )
    assert code == 0, out

    bundle = codec.loads(bundle_path.read_text())
    harvest = next(e for e in bundle["events"] if e["epcis"].get("bizStep") == "creating_class_instance")
    harvest["epcis"]["quantityList"][0]["quantity"] = Decimal("99999")
    bundle_path.write_text(codec.dumps(bundle))
    code, out, _ = run(
        nodb,
        capsys,
        "verify",
        "--bundle",
        str(bundle_path),
        "--rpc",
        anvil.rpc_url,
        "--registry",
        trusted,
        "--json",
    )
    verdict = json.loads(out)
    assert code == 1 and verdict["status"] == "failed"
    assert "hash_mismatch" in {r["code"] for r in verdict["reasons"]}

    code, _, err = run(
        nodb, capsys, "verify", "--bundle", str(tmp_path / "missing.json"), "--rpc", anvil.rpc_url
    )
    assert code == 2 and "cannot read bundle" in err


def fsma_rows(text: str) -> list[dict[str, str]]:
    """The FSMA 204 sheet's rows: its legend is a block of lines starting with '#', then a blank line."""
    return list(
        csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    )


def test_epcis_and_fsma_exports(settings, demo, capsys):
    code, out, _ = run(settings, capsys, "export", "epcis", "NSN-HML-2611-M1")
    doc = json.loads(out)
    assert code == 0 and doc["type"] == "EPCISDocument"
    kinds = {e["type"] for e in doc["epcisBody"]["eventList"]}
    assert "TransformationEvent" in kinds
    code, out, _ = run(settings, capsys, "export", "fsma204", "NSN-HML-2611-M1")
    assert code == 0 and out.startswith("#")  # the legend block comes first
    rows = fsma_rows(out)
    # two farms' raw paddy milled into one lot: its first packing (21 CFR 1.1330)
    assert any(
        r["Traceability Lot Code"] == "NSN-HML-2611-M1" and r["Critical Tracking Event"] == "Initial Packing"
        for r in rows
    )


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


# --- the proof bundle's schema, and the demo's shape -----------------------------------------------------

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "proof-bundle.schema.json"


def test_the_committed_bundle_schema_is_the_models():
    from traceability.domain.bundle import bundle_json_schema

    assert json.loads(SCHEMA_FILE.read_text("utf-8")) == bundle_json_schema(), (
        "docs/proof-bundle.schema.json is stale: run scripts/write_bundle_schema.py"
    )


def test_every_exported_bundle_matches_the_schema(settings, demo, capsys):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text("utf-8")))
    run(settings, capsys, "worker", "--once")
    for lot in demo["lots"]:
        code, out, _ = run(settings, capsys, "export", "proof", lot)
        assert code == 0
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.loads(out))]
        assert errors == [], lot
    bad = json.loads(out)
    bad["events"][0]["hash"] = "0x1234"
    del bad["chain_id"]
    assert len(list(validator.iter_errors(bad))) == 2


def test_the_demo_shows_fsma_204_events_under_the_identifier_base(settings, demo, capsys):
    assert demo["id_base"] == "http://127.0.0.1:8000"
    assert {f["code"]: f["plots"] for f in demo["accounts"]["farmers"]}["F-0002"] == ["PLOT-NSN-02"]
    _, out, _ = run(settings, capsys, "export", "epcis", "NSN-VEG-2609-01A")
    events = json.loads(out)["epcisBody"]["eventList"]
    kinds = [e["tt:kind"].rsplit("#", 1)[1] for e in events]
    assert kinds.count("cooling") == 1 and kinds.count("grading") == 2
    graded = {e["disposition"]: e["quantityList"][0]["quantity"] for e in events if "tt:grade" in e}
    assert graded == {"conformant": 1190, "non_conformant": 60}
    ship = next(e for e in events if e["bizStep"] == "shipping")
    assert {"type": "bol", "bizTransaction": "http://127.0.0.1:8000/doc/bol/BL-2569-000118"} in ship[
        "bizTransactionList"
    ]
    assert [d["type"] for d in ship["destinationList"]] == ["location", "owning_party"]
    harvest = next(
        e for e in events if e["bizStep"] == "creating_class_instance" and e["type"] == "ObjectEvent"
    )
    assert harvest["readPoint"]["id"].endswith("/place/FARM-NSN-01")
    assert harvest["bizLocation"]["id"].endswith("/place/PLOT-NSN-01")
    assert harvest["ilmd"]["tt:crop"] == "organic-veg"
    assert all(e["eventTimeZoneOffset"] == "+07:00" for e in events)
    ids = [e["tt:actor"] for e in events] + [e["readPoint"]["id"] for e in events]
    assert all(i.startswith("http://127.0.0.1:8000/") for i in ids)
    _, csv_text, _ = run(settings, capsys, "export", "fsma204", "NSN-VEG-2609-01A")
    ctes = {r["Critical Tracking Event"] for r in fsma_rows(csv_text)}
    assert ctes == {"Harvesting", "Cooling", "Initial Packing", "Shipping", "Receiving"}
    assert "BL-2569-000118" in csv_text


def test_a_changed_identifier_base_is_refused(settings, demo, capsys):
    moved = settings.model_copy(update={"id_base": "https://somewhere-else.example"})
    code, _, err = run(moved, capsys, "demo", "--force")
    assert code == 2 and "identifier base can never change" in err
    same = settings.model_copy(update={"id_base": "http://127.0.0.1:8000/"})
    from traceability.services.identity import ensure_id_base
    from traceability.services.runtime import Runtime

    rt = Runtime(same)
    with rt.transaction() as session:
        assert ensure_id_base(session, same.id_base) == "http://127.0.0.1:8000"
    rt.close()


# --- attacks on the verifier (each verified before it was fixed) -----------------------------------------


def _export_bundle(settings, capsys, lot: str) -> dict:
    run(settings, capsys, "worker", "--once")
    code, out, _ = run(settings, capsys, "export", "proof", lot)
    assert code == 0
    bundle: dict = codec.loads(out)
    return bundle


def _verify_file(settings, capsys, tmp_path, bundle: dict, rpc: str, *extra: str) -> tuple[int, dict]:
    path = tmp_path / f"bundle-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(codec.dumps(bundle))
    code, out, err = run(settings, capsys, "verify", "--bundle", str(path), "--rpc", rpc, "--json", *extra)
    assert out, err
    return code, json.loads(out)


def _codes(verdict: dict) -> set[str]:
    return {r["code"] for r in verdict["reasons"]}


def test_a_bundle_naming_a_forgers_registry_fails(settings, demo, capsys, tmp_path, anvil, w3):
    """A forger deploys their own TraceRegistry and anchors the same roots there: the bundle must still fail,
    because the verifier trusts the configured deployment, not the address the bundle names."""
    from traceability.chain.registry import TraceRegistry

    bundle = _export_bundle(settings, capsys, "NSN-VEG-2609-01A")
    forger = TraceRegistry.deploy(w3, _funded(w3))
    for root in {e["anchor"]["root"] for e in bundle["events"]}:
        forger.anchor(root, 1)
    bundle["contract"] = forger.address.lower()
    code, verdict = _verify_file(settings, capsys, tmp_path, bundle, anvil.rpc_url)
    assert code == 1 and verdict["status"] == "failed"
    assert _codes(verdict) == {"unknown_registry"}
    assert verdict["checks"][0]["code"] == "registry" and verdict["checks"][0]["severity"] == "error"


def test_a_trusted_address_without_traceregistrys_code_fails(settings, demo, capsys, tmp_path, anvil, w3):
    bundle = _export_bundle(settings, capsys, "NSN-VEG-2609-01A")
    # init code that deploys a one-byte contract (STOP): some code, not TraceRegistry's
    account = _funded(w3)
    tx = {
        "data": "0x60016000f3",
        "gas": 100_000,
        "chainId": 31337,
        "nonce": w3.eth.get_transaction_count(account.address),
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )
    other = str(receipt["contractAddress"])
    bundle["contract"] = other.lower()
    code, verdict = _verify_file(settings, capsys, tmp_path, bundle, anvil.rpc_url, "--registry", other)
    assert code == 1 and _codes(verdict) == {"unknown_registry"}


def test_a_certification_copied_from_another_lot_does_not_certify(settings, demo, capsys, tmp_path, anvil):
    """The vegetables' signed certification, copied with its anchor into the rice bundle, must not make the
    rice 'verified': it touches no lot of the rice's lineage."""
    veg = _export_bundle(settings, capsys, "NSN-VEG-2609-01A")
    rice = _export_bundle(settings, capsys, "NSN-HML-2611-M1")
    cert_event = next(e for e in veg["events"] if e["epcis"]["tt:kind"].endswith("#certification"))
    rice["events"].append(cert_event)
    rice["certifications"] = veg["certifications"]
    code, verdict = _verify_file(settings, capsys, tmp_path, rice, anvil.rpc_url)
    assert code == 1 and verdict["status"] == "failed"
    assert "event_outside_lineage" in _codes(verdict)
    assert {c["code"]: c["detail"] for c in verdict["checks"]}["certifications"]["valid"] == 0


def test_an_anchor_moved_to_another_canonical_block_fails(settings, demo, capsys, tmp_path, anvil, w3):
    """A bundle may not name any canonical block for an anchor: only the one whose Anchored(root) log the
    named transaction emitted."""
    bundle = _export_bundle(settings, capsys, "NSN-VEG-2609-01A")
    anchor = bundle["events"][0]["anchor"]
    earlier = anchor["block_number"] - 1
    anchor["block_number"] = earlier
    anchor["block_hash"] = "0x" + bytes(w3.eth.get_block(earlier)["hash"]).hex()
    code, verdict = _verify_file(settings, capsys, tmp_path, bundle, anvil.rpc_url)
    assert code == 1 and _codes(verdict) == {"anchor_block_mismatch"}


def _funded(w3):
    from eth_account import Account

    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])
    return account
