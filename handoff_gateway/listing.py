"""The console's conversation list: the agent's own, the unassigned ones they may take, open tickets,
resolved ones — and a search over past conversations. Every row passes the same access rule as the context
card (:func:`handoff_gateway.desk.visible_to`): an agent never sees a row they could not open."""

from __future__ import annotations

import json
from typing import Any, Literal

from bot.contracts.conversation import Conversation
from bot.ownership import IN_QUEUE, Owner
from handoff_gateway.agents import Agent
from handoff_gateway.context import display_name
from handoff_gateway.desk import Desk, visible_to
from handoff_gateway.tags import tags_of

View = Literal["mine", "unassigned", "tickets", "resolved", "all"]
SCANNED = 500  # the newest conversations a resolved view or a search looks through
SEARCHED_EVENTS = 100  # the transcript entries a search reads per conversation


def _row(conv: Conversation) -> dict[str, Any]:
    raw, handoff = conv.raw, conv.handoff
    return {
        "conversation_id": conv.conversation_id,
        "display_name": display_name(dict(raw)),
        "tenant": raw.get("tenant") or None,
        "vip_tier": conv.customer.vip_tier,
        "state": conv.state.value,
        "owner": conv.owner or None,
        "severity": handoff.severity.value if handoff else conv.severity.value,
        "reason": handoff.reason if handoff else None,
        "intent": handoff.intent if handoff else None,
        "trigger": handoff.trigger if handoff else None,
        "channel": conv.channel,
        "language": conv.language or None,
        "ticket_id": conv.ticket_id,
        "tags": tags_of(raw),
        "rating": int(raw["csat"]) if raw.get("csat", "").isdigit() else None,
        "created_at": conv.created_at or None,
        "updated_at": int(raw.get("updated_at") or 0) or None,
    }


def _in_view(view: View, agent: Agent, conv: Conversation) -> bool:
    if view == "mine":
        return conv.state is Owner.ASSIGNED and conv.owner == agent.id
    if view == "unassigned":
        return conv.state in IN_QUEUE
    if view == "tickets":
        return bool(conv.ticket_id) and conv.state is not Owner.RESOLVED
    if view == "resolved":
        return conv.state is Owner.RESOLVED
    return True


def _matches(query: str, row: dict[str, Any], texts: list[str]) -> bool:
    q = query.casefold()
    fields = [row["conversation_id"], row["display_name"], row["tenant"], row["ticket_id"], row["trigger"]]
    return any(q in str(f).casefold() for f in [*fields, *row["tags"], *texts] if f)


class ConversationList:
    def __init__(self, desk: Desk) -> None:
        self.desk, self.redis, self.keys = desk, desk.redis, desk.keys

    async def _candidates(self, view: View, agent: Agent, query: str) -> list[str]:
        """Conversation ids worth loading: the agent's open set, the queues, the open tickets, or (resolved,
        all, any search) the newest conversations."""
        if view == "mine" and not query:
            return sorted(await self.desk.agents.open_conversations(agent.id))
        if view == "unassigned" and not query:
            return [item["conversation_id"] for item in await self.desk.queue_snapshot()]
        if view == "tickets" and not query:
            return [t["conversation_id"] for t in await self.desk.handoffs.tickets("open", SCANNED)]
        ids: list[str] = await self.redis.zrevrange(self.keys.conversations, 0, SCANNED - 1)
        return ids

    async def _load(self, ids: list[str]) -> tuple[list[Conversation], dict[str, str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(self.desk.store.key(cid))
                pipe.hgetall(self.keys.handoff(cid))
            pipe.hgetall(self.keys.offers)
            rows = await pipe.execute()
        offers = {k: str(json.loads(v)["agent"]) for k, v in rows[-1].items()}
        convs = [
            Conversation.from_redis({**record, "state": "bot", "owner": "", **desk})
            for record, desk in zip(rows[0:-1:2], rows[1:-1:2], strict=True)
            if record
        ]
        return convs, offers

    async def _texts(self, ids: list[str]) -> dict[str, list[str]]:
        """What was said in each conversation (for a search): its first transcript entries."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.xrange(self.desk.store.events_key(cid), count=SEARCHED_EVENTS)
            streams = await pipe.execute()
        texts = {}
        for cid, entries in zip(ids, streams, strict=True):
            events = [json.loads(fields.get("e", "{}")) for _, fields in entries]
            texts[cid] = [e["text"] for e in events if e.get("type") == "message" and e.get("text")]
        return texts

    async def rows(
        self, agent: Agent, view: View = "all", query: str = "", limit: int = 50
    ) -> list[dict[str, Any]]:
        """The rows of ``view`` the agent may see, matching ``query`` (names, company, ticket, tags, the
        words that triggered the handoff, what was said), most recently active first."""
        convs, offers = await self._load(await self._candidates(view, agent, query))
        visible = [
            c
            for c in convs
            if _in_view(view, agent, c) and visible_to(agent, c, offers.get(c.conversation_id))
        ]
        rows = {c.conversation_id: _row(c) for c in visible}
        if query:
            texts = await self._texts(list(rows))
            rows = {cid: r for cid, r in rows.items() if _matches(query, r, texts[cid])}
        ordered = sorted(rows.values(), key=lambda r: -(r["updated_at"] or r["created_at"] or 0))
        return ordered[:limit]
