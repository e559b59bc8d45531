"""The support desk: what agents do to conversations — take (atomically), decline, talk, note, transfer,
resolve, hand back — with every change checked, audited and written to the conversation's stream so it
reaches the user on whatever channel and process they are on."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from bot.errors import Conflict, Forbidden, NotFound, TriageError
from bot.ownership import Owner, TransitionError
from bot.privacy import mask_sensitive
from bot.store.conversations import ConversationStore
from bot.store.queue import HandoffQueue
from handoff_gateway.agents import Agent, AgentStore
from handoff_gateway.audit import Audit

# Take a queued conversation: exactly one agent wins, and only within its capacity.
_ACCEPT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
if state ~= 'queued' then return {'taken', redis.call('HGET', KEYS[1], 'owner') or ''} end
if tonumber(ARGV[2]) > 0 and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[2]) then return {'full', ''} end
redis.call('HSET', KEYS[1], 'state', 'assigned', 'owner', ARGV[1], 'assigned_at', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('HDEL', KEYS[4], ARGV[4])
return {'ok', ARGV[1]}
"""


class Taken(Conflict):
    """Someone else took the conversation first (HTTP 409)."""


class AtCapacity(Conflict):
    """The agent already has as many conversations as their capacity allows (HTTP 409)."""


@dataclass
class Desk:
    store: ConversationStore
    queue: HandoffQueue
    agents: AgentStore
    audit: Audit

    def __post_init__(self) -> None:
        self.redis: Any = self.store.redis
        self.prefix = self.store.prefix
        self._accept = self.redis.register_script(_ACCEPT)

    @property
    def offers_key(self) -> str:
        return f"{self.prefix}offers"

    def open_key(self, agent_id: str) -> str:
        return f"{self.prefix}agent:{agent_id}:open"

    async def notify(self, event: dict[str, Any], agent_id: str | None = None) -> None:
        """Tell consoles: one agent's channel, or the whole desk."""
        channel = f"{self.prefix}desk:agent:{agent_id}" if agent_id else f"{self.prefix}desk"
        await self.redis.publish(channel, json.dumps(event, ensure_ascii=False))

    async def _owned(self, agent: Agent, cid: str) -> dict[str, str]:
        conv = await self.store.require(cid)
        if not agent.supervisor and (conv["state"] != Owner.ASSIGNED or conv.get("owner") != agent.id):
            raise Forbidden(f"conversation {cid} is not assigned to you")
        return conv

    # --------------------------------------------------------------- taking
    async def accept(self, agent: Agent, cid: str) -> dict[str, str]:
        conv = await self.store.require(cid)
        group = json.loads(conv.get("handoff") or "{}").get("group", "zh")
        status, owner = await self._accept(
            keys=[self.store.key(cid), self.queue.key(group), self.open_key(agent.id), self.offers_key],
            args=[agent.id, 0 if agent.supervisor else agent.capacity, int(time.time() * 1000), cid],
        )
        if status == "missing":
            raise NotFound(f"no conversation {cid!r}")
        if status == "taken":
            raise Taken(f"conversation {cid} was already taken" + (f" by {owner}" if owner else ""))
        if status == "full":
            raise AtCapacity(f"you already have {agent.capacity} open conversations (your capacity)")
        await self.audit.record("accepted", cid, agent.id)
        await self.store.append(
            cid,
            {
                "type": "assigned",
                "role": "system",
                "agent": agent.id,
                "agent_name": agent.display_name or agent.name,
            },
        )
        await self.notify({"type": "queue_changed"})
        return await self.store.require(cid)

    async def decline(self, agent: Agent, cid: str, reason: str = "declined") -> None:
        """Pass on an offer (or drop it): this agent is skipped for this conversation from now on."""
        await self.redis.sadd(f"{self.prefix}conv:{cid}:skipped", agent.id)
        await self.redis.expire(f"{self.prefix}conv:{cid}:skipped", 86400)
        offer = await self.redis.hget(self.offers_key, cid)
        if offer and json.loads(offer)["agent"] == agent.id:
            await self.redis.hdel(self.offers_key, cid)
        await self.audit.record(reason, cid, agent.id)
        await self.notify({"type": "queue_changed"})

    # -------------------------------------------------------------- talking
    async def say(
        self, agent: Agent, cid: str, text: str, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        conv = await self._owned(agent, cid)
        if not text.strip():
            raise TriageError("the message is empty")
        if client_msg_id:
            stored = await self.store.claim(cid, f"agent:{client_msg_id}")
            if stored is not None:
                return stored
        event = await self.store.append(
            cid,
            {
                "type": "message",
                "role": "agent",
                "text": text,
                "agent": agent.id,
                "agent_name": agent.display_name or agent.name,
                "client_msg_id": client_msg_id,
            },
        )
        if not conv.get("first_response_at"):
            await self.store.update(cid, first_response_at=str(event["ts"]))
            await self._check_first_response(cid, conv, event["ts"])
        if client_msg_id:
            await self.store.complete(cid, f"agent:{client_msg_id}", event)
        return event

    async def _check_first_response(self, cid: str, conv: dict[str, str], at_ms: int) -> None:
        sla = json.loads(conv.get("handoff") or "{}").get("sla") or {}
        due = sla.get("first_response_due")
        if due and at_ms / 1000 > dt.datetime.fromisoformat(due).timestamp():
            await self.record_breach(cid, "first_response", conv.get("owner", ""))

    async def record_breach(self, cid: str, kind: str, actor: str) -> None:
        if await self.redis.hsetnx(self.store.key(cid), f"breached_{kind}", str(int(time.time() * 1000))):
            await self.redis.zadd(f"{self.prefix}breaches", {f"{cid}:{kind}": time.time()})
            await self.audit.record("breached", cid, actor or "system", kind=kind)

    async def note(self, agent: Agent, cid: str, text: str) -> dict[str, Any]:
        """An internal note: in the transcript for agents, never sent to the user."""
        await self._owned(agent, cid)
        return await self.store.append(
            cid,
            {
                "type": "note",
                "role": "agent",
                "visibility": "internal",
                "text": mask_sensitive(text),
                "agent": agent.id,
                "agent_name": agent.display_name or agent.name,
            },
        )

    # ---------------------------------------------------------- ownership
    async def _release(self, cid: str, conv: dict[str, str]) -> None:
        owner = conv.get("owner")
        if owner:
            await self.redis.srem(self.open_key(owner), cid)

    async def transfer(
        self, agent: Agent, cid: str, note: str = "", to_agent: str | None = None, to_group: str | None = None
    ) -> dict[str, Any]:
        """Back to the queue (a skill group), optionally offered first to a named agent, with a note."""
        conv = await self._owned(agent, cid)
        handoff = json.loads(conv.get("handoff") or "{}")
        group = to_group or handoff.get("group", "zh")
        await self.store.transition(
            cid, Owner.QUEUED, owner="", handoff=json.dumps({**handoff, "group": group}, ensure_ascii=False)
        )
        await self._release(cid, conv)
        await self.redis.sadd(f"{self.prefix}conv:{cid}:skipped", agent.id)
        await self.queue.enqueue(cid, group, handoff.get("severity", "normal"), int(time.time() * 1000))
        if to_agent:
            await self.redis.hset(f"{self.prefix}conv:{cid}:prefer", "agent", to_agent)
        if note:
            await self.store.append(
                cid,
                {
                    "type": "note",
                    "role": "agent",
                    "visibility": "internal",
                    "text": mask_sensitive(note),
                    "agent": agent.id,
                    "transfer": True,
                },
            )
        await self.store.append(
            cid,
            {"type": "message", "role": "system", "text": "正在为您转接其他客服，请稍候。", "transfer": True},
        )
        await self.audit.record("transferred", cid, agent.id, to_agent=to_agent, to_group=group)
        await self.notify({"type": "queue_changed"})
        return {"conversation_id": cid, "state": "queued", "group": group}

    async def resolve(self, agent: Agent, cid: str) -> dict[str, Any]:
        conv = await self._owned(agent, cid)
        try:
            await self.store.transition(cid, Owner.RESOLVED, resolved_at=str(int(time.time() * 1000)))
        except TransitionError as exc:
            raise Taken(str(exc)) from exc
        await self._release(cid, conv)
        if conv.get("assigned_at"):
            handled = time.time() - int(conv["assigned_at"]) / 1000
            await self.redis.lpush(f"{self.prefix}handle_times", f"{handled:.1f}")
            await self.redis.ltrim(f"{self.prefix}handle_times", 0, 49)
        await self.store.append(cid, {"type": "resolved", "role": "system", "agent": agent.id})
        await self.store.append(cid, {"type": "csat_request", "role": "system"})
        await self.audit.record("resolved", cid, agent.id)
        await self.notify({"type": "queue_changed"})
        return {"conversation_id": cid, "state": "resolved"}

    async def handback(self, agent: Agent, cid: str) -> dict[str, Any]:
        conv = await self._owned(agent, cid)
        await self.store.transition(
            cid, Owner.BOT, owner="", pending="", last_answer_intent="", fallback_count="0"
        )
        await self._release(cid, conv)
        group = json.loads(conv.get("handoff") or "{}").get("group", "zh")
        await self.queue.remove(cid, group)
        await self.store.append(cid, {"type": "handback", "role": "system", "agent": agent.id})
        await self.audit.record("handed_back", cid, agent.id)
        await self.notify({"type": "queue_changed"})
        return {"conversation_id": cid, "state": "bot"}

    # --------------------------------------------------------------- views
    async def queue_snapshot(self, groups: tuple[str, ...] = ("zh", "en")) -> list[dict[str, Any]]:
        items = []
        for group in groups:
            for position, cid in enumerate(await self.redis.zrange(self.queue.key(group), 0, 199), 1):
                conv = await self.store.get(cid)
                if conv is None:
                    continue
                handoff = json.loads(conv.get("handoff") or "{}")
                offer = await self.redis.hget(self.offers_key, cid)
                items.append(
                    {
                        "conversation_id": cid,
                        "group": group,
                        "position": position,
                        "severity": handoff.get("severity", "normal"),
                        "reason": handoff.get("reason"),
                        "intent": handoff.get("intent"),
                        "sla": handoff.get("sla"),
                        "queued_at": int(conv.get("queued_at") or 0),
                        "channel": conv.get("channel"),
                        "escalated": bool(conv.get("escalated")),
                        "offered_to": json.loads(offer)["agent"] if offer else None,
                    }
                )
        return items
