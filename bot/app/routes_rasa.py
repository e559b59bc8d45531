"""Rasa-compatible endpoints, so existing Rasa clients and scripts work unchanged:
``POST /webhooks/rest/webhook`` (the REST channel), ``POST /webhooks/callback/webhook`` (the callback
channel: replies are POSTed to ``TRIAGE_RASA_CALLBACK_URL`` by the outbox) and ``POST /model/parse``.

The sender is whatever the caller says it is, so every one of them takes the shared secret
``TRIAGE_RASA_WEBHOOK_TOKEN`` the way Rasa's own server takes its ``--auth-token``: ``?token=`` or
``Authorization: Bearer``. With no secret configured they are off (404)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from bot.app.deps import engine, limits, services
from bot.app.schemas import ErrorOut, ParseIn, RasaMessageIn, RasaReplyOut
from bot.channels.base import Channel, ChannelDisabled
from bot.channels.registry import channel
from bot.engine import Engine, Services
from bot.errors import AuthError, MessageTooLarge
from bot.message import Message
from bot.outbox import Outbox
from bot.store.rates import RateLimits
from bot.vocabulary import Channel as ChannelName

ENABLE = "set TRIAGE_RASA_WEBHOOK_TOKEN and send it as ?token= or Authorization: Bearer"
_query_token = APIKeyQuery(name="token", auto_error=False, description="TRIAGE_RASA_WEBHOOK_TOKEN")
_bearer_token = HTTPBearer(auto_error=False, description="TRIAGE_RASA_WEBHOOK_TOKEN")


async def rasa_credential(
    svc: Annotated[Services, Depends(services)],
    query: Annotated[str | None, Depends(_query_token)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_token)],
) -> None:
    """The shared secret, checked before the body is looked at: a stranger learns nothing, stores nothing."""
    secret = svc.settings.rasa_webhook_token
    if secret is None or not secret.get_secret_value():
        raise ChannelDisabled("Rasa", ENABLE)
    sent = query or (bearer.credentials if bearer is not None else "")
    expected = secret.get_secret_value().encode()
    if not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected):
        raise AuthError(f"missing or wrong Rasa token: {ENABLE}")


router = APIRouter(
    tags=["rasa"],
    dependencies=[Depends(rasa_credential)],
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
)


async def _receive(
    request: Request, svc: Services, rates: RateLimits, name: str, body: RasaMessageIn
) -> tuple[Channel, Message]:
    """Decode through the channel; a push conversation is followed by the outbox before its first event."""
    adapter = channel(request.app.state.channels, name)
    message = adapter.receive(body.model_dump(exclude_unset=True, exclude={"input_channel"}))
    if len(message.text) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(message.text), svc.settings.max_message_chars)
    conversation = await svc.store.get_or_create(message.conversation_id, adapter.name, message.sender_id)
    await rates.message(message.conversation_id)
    if adapter.push:
        outbox: Outbox = request.app.state.outbox
        await outbox.follow(message.conversation_id, int(conversation.get("seq") or 0))
    return adapter, message


@router.post(
    "/webhooks/rest/webhook",
    response_model=list[RasaReplyOut],
    response_model_exclude_none=True,
    responses={413: {"model": ErrorOut}, 429: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
async def rest_webhook(
    body: RasaMessageIn,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    eng: Annotated[Engine, Depends(engine)],
    rates: Annotated[RateLimits, Depends(limits)],
) -> list[dict[str, Any]]:
    """Rasa's REST channel: one object per bot message. With a callback URL configured, what comes later
    (agents' messages, queue updates, the CSAT request) is POSTed there."""
    _, message = await _receive(request, svc, rates, ChannelName.REST, body)
    result = await eng.handle(message)
    return [
        {"recipient_id": message.sender_id, "text": r["text"], "buttons": r["buttons"] or None}
        for r in result["replies"]
    ]


@router.post(
    "/webhooks/callback/webhook",
    response_class=PlainTextResponse,
    responses={
        413: {"model": ErrorOut},
        429: {"model": ErrorOut},
        503: {"model": ErrorOut},
    },
)
async def callback_webhook(
    body: RasaMessageIn,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    eng: Annotated[Engine, Depends(engine)],
    rates: Annotated[RateLimits, Depends(limits)],
) -> str:
    """Rasa's callback channel: answers ``success``; every reply is POSTed to the callback URL."""
    if not channel(request.app.state.channels, ChannelName.CALLBACK).push:
        raise ChannelDisabled(ChannelName.CALLBACK, "set TRIAGE_RASA_CALLBACK_URL to enable it")
    _, message = await _receive(request, svc, rates, ChannelName.CALLBACK, body)
    await eng.handle(message)
    return "success"


@router.post("/model/parse", responses={413: {"model": ErrorOut}})
async def model_parse(
    body: ParseIn, request: Request, svc: Annotated[Services, Depends(services)]
) -> dict[str, Any]:
    """Rasa's NLU parse: text, intent, entities, intent_ranking (plus language, severity, sentiment)."""
    if len(body.text) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(body.text), svc.settings.max_message_chars)
    # In the app's CPU pool: a parse of a long message must not stall every other connection.
    parsed = await svc.nlu.parse(body.text)
    return parsed.to_rasa()
