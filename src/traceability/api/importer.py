"""The importer API: one call says whether a lot is what its label says, with the evidence; the proof bundle
to re-check it without trusting this server; the EPCIS 2.0 and FDA FSMA 204 exports compliance work needs.

Every route takes an importer's API key (``Authorization: Bearer ttk_…``, made with ``trace apikey create``),
is read-only and rate limited per key (``TRACE_IMPORTER_RATE_PER_MIN``); only ``GET /api/v1/registry`` is
public (rate limited per client address), so anyone can pin the registry before holding a key.

* ``GET /api/v1/lots/{lot_code}/verify`` — the verdict (``services.ledger.verify_lot``);
* ``GET /api/v1/lots/{lot_code}/proof`` — the proof bundle;
* ``POST /api/v1/verify`` — a posted bundle checked against this service's own registry (pinned), statelessly;
* ``GET /api/v1/lots/{lot_code}/epcis`` — the EPCIS 2.0 ``EPCISDocument`` of the lineage;
* ``GET /api/v1/lots/{lot_code}/fsma204.csv`` and ``GET /api/v1/fsma204.csv?product=…&from=…&to=…``;
* ``GET /api/v1/registry`` — chain id and TraceRegistry address.

JSON with quantities goes out through ``domain.codec`` (exact decimals, never floats), and a posted bundle is
read with it too: parsing it as floats would change the numbers, and with them the hashes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from traceability.api import examples as ex
from traceability.api.deps import ImporterDep, RuntimeDep, SessionDep, client_address
from traceability.api.ratelimit import limiter
from traceability.api.schemas import ErrorRead, RegistryInfoRead, TextRead, VerdictRead
from traceability.domain import codec
from traceability.domain.bundle import ProofBundle
from traceability.domain.events import LOT_CODE_RE
from traceability.domain.findings import Code, Verdict
from traceability.errors import ChainError, InvalidInput, NotFound
from traceability.services.exports import export_epcis
from traceability.services.observability import count_verdict
from traceability.services.proof import build_bundle
from traceability.services.provenance import VerifyCache, kept_verdict, verified_lot
from traceability.services.runtime import Runtime
from traceability.services.verify import verify_bundle

router = APIRouter(tags=["importer"])
log = logging.getLogger(__name__)

CHAIN_RETRY_S: Final = 30
"""Retry-After on a 503: the chain node is down or unreachable; the ledger itself is fine."""
MAX_RANGE_DAYS: Final = 366
EPCIS_TYPE: Final = "application/ld+json"

_KEYED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": "no API key, or an unknown or revoked one"},
    403: {"model": ErrorRead, "description": "a farmer's or officer's sign-in token instead of an API key"},
    429: {"model": ErrorRead, "description": "over the key's rate limit; see `Retry-After` (seconds)"},
}
_LOT: dict[int | str, dict[str, Any]] = {
    **_KEYED,
    404: {"model": ErrorRead, "description": "`unknown_lot`"},
    422: {"model": ErrorRead, "description": "`invalid_input`: a parameter that cannot be read"},
}
_CHAIN: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorRead,
        "description": "`chain_unavailable`: the chain did not answer, so nothing can be said about the lot "
        "now; see `Retry-After`",
    }
}


def _json_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route whose success is not JSON (CSV, EPCIS JSON-LD): FastAPI would file an
    error's ``model`` under the route's own media type, but errors are always ``application/json``."""
    error_json = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}}}
    return {
        status: {"description": spec["description"], "content": error_json}
        if spec.get("model") is ErrorRead
        else spec
        for status, spec in responses.items()
    }


FSMA_EXAMPLE: Final = (
    "# FDA FSMA 204 sortable spreadsheet (21 CFR 1.1455(c)); lines starting with # are the legend\n"
    "cte,traceability_lot_code,tlc_source,commodity,variety_en,quantity,unit,location,event_date_local,"
    "utc_offset,reference_document_type,reference_document_number,ftl_status\n"
    'Harvesting,NSN-VEG-2609-01,"Nong Sanit organic plot 1, Chom Phra, Surin, TH",'
    '"Leafy greens (kale, lettuce)",Kale and lettuce,1250,KGM,'
    '"Nong Sanit Organic Vegetable Community Enterprise, TH, +66 44 000 000",'
    "2026-10-23T06:30:00,+07:00,EPCIS event,"
    "ni:///sha-256;1858c409d12491386f0568653c29e2fbaa8067c2fef13ebe337a9231db26caca?ver=CBV2.0,"
    "on FTL: Leafy greens\n"
)


class LdJsonResponse(Response):
    media_type = EPCIS_TYPE


class CsvResponse(Response):
    media_type = "text/csv"  # Starlette adds "; charset=utf-8" to text types


def _json(value: Any, status_code: int = 200) -> Response:
    """JSON written with exact decimals (``codec.dumps``)."""
    return Response(codec.dumps(value), status_code=status_code, media_type="application/json")


def _lot_code(value: str) -> str:
    """The lot code as stored (upper case); anything that cannot be one is simply an unknown lot."""
    code = value.strip().upper()
    if not re.fullmatch(LOT_CODE_RE, code):
        raise NotFound(f"unknown lot {value[:40]!r}", code="unknown_lot")
    return code


def _unavailable(exc: ChainError | None = None) -> JSONResponse:
    """503 with Retry-After. The chain error's own text stays in the log: it can name the node's URL, which
    may carry the operator's provider key."""
    if exc is not None:
        log.warning("importer API: chain unavailable: %s", exc.message)
    return JSONResponse(
        {
            "error": {
                "code": "chain_unavailable",
                "message": "the chain did not answer, so the lot cannot be checked now: try again shortly",
            }
        },
        status_code=503,
        headers={"Retry-After": str(CHAIN_RETRY_S)},
    )


@contextmanager
def _lot_errors() -> Iterator[None]:
    """An unknown lot is ``unknown_lot`` (404) whichever service found it."""
    try:
        yield
    except NotFound as exc:
        raise NotFound(exc.message, code="unknown_lot") from None


def _verdict(verdict: Verdict, runtime: Runtime) -> Response:
    """The verdict as JSON; a 503 instead when the chain did not answer (a `failed` the importer would read
    as a forgery, for what is only an outage)."""
    if any(f.code is Code.CHAIN_UNAVAILABLE for f in verdict.findings):
        return _unavailable()
    body = verdict.to_json()
    count_verdict(str(body.get("status")))
    registry = body.get("registry") or {}
    if registry.get("chain_id") is None or registry.get("contract") is None:
        body["registry"] = {"chain_id": runtime.registry.chain_id, "contract": runtime.registry.address}
    return _json(body)


@router.get(
    "/api/v1/lots/{lot_code}/verify",
    response_model=VerdictRead,
    responses={**_LOT, **_CHAIN},
)
async def verify_lot_route(
    request: Request, lot_code: str, runtime: RuntimeDep, importer: ImporterDep
) -> Response:
    """Whether the lot is genuine, checked now against the chain: `verified`, `warning` or `failed`.

    Every event of the lot's lineage (back to each planting) is re-hashed (GS1 CBV 2.0 Event Hash ID) and
    found in its anchored Merkle batch on chain; each lot's hash chain (`prev`) must be unbroken; quantities
    must add up through every transformation and shipment (mass balance), harvests must be plausible for
    the plot's area and crop; certifications must be signed by an officer valid for the origin's อปท. at the
    time, unrevoked and unexpired. `reasons` names what is wrong with stable codes and Thai/English text;
    `checks` has one line per check; `evidence` has the values to re-check it by hand (hashes, proofs,
    roots, transactions, blocks and times, links, kilograms, signers). `registry` is the TraceRegistry it
    was checked against (`GET /api/v1/registry`), and `checked_at` when. The same verdict may be served
    again for up to 10 seconds while neither the lot's lineage in the ledger nor the chain's head block has
    changed (the ledger is looked at every quarter second and the head read every second, so a change is
    seen within that, twice that at most): `checked_at` and the `Age` header (seconds) say how old it is.
    503 when the chain does not answer."""
    # A verdict the cache can serve without asking the ledger or the chain (services.provenance.kept_verdict)
    # is sent from the event loop: a hop to the thread pool and back costs more than the rest of such a
    # request.
    code = _lot_code(lot_code)
    kept = kept_verdict(verify_cache(request), code)
    if kept is not None:
        return _verdict_answer(*kept)
    return await run_in_threadpool(_verify_now, request, runtime, code)


def _verify_now(request: Request, runtime: Runtime, code: str) -> Response:
    """The verify route's answer after a look at the ledger and the chain: kept, or verified now."""

    def encode(verdict: Verdict) -> bytes | None:
        response = _verdict(verdict, runtime)
        return bytes(response.body) if response.status_code == 200 else None

    # The unit of work is opened here, not by SessionDep: a sync generator dependency costs two more hops to
    # the thread pool, as much again as a cached verdict's own work.
    try:
        with _lot_errors(), runtime.transaction() as session:
            body, age_s = verified_lot(
                session,
                runtime.registry,
                code,
                encode=encode,
                cache=verify_cache(request),
                confirmations=runtime.settings.confirmations,
                yield_tolerance=runtime.settings.yield_tolerance,
                evidence_dir=runtime.settings.evidence_dir,
            )
    except ChainError as exc:
        return _unavailable(exc)
    if body is None:
        return _unavailable()
    return _verdict_answer(body, age_s)


def _verdict_answer(body: bytes, age_s: float) -> Response:
    return Response(body, media_type="application/json", headers={"Age": str(int(age_s))})


def verify_cache(request: Request) -> VerifyCache:
    """The app's cache of encoded verdicts (made by ``main.create_app``; one per app and process)."""
    cache: VerifyCache = request.app.state.verify_cache
    return cache


@router.get(
    "/api/v1/lots/{lot_code}/proof",
    response_model=ProofBundle,
    responses={
        200: {"content": {"application/json": {"example": ex.PROOF_BUNDLE}}},
        **_LOT,
        **_CHAIN,
    },
)
def read_proof(lot_code: str, session: SessionDep, runtime: RuntimeDep, importer: ImporterDep) -> Response:
    """The lot's proof bundle: every event of its lineage as EPCIS 2.0 JSON with its CBV 2.0 hash and anchor
    (Merkle root, proof, transaction, block number and hash), and the signed certifications (EIP-712 typed
    data and signature). Check it without this server: `trace verify --bundle FILE --rpc URL --registry
    ADDRESS`, or your own code (`docs/proof-bundle.schema.json`), or post it back to `POST /api/v1/verify`.
    Numbers are exact decimals: parse them as decimals, not floats, or the hashes will not match."""
    code = _lot_code(lot_code)
    try:
        with _lot_errors():
            registry = runtime.registry
            bundle = build_bundle(session, code, chain_id=registry.chain_id, contract=registry.address)
    except ChainError as exc:
        return _unavailable(exc)
    return _json(bundle.to_json())


@router.post(
    "/api/v1/verify",
    response_model=VerdictRead,
    responses={
        200: {
            "description": "The verdict on the bundle; a tampered or foreign bundle is `failed`, naming what",
            "content": {
                "application/json": {
                    "examples": {
                        "verified": {"summary": "an untouched bundle", "value": ex.VERDICT_VERIFIED},
                        "tampered": {
                            "summary": "a quantity changed in one event: `hash_mismatch` names it",
                            "value": ex.VERDICT_TAMPERED,
                        },
                        "unknown_registry": {
                            "summary": "a bundle naming another registry",
                            "value": ex.VERDICT_UNKNOWN_REGISTRY,
                        },
                    }
                }
            },
        },
        **_KEYED,
        413: {"model": ErrorRead, "description": "a body over 16 MiB"},
        422: {"model": ErrorRead, "description": "not JSON, or not a proof bundle (the message says what)"},
        **_CHAIN,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A proof bundle, as `GET /api/v1/lots/{lot_code}/proof` gives it (up to 16 MiB)",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/ProofBundle"},
                    "example": ex.PROOF_BUNDLE,
                }
            },
        }
    },
)
async def verify_posted_bundle(request: Request, runtime: RuntimeDep, importer: ImporterDep) -> Response:
    """Check a proof bundle you hold, statelessly: nothing is looked up in this service's database, only
    the chain is asked. The bundle is checked against this service's own TraceRegistry (chain id and
    address from `GET /api/v1/registry`), never the registry the bundle names: one naming another registry
    is `failed` with `unknown_registry`. An event changed by even one byte is `failed` with `hash_mismatch`
    naming the event. Send the bundle's JSON as it was served: numbers are read as exact decimals."""
    raw = await request.body()
    # Parsing up to 16 MiB and asking the chain block: both off the event loop.
    return await run_in_threadpool(_check_posted, raw, runtime)


def _check_posted(raw: bytes, runtime: Runtime) -> Response:
    bundle = _read_bundle(raw)
    try:
        verdict = verify_bundle(
            bundle,
            runtime.registry,
            confirmations=runtime.settings.confirmations,
            yield_tolerance=runtime.settings.yield_tolerance,
        )
    except ChainError as exc:
        return _unavailable(exc)
    return _verdict(verdict, runtime)


def _read_bundle(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidInput("send a proof bundle as the JSON body", code="invalid_json")
    try:
        codec.check_depth(raw)  # before parsing: the C decoder can crash the process on deep nesting
        data = codec.loads(raw)
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8 JSON", code="invalid_json") from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {str(exc)[:200]}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"not a proof bundle: a JSON object was expected, not {type(data).__name__}", code="not_a_bundle"
        )
    return data


@router.get(
    "/api/v1/lots/{lot_code}/epcis",
    response_class=LdJsonResponse,
    responses={
        200: {
            "description": "An EPCIS 2.0 JSON-LD `EPCISDocument`",
            "content": {EPCIS_TYPE: {"schema": {"type": "object"}, "example": ex.EPCIS_DOCUMENT}},
        },
        **_json_errors(_LOT),
    },
)
def read_epcis(lot_code: str, session: SessionDep, importer: ImporterDep) -> Response:
    """The lot's whole lineage as an EPCIS 2.0 JSON-LD `EPCISDocument` (validates against GS1's schema): back
    to every farm and forward to every shipment. Each `eventID` is the event's CBV 2.0 Event Hash ID
    (`ni:///sha-256;…?ver=CBV2.0`), the hash anchored on chain, so an EPCIS repository that loads it can
    find each event in the registry; `epcisHeader.epcisMasterData` describes every place and party named
    (Thai and English; no personal data: farmers appear only by pseudonymous code)."""
    code = _lot_code(lot_code)
    with _lot_errors():
        document = export_epcis(session, code)
    return LdJsonResponse(codec.dumps(document))


def _csv_example() -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "CSV (UTF-8): a legend block of `#` lines, then one row per critical tracking "
            "event",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": FSMA_EXAMPLE}},
        }
    }


def _attachment(text: str, filename: str) -> Response:
    return CsvResponse(text, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get(
    "/api/v1/lots/{lot_code}/fsma204.csv",
    response_class=CsvResponse,
    responses={**_csv_example(), **_json_errors(_LOT)},
)
def read_fsma204(lot_code: str, session: SessionDep, importer: ImporterDep) -> Response:
    """FDA FSMA 204 sortable spreadsheet of the lot's lineage (21 CFR 1.1455(c)): one row per critical
    tracking event (harvesting, cooling, initial packing, shipping, receiving, transformation) with the key
    data elements the rule lists for it; dates in local time with their UTC offset; English throughout;
    foods not on FDA's Food Traceability List (rice) are exported but marked out of scope."""
    from traceability.services.fsma204 import export_fsma204

    code = _lot_code(lot_code)
    with _lot_errors():
        text = export_fsma204(session, code)
    return _attachment(text, f"fsma204-{code}.csv")


@router.get(
    "/api/v1/fsma204.csv",
    response_class=CsvResponse,
    responses={
        **_csv_example(),
        **_json_errors(
            {
                **_KEYED,
                422: {
                    "model": ErrorRead,
                    "description": "an unknown product, a date that is not YYYY-MM-DD, `from` after `to`, "
                    "or a range over 366 days",
                },
            }
        ),
    },
)
def read_fsma204_range(
    session: SessionDep,
    importer: ImporterDep,
    product: Annotated[
        str,
        Query(
            min_length=1,
            max_length=64,
            description="a crop code of the catalogue (e.g. `organic-veg`, `watermelon`, `hom-mali-105`) "
            "or an FTL food name; the answer to an unknown one lists those accepted",
            examples=["organic-veg"],
        ),
    ],
    start: Annotated[
        date,
        Query(
            alias="from", description="first day, local date (YYYY-MM-DD), inclusive", examples=["2026-10-01"]
        ),
    ],
    end: Annotated[
        date,
        Query(
            alias="to", description="last day, local date (YYYY-MM-DD), inclusive", examples=["2026-10-31"]
        ),
    ],
) -> Response:
    """FDA asks by food and date range: every critical tracking event of lots of `product` whose local event
    date is within `from`..`to` (both inclusive, at most 366 days), as the same sortable spreadsheet."""
    from traceability.services.fsma204 import export_fsma204_range

    if start > end:
        raise InvalidInput(f"`from` ({start}) is after `to` ({end})", code="invalid_range")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(
            f"the range {start}..{end} is over {MAX_RANGE_DAYS} days: ask for a year at a time",
            code="invalid_range",
        )
    name = product.strip()
    text = export_fsma204_range(session, product=name, start=start, end=end)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:40] or "product"
    return _attachment(text, f"fsma204-{slug}-{start}-{end}.csv")


@router.get(
    "/api/v1/registry", response_model=RegistryInfoRead, responses={**_CHAIN, 429: {"model": ErrorRead}}
)
def read_registry(request: Request, runtime: RuntimeDep) -> Response:
    """Public (no key): the chain id and TraceRegistry address this service anchors in and verifies against,
    so anyone can pin them. The same values are printed on every provenance page."""
    rate = runtime.settings.public_rate_per_min
    limiter(request, "public", rate, max(10, rate // 10)).check(client_address(request))
    try:
        registry = runtime.registry
        chain_id, address = registry.chain_id, registry.address
    except ChainError as exc:
        return _unavailable(exc)
    info = RegistryInfoRead(
        chain_id=chain_id,
        contract=address,
        functions=[
            "anchoredAt(bytes32) returns (uint64)",
            "verifyEvent(bytes32,bytes32[],bytes32) returns (bool)",
            "isValid(bytes32) returns (bool)",
        ],
        pin=TextRead(
            th=f"บันทึกหมายเลขเชน {chain_id} และที่อยู่ {address} ไว้ในระบบของท่าน แล้วตรวจหลักฐานทุกชุดกับทะเบียนนี้"
            "เท่านั้น หลักฐานที่อ้างถึงทะเบียนอื่นพิสูจน์อะไรไม่ได้ เพราะใครก็ตั้งทะเบียนของตนเองได้",
            en=f"Record chain id {chain_id} and address {address} in your own system and check every bundle "
            "against this registry only: a bundle naming another registry proves nothing, since anyone can "
            "deploy one of their own.",
        ),
        verify_offline=f"trace verify --bundle bundle.json --rpc <your node's URL> --registry {address}",
        proof_bundle_schema="docs/proof-bundle.schema.json",
    )
    return JSONResponse(info.model_dump(), headers={"Cache-Control": "public, max-age=300"})
