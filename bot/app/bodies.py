"""Request bodies, checked before any route sees them (ASGI middleware).

* **Size.** A declared ``Content-Length`` over the limit is answered 413 before a byte is read; a body
  without one (chunked) is counted as it streams and refused at the first chunk over the limit. The limit
  is ``TRIAGE_MAX_BODY_BYTES`` except on paths given an allowance of their own (``allowances``: a path
  pattern and its limit — the widget's attachment upload takes files up to ``TRIAGE_MAX_ATTACHMENT_BYTES``).
* **Lone surrogates.** JSON may spell a UTF-16 surrogate half alone (``"\\ud800"``); Python decodes it into a
  string that cannot be encoded, so it would fail later — in Redis, in a log line, in a response — as a
  500. A JSON body with one is answered 422 here, in the shape of FastAPI's validation errors, and never
  logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.app.errors import error_response, validation_response
from bot.errors import PayloadTooLarge

# A surrogate escape (\uD800-\uDFFF): only bodies with one are decoded here.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
LONE_SURROGATE = (
    "the body contains an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF alone), which is not text; "
    "send valid Unicode"
)


def has_lone_surrogate(body: bytes) -> bool:
    """Whether a JSON ``body`` decodes to a string with half a surrogate pair (pairs are fine)."""
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON: the route's own parsing says what is wrong
    try:
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class BodyGuard:
    """Refuses request bodies over their path's limit (413) and JSON bodies with lone surrogates (422).

    ``limit`` applies everywhere but on the paths ``allowances`` names: ``(regex, bytes)`` pairs, the first
    whose pattern matches the request path giving its limit."""

    def __init__(self, app: ASGIApp, limit: int, allowances: Iterable[tuple[str, int]] = ()) -> None:
        self.app, self.default = app, limit
        self.allowances = [(re.compile(pattern), size) for pattern, size in allowances]

    def limit_for(self, path: str) -> int:
        return next((size for pattern, size in self.allowances if pattern.search(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            await error_response(PayloadTooLarge(int(declared), limit))(scope, receive, send)
            return
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        # Every route reads its body whole, so reading it here first costs nothing more.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before it finished sending: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await error_response(PayloadTooLarge(size, limit))(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if (kind == b"application/json" or kind.endswith(b"+json")) and has_lone_surrogate(body):
            errors = [{"loc": ["body"], "msg": LONE_SURROGATE, "type": "lone_surrogate"}]
            await validation_response(errors)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then whatever the client sends next (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
