"""Bounded request bodies: anything over ``MAX_BODY_BYTES`` is refused with 413 before a route sees it.

The farmer's two forms that carry a photo (harvest and grading) may send up to ``MAX_PHOTO_FORM_BYTES``: a
phone photo is often 3–8 MB, and ``services.evidence`` takes up to 10 MB. An importer's
``POST /api/v1/verify`` may send up to ``MAX_BUNDLE_BYTES``: the proof bundle of a long lineage (hundreds
of events, each with its EPCIS body and Merkle proof) passes 1 MiB. Every other path keeps 1 MiB."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
MAX_PHOTO_FORM_BYTES = 12 * 1024 * 1024
PHOTO_FORM_PATHS = ("/farmer/record/harvest", "/farmer/record/grading")
MAX_BUNDLE_BYTES = 16 * 1024 * 1024
BUNDLE_PATHS = ("/api/v1/verify",)


class BodyLimit:
    """Pure ASGI middleware. A declared ``Content-Length`` over the limit is refused at once; a body without
    one (chunked) is read up to the limit and refused as soon as it passes it, then replayed to the app."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        larger: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = (
            {
                **dict.fromkeys(PHOTO_FORM_PATHS, MAX_PHOTO_FORM_BYTES),
                **dict.fromkeys(BUNDLE_PATHS, MAX_BUNDLE_BYTES),
            }
            if larger is None
            else dict(larger)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(send, limit)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away: let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        payload = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"the request body is larger than {limit} bytes",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
