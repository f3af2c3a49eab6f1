"""The identifier URIs events carry resolve: ``GET /place/{code}`` and ``GET /party/{code}``.

Served under the identifier base (``docs/identifiers.md``), they answer what an EPCIS export's
``epcisHeader.epcisMasterData`` says about the same URI — the very vocabulary element, with an ``@context``
(``services.identifiers``): a machine (``Accept: application/ld+json`` or ``application/json``, or no
preference) gets that JSON-LD; a browser (``Accept: text/html`` preferred) a small page, Thai by default and
English with ``?lang=en``, without script. Unknown codes are 404 in the same two forms. A farmer is only
"farmer F-0001 of อบต. X": no name, address or phone ever (PDPA).

Both routes are rate limited per client address (``TRACE_PUBLIC_RATE_PER_MIN``), like every public page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from traceability.api.deps import RuntimeDep, SessionDep, client_address
from traceability.api.ratelimit import limiter
from traceability.domain import codec
from traceability.errors import NotFound, RateLimited, TraceabilityError
from traceability.services.identifiers import Resolved, resolve_party, resolve_place
from traceability.services.runtime import DbSession, Runtime
from traceability.web.i18n import pick_lang
from traceability.web.negotiation import quality
from traceability.web.pages import render

router = APIRouter(tags=["identifiers"])

LD_JSON: Final = "application/ld+json"
CACHE: Final = "public, max-age=300"
MAX_CODE: Final = 64

_ERROR_EXAMPLE: Final = {"error": {"code": "not_found", "message": "unknown place NO-SUCH-PLACE"}}
PLACE_EXAMPLE: Final[dict[str, Any]] = {
    "@context": {
        "epcis": "https://ref.gs1.org/epcis/",
        "cbvmda": "urn:epcglobal:cbv:mda#",
        "tt": "https://thai-trace.org/ns/epcis#",
    },
    "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
    "id": "https://id.example.or.th/place/PH-NSN",
    "attributes": [
        {"id": "urn:epcglobal:cbv:mda#name", "attribute": "Ban Nong Sanit community packing house"},
        {
            "id": "https://thai-trace.org/ns/epcis#nameTh",
            "attribute": {"@value": "โรงคัดบรรจุผัก วิสาหกิจชุมชนบ้านหนองสนิท", "@language": "th"},
        },
        {"id": "urn:epcglobal:cbv:mda#city", "attribute": "Chom Phra District"},
        {"id": "urn:epcglobal:cbv:mda#state", "attribute": "Surin"},
        {"id": "urn:epcglobal:cbv:mda#countryCode", "attribute": "TH"},
        {"id": "urn:epcglobal:cbv:mda#latitude", "attribute": 15.112},
        {"id": "urn:epcglobal:cbv:mda#longitude", "attribute": 103.617},
        {"id": "https://thai-trace.org/ns/epcis#placeKind", "attribute": "packing_house"},
        {
            "id": "https://thai-trace.org/ns/epcis#operator",
            "attribute": "https://id.example.or.th/party/CE-NSN-01",
        },
    ],
}
PARTY_EXAMPLE: Final[dict[str, Any]] = {
    "@context": PLACE_EXAMPLE["@context"],
    "type": "urn:epcglobal:epcis:vtype:Party",
    "id": "https://id.example.or.th/party/F-0001",
    "attributes": [
        {
            "id": "urn:epcglobal:cbv:mda#name",
            "attribute": "Farmer F-0001 of Nong Sanit Subdistrict Administrative Organization",
        },
        {
            "id": "https://thai-trace.org/ns/epcis#nameTh",
            "attribute": {"@value": "เกษตรกร F-0001 ขององค์การบริหารส่วนตำบลหนองสนิท", "@language": "th"},
        },
        {"id": "urn:epcglobal:cbv:mda#countryCode", "attribute": "TH"},
        {"id": "https://thai-trace.org/ns/epcis#partyKind", "attribute": "farmer"},
        {
            "id": "https://thai-trace.org/ns/epcis#authority",
            "attribute": "https://id.example.or.th/party/LAO-NONGSANIT",
        },
    ],
}


def _responses(example: dict[str, Any], what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"The {what}'s EPCIS master data as JSON-LD (a page for `Accept: text/html`).",
            "content": {LD_JSON: {"example": example}, "text/html": {}},
        },
        404: {
            "description": f"No such {what}.",
            "content": {"application/json": {"example": _ERROR_EXAMPLE}},
        },
        429: {"description": "Too many requests from this client: see `Retry-After`."},
    }


def _wants_html(request: Request) -> bool:
    """A browser: it prefers ``text/html`` to JSON-LD (a client with no preference gets JSON-LD)."""
    accept = request.headers.get("accept", "")
    html = quality(accept, "text/html")
    return html > 0 and html > max(quality(accept, LD_JSON), quality(accept, "application/json"))


def _answer(
    request: Request,
    runtime: Runtime,
    lang: str | None,
    what: str,
    code: str,
    resolve: Callable[..., Resolved],
    session: DbSession,
) -> Response:
    html = _wants_html(request)
    language = pick_lang(lang)
    headers = {"Vary": "Accept"}
    rate = runtime.settings.public_rate_per_min
    try:
        limiter(request, "public", rate, max(10, rate // 10)).check(client_address(request))
        if len(code) > MAX_CODE:
            raise NotFound(f"unknown {what} {code[:MAX_CODE]}…")
        resolved = resolve(session, code, id_base=runtime.settings.id_base)
    except TraceabilityError as exc:
        headers.update(exc.headers)
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if not html:
            return Response(
                codec.dumps(exc.to_json()),
                status_code=exc.status_code,
                media_type="application/json",
                headers=headers,
            )
        context = {
            "what": what,
            "code": code[:MAX_CODE],
            "retry_after": getattr(exc, "retry_after", None),
            "switch_url": request.url.path,
        }
        response = render(request, "identifier_missing.html", language, context, status_code=exc.status_code)
        response.headers.update(headers)
        return response
    headers["Cache-Control"] = CACHE
    if not html:
        return Response(codec.dumps(resolved.document), media_type=LD_JSON, headers=headers)
    context = {"what": what, "view": resolved.view, "switch_url": request.url.path}
    response = render(request, "identifier.html", language, context)
    response.headers.update(headers)
    return response


@router.get(
    "/place/{code}",
    response_class=Response,
    responses=_responses(PLACE_EXAMPLE, "place"),
    summary="A place identifier: its EPCIS location master data",
)
def place(
    code: str, request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None
) -> Response:
    """What `{id_base}/place/{code}` stands for, as the `BusinessLocation` vocabulary element an EPCIS export
    carries in `epcisHeader.epcisMasterData` (CBV master data attributes: `name`, `streetAddressOne`, `city`
    (อำเภอ), `state` (จังหวัด), `countryCode`, `latitude`, `longitude`; the Thai text as `tt:…Th`
    language-tagged values; `tt:placeKind`, `tt:operator` and `tt:authority` as party URIs). A farmer's field
    is named by its code and village only."""
    return _answer(request, runtime, lang, "place", code, resolve_place, session)


@router.get(
    "/party/{code}",
    response_class=Response,
    responses=_responses(PARTY_EXAMPLE, "party"),
    summary="A party identifier: its EPCIS party master data",
)
def party(
    code: str, request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None
) -> Response:
    """What `{id_base}/party/{code}` stands for, as the `urn:epcglobal:epcis:vtype:Party` vocabulary element
    an EPCIS export carries: a business or an อปท. with its name, address and business phone (`mda#phone`);
    a farmer or an officer only by code, kind (`tt:partyKind`) and อปท. (`tt:authority`), never by name or
    phone (Thailand's PDPA)."""
    return _answer(request, runtime, lang, "party", code, resolve_party, session)
