"""What a buyer's phone opens when it scans a pack, and what a machine gets at the same address.

* ``GET /p/{lot_code}`` — the provenance page (Thai by default, ``?lang=en``): product, origin, a plain
  verdict with the block, transaction, registry address and chain id, the certification, the timeline, and
  how to check it all yourself. No script and no request to any other host; one small inline stylesheet.
* ``GET /p/{lot_code}/proof.json`` — the lot's public proof bundle, to check without trusting this server.
* ``GET /01/{gtin}/10/{lot}`` — the GS1 Digital Link resolver, and ``GET /lot/{lot_code}``, the lot's
  URI under the identifier base (``docs/identifiers.md``). Content negotiation: a browser gets the page;
  ``Accept: application/ld+json`` or ``?linkType=gs1:epcis`` the EPCIS 2.0 document of the lineage;
  ``?linkType=linkset`` (or ``all``), ``Accept: application/linkset+json`` or ``application/json`` the GS1
  linkset (RFC 9264).

The resolver renders the page itself (200) rather than redirecting to ``/p/{lot}``: a scan on a shop's 3G
connection saves a whole round trip, and the address the phone shows stays the one printed on the pack (the
lot's identifier). ``Vary: Accept`` keeps caches from handing the page to a machine or the JSON to a phone,
and a ``Link`` header names the linkset on every answer, as GS1-Conformant resolvers do.

The page is kept rendered while the lot's lineage is unchanged (``services.provenance.rendered_page``: the
ledger is asked once every quarter second per page, so a page may lag it by that much, half a second at
most, and a scan in between costs no query) and carries an ``ETag``: a phone that sends it back in
``If-None-Match`` gets a 304 with no body, as long as the page is still what the ledger says.

Every route is rate limited per client address (``TRACE_PUBLIC_RATE_PER_MIN``): a page over the limit is a
short Thai/English page with ``Retry-After``, a JSON answer the usual error JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from traceability.api.deps import RuntimeDep, SessionDep, client_address
from traceability.api.ratelimit import limiter
from traceability.domain import codec
from traceability.domain.fsma import translation
from traceability.errors import ChainUnavailable, NotFound, RateLimited, TraceabilityError
from traceability.services.exports import export_epcis
from traceability.services.proof import build_bundle
from traceability.services.provenance import (
    PageCache,
    Provenance,
    PublicVerdict,
    Registry,
    RenderedPage,
    find_lot,
    kept_page,
    lot_provenance,
    normalise_lot_code,
    registry_identity,
    rendered_page,
)
from traceability.services.review import ledger_id_base
from traceability.services.runtime import DbSession, Runtime
from traceability.web.i18n import pick_lang, translations
from traceability.web.negotiation import preferred
from traceability.web.pages import render
from traceability.web.risk_text import signal_texts

router = APIRouter(tags=["public"])

GS1_VOC: Final = "https://gs1.org/voc/"
LINKSET_TYPE: Final = "application/linkset+json"
EPCIS_TYPE: Final = "application/ld+json"
PAGE_CACHE: Final = "public, max-age=30"
"""A page may be kept 30 s (the verdict's own lifetime in the server's cache)."""
OFFERS: Final = ("text/html", EPCIS_TYPE, LINKSET_TYPE, "application/json")
"""What the resolver can answer, in the order that wins a tie (a plain ``*/*`` gets the page)."""
STANDARD_NAMES: Final = {
    "Organic Thailand": "Organic Thailand",
    "GAP": "GAP (Good Agricultural Practice)",
    "PGS": "PGS (Participatory Guarantee System)",
    "Thai Hom Mali Rice GI": "Thai Hom Mali Rice GI",
}
"""Standards an officer picks from (``web/officer.py``), shown by their translated name."""


# ------------------------------------------------------------------ rate limit, negotiation


def _over_limit(request: Request, runtime: Runtime) -> RateLimited | None:
    rate = runtime.settings.public_rate_per_min
    try:
        limiter(request, "public", rate, max(10, rate // 10)).check(client_address(request))
    except RateLimited as exc:
        return exc
    return None


def _busy_page(request: Request, lang: str, exc: RateLimited) -> Response:
    response = render(
        request,
        "provenance_busy.html",
        lang,
        {"retry_after": exc.retry_after, "switch_url": request.url.path},
        status_code=429,
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _accept(request: Request) -> str:
    """The media type among :data:`OFFERS` the client prefers (a tie goes to the earlier offer, so a browser
    gets the page)."""
    return preferred(request.headers.get("accept", "*/*"), OFFERS)


def _json_error(exc: TraceabilityError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        codec.dumps(exc.to_json()),
        status_code=exc.status_code,
        media_type="application/json",
        headers={**exc.headers, **(headers or {})},
    )


# ------------------------------------------------------------------ the page


def _registry(runtime: Runtime) -> Registry | None:
    """The trusted registry, or None when the chain cannot be reached to build its client."""
    try:
        return runtime.registry
    except (TraceabilityError, OSError):
        return None


def _short(value: str) -> str:
    return value if len(value) <= 18 else f"{value[:10]}…{value[-6:]}"


def _standard(standard: str, lang: str) -> str:
    known = STANDARD_NAMES.get(standard)
    return translations(lang).gettext(known) if known else standard


def _kg(value: Any, lang: str) -> str | None:
    return None if value is None else format_decimal(value, "#,##0.###", locale=lang)


def _page_context(
    request: Request,
    runtime: Runtime,
    provenance: Provenance,
    verdict: PublicVerdict,
    registry: Registry | None,
    lang: str,
) -> dict[str, Any]:
    th = lang == "th"
    local = ZoneInfo(runtime.settings.timezone)
    address, chain_id = (
        registry_identity(registry) if registry else (runtime.settings.contract_address or "", None)
    )
    anchor = provenance.latest_anchor
    own = provenance.code
    base = runtime.settings.public_base_url
    risky = signal_texts(verdict.risk)
    return {
        "switch_url": request.url.path,
        "lot": {
            "code": own,
            "gtin": provenance.gtin,
            "product": provenance.product_th if th else provenance.product_en,
            "crop": provenance.crop_th if th else provenance.crop_en,
            "varieties": [_text(v, lang) for v in provenance.varieties],
            "grades": [_text(g, lang) for g in provenance.grades],
            "merged": len(provenance.lineage) > 1,
            "lineage": [code for code in provenance.lineage if code != own],
        },
        "origins": [
            {
                "village": o.village_th if th else o.village_en,
                "district": o.district_th if th else o.district_en,
                "province": o.province_th if th else o.province_en,
                "authority": o.authority_th if th else o.authority_en,
            }
            for o in provenance.origins
        ],
        "verdict": {
            "status": verdict.status,
            "reasons": [
                {"text": r.th if th else r.en, "error": r.error}
                for r in verdict.reasons
                if not {r.th, r.en} & risky  # an origin-risk signal is shown once, under the risk line
            ],
            "risk": _risk(verdict, lang),
            "block": anchor.block_number if anchor else None,
            "tx": anchor.tx_hash if anchor else None,
            "tx_short": _short(anchor.tx_hash) if anchor else None,
        },
        "registry": {"address": address, "chain_id": chain_id},
        "certifications": [
            {
                "standard": _standard(c.standard, lang),
                "authority": c.authority_th if th else c.authority_en,
                "issued": c.issued.astimezone(local),
                "expires": c.expires.astimezone(local) if c.expires else None,
                "state": c.state,
                "lot": c.lot_code if c.lot_code != own else None,
            }
            for c in provenance.certifications
        ],
        "steps": [
            {
                "step": s.step,
                "when": s.event_time.astimezone(local),
                "lot": s.lot_code,
                "own": s.lot_code == own,
                "joined": [code for code in s.joined_from if code != s.lot_code],
                "kg": _kg(s.quantity_kg, lang),
                "place": s.place.th if th else s.place.en,
                "detail": _standard(s.detail, lang)
                if s.step == "certification" and s.detail
                else _text(s.detail, lang),
                "block": s.anchor.block_number if s.anchor else None,
                "tx": s.anchor.tx_hash if s.anchor else None,
                "tx_short": _short(s.anchor.tx_hash) if s.anchor else None,
            }
            for s in provenance.steps
        ],
        "proof_url": f"/p/{own}/proof.json",
        "rpc_hint": "RPC_URL",
        "proof_file": f"{own}-proof.json",
        "page_url": f"{base}/p/{own}",
    }


def _risk(verdict: PublicVerdict, lang: str) -> dict[str, Any] | None:
    """The origin-risk line: the score and each warning in the signal's own words (written for buyers), or
    None when there is no assessment (the chain did not answer): then the page says nothing about risk."""
    risk = verdict.risk
    if risk is None:
        return None
    texts = list(dict.fromkeys(s.th if lang == "th" else s.en for s in risk.signals))
    return {"score": risk.score, "level": risk.level.value, "warnings": texts}


def _text(text: str | None, lang: str) -> str | None:
    """Free text as recorded (farmers write Thai); on the English page with the glossary's English first and
    the Thai kept beside it, so a buyer can match it to the pack."""
    if text is None or lang == "th":
        return text
    english = translation(text)
    return text if english is None or english == text else f"{english} ({text})"


def _missing_page(request: Request, lang: str, code: str) -> Response:
    context = {"code": code[:40], "switch_url": request.url.path}
    return render(request, "provenance_missing.html", lang, context, status_code=404)


def _page(request: Request, session: DbSession, runtime: Runtime, lot_code: str, lang: str) -> Response:
    """The provenance page of ``lot_code`` (the friendly 404 page for a lot the ledger does not hold), from
    the app's page cache while the lineage is unchanged (``services.provenance.rendered_page``); a 304 to
    a client that already holds this very page (``If-None-Match``)."""
    code = normalise_lot_code(lot_code)
    registry = _registry(runtime)
    if code is None:
        return _missing_page(request, lang, lot_code)
    if registry is None:
        try:
            provenance = lot_provenance(session, code)
        except NotFound:
            return _missing_page(request, lang, lot_code)
        verdict = PublicVerdict("unavailable", (), datetime.now(UTC))
        response = render(
            request, "provenance.html", lang, _page_context(request, runtime, provenance, verdict, None, lang)
        )
        response.headers["Cache-Control"] = PAGE_CACHE
        return response

    def rendered(provenance: Provenance, verdict: PublicVerdict) -> bytes:
        context = _page_context(request, runtime, provenance, verdict, registry, lang)
        return bytes(render(request, "provenance.html", lang, context).body)

    try:
        page = rendered_page(
            session,
            registry,
            code,
            variant=(lang, request.url.path),
            render=rendered,
            cache=page_cache(request),
            confirmations=runtime.settings.confirmations,
            yield_tolerance=runtime.settings.yield_tolerance,
            evidence_dir=runtime.settings.evidence_dir,
        )
    except NotFound:
        return _missing_page(request, lang, lot_code)
    return _page_response(request, page)


def _page_response(request: Request, page: RenderedPage) -> Response:
    """``page`` as sent, or a 304 to a client that already holds it (``If-None-Match``)."""
    headers = {"Cache-Control": PAGE_CACHE, "ETag": page.etag}
    if page.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type="text/html; charset=utf-8", headers=headers)


def _etags(header: str) -> set[str]:
    """The entity tags an ``If-None-Match`` names (a weak ``W/`` tag compares as its strong form, as RFC 9110
    allows for GET)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def page_cache(request: Request) -> PageCache:
    """The app's cache of rendered pages (made by ``main.create_app``; one per app and process)."""
    cache: PageCache = request.app.state.page_cache
    return cache


@router.get("/p/{lot_code}", include_in_schema=False)
async def provenance_page(
    request: Request, lot_code: str, runtime: RuntimeDep, lang: str | None = None
) -> Response:
    """The page every scan opens. A page the cache can answer without asking anything (the ledger looked
    at less than ``RECHECK_S`` ago: ``services.provenance.kept_page``) is sent from the event loop, with no
    thread and no database: under a shop's worth of scans that is nearly every request, and a hop to the
    thread pool and back costs more than the rest of the request. Anything else (a look at the ledger, a
    verification, a render) runs in the thread pool in its own unit of work, opened here rather than by
    ``SessionDep``, whose enter and exit would be two more hops."""
    language = pick_lang(lang)
    busy = _over_limit(request, runtime)
    if busy is not None:
        return _busy_page(request, language, busy)
    code = normalise_lot_code(lot_code)
    if code is not None:
        page = kept_page(page_cache(request), code, variant=(language, request.url.path))
        if page is not None:
            return _page_response(request, page)
    return await run_in_threadpool(_page_in_transaction, request, runtime, lot_code, language)


def _page_in_transaction(request: Request, runtime: Runtime, lot_code: str, lang: str) -> Response:
    with runtime.transaction() as session:
        return _page(request, session, runtime, lot_code, lang)


# ------------------------------------------------------------------ the proof bundle

PROOF_EXAMPLE: Final = {
    "format": "thai-trace-proof-bundle/2",
    "chain_id": 31337,
    "contract": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    "lot_code": "NSN-VEG-2609-01A",
    "lineage_lots": ["NSN-VEG-2609-01", "NSN-VEG-2609-01A"],
    "generated_at": "2026-11-22T09:30:00+00:00",
    "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
    "hash_algorithm": "CBV 2.0 Event Hash (sha-256)",
    "merkle": "OpenZeppelin MerkleProof: leaf = keccak256(keccak256(abi.encode(bytes32))), sorted pairs",
    "events": [
        {
            "epcis": {"type": "ObjectEvent", "eventTime": "2026-10-23T06:30:00.000+07:00", "...": "..."},
            "hash": "0x6f1c…(32 bytes)",
            "anchor": {
                "root": "0x9a0e…(32 bytes)",
                "proof": ["0x1b2c…(32 bytes)"],
                "tx_hash": "0x4d5e…(32 bytes)",
                "block_number": 42,
                "block_hash": "0x7f80…(32 bytes)",
            },
        }
    ],
    "certifications": [],
}


@router.get(
    "/p/{lot_code}/proof.json",
    summary="A lot's public proof bundle",
    response_class=Response,
    responses={
        200: {
            "description": "The proof bundle (docs/proof-bundle.schema.json), as a file to download",
            "content": {"application/json": {"example": PROOF_EXAMPLE}},
        },
        404: {
            "description": "No such lot",
            "content": {
                "application/json": {
                    "example": {"error": {"code": "unknown_lot", "message": "unknown lot NO-SUCH-LOT"}}
                }
            },
        },
        429: {"description": "Too many requests from this address (see Retry-After)"},
    },
)
def proof_bundle(request: Request, lot_code: str, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Every event of the lot's lineage with its CBV 2.0 hash and Merkle proof, the transactions that
    anchored them, and the signed certifications: check it with any verifier against the chain (e.g.
    `trace verify --bundle FILE --rpc URL --registry ADDRESS`), pinning the registry address and chain id
    published on the provenance page. No key needed."""
    busy = _over_limit(request, runtime)
    if busy is not None:
        return _json_error(busy)
    try:
        lot = find_lot(session, lot_code)
    except NotFound as exc:
        return _json_error(exc)
    registry = _registry(runtime)
    if registry is None:
        return _json_error(ChainUnavailable("the blockchain cannot be reached just now: try again later"))
    bundle = build_bundle(session, lot.code, chain_id=registry.chain_id, contract=registry.address)
    return Response(
        codec.dumps(bundle.to_json()),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{lot.code}-proof.json"',
            "Cache-Control": PAGE_CACHE,
        },
    )


# ------------------------------------------------------------------ the resolver

EPCIS_EXAMPLE: Final = {
    "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-11-22T09:30:00Z",
    "epcisBody": {"eventList": [{"type": "ObjectEvent", "eventID": "ni:///sha-256;…?ver=CBV2.0"}]},
}
LINKSET_EXAMPLE: Final = {
    "linkset": [
        {
            "anchor": "https://trace.example.th/01/08850001000019/10/NSN-VEG-2609-01A",
            f"{GS1_VOC}pip": [
                {
                    "href": "https://trace.example.th/p/NSN-VEG-2609-01A",
                    "title": "ที่มาของสินค้า ล็อต NSN-VEG-2609-01A",
                    "type": "text/html",
                    "hreflang": ["th"],
                }
            ],
            f"{GS1_VOC}epcis": [
                {
                    "href": "https://trace.example.th/01/08850001000019/10/NSN-VEG-2609-01A?linkType=gs1:epcis",
                    "title": "EPCIS 2.0 events of lot NSN-VEG-2609-01A",
                    "type": EPCIS_TYPE,
                    "hreflang": ["en"],
                }
            ],
        }
    ]
}
RESOLVER_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The provenance page (a browser), the lot's EPCIS document or its GS1 linkset",
        "content": {
            "text/html": {"example": '<!doctype html><html lang="th">… the provenance page …</html>'},
            EPCIS_TYPE: {"example": EPCIS_EXAMPLE},
            LINKSET_TYPE: {"example": LINKSET_EXAMPLE},
        },
    },
    307: {"description": "gs1:certificationInfo and gs1:traceability: to the certification or the bundle"},
    404: {
        "description": "Unknown lot, a GTIN that is not the lot's (or not a GTIN), or an unknown linkType: "
        "a page for a browser, else JSON",
        "content": {
            "text/html": {"example": '<!doctype html><html lang="th">… ไม่พบล็อตสินค้า …</html>'},
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorRead"},
                "example": {
                    "error": {"code": "unknown_link_type", "message": "no link of type gs1:recipeInfo"}
                },
            },
        },
    },
    429: {
        "description": "Too many requests from this address (see Retry-After): a page for a browser, "
        "else JSON",
        "content": {
            "text/html": {"example": '<!doctype html><html lang="th">… โปรดลองใหม่ …</html>'},
            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorRead"}},
        },
    },
}
LINK_TYPES: Final = {
    "linkset": "linkset",
    "all": "linkset",
    "pip": "pip",
    "defaultlink": "pip",
    "defaultlinkmulti": "pip",
    "epcis": "epcis",
    "certificationinfo": "certificationInfo",
    "traceability": "traceability",
}
"""``linkType`` values answered (``gs1:x``, the full GS1 vocabulary URI, or bare), by what they give."""


def _link_type(value: str | None) -> str | None:
    """The answer a ``linkType`` asks for, or None for one this resolver has no link of."""
    if value is None:
        return None
    name = value.strip()
    for prefix in ("gs1:", GS1_VOC, "https://ref.gs1.org/voc/", "http://gs1.org/voc/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return LINK_TYPES.get(name.lower())


def linkset(anchor: str, code: str, base: str) -> dict[str, Any]:
    """The GS1 linkset (RFC 9264 JSON) of a lot at ``anchor``: the provenance page in Thai and English
    (``gs1:pip``, also the ``gs1:defaultLink``), the EPCIS document (``gs1:epcis``), the certification
    section and the proof bundle (``gs1:certificationInfo``), the proof bundle (``gs1:traceability``)."""
    pages: dict[str, dict[str, Any]] = {}
    for lang in ("th", "en"):
        _ = translations(lang).gettext
        href = f"{base}/p/{code}" + ("?lang=en" if lang == "en" else "")
        pages[lang] = {
            "href": href,
            "title": _("Where lot %(lot)s came from") % {"lot": code},
            "type": "text/html",
            "hreflang": [lang],
        }
        pages[lang + "#"] = {
            **pages[lang],
            "href": href + "#certification",
            "title": _("Certification of lot %(lot)s") % {"lot": code},
        }
    proof = {
        "href": f"{base}/p/{code}/proof.json",
        "title": f"Proof bundle of lot {code}: events, Merkle proofs, anchors, signed certifications",
        "type": "application/json",
        "hreflang": ["en"],
    }
    return {
        "linkset": [
            {
                "anchor": anchor,
                f"{GS1_VOC}pip": [pages["th"], pages["en"]],
                f"{GS1_VOC}epcis": [
                    {
                        "href": f"{anchor}?linkType=gs1:epcis",
                        "title": f"EPCIS 2.0 events of lot {code} and every lot it was made from",
                        "type": EPCIS_TYPE,
                        "hreflang": ["en"],
                    }
                ],
                f"{GS1_VOC}certificationInfo": [pages["th#"], pages["en#"], proof],
                f"{GS1_VOC}traceability": [proof],
                f"{GS1_VOC}defaultLink": [pages["th"]],
            }
        ]
    }


def _resolve(
    request: Request,
    session: DbSession,
    runtime: Runtime,
    lot_code: str,
    *,
    gtin: str | None,
    anchor_of: Any,
    link_type: str | None,
    lang: str | None,
) -> Response:
    language = pick_lang(lang)
    wanted = _accept(request)
    html = wanted == "text/html" and link_type is None
    # The path as it was sent (percent-encoded): a header is Latin-1, and a lot code in a URL may be any text.
    linkset_url = f"{runtime.settings.public_base_url}{quote(request.url.path, safe='/')}?linkType=linkset"
    link_header = {"Link": f'<{linkset_url}>; rel="linkset"; type="{LINKSET_TYPE}"', "Vary": "Accept"}
    busy = _over_limit(request, runtime)
    if busy is not None:
        if html:
            response = _busy_page(request, language, busy)
            response.headers.update(link_header)
            return response
        return _json_error(busy, link_header)
    answer = _link_type(link_type)
    if link_type is not None and answer is None:
        return _json_error(
            NotFound(f"no link of type {link_type[:80]} for this lot", code="unknown_link_type"), link_header
        )
    if answer is None:
        answer = {
            "text/html": "pip",
            EPCIS_TYPE: "epcis",
            LINKSET_TYPE: "linkset",
            "application/json": "linkset",
        }[wanted]
    try:
        lot = find_lot(session, lot_code, gtin=gtin)
    except NotFound as exc:
        if answer == "pip" and wanted == "text/html":
            response = _missing_page(request, language, lot_code)
            response.headers.update(link_header)
            return response
        return _json_error(exc, link_header)
    if answer == "pip":
        response = _page(request, session, runtime, lot.code, language)
    elif answer == "epcis":
        document = export_epcis(session, lot.code)
        response = Response(codec.dumps(document), media_type=EPCIS_TYPE)
    elif answer == "linkset":
        anchor = anchor_of(lot)
        body = linkset(anchor, lot.code, runtime.settings.public_base_url)
        response = Response(codec.dumps(body), media_type=LINKSET_TYPE)
    elif answer == "traceability":
        response = RedirectResponse(f"/p/{lot.code}/proof.json", status_code=307)
    else:  # certificationInfo: the certification section of the page, in the language asked for
        suffix = "?lang=en" if language == "en" else ""
        response = RedirectResponse(f"/p/{lot.code}{suffix}#certification", status_code=307)
    response.headers.update(link_header)
    return response


LinkTypeQuery = Annotated[
    str | None,
    Query(
        alias="linkType",
        description="gs1:pip (the page), gs1:epcis, gs1:certificationInfo, gs1:traceability, linkset",
    ),
]


@router.get(
    "/01/{gtin}/10/{lot}",
    summary="GS1 Digital Link resolver for a lot of a product",
    response_class=Response,
    responses=RESOLVER_RESPONSES,
)
def resolve_digital_link(
    request: Request,
    gtin: str,
    lot: str,
    session: SessionDep,
    runtime: RuntimeDep,
    link_type: LinkTypeQuery = None,
    lang: str | None = None,
) -> Response:
    """What the QR code on a pack leads to. A browser gets the provenance page (Thai, `?lang=en` for
    English); `Accept: application/ld+json` or `?linkType=gs1:epcis` the EPCIS 2.0 document of the lot's
    whole lineage; `?linkType=linkset` or `Accept: application/linkset+json` the GS1 linkset of its links
    (`gs1:pip`, `gs1:epcis`, `gs1:certificationInfo`, `gs1:traceability`, `gs1:defaultLink`). The GTIN must
    be the lot's (GTIN-8/12/13/14 compared as GTIN-14), else 404; an unknown `linkType` is a JSON 404."""
    base = runtime.settings.public_base_url
    return _resolve(
        request,
        session,
        runtime,
        lot,
        gtin=gtin,
        anchor_of=lambda key: f"{base}/01/{key.gtin}/10/{key.code}",
        link_type=link_type,
        lang=lang,
    )


@router.get(
    "/lot/{lot_code}",
    summary="A lot's URI under the identifier base",
    response_class=Response,
    responses=RESOLVER_RESPONSES,
)
def resolve_lot(
    request: Request,
    lot_code: str,
    session: SessionDep,
    runtime: RuntimeDep,
    link_type: LinkTypeQuery = None,
    lang: str | None = None,
) -> Response:
    """The lot named `{id_base}/lot/{lot}` in its events, answered like the GS1 Digital Link resolver: the
    provenance page for a browser, the EPCIS document for `Accept: application/ld+json`, the linkset for
    `Accept: application/linkset+json` (anchored at the identifier itself)."""
    id_base = ledger_id_base(session, runtime.settings.id_base)
    return _resolve(
        request,
        session,
        runtime,
        lot_code,
        gtin=None,
        anchor_of=lambda key: f"{id_base}/lot/{key.code}",
        link_type=link_type,
        lang=lang,
    )
