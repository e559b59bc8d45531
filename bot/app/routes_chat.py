"""The conversation API: create, post a message, read events (long-poll), read a ticket."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from bot.app.deps import (
    bearer,
    check_token,
    client_address,
    engine,
    limits,
    services,
    token_hash,
    web_message,
)
from bot.app.schemas import (
    MAX_SEQ,
    CreateConversationIn,
    CreateConversationOut,
    ErrorOut,
    EventsOut,
    MessageIn,
    MessageOut,
    TicketOut,
)
from bot.engine import Engine, Services
from bot.errors import AuthError, MessageTooLarge
from bot.identity import Identity, verify_identity_token
from bot.settings import Settings
from bot.store.keys import Keys
from bot.store.rates import RateLimits

router = APIRouter(prefix="/api/v1", tags=["conversations"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong token, or no such conversation (alike)"},
    404: {"model": ErrorOut, "description": "The conversation expired (retention) while the request ran"},
    503: {"model": ErrorOut, "description": "Redis unavailable; retry after Retry-After seconds"},
}
MAX_WAIT_SECONDS = 30.0
INTERNAL_TICKET_FIELDS = frozenset(
    {"customer_key", "created_ms", "assigned_to", "updated_at", "contact_sealed", "contact_at"}
)
HISTORY_SIZE = 50  # a verified customer's newest conversations kept for the agent's context card


@router.post(
    "/conversations",
    response_model=CreateConversationOut,
    status_code=201,
    responses={
        **ERRORS,
        401: {"model": ErrorOut, "description": "Identity token invalid or expired"},
        429: {"model": ErrorOut, "description": "Too many new conversations from this address"},
    },
)
async def create_conversation(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    rates: Annotated[RateLimits, Depends(limits)],
    body: CreateConversationIn | None = None,
) -> CreateConversationOut:
    """Start a conversation, as the user a signed ``identity_token`` names or anonymously.
    The token returned is shown once; only its hash is stored."""
    body = body or CreateConversationIn()
    identity = _identity(svc.settings, body.identity_token)
    await rates.new_conversation(client_address(request))
    token = secrets.token_urlsafe(32)
    record = await svc.store.create(
        body.channel, identity.user, token_hash=token_hash(token), **identity.record_fields()
    )
    if identity.customer_key:
        await _remember(svc, identity.customer_key, record["conversation_id"], int(record["created_at"]))
    return CreateConversationOut(conversation_id=record["conversation_id"], token=token)


def _identity(settings: Settings, identity_token: str | None) -> Identity:
    if identity_token is None:
        return Identity.anonymous()
    secret = settings.identity_secret.get_secret_value() if settings.identity_secret else None
    return verify_identity_token(identity_token, secret, settings.identity_leeway_seconds)


async def _remember(svc: Services, customer_key: str, conversation_id: str, created_ms: int) -> None:
    """Add the conversation to its verified customer's history (the newest HISTORY_SIZE are kept)."""
    key = Keys(svc.settings.redis_prefix).customer(customer_key, "conversations")
    retention_ms = svc.settings.transcript_retention_days * 86400 * 1000
    async with svc.store.redis.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {conversation_id: created_ms})
        pipe.zremrangebyrank(key, 0, -HISTORY_SIZE - 1)
        pipe.pexpire(key, retention_ms)
        await pipe.execute()


async def _authorized(svc: Services, conversation_id: str, token: str) -> dict[str, str]:
    """The conversation ``token`` opens. No such conversation and a wrong token are the same 401, so
    conversation ids cannot be probed for existence."""
    conversation = await svc.store.get(conversation_id) or {}
    check_token(conversation, token)
    return conversation


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    responses={
        **ERRORS,
        413: {"model": ErrorOut, "description": "Message over the size limit"},
        429: {
            "model": ErrorOut,
            "description": "Too many messages in this conversation; retry after Retry-After",
        },
    },
)
async def post_message(
    conversation_id: str,
    body: MessageIn,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    eng: Annotated[Engine, Depends(engine)],
    rates: Annotated[RateLimits, Depends(limits)],
    token: Annotated[str, Depends(bearer)],
) -> dict[str, Any]:
    """Send the user's message; the bot's replies (or the handoff/ticket) come back in the response."""
    conversation = await _authorized(svc, conversation_id, token)
    if len(body.text) > svc.settings.max_message_chars:
        raise MessageTooLarge(len(body.text), svc.settings.max_message_chars)
    await rates.message(conversation_id)
    return await eng.handle(web_message(request, conversation, body.text, body.client_msg_id))


@router.get("/conversations/{conversation_id}/events", response_model=EventsOut, responses=ERRORS)
async def get_events(
    conversation_id: str,
    request: Request,
    svc: Annotated[Services, Depends(services)],
    token: Annotated[str, Depends(bearer)],
    after: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="Return events after this sequence number")
    ] = 0,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Long-poll: seconds to wait for a new event")
    ] = 0,
) -> dict[str, Any]:
    """The transcript after a sequence number (user, bot, agent and system events)."""
    await _authorized(svc, conversation_id, token)
    if wait > 0:  # waits on the process's event hub: no Redis connection is held while waiting
        events = await request.app.state.hub.wait(conversation_id, after, wait)
    else:
        events = await svc.store.events_after(conversation_id, after)
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
    """A ticket, readable with the token of the conversation that opened it. An unknown ticket and one the
    token does not open are the same 401: ticket ids are sequential, so existence must not show."""
    ticket = await svc.handoffs.ticket(ticket_id[:64])
    try:
        await _authorized(svc, ticket["conversation_id"] if ticket else "", token)
    except AuthError:
        raise AuthError(
            f"this token opens no ticket {ticket_id[:64]!r}; use the token of the conversation that opened it"
        ) from None
    assert ticket is not None
    return {k: v for k, v in ticket.items() if k not in INTERNAL_TICKET_FIELDS}
