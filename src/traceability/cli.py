"""The ``trace`` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traceability.config import Settings, get_settings
from traceability.domain import codec
from traceability.domain.findings import Severity, Verdict
from traceability.errors import InvalidInput, TraceabilityError
from traceability.services.runtime import Runtime


def _print_json(value: Any) -> None:
    sys.stdout.write(codec.dumps(value, indent=2) + "\n")


def cmd_migrate(rt: Runtime, args: argparse.Namespace) -> int:
    rt.migrate()
    print(f"database migrated: {rt.engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_deploy(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.deploy import ensure_deployed

    address, created = ensure_deployed(rt)
    print(
        f"TraceRegistry {'deployed' if created else 'already deployed'} at {address} on chain {rt.chain_id}"
    )
    return 0


def cmd_demo(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.demo import is_seeded, seed_demo

    with rt.transaction() as session:
        seeded = is_seeded(session)
    if seeded and not args.force:
        if args.json:
            _print_json({"seeded": False, "reason": "database already holds events"})
        else:
            print("database already holds events: demo not seeded (use --force to add anyway)")
        return 0
    result = seed_demo(rt.sessions, rt.registry, id_base=rt.settings.id_base, tz=rt.settings.timezone)
    if args.json:
        _print_json({"seeded": True, **result.to_json()})
    else:
        print(f"demo seeded: {len(result.lots)} lots, identifiers under {result.id_base}")
        for lot in result.lots:
            print(f"  {lot}")
        print("farmers (phone / PIN):")
        for f in result.farmers:
            print(f"  {f['code']}  {f['phone']} / {f['pin']}")
        for o in result.officers:
            print(f"officer {o['username']} / {o['password']}  (signing passphrase: {o['passphrase']})")
    return 0


def cmd_lots(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.ledger import list_lots

    with rt.transaction() as session:
        lots = list_lots(session)
    if args.json:
        _print_json({"lots": [lot.to_json() for lot in lots]})
        return 0
    if not lots:
        print("no lots yet")
    for lot in lots:
        print(f"{lot.code:<20} {lot.status:<9} {lot.anchored:>3}/{lot.events:<3} events  {lot.product_en}")
    return 0


def _print_verdict(verdict: Verdict, as_json: bool) -> int:
    if as_json:
        _print_json(verdict.to_json())
    else:
        print(f"lot {verdict.lot_code}: {verdict.status.value.upper()}")
        marks = {Severity.OK: "ok   ", Severity.WARNING: "WARN ", Severity.ERROR: "FAIL "}
        for check in verdict.checks:
            print(f"  {marks[check.severity]} {check.check:<16} {check.en}")
        for f in verdict.findings:
            mark = "FAIL " if f.severity is Severity.ERROR else "WARN "
            where = f" [event {f.event_id}]" if f.event_id else ""
            print(f"  {mark} {f.code:<16} {f.en}{where}")
    return 0 if verdict.ok else 1


def cmd_verify(rt: Runtime, args: argparse.Namespace) -> int:
    if args.bundle:
        from traceability.services.runtime import trusted_registry
        from traceability.services.verify import verify_bundle

        if not args.rpc:
            raise InvalidInput("--bundle needs --rpc URL: the chain is what the bundle is checked against")
        try:
            bundle = codec.loads(Path(args.bundle).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read bundle {args.bundle}: {exc}") from exc
        if not isinstance(bundle, dict):
            raise InvalidInput("not a proof bundle: a JSON object was expected")
        registry = trusted_registry(rt.settings, args.rpc, args.registry)
        verdict = verify_bundle(bundle, registry, confirmations=args.confirmations)
        return _print_verdict(verdict, args.json)
    if not args.lot_code:
        raise InvalidInput("give a LOT_CODE, or --bundle FILE --rpc URL")
    from traceability.services.ledger import verify_lot

    with rt.transaction() as session:
        verdict = verify_lot(
            session,
            rt.registry,
            args.lot_code,
            confirmations=rt.settings.confirmations,
            yield_tolerance=rt.settings.yield_tolerance,
        )
    return _print_verdict(verdict, args.json)


def cmd_reconcile(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.ledger import reconcile

    with rt.transaction() as session:
        problems, stats = reconcile(session, rt.registry)
    if args.json:
        _print_json({"ok": not problems, "stats": stats, "problems": [p.to_json() for p in problems]})
    else:
        print("reconcile: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.items())))
        for p in problems:
            print(f"  PROBLEM {p.code}: {p.message}")
        print("reconcile: OK" if not problems else f"reconcile: {len(problems)} problem(s)")
    return 0 if not problems else 1


def cmd_export(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.exports import export_epcis, export_fsma204
    from traceability.services.proof import build_bundle

    with rt.transaction() as session:
        if args.format == "proof":
            reg = rt.registry
            bundle = build_bundle(session, args.lot_code, chain_id=reg.chain_id, contract=reg.address)
            _print_json(bundle.to_json())
        elif args.format == "epcis":
            _print_json(export_epcis(session, args.lot_code))
        else:
            sys.stdout.write(export_fsma204(session, args.lot_code))
    return 0


def cmd_worker(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.workers.anchor import run_worker

    stats = run_worker(rt, once=args.once, timeout_s=args.timeout)
    print(f"anchored {stats.events} events in {stats.batches} batches (gas {stats.gas_used})")
    return 0


def cmd_serve(rt: Runtime, args: argparse.Namespace) -> int:
    import uvicorn

    from traceability.main import create_app

    uvicorn.run(create_app(rt.settings), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_bench(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.bench import run_bench

    report = run_bench(sizes=args.sizes, events=args.events, batch_max=rt.settings.batch_max)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"anvil {report['anvil']}  (one run; ratios are what compare across machines)")
        print(f"{'batch size':>10} {'gas/tx':>10} {'gas/event':>10}")
        for row in report["gas"]:
            print(f"{row['batch_size']:>10} {row['gas_per_tx']:>10} {row['gas_per_event']:>10.1f}")
        t = report["throughput"]
        print(
            f"end to end at batch size {t['batch_size']}: {t['events']} events recorded and anchored in "
            f"{t['seconds']:.2f}s = {t['events_per_s']:.1f} events/s (record {t['record_per_s']:.1f}/s, "
            f"anchor {t['anchor_per_s']:.1f}/s)"
        )
        p = report["throughput_per_event_mode"]
        print(
            f"end to end at batch size 1 (per-event mode): {p['events']} events in {p['seconds']:.2f}s = "
            f"{p['events_per_s']:.1f} events/s (anchor {p['anchor_per_s']:.1f}/s); "
            f"batching is {report['speedup_vs_per_event']:.1f}x faster end to end"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trace", description="Farm-to-export traceability (Thai community agriculture)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the web pages and API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("worker", help="run the anchoring worker")
    s.add_argument("--once", action="store_true", help="anchor everything pending, wait until final, exit")
    s.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="with --once: give up after S seconds, exit non-zero and say what it still waits for",
    )
    s.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)
    sub.add_parser("deploy", help="deploy TraceRegistry once on the configured chain").set_defaults(
        func=cmd_deploy
    )

    s = sub.add_parser("demo", help="seed realistic demo data (when the database holds no events)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("lots", help="list lots and their anchoring status")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_lots)

    s = sub.add_parser("verify", help="verify a lot (exit 0 only when verified)")
    s.add_argument("lot_code", nargs="?")
    s.add_argument("--bundle", metavar="FILE", help="a proof bundle: checked with no database")
    s.add_argument("--rpc", metavar="URL", help="the chain's JSON-RPC URL (with --bundle)")
    s.add_argument(
        "--registry",
        metavar="ADDRESS",
        help="with --bundle: the TraceRegistry you trust (default: this installation's deployment)",
    )
    s.add_argument("--confirmations", type=int, default=0, help="with --bundle: confirmations required")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("reconcile", help="check the SQL mirror against itself and the chain")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_reconcile)

    s = sub.add_parser("export", help="export a lot to stdout")
    s.add_argument("format", choices=["proof", "epcis", "fsma204"])
    s.add_argument("lot_code")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("bench", help="measure gas per event by batch size and end-to-end throughput")
    s.add_argument("--json", action="store_true")
    s.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16, 256, 1024])
    s.add_argument("--events", type=int, default=2048, help="events for the throughput run")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command in ("serve", "worker") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    rt = Runtime(settings or get_settings())
    try:
        return int(args.func(rt, args))
    except TraceabilityError as exc:
        print(f"trace {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
