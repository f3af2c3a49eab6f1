"""The ``trace`` command."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from traceability.config import Settings, get_settings
from traceability.domain import codec
from traceability.domain.findings import Severity, Verdict
from traceability.errors import Conflict, InvalidInput, NotFound, TraceabilityError
from traceability.services.observability import configure_logging, logging_config
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
        for i in result.importers:
            print(f"importer API key {i['name']}: {i['api_key']}")
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
        if verdict.risk is not None:
            risk = verdict.risk
            why = ", ".join(risk.codes) if risk.signals else "no anomalies found"
            print(f"  origin risk {risk.score}/100 ({risk.level.value}; from the {risk.basis}): {why}")
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
            evidence_dir=rt.settings.evidence_dir,
        )
    return _print_verdict(verdict, args.json)


RECONCILE_NOT_FINAL = 3
"""`trace reconcile`'s exit status when all it found is anchoring still under way (cron: retry later)."""


def cmd_reconcile(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.ledger import reconcile
    from traceability.services.runtime import deployment_block

    registry = rt.registry
    with rt.transaction() as session:
        problems, stats = reconcile(
            session,
            registry,
            confirmations=rt.settings.confirmations,
            logs_from_block=deployment_block(rt.settings, rt.chain_id, registry.address),
        )
    repaired = _repair_anchors(rt, quiet=args.json) if args.repair else []
    only_not_final = bool(problems) and all(p.not_final for p in problems)
    status = "ok" if not problems else "not_final" if only_not_final else "problems"
    if args.json:
        counts: dict[str, int] = {}
        for p in problems:
            counts[p.code] = counts.get(p.code, 0) + 1
        _print_json(
            {
                "ok": not problems,
                "status": status,
                "stats": stats,
                "counts": counts,
                "problems": [p.to_json() for p in problems],
                "repaired": repaired,
            }
        )
    else:
        print("reconcile: " + ", ".join(f"{k}={v}" for k, v in sorted(stats.items())))
        for p in problems:
            print(f"  {'WAIT' if p.not_final else 'PROBLEM'} {p.code}: {p.message}")
        if not problems:
            print("reconcile: OK")
        elif only_not_final:
            print(f"reconcile: {len(problems)} batch(es) not final yet, nothing wrong")
        else:
            print(f"reconcile: {len(problems)} problem(s)")
    return 0 if not problems else RECONCILE_NOT_FINAL if only_not_final else 1


def _repair_anchors(rt: Runtime, *, quiet: bool) -> list[int]:
    """``trace reconcile --repair``: every anchored batch whose anchor the registry does not hold as recorded
    (anchor_missing, block_reorged; e.g. all of them after a chain reset and ``trace deploy``) is put back
    on its way to the chain, and the worker anchors it again. The batches reopened."""
    from traceability.services.anchoring import reopen_lost_anchors

    with rt.transaction() as session:
        reopened = reopen_lost_anchors(session, rt.registry)
    if not quiet:
        print(f"reconcile --repair: {len(reopened)} batch(es) reopened, for the worker to anchor: {reopened}")
    return reopened


def cmd_export(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.exports import export_epcis
    from traceability.services.proof import build_bundle

    with rt.transaction() as session:
        if args.format == "proof":
            reg = rt.registry
            bundle = build_bundle(session, args.lot_code, chain_id=reg.chain_id, contract=reg.address)
            _print_json(bundle.to_json())
        elif args.format == "epcis":
            _print_json(export_epcis(session, args.lot_code))
        else:
            from traceability.services.fsma204 import export_fsma204

            sys.stdout.write(export_fsma204(session, args.lot_code))
    return 0


def cmd_import(rt: Runtime, args: argparse.Namespace) -> int:
    """Exit 0 when every event is stored, 1 when a chunk was refused (the chunks before it stay stored), 2
    when the file cannot be read as events (raised, and reported by ``main``)."""
    from traceability.services.imports import import_file

    report = import_file(rt.sessions, Path(args.file), id_base=rt.settings.id_base, batch=args.batch)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(report.message(), file=sys.stdout if report.ok else sys.stderr)
        for refusal in report.refused:
            print(f"  {refusal.where}: {refusal.code}: {refusal.message}", file=sys.stderr)
    return 0 if report.ok else 1


def _import_batch(value: str) -> int:
    from traceability.services.imports import MAX_BATCH

    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= size <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"1 to {MAX_BATCH} events per chunk")
    return size


def cmd_backup(rt: Runtime, args: argparse.Namespace) -> int:
    """The whole database to FILE (gzip'd JSON lines), read as one consistent snapshot."""
    from traceability.services.backup import backup

    return _rows_moved(backup(rt.engine, Path(args.file)), args, "backed up {rows} to {file}")


def cmd_restore(rt: Runtime, args: argparse.Namespace) -> int:
    """FILE into this (empty, migrated) database, all or nothing."""
    from traceability.services.backup import restore

    return _rows_moved(restore(rt.engine, Path(args.file)), args, "restored {rows} from {file}")


def _rows_moved(summary: Any, args: argparse.Namespace, said: str) -> int:
    """What a backup or a restore moved: its JSON, or one line (``said`` with ``{rows}`` and ``{file}``)."""
    if args.json:
        _print_json(summary.to_json())
    else:
        rows = (
            f"{sum(summary.rows.values())} rows of {len(summary.rows)} tables (revision {summary.revision})"
        )
        print(said.format(rows=rows, file=args.file))
    return 0


def cmd_worker(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.workers.anchor import run_worker

    stats = run_worker(rt, once=args.once, timeout_s=args.timeout)
    print(f"anchored {stats.events} events in {stats.batches} batches (gas {stats.gas_used})")
    return 0


def cmd_risk_learn(rt: Runtime, args: argparse.Namespace) -> int:
    """Learn the origin-risk population from the whole ledger and store it for the servers (the leading
    worker runs this whenever the ledger has changed and the stored population is old)."""
    from traceability.services.risk import relearn

    if args.background:
        os.nice(10)  # the worker starts it beside anchoring and serving: they come first
    started = time.perf_counter()
    population = relearn(rt.sessions, rt.settings.evidence_dir)
    seconds = time.perf_counter() - started
    result = {
        "harvest_lots": population.harvest_lots,
        "farmer_seasons": population.anomaly.groups,
        "photo_pairs": len(population.photo_signals),
        "unusual": len(population.unusual_signals),
        "seconds": round(seconds, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"learned the origin-risk population in {seconds:.1f} s: {population.harvest_lots} harvest lots, "
            f"{population.anomaly.groups} farmer-seasons, {len(population.photo_signals)} reused photos, "
            f"{len(population.unusual_signals)} unusual farmer-seasons"
        )
    return 0


SERVE_WORKERS = 1
"""`trace serve`'s processes by default: measured with `trace bench --only web` on a 2-core machine, where the
load generator needs CPU too (docs/benchmarks.md)."""


def cmd_serve(rt: Runtime, args: argparse.Namespace) -> int:
    """One process by default; with ``--workers N``, N processes sharing the port, each with its own app (made
    by the factory ``main.create_app`` from the environment, as this command reads it), caches and rate
    limits."""
    import uvicorn

    from traceability.main import create_app

    # uvicorn's lines and the app's, in every server process: TRACE_LOG_FORMAT, secrets masked.
    log_config = logging_config(logging.INFO, rt.settings.log_format)
    if args.workers == 1:
        uvicorn.run(
            create_app(rt.settings), host=args.host, port=args.port, log_level="info", log_config=log_config
        )
    else:
        uvicorn.run(
            "traceability.main:create_app",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="info",
            log_config=log_config,
            # uvicorn restarts a process that does not answer its supervisor within 5 s; importing the app
            # takes longer than that on a busy 2-core machine, and the restarts never end.
            timeout_worker_healthcheck=60,
        )
    return 0


def _workers(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"between 1 and 64 processes, not {count}")
    return count


def cmd_bench(rt: Runtime, args: argparse.Namespace) -> int:
    """Every figure of issue 9 in one run (``--only`` one part); ``--json`` prints one object."""
    from traceability.services.bench import PARTS, BenchOptions, format_table, run_bench

    def progress(message: str) -> None:
        if not args.json:
            print(f"... {message}", flush=True)

    options = BenchOptions(
        sizes=tuple(args.sizes),
        load_clients=args.load_clients,
        record_duration_s=args.record_duration,
        duration_s=args.duration,
        baseline_duration_s=args.baseline_duration,
        block_time_s=args.block_time,
        postgres_url=args.postgres_url,
        web_clients=args.clients,
        web_requests=args.requests,
        lineages=tuple(args.lineages),
        rss_events=args.rss_events,
        rss_sample_every=args.rss_sample_every,
        rss_farmers_per_client=args.rss_farmers,
    )
    report = run_bench([args.only] if args.only else PARTS, options, progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(format_table(report)))
    return 0


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"a number above 0, not {value}")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"1 or more, not {value}")
    return number


def _positive_list(value: str) -> list[int]:
    """``1,16,256``: whole numbers of 1 or more, comma-separated."""
    return [_positive_int(v.strip()) for v in value.split(",")]


def cmd_soak(rt: Runtime, args: argparse.Namespace) -> int:
    """Issue 10's soak (``services/soak.py``): exit 0 only with no error, nothing lost, reconcile clean."""
    from traceability.services.soak import SoakOptions, format_table, run_soak

    options = SoakOptions(args.clients, args.seconds, args.database, args.postgres_url, args.drain)
    result = run_soak(options, (lambda _m: None) if args.json else (lambda m: print(f"... {m}", flush=True)))
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else "\n".join(format_table(result)))
    return 0 if result["ok"] else 1


def cmd_risk_bench(rt: Runtime, args: argparse.Namespace) -> int:
    """The origin-risk detector measured on a seeded synthetic season. Needs no database or chain (``rt`` is
    never touched); goals missed are a finding printed, not an error."""
    from traceability.services.risk_bench import format_table, run_bench

    result = run_bench(args.seed, farmers=args.farmers)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(format_table(result))
    return 0


def _farmer_count(value: str) -> int:
    from traceability.services.risk_bench import MIN_FARMERS

    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if count < MIN_FARMERS:
        raise argparse.ArgumentTypeError(f"at least {MIN_FARMERS} farmers (a case of every type needs them)")
    return count


# ------------------------------------------------------------------ operators: authorities and officers

AUTHORITY_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
PASSWORD_MIN = 8
PASSPHRASE_MIN = 12


def cmd_authority_add(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.parties import checked_address, enrol_authority

    if not AUTHORITY_CODE.fullmatch(args.code):
        raise InvalidInput(
            f"authority code {args.code!r}: 1-32 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    for option, value, limit in (
        ("--name-th", args.name_th, 200),
        ("--name-en", args.name_en, 200),
        ("--district-th", args.district_th, 100),
        ("--province-th", args.province_th, 100),
    ):
        if not value.strip() or len(value) > limit:
            raise InvalidInput(f"{option} must be 1-{limit} characters")
    admin = checked_address(args.admin, "--admin")
    row = enrol_authority(
        rt.sessions,
        code=args.code,
        name_th=args.name_th.strip(),
        name_en=args.name_en.strip(),
        district_th=args.district_th.strip(),
        province_th=args.province_th.strip(),
        admin_address=admin,
        registrar=rt.registrar,
    )
    if args.json:
        _print_json(
            {
                "code": row.code,
                "name_th": row.name_th,
                "name_en": row.name_en,
                "district_th": row.district_th,
                "province_th": row.province_th,
                "admin": row.admin_address,
                "status": str(row.status),
                "chain_id": rt.chain_id,
                "registry": rt.registry.address,
            }
        )
    else:
        print(f"authority {row.code} ({row.name_en}) registered on chain {rt.chain_id}: admin {admin}")
    return 0


def cmd_officer_add(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.parties import (
        authority_by_code,
        enrol_officer,
        officer_term,
        require_authority_admin,
    )

    if not 1 <= len(args.username) <= 64 or args.username.strip() != args.username:
        raise InvalidInput("USERNAME must be 1-64 characters without surrounding spaces")
    if not args.display_name.strip() or len(args.display_name) > 200:
        raise InvalidInput("--display-name must be 1-200 characters")
    valid_from = _unix_time(args.valid_from, "--valid-from", rt.settings.timezone) if args.valid_from else 0
    with rt.transaction() as session:
        authority = authority_by_code(session, args.authority)
    admin = rt.client_for_key(_admin_key(args.admin_key_file), f"--admin-key-file {args.admin_key_file}")
    # Checked before the officer types their secrets, and again when the transaction is signed.
    require_authority_admin(admin, authority.code)
    password, passphrase = _officer_secrets(args)
    row = enrol_officer(
        rt.sessions,
        username=args.username,
        display_name=args.display_name.strip(),
        authority=authority,
        password=password,
        passphrase=passphrase,
        authority_admin=admin,
        valid_from=valid_from,
    )
    term = officer_term(rt.registry, authority.code, row.address)
    if args.json:
        _print_json(
            {
                "username": row.username,
                "authority": authority.code,
                "address": row.address,
                "status": str(row.status),
                "valid_from": term.valid_from,
                "valid_from_iso": _iso(term.valid_from),
            }
        )
    else:
        since = _iso(term.valid_from)
        print(f"officer {row.username} of {authority.code} registered on chain, valid from {since}")
        print(row.address)
    return 0


def cmd_officer_revoke(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.parties import revoke_officer

    effective_at = (
        _unix_time(args.effective_at, "--effective-at", rt.settings.timezone) if args.effective_at else 0
    )
    admin = rt.client_for_key(_admin_key(args.admin_key_file), f"--admin-key-file {args.admin_key_file}")
    done = revoke_officer(
        rt.sessions, username=args.username, authority_admin=admin, effective_at=effective_at
    )
    if args.json:
        _print_json({**asdict(done), "revoked_at_iso": _iso(done.revoked_at), "status": "revoked"})
    else:
        print(
            f"officer {done.username} ({done.address}) of {done.authority_code} revoked on chain as of "
            f"{_iso(done.revoked_at)}" + (f" (tx {done.tx_hash})" if done.tx_hash else "")
        )
    return 0


# ------------------------------------------------------------------ operators: the anchor key's keystore


def cmd_anchor_key_create(rt: Runtime, args: argparse.Namespace) -> int:
    """A new anchor key, born encrypted: only the keystore file and the address ever exist in the clear."""
    from traceability.services.anchor_keys import create_keystore, keystore_passphrase

    settings = rt.settings
    if (
        settings.anchor_keystore_passphrase is not None
        or settings.anchor_keystore_passphrase_file is not None
    ):
        passphrase = keystore_passphrase(settings)
    elif not sys.stdin.isatty():
        raise InvalidInput(
            "no terminal to read the passphrase from without echo: set TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE"
        )
    else:
        passphrase = _prompt_twice("anchor keystore passphrase")
    address = create_keystore(Path(args.out), passphrase)
    print(
        f"keystore written to {args.out}: set TRACE_ANCHOR_KEYSTORE to it, fund the address for gas and "
        "give it ANCHORER_ROLE (`trace deploy` does on a new registry)",
        file=sys.stderr,
    )
    print(address)
    return 0


# ------------------------------------------------------------------ operators: importers' API keys


def _refused(args: argparse.Namespace, exc: TraceabilityError) -> int:
    """Exit 1 for a refusal (a name taken, an unknown key): the command was understood and said no. Bad
    usage (an invalid name) stays exit 2, as in :func:`main`."""
    if isinstance(exc, InvalidInput):
        raise exc
    print(f"trace {args.command_name}: error: {exc.message}", file=sys.stderr)
    return 1


def cmd_apikey_create(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.apikeys import create_api_key

    try:
        with rt.transaction() as session:
            created = create_api_key(session, args.name)
    except (Conflict, NotFound, InvalidInput) as exc:
        return _refused(args, exc)
    # The key is printed once, after the commit, alone on the last line (scripts take `| tail -n 1`).
    print(
        f"API key {created.info.name!r} created ({created.info.prefix}…). Give it to the importer over a "
        "safe channel: it is shown only now, and only its hash is kept."
    )
    print(created.key)
    return 0


def cmd_apikey_revoke(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.apikeys import revoke_api_key

    try:
        with rt.transaction() as session:
            done = revoke_api_key(session, args.name)
    except (Conflict, NotFound, InvalidInput) as exc:
        return _refused(args, exc)
    revoked = done.info.revoked_at
    when = revoked.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if revoked else "?"
    if done.already:
        print(f"API key {done.info.name!r} ({done.info.prefix}…) was already revoked at {when}")
    else:
        print(f"API key {done.info.name!r} ({done.info.prefix}…) revoked at {when}: it no longer works")
    return 0


def cmd_apikey_list(rt: Runtime, args: argparse.Namespace) -> int:
    from traceability.services.apikeys import list_api_keys

    with rt.transaction() as session:
        keys = list_api_keys(session)
    if args.json:
        _print_json({"keys": [k.to_json() for k in keys]})
        return 0
    if not keys:
        print("no API keys yet: trace apikey create NAME")
        return 0

    def moment(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"

    width = max(4, *(len(k.name) for k in keys))
    print(f"{'NAME':<{width}}  {'PREFIX':<13} {'CREATED (UTC)':<16}  {'LAST USED':<16}  REVOKED")
    for k in keys:
        print(
            f"{k.name:<{width}}  {k.prefix + '…':<13} {moment(k.created_at):<16}  "
            f"{moment(k.last_used_at):<16}  {moment(k.revoked_at) if k.revoked_at else 'no'}"
        )
    return 0


def _admin_key(key_file: str) -> str:
    """The authority admin's private key (hex): the first line of ``key_file``. A file, not an option or
    an environment variable, so the key shows in no process listing."""
    key = _first_line(key_file, "--admin-key-file").strip()
    if not key:
        raise InvalidInput(
            f"--admin-key-file {key_file} is empty: it must hold the admin's private key (hex)"
        )
    return key


def _first_line(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"cannot read {option} {path}: {reason}") from None


def _officer_secrets(args: argparse.Namespace) -> tuple[str, str]:
    """The officer's login password and signing passphrase: from files, from stdin (two lines), or typed at
    the terminal without echo (twice each). Never from argv or the environment: those leak (ps, /proc)."""
    if args.stdin and (args.password_file or args.passphrase_file):
        raise InvalidInput(
            "--stdin reads both secrets: do not combine it with --password-file/--passphrase-file"
        )
    if args.stdin:
        password, passphrase = _stdin_line("password"), _stdin_line("passphrase")
    else:
        password = (
            _first_line(args.password_file, "--password-file")
            if args.password_file
            else _prompt_twice("officer's login password")
        )
        passphrase = (
            _first_line(args.passphrase_file, "--passphrase-file")
            if args.passphrase_file
            else _prompt_twice("officer's signing passphrase")
        )
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"the password must be at least {PASSWORD_MIN} characters")
    if len(passphrase) < PASSPHRASE_MIN:
        raise InvalidInput(f"the signing passphrase must be at least {PASSPHRASE_MIN} characters")
    if passphrase == password:
        raise InvalidInput(
            "the signing passphrase must differ from the login password: it alone opens the officer's key"
        )
    return password, passphrase


def _stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput(f"--stdin: expected two lines (password, then passphrase); the {what} is missing")
    return line.rstrip("\r\n")


def _prompt_twice(what: str) -> str:
    with warnings.catch_warnings():
        # Without a terminal getpass would read the secret with echo on, after a warning: refuse instead.
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            first = getpass.getpass(f"{what}: ")
            second = getpass.getpass(f"{what} again: ")
        except getpass.GetPassWarning:
            raise InvalidInput(
                f"no terminal to read the {what} from without echo: use --password-file and "
                "--passphrase-file, or --stdin"
            ) from None
        except EOFError:
            raise InvalidInput(f"no {what} given") from None
    if first != second:
        raise InvalidInput(f"the two entries of the {what} do not match")
    return first


def _unix_time(value: str, option: str, tz: str) -> int:
    """ISO 8601 to unix seconds; a time without an offset is taken in ``tz`` (TRACE_TIMEZONE)."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} is not an ISO 8601 time: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    unix = int(when.timestamp())
    if not 0 < unix < 2**64:
        raise InvalidInput(f"{option} is out of range: {value!r}")
    return unix


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="trace", description="Farm-to-export traceability (Thai community agriculture)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the web pages and API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument(
        "--workers",
        type=_workers,
        default=SERVE_WORKERS,
        metavar="N",
        help=f"server processes sharing the port, each with its own caches (default {SERVE_WORKERS})",
    )
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

    s = sub.add_parser(
        "risk-learn",
        help="learn the origin-risk population from the whole ledger and store it (the worker runs this)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument("--background", action="store_true", help="at low CPU priority (as the worker runs it)")
    s.set_defaults(func=cmd_risk_learn)

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

    s = sub.add_parser(
        "reconcile",
        help="check the SQL mirror against itself and the chain (exit 0 clean, 1 problems, 3 only not final)",
        description="Walk every event row and every batch and the registry's Anchored logs, and report: "
        "hash_mismatch / body_unreadable (a row's body no longer hashes to its hash), event_missing (a "
        "batch short of its event rows, or a prev hash naming no stored event), root_mismatch, "
        "anchor_missing, block_reorged, unexplained_root (a root on chain that no batch row holds: another "
        "holder of the anchor key), chain operations unfinished or failed, and anchor_not_final (a batch "
        "still sending or mined, or with fewer than TRACE_CONFIRMATIONS blocks on top). Exit 0: nothing "
        "found; 1: a problem (anything but anchor_not_final); 3: only batches not final yet (run it again "
        "later); 2: it could not run (configuration, chain or database unreachable). --json prints "
        '{"ok", "status": ok|not_final|problems, "stats", "counts" (findings by code), "problems"}.',
    )
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--repair",
        action="store_true",
        help="then reopen every anchored batch whose root the registry does not hold as recorded (after a "
        'chain reset and `trace deploy`): the worker anchors it again; --json lists them under "repaired"',
    )
    s.set_defaults(func=cmd_reconcile)

    s = sub.add_parser("export", help="export a lot to stdout")
    s.add_argument("format", choices=["proof", "epcis", "fsma204"])
    s.add_argument("lot_code")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser(
        "import",
        help="record a file of events: an EPCIS 2.0 document or JSON lines (one event per line)",
        description="Record a packing house's file of events, told apart by content: an EPCIS 2.0 "
        "EPCISDocument (as `trace export epcis` writes it; read whole, at most 64 MiB) or JSON lines (one "
        "event per line, with actor; read line by line). Events are recorded in chunks of --batch, each "
        "all or nothing. Exit 1 if a chunk is refused (it names each refused event by line or eventList "
        "index; the chunks before it stay stored, and running the same import again skips them), exit 2 if "
        "the file cannot be read as events.",
    )
    s.add_argument("file", metavar="FILE")
    s.add_argument(
        "--batch", type=_import_batch, default=1000, metavar="N", help="events per chunk, 1-5000 (1000)"
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser(
        "backup",
        help="write the whole database to FILE (one consistent snapshot, gzip'd JSON lines)",
        description="Write every row of the database to FILE: gzip'd JSON lines, the same format for "
        "SQLite and PostgreSQL, read in one transaction (a consistent snapshot while `trace serve` keeps "
        "recording). "
        "Evidence photos (TRACE_VAR_DIR/evidence) are files: copy them beside it.",
    )
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser(
        "restore",
        help="load a `trace backup` FILE into an empty database migrated to the file's revision",
        description="Load FILE (made by `trace backup`) into this database in one transaction, all or "
        "nothing. The database must be empty and at the backup's alembic revision: run `trace migrate` on a "
        "fresh database first. Exit 2 (nothing written) for another format version, a non-empty database, "
        "another revision or a truncated or garbled file.",
    )
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("authority", help="manage authorities (อปท.)")
    actions = s.add_subparsers(dest="action", required=True)
    s = actions.add_parser(
        "add",
        help="enrol an authority and register it on chain (registrar key: TRACE_REGISTRAR_KEY)",
        description="Enrol an authority (อปท.) and register it on chain with the registrar's key "
        "(TRACE_REGISTRAR_KEY; on the dev chain 31337 it defaults to the anchor key).",
    )
    s.add_argument("code", metavar="CODE", help="e.g. LAO-NONGSANIT")
    s.add_argument("--name-th", required=True)
    s.add_argument("--name-en", required=True)
    s.add_argument("--district-th", required=True)
    s.add_argument("--province-th", required=True)
    s.add_argument("--admin", required=True, metavar="ADDRESS", help="the address that manages its officers")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_authority_add, command_name="authority add")

    s = sub.add_parser("officer", help="manage officers of an authority")
    actions = s.add_subparsers(dest="action", required=True)
    s = actions.add_parser(
        "add",
        help="create an officer's own key (encrypted with their passphrase) and register it on chain",
        description="Create the officer's signing key as a keystore encrypted with their passphrase, and "
        "register its address on chain with the authority admin's key. The password and passphrase are "
        "typed at the terminal (twice, not echoed), or read from files or stdin, never from the command "
        "line.",
    )
    s.add_argument("username", metavar="USERNAME")
    s.add_argument("--authority", required=True, metavar="CODE")
    s.add_argument("--display-name", required=True)
    s.add_argument(
        "--valid-from",
        metavar="ISO8601",
        help="start of the officer's term (default now; no offset = TRACE_TIMEZONE)",
    )
    s.add_argument(
        "--admin-key-file",
        required=True,
        metavar="F",
        help="a file holding the authority admin's private key (hex)",
    )
    s.add_argument("--password-file", metavar="F", help="the officer's login password: the file's first line")
    s.add_argument(
        "--passphrase-file", metavar="F", help="the officer's signing passphrase: the file's first line"
    )
    s.add_argument(
        "--stdin", action="store_true", help="read two lines from stdin: password, then passphrase"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_officer_add, command_name="officer add")

    s = actions.add_parser(
        "revoke",
        help="revoke an officer on chain (now, or as of a past time) with the authority admin's key",
        description="Revoke the officer on chain with the authority admin's key, as of --effective-at "
        "(default now; a past time is allowed, e.g. since a key was compromised, but not before the "
        "officer's term began), and mark the officer revoked.",
    )
    s.add_argument("username", metavar="USERNAME")
    s.add_argument("--effective-at", metavar="ISO8601", help="no offset = TRACE_TIMEZONE; default now")
    s.add_argument(
        "--admin-key-file",
        required=True,
        metavar="F",
        help="a file holding the authority admin's private key (hex)",
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_officer_revoke, command_name="officer revoke")

    s = sub.add_parser(
        "anchor-key", help="the anchor key kept in an encrypted keystore (TRACE_ANCHOR_KEYSTORE)"
    )
    actions = s.add_subparsers(dest="action", required=True)
    s = actions.add_parser(
        "create",
        help="make a new anchor key as an encrypted keystore file; prints only its address",
        description="Make a new random anchor key and write it to FILE as an Ethereum JSON keystore "
        "(scrypt, mode 0600, never over an existing file), encrypted with the passphrase read from "
        "TRACE_ANCHOR_KEYSTORE_PASSPHRASE_FILE (or TRACE_ANCHOR_KEYSTORE_PASSPHRASE), else typed twice "
        "without echo. Prints the address alone on stdout. Then set TRACE_ANCHOR_KEYSTORE=FILE and the same "
        "passphrase setting for `trace serve`, `trace worker` and `trace deploy`.",
    )
    s.add_argument("--out", required=True, metavar="FILE", help="the keystore file to create")
    s.set_defaults(func=cmd_anchor_key_create, command_name="anchor-key create")

    s = sub.add_parser("apikey", help="manage importers' API keys (for the /api/v1 importer endpoints)")
    actions = s.add_subparsers(dest="action", required=True)
    s = actions.add_parser(
        "create",
        help="make a new API key: printed once, alone on the last line; only its hash is kept",
        description="Make an importer's API key (256 random bits, `ttk_…`). It is printed once, alone on "
        "the last line of the output; the database keeps only its SHA-256 and its first characters. "
        "Importers send it as `Authorization: Bearer ttk_…`. Exit 1 if the name is taken.",
    )
    s.add_argument("name", metavar="NAME", help="1-64 characters of A-Z a-z 0-9 . _ - (e.g. acme-foods-us)")
    s.set_defaults(func=cmd_apikey_create, command_name="apikey create")
    s = actions.add_parser(
        "revoke",
        help="revoke the API key called NAME: it stops working at once",
        description="Revoke the API key called NAME (the key is kept, marked revoked). Exit 1 if there is "
        "no such key; revoking a revoked key changes nothing and exits 0.",
    )
    s.add_argument("name", metavar="NAME")
    s.set_defaults(func=cmd_apikey_revoke, command_name="apikey revoke")
    s = actions.add_parser(
        "list", help="the API keys: names, prefixes, created, last used, revoked (never the keys)"
    )
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_apikey_list, command_name="apikey list")

    s = sub.add_parser(
        "bench",
        help="measure gas, recording and anchoring rates, page and verify latency, verify cost and memory",
        description="Every figure of the benchmarks in one run, each against real `trace serve` and `trace "
        "worker` processes on a fresh Anvil and database (see docs/benchmarks.md). At the default sizes it "
        "takes about 14 minutes on 2 cores, most of it loading --rss-events; --only runs one part.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument(
        "--only",
        choices=("gas", "recorded", "anchored", "web", "scaling", "rss"),
        help="only gas per event by batch size; recorded events/s (SQLite and PostgreSQL, single and batch); "
        "anchored events/s and latency against the one-event-a-transaction baseline; page and verify "
        "latency; verification's cost by lineage length; or memory of serve and worker under a large load",
    )
    s.add_argument(
        "--sizes",
        type=_positive_list,
        default=[1, 16, 256, 1024],
        help="batch sizes for the gas figures (1,16,256,1024)",
    )
    s.add_argument(
        "--load-clients",
        type=_positive_int,
        default=8,
        metavar="N",
        help="concurrent clients recording (each its own farmer and lots) for recorded, anchored, rss (8)",
    )
    s.add_argument(
        "--record-duration",
        type=_positive_float,
        default=20.0,
        metavar="S",
        help="seconds per recorded run (20)",
    )
    s.add_argument(
        "--duration", type=_positive_float, default=60.0, metavar="S", help="the anchored window (60)"
    )
    s.add_argument(
        "--baseline-duration",
        type=_positive_float,
        default=20.0,
        metavar="S",
        help="the anchored window of the TRACE_BATCH_MAX=1 baseline (20)",
    )
    s.add_argument(
        "--block-time",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="Anvil's block time for anchored and rss: confirmations need blocks to come (1)",
    )
    s.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        metavar="URL",
        help="PostgreSQL for the recorded figures; the bench works in a new schema and drops it",
    )
    s.add_argument(
        "--rss-events",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="events loaded for rss (1000000)",
    )
    s.add_argument(
        "--rss-farmers",
        type=_positive_int,
        default=64,
        metavar="N",
        help="for rss, farmers each client records for in turn (64: about 280 lots each at a million events)",
    )
    s.add_argument(
        "--rss-sample-every",
        type=_positive_int,
        default=100_000,
        metavar="N",
        help="sample serve's and worker's memory every N events recorded (100000)",
    )
    s.add_argument(
        "--lineages",
        type=_positive_list,
        default=[10, 100, 1000],
        help="lineage lengths (events) for the scaling figures",
    )
    s.add_argument("--clients", type=int, default=32, help="concurrent clients for the web figures")
    s.add_argument("--requests", type=int, default=20, help="requests per client for the web figures")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser(
        "risk-bench",
        help="measure the origin-risk detector on a seeded synthetic season with injected fraud",
        description="Generate a seeded synthetic season (farmers in four districts, rice and watermelon over "
        "two crop years, honest yields with bad weather and data-entry noise) with injected cases of every "
        "risk signal, run the detector, and print recall per case type, the false-positive rate on honest "
        "lots and the time taken. Needs no database or chain; exit 0 even when the goals are missed.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--seed", type=int, default=101, help="the season's seed (default 101)")
    s.add_argument("--farmers", type=_farmer_count, default=200, help="farmers in the season (default 200)")
    s.set_defaults(func=cmd_risk_bench)

    s = sub.add_parser(
        "soak",
        help="load test: concurrent clients recording, viewing pages and verifying; then nothing may be lost",
        description="Start Anvil, `trace serve` and `trace worker` on a fresh database (loopback only), run "
        "--clients clients for --seconds mixing recording (single and batches, with Idempotency-Key), "
        "provenance pages, importer verifies and exports, wait for every event to be anchored, and check "
        "every acknowledged event is stored and anchored exactly once and reconcile is clean. Exit 1 on any "
        "error or loss.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--clients", type=_positive_int, default=50, metavar="N", help="concurrent clients (50)")
    s.add_argument("--seconds", type=_positive_float, default=60.0, metavar="S", help="seconds of load (60)")
    s.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite", help="(sqlite)")
    s.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        metavar="URL",
        help="PostgreSQL for --database postgresql; the soak works in a new schema and drops it",
    )
    s.add_argument(
        "--drain",
        type=_positive_float,
        default=180.0,
        metavar="S",
        help="at most this long for the worker to anchor everything after the load (180)",
    )
    s.set_defaults(func=cmd_soak)
    return p


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    args = build_parser().parse_args(argv)
    rt = Runtime(settings or get_settings())
    daemon = args.command in ("serve", "worker")
    # Secrets masked in either format; JSON lines (TRACE_LOG_FORMAT) for the long-running processes.
    level = logging.INFO if args.verbose or daemon else logging.WARNING
    configure_logging(level, rt.settings.log_format if daemon else "text")
    try:
        return int(args.func(rt, args))
    except TraceabilityError as exc:
        name = getattr(args, "command_name", None) or args.command
        print(f"trace {name}: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        rt.close()


if __name__ == "__main__":
    sys.exit(main())
