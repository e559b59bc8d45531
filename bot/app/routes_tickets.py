"""The user's side of tickets: "我的工单" (their tickets and how far each has got) and, while nobody is on
duty, how to reach them when the answer comes (``bot.contact``). Both with the conversation's token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from bot.app.deps import bearer, check_token, services
from bot.app.schemas import ErrorOut
from bot.contact import contact_seal, parse_contact
from bot.contracts.conversation import Conversation
from bot.engine import Services
from bot.errors import Conflict

router = APIRouter(prefix="/api/v1", tags=["tickets"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong token, or no such conversation (alike)"},
    503: {"model": ErrorOut, "description": "Redis unavailable; retry after Retry-After seconds"},
}
SHOWN = 20  # tickets in the list


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=254, examples=["wang.li@acme.com"])
    phone: str | None = Field(None, max_length=32, examples=["13812345678"])


class ContactOut(BaseModel):
    ticket_id: str
    kind: str = Field(description="email or phone")
    contact: str = Field(description="As kept for show: masked (w***@acme.com, *******5678)")


class MyTicketOut(BaseModel):
    ticket_id: str
    status: str = Field(description="open, assigned, resolved or cancelled")
    severity: str
    reason: str
    summary: str = Field("", description="What the user wrote when it was opened (personal data masked)")
    created_at: str
    first_response_due: str
    contact: str | None = Field(None, description="How the user asked to be reached, masked")
    this_conversation: bool


class MyTicketsOut(BaseModel):
    items: list[MyTicketOut]


async def _conversation(svc: Services, conversation_id: str, token: str) -> Conversation:
    record = await svc.store.get(conversation_id[:128]) or {}
    check_token(record, token)
    return Conversation.from_redis(record)


@router.get("/conversations/{conversation_id}/tickets", response_model=MyTicketsOut, responses=ERRORS)
async def my_tickets(
    conversation_id: str, svc: Annotated[Services, Depends(services)], token: Annotated[str, Depends(bearer)]
) -> dict[str, Any]:
    """The tickets this conversation opened and, for a verified user, every ticket of theirs — newest first."""
    conv = await _conversation(svc, conversation_id, token)
    found: dict[str, dict[str, Any]] = {}
    if conv.customer.customer_key:
        for ticket in await svc.handoffs.customer_tickets(conv.customer.customer_key, SHOWN):
            found[ticket["ticket_id"]] = ticket
    opened = {
        e["ticket_id"]
        for e in await svc.store.events_after(conv.conversation_id, 0, 1000)
        if e.get("type") == "handoff" and e.get("ticket_id")
    }
    for ticket_id in opened - found.keys():
        if (mine := await svc.handoffs.ticket(ticket_id)) is not None:
            found[ticket_id] = mine
    newest = sorted(found.values(), key=lambda t: str(t.get("created_at", "")), reverse=True)[:SHOWN]
    return {
        "items": [
            {
                "ticket_id": t["ticket_id"],
                "status": t["status"],
                "severity": t["severity"],
                "reason": t.get("reason", ""),
                "summary": t.get("summary", ""),
                "created_at": t.get("created_at", ""),
                "first_response_due": t.get("sla", {}).get("first_response_due", ""),
                "contact": t.get("contact_masked") or None,
                "this_conversation": t.get("conversation_id") == conv.conversation_id,
            }
            for t in newest
        ]
    }


@router.put(
    "/conversations/{conversation_id}/contact",
    response_model=ContactOut,
    responses={
        **ERRORS,
        409: {"model": ErrorOut, "description": "This conversation has no ticket to put it on"},
        422: {"model": ErrorOut, "description": "Not exactly one of email or phone, or not a valid one"},
    },
)
async def leave_contact(
    conversation_id: str,
    body: ContactIn,
    svc: Annotated[Services, Depends(services)],
    token: Annotated[str, Depends(bearer)],
) -> dict[str, Any]:
    """How to reach the user when their ticket is answered, kept on the conversation's ticket: masked for
    show, sealed for the agent (bot/contact.py). Giving another replaces it."""
    conv = await _conversation(svc, conversation_id, token)
    contact = parse_contact(body.email, body.phone)
    ticket_id = (await svc.handoffs.get(conv.conversation_id)).get("ticket_id", "")
    key = svc.settings.contact_key.get_secret_value() if svc.settings.contact_key else ""
    sealed = contact_seal(key, svc.settings.var_dir).seal(contact.value)
    if not ticket_id or not await svc.handoffs.set_contact(ticket_id, contact.kind, contact.masked, sealed):
        raise Conflict("this conversation has no ticket yet: contact details go on the ticket opened for you")
    return {"ticket_id": ticket_id, "kind": contact.kind, "contact": contact.masked}
