"""Issue 10: every role × every route, allowed or refused exactly as DESIGN.md's security rules say.

One ledger on a real Anvil: two authorities (อปท.) A and B, a farmer and an officer of each, a revoked officer
of A (signed in before the revocation), an importer API key and a revoked one, and A's lots from planting to
packing (``factories.seed_farmer_lots``) plus B's own lot. Every route of the app, read from ``app.routes``,
must have a row in ``MATRIX`` (a new route without one fails ``test_every_route_is_in_the_matrix``); each row
says, per role, what the request answers:

* a status code: 2xx/3xx allowed; 401 no or invalid credentials; 403 a valid principal without the right;
  404 where the design hides existence;
* ``FARMER_LOGIN`` / ``OFFICER_LOGIN``: a page's refusal, a 303 to the farmer's / officer's sign-in page.

Each request carries the role's credentials: ``Authorization: Bearer`` (the API's token, the importer's key)
and, for farmers and officers, the ``trace_session`` cookie (the pages' session, signed in with the same
services) with the CSRF token of that session on every posted form, so a refusal is never for want of a CSRF
token. Writes use real bodies: a farmer posting an event for their own plot and the farmer of the other อปท.
posting the same one; an officer certifying a lot of their own อปท. and the other officer the same lot; an
officer enrolling a plot for a farmer of A. A refused write must store nothing (events, chain operations,
farmers and plots are counted around every refused cell of a writing route). Run on SQLite and PostgreSQL.

"Operator" is the person with shell access: over HTTP they hold no credential, so their column is what a
client with none gets; the operations endpoints (/healthz, /readyz, /metrics) are public (DESIGN.md names no
credential for them; /metrics exposes counts and gauges of the ledger, never a lot, party or secret).
"""

from __future__ import annotations

import html
import io
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from factories import (
    FARMER_1,
    ID_BASE,
    OFFICER_PASSPHRASE,
    authority_admin,
    common,
    days_ago,
    lq,
    seed_farmer_lots,
    seed_parties,
)
from traceability.config import Settings
from traceability.domain.events import Packing
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.apikeys import create_api_key, revoke_api_key
from traceability.services.auth import sign_in_farmer, sign_in_officer
from traceability.services.events import record_event
from traceability.services.evidence import store_evidence
from traceability.services.parties import (
    enrol_officer,
    revoke_officer,
    unlock_officer_key,
)
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, session_csrf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from officer_fixtures import OTHER_LOT, seed_other_authority  # noqa: E402

ROLES = (
    "anonymous",
    "farmer",  # F-0001 of authority A, owner of PLOT-T-01 and LOT
    "farmer_other",  # F-0901 of authority B
    "officer",  # officer of A
    "officer_other",  # officer of B
    "officer_revoked",  # officer of A, signed in, then revoked
    "importer",  # an active API key
    "importer_revoked",  # a revoked API key
    "operator",  # shell access: no HTTP credential
)
LOT = "T-VEG-0001"  # F-0001's lot, of authority A (planting, harvest, grading, packing; anchored in part)
FARMER_2 = {"phone": "0822222222", "pin": "5678"}  # F-0002 of A: signs in on the public sign-in routes
PASSWORD = "officer-password"
FARMER_LOGIN = "farmer_login"
OFFICER_LOGIN = "officer_login"
LOGIN_CSRF = "matrix-login-csrf-value-0123456789abcdefghij"
GTIN = "08850001000019"
GTIN_LOT = "T-VEG-0001G"  # 10 kg of T-VEG-0001B packed under a GTIN: the Digital Link resolves it
SESSION_ROLES = ("farmer", "farmer_other", "officer", "officer_other", "officer_revoked")

Expect = int | str


@dataclass
class World:
    client: TestClient
    runtime: Runtime
    tokens: dict[str, str | None]  # per role: the bearer token or key, and the session cookie
    photo: str


# --- the expectations ---------------------------------------------------------------------------------------


def every(outcome: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, outcome)


def importer_only() -> dict[str, Expect]:
    """The importer API: the key reads; a missing, unknown or revoked key is 401; a farmer's or officer's
    valid sign-in token is 403 (someone, not an importer); a revoked officer's token is no one's (401)."""
    return {
        **every(401),
        "farmer": 403,
        "farmer_other": 403,
        "officer": 403,
        "officer_other": 403,
        "importer": 200,
    }


def signed_in_api(ok: int) -> dict[str, Expect]:
    """A farmer's or officer's bearer token; importers' keys are not sign-in tokens."""
    return {**every(401), "farmer": ok, "farmer_other": ok, "officer": ok, "officer_other": ok}


def farmer_pages(ok: Expect, other: Expect) -> dict[str, Expect]:
    """The farmer's pages: anyone without a farmer's session is sent to the farmer's sign-in page."""
    return {**every(FARMER_LOGIN), "farmer": ok, "farmer_other": other}


def officer_pages(ok: Expect, other: Expect) -> dict[str, Expect]:
    return {**every(OFFICER_LOGIN), "officer": ok, "officer_other": other}


# --- request bodies -----------------------------------------------------------------------------------------

Build = Callable[[World, str], dict[str, Any]]


def nothing(world: World, role: str) -> dict[str, Any]:
    return {}


def csrf_of(world: World, role: str) -> str:
    """The CSRF token of the role's web session's forms (importers have no web session)."""
    token = world.tokens[role]
    return session_csrf(token) if token and role in SESSION_ROLES else "no-session"


def planting_json(plot: str = "PLOT-T-01") -> dict[str, Any]:
    """A planting of a new lot on F-0001's plot (authority A), without ``actor``."""
    return {
        "kind": "planting",
        "event_id": str(uuid.uuid4()),
        "event_time": days_ago(5).isoformat(),
        "place": {"id": plot},
        "lot_code": f"M-{uuid.uuid4().hex[:8].upper()}",
        "plot_id": plot,
        "crop": "organic-veg",
        "area_rai": "1",
    }


def event_body(world: World, role: str) -> dict[str, Any]:
    return {"json": planting_json()}


def batch_body(world: World, role: str) -> dict[str, Any]:
    return {"json": {"events": [planting_json()]}}


def token_body(world: World, role: str) -> dict[str, Any]:
    return {"json": FARMER_2}


def farmer_login_body(world: World, role: str) -> dict[str, Any]:
    return {"data": {**FARMER_2, "csrf": LOGIN_CSRF, "lang": "th"}, "login_csrf": True}


def officer_login_body(world: World, role: str) -> dict[str, Any]:
    creds = {"username": "officer-matrix-b", "password": PASSWORD}
    return {"data": {**creds, "csrf": LOGIN_CSRF, "lang": "th"}, "login_csrf": True}


def logout_body(world: World, role: str) -> dict[str, Any]:
    return {"data": {"csrf": csrf_of(world, role), "lang": "th"}}


def cert_params() -> dict[str, str]:
    return {"standard": "Organic Thailand", "scope": "แปลง PLOT-T-01", "note": "ตรวจแล้ว"}


def _signed_request(world: World, officer_role: str, lot: str) -> dict[str, Any]:
    """The officer's typed data for ``lot`` from the API, signed with their key (as a wallet would)."""
    headers = {"Authorization": f"Bearer {world.tokens[officer_role]}"}
    r = world.client.get(f"/api/v1/lots/{lot}/certification-request", params=cert_params(), headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    username = "officer-matrix-a" if officer_role == "officer" else "officer-matrix-b"
    with transaction(world.runtime.sessions) as s:
        row = s.scalars(select(models.Officer).where(models.Officer.username == username)).one()
        key = unlock_officer_key(row, OFFICER_PASSPHRASE)
    signature = (
        "0x" + bytes(key.sign_message(encode_typed_data(full_message=body["typed_data"])).signature).hex()
    )
    return {
        "certificate": body["certificate"],
        "message": body["typed_data"]["message"],
        "signature": signature,
    }


def certification_body(world: World, role: str) -> dict[str, Any]:
    """Officer A: their own signed request for LOT. Officer B: their own signed request for their own lot,
    posted against A's LOT. Anyone else: officer A's signed request (refused before it is relayed)."""
    if role == "officer_other":
        return {"json": _signed_request(world, "officer_other", OTHER_LOT)}
    return {"json": _signed_request(world, "officer", LOT)}


def certify_form(world: World, role: str) -> dict[str, Any]:
    return {
        "data": {
            "csrf": csrf_of(world, role),
            "lang": "th",
            "token": str(uuid.uuid4()),
            "standard": "Organic Thailand",
            "scope": "ผักคะน้า แปลง PLOT-T-01",
            "valid_until": (date.today() + timedelta(days=200)).isoformat(),
            "note": "ตรวจแปลงแล้ว",
            "passphrase": OFFICER_PASSPHRASE,
        }
    }


def revoke_form(world: World, role: str) -> dict[str, Any]:
    with transaction(world.runtime.sessions) as s:
        cert_id = s.scalars(
            select(models.CertificationRecord.id).where(models.CertificationRecord.lot_code == LOT)
        ).first()
    assert cert_id is not None, "the matrix certifies LOT before it revokes"
    return {
        "data": {
            "csrf": csrf_of(world, role),
            "lang": "th",
            "cert_id": cert_id,
            "reason": "พบการใช้ปุ๋ยเคมีในแปลง",
            "passphrase": OFFICER_PASSPHRASE,
        }
    }


def form_values(page: str) -> dict[str, str]:
    """What a browser sends for a rendered form untouched: its inputs' values and the selected options."""
    values = {
        m.group(1): html.unescape(m.group(2))
        for m in re.finditer(r'<input[^>]*? name="([^"]+)"[^>]*? value="([^"]*)"', page)
    }
    for found in re.finditer(r'<select[^>]*? name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        option = re.search(r'<option value="([^"]*)" selected', found.group(2)) or re.search(
            r'<option value="([^"]*)"', found.group(2)
        )
        if option is not None:
            values[found.group(1)] = html.unescape(option.group(1))
    checked = re.search(r'name="disposition" value="([^"]+)" required checked', page)
    if checked:
        values["disposition"] = checked.group(1)
    return values


FARMER_FILLS: dict[str, dict[str, str]] = {
    "planting": {},
    "harvest": {"quantity": "120"},
    "cooling": {"quantity": "40"},
    "grading": {"quantity": "40"},
    "packing": {"in1_lot": "T-VEG-0001B", "in1_qty": "5", "out1_qty": "5"},
    "ship": {"item1_lot": "T-VEG-0001B", "item1_qty": "10", "destination": "PH-NSN"},
    "receive": {"item1_lot": "T-VEG-0001A"},
}


def farmer_form(kind: str) -> Build:
    """F-0001's own form as their page renders it (their plot and lots), filled in, with the CSRF token of
    the session of the role that posts it: F-0901 posting it is posting for another authority's plot/lot."""

    def build(world: World, role: str) -> dict[str, Any]:
        page = world.client.get(
            f"/farmer/record/{kind}",
            headers={"Cookie": f"{SESSION_COOKIE}={world.tokens['farmer']}"},
        )
        assert page.status_code == 200, page.text
        values = {**form_values(page.text), **FARMER_FILLS[kind]}
        return {"data": {**values, "csrf": csrf_of(world, role), "lang": "th"}}

    return build


def enrol_farmer_form(world: World, role: str) -> dict[str, Any]:
    phone = f"08{uuid.uuid4().int % 10**8:08d}"
    return {
        "data": {
            "csrf": csrf_of(world, role),
            "lang": "th",
            "display_name": "นางสาวมาลี ศรีสวัสดิ์",
            "phone": phone,
            "pin": "2468",
            "pin_again": "2468",
            "group_th": "วิสาหกิจชุมชนผักอินทรีย์บ้านหนองสนิท",
        }
    }


def enrol_plot_form(world: World, role: str) -> dict[str, Any]:
    """A plot for F-0001 (authority A)."""
    page = world.client.get(
        "/officer/plots/new", headers={"Cookie": f"{SESSION_COOKIE}={world.tokens['officer']}"}
    )
    assert page.status_code == 200, page.text
    key = re.search(r'name="key" value="([^"]+)"', page.text)
    assert key is not None
    return {
        "data": {
            "csrf": csrf_of(world, role),
            "lang": "th",
            "key": key.group(1),
            "farmer": "F-0001",
            "name": "แปลงริมหนองน้ำ",
            "village_th": "บ้านหนองสนิท หมู่ 1",
            "village_en": "Ban Nong Sanit, Moo 1",
            "area_rai": "2",
            "area_ngan": "2",
            "crop": "organic-veg",
            "standard": "pgs",
            "lat": "15.1108",
            "lon": "103.6163",
        }
    }


def proof_of_lot(world: World, role: str) -> dict[str, Any]:
    r = world.client.get(f"/p/{LOT}/proof.json")
    assert r.status_code == 200, r.text
    return {"content": r.content, "headers": {"Content-Type": "application/json"}}


def fsma_range(world: World, role: str) -> dict[str, Any]:
    today = date.today()
    return {
        "params": {
            "product": "organic-veg",
            "from": (today - timedelta(days=90)).isoformat(),
            "to": str(today),
        }
    }


def with_params(**params: str) -> Build:
    def build(world: World, role: str) -> dict[str, Any]:
        return {"params": params}

    return build


def evidence_path(world: World) -> str:
    return f"/evidence/{world.photo}"


# --- the matrix ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    expect: dict[str, Expect]
    build: Build = nothing
    path: str | Callable[[World], str] | None = None  # the concrete URL (default: the route's own path)
    writes: bool = False  # a refused cell must store nothing, an allowed one something


MATRIX: dict[tuple[str, str], Row] = {
    # FastAPI's own: the OpenAPI document and its viewers are public.
    ("GET", "/openapi.json"): Row(every(200)),
    ("GET", "/docs"): Row(every(200)),
    ("GET", "/docs/oauth2-redirect"): Row(every(200)),
    ("GET", "/redoc"): Row(every(200)),
    # Public pages (buyers scanning a QR code): no sign-in.
    ("GET", "/"): Row(every(200)),
    ("GET", "/p/{lot_code}"): Row(every(200), path=f"/p/{LOT}"),
    ("GET", "/p/{lot_code}/proof.json"): Row(every(200), path=f"/p/{LOT}/proof.json"),
    ("GET", "/01/{gtin}/10/{lot}"): Row(every(200), path=f"/01/{GTIN}/10/{GTIN_LOT}"),
    ("GET", "/lot/{lot_code}"): Row(every(200), path=f"/lot/{LOT}"),
    ("GET", "/qr/{lot_code}.svg"): Row(every(200), path=f"/qr/{LOT}.svg"),
    ("GET", "/qr/{lot_code}.png"): Row(every(200), path=f"/qr/{LOT}.png"),
    ("GET", "/place/{code}"): Row(every(200), path="/place/PLOT-T-01"),
    ("GET", "/party/{code}"): Row(every(200), path="/party/F-0001"),
    ("GET", "/labels/{lot_code}"): Row(every(200), path=f"/labels/{LOT}"),
    ("GET", "/labels"): Row(every(200), with_params(lot=LOT)),
    ("GET", "/static/{name}"): Row(every(200), path="/static/queue.js"),
    ("GET", "/evidence/{sha256}"): Row(every(200), path=evidence_path),
    ("GET", "/api/v1/registry"): Row(every(200)),
    # Operations.
    ("GET", "/healthz"): Row(every(200)),
    ("GET", "/readyz"): Row(every(200)),
    ("GET", "/metrics"): Row(every(200)),
    # The importer API: read-only, with a key.
    ("GET", "/api/v1/lots/{lot_code}/verify"): Row(importer_only(), path=f"/api/v1/lots/{LOT}/verify"),
    ("GET", "/api/v1/lots/{lot_code}/proof"): Row(importer_only(), path=f"/api/v1/lots/{LOT}/proof"),
    ("POST", "/api/v1/verify"): Row(importer_only(), proof_of_lot),
    ("GET", "/api/v1/lots/{lot_code}/epcis"): Row(importer_only(), path=f"/api/v1/lots/{LOT}/epcis"),
    ("GET", "/api/v1/lots/{lot_code}/fsma204.csv"): Row(
        importer_only(), path=f"/api/v1/lots/{LOT}/fsma204.csv"
    ),
    ("GET", "/api/v1/fsma204.csv"): Row(importer_only(), fsma_range),
    # Sign-in: public (the credentials posted are F-0002's / officer B's, whoever posts them).
    ("POST", "/api/v1/auth/token"): Row(every(200), token_body),
    ("GET", "/farmer/login"): Row(every(200)),
    ("POST", "/farmer/login"): Row(every(303), farmer_login_body),
    ("GET", "/officer/login"): Row(every(200)),
    ("POST", "/officer/login"): Row(every(303), officer_login_body),
    # Farmers' and officers' API.
    ("GET", "/api/v1/lots/{lot_code}"): Row(signed_in_api(200), path=f"/api/v1/lots/{LOT}"),
    ("POST", "/api/v1/events"): Row(
        {**signed_in_api(201), "farmer_other": 403, "officer_other": 403}, event_body, writes=True
    ),
    ("POST", "/api/v1/events/batch"): Row(
        {**signed_in_api(201), "farmer_other": 403, "officer_other": 403}, batch_body, writes=True
    ),
    ("GET", "/api/v1/lots/{lot_code}/certification-request"): Row(
        {**signed_in_api(403), "officer": 200},
        with_params(**cert_params()),
        path=f"/api/v1/lots/{LOT}/certification-request",
    ),
    ("POST", "/api/v1/lots/{lot_code}/certifications"): Row(
        {**signed_in_api(403), "officer": 201},
        certification_body,
        path=f"/api/v1/lots/{LOT}/certifications",
        writes=True,
    ),
    # The farmer's pages: their own session; a form names F-0001's plot or lot.
    ("GET", "/farmer/lots"): Row(farmer_pages(200, 200)),
    ("GET", "/farmer/record"): Row(farmer_pages(200, 200)),
    **{
        ("GET", f"/farmer/record/{kind}"): Row(farmer_pages(200, 200))
        for kind in ("planting", "harvest", "cooling", "grading", "packing", "ship", "receive")
    },
    **{
        ("POST", f"/farmer/record/{kind}"): Row(farmer_pages(303, 403), farmer_form(kind), writes=True)
        for kind in ("planting", "harvest", "cooling", "grading", "packing", "ship", "receive")
    },
    # The officer's pages: their own session; A's lot is not officer B's.
    ("GET", "/officer"): Row(officer_pages(200, 200)),
    ("GET", "/officer/risk"): Row(officer_pages(200, 200)),
    ("GET", "/officer/lots/{lot_code}"): Row(officer_pages(200, 403), path=f"/officer/lots/{LOT}"),
    ("POST", "/officer/lots/{lot_code}/certify"): Row(
        officer_pages(303, 403), certify_form, path=f"/officer/lots/{LOT}/certify", writes=True
    ),
    ("POST", "/officer/lots/{lot_code}/revoke"): Row(
        officer_pages(303, 403), revoke_form, path=f"/officer/lots/{LOT}/revoke", writes=True
    ),
    ("GET", "/officer/farmers"): Row(officer_pages(200, 200)),
    ("GET", "/officer/farmers/new"): Row(officer_pages(200, 200)),
    # Each officer enrols a farmer into their own authority.
    ("POST", "/officer/farmers/new"): Row(officer_pages(303, 303), enrol_farmer_form, writes=True),
    ("GET", "/officer/plots/new"): Row(officer_pages(200, 200)),
    ("POST", "/officer/plots/new"): Row(officer_pages(303, 403), enrol_plot_form, writes=True),
    # Signing out (a 303 to the sign-in page, the token forgotten) needs a session cookie and its CSRF token;
    # without a session it is the CSRF refusal (403). Either sign-out forgets whichever session it is given.
    ("POST", "/farmer/logout"): Row(
        {**every(403), **dict.fromkeys(SESSION_ROLES, FARMER_LOGIN)},
        logout_body,
    ),
    ("POST", "/officer/logout"): Row(
        {**every(403), **dict.fromkeys(SESSION_ROLES, OFFICER_LOGIN)},
        logout_body,
    ),
}

# Cells run row by row in this order: a certification before its revocation, signing out last.
_LAST = [("POST", "/officer/lots/{lot_code}/revoke"), ("POST", "/farmer/logout"), ("POST", "/officer/logout")]
ORDER = [key for key in MATRIX if key not in _LAST] + _LAST
CELLS = len(MATRIX) * len(ROLES)
"""How many (route, method, role) cells the matrix checks."""


def app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, included routers flattened; HEAD rides along with GET."""
    found: set[tuple[str, str]] = set()
    # FastAPI keeps an included router as one entry of ``app.routes``: iter_route_contexts flattens them.
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, str(route.path)))
    return found


# --- the world ----------------------------------------------------------------------------------------------


def seed_world(sessions: Any, registry: Any) -> None:
    # Codes of their own (random): the session's one registry already holds other tests' authorities.
    authority_a = seed_parties(sessions, registry)["authority"]
    seed_farmer_lots(sessions, registry)
    other = seed_other_authority(sessions, registry)
    with transaction(sessions) as s:
        packing = Packing(
            kind="packing",
            inputs=(lq("T-VEG-0001B", "10"),),
            outputs=(lq(GTIN_LOT, "10"),),
            gtin=GTIN,
            **common(place="PH-T", when=days_ago(15)),
        )
        record_event(s, packing, id_base=ID_BASE)
    admin = authority_admin(registry)
    for username, authority in (
        ("officer-matrix-a", authority_a),
        ("officer-matrix-b", other),
        ("officer-matrix-revoked", authority_a),
    ):
        enrol_officer(
            sessions,
            username=username,
            display_name="นายสมชาย ประจำตำบล",
            authority=authority,
            password=PASSWORD,
            passphrase=OFFICER_PASSPHRASE,
            authority_admin=admin,
        )


def sign_in_all(sessions: Any, registry: Any) -> dict[str, str | None]:
    tokens: dict[str, str | None] = {"anonymous": None, "operator": None}
    with transaction(sessions) as s:
        for role, creds in (("farmer", FARMER_1), ("farmer_other", {"phone": "0899999999", "pin": "9999"})):
            outcome = sign_in_farmer(s, phone=creds["phone"], pin=creds["pin"], client="matrix")
            assert outcome.token is not None
            tokens[role] = outcome.token.access_token
        for role, username in (
            ("officer", "officer-matrix-a"),
            ("officer_other", "officer-matrix-b"),
            ("officer_revoked", "officer-matrix-revoked"),
        ):
            officer = sign_in_officer(s, username=username, password=PASSWORD, client="matrix")
            assert officer.token is not None
            tokens[role] = officer.token.access_token
        tokens["importer"] = create_api_key(s, "matrix-importer").key
        tokens["importer_revoked"] = create_api_key(s, "matrix-revoked").key
    with transaction(sessions) as s:
        revoke_api_key(s, "matrix-revoked")
    revoke_officer(sessions, username="officer-matrix-revoked", authority_admin=authority_admin(registry))
    return tokens


@pytest.fixture
def world(db, anvil, registry, tmp_path) -> Iterator[World]:
    settings = Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
        public_rate_per_min=1_000_000,
        importer_rate_per_min=1_000_000,
    )
    runtime = Runtime(settings, _engine=db.engine)
    seed_world(db.sessions, registry)
    tokens = sign_in_all(db.sessions, registry)
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 140, 60)).save(jpeg, "JPEG")
    photo = store_evidence(jpeg.getvalue(), evidence_dir=settings.evidence_dir).sha256
    app = create_app(runtime=runtime)
    with TestClient(app, client=("10.0.0.10", 40000), follow_redirects=False) as client:
        yield World(client, runtime, tokens, photo)


def count_writes(world: World) -> tuple[int, int, int, int]:
    with transaction(world.runtime.sessions) as s:
        return (
            int(s.scalar(select(func.count()).select_from(models.Event)) or 0),
            int(s.scalar(select(func.count()).select_from(models.ChainOp)) or 0),
            int(s.scalar(select(func.count()).select_from(models.Farmer)) or 0),
            int(s.scalar(select(func.count()).select_from(models.Plot)) or 0),
        )


def outcome_of(status: int, location: str) -> Expect:
    if status == 303 and location.startswith("/farmer/login"):
        return FARMER_LOGIN
    if status == 303 and location.startswith("/officer/login"):
        return OFFICER_LOGIN
    return status


def why(response: Any) -> str:
    """The error a response gives: the JSON error, or a page's alert and field messages."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.text[:200]
    found = re.findall(r'(?:role="alert"|id="[a-z0-9_]+-error")[^>]*>([^<]{1,160})', response.text)
    return "; ".join(found)[:300] or response.text[:120]


def refused(outcome: Expect) -> bool:
    return outcome in (FARMER_LOGIN, OFFICER_LOGIN) or (isinstance(outcome, int) and outcome >= 400)


def call(world: World, method: str, path: str, role: str, build: Build) -> Any:
    spec = build(world, role)
    token = world.tokens[role]
    headers = dict(spec.pop("headers", {}))
    cookies: list[str] = []
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if token and role in SESSION_ROLES:
        cookies.append(f"{SESSION_COOKIE}={token}")
    if spec.pop("login_csrf", False):
        cookies.append(f"{LOGIN_CSRF_COOKIE}={LOGIN_CSRF}")
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    world.client.cookies.clear()
    return world.client.request(method, path, headers=headers, **spec)


# --- the tests ----------------------------------------------------------------------------------------------


def test_every_route_is_in_the_matrix() -> None:
    routes = app_routes(create_app())
    assert routes - set(MATRIX) == set(), "routes without a row in the role matrix"
    assert set(MATRIX) - routes == set(), "rows of the role matrix for routes the app no longer has"
    assert all(set(row.expect) == set(ROLES) for row in MATRIX.values())


def test_every_role_on_every_route_is_allowed_or_refused_as_the_design_says(world: World) -> None:
    wrong: list[str] = []
    for method, route in ORDER:
        row = MATRIX[(method, route)]
        path = row.path(world) if callable(row.path) else (row.path or route)
        for role in ROLES:
            before = count_writes(world) if row.writes else None
            r = call(world, method, path, role, row.build)
            got = outcome_of(r.status_code, r.headers.get("location", ""))
            want = row.expect[role]
            if got != want:
                wrong.append(f"{method} {path} as {role}: {got}, expected {want}: {why(r)}")
            elif before is not None and refused(want) and count_writes(world) != before:
                wrong.append(f"{method} {path} as {role}: refused with {want} but something was stored")
            elif before is not None and not refused(want) and count_writes(world) == before:
                wrong.append(f"{method} {path} as {role}: allowed with {want} but nothing was stored")
    for role in SESSION_ROLES:  # signed out by the last rows: no session of theirs works any more
        assert call(world, "GET", "/farmer/lots", role, nothing).headers.get("location") == "/farmer/login"
        assert call(world, "GET", "/api/v1/lots/" + LOT, role, nothing).status_code == 401
    print(f"role matrix: {CELLS} cells ({len(MATRIX)} routes × {len(ROLES)} roles)")
    assert not wrong, f"{len(wrong)} of {CELLS} cells disagree:\n" + "\n".join(wrong)
