"""Rasa-compatible endpoints, so existing Rasa clients and scripts work unchanged:
``POST /webhooks/rest/webhook`` (the REST channel) and ``POST /model/parse``."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from bot.app.deps import engine, services
from bot.app.schemas import ErrorOut, ParseIn, RasaMessageIn, RasaReplyOut
from bot.engine import Engine, Services
from bot.errors import MessageTooLarge
from bot.message import Message

router = APIRouter(tags=["rasa"])


def rest_conversation_id(sender: str) -> str:
    """The REST channel names conversations by sender; hash it into our id space."""
    return "rest-" + hashlib.sha256(sender.encode()).hexdigest()[:24]


@router.post(
    "/webhooks/rest/webhook",
    response_model=list[RasaReplyOut],
    response_model_exclude_none=True,
    responses={413: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
async def rest_webhook(
    body: RasaMessageIn, svc: Annotated[Services, Depends(services)], eng: Annotated[Engine, Depends(engine)]
) -> list[dict[str, Any]]:
    """Rasa's REST channel: one object per bot message."""
    if len(body.message) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(body.message), svc.settings.max_message_chars)
    cid = rest_conversation_id(body.sender)
    await svc.store.get_or_create(cid, "rest", body.sender)
    message_id = str((body.metadata or {}).get("message_id") or uuid.uuid4())
    result = await eng.handle(
        Message("rest", body.sender, cid, body.message, message_id, body.metadata or {})
    )
    return [
        {"recipient_id": body.sender, "text": r["text"], "buttons": r["buttons"] or None}
        for r in result["replies"]
    ]


@router.post("/model/parse", responses={413: {"model": ErrorOut}})
async def model_parse(body: ParseIn, svc: Annotated[Services, Depends(services)]) -> dict[str, Any]:
    """Rasa's NLU parse: text, intent, entities, intent_ranking (plus language, severity, sentiment)."""
    if len(body.text) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(body.text), svc.settings.max_message_chars)
    return svc.nlu.parse(body.text)
