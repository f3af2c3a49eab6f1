"""Security headers on every HTTP response (issue 10): a pure-ASGI middleware.

Every response gets, unless its route already set the header:

* ``Content-Security-Policy``: ``default-src 'self'``; ``script-src 'self'`` (no inline script anywhere: the
  farmer's offline queue is ``/static/queue.js``); ``style-src 'self'`` plus the SHA-256 of each ``<style>``
  block of the templates. The pages keep their CSS inline on purpose: a provenance page scanned on a 3G
  phone is one round trip, and the label sheet prints with nothing fetched at all (its test asserts that).
  The blocks are plain text (no Jinja inside), so their hashes are computed once from the template files
  when the app is built and always match what is rendered; there is no inline ``style=`` attribute left.
  ``img-src 'self' data:`` (the label sheet's empty ``data:,`` icon), ``object-src 'none'``,
  ``base-uri 'self'``, ``form-action 'self'``, ``frame-ancestors 'none'``. JSON and files get the same policy:
  it is harmless on them and keeps them out of frames.
* ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY`` (frame-ancestors for old browsers).
* ``Referrer-Policy: strict-origin-when-cross-origin``: another site sees at most this origin, never a
  path (a provenance URL holds only a public lot code, a farmer's page path nothing secret either); the
  HTML templates narrow it further with ``<meta name="referrer" content="same-origin">``.
* ``Permissions-Policy`` switching off camera, microphone, geolocation and the like: the farmer's photo
  field is ``<input type="file" capture>``, which opens the phone's camera app and needs no permission.

The API documentation (``/docs``, its OAuth2 redirect, ``/redoc``) is FastAPI's HTML: an inline script and
scripts, styles and fonts from a CDN. Those paths alone get a wider policy: the CDN hosts, and the SHA-256 of
the inline scripts actually in the response (the body, a few kB, is read to compute them), so still no
``'unsafe-inline'`` script. Their styles allow ``'unsafe-inline'``: Swagger UI and ReDoc insert style
elements at run time, and a style cannot run code.

Not ``BaseHTTPMiddleware``: a cached provenance page is answered on the event loop, and this adds only a
header check over a prepared list of byte pairs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
STYLE_BLOCK: Final = re.compile(r"<style>(.*?)</style>", re.S)
INLINE_SCRIPT: Final = re.compile(rb"<script>(.*?)</script>", re.S)

REFERRER_POLICY: Final = "strict-origin-when-cross-origin"
PERMISSIONS_POLICY: Final = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), hid=(), "
    "midi=(), magnetometer=(), gyroscope=(), accelerometer=(), display-capture=(), interest-cohort=()"
)
DOCS_CDN: Final = "https://cdn.jsdelivr.net"


def csp_hash(text: str | bytes) -> str:
    """A CSP source expression for an inline element's exact text (UTF-8)."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return "'sha256-" + base64.b64encode(hashlib.sha256(raw).digest()).decode("ascii") + "'"


@cache
def template_style_hashes(directory: Path = TEMPLATES_DIR) -> tuple[str, ...]:
    """The CSP hashes of every ``<style>`` block of the templates, in a stable order."""
    found = {
        csp_hash(block)
        for path in sorted(directory.glob("*.html"))
        for block in STYLE_BLOCK.findall(path.read_text(encoding="utf-8"))
    }
    return tuple(sorted(found))


def page_policy(style_hashes: Iterable[str]) -> str:
    """The Content-Security-Policy of every response but the API documentation's."""
    styles = " ".join(["'self'", *style_hashes])
    return (
        "default-src 'self'; script-src 'self'; "
        f"style-src {styles}; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def docs_policy(script_hashes: Iterable[str]) -> str:
    """The wider policy of FastAPI's Swagger UI and ReDoc pages (CDN assets, their own inline scripts)."""
    scripts = " ".join(["'self'", DOCS_CDN, *script_hashes])
    return (
        f"default-src 'self'; script-src {scripts}; "
        f"style-src 'self' {DOCS_CDN} https://fonts.googleapis.com 'unsafe-inline'; "
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
        "font-src 'self' https://fonts.gstatic.com; connect-src 'self'; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _common(policy: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy.encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", REFERRER_POLICY.encode("latin-1")),
        (b"permissions-policy", PERMISSIONS_POLICY.encode("latin-1")),
    ]


def _with_defaults(message: Message, defaults: list[tuple[bytes, bytes]]) -> None:
    """Add to a ``http.response.start`` message each default header its route did not set."""
    headers = list(message.get("headers", []))
    present = {bytes(name).lower() for name, _ in headers}
    headers.extend(pair for pair in defaults if pair[0] not in present)
    message["headers"] = headers


class SecurityHeaders:
    """Adds the security headers to every HTTP response; ``docs_paths`` get the documentation's policy."""

    def __init__(
        self,
        app: ASGIApp,
        docs_paths: Iterable[str] = ("/docs", "/docs/oauth2-redirect", "/redoc"),
        style_hashes: Iterable[str] | None = None,
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        hashes = template_style_hashes() if style_hashes is None else tuple(style_hashes)
        self.headers = _common(page_policy(hashes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.docs_paths:
            await self._docs(scope, receive, send)
            return
        defaults = self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _with_defaults(message, defaults)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small) documentation page until its body is known, then hash its inline scripts."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            hashes = sorted({csp_hash(script) for script in INLINE_SCRIPT.findall(body)})
            _with_defaults(start, _common(docs_policy(hashes)))
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, hold)
