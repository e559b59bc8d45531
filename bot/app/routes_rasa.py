"""Rasa-compatible endpoints, so existing Rasa clients and scripts work unchanged:
``POST /webhooks/rest/webhook`` (the REST channel), ``POST /webhooks/callback/webhook`` (the callback
channel: replies are POSTed to ``TRIAGE_RASA_CALLBACK_URL`` by the outbox) and ``POST /model/parse``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from bot.app.deps import engine, services
from bot.app.schemas import ErrorOut, ParseIn, RasaMessageIn, RasaReplyOut
from bot.channels.base import Channel, ChannelDisabled
from bot.channels.registry import channel
from bot.engine import Engine, Services
from bot.errors import MessageTooLarge
from bot.message import Message
from bot.outbox import Outbox
from bot.vocabulary import Channel as ChannelName

router = APIRouter(tags=["rasa"])


async def _receive(
    request: Request, svc: Services, name: str, body: RasaMessageIn
) -> tuple[Channel, Message]:
    """Decode through the channel; a push conversation is followed by the outbox before its first event."""
    adapter = channel(request.app.state.channels, name)
    message = adapter.receive(body.model_dump())
    if len(message.text) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(message.text), svc.settings.max_message_chars)
    conversation = await svc.store.get_or_create(message.conversation_id, adapter.name, message.sender_id)
    if adapter.push:
        outbox: Outbox = request.app.state.outbox
        await outbox.follow(message.conversation_id, int(conversation.get("seq") or 0))
    return adapter, message


@router.post(
    "/webhooks/rest/webhook",
    response_model=list[RasaReplyOut],
    response_model_exclude_none=True,
    responses={413: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
async def rest_webhook(
    body: RasaMessageIn,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    eng: Annotated[Engine, Depends(engine)],
) -> list[dict[str, Any]]:
    """Rasa's REST channel: one object per bot message. With a callback URL configured, what comes later
    (agents' messages, queue updates, the CSAT request) is POSTed there."""
    _, message = await _receive(request, svc, ChannelName.REST, body)
    result = await eng.handle(message)
    return [
        {"recipient_id": message.sender_id, "text": r["text"], "buttons": r["buttons"] or None}
        for r in result["replies"]
    ]


@router.post(
    "/webhooks/callback/webhook",
    response_class=PlainTextResponse,
    responses={404: {"model": ErrorOut}, 413: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
async def callback_webhook(
    body: RasaMessageIn,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    eng: Annotated[Engine, Depends(engine)],
) -> str:
    """Rasa's callback channel: answers ``success``; every reply is POSTed to the callback URL."""
    if not channel(request.app.state.channels, ChannelName.CALLBACK).push:
        raise ChannelDisabled(ChannelName.CALLBACK, "set TRIAGE_RASA_CALLBACK_URL to enable it")
    _, message = await _receive(request, svc, ChannelName.CALLBACK, body)
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
