"""The farmer's pages: sign-in with phone number + PIN, "My lots", sign-out.

A web session is the same kind of token as the API's (``services/auth.py``: 32 random bytes, stored only as
SHA-256, 12 hours), carried in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS). Every form carries a CSRF
token checked on POST:

* signed in, it is an HMAC of the session token keyed by that token itself: only someone who can read the
  HttpOnly cookie can compute it, and it dies with the session (no server secret to configure or rotate);
* on the sign-in form (no session yet) it is double-submitted: a random value in a short-lived cookie and the
  same value in the form, so another site cannot sign a browser in to an account of its choosing.

A missing or wrong token is a 403 page in the page's language. Forms are read without python-multipart: they
are small URL-encoded bodies (and the app's body limit bounds them).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from decimal import Decimal
from typing import Annotated, Final
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from traceability.api.deps import RuntimeDep, SessionDep, client_address
from traceability.domain.states import Role
from traceability.errors import RateLimited, Unauthorized
from traceability.services.auth import TOKEN_TTL, authenticate, sign_in_farmer, sign_out
from traceability.services.lots import farmer_lots
from traceability.web.i18n import pick_lang, translations
from traceability.web.pages import render

router = APIRouter(prefix="/farmer", include_in_schema=False)

SESSION_COOKIE: Final = "trace_session"
LOGIN_CSRF_COOKIE: Final = "trace_login_csrf"
MAX_FORM_BYTES: Final = 4096


def session_csrf(token: str) -> str:
    """The CSRF token of the forms of a signed-in page."""
    return hmac.new(token.encode("utf-8"), b"trace-web-csrf-v1", hashlib.sha256).hexdigest()


def _same(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


async def form_fields(request: Request) -> dict[str, str]:
    """A small URL-encoded form's fields (the first value of each); anything else is an empty form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items()}


FormDep = Annotated[dict[str, str], Depends(form_fields)]
ClientDep = Annotated[str, Depends(client_address)]


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_url(lang: str) -> str:
    return "/farmer/login" + ("?lang=en" if lang == "en" else "")


def _forbidden(request: Request, lang: str) -> Response:
    return _private(
        render(request, "csrf_error.html", lang, {"switch_url": "/farmer/login"}, status_code=403)
    )


def _login_page(
    request: Request, lang: str, *, error: str | None = None, phone: str = "", status_code: int = 200
) -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "farmer_login.html",
        lang,
        {"csrf": csrf, "error": error, "phone": phone},
        status_code=status_code,
    )
    _cookie(response, request, LOGIN_CSRF_COOKIE, csrf, max_age=2 * 3600)
    return _private(response)


@router.get("/login")
def login_form(request: Request, lang: str | None = None) -> Response:
    return _login_page(request, pick_lang(lang))


@router.post("/login")
def login(request: Request, session: SessionDep, form: FormDep, client: ClientDep) -> Response:
    lang = pick_lang(form.get("lang"))
    if not _same(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _forbidden(request, lang)
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
    response = RedirectResponse("/farmer/lots" + ("?lang=en" if lang == "en" else ""), status_code=303)
    _cookie(response, request, SESSION_COOKIE, outcome.token.access_token, int(TOKEN_TTL.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.get("/lots")
def my_lots(request: Request, session: SessionDep, runtime: RuntimeDep, lang: str | None = None) -> Response:
    language = pick_lang(lang)
    token = request.cookies.get(SESSION_COOKIE)
    try:
        principal = authenticate(session, token)
    except Unauthorized:
        principal = None
    if principal is None or principal.role != Role.FARMER or principal.farmer_id is None or token is None:
        response = RedirectResponse(_login_url(language), status_code=303)
        if token:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    mine = farmer_lots(session, principal.farmer_id)
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
    context = {"name": mine.display_name, "lots": lots, "csrf": session_csrf(token)}
    return _private(render(request, "farmer_lots.html", language, context))


def _kg(value: Decimal | None, lang: str) -> str | None:
    return None if value is None else format_decimal(value, format="#,##0.###", locale=lang)


@router.post("/logout")
def logout(request: Request, session: SessionDep, form: FormDep) -> Response:
    lang = pick_lang(form.get("lang"))
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not _same(session_csrf(token), form.get("csrf")):
        return _forbidden(request, lang)
    sign_out(session, token)
    response = RedirectResponse(_login_url(lang), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
