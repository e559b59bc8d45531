"""Chat-platform callbacks: WeCom (企业微信) apps and DingTalk (钉钉) robots.

Each callback is verified (signature, decryption, receive id, time window), its message stored in the inbox
(bot/inbox.py, deduplicated by the platform's message id) and answered at once; the engine's replies go out
through the outbox. Nothing is stored for a callback that fails a check.

* ``GET /channels/wecom/callback`` — WeCom's URL check: the decrypted ``echostr`` as the bare body.
* ``POST /channels/wecom/callback`` — a message or event; 200 with an empty body (or an encrypted passive
  reply for an event or an unsupported message type).
* ``POST /channels/dingtalk/callback`` — a robot message; 200 ``{}`` (or an inline reply to a message type the
  robot does not handle).
* ``/channels/{wecom|dingtalk}/{app}/callback`` — the same for one named app of ``channels.yml``.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from bot import replies
from bot.app.deps import services
from bot.app.schemas import ErrorOut
from bot.channels.base import ChannelDisabled
from bot.channels.dingtalk import BadDingTalkSign, DingTalkChannel, verify
from bot.channels.outbound import text
from bot.channels.wecom import EVENTS_WELCOMED, MEDIA_TYPES, WeComChannel
from bot.channels.wecom_crypto import BadSignature, parse_xml
from bot.engine import Services
from bot.errors import MalformedPayload, PayloadTooLarge
from bot.inbox import Inbox
from bot.vocabulary import Channel as ChannelName

router = APIRouter(tags=["platforms"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 503)
}


def _wecom(request: Request) -> WeComChannel:
    adapter = request.app.state.channels.get(ChannelName.WECOM)
    if not isinstance(adapter, WeComChannel):
        raise ChannelDisabled("wecom", "set TRIAGE_WECOM_* or list apps in channels.yml (docs/channels.md)")
    return adapter


def _dingtalk(request: Request) -> DingTalkChannel:
    adapter = request.app.state.channels.get(ChannelName.DINGTALK)
    if not isinstance(adapter, DingTalkChannel):
        raise ChannelDisabled(
            "dingtalk", "set TRIAGE_DINGTALK_APP_KEY and TRIAGE_DINGTALK_APP_SECRET (docs/channels.md)"
        )
    return adapter


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(len(body), limit)
    return bytes(body)


# ------------------------------------------------------------------------------------ WeCom
@router.get("/channels/wecom/callback", response_class=PlainTextResponse, responses=ERRORS)
@router.get("/channels/wecom/{app}/callback", response_class=PlainTextResponse, responses=ERRORS)
async def wecom_verify(
    request: Request,
    msg_signature: Annotated[str, Query()],
    timestamp: Annotated[str, Query()],
    nonce: Annotated[str, Query()],
    echostr: Annotated[str, Query()],
    app: str | None = None,
) -> str:
    """WeCom's URL check when the callback URL is saved: answer the decrypted ``echostr``."""
    adapter = _wecom(request)
    names = [adapter.app(app).name] if app else list(adapter.apps)
    for name in names:
        try:
            return adapter.crypto[name].verify_url(msg_signature, timestamp, nonce, echostr)
        except BadSignature:
            continue
    raise BadSignature("msg_signature does not match: check TRIAGE_WECOM_TOKEN")


@router.post("/channels/wecom/callback", responses=ERRORS)
@router.post("/channels/wecom/{app}/callback", responses=ERRORS)
async def wecom_callback(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    msg_signature: Annotated[str, Query()],
    timestamp: Annotated[str, Query()],
    nonce: Annotated[str, Query()],
    app: str | None = None,
) -> Response:
    adapter = _wecom(request)
    body = await _body(request, svc.settings.max_callback_bytes)
    if app:
        chosen = adapter.app(app)
    else:
        outer = parse_xml(body, svc.settings.max_callback_bytes)
        chosen = adapter.app_for(outer.get("ToUserName", ""), outer.get("AgentID", ""))
    fields = adapter.crypto[chosen.name].decrypt_message(msg_signature, timestamp, nonce, body)
    message = adapter.receive({**fields, "app": chosen.name})
    kind = message.metadata["msg_type"]
    passive = ""
    if kind == "event":
        if message.metadata.get("event") in EVENTS_WELCOMED:
            passive = replies.say("greet", "zh")
    elif kind == "text" or kind in MEDIA_TYPES:
        inbox: Inbox = request.app.state.inbox
        await inbox.submit(message, chosen.name)
    else:
        passive = text("unsupported", "zh")
    if not passive:
        return Response(status_code=200)
    reply = adapter.passive_reply(
        chosen, message.sender_id, passive, str(int(time.time())), secrets.token_hex(8)
    )
    return Response(reply, media_type="application/xml")


# --------------------------------------------------------------------------------- DingTalk
@router.post("/channels/dingtalk/callback", responses=ERRORS)
@router.post("/channels/dingtalk/{app}/callback", responses=ERRORS)
async def dingtalk_callback(
    request: Request, svc: Annotated[Services, Depends(services)], app: str | None = None
) -> JSONResponse:
    adapter = _dingtalk(request)
    body = await _body(request, svc.settings.max_callback_bytes)
    stamp, signature = request.headers.get("timestamp"), request.headers.get("sign")
    candidates = [adapter.app(app)] if app else list(adapter.apps.values())
    chosen = None
    refusal = BadDingTalkSign("the callback's sign does not match: check TRIAGE_DINGTALK_APP_SECRET")
    for candidate in candidates:
        try:
            verify(stamp, signature, candidate.app_secret.get_secret_value())
            chosen = candidate
            break
        except BadDingTalkSign as exc:
            refusal = exc
    if chosen is None:
        raise refusal
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise MalformedPayload(f"the callback body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("the callback body is not a JSON object")
    return JSONResponse(await accept_dingtalk(request.app.state, adapter, chosen.name, payload))


async def accept_dingtalk(
    state: Any, adapter: DingTalkChannel, app: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Store a verified robot message (HTTP callback or Stream frame); the inline answer for the platform."""
    if not adapter.addressed(payload):
        return {}
    message = adapter.receive({**payload, "app": app})
    inbox: Inbox = state.inbox
    await inbox.submit(message, app)  # other types too: the polite reply goes out through the outbox
    return {}
