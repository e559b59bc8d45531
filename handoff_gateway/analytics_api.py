"""Analytics for supervisors (the page at ``/console/analytics``, JSON and CSV), the knowledge-gap clusters it
shows, and agents marking a reply "make this an article".

The numbers come from the rollup's Redis structures (bot/analytics), so every process answers alike."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.analytics.gaps import Nearest, cluster, read_gaps
from bot.analytics.report import Period, report, to_csv
from bot.contracts.http import ErrorOut
from bot.cpu import run_cpu
from bot.errors import Forbidden, NotFound
from bot.nlu.training_data import load_training_data
from bot.privacy import mask_sensitive
from handoff_gateway.agents import Agent
from handoff_gateway.deps import AgentDep, GatewayDep

router = APIRouter()
STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_DAYS = 7
PAGE_GAPS = 2000  # the newest gap entries the page clusters (in the CPU pool, on every load)
SUPERVISORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Wrong or expired token"},
    403: {"model": ErrorOut, "description": "Supervisors only"},
    422: {"model": ErrorOut, "description": "A malformed or reversed period, or one over 366 days"},
}
SUGGESTION_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Wrong or expired token"},
    403: {"model": ErrorOut, "description": "Neither your conversation nor your reply"},
    404: {"model": ErrorOut, "description": "Unknown conversation, or no agent reply at that seq"},
    422: {"model": ErrorOut, "description": "A malformed body"},
}

Since = Annotated[
    dt.date | None,
    Query(description="First day (YYYY-MM-DD, the deployment's time zone); default 6 days ago"),
]
Until = Annotated[dt.date | None, Query(description="Last day, included; default today")]
ChannelQ = Annotated[
    str | None, Query(pattern=r"^[a-z]{1,16}$", description="Only this channel: web, rest, wecom, …")
]
LanguageQ = Annotated[Literal["zh", "en"] | None, Query(description="Only conversations in this language")]


class SuggestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, le=10**9, description="The event seq of an agent reply in this conversation")


class SuggestionOut(BaseModel):
    conversation_id: str
    seq: int
    suggestion_seq: int


@router.get("/console/analytics", response_class=HTMLResponse, include_in_schema=False)
async def analytics_page() -> HTMLResponse:
    """The page; it signs in like the console and shows supervisors the figures (agents: 403)."""
    return HTMLResponse((STATIC / "analytics.html").read_text(encoding="utf-8"))


def _supervisor(agent: Agent) -> None:
    if not agent.supervisor:
        raise Forbidden("analytics are for supervisors")


def _period(request: Request, since: dt.date | None, until: dt.date | None) -> Period:
    today = dt.datetime.now(ZoneInfo(request.app.state.settings.timezone)).date()
    until = until or today
    if since is None:
        Period(until, until)  # refuses a day out of range before any date arithmetic on it
        since = until - dt.timedelta(days=DEFAULT_DAYS - 1)
    return Period(since, until)


@router.get("/api/v1/analytics", tags=["analytics"], responses=SUPERVISORS)
async def analytics(
    request: Request,
    agent: AgentDep,
    gw: GatewayDep,
    since: Since = None,
    until: Until = None,
    channel: ChannelQ = None,
    language: LanguageQ = None,
) -> dict[str, Any]:
    """Conversations, deflection and handoff rates, handoffs by reason and severity, first-response and
    resolution times (p50/p90) against the SLA, breaches, CSAT, top intents and fallbacks, per day.
    Supervisors only."""
    _supervisor(agent)
    store = gw.desk.store
    return await report(store.redis, store.keys, _period(request, since, until), channel, language)


@router.get(
    "/api/v1/analytics.csv",
    tags=["analytics"],
    response_class=Response,
    responses={**SUPERVISORS, 200: {"content": {"text/csv": {}}, "description": "section,key,value rows"}},
)
async def analytics_csv(
    request: Request,
    agent: AgentDep,
    gw: GatewayDep,
    since: Since = None,
    until: Until = None,
    channel: ChannelQ = None,
    language: LanguageQ = None,
) -> Response:
    """The same figures as ``/api/v1/analytics``, one ``section,key,value`` row each. Supervisors only."""
    _supervisor(agent)
    store = gw.desk.store
    period = _period(request, since, until)
    numbers = await report(store.redis, store.keys, period, channel, language)
    name = f"analytics-{period.since}-{period.until}.csv"
    return Response(
        to_csv(numbers),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@functools.lru_cache(maxsize=2)
def _examples(data_dir: Path) -> tuple[tuple[str, str], ...]:
    return tuple((e.text, e.intent) for e in load_training_data(data_dir).examples)


@router.get("/api/v1/analytics/gaps", tags=["analytics"], responses=SUPERVISORS)
async def gap_clusters(
    request: Request,
    agent: AgentDep,
    gw: GatewayDep,
    since: Since = None,
    until: Until = None,
    top: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """The largest clusters of the knowledge-gap log in the period (as ``triage gaps`` finds them), each
    with examples and its nearest intent and article. Supervisors only."""
    _supervisor(agent)
    period = _period(request, since, until)
    zone = ZoneInfo(request.app.state.settings.timezone)
    start = dt.datetime.combine(period.since, dt.time(), zone).timestamp()
    end = dt.datetime.combine(period.until + dt.timedelta(days=1), dt.time(), zone).timestamp()
    store = gw.desk.store
    found = await read_gaps(store.redis, store.keys, int(start * 1000), int(end * 1000) - 1, PAGE_GAPS)
    services = request.app.state.services

    def nearest_article(text: str, lang: str) -> Nearest | None:
        hits = services.kb.search(text, lang=lang, top=1).hits
        return Nearest(hits[0].article.id, hits[0].confidence, hits[0].article.title) if hits else None

    def clusters() -> list[dict[str, Any]]:
        examples = _examples(request.app.state.settings.data_dir)
        return [c.to_dict() for c in cluster(found, examples, nearest_article)[:top]]

    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "entries": len(found),
        "clusters": await run_cpu(services.cpu, clusters),
    }


@router.post(
    "/api/v1/agent/conversations/{conversation_id}/article-suggestions",
    tags=["analytics"],
    status_code=201,
    response_model=SuggestionOut,
    responses=SUGGESTION_ERRORS,
)
async def suggest_article(
    conversation_id: str, body: SuggestionIn, agent: AgentDep, gw: GatewayDep
) -> dict[str, Any]:
    """Mark an agent's reply "make this an article": it is listed by ``triage gaps`` as an article
    candidate, with the user's question before it. The reply's author, the conversation's owner and
    supervisors may; anyone else gets 403, whether or not that seq exists."""
    store = gw.desk.store
    conv = await store.load(conversation_id)
    cid = conv.conversation_id
    found = await store.events_after(cid, body.seq - 1, 1)
    event = found[0] if found and found[0]["seq"] == body.seq else None
    is_reply = event is not None and event.get("type") == "message" and event.get("role") == "agent"
    mine = is_reply and event is not None and event.get("agent") == agent.id
    if not (agent.supervisor or conv.owner == agent.id or mine):
        raise Forbidden(f"conversation {cid} is not yours")
    if event is None or not is_reply:
        raise NotFound(f"no agent reply at seq {body.seq} in conversation {cid}")
    earlier = await store.events_after(cid, max(0, body.seq - 50), 49)
    asked = [
        str(e.get("text") or "")
        for e in earlier
        if e["seq"] < body.seq and e.get("type") == "message" and e.get("role") == "user"
    ]
    question = next((text for text in reversed(asked) if not text.startswith("/")), "")
    suggestion = await store.append(
        cid,
        {
            "type": "article_suggestion",
            "role": "agent",
            "visibility": "internal",  # agents' business: never shown or sent to the user
            "agent": agent.id,
            "reply_seq": body.seq,
            "text": mask_sensitive(str(event.get("text") or "")),
            "question": question,
        },
    )
    return {"conversation_id": cid, "seq": body.seq, "suggestion_seq": suggestion["seq"]}
