"""The agents' REST API (the same actions as the console's websocket, for scripts and integrations)."""

from __future__ import annotations

import logging
import urllib.parse
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bot.contracts.http import ErrorOut, bearer
from bot.cpu import run_cpu
from bot.errors import Forbidden, NotFound
from bot.store.attachments import AttachmentStore
from handoff_gateway import presence
from handoff_gateway.console_api import router as console_router
from handoff_gateway.context import context_card
from handoff_gateway.deps import ERRORS, AgentDep, GatewayDep
from handoff_gateway.desk import Desk
from handoff_gateway.gateway import Gateway

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["agents"])
router.include_router(console_router)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class LoginOut(BaseModel):
    token: str
    expires_in: int
    agent: dict[str, Any]


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000)
    client_msg_id: str | None = Field(None, max_length=128)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)
    to_agent: str | None = None
    to_group: Literal["zh", "en"] | None = None


class PresenceIn(BaseModel):
    status: Literal["online", "away", "offline"]


@router.post(
    "/agents/login", response_model=LoginOut, responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}}
)
async def login(body: LoginIn, request: Request, gw: GatewayDep) -> dict[str, Any]:
    """Sign in with name and password; failed attempts are rate-limited per name and address."""
    client = request.client.host if request.client else ""
    agent, token, expires = await gw.agents.login(body.name, body.password, client)
    return {"token": token, "expires_in": expires, "agent": agent.public()}


@router.post("/agents/logout", status_code=204, response_class=Response, responses={401: {"model": ErrorOut}})
async def logout(token: Annotated[str, Depends(bearer)], gw: GatewayDep) -> Response:
    """End the session the bearer token is (an API token: revoke it). Consoles opened with it close with
    4401 in every process."""
    await gw.agents.logout(token)
    return Response(status_code=204)


@router.get("/agents/{agent_id}/tokens", responses=ERRORS)
async def list_tokens(agent_id: str, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """An agent's live API tokens (ids and expiry, never the tokens): to supervisors, and to the agent."""
    if not agent.supervisor and agent.id != agent_id:
        raise Forbidden("agents see only their own tokens")
    if await gw.agents.get(agent_id) is None:
        raise NotFound(f"no agent {agent_id!r}")
    return {"items": [t.public() for t in await gw.agents.tokens.list(agent_id)]}


@router.delete("/agents/tokens/{token_id}", status_code=204, response_class=Response, responses=ERRORS)
async def revoke_token(token_id: str, agent: AgentDep, gw: GatewayDep) -> Response:
    """Revoke an API token (supervisors: anyone's; agents: their own); consoles it opened close with 4401."""
    info = await gw.agents.tokens.find(token_id[:64])
    if info is None or (not agent.supervisor and info.agent_id != agent.id):
        raise NotFound(f"no token {token_id[:64]!r}")
    await gw.agents.revoke_token(info)
    return Response(status_code=204)


@router.put("/agents/me/presence", responses=ERRORS)
async def set_presence(body: PresenceIn, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    await presence.choose(gw, agent, body.status)
    return {"agent": agent.id, "status": body.status}


@router.get("/queue", responses=ERRORS)
async def queue(agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """The queued conversations, in the order they will be offered."""
    return {"items": await gw.desk.queue_snapshot()}


@router.get("/tickets", responses=ERRORS)
async def tickets(
    agent: AgentDep,
    gw: GatewayDep,
    status: Annotated[
        Literal["open", "resolved"],
        Query(description="open: waiting or being worked on (soonest due first); resolved: closed ones"),
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    """Tickets — conversations handed off while nobody was on duty. Open ones are in the queue and offered
    like live handoffs; accept, reply (``/agent_messages``) and resolve them through their conversation."""
    return {"status": status, "items": [_ticket_out(t) for t in await gw.handoffs.tickets(status, limit)]}


def _ticket_out(ticket: dict[str, Any]) -> dict[str, Any]:
    sla = ticket.get("sla") or {}
    return {
        "ticket_id": ticket["ticket_id"],
        "conversation_id": ticket["conversation_id"],
        "status": ticket["status"],
        "severity": ticket["severity"],
        "reason": ticket.get("reason"),
        "intent": ticket.get("intent") or None,
        "group": ticket.get("group"),
        "channel": ticket.get("channel"),
        "summary": ticket.get("summary", ""),
        "customer": ticket.get("customer") or {},
        "first_response_due": sla.get("first_response_due"),
        "resolution_due": sla.get("resolution_due"),
        "sla": sla,
        "created_at": ticket.get("created_at"),
        "assigned_to": ticket.get("assigned_to"),
        "closed_at": int(ticket["closed_at"]) if ticket.get("closed_at") else None,
    }


@router.get("/conversations/{conversation_id}/context", responses=ERRORS)
async def context(conversation_id: str, agent: AgentDep, gw: GatewayDep, request: Request) -> dict[str, Any]:
    """The context card: to supervisors any; to agents their own conversations, waiting ones that are
    offered to them or sit in one of their skill groups' queues, and the ones they resolved (403 otherwise)."""
    await gw.desk.viewable(agent, conversation_id)
    card = await context_card(gw.desk.store, conversation_id)
    kb = request.app.state.services.kb
    titles = {a: found.title if (found := kb.article(a)) else None for a in card["kb_articles_shown"]}
    return {**card, "kb_article_titles": titles}


@router.get(
    "/conversations/{conversation_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
async def attachment(conversation_id: str, attachment_id: str, agent: AgentDep, gw: GatewayDep) -> Response:
    """A file, image or voice message the user sent from WeCom, as it was sent: to whoever may read the
    conversation's context card."""
    await gw.desk.viewable(agent, conversation_id)
    logger.info("agent %s opened attachment %s of %s", agent.id, attachment_id, conversation_id)
    store = gw.desk.store
    found = await AttachmentStore.open(store, gw.settings).get(conversation_id, attachment_id)
    if found is None:
        raise NotFound(f"no attachment {attachment_id!r} in conversation {conversation_id}")
    quoted = urllib.parse.quote(found.filename)
    return Response(
        found.content,
        media_type=found.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",  # the type comes from the platform
            "Cache-Control": "private, no-store",
        },
    )


def _desk(gw: Gateway) -> Desk:
    return gw.desk


@router.post("/conversations/{conversation_id}/accept", responses=ERRORS)
async def accept(conversation_id: str, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """Take a queued conversation. Exactly one of several simultaneous accepts wins; the others get 409."""
    conv = await _desk(gw).accept(agent, conversation_id)
    return {
        "conversation_id": conversation_id,
        "state": conv.state.value,
        "owner": conv.owner,
        "ticket_id": conv.ticket_id,
    }


@router.post("/conversations/{conversation_id}/decline", responses=ERRORS)
async def decline(conversation_id: str, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    await _desk(gw).decline(agent, conversation_id)
    gw.dispatcher.wake()
    return {"conversation_id": conversation_id, "declined": True}


@router.post("/conversations/{conversation_id}/agent_messages", responses=ERRORS)
async def agent_message(
    conversation_id: str, body: TextIn, agent: AgentDep, gw: GatewayDep
) -> dict[str, Any]:
    """Say something to the user; it reaches them on whichever channel they use."""
    event = await _desk(gw).say(agent, conversation_id, body.text, body.client_msg_id)
    return {"conversation_id": conversation_id, "seq": event["seq"]}


@router.post("/conversations/{conversation_id}/notes", responses=ERRORS)
async def note(conversation_id: str, body: TextIn, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """An internal note the user never sees."""
    event = await _desk(gw).note(agent, conversation_id, body.text)
    return {"conversation_id": conversation_id, "seq": event["seq"]}


@router.post("/conversations/{conversation_id}/transfer", responses=ERRORS)
async def transfer(conversation_id: str, body: TransferIn, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    result = await _desk(gw).transfer(agent, conversation_id, body.note, body.to_agent, body.to_group)
    gw.dispatcher.wake()
    return result


@router.post("/conversations/{conversation_id}/resolve", responses=ERRORS)
async def resolve(conversation_id: str, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """Close the conversation; the user is asked for a 1–5 rating."""
    return await _desk(gw).resolve(agent, conversation_id)


@router.post("/conversations/{conversation_id}/handback", responses=ERRORS)
async def handback(conversation_id: str, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """Give the conversation back to the bot."""
    return await _desk(gw).handback(agent, conversation_id)


@router.get("/kb/search/canned", responses=ERRORS)
async def canned(
    q: str,
    agent: AgentDep,
    request: Request,
    lang: Literal["zh", "en"] | None = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 10,
) -> dict[str, Any]:
    """Canned responses: knowledge-base articles for free text, with their steps ready to paste."""
    kb = request.app.state.services.kb
    result = await run_cpu(getattr(request.app.state, "cpu", None), kb.search, q[:500], lang=lang, top=limit)
    return {"items": [{**hit.to_dict(), "steps": hit.article.steps} for hit in result.hits]}


@router.get("/supervisor/overview", responses=ERRORS)
async def overview(agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """All queues, agents (presence, open conversations) and SLA breaches. Supervisors only."""
    if not agent.supervisor:
        raise Forbidden("the overview is for supervisors")
    return await gw.overview()
