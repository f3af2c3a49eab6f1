"""The อปท. officer's pages: sign-in (username + password), the review queue of their authority's lots, a
lot's whole history with its verification, and the forms that certify a lot and revoke a certification.

Certifying needs the officer's signing passphrase on every form: the server keeps the officer's key only as a
keystore encrypted with it, so it cannot certify alone (``services/certify.py``). The certify form carries a
one-time token (its ``event_id``): posted twice, it yields one certification. Sessions and CSRF tokens are
``web/session.py``'s, shared with the farmer's pages; a farmer's session is not an officer's, so it gets the
sign-in page, never the data.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from traceability.api.deps import RuntimeDep, SessionDep
from traceability.domain.findings import Check, Severity, Verdict
from traceability.domain.states import Role
from traceability.errors import ChainError, RateLimited, TraceabilityError
from traceability.services.auth import sign_in_officer, sign_out
from traceability.services.certify import (
    MAX_REMARK_CHARS,
    MAX_SCOPE_CHARS,
    certificate_document,
    certificate_hash,
    certificate_note,
    certify_lot,
    revoke_certification,
)
from traceability.services.ledger import verify_lot
from traceability.services.review import (
    LotReview,
    OfficerDesk,
    ledger_id_base,
    officer_desk,
    officer_lot,
    review_queue,
)
from traceability.services.risk import lot_risk, risk_queue
from traceability.services.runtime import DbSession, Runtime
from traceability.web.forms import new_form_token
from traceability.web.i18n import pick_lang, translations
from traceability.web.pages import render
from traceability.web.risk_text import risk_view
from traceability.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ClientDep,
    FormDep,
    WebSession,
    forbidden,
    posted,
    private,
    same,
    session_csrf,
    sign_in_page,
    start_session,
    to_sign_in,
    web_session,
    with_lang,
)

router = APIRouter(prefix="/officer", include_in_schema=False)

LOGIN_PATH = "/officer/login"
QUEUE_PATH = "/officer"
RISK_PATH = "/officer/risk"
STANDARDS = ("Organic Thailand", "GAP", "PGS", "Thai Hom Mali Rice GI")
"""What an officer certifies against (the value recorded in the event, shown translated)."""
MAX_VALIDITY = timedelta(days=5 * 366)
Gettext = Callable[[str], str]


def _standard_labels(_: Gettext) -> dict[str, str]:
    return {
        "Organic Thailand": _("Organic Thailand"),
        "GAP": _("GAP (Good Agricultural Practice)"),
        "PGS": _("PGS (Participatory Guarantee System)"),
        "Thai Hom Mali Rice GI": _("Thai Hom Mali Rice GI"),
    }


# ------------------------------------------------------------------ sign-in and sign-out


def _login_page(
    request: Request, lang: str, *, error: str | None = None, username: str = "", status_code: int = 200
) -> Response:
    context = {"error": error, "username": username, "switch_url": LOGIN_PATH}
    return sign_in_page(request, "officer_login.html", lang, context, status_code=status_code)


@router.get("/login")
def login_form(request: Request, lang: str | None = None) -> Response:
    return _login_page(request, pick_lang(lang))


@router.post("/login")
def login(request: Request, session: SessionDep, form: FormDep, client: ClientDep) -> Response:
    lang = pick_lang(form.get("lang"))
    if not same(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return forbidden(request, lang, LOGIN_PATH, login_path=LOGIN_PATH)
    _ = translations(lang).gettext
    username = form.get("username", "").strip()[:64]
    outcome = sign_in_officer(
        session, username=username, password=form.get("password", "")[:256], client=client
    )
    # Answered, never raised: the failed attempt must be committed for the throttle to count it.
    error = outcome.error
    if isinstance(error, RateLimited):
        minutes = max(1, math.ceil(error.retry_after / 60))
        message = _(
            "The password was entered wrongly too many times. Please wait %(minutes)s min and try again."
        )
        response = _login_page(
            request, lang, error=message % {"minutes": minutes}, username=username, status_code=429
        )
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if error is not None and error.code == "account_inactive":
        message = _(
            "This officer account cannot be used (revoked or not yet active). Please contact your authority."
        )
        return _login_page(request, lang, error=message, username=username, status_code=403)
    if error is not None or outcome.token is None:
        message = _("Wrong username or password. Please check them and try again.")
        return _login_page(request, lang, error=message, username=username, status_code=401)
    response = RedirectResponse(with_lang(QUEUE_PATH, lang), status_code=303)
    start_session(response, request, outcome.token.access_token)
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    lang = pick_lang(form.get("lang"))
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not same(session_csrf(token), form.get("csrf")):
        return forbidden(request, lang, LOGIN_PATH, login_path=LOGIN_PATH)
    sign_out(session, token)
    response = RedirectResponse(with_lang(LOGIN_PATH, lang), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------ the queue


def _nav(signed_in: WebSession, desk: OfficerDesk, lang: str) -> dict[str, Any]:
    return {
        "csrf": signed_in.csrf,
        "officer": desk.display_name,
        "authority": desk.authority_th if lang == "th" else desk.authority_en,
    }


@router.get("")
def queue(request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None) -> Response:
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.OFFICER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, language)
    desk = officer_desk(session, signed_in.principal.officer_id or 0)
    local = ZoneInfo(runtime.settings.timezone)
    authority_id = signed_in.principal.authority_id
    # One assessment for every lot (cached for a minute): a dict lookup per lot, never a query per lot.
    scores = {e.lot_code: e.risk for e in risk_queue(session, authority_id, runtime.settings.evidence_dir)}
    lots = [
        {
            "code": lot.code,
            "risk": {"score": scores[lot.code].score, "level": scores[lot.code].level.value}
            if lot.code in scores
            else None,
            "product": lot.product_th if language == "th" else lot.product_en,
            "village": lot.village_th if language == "th" else lot.village_en,
            "step": lot.last_step,
            "when": lot.last_time.astimezone(local) if lot.last_time else None,
            "waiting": lot.waiting,
            "certification": lot.certification,
            "until": lot.certified_until.astimezone(local) if lot.certified_until else None,
            "review": lot.needs_review,
        }
        for lot in review_queue(session, authority_id)
    ]
    context = {**_nav(signed_in, desk, language), "lots": lots, "switch_url": QUEUE_PATH}
    return private(render(request, "officer_queue.html", language, context))


# ------------------------------------------------------------------ origin risk


@router.get("/risk")
def risk(request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None) -> Response:
    """The authority's lots by origin risk (สวมสิทธิ์), highest first, each reason with its figures: where an
    officer should look first. Lots with no signal are only counted and listed at the end."""
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.OFFICER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, language)
    desk = officer_desk(session, signed_in.principal.officer_id or 0)
    gettext = translations(language).gettext
    flagged: list[dict[str, Any]] = []
    clean: list[dict[str, Any]] = []
    for entry in risk_queue(session, signed_in.principal.authority_id, runtime.settings.evidence_dir):
        row = {
            "code": entry.lot_code,
            "product": entry.product_th if language == "th" else entry.product_en,
            "risk": risk_view(entry.risk, language, gettext),
        }
        (flagged if entry.risk.score > 0 or entry.risk.signals else clean).append(row)
    context = {**_nav(signed_in, desk, language), "flagged": flagged, "clean": clean, "switch_url": RISK_PATH}
    return private(render(request, "officer_risk.html", language, context))


# ------------------------------------------------------------------ one lot


def _lot_path(code: str) -> str:
    return f"/officer/lots/{code}"


@router.get("/lots/{lot_code}")
def lot_page(
    request: Request,
    lot_code: str,
    session: SessionDep,
    runtime: RuntimeDep,
    lang: str | None = None,
    done: str | None = None,
) -> Response:
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.OFFICER)
    if signed_in is None:
        return to_sign_in(request, LOGIN_PATH, language)
    notice = done if done in ("certified", "revoked") else None
    return _lot_response(request, session, runtime, signed_in, language, lot_code, notice=notice)


def _lot_response(
    request: Request,
    session: DbSession,
    runtime: Runtime,
    signed_in: WebSession,
    lang: str,
    lot_code: str,
    *,
    certify_form: Mapping[str, str] | None = None,
    certify_error: str | None = None,
    revoke_error: tuple[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    """The lot page; a refused form re-rendered with its message and the values typed (never the
    passphrase)."""
    _ = translations(lang).gettext
    desk = officer_desk(session, signed_in.principal.officer_id or 0)
    base = {**_nav(signed_in, desk, lang), "switch_url": _lot_path(lot_code.strip().upper())}
    try:
        review = officer_lot(session, signed_in.principal.authority_id, lot_code)
    except TraceabilityError as exc:
        if exc.status_code not in (403, 404):
            raise
        context = {**base, "denied": exc.status_code, "code": lot_code[:20]}
        return private(render(request, "officer_lot.html", lang, context, status_code=exc.status_code))
    local = ZoneInfo(runtime.settings.timezone)
    typed = dict(certify_form or {})
    default_until = datetime.now(local).date() + timedelta(days=365)
    context = {
        **base,
        "denied": None,
        "lot": _lot_context(review, lang, local),
        "verdict": _verdict_context(session, runtime, review.code, lang),
        "standards": _standard_labels(_),
        "form": {
            "token": typed.get("token") or new_form_token(),
            "standard": typed.get("standard", STANDARDS[0]),
            "scope": typed.get("scope", ""),
            "valid_until": typed.get("valid_until") or default_until.isoformat(),
            "valid_until_day": _day_or_none(typed["valid_until"])
            if "valid_until" in typed
            else default_until,
            "note": typed.get("note", ""),
            "min_date": (datetime.now(local).date() + timedelta(days=1)).isoformat(),
        },
        "certify_error": certify_error,
        "revoke_error": revoke_error,
        "notice": notice,
    }
    return private(render(request, "officer_lot.html", lang, context, status_code=status_code))


def _day_or_none(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()[:10])
    except ValueError:
        return None


def _lot_context(review: LotReview, lang: str, local: ZoneInfo) -> dict[str, Any]:
    th = lang == "th"
    return {
        "code": review.code,
        "product": review.product_th if th else review.product_en,
        "village": review.village_th if th else review.village_en,
        "events": [
            {
                "step": e.step,
                "when": e.event_time.astimezone(local),
                "lots": e.lots,
                "kg": None
                if e.quantity_kg is None
                else format_decimal(e.quantity_kg, "#,##0.###", locale=lang),
                "place": e.place,
                "village": e.village_th if th else e.village_en,
                "anchored": e.anchored,
                "block": e.block_number,
                "detail": e.detail,
            }
            for e in review.events
        ],
        "certifications": [
            {
                "id": c.cert_id,
                "standard": c.standard,
                "note": c.note,
                "issued": c.issued.astimezone(local),
                "expires": c.expires.astimezone(local) if c.expires else None,
                "state": c.state,
                "reason": c.revoked_reason,
            }
            for c in review.certifications
        ],
    }


def _verdict_context(session: DbSession, runtime: Runtime, code: str, lang: str) -> dict[str, Any]:
    """The verification in plain words, or why it could not be done (the chain did not answer), and the
    lot's origin risk with its reasons, apart from the chain checks."""
    gettext = translations(lang).gettext
    try:
        verdict: Verdict = verify_lot(
            session,
            runtime.registry,
            code,
            confirmations=runtime.settings.confirmations,
            yield_tolerance=runtime.settings.yield_tolerance,
            evidence_dir=runtime.settings.evidence_dir,
        )
    except ChainError:
        # The origin risk reads the ledger only: the officer still sees it while the chain is down.
        risk = lot_risk(session, code, runtime.settings.evidence_dir)
        return {"status": "unavailable", "findings": [], "risk": risk_view(risk, lang, gettext)}
    # Origin-risk signals are warnings of the verdict too; here they have their own block, with figures.
    chain = [f for f in verdict.findings if f.code.check is not Check.ORIGIN_RISK]
    status = verdict.status.value
    if status == "warning" and all(f.severity is not Severity.WARNING for f in chain):
        status = "verified"  # every warning was an origin-risk signal: the chain checks themselves passed
    return {
        "status": status,
        "findings": [
            {"error": f.severity is Severity.ERROR, "message": f.th if lang == "th" else f.en} for f in chain
        ],
        "risk": risk_view(verdict.risk, lang, gettext),
    }


# ------------------------------------------------------------------ certify and revoke


def _end_of_day(value: str, local: ZoneInfo) -> int | None:
    """A ``date`` field's value as the unix time its day ends in the service's zone (None if not a date)."""
    day = _day_or_none(value)
    return None if day is None else int(datetime.combine(day, time(23, 59, 59), tzinfo=local).timestamp())


def _certify_problem(form: Mapping[str, str], local: ZoneInfo, _: Gettext) -> str | None:
    """What a person must fix in the certify form before anything is signed (None if nothing)."""
    try:
        uuid.UUID(form.get("token", ""))
    except ValueError:
        return _("This form has expired. Please fill it in again.")
    if form.get("standard") not in STANDARDS:
        return _("Please choose the standard.")
    expires = _end_of_day(form.get("valid_until", ""), local)
    now = datetime.now(local)
    if expires is None or expires <= now.timestamp() or expires > (now + MAX_VALIDITY).timestamp():
        return _("Please give a valid-until date after today and within five years.")
    if (
        len(form.get("scope", "").strip()) > MAX_SCOPE_CHARS
        or len(form.get("note", "").strip()) > MAX_REMARK_CHARS
    ):
        return _("The scope may have at most 200 characters and the note at most 280.")
    if not form.get("passphrase"):
        return _("Please enter your signing passphrase.")
    return None


def _refusal(exc: TraceabilityError, _: Gettext) -> str:
    """A refused certification or revocation in the officer's words."""
    if exc.code == "wrong_passphrase":
        return _("The signing passphrase is wrong. Nothing was signed or sent.")
    if exc.code == "officer_not_valid":
        return _("Your officer key is not valid on the blockchain now (revoked or not yet begun).")
    if exc.code == "not_your_lot":
        return _("This lot belongs to another local authority: you cannot certify it.")
    return _("The request was refused: %(why)s") % {"why": exc.message}


def _chain_message(exc: TraceabilityError, _: Gettext) -> str:
    if exc.code == "chain_op_pending":
        return _("The certification is signed and recorded; the blockchain has not confirmed it yet.")
    return _("The blockchain could not be reached or refused the transaction. Please try again later.")


@router.post("/lots/{lot_code}/certify")
def certify(
    request: Request, lot_code: str, session: SessionDep, runtime: RuntimeDep, form: FormDep
) -> Response:
    lang, signed_in = posted(session, request, form, Role.OFFICER, LOGIN_PATH)
    if isinstance(signed_in, Response):
        return signed_in
    _ = translations(lang).gettext
    local = ZoneInfo(runtime.settings.timezone)
    code = lot_code.strip().upper()

    def again(message: str, status_code: int) -> Response:
        return _lot_response(
            request,
            session,
            runtime,
            signed_in,
            lang,
            code,
            certify_form=form,
            certify_error=message,
            status_code=status_code,
        )

    problem = _certify_problem(form, local, _)
    if problem is not None:
        return again(problem, 422)
    desk = officer_desk(session, signed_in.principal.officer_id or 0)
    expires = _end_of_day(form["valid_until"], local) or 0
    try:
        note = certificate_note(form.get("scope"), form.get("note"))
        document = certificate_document(
            lot_code=code,
            authority_code=desk.authority_code,
            standard=form["standard"],
            expires=expires,
            note=note,
        )
        certify_lot(
            runtime.sessions,
            runtime.registry,
            officer_username=desk.username,
            passphrase=form["passphrase"],
            lot_code=code,
            standard=form["standard"],
            certificate_hash=certificate_hash(document),
            place_id=desk.authority_code,
            id_base=ledger_id_base(session, runtime.settings.id_base),
            expires=expires,
            note=note,
            event_id=uuid.UUID(form["token"]),
            tz=runtime.settings.timezone,
        )
    except ChainError as exc:
        return again(_chain_message(exc, _), exc.status_code)
    except TraceabilityError as exc:
        if exc.code == "not_your_lot":
            return _lot_response(request, session, runtime, signed_in, lang, code, status_code=403)
        return again(_refusal(exc, _), 422 if exc.code == "wrong_passphrase" else exc.status_code)
    return RedirectResponse(with_lang(_lot_path(code) + "?done=certified", lang), status_code=303)


@router.post("/lots/{lot_code}/revoke")
def revoke(
    request: Request, lot_code: str, session: SessionDep, runtime: RuntimeDep, form: FormDep
) -> Response:
    lang, signed_in = posted(session, request, form, Role.OFFICER, LOGIN_PATH)
    if isinstance(signed_in, Response):
        return signed_in
    _ = translations(lang).gettext
    code = lot_code.strip().upper()
    cert_id = form.get("cert_id", "")

    def again(message: str, status_code: int) -> Response:
        return _lot_response(
            request,
            session,
            runtime,
            signed_in,
            lang,
            code,
            revoke_error=(cert_id, message),
            status_code=status_code,
        )

    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 300:
        return again(_("Please give the reason for revoking (at most 300 characters)."), 422)
    if not form.get("passphrase"):
        return again(_("Please enter your signing passphrase."), 422)
    try:
        review = officer_lot(session, signed_in.principal.authority_id, code)
    except TraceabilityError as exc:
        return _lot_response(request, session, runtime, signed_in, lang, code, status_code=exc.status_code)
    states = {c.cert_id: c.state for c in review.certifications}
    if states.get(cert_id) == "revoked":  # a second tap, or the browser's resend: nothing more to do
        return RedirectResponse(with_lang(_lot_path(code), lang), status_code=303)
    if states.get(cert_id) != "active":
        return again(_("This certification is not active on this lot."), 404)
    desk = officer_desk(session, signed_in.principal.officer_id or 0)
    try:
        revoke_certification(
            runtime.sessions,
            runtime.registry,
            officer_username=desk.username,
            passphrase=form["passphrase"],
            cert_id=cert_id,
            reason=reason,
            place_id=desk.authority_code,
            id_base=ledger_id_base(session, runtime.settings.id_base),
            tz=runtime.settings.timezone,
        )
    except ChainError as exc:
        return again(_chain_message(exc, _), exc.status_code)
    except TraceabilityError as exc:
        if exc.status_code == 409:  # revoked already, or being revoked: a second tap changes nothing
            return RedirectResponse(with_lang(_lot_path(code), lang), status_code=303)
        return again(_refusal(exc, _), 422 if exc.code == "wrong_passphrase" else exc.status_code)
    return RedirectResponse(with_lang(_lot_path(code) + "?done=revoked", lang), status_code=303)
