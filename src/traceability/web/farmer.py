"""The farmer's pages: sign-in with phone number + PIN, "My lots", sign-out.

Sessions and CSRF tokens are ``web/session.py``'s (shared with the officer's pages).
"""

from __future__ import annotations

import math
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from traceability.api.deps import RuntimeDep, SessionDep
from traceability.domain.states import Role
from traceability.errors import InvalidInput, RateLimited
from traceability.services.auth import sign_in_farmer, sign_out
from traceability.services.lots import farmer_lots
from traceability.web.forms import form_token
from traceability.web.i18n import pick_lang, translations
from traceability.web.pages import render
from traceability.web.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ClientDep,
    FormDep,
    forbidden,
    private,
    same,
    session_csrf,
    sign_in_page,
    start_session,
    to_sign_in,
    web_session,
    with_lang,
)

router = APIRouter(prefix="/farmer", include_in_schema=False)

LOGIN_PATH = "/farmer/login"


def _login_page(
    request: Request, lang: str, *, error: str | None = None, phone: str = "", status_code: int = 200
) -> Response:
    context = {"error": error, "phone": phone}
    return sign_in_page(request, "farmer_login.html", lang, context, status_code=status_code)


@router.get("/login")
def login_form(request: Request, lang: str | None = None) -> Response:
    return _login_page(request, pick_lang(lang))


@router.post("/login")
def login(request: Request, session: SessionDep, form: FormDep, client: ClientDep) -> Response:
    lang = pick_lang(form.get("lang"))
    if not same(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return forbidden(request, lang, LOGIN_PATH)
    _ = translations(lang).gettext
    phone = form.get("phone", "").strip()[:32]
    outcome = sign_in_farmer(session, phone=phone, pin=form.get("pin", "")[:64], client=client)
    # Answered, never raised: the failed attempt must be committed for the throttle to count it.
    if isinstance(outcome.error, RateLimited):
        minutes = max(1, math.ceil(outcome.error.retry_after / 60))
        message = _("The PIN was entered wrongly too many times. Please wait %(minutes)s min and try again.")
        response = _login_page(
            request, lang, error=message % {"minutes": minutes}, phone=phone, status_code=429
        )
        response.headers["Retry-After"] = str(outcome.error.retry_after)
        return response
    if outcome.error is not None or outcome.token is None:
        message = _("Wrong phone number or PIN. Please check them and try again.")
        return _login_page(request, lang, error=message, phone=phone, status_code=401)
    response = RedirectResponse(with_lang("/farmer/lots", lang), status_code=303)
    start_session(response, request, outcome.token.access_token)
    return response


@router.get("/lots")
def my_lots(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    lang: str | None = None,
    recorded: str | None = None,
) -> Response:
    """My lots; ``recorded`` (the event id a form redirects with) shows that the step was saved."""
    language = pick_lang(lang)
    signed_in = web_session(session, request, Role.FARMER)
    if signed_in is None or signed_in.principal.farmer_id is None:
        return to_sign_in(request, LOGIN_PATH, language)
    mine = farmer_lots(session, signed_in.principal.farmer_id)
    local = ZoneInfo(runtime.settings.timezone)
    lots = [
        {
            "code": lot.code,
            "product": lot.product_th if language == "th" else lot.product_en,
            "events": [
                {
                    "step": event.step,
                    "when": event.event_time.astimezone(local),
                    "kg": _kg(event.quantity_kg, language),
                    "anchored": event.anchored,
                    "block": event.block_number,
                }
                for event in lot.events
            ],
        }
        for lot in mine.lots
    ]
    context = {
        "name": mine.display_name,
        "lots": lots,
        "csrf": signed_in.csrf,
        "recorded": _saved(recorded),
    }
    return private(render(request, "farmer_lots.html", language, context))


def _saved(recorded: str | None) -> bool:
    """Whether the page was reached from a form just sent (a well-formed event id, never echoed back)."""
    try:
        form_token(recorded)
    except InvalidInput:
        return False
    return True


def _kg(value: Decimal | None, lang: str) -> str | None:
    return None if value is None else format_decimal(value, format="#,##0.###", locale=lang)


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    lang = pick_lang(form.get("lang"))
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not same(session_csrf(token), form.get("csrf")):
        return forbidden(request, lang, LOGIN_PATH)
    sign_out(session, token)
    response = RedirectResponse(with_lang(LOGIN_PATH, lang), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
