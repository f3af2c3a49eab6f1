"""`trace import FILE` end to end on a real Anvil: JSON lines and EPCIS documents, chunks that are refused or
malformed and the re-run that completes them, and the issue's 100,000-event import on PostgreSQL that is then
anchored, reconciled and verified lot by lot."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from factories import ID_BASE, lifecycle, make_authority, seed_parties
from traceability.cli import main
from traceability.config import Settings
from traceability.domain import codec
from traceability.domain.events import Event
from traceability.domain.findings import Check, Code, Severity, Verdict
from traceability.domain.states import LotRole
from traceability.services.ledger import verify_lot
from traceability.services.parties import enrol_plot
from traceability.services.proof import build_bundle
from traceability.services.runtime import Runtime
from traceability.services.verify import verify_bundle
from traceability.store import models
from traceability.store.database import transaction

AUTHORITY = "LAO-IMPORT"


def run(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), settings=settings)
    out = capsys.readouterr()
    return code, out.out, out.err


def quietly(settings: Settings, *argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return main(list(argv), settings=settings)


def ledger(anvil: Any, var_dir: Path, *, id_base: str = ID_BASE, **overrides: Any) -> Settings:
    """A migrated database, a TraceRegistry of its own, and the factories' authority, farmers and plots."""
    settings = Settings(var_dir=var_dir, rpc_url=anvil.rpc_url, confirmations=0, id_base=id_base, **overrides)
    assert quietly(settings, "migrate") == 0 and quietly(settings, "deploy") == 0
    rt = Runtime(settings)
    try:
        seed_parties(rt.sessions, rt.registry, code=AUTHORITY)
    finally:
        rt.close()
    return settings


def json_line(event: Event) -> str:
    return event.model_dump_json(exclude_defaults=True)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def lifecycles(count: int) -> list[Event]:
    """``count`` lifecycles of farmer F-0001 (six events each), each on lots of its own."""
    return [
        e for i in range(count) for e in lifecycle(f"T-IMP-{i:04d}", f"T-IMP-{i:04d}A", f"T-IMP-{i:04d}B")
    ]


def stored_events(settings: Settings) -> int:
    rt = Runtime(settings)
    try:
        with rt.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(models.Event)) or 0)
    finally:
        rt.close()


def exported_ids(
    settings: Settings, capsys: pytest.CaptureFixture[str], lot: str
) -> tuple[dict[str, Any], list[str]]:
    code, out, err = run(settings, capsys, "export", "epcis", lot)
    assert code == 0, err
    document = codec.loads(out)
    return document, [e["eventID"] for e in document["epcisBody"]["eventList"]]


# --- formats ------------------------------------------------------------------------------------------------


def test_json_lines_import_and_its_epcis_export_reimports_into_a_fresh_ledger_with_the_same_hashes(
    anvil, tmp_path, capsys
):
    a = ledger(anvil, tmp_path / "a")
    source = write_lines(tmp_path / "events.jsonl", [json_line(e) for e in lifecycle()])
    code, out, err = run(a, capsys, "import", str(source), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["format"] == "json-lines" and report["ok"] is True
    assert (report["read"], report["recorded"], report["already_present"]) == (6, 6, 0)
    assert report["seconds"] >= 0 and report["events_per_s"] >= 0

    document, hashes = exported_ids(a, capsys, "T-VEG-0001A")
    assert len(hashes) == 6 and all(h.startswith("ni:///sha-256;") for h in hashes)
    exported = tmp_path / "lot.epcis.json"
    exported.write_text(codec.dumps(document, indent=2), encoding="utf-8")

    # A fresh ledger under the same identifier base, with the same authority, farmers and plots: the events
    # get the same CBV 2.0 hashes (eventID is outside the hash, and prev is linked to the same heads).
    b = ledger(anvil, tmp_path / "b")
    code, out, err = run(b, capsys, "import", str(exported))
    assert code == 0, err
    assert "(epcis)" in out and "6 events read, 6 recorded, 0 already present" in out
    assert exported_ids(b, capsys, "T-VEG-0001A")[1] == hashes
    code, out, _ = run(b, capsys, "import", str(exported))  # idempotent: the IDs derive from the hash IDs
    assert code == 0 and "6 events read, 0 recorded, 6 already present" in out

    # Under another identifier base the same events are other URIs, so other hashes: the base is hashed.
    c = ledger(anvil, tmp_path / "c", id_base="https://other.example")
    assert run(c, capsys, "import", str(exported))[0] == 0
    assert set(exported_ids(c, capsys, "T-VEG-0001A")[1]).isdisjoint(hashes)


def test_an_epcis_event_changed_after_export_or_a_signed_kind_is_refused(anvil, tmp_path, capsys):
    a = ledger(anvil, tmp_path / "a")
    source = write_lines(tmp_path / "events.jsonl", [json_line(e) for e in lifecycle()])
    assert run(a, capsys, "import", str(source))[0] == 0
    document, _ = exported_ids(a, capsys, "T-VEG-0001A")
    document["epcisBody"]["eventList"][1]["quantityList"][0]["quantity"] = Decimal("1200")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(codec.dumps(document), encoding="utf-8")  # a one-line document is still one
    b = ledger(anvil, tmp_path / "b")
    code, _, err = run(b, capsys, "import", str(tampered))
    assert code == 1
    assert "eventList[1]: hash_mismatch" in err and "changed after export" in err
    assert stored_events(b) == 0

    line = json.loads(json_line(lifecycle()[0])) | {"kind": "certification"}
    code, _, err = run(b, capsys, "import", str(write_lines(tmp_path / "cert.jsonl", [json.dumps(line)])))
    assert code == 1 and "line 1: signed_event" in err


# --- refused and malformed chunks ---------------------------------------------------------------------------


def test_a_refused_event_in_the_second_chunk_keeps_the_first_and_a_rerun_completes_the_file(
    anvil, tmp_path, capsys
):
    settings = ledger(anvil, tmp_path / "ledger")
    events = lifecycles(3)
    lines = [json_line(e) for e in events]
    bad = json.loads(lines[8]) | {"quantity": {"value": "99999", "uom": "KGM"}}  # line 9: a grading
    assert bad["kind"] == "grading"
    source = write_lines(tmp_path / "events.jsonl", lines[:8] + [json.dumps(bad)] + lines[9:])

    code, out, err = run(settings, capsys, "import", str(source), "--batch", "5")
    assert code == 1 and out == ""
    assert "stopped at line 6 to line 10" in err and "the 5 events before it are stored" in err
    assert "line 9: mass_balance:" in err and "run the same import again" in err
    assert stored_events(settings) == 5

    write_lines(source, lines)
    code, out, err = run(settings, capsys, "import", str(source), "--batch", "5", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["read"], report["recorded"], report["already_present"]) == (18, 13, 5)
    assert stored_events(settings) == 18


def test_malformed_json_stops_with_the_line_and_keeps_only_whole_chunks_before_it(anvil, tmp_path, capsys):
    settings = ledger(anvil, tmp_path / "ledger")
    lines = [json_line(e) for e in lifecycle()]
    source = write_lines(tmp_path / "events.jsonl", lines[:3] + ['{"kind": "cooling", '] + lines[3:])
    code, out, err = run(settings, capsys, "import", str(source), "--batch", "2")
    assert code == 2 and out == ""
    assert "line 4 is not valid JSON" in err and "2 events before it are stored" in err
    assert "Traceback" not in err
    assert stored_events(settings) == 2  # line 3's chunk was not stored

    write_lines(source, lines[:2] + ["[1, 2]"])
    code, _, err = run(settings, capsys, "import", str(source))
    assert code == 2 and "line 3 is not a JSON object" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("", "is empty"),
        ("lot,kg\nA,1\n", "neither an EPCIS 2.0 document nor JSON lines"),
        ('{\n  "type": "EPCISDocument",\n  "epcisBody": {\n', "is not valid JSON"),
        ('{\n  "type": "EPCISQueryDocument"\n}\n', "not an EPCIS 2.0 document with epcisBody.eventList"),
        (b"\xff\xfe{}".decode("latin-1"), "neither an EPCIS 2.0 document"),
    ],
)
def test_unreadable_or_unknown_files_exit_2_with_a_message(anvil, tmp_path, capsys, content, message):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, id_base=ID_BASE)
    assert quietly(settings, "migrate") == 0
    path = tmp_path / "file.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(settings, capsys, "import", str(path))
    assert code == 2 and out == ""
    assert err.startswith("trace import: error: ") and message in err and "Traceback" not in err


def test_not_utf8_exits_2(anvil, tmp_path, capsys):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url, id_base=ID_BASE)
    path = tmp_path / "file.jsonl"
    path.write_bytes(b'{"kind": "planting", "note": "\xe0\xb8"}\n')
    code, _, err = run(settings, capsys, "import", str(path))
    assert code == 2 and "not UTF-8" in err


def test_batch_size_is_bounded(anvil, tmp_path, capsys):
    settings = Settings(var_dir=tmp_path, rpc_url=anvil.rpc_url)
    for value in ("0", "5001", "many"):
        with pytest.raises(SystemExit) as exc:
            main(["import", "f.jsonl", "--batch", value], settings=settings)
        assert exc.value.code == 2
    assert "1 to 5000" in capsys.readouterr().err


# --- the test: a province packing house's 100,000 events ------------------------------------------

SEASON_EVENTS = 100_000
FARMERS = 1000
LOTS_PER_PACKING = 5
PICKINGS = 8
CYCLE_DAYS = 80
PACKING_HOUSE = "PH-IMPORT"
EXPORTER = "EXP-IMPORT"


def enrol_growers(settings: Settings, farmers: int) -> None:
    """One อปท. registered on chain, and ``farmers`` farmers with a plot each of 1 to 4 rai. The farmers are
    inserted as rows: ``enrol_farmer`` would hash a PIN with argon2 for each, which this test needs not."""
    rt = Runtime(settings)
    try:
        authority = make_authority(rt.sessions, rt.registry, code=AUTHORITY)
        with transaction(rt.sessions) as session:
            for n in range(1, farmers + 1):
                farmer = models.Farmer(
                    code=f"F-I{n:04d}", authority_id=authority.id, display_name=f"เกษตรกร {n:04d}"
                )
                session.add(farmer)
                session.flush()
                enrol_plot(
                    session,
                    code=f"PLOT-I-{n:04d}",
                    farmer=farmer,
                    village_th=f"บ้านหนองสนิท หมู่ {n % 12 + 1}",
                    village_en=f"Ban Nong Sanit, Moo {n % 12 + 1}",
                    area_rai=plot_rai(n),
                )
    finally:
        rt.close()


def plot_rai(farmer: int) -> Decimal:
    return Decimal(2 + farmer % 7) / 2  # 1 to 4 rai


def season(farmers: int, *, seed: int = 204) -> Iterator[dict[str, Any]]:
    """Organic leafy vegetables in cycles of 80 days, ending a week ago: each farmer plants a lot, picks it
    eight times, every picking cooled at the packing house, and has a share of it graded out; every five
    lots are merged by one packing into an export lot, shipped to the port and received there. A lot's
    lineage is then 93 events or fewer (few lots: each is verified). Yields stay near the crop's typical
    1,856 kg per rai."""
    rng = random.Random(seed)
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7 + CYCLE_DAYS * 6)

    def event(kind: str, when: datetime, actor: str, place: str, **fields: Any) -> dict[str, Any]:
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        return {
            "kind": kind,
            "event_id": str(event_id),
            "event_time": when.isoformat(),
            "actor": actor,
            "place": {"id": place},
        } | fields

    def kg(value: Decimal) -> dict[str, str]:
        return {"value": str(value), "uom": "KGM"}

    cycle = 0
    while True:
        start = first + timedelta(days=CYCLE_DAYS * cycle)
        for group in range(farmers // LOTS_PER_PACKING):
            packed: list[tuple[str, Decimal]] = []
            for n in range(group * LOTS_PER_PACKING + 1, (group + 1) * LOTS_PER_PACKING + 1):
                farmer, plot, lot = f"F-I{n:04d}", f"PLOT-I-{n:04d}", f"V{cycle:02d}-{n:04d}"
                day = start + timedelta(hours=n % 48)
                yield event(
                    "planting",
                    day,
                    farmer,
                    plot,
                    lot_code=lot,
                    plot_id=plot,
                    crop="organic-veg",
                    variety="ผักคะน้า",
                    area_rai=str(plot_rai(n)),
                )
                total = (Decimal(1856) * plot_rai(n) * Decimal(rng.randint(85, 110)) / 100).quantize(
                    Decimal(1)
                )
                picks = [total // PICKINGS] * (PICKINGS - 1)
                picks.append(total - sum(picks))
                for i, picked in enumerate(picks):
                    when = day + timedelta(days=42 + 4 * i)
                    yield event(
                        "harvest",
                        when,
                        farmer,
                        f"FARM-I-{n:04d}",
                        lot_code=lot,
                        plot_id=plot,
                        crop="organic-veg",
                        variety="ผักคะน้า",
                        quantity=kg(picked),
                    )
                    readings = [
                        {
                            "time": (when + timedelta(hours=2, minutes=m)).isoformat(),
                            "celsius": str(Decimal(rng.randint(15, 35)) / 10),
                        }
                        for m in (0, 30)
                    ]
                    yield event(
                        "cooling",
                        when + timedelta(hours=2),
                        PACKING_HOUSE,
                        PACKING_HOUSE,
                        lot_code=lot,
                        quantity=kg(picked),
                        method="hydro_cooling",
                        temperatures=readings,
                    )
                rejected = total * rng.randint(3, 6) // 100
                yield event(
                    "grading",
                    day + timedelta(days=71),
                    PACKING_HOUSE,
                    PACKING_HOUSE,
                    lot_code=lot,
                    grade="ตกเกรด ใบเหลือง",
                    quantity=kg(rejected),
                    disposition="non_conformant",
                )
                packed.append((lot, total - rejected))
            into = sum(q for _, q in packed) * 99 // 100  # trimmed at packing
            outputs = [(f"P{cycle:02d}-{group:03d}", into)]
            when = start + timedelta(days=74)  # after every lot's grading
            yield event(
                "packing",
                when,
                PACKING_HOUSE,
                PACKING_HOUSE,
                inputs=[{"lot_code": lot, "quantity": kg(q)} for lot, q in packed],
                outputs=[{"lot_code": lot, "quantity": kg(q)} for lot, q in outputs],
            )
            for lot, q in outputs:
                items = [{"lot_code": lot, "quantity": kg(q)}]
                yield event(
                    "transport",
                    when + timedelta(days=1),
                    PACKING_HOUSE,
                    PACKING_HOUSE,
                    leg="ship",
                    items=items,
                    source=PACKING_HOUSE,
                    destination="PORT-LCB",
                    documents=[{"type": "bol", "number": f"BOL-{lot}"}],
                )
                yield event(
                    "transport",
                    when + timedelta(days=2),
                    EXPORTER,
                    "PORT-LCB",
                    leg="receive",
                    items=items,
                    source=PACKING_HOUSE,
                    destination="PORT-LCB",
                    documents=[{"type": "bol", "number": f"BOL-{lot}"}],
                )
        cycle += 1


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_100000_event_import_is_anchored_reconciles_clean_and_every_lot_verifies(
    anvil, db, tmp_path, capsys
):
    """The issue's test, on PostgreSQL (the production store). Every lot is verified as an importer checks
    it (``verify_bundle``: hashes, anchors on chain, prev links, mass balance, yield, certifications, and
    origin risk from the bundle's own events) inside the bundle of the lot it was packed into, which holds
    all of its events: each lot packed into nothing is verified, and their lineages together cover every
    lot. Two export lots also go through ``verify_lot``, which adds origin risk learned over the whole
    ledger. No lot is certified (certification is the officer's, not an import's), so ``not_certified`` is
    the one finding expected, and every other check must pass."""
    settings = Settings(
        var_dir=tmp_path,
        database_url=db.url,
        rpc_url=anvil.rpc_url,
        confirmations=0,
        id_base=ID_BASE,
        batch_max=1024,
    )
    assert quietly(settings, "migrate") == 0 and quietly(settings, "deploy") == 0
    enrol_growers(settings, FARMERS)
    source = tmp_path / "season.jsonl"
    with source.open("w", encoding="utf-8") as f:
        for data in itertools.islice(season(FARMERS), SEASON_EVENTS):
            f.write(json.dumps(data, ensure_ascii=False) + "\n")

    figures: dict[str, float] = {}
    started = time.perf_counter()
    code, out, err = run(settings, capsys, "import", str(source), "--json")
    figures["import_s"] = time.perf_counter() - started
    assert code == 0, err
    report = json.loads(out)
    assert (report["read"], report["recorded"], report["already_present"]) == (
        SEASON_EVENTS,
        SEASON_EVENTS,
        0,
    )

    started = time.perf_counter()
    code, out, err = run(settings, capsys, "worker", "--once", "--timeout", "1800")
    figures["anchor_s"] = time.perf_counter() - started
    assert code == 0, err
    code, out, err = run(settings, capsys, "reconcile", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["ok"] and result["stats"]["events"] == SEASON_EVENTS and result["problems"] == []

    code, out, _ = run(settings, capsys, "lots", "--json")
    lots = json.loads(out)["lots"]
    assert {lot["status"] for lot in lots} == {"anchored"}
    started = time.perf_counter()
    rt = Runtime(settings)
    try:
        registry = rt.registry
        # A lot's proof bundle holds every event of every lot it was packed from, so verifying each lot that
        # was packed into nothing checks every lot's events, chain links, anchors and kilograms; the union of
        # their lineages must then be every lot of the import.
        covered: set[str] = set()
        for lot_code in sorted({lot["lot_code"] for lot in lots} - packed_inputs(rt)):
            with rt.transaction() as session:
                bundle = build_bundle(
                    session, lot_code, chain_id=registry.chain_id, contract=registry.address
                )
            assert_verified_but_for_certification(lot_code, verify_bundle(bundle, registry))
            covered |= set(bundle.lineage_lots)
        assert covered == {lot["lot_code"] for lot in lots}
        figures["verify_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for lot_code in ("P00-000", lots[-1]["lot_code"]):
            with rt.transaction() as session:
                assert_verified_but_for_certification(
                    lot_code, verify_lot(session, registry, lot_code, confirmations=0)
                )
        figures["verify_lot_s"] = time.perf_counter() - started
    finally:
        rt.close()
    with capsys.disabled():
        print(
            f"\n100,000-event import: {len(lots)} lots; "
            + ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
        )


def packed_inputs(rt: Runtime) -> set[str]:
    """Lots that a packing took in (their events are in the packed lot's bundle)."""
    with rt.transaction() as session:
        return set(
            session.scalars(select(models.EventLot.lot_code).where(models.EventLot.role == LotRole.IN))
        )


def assert_verified_but_for_certification(lot_code: str, verdict: Verdict) -> None:
    failed = {c.check for c in verdict.checks if c.severity is not Severity.OK}
    assert failed == {Check.CERTIFICATIONS}, (lot_code, verdict.to_json())
    assert {f.code for f in verdict.findings} == {Code.NOT_CERTIFIED}, (lot_code, verdict.to_json())


def test_an_exported_demo_lot_reimports_into_a_fresh_ledger_with_the_same_event_hashes(
    anvil, tmp_path, capsys
):
    """The demo's merged Hom Mali rice lot, exported as EPCIS and imported into a fresh ledger with the same
    identifier base and the same authority, farmers and plots (enrolled from the document's plantings)."""
    demo = Settings(var_dir=tmp_path / "demo", rpc_url=anvil.rpc_url, confirmations=0)
    for command in (["migrate"], ["deploy"], ["demo"]):
        assert quietly(demo, *command) == 0
    document, hashes = exported_ids(demo, capsys, "NSN-HML-2611-M1")
    plantings = [e for e in document["epcisBody"]["eventList"] if e["tt:kind"].endswith("#planting")]
    assert len(plantings) >= 2 and len(hashes) > len(plantings)
    exported = tmp_path / "rice.epcis.json"
    exported.write_text(codec.dumps(document, indent=2), encoding="utf-8")

    fresh = Settings(var_dir=tmp_path / "fresh", rpc_url=anvil.rpc_url, confirmations=0)
    assert quietly(fresh, "migrate") == 0 and quietly(fresh, "deploy") == 0
    rt = Runtime(fresh)
    try:
        authorities: dict[str, models.Authority] = {}
        for planting in plantings:
            code = planting["tt:authority"].rpartition("/")[2]
            if code not in authorities:
                authorities[code] = make_authority(rt.sessions, rt.registry, code=code)
        with transaction(rt.sessions) as session:
            for n, planting in enumerate(plantings):
                farmer = models.Farmer(
                    code=planting["tt:actor"].rpartition("/")[2],
                    authority_id=authorities[planting["tt:authority"].rpartition("/")[2]].id,
                    display_name=f"เกษตรกร {n}",
                )
                session.add(farmer)
                session.flush()
                enrol_plot(
                    session,
                    code=planting["bizLocation"]["id"].rpartition("/")[2],
                    farmer=farmer,
                    village_th="บ้านหนองสนิท",
                    village_en="Ban Nong Sanit",
                    area_rai=planting["tt:areaRai"],
                )
    finally:
        rt.close()
    code, out, err = run(fresh, capsys, "import", str(exported))
    assert code == 0, err
    assert exported_ids(fresh, capsys, "NSN-HML-2611-M1")[1] == hashes


def test_prev_in_the_file_is_not_trusted_each_event_is_linked_to_the_ledgers_heads(anvil, tmp_path, capsys):
    settings = ledger(anvil, tmp_path / "ledger")
    forged = "0x" + "ab" * 32
    lines = [json.dumps(json.loads(json_line(e)) | {"prev": [forged]}) for e in lifecycle()]
    assert run(settings, capsys, "import", str(write_lines(tmp_path / "events.jsonl", lines)))[0] == 0
    document, ids = exported_ids(settings, capsys, "T-VEG-0001A")
    events = document["epcisBody"]["eventList"]
    assert "tt:prev" not in events[0]  # the planting starts its lot's chain
    assert [e["tt:prev"] for e in events[1:4]] == [[ids[0]], [ids[1]], [ids[2]]]  # harvest, grading, packing
    assert events[4]["tt:prev"] == [ids[3]] and events[5]["tt:prev"] == [ids[4]]  # ship and receive lot A
