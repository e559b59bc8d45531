"""The conversation API: create, post a message, read events (long-poll), read a ticket."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from bot.app.deps import bearer, check_token, engine, services, token_hash
from bot.app.schemas import (
    CreateConversationIn,
    CreateConversationOut,
    ErrorOut,
    EventsOut,
    MessageIn,
    MessageOut,
    TicketOut,
)
from bot.engine import Engine, Services
from bot.errors import MessageTooLarge, NotFound
from bot.message import Message
from bot.store.conversations import ConversationNotFound

router = APIRouter(prefix="/api/v1", tags=["conversations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong token"},
    404: {"model": ErrorOut, "description": "Unknown conversation"},
    503: {"model": ErrorOut, "description": "Redis unavailable; retry after Retry-After seconds"},
}
MAX_WAIT_SECONDS = 30.0


@router.post("/conversations", response_model=CreateConversationOut, status_code=201, responses=ERRORS)
async def create_conversation(
    svc: Annotated[Services, Depends(services)], body: CreateConversationIn | None = None
) -> CreateConversationOut:
    """Start a conversation. The token is shown once; only its hash is stored."""
    body = body or CreateConversationIn()
    token = secrets.token_urlsafe(32)
    record = await svc.store.create(
        body.channel, body.user, token_hash=token_hash(token), tenant=body.tenant, vip=str(body.vip)
    )
    return CreateConversationOut(conversation_id=record["conversation_id"], token=token)


async def _authorized(svc: Services, conversation_id: str, token: str) -> dict[str, str]:
    conversation = await svc.store.get(conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    check_token(conversation, token)
    return conversation


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    responses={**ERRORS, 413: {"model": ErrorOut, "description": "Message over the size limit"}},
)
async def post_message(
    conversation_id: str,
    body: MessageIn,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    eng: Annotated[Engine, Depends(engine)],
    token: Annotated[str, Depends(bearer)],
) -> dict[str, Any]:
    """Send the user's message; the bot's replies (or the handoff/ticket) come back in the response."""
    conversation = await _authorized(svc, conversation_id, token)
    if len(body.text) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(body.text), svc.settings.max_message_chars)
    message = Message(
        body.channel or conversation.get("channel", "web"),
        body.user or conversation.get("user", ""),
        conversation_id,
        body.text,
        body.client_msg_id,
    )
    return await eng.handle(message)


@router.get("/conversations/{conversation_id}/events", response_model=EventsOut, responses=ERRORS)
async def get_events(
    conversation_id: str,
    svc: Annotated[Services, Depends(services)],
    token: Annotated[str, Depends(bearer)],
    after: Annotated[int, Query(ge=0, description="Return events after this sequence number")] = 0,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Long-poll: seconds to wait for a new event")
    ] = 0,
) -> dict[str, Any]:
    """The transcript after a sequence number (user, bot, agent and system events)."""
    await _authorized(svc, conversation_id, token)
    events = await svc.store.wait_events(conversation_id, after, int(wait * 1000))
    conversation = await svc.store.require(conversation_id)
    return {
        "conversation_id": conversation_id,
        "state": conversation["state"],
        "events": [e for e in events if e.get("visibility") != "internal"],  # agents' notes stay internal
        "last_seq": events[-1]["seq"] if events else after,
    }


@router.get("/tickets/{ticket_id}", response_model=TicketOut, responses=ERRORS)
async def get_ticket(
    ticket_id: str, svc: Annotated[Services, Depends(services)], token: Annotated[str, Depends(bearer)]
) -> dict[str, Any]:
    """A ticket, readable with the token of the conversation that opened it."""
    ticket = await svc.tickets.get(ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id!r}; ticket ids look like T-20261123-0001")
    await _authorized(svc, ticket["conversation_id"], token)
    return ticket
