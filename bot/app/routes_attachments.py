"""Files the user attaches from the widget: upload with the conversation's token, read back with it.

``POST /api/v1/conversations/{id}/attachments`` (multipart, field ``file``) keeps the file in the attachment
store (``bot.store.attachments``, the same one WeCom/DingTalk media use) and appends an ``attachment`` event
to the conversation's stream; ``GET`` of the returned ``url`` serves the bytes to the conversation's user.
The desk serves the same path to agents: a request whose token does not open the conversation is handed to
the next route for the path when the app has one (the handoff gateway's), else refused with 401.

The type is sniffed from the content (``bot.filetypes``); served files are never pages: images inline,
everything else as a download, always with ``nosniff`` and a sandboxing CSP.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from bot import filetypes
from bot.app.deps import bearer, check_token, limits, services
from bot.app.schemas import ErrorOut
from bot.engine import Services
from bot.errors import AuthError, InputError, NotFound, PayloadTooLarge, UnsupportedMediaType
from bot.store.attachments import AttachmentStore
from bot.store.conversations import ConversationNotFound
from bot.store.rates import RateLimits

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["attachments"])
PATH = "/conversations/{conversation_id}/attachments"
FILE_PATH = PATH + "/{attachment_id}"
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the client_msg_id field around the file
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing token, or not this conversation's"},
    404: {"model": ErrorOut, "description": "Unknown conversation or attachment"},
}


def body_allowance(max_attachment_bytes: int) -> tuple[str, int]:
    """The request-body allowance of the upload route (a path pattern and bytes) for ``BodyGuard``."""
    return r"^/api/v1/conversations/[^/]+/attachments$", max_attachment_bytes + MULTIPART_OVERHEAD


def _store(svc: Services) -> AttachmentStore:
    return AttachmentStore.open(svc.store, svc.settings)


async def _conversation(svc: Services, conversation_id: str) -> dict[str, str]:
    conversation = await svc.store.get(conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


@router.post(
    PATH,
    status_code=201,
    responses={
        **ERRORS,
        413: {"model": ErrorOut, "description": "Over TRIAGE_MAX_ATTACHMENT_BYTES"},
        415: {
            "model": ErrorOut,
            "description": "Not png, jpg, pdf, ofd, xml, txt or log (sniffed from content)",
        },
        422: {"model": ErrorOut, "description": "No 'file' field"},
        429: {"model": ErrorOut, "description": "Too many messages in this conversation"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "client_msg_id": {"type": "string", "maxLength": 128},
                        },
                    }
                }
            },
        }
    },
)
async def upload(
    conversation_id: str,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    rates: Annotated[RateLimits, Depends(limits)],
    token: Annotated[str, Depends(bearer)],
) -> dict[str, Any]:
    """Attach a file to the conversation (multipart field ``file``; optional ``client_msg_id`` comes back
    in the event). Returns ``{attachment_id, url, content_type, size}``; the stream gets an ``attachment``
    event. The token is checked before the body is parsed."""
    check_token(await _conversation(svc, conversation_id), token)
    await rates.message(conversation_id)  # an upload counts as a message
    limit = svc.settings.max_attachment_bytes
    async with request.form(max_files=1, max_fields=2) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InputError("send the file as the multipart field 'file'")
        content = await file.read(limit + 1)
        filename = file.filename or "attachment"
        client_msg_id = str(form.get("client_msg_id") or "")[:128]
    if len(content) > limit:
        raise PayloadTooLarge(len(content), limit)
    try:
        kind = filetypes.sniff(content, filename)
    except filetypes.NotAllowed as exc:
        raise UnsupportedMediaType(str(exc)) from exc
    saved = await _store(svc).save(
        conversation_id, content, kind.content_type, filetypes.safe_filename(filename, kind)
    )
    url = f"/api/v1/conversations/{conversation_id}/attachments/{saved.attachment_id}"
    event = {
        "type": "attachment",
        "role": "user",
        "kind": "image" if kind.image else "file",
        "attachment_id": saved.attachment_id,
        "filename": saved.filename,
        "content_type": saved.content_type,
        "size": saved.size,
        "url": url,
        "channel": "web",
    }
    if client_msg_id:
        event["client_msg_id"] = client_msg_id
    await svc.store.append(conversation_id, event)
    logger.info(
        "conversation %s: attachment %s, %s, %d bytes",
        conversation_id,
        saved.attachment_id,
        kind.content_type,
        saved.size,
    )
    return {
        "attachment_id": saved.attachment_id,
        "url": url,
        "content_type": saved.content_type,
        "size": saved.size,
    }


@router.get(
    FILE_PATH,
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
async def download(
    conversation_id: str, attachment_id: str, request: Request, svc: Annotated[Services, Depends(services)]
) -> Response:
    """The attachment's bytes, to the conversation's user (its token). Images inline, anything else as a
    download; never rendered as a page. Agents' tokens are served by the desk's route for this path."""
    try:
        token = await bearer(request)
        check_token(await _conversation(svc, conversation_id), token)
    except (AuthError, ConversationNotFound):
        if (desk := _next_route(request)) is not None:
            return desk
        raise
    found = await _store(svc).get(conversation_id, attachment_id)
    if found is None:
        raise NotFound(f"no attachment {attachment_id!r} in conversation {conversation_id}")
    inline = found.content_type in (filetypes.PNG.content_type, filetypes.JPEG.content_type)
    quoted = urllib.parse.quote(found.filename)
    return Response(
        found.content,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


class _Handover(Response):
    """A response that lets another route answer the request (the desk's, for agents' tokens)."""

    def __init__(self, route: Any, child_scope: dict[str, Any]) -> None:
        super().__init__()
        self.route, self.child_scope = route, child_scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.route.handle({**scope, **self.child_scope}, receive, send)


def _next_route(request: Request) -> Response | None:
    """The route after this one that fully matches the request (path and method), if the app has one."""
    seen = False
    for route in request.app.router.routes:
        match, child = route.matches(request.scope)
        if match is not Match.FULL:
            continue
        if not seen:  # the first full match is the one the router chose: this route (or its router)
            seen = True
            continue
        return _Handover(route, child)
    return None
