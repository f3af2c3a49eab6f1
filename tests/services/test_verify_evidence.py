"""The verdict an importer gets (issue 7): every check with its evidence, and the verification tests the issue
requires, on the demo made through the `trace` command (SQLite) and a real Anvil.

Bundles that cannot be recorded through the service (a shipment larger than what the lot holds is refused
when it is recorded) are made by hand from a real bundle: the events are edited, re-hashed with every later
link of their lots (``tt:prev``) and anchored again on the trusted registry, as someone holding the server's
anchor key could. The verifier must still say what is wrong, in the reason codes and in the evidence."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from traceability.chain.devnode import AnvilNode
from traceability.chain.registry import TraceRegistry
from traceability.cli import main
from traceability.config import ANVIL_DEV_KEY, Settings
from traceability.domain import codec
from traceability.domain.events import Harvest, Place, Planting, Quantity
from traceability.domain.hashing import event_hash, hash_hex
from traceability.domain.ids import from_hex, hash_ni
from traceability.domain.merkle import MerkleTree, verify_proof
from traceability.services.certify import certify_lot, revoke_certification
from traceability.services.events import record_event
from traceability.services.runtime import Runtime
from traceability.services.verify import verify_bundle

VEG = "NSN-VEG-2609-01"
VEG_A = "NSN-VEG-2609-01A"  # packed from VEG (certified), shipped to Laem Chabang and received there


# --- the demo, through the CLI (as tests/cli/test_cli.py makes it) ---------------------------------------


def _settings(anvil: Any, var: Path) -> Settings:
    return Settings(var_dir=var, rpc_url=anvil.rpc_url, confirmations=0, public_base_url="https://trace.test")


def _seed(settings: Settings) -> dict[str, Any]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["migrate"], settings=settings) == 0
        assert main(["deploy"], settings=settings) == 0
        assert main(["demo", "--json"], settings=settings) == 0
        assert main(["worker", "--once"], settings=settings) == 0
    text = buf.getvalue()
    start = text.index("{", text.index("TraceRegistry"))
    demo: dict[str, Any] = json.JSONDecoder().raw_decode(text[start:])[0]
    return demo


@pytest.fixture(scope="module")
def settings(anvil, tmp_path_factory) -> Settings:
    return _settings(anvil, tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def demo(settings) -> dict[str, Any]:
    return _seed(settings)


def registry_address(settings: Settings) -> str:
    return str(json.loads(settings.deployment_file.read_text())["31337"]["address"])


def run(settings: Settings, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trusted(settings, demo, w3) -> TraceRegistry:
    """The demo's registry with the server's anchor key (Anvil's dev key #0 on chain 31337)."""
    return TraceRegistry(w3, registry_address(settings), Account.from_key(ANVIL_DEV_KEY))


def export_bundle(settings: Settings, capsys, lot: str) -> dict[str, Any]:
    run(settings, capsys, "worker", "--once")
    code, out, err = run(settings, capsys, "export", "proof", lot)
    assert code == 0, err
    bundle: dict[str, Any] = codec.loads(out)
    return bundle


def verify_json(settings: Settings, capsys, lot: str) -> tuple[int, dict[str, Any]]:
    run(settings, capsys, "worker", "--once")
    code, out, err = run(settings, capsys, "verify", lot, "--json")
    assert out, err
    return code, json.loads(out)


def verdict_of(bundle: dict[str, Any], registry: TraceRegistry) -> dict[str, Any]:
    """The verdict as the API sends it: ``to_json()`` through a JSON round trip."""
    verdict: dict[str, Any] = json.loads(codec.dumps(verify_bundle(bundle, registry).to_json()))
    return verdict


def codes(verdict: dict[str, Any]) -> set[str]:
    return {r["code"] for r in verdict["reasons"]}


def event_id(item: dict[str, Any]) -> str:
    return str(item["epcis"]["eventID"]).removeprefix("urn:uuid:")


def kind_of(item: dict[str, Any]) -> str:
    return str(item["epcis"]["tt:kind"]).rsplit("#", 1)[1]


def find(bundle: dict[str, Any], kind: str, biz_step: str | None = None) -> dict[str, Any]:
    return next(
        e
        for e in bundle["events"]
        if kind_of(e) == kind and (biz_step is None or e["epcis"].get("bizStep") == biz_step)
    )


def reseal(bundle: dict[str, Any], registry: TraceRegistry) -> list[str]:
    """Make ``bundle`` consistent again after its bodies were edited: re-hash every event whose body no longer
    hashes to its claimed hash, point every later link (``tt:prev``) at the new hashes (which re-hashes those
    events too), and anchor all the new hashes as one batch on ``registry``. Returns the ids re-sealed."""
    renamed: dict[str, str] = {}  # old Event Hash ID → new
    changed: dict[str, dict[str, Any]] = {}
    for _ in range(len(bundle["events"])):  # links only point back: this many passes reach a fixed point
        for item in bundle["events"]:
            body = item["epcis"]
            if "tt:prev" in body:
                body["tt:prev"] = [renamed.get(p, p) for p in body["tt:prev"]]
            new = hash_hex(event_hash(body))
            if new != item["hash"]:
                renamed[hash_ni(item["hash"])] = hash_ni(new)
                item["hash"] = new
                changed[event_id(item)] = item
    assert changed, "nothing was edited"
    tree = MerkleTree([from_hex(item["hash"]) for item in changed.values()])
    anchored = registry.anchor(tree.root, len(tree))
    for item in changed.values():
        item["anchor"] = {
            "root": "0x" + tree.root.hex(),
            "proof": ["0x" + p.hex() for p in tree.proof(from_hex(item["hash"]))],
            "tx_hash": anchored.tx_hash.lower(),
            "block_number": anchored.block_number,
            "block_hash": anchored.block_hash.lower(),
        }
    return list(changed)


def created_by(item: dict[str, Any]) -> set[str]:
    """The lots an event creates (planting: its lot; packing: its outputs), from the evidence's own view."""
    from traceability.domain.epcis import from_epcis
    from traceability.domain.lineage import created_lots

    return set(created_lots(from_epcis(item["epcis"])))


def set_quantity(item: dict[str, Any], kg: Decimal) -> None:
    [entry] = item["epcis"]["quantityList"]
    entry["quantity"] = kg


# --- the evidence of a genuine lot -----------------------------------------------------------------------


def test_every_demo_lot_carries_the_evidence_of_every_check(settings, demo, capsys, trusted):
    """For each demo lot: every event of its bundle is in the evidence with hash == recomputed and its
    anchor's block time, which is the contract's own anchoredAt(root); the Merkle proof re-checks by hand;
    every packing has a mass-balance entry that adds up; every harvest a yield entry that divides out."""
    address = registry_address(settings)
    for lot in demo["lots"]:
        bundle = export_bundle(settings, capsys, lot)
        code, verdict = verify_json(settings, capsys, lot)
        assert verdict["status"] in ("verified", "warning"), (lot, verdict["reasons"])
        assert set(verdict) >= {
            "lot_code",
            "status",
            "reasons",
            "checks",
            "evidence",
            "registry",
            "checked_at",
        }
        assert verdict["registry"] == {"chain_id": 31337, "contract": address.lower()}
        checked_at = datetime.fromisoformat(verdict["checked_at"].replace("Z", "+00:00"))
        assert abs((datetime.now(UTC) - checked_at).total_seconds()) < 120
        evidence = verdict["evidence"]

        by_id = {e["event_id"]: e for e in evidence["events"]}
        hashes = {e["hash"] for e in bundle["events"]}
        lineage = set(next(c for c in verdict["checks"] if c["code"] == "prev_links")["detail"]["lots"])
        assert lineage == set(bundle["lineage_lots"])
        assert [e["event_id"] for e in evidence["events"]] == [event_id(i) for i in bundle["events"]]
        for item in bundle["events"]:
            seen = by_id[event_id(item)]
            assert seen["hash"] == seen["recomputed"] == item["hash"] and seen["hash_ok"] is True
            assert seen["hash_id"] == hash_ni(item["hash"])
            assert seen["kind"] == kind_of(item)
            anchor = seen["anchor"]
            assert {k: anchor[k] for k in item["anchor"]} == item["anchor"]
            assert anchor["included"] is True and anchor["merkle_ok"] is True
            block_time = datetime.fromtimestamp(trusted.anchored_at(anchor["root"]), UTC)
            assert anchor["block_time"] == block_time.isoformat().replace("+00:00", "Z")
            assert verify_proof(
                from_hex(seen["recomputed"]), [from_hex(p) for p in anchor["proof"]], from_hex(anchor["root"])
            )
            # a link for each lot of the lineage the event continues, each found; a hash it names that is no
            # event of the bundle (the head of a lot outside the lineage, merged on) has no lot
            named = {"0x" + p.split(";", 1)[1].split("?", 1)[0] for p in item["epcis"].get("tt:prev", [])}
            assert {link["hash"] for link in seen["prev"]} == named
            for link in seen["prev"]:
                assert link["found"] == (link["lot_code"] is not None) == (link["hash"] in hashes)
                assert link["lot_code"] is None or link["lot_code"] in lineage
            continued = set(seen["lots"]) & lineage - created_by(item)
            assert {link["lot_code"] for link in seen["prev"] if link["found"]} == continued

        moves = {m["event_id"]: m for m in evidence["mass_balance"]}
        for item in bundle["events"]:
            if kind_of(item) == "packing":
                entry = moves[event_id(item)]
                assert entry["kind"] == "transformation" and entry["ok"] is True
                taken = sum(Decimal(i["kg"]) for i in entry["inputs"])
                made = sum(Decimal(o["kg"]) for o in entry["outputs"])
                assert Decimal(entry["input_kg"]) == taken >= made == Decimal(entry["output_kg"])
                for i in entry["inputs"]:  # a lot outside the lineage (merged on) is not in view: unchecked
                    assert i["checked"] is (i["lot_code"] in lineage)
                    assert not i["checked"] or Decimal(i["available_kg"]) >= Decimal(i["kg"])
            if kind_of(item) == "transport":
                entry = moves[event_id(item)]
                leg = "shipping" if item["epcis"]["bizStep"] == "shipping" else "receiving"
                assert entry["kind"] == leg and entry["ok"] is True

        harvests = [event_id(i) for i in bundle["events"] if kind_of(i) == "harvest"]
        yields = {y["event_id"]: y for y in evidence["yield"]}
        assert sorted(yields) == sorted(harvests)
        for y in yields.values():
            exact = Decimal(y["lot_harvest_kg"]) / Decimal(y["area_rai"])
            per_rai = exact.quantize(Decimal("0.01"), rounding=ROUND_CEILING)
            assert Decimal(y["kg_per_rai"]) == per_rai < Decimal(y["ceiling_kg_per_rai"])
            assert y["ok"] is True and y["plot_id"] == y["planted_plot_id"]

        certs = [i for i in bundle["events"] if kind_of(i) == "certification"]
        assert len(evidence["certifications"]) == len(certs)
        assert (code == 0) == (verdict["status"] == "verified")


def test_the_certification_evidence_names_the_signers_address_and_the_chains_record(
    settings, demo, capsys, trusted
):
    _, verdict = verify_json(settings, capsys, VEG_A)
    assert verdict["status"] == "verified"
    [cert] = verdict["evidence"]["certifications"]
    bundle = export_bundle(settings, capsys, VEG_A)
    [signed] = bundle["certifications"]
    record = trusted.certification_of(cert["cert_id"])
    assert record is not None
    assert cert["status"] == "valid" and cert["lot_code"] == VEG and cert["authority"] == "LAO-NONGSANIT"
    assert cert["officer"] == cert["recovered_signer"] == record["officer"].lower() == signed["officer"]
    assert cert["tx_hash"] == signed["tx_hash"]
    assert cert["issued"] == datetime.fromtimestamp(record["issued_at"], UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert cert["expires"] == datetime.fromtimestamp(record["expires"], UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert cert["revoked"] is None
    # an address, never a name (PDPA): the demo officer's name appears nowhere in the verdict
    assert "สมชาย" not in json.dumps(verdict, ensure_ascii=False)


# --- issue 7's verification tests ------------------------------------------------------------------------


def test_a_demo_lots_bundle_verifies_with_the_database_deleted(anvil, tmp_path, capsys):
    """Export the bundle, delete the SQLite file, and check it with nothing but the chain: through
    ``trace verify --bundle F --rpc URL --registry ADDR`` and through ``verify_bundle``."""
    settings = _settings(anvil, tmp_path / "var")
    _seed(settings)
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(codec.dumps(export_bundle(settings, capsys, VEG_A)))
    address = registry_address(settings)
    database = Path(settings.effective_database_url.split("///", 1)[1])
    assert database.exists()
    database.unlink()
    assert not database.exists()

    nodb = Settings(var_dir=tmp_path / "nothing", database_url="postgresql://nobody@127.0.0.1:1/none")
    argv = ("verify", "--bundle", str(bundle_path), "--rpc", anvil.rpc_url, "--registry", address, "--json")
    code, out, err = run(nodb, capsys, *argv)
    verdict = json.loads(out)
    assert code == 0 and verdict["status"] == "verified", (err, verdict["reasons"])
    assert len(verdict["evidence"]["events"]) == len(codec.loads(bundle_path.read_text())["events"])
    assert not database.exists()

    from traceability.services.runtime import trusted_registry

    offline = verify_bundle(
        codec.loads(bundle_path.read_text()), trusted_registry(nodb, anvil.rpc_url, address)
    )
    assert offline.status == "verified" and offline.findings == ()


def _one_character_changed(text: str) -> str:
    last = text[-1]
    if last.isdigit():
        swapped = str((int(last) + 1) % 10)
    elif last.isalpha():
        swapped = "A" if last != "A" else "B"
    else:
        swapped = "x"
    return text[:-1] + swapped


@pytest.mark.parametrize("where", ["readPoint", "eventTime"])
def test_one_character_changed_in_any_event_fails_naming_that_event(settings, demo, capsys, trusted, where):
    original = export_bundle(settings, capsys, VEG_A)
    assert len(original["events"]) >= 9
    for n in range(len(original["events"])):
        bundle = codec.loads(codec.dumps(original))
        item = bundle["events"][n]
        body = item["epcis"]
        if where == "readPoint":
            body["readPoint"]["id"] = _one_character_changed(body["readPoint"]["id"])
        else:  # the minutes of the event time: 08:30 → 08:31
            t = body["eventTime"]
            body["eventTime"] = t[:15] + _one_character_changed(t[15]) + t[16:]
        verdict = verdict_of(bundle, trusted)
        assert verdict["status"] == "failed", (n, kind_of(item))
        named = {
            r["event_id"] for r in verdict["reasons"] if r["code"] in ("hash_mismatch", "event_unreadable")
        }
        assert named == {event_id(item)}, (n, kind_of(item), verdict["reasons"])
        seen = next(e for e in verdict["evidence"]["events"] if e["event_id"] == event_id(item))
        assert seen["hash"] == item["hash"] and seen["recomputed"] not in (None, item["hash"])
        assert seen["hash_ok"] is False
        assert all(e["hash_ok"] for e in verdict["evidence"]["events"] if e is not seen)


def test_a_bundle_pointing_at_another_registry_is_unknown_registry(settings, demo, capsys, trusted, w3):
    """A second TraceRegistry, deployed here, holds the bundle's roots: the bundle naming it still fails,
    and the verdict says which registry it trusted."""
    bundle = export_bundle(settings, capsys, VEG_A)
    forger = Account.create()
    w3.provider.make_request("anvil_setBalance", [forger.address, hex(10**20)])
    other = TraceRegistry.deploy(w3, forger)
    for root in {e["anchor"]["root"] for e in bundle["events"]}:
        other.anchor(root, 1)
        assert other.anchored_at(root) > 0
    bundle["contract"] = other.address.lower()
    verdict = verdict_of(bundle, trusted)
    assert verdict["status"] == "failed" and codes(verdict) == {"unknown_registry"}
    [reason] = verdict["reasons"]
    assert reason["detail"]["bundle"]["contract"] == other.address.lower()
    assert verdict["registry"] == {"chain_id": 31337, "contract": trusted.address.lower()}
    assert reason["message"]["th"] and reason["message"]["en"]


def test_a_shipment_larger_than_the_harvest_is_a_mass_balance_failure(settings, demo, capsys, trusted):
    bundle = export_bundle(settings, capsys, VEG_A)
    harvest = find(bundle, "harvest")
    ship = find(bundle, "transport", "shipping")
    assert Decimal(harvest["epcis"]["quantityList"][0]["quantity"]) == 1250
    set_quantity(ship, Decimal("1500"))  # the lot was packed with 600 kg, from a 1,250 kg harvest
    resealed = reseal(bundle, trusted)
    assert event_id(ship) in resealed and len(resealed) == 2  # the shipment and the receipt after it

    verdict = verdict_of(bundle, trusted)
    assert verdict["status"] == "failed" and codes(verdict) == {"mass_balance"}, verdict["reasons"]
    [reason] = verdict["reasons"]
    assert reason["event_id"] == event_id(ship) and reason["lot_code"] == VEG_A
    assert reason["detail"] == {"requested_kg": "1500", "available_kg": "600"}
    assert "1,500 kg" in reason["message"]["en"] and "600 kg" in reason["message"]["en"]
    assert "1,500 กก." in reason["message"]["th"]
    entry = next(m for m in verdict["evidence"]["mass_balance"] if m["event_id"] == event_id(ship))
    assert entry["kind"] == "shipping" and entry["ok"] is False
    assert entry["inputs"] == [{"lot_code": VEG_A, "kg": "1500", "available_kg": "600", "checked": True}]
    assert all(m["ok"] for m in verdict["evidence"]["mass_balance"] if m is not entry)
    # everything else about the forged bundle checks out: the hashes and anchors are in order
    assert all(e["hash_ok"] and e["anchor"]["included"] for e in verdict["evidence"]["events"])


def test_a_harvest_at_five_times_the_plausible_yield_is_implausible_yield(settings, demo, capsys, trusted):
    bundle = export_bundle(settings, capsys, VEG_A)
    harvest = find(bundle, "harvest")
    # 2.5 rai of organic vegetables: at most 3,000 kg per rai; five times that is 37,500 kg
    set_quantity(harvest, Decimal("37500"))
    resealed = reseal(bundle, trusted)
    assert event_id(harvest) in resealed

    verdict = verdict_of(bundle, trusted)
    # the fixed ceiling, and the origin-risk signals the bundle shows by itself (basis "bundle")
    assert verdict["status"] == "warning", verdict["reasons"]
    assert codes(verdict) == {"implausible_yield", "yield_outlier", "capacity_exceeded"}, verdict["reasons"]
    assert verdict["risk"]["basis"] == "bundle" and verdict["risk"]["score"] > 50
    [reason] = [r for r in verdict["reasons"] if r["check"] == "yield"]
    assert reason["event_id"] == event_id(harvest) and reason["lot_code"] == VEG
    assert reason["severity"] == "warning" and reason["check"] == "yield"
    assert "37,500 kg" in reason["message"]["en"] and "2.5 rai" in reason["message"]["en"]
    assert "37,500 กก." in reason["message"]["th"] and "ไร่" in reason["message"]["th"]
    [entry] = verdict["evidence"]["yield"]
    assert entry == {
        "event_id": event_id(harvest),
        "lot_code": VEG,
        "plot_id": "PLOT-NSN-01",
        "crop": "organic-veg",
        "area_rai": "2.5",
        "harvest_kg": "37500",
        "lot_harvest_kg": "37500",
        "kg_per_rai": "15000",
        "ceiling_kg_per_rai": "4500",  # 3,000 × the default tolerance 1.5
        "planted_plot_id": "PLOT-NSN-01",
        "planted_crop": "organic-veg",
        "ok": False,
    }


# --- revoked and expired certifications ---------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(settings, demo):
    rt = Runtime(settings)
    yield rt
    rt.close()


def _officer(demo: dict[str, Any]) -> dict[str, Any]:
    officer: dict[str, Any] = demo["accounts"]["officers"][0]
    return officer


def _new_lot(runtime: Runtime, demo: dict[str, Any], lot: str) -> None:
    """A Hom Mali lot of F-0002's Nong Sanit plot (8 rai), planted and harvested: uncertified."""
    when = datetime.now(UTC) - timedelta(days=120)
    common = {"actor": "F-0002", "place": Place(id="PLOT-NSN-02")}
    events = [
        Planting(
            kind="planting",
            lot_code=lot,
            plot_id="PLOT-NSN-02",
            crop="hom-mali-105",
            area_rai=Decimal("8"),
            event_id=uuid.uuid4(),
            event_time=when,
            **common,
        ),
        Harvest(
            kind="harvest",
            lot_code=lot,
            plot_id="PLOT-NSN-02",
            crop="hom-mali-105",
            quantity=Quantity(value=Decimal("3100")),
            event_id=uuid.uuid4(),
            event_time=when + timedelta(days=110),
            **common,
        ),
    ]
    for event in events:
        with runtime.transaction() as session:
            record_event(session, event, id_base=demo["id_base"])


def _certify(runtime: Runtime, demo: dict[str, Any], lot: str, expires: int = 0) -> str:
    officer = _officer(demo)
    result = certify_lot(
        runtime.sessions,
        runtime.registry,
        officer_username=officer["username"],
        passphrase=officer["passphrase"],
        lot_code=lot,
        standard="GAP พืชอาหาร (Thai GAP)",
        certificate_hash="0x" + "5a" * 32,
        place_id=officer["authority"],
        id_base=demo["id_base"],
        expires=expires,
    )
    return str(result.cert_id)


def test_a_revoked_certification_is_not_verified(settings, demo, capsys, runtime):
    lot = "NSN-HML-TEST-R1"
    _new_lot(runtime, demo, lot)
    _, before = verify_json(settings, capsys, lot)
    assert codes(before) == {"not_certified"}
    cert_id = _certify(runtime, demo, lot)
    _, certified = verify_json(settings, capsys, lot)
    assert certified["status"] == "verified", certified["reasons"]
    officer = _officer(demo)
    revoke_certification(
        runtime.sessions,
        runtime.registry,
        officer_username=officer["username"],
        passphrase=officer["passphrase"],
        cert_id=cert_id,
        reason="ตรวจพบการใช้สารเคมีในแปลง",
        place_id=officer["authority"],
        id_base=demo["id_base"],
    )
    code, verdict = verify_json(settings, capsys, lot)
    assert code == 1 and verdict["status"] == "failed"
    assert "certification_revoked" in codes(verdict)
    reason = next(r for r in verdict["reasons"] if r["code"] == "certification_revoked")
    assert reason["severity"] == "error" and reason["detail"]["cert_id"] == cert_id
    assert "revoked" in reason["message"]["en"] and "เพิกถอน" in reason["message"]["th"]
    [cert] = verdict["evidence"]["certifications"]
    assert cert["cert_id"] == cert_id and cert["status"] == "revoked" and cert["revoked"] is not None
    assert {c["code"]: c["detail"] for c in verdict["checks"]}["certifications"]["valid"] == 0


def test_an_expired_certification_is_not_verified_and_says_expired(tmp_path, capsys):
    """Expiry needs the chain's clock moved on: on a node of its own, so that the session's shared Anvil keeps
    its time for every other test."""
    node = AnvilNode().start()
    try:
        settings = _settings(node, tmp_path / "var")
        demo = _seed(settings)
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        runtime = Runtime(settings)
        try:
            lot = "NSN-HML-TEST-X1"
            _new_lot(runtime, demo, lot)
            now = max(int(w3.eth.get_block("latest")["timestamp"]), int(time.time()))
            cert_id = _certify(runtime, demo, lot, expires=now + 60)
            _, certified = verify_json(settings, capsys, lot)
            assert certified["status"] == "verified", certified["reasons"]
            [cert] = certified["evidence"]["certifications"]
            assert cert["status"] == "valid"
            assert cert["expires"] == datetime.fromtimestamp(now + 60, UTC).isoformat().replace("+00:00", "Z")

            w3.provider.make_request("evm_increaseTime", [120])  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            code, verdict = verify_json(settings, capsys, lot)
        finally:
            runtime.close()
    finally:
        node.stop()
    assert code == 1 and verdict["status"] != "verified"
    assert "certification_expired" in codes(verdict)
    reason = next(r for r in verdict["reasons"] if r["code"] == "certification_expired")
    assert reason["check"] == "certifications" and reason["detail"]["cert_id"] == cert_id
    assert "expired" in reason["message"]["en"] and "หมดอายุ" in reason["message"]["th"]
    [cert] = verdict["evidence"]["certifications"]
    assert cert["status"] == "expired" and cert["revoked"] is None
    assert {c["code"]: c["severity"] for c in verdict["checks"]}["certifications"] != "ok"
