"""Issue 10: schemathesis against ``/openapi.json``, every operation, once per role's credentials and none.

The app is the role matrix's (``test_role_matrix.seed_world`` and ``sign_in_all``: two authorities, their
farmers and officers, a revoked officer, an importer key and a revoked one, A's lots from planting to packing
anchored on the session's real Anvil), on SQLite and on PostgreSQL, with the public and importer rate limits
raised so that a 429 does not hide what is behind it. Schemathesis reads the app's own OpenAPI document and
calls the app in-process (ASGI). For every operation and every role it sends hypothesis-generated requests:
valid by the schema (positive) and invalid (negative), and, where an operation names a lot, a place, a party
or a product, valid ones naming one the ledger has (seeded), so that fuzzing also gets past the 404 of a lot
that does not exist. Each role's requests carry its credential as the role matrix's do: ``Authorization:
Bearer`` (sign-in token or importer key) and, for farmers and officers, the ``trace_session`` cookie.
"Operator" holds no HTTP credential: their requests are the anonymous ones.

Every response must pass schemathesis' checks: not a server error (no 5xx), a status code the operation
documents, the content type documented for that status, and a body valid against its schema. Failures are
collected rather than shrunk (a derandomised run sends the same requests every time, so it reproduces as it
is) and reported together. The requests and their outcomes by status class are printed (``pytest -s``) and
kept in ``docs/reliability.md``.

Bounded: ``EXAMPLES`` positive and negative and ``SEEDED_EXAMPLES`` seeded requests per operation and role;
hypothesis is derandomised (the same requests on every run), has no deadline and writes no example database.
Sign-in attempts are forgotten between roles: all requests come from one client address, whose sign-in
throttle would otherwise answer every later role's sign-in with 429.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import delete
from test_role_matrix import GTIN, GTIN_LOT, LOT, SESSION_ROLES, seed_world, sign_in_all

from factories import ID_BASE
from traceability.api.schemas import CheckRead
from traceability.config import Settings
from traceability.domain.findings import Check
from traceability.main import create_app
from traceability.services.anchoring import Anchorer
from traceability.services.runtime import Runtime
from traceability.store import models
from traceability.store.database import transaction
from traceability.web.session import SESSION_COOKIE

EXAMPLES = 10
"""Requests per operation, role and generation mode (valid by the schema, invalid)."""
SEEDED_EXAMPLES = 3
"""Valid requests per operation and role that name a lot, place, party or product the ledger has."""
ROLES = (
    "anonymous",  # and the operator: no HTTP credential
    "farmer",
    "farmer_other",
    "officer",
    "officer_other",
    "officer_revoked",
    "importer",
    "importer_revoked",
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
POSITIVE = schemathesis.GenerationMode.POSITIVE
NEGATIVE = schemathesis.GenerationMode.NEGATIVE
SEEDED: dict[str, dict[str, dict[str, str]]] = {
    # Things the ledger has, per operation (and the lot for every operation on a lot), for seeded requests.
    "GET /01/{gtin}/10/{lot}": {"path_parameters": {"gtin": GTIN, "lot": GTIN_LOT}},
    "GET /place/{code}": {"path_parameters": {"code": "PLOT-T-01"}},
    "GET /party/{code}": {"path_parameters": {"code": "F-0001"}},
    "GET /api/v1/fsma204.csv": {
        "query": {
            "product": "organic-veg",
            "from": str(date.today() - timedelta(days=90)),
            "to": str(date.today()),
        }
    },
}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Tally:
    """What the fuzzing sent and got back: one count per (role, operation, status code)."""

    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    no_negative: set[str] = field(default_factory=set)

    def count(self, role: str, label: str, status: int) -> None:
        self.statuses[(role, label, status)] += 1

    def by_class(self, role: str | None = None) -> dict[str, int]:
        classes: Counter[str] = Counter()
        for (r, _, status), n in self.statuses.items():
            if role is None or r == role:
                classes[f"{status // 100}xx"] += n
        return dict(sorted(classes.items()))

    def by_status(self) -> dict[int, int]:
        codes: Counter[int] = Counter()
        for (_, _, status), n in self.statuses.items():
            codes[status] += n
        return dict(sorted(codes.items()))


@dataclass
class Fuzzed:
    app: Any
    tokens: dict[str, str | None]
    sessions: Any


def app_settings(db: Any, anvil: Any, registry: Any, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path,
        rpc_url=anvil.rpc_url,
        database_url=db.url,
        id_base=ID_BASE,
        contract_address=registry.address,
        confirmations=0,
        public_rate_per_min=1_000_000,
        importer_rate_per_min=1_000_000,
    )


@pytest.fixture
def fuzzed(db, anvil, registry, tmp_path) -> Iterator[Fuzzed]:
    settings_ = app_settings(db, anvil, registry, tmp_path)
    seed_world(db.sessions, registry)
    tokens = sign_in_all(db.sessions, registry)
    Anchorer(db.sessions, registry, batch_max=256, confirmations=0).run_once(poll_s=0.05)
    application = create_app(runtime=Runtime(settings_, _engine=db.engine))
    try:
        yield Fuzzed(application, tokens, db.sessions)
    finally:
        # schemathesis started the app's lifespan on its own event-loop thread: end it with the test.
        asgi.shutdown_lifespans()


def credentials(role: str, tokens: dict[str, str | None]) -> dict[str, str]:
    token = tokens.get(role)
    headers: dict[str, str] = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if token and role in SESSION_ROLES:
        headers["Cookie"] = f"{SESSION_COOKIE}={token}"
    return headers


def seeded(operation: Any) -> dict[str, dict[str, str]] | None:
    """What of the ledger a request to ``operation`` can name, if anything."""
    known = SEEDED.get(operation.label)
    if known is None and "lot_code" in {p.name for p in operation.path_parameters}:
        known = {"path_parameters": {"lot_code": LOT}}
    return known


def generate(operation: Any, tally: Tally) -> list[Any]:
    """The requests for ``operation``: valid ones, invalid ones, and valid ones naming what the ledger has.
    Generated once and sent as every role, so each role's requests differ only in who is asking."""
    runs: list[tuple[str, st.SearchStrategy[Any], int]] = [
        ("positive", operation.as_strategy(generation_mode=POSITIVE), EXAMPLES),
        ("negative", operation.as_strategy(generation_mode=NEGATIVE), EXAMPLES),
    ]
    known = seeded(operation)
    if known is not None:
        runs.append(("seeded", operation.as_strategy(generation_mode=POSITIVE, **known), SEEDED_EXAMPLES))
    cases: list[Any] = []
    for mode, strategy, examples in runs:

        @settings(FUZZ_SETTINGS, max_examples=examples)
        @given(case=strategy)
        def collect(case: Any) -> None:
            cases.append(case)

        try:
            collect()
        except Unsatisfiable:
            # Nothing about the operation can be made invalid (no parameters, or free text only).
            if mode != "negative":
                raise
            tally.no_negative.add(operation.label)
    return cases


def send(case: Any, role: str, headers: dict[str, str], tally: Tally) -> None:
    """Send one request as ``role`` and check its response against the schema."""
    for name in list(case.headers or {}):
        if name.lower() in ("authorization", "cookie"):
            del case.headers[name]  # the role's credentials, and nothing else, say who is asking
    response = case.call(headers=headers)
    label = case.operation.label
    tally.count(role, label, response.status_code)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            message = " ".join(str(failure.message).split())[:200]
            tally.failures[f"{label} [{response.status_code}] {failure.title}: {message}"] += 1


def report(tally: Tally, operations: list[str]) -> None:
    print(
        f"\nschemathesis: {len(operations)} operations × {len(ROLES)} roles, "
        f"{sum(tally.statuses.values())} requests: {tally.by_class()}"
    )
    print(f"  by status: {tally.by_status()}")
    for role in ROLES:
        print(f"  {role}: {tally.by_class(role)}")
    for label in operations:
        codes: Counter[int] = Counter()
        for (_, op, status), n in tally.statuses.items():
            if op == label:
                codes[status] += n
        print(f"  {label}: {dict(sorted(codes.items()))}")
    print(f"  no invalid request possible: {sorted(tally.no_negative)}")


def test_every_check_of_a_verdict_is_in_its_schema() -> None:
    """The verdict's ``checks[].code`` is a closed list in the OpenAPI document: it must name every check."""
    assert set(get_args(CheckRead.model_fields["code"].annotation)) == {c.value for c in Check}


def forget_sign_in_attempts(sessions: Any) -> None:
    """All requests come from one test client: without this, sign-in's throttle (20 failures per client
    address) would answer 429 to every role after the first, hiding what the sign-in route does."""
    with transaction(sessions) as s:
        s.execute(delete(models.LoginAttempt))


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_a_lot_code_outside_latin_1_is_a_404_with_its_link_header_percent_encoded(
    db, anvil, registry, tmp_path, accept
) -> None:
    """Found by this fuzzing: the resolvers put the request's path into their ``Link`` header, and a header is
    Latin-1, so a lot code such as Thai text was a 500 instead of the unknown lot's 404."""
    app = create_app(runtime=Runtime(app_settings(db, anvil, registry, tmp_path), _engine=db.engine))
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, encoded in (
            ("/lot/ข้าว-𝔘", "/lot/%E0%B8%82%E0%B9%89%E0%B8%B2%E0%B8%A7-%F0%9D%94%98"),
            (f"/01/{GTIN}/10/ข้าว", f"/01/{GTIN}/10/%E0%B8%82%E0%B9%89%E0%B8%B2%E0%B8%A7"),
        ):
            r = client.get(path, headers={"Accept": accept})
            assert r.status_code == 404, (path, r.status_code, r.text[:200])
            assert r.headers["content-type"].startswith(accept)
            assert f"{encoded}?linkType=linkset>" in r.headers["link"]


def test_every_operation_as_every_role_answers_as_its_schema_says(fuzzed: Fuzzed) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = [op.label for op in operations]
    assert len(operations) >= 20, labels
    tally = Tally()
    for operation in operations:
        cases = generate(operation, tally)
        for role in ROLES:
            forget_sign_in_attempts(fuzzed.sessions)
            headers = credentials(role, fuzzed.tokens)
            for case in cases:
                send(case, role, headers, tally)
    report(tally, labels)
    if tally.failures:
        found = "\n".join(f"{n} × {text}" for text, n in sorted(tally.failures.items()))
        pytest.fail(f"{sum(tally.failures.values())} failed checks:\n{found}", pytrace=False)
    for role in ROLES:  # every operation was reached with every role's credentials
        reached = {label for (r, label, _) in tally.statuses if r == role}
        assert reached == set(labels), f"{role}: not reached {set(labels) - reached}"
    # The raised limits keep 429 from hiding the answers (sign-in's own throttle may still answer some).
    assert tally.by_status().get(429, 0) <= sum(tally.statuses.values()) // 100, tally.by_status()
    importer_ok = {label for (r, label, status) in tally.statuses if r == "importer" and status == 200}
    assert {"GET /api/v1/lots/{lot_code}/verify", "GET /api/v1/lots/{lot_code}/proof"} <= importer_ok
