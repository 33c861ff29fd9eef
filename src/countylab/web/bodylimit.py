"""Request bodies are limited while they stream in, not after they were read.

A pure ASGI middleware: it wraps ``receive`` and counts the bytes of each ``http.request``
message.  A body announced larger than the limit (``Content-Length``) is refused before a
byte of it is read; a body without a length (chunked) or one that lies about it is refused as
soon as the running total crosses the limit — the rest is never read, the route never runs (or
its read of the body fails at once), and the answer is a ``413`` with a bilingual message.

Limits are per route class, because an upload is legitimately larger than a JSON call:

==============  ==============================================================  ===================
class           paths                                                           setting
==============  ==============================================================  ===================
upload          dataset uploads, new versions, pushed rows                      ``upload_max_mb``
code            job submissions (``/projects/<id>/jobs``)                       ``body_code_max_mb``
everything else JSON and form routes                                            ``body_max_mb``
==============  ==============================================================  ===================
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from countylab.errors import TooLarge
from countylab.web import errors

_UPLOAD = re.compile(r"^(/api)?/datasets/\d+/(uploads|upload|versions|rows)(/|$)")
_CODE = re.compile(r"^(/api)?/projects/\d+/jobs/?$")
MIB = 1024 * 1024


class BodyTooLarge(TooLarge):
    """Raised from ``receive`` when the body crosses the limit: a route that reads the body
    fails at once, and the lab's error handler answers 413 with the bilingual message."""

    def __init__(self, limit: int, kind: str) -> None:
        mb = f"{limit / MIB:g}"
        super().__init__(
            f"请求体超过 {mb} MiB 的上限",
            f"the request body exceeds the {mb} MiB limit",
            reason="too_large",
            limit_bytes=limit,
            route_class=kind,
        )


def limit_for(path: str, *, default: int, upload: int, code: int) -> tuple[str, int]:
    if _UPLOAD.match(path):
        return "upload", upload
    if _CODE.match(path):
        return "code", code
    return "default", default


class BodyLimit:
    """Refuse request bodies over the limit of their route class, while streaming."""

    def __init__(self, app: ASGIApp, *, default_bytes: int, upload_bytes: int, code_bytes: int) -> None:
        self.app = app
        self.default, self.upload, self.code = default_bytes, upload_bytes, code_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind, limit = limit_for(scope["path"], default=self.default, upload=self.upload, code=self.code)
        length = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"), None)
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                announced = -1
            if announced > limit:
                await _refuse(scope, send, limit, kind)
                return
        seen = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    raise BodyTooLarge(limit, kind)
            return message

        swallow = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, swallow
            if message["type"] == "http.response.start":
                started = True
                if refused and message["status"] != 413:  # the route turned it into a 400 or 500
                    swallow = True
                    await _refuse(scope, send, limit, kind)
                    return
            if swallow:
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, limit, kind)
        except Exception:
            if refused and not started:  # a route turned the refusal into another error
                await _refuse(scope, send, limit, kind)
                return
            raise


async def _refuse(scope: Scope, send: Send, limit: int, kind: str) -> None:
    from fastapi.responses import JSONResponse

    mb = f"{limit / MIB:g}"
    body = errors.error_body(
        "too_large",
        f"请求体超过 {mb} MiB 的上限 / the request body exceeds the {mb} MiB limit",
        {"reason": "too_large", "limit_bytes": limit, "route_class": kind},
    )
    response = JSONResponse(body, 413, headers={"Connection": "close"})

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)
