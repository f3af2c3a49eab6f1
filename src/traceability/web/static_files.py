"""The pages' static assets (``web/static/``): named by their content, cached for a year, sent gzipped.

Pages link an asset through ``static_url(name)``, which appends the first hex digits of its SHA-256
(``/static/queue.js?v=3f2a…``). A request naming the current digest may be kept by the phone for a year
(``immutable``: no revalidation round trip on a 3G link); a new release changes the digest and so the URL.
Any other request (no or an old digest) must revalidate, against the same digest as a strong ``ETag``.

A small router rather than Starlette's ``StaticFiles``: that one revalidates every time (ETag and
Last-Modified only) and sends bodies uncompressed, while these few files are read once, hashed and gzipped
once per process, and answered from memory.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
DIGEST_CHARS: Final = 12
LONG_CACHE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
TEXT_TYPES: Final = ("text/", "application/javascript", "image/svg+xml")

router = APIRouter(prefix="/static", include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


@cache
def asset(name: str) -> Asset | None:
    """The file ``name`` directly under ``static/`` (no sub-folders, no dot-files), or ``None``."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = STATIC_DIR / name
    if not path.is_file():
        return None
    body = path.read_bytes()
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    text = media_type.startswith(TEXT_TYPES)
    if text:
        media_type += "; charset=utf-8"
    return Asset(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0) if text else None,
        media_type=media_type,
        digest=hashlib.sha256(body).hexdigest()[:DIGEST_CHARS],
    )


def static_url(name: str) -> str:
    """The URL of a static asset, versioned by its content (a template global)."""
    found = asset(name)
    if found is None:
        raise FileNotFoundError(f"no static asset {name!r} in {STATIC_DIR}")
    return f"/static/{name}?v={found.digest}"


@router.get("/{name}")
def static_file(request: Request, name: str, v: str | None = None) -> Response:
    found = asset(name)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    headers = {
        "ETag": found.etag,
        "Cache-Control": LONG_CACHE if v == found.digest else REVALIDATE,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
