"""What the agent console needs beyond the desk's actions: the vocabulary in words, the conversation list and
search, tags, and the team's saved replies (supervisors write them, agents use them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from bot.contracts.http import ErrorOut
from bot.errors import Forbidden
from handoff_gateway.agents import Agent
from handoff_gateway.deps import ERRORS, AgentDep, GatewayDep
from handoff_gateway.labels import console_labels
from handoff_gateway.listing import ConversationList, View
from handoff_gateway.replies import SavedReplies, SavedReply
from handoff_gateway.tags import MAX_TAG_CHARS, MAX_TAGS

router = APIRouter()
SUPERVISORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Wrong or expired token"},
    403: {"model": ErrorOut, "description": "Supervisors only"},
}
TAG_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    422: {"model": ErrorOut, "description": "An empty, too long or formatting-character tag, or too many"},
}


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Annotated[str, Field(max_length=MAX_TAG_CHARS)]] = Field(max_length=MAX_TAGS)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=4000)
    language: Literal["zh", "en"] = "zh"


def _supervisor(agent: Agent) -> None:
    if not agent.supervisor:
        raise Forbidden("saved replies are written by supervisors")


def _reply_out(reply: SavedReply) -> dict[str, Any]:
    return {
        "id": reply.id,
        "title": reply.title,
        "text": reply.text,
        "language": reply.language,
        "created_by": reply.created_by,
        "updated_at": reply.updated_at,
    }


@router.get("/console/labels", responses={401: {"model": ErrorOut}})
async def labels(agent: AgentDep) -> dict[str, Any]:
    """Codes in words, zh and en: intents, severities, handoff reasons, states, channels, languages."""
    return console_labels()


@router.get("/agent/conversations", responses={401: {"model": ErrorOut}})
async def conversations(
    agent: AgentDep,
    gw: GatewayDep,
    view: Annotated[
        View,
        Query(
            description="mine: assigned to you; unassigned: waiting for a human; tickets: open tickets; "
            "resolved; all"
        ),
    ] = "all",
    q: Annotated[
        str, Query(max_length=200, description="search: customer, company, ticket, tags, text")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The conversation list: supervisors see every conversation; agents those assigned to them, offered to
    them or waiting in their skill groups' queues, and the ones they resolved."""
    rows = await ConversationList(gw.desk).rows(agent, view, q.strip(), limit)
    return {"view": view, "query": q, "items": rows}


@router.put("/conversations/{conversation_id}/tags", responses=TAG_ERRORS)
async def put_tags(conversation_id: str, body: TagsIn, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """Replace the conversation's tags: its owner, or a supervisor."""
    return {"conversation_id": conversation_id, "tags": await gw.desk.tag(agent, conversation_id, body.tags)}


@router.get("/replies", responses={401: {"model": ErrorOut}})
async def list_replies(
    agent: AgentDep,
    gw: GatewayDep,
    q: Annotated[str, Query(max_length=200)] = "",
    lang: Literal["zh", "en"] | None = None,
) -> dict[str, Any]:
    """The team's saved replies matching ``q``, those in ``lang`` first."""
    replies = await SavedReplies(gw.desk.redis, gw.desk.keys).all(q.strip(), lang)
    return {"items": [_reply_out(r) for r in replies]}


@router.post(
    "/replies",
    status_code=201,
    responses={**SUPERVISORS, 409: {"model": ErrorOut, "description": "500 saved replies already"}},
)
async def create_reply(body: ReplyIn, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """Add a saved reply (supervisors)."""
    _supervisor(agent)
    store = SavedReplies(gw.desk.redis, gw.desk.keys)
    return _reply_out(await store.create(body.title, body.text, body.language, agent.id))


@router.put("/replies/{reply_id}", responses={**SUPERVISORS, 404: {"model": ErrorOut}})
async def update_reply(reply_id: str, body: ReplyIn, agent: AgentDep, gw: GatewayDep) -> dict[str, Any]:
    """Rewrite a saved reply (supervisors)."""
    _supervisor(agent)
    store = SavedReplies(gw.desk.redis, gw.desk.keys)
    return _reply_out(await store.update(reply_id, body.title, body.text, body.language, agent.id))


@router.delete(
    "/replies/{reply_id}",
    status_code=204,
    response_class=Response,
    responses={**SUPERVISORS, 404: {"model": ErrorOut}},
)
async def delete_reply(reply_id: str, agent: AgentDep, gw: GatewayDep) -> Response:
    """Delete a saved reply (supervisors)."""
    _supervisor(agent)
    await SavedReplies(gw.desk.redis, gw.desk.keys).delete(reply_id)
    return Response(status_code=204)
