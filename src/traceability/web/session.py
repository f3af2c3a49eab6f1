"""Web sessions and CSRF, shared by the farmer's and the officer's pages.

A web session is the same kind of token as the API's (``services/auth.py``: 32 random bytes, stored only as
SHA-256, 12 hours), carried in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS). Every form carries a CSRF
token checked on POST:

* signed in, it is an HMAC of the session token keyed by that token itself: only someone who can read the
  HttpOnly cookie can compute it, and it dies with the session (no server secret to configure or rotate);
* on a sign-in form (no session yet) it is double-submitted: a random value in a short-lived cookie and the
  same value in the form, so another site cannot sign a browser in to an account of its choosing.

A missing or wrong token is a 403 page in the page's language. Small forms are URL-encoded and read here
without python-multipart (the app's body limit bounds them); forms with a photo are multipart
(``multipart_fields``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from traceability.api.deps import client_address
from traceability.domain.states import Role
from traceability.errors import Unauthorized
from traceability.services.auth import TOKEN_TTL, Principal, authenticate
from traceability.services.runtime import DbSession
from traceability.web.i18n import pick_lang
from traceability.web.pages import render

SESSION_COOKIE: Final = "trace_session"
LOGIN_CSRF_COOKIE: Final = "trace_login_csrf"
MAX_FORM_BYTES: Final = 16 * 1024
MAX_FORM_FIELDS: Final = 64


def session_csrf(token: str) -> str:
    """The CSRF token of the forms of a signed-in page."""
    return hmac.new(token.encode("utf-8"), b"trace-web-csrf-v1", hashlib.sha256).hexdigest()


def same(expected: str | None, given: str | None) -> bool:
    """Constant-time equality of two non-empty tokens."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


async def form_fields(request: Request) -> dict[str, str]:
    """A small URL-encoded form's fields (the first value of each); anything else is an empty form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items()}


def form_lists(raw: bytes) -> dict[str, list[str]]:
    """Every value of every field of a URL-encoded body (for repeated fields such as pack rows)."""
    try:
        return parse_qs(raw.decode("utf-8"), max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}


FormDep = Annotated[dict[str, str], Depends(form_fields)]
ClientDep = Annotated[str, Depends(client_address)]


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def start_session(response: Response, request: Request, token: str) -> None:
    """Put a new session token in its cookie and drop the sign-in form's CSRF cookie."""
    set_cookie(response, request, SESSION_COOKIE, token, int(TOKEN_TTL.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


def login_csrf(request: Request) -> str:
    """The sign-in form's double-submit value (kept if the browser already has one)."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def keep_login_csrf(response: Response, request: Request, value: str) -> None:
    set_cookie(response, request, LOGIN_CSRF_COOKIE, value, max_age=2 * 3600)


def sign_in_page(
    request: Request, template: str, lang: str, context: Mapping[str, object], *, status_code: int = 200
) -> Response:
    """A sign-in form with its double-submit CSRF value (kept in its cookie), never cached."""
    csrf = login_csrf(request)
    response = render(request, template, lang, {**context, "csrf": csrf}, status_code=status_code)
    keep_login_csrf(response, request, csrf)
    return private(response)


def private(response: Response) -> Response:
    """A page for one person: never cached by the browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def with_lang(path: str, lang: str) -> str:
    """``path`` with ``lang=en`` when the page is English (Thai is the default)."""
    if lang != "en":
        return path
    return path + ("&" if "?" in path else "?") + "lang=en"


def forbidden(request: Request, lang: str, switch_url: str, *, login_path: str = "/farmer/login") -> Response:
    """The 403 page of a form posted without the right CSRF token, leading back to ``login_path``."""
    context = {"switch_url": switch_url, "back_url": with_lang(login_path, lang)}
    return private(render(request, "csrf_error.html", lang, context, status_code=403))


@dataclass(frozen=True, slots=True)
class WebSession:
    """Who is signed in on this request, and the CSRF token of the forms of their pages."""

    principal: Principal
    token: str

    @property
    def csrf(self) -> str:
        return session_csrf(self.token)

    def checks(self, given: str | None) -> bool:
        """Whether a posted form's CSRF token is this session's."""
        return same(self.csrf, given)


def web_session(session: DbSession, request: Request, role: Role) -> WebSession | None:
    """The signed-in ``role`` of this request, or ``None`` (no cookie, an expired or unknown token, or
    another role's session)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = authenticate(session, token)
    except Unauthorized:
        return None
    if principal.role != role:
        return None
    if role == Role.FARMER and principal.farmer_id is None:
        return None
    if role == Role.OFFICER and principal.officer_id is None:
        return None
    return WebSession(principal, token)


def posted(
    session: DbSession, request: Request, form: Mapping[str, str], role: Role, login_path: str
) -> tuple[str, WebSession | Response]:
    """A posted form's page language and the signed-in ``role``'s session, or what a form posted without a
    session (back to sign-in) or without the session's CSRF token (403) gets."""
    lang = pick_lang(form.get("lang"))
    signed_in = web_session(session, request, role)
    if signed_in is None:
        return lang, to_sign_in(request, login_path, lang)
    if not signed_in.checks(form.get("csrf")):
        return lang, forbidden(request, lang, login_path, login_path=login_path)
    return lang, signed_in


def to_sign_in(request: Request, login_path: str, lang: str) -> Response:
    """Back to the sign-in page, forgetting a stale session cookie."""
    response = RedirectResponse(with_lang(login_path, lang), status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response
