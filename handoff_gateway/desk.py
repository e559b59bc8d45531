"""The support desk: what agents do to conversations — take (atomically), decline, talk, note, transfer,
resolve, hand back — with every change going through the one state machine (bot/store/handoffs.py), and
written to the conversation's stream so it reaches the user on whatever channel and process they are on.

Tickets are conversations too: an agent accepts, answers and resolves one exactly like a live chat."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from bot.contracts.conversation import Conversation
from bot.errors import Conflict, EmptyMessage, Forbidden
from bot.ownership import IN_QUEUE, Owner, TransitionError
from bot.privacy import mask_sensitive
from bot.store.conversations import ConversationStore
from bot.store.handoffs import AtCapacity, HandoffStore, Move, queue_score
from bot.store.keys import DAY
from bot.vocabulary import GROUPS, Group
from handoff_gateway.agents import Agent, AgentStore
from handoff_gateway.audit import Audit
from handoff_gateway.tags import set_tags

__all__ = ["AtCapacity", "Desk", "Taken", "visible_to"]


class Taken(Conflict):
    """Someone else took (or closed) the conversation first (HTTP 409)."""


def visible_to(agent: Agent, conv: Conversation, offered_to: str | None) -> bool:
    """Whether ``agent`` may read a conversation (its context card, attachments, its row in the list):
    supervisors any; an agent one assigned to them, one waiting for a human that is offered to them or sits
    in the queue of one of their skill groups (one they may accept), or one they resolved themselves (to
    read back, not to act on)."""
    if agent.supervisor or (conv.state is Owner.ASSIGNED and conv.owner == agent.id):
        return True
    if conv.state is Owner.RESOLVED:
        return conv.raw.get("resolved_by") == agent.id
    return conv.state in IN_QUEUE and (conv.group.value in agent.skills or offered_to == agent.id)


@dataclass
class Desk:
    store: ConversationStore
    handoffs: HandoffStore
    agents: AgentStore
    audit: Audit

    def __post_init__(self) -> None:
        self.redis: Any = self.store.redis
        self.keys = self.handoffs.keys

    async def notify(self, event: dict[str, Any], agent_id: str | None = None) -> None:
        """Tell consoles: one agent's channel, or the whole desk."""
        channel = self.keys.agent_channel(agent_id) if agent_id else self.keys.desk_channel
        await self.redis.publish(channel, json.dumps(event, ensure_ascii=False))

    async def _owned(self, agent: Agent, cid: str) -> Conversation:
        """The conversation, when ``agent`` owns it (supervisors may act on any human-held one)."""
        conv = await self.store.load(cid)
        if agent.supervisor:
            return conv
        if conv.state is not Owner.ASSIGNED or conv.owner != agent.id:
            raise Forbidden(f"conversation {cid} is not assigned to you")
        return conv

    async def _offered_to(self, cid: str) -> str | None:
        offer = await self.redis.hget(self.keys.offers, cid)
        return str(json.loads(offer)["agent"]) if offer else None

    async def viewable(self, agent: Agent, cid: str) -> Conversation:
        """The conversation, when ``agent`` may read it (:func:`visible_to`); anything else is 403."""
        conv = await self.store.load(cid)
        if visible_to(agent, conv, await self._offered_to(cid) if conv.state in IN_QUEUE else None):
            return conv
        raise Forbidden(f"conversation {cid} is neither yours nor waiting in one of your queues")

    # --------------------------------------------------------------- taking
    async def accept(self, agent: Agent, cid: str) -> Conversation:
        """Take a queued conversation or a waiting ticket: exactly one agent wins, within its capacity.

        Accepting again what this agent already holds completes the first accept: a process killed between
        the state change and the announcement left the user unaware, and the console, which got no answer,
        retries (the announcement is made once per accept, keyed by its ``assigned_at``)."""
        await self.store.require(cid)
        assigned_at = int(time.time() * 1000)
        try:
            previous: Owner | None = await self.handoffs.transition(
                cid,
                Owner.ASSIGNED,
                Move(
                    agent.id,
                    "accepted",
                    owner=agent.id,
                    capacity=0 if agent.supervisor else agent.capacity,
                    fields={"assigned_at": str(assigned_at)},
                ),
            )
        except TransitionError as exc:
            if exc.current is not Owner.ASSIGNED:  # nobody took it: it is not waiting for a human at all
                raise Taken(
                    f"conversation {cid} is {exc.current}: only queued conversations and waiting tickets "
                    "can be accepted"
                ) from exc
            conv = await self.store.load(cid)
            if conv.owner != agent.id or not conv.assigned_at:
                by = f" by {conv.owner}" if conv.owner else ""
                raise Taken(f"conversation {cid} was already taken{by} (it is {exc.current})") from exc
            previous, assigned_at = None, conv.assigned_at  # this agent's own accept, retried
        await self._announce(agent, cid, assigned_at, previous)
        await self.notify({"type": "queue_changed"})
        return await self.store.load(cid)

    async def _announce(self, agent: Agent, cid: str, assigned_at: int, previous: Owner | None) -> None:
        """Append the ``assigned`` event of the accept made at ``assigned_at`` — once, however often the accept
        is completed (an idempotent append keyed by it)."""
        event: dict[str, Any] = {
            "type": "assigned",
            "role": "system",
            "agent": agent.id,
            "agent_name": agent.display_name or agent.name,
        }
        if previous is not None:  # unknown when completing an accept cut short
            event["from"] = previous.value
        await self.store.append(cid, event, once=f"assigned:{assigned_at}")

    async def decline(self, agent: Agent, cid: str, reason: str = "declined") -> None:
        """Pass on an offer (or let it expire): this agent is skipped for this conversation from now on.
        Only the agent the conversation is offered to can decline it (403 for anyone else)."""
        await self.store.require(cid)
        if await self._offered_to(cid) != agent.id:
            raise Forbidden(f"conversation {cid} is not offered to you: only an offer can be declined")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.skipped(cid), agent.id)
            pipe.expire(self.keys.skipped(cid), DAY)
            pipe.hdel(self.keys.offers, cid)
            await pipe.execute()
        await self.audit.record(reason, cid, agent.id)
        await self.notify({"type": "queue_changed"})

    # -------------------------------------------------------------- talking
    async def say(
        self, agent: Agent, cid: str, text: str, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        conv = await self._owned(agent, cid)
        if not text.strip():
            raise EmptyMessage()
        if conv.state is not Owner.ASSIGNED:
            raise Conflict(f"conversation {cid} is {conv.state}: accept it before replying")
        if client_msg_id:
            stored = await self.store.claim(cid, f"agent:{client_msg_id}")
            if stored is not None:
                return stored
        try:
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
                once=f"agent:{client_msg_id}" if client_msg_id else None,
            )
        except BaseException:
            if client_msg_id:  # unless it was stored, a retry with the same id must not wait out the claim
                await self.store.release(cid, f"agent:{client_msg_id}")
            raise
        if not conv.first_response_at:
            await self.store.update(cid, first_response_at=str(event["ts"]))
            await self._check_first_response(cid, conv, event["ts"])
        if client_msg_id:
            await self.store.complete(cid, f"agent:{client_msg_id}", event)
        return event

    async def _check_first_response(self, cid: str, conv: Conversation, at_ms: int) -> None:
        if conv.handoff and at_ms / 1000 > conv.handoff.sla.first_due_ts():
            await self.record_breach(cid, "first_response", conv.owner)

    async def record_breach(self, cid: str, kind: str, actor: str) -> None:
        if await self.redis.hsetnx(self.keys.handoff(cid), f"breached_{kind}", str(int(time.time() * 1000))):
            await self.redis.zadd(self.keys.breaches, {f"{cid}:{kind}": time.time()})
            await self.audit.record("breached", cid, actor or "system", kind=kind)

    async def typing(self, agent: Agent, cid: str) -> None:
        """An ephemeral "agent is typing" signal, into a conversation the agent may write to (as ``say``)."""
        conv = await self._owned(agent, cid)
        if conv.state is not Owner.ASSIGNED:
            raise Conflict(f"conversation {cid} is {conv.state}: accept it before typing")
        await self.redis.publish(self.keys.typing_channel, json.dumps({"c": cid, "role": "agent"}))

    async def tag(self, agent: Agent, cid: str, tags: list[str]) -> list[str]:
        """Replace the conversation's tags (handoff_gateway/tags.py): its owner, or a supervisor."""
        await self._owned(agent, cid)
        return await set_tags(self.store, cid, tags)

    async def note(self, agent: Agent, cid: str, text: str) -> dict[str, Any]:
        """An internal note: in the transcript for agents, never sent to the user."""
        await self._owned(agent, cid)
        if not text.strip():
            raise EmptyMessage()
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
    async def transfer(
        self, agent: Agent, cid: str, note: str = "", to_agent: str | None = None, to_group: str | None = None
    ) -> dict[str, Any]:
        """Back to the queue (a skill group), optionally offered first to a named agent, with a note."""
        conv = await self._owned(agent, cid)
        group = Group(to_group) if to_group else conv.group
        handoff = conv.handoff
        fields: dict[str, str] = {"group": group.value, "assigned_at": ""}
        if handoff is not None:
            fields["handoff"] = json.dumps({**handoff.to_dict(), "group": group.value}, ensure_ascii=False)
        severity = handoff.severity.value if handoff else conv.severity.value
        await self.handoffs.transition(
            cid,
            Owner.QUEUED,
            Move(
                agent.id,
                "transferred",
                group=group,
                # An escalated conversation keeps its raised priority when it goes back to the queue.
                score=queue_score(
                    severity,
                    conv.queued_at or int(time.time() * 1000),
                    conv.customer.vip_tier,
                    conv.escalated,
                ),
                fields=fields,
                detail={"to_agent": to_agent, "to_group": group.value},
            ),
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.skipped(cid), agent.id)
            pipe.expire(self.keys.skipped(cid), DAY)
            if to_agent:
                pipe.set(self.keys.prefer(cid), to_agent, ex=DAY)
            await pipe.execute()
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
        await self.notify({"type": "queue_changed"})
        return {"conversation_id": cid, "state": "queued", "group": group.value}

    async def resolve(self, agent: Agent, cid: str) -> dict[str, Any]:
        """Close it: the owner, or a supervisor for any conversation waiting for or held by a human (a
        queued one leaves the queue; a ticket is resolved with it)."""
        conv = await self._owned(agent, cid)
        try:
            await self.handoffs.transition(
                cid,
                Owner.RESOLVED,
                Move(
                    agent.id,
                    "resolved",
                    fields={"resolved_at": str(int(time.time() * 1000)), "resolved_by": agent.id},
                ),
            )
        except TransitionError as exc:
            raise Taken(str(exc)) from exc
        if conv.assigned_at:
            handled = time.time() - conv.assigned_at / 1000
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(self.keys.handle_times, f"{handled:.1f}")
                pipe.ltrim(self.keys.handle_times, 0, 49)
                await pipe.execute()
        await self.store.append(
            cid, {"type": "resolved", "role": "system", "agent": agent.id, "ticket_id": conv.ticket_id}
        )
        await self.store.append(cid, {"type": "csat_request", "role": "system"})
        await self.notify({"type": "queue_changed"})
        return {"conversation_id": cid, "state": "resolved", "ticket_id": conv.ticket_id}

    async def handback(self, agent: Agent, cid: str) -> dict[str, Any]:
        """Give the conversation back to the bot (a waiting ticket is cancelled with it)."""
        await self._owned(agent, cid)
        try:
            await self.handoffs.transition(cid, Owner.BOT, Move(agent.id, "handed_back"))
        except TransitionError as exc:
            raise Taken(str(exc)) from exc
        await self.store.update(cid, pending="", last_answer_intent="", fallback_count="0")
        await self.store.append(cid, {"type": "handback", "role": "system", "agent": agent.id})
        await self.notify({"type": "queue_changed"})
        return {"conversation_id": cid, "state": "bot"}

    # --------------------------------------------------------------- views
    async def queue_snapshot(self, groups: tuple[Group, ...] = GROUPS) -> list[dict[str, Any]]:
        """What agents see in their queue: live handoffs and waiting tickets, in the order they are offered."""
        items = []
        for group in groups:
            ids = await self.handoffs.queued(group, 0, 199)
            async with self.redis.pipeline(transaction=False) as pipe:
                for cid in ids:
                    pipe.hgetall(self.store.key(cid))
                    pipe.hgetall(self.keys.handoff(cid))
                pipe.hgetall(self.keys.offers)
                rows = await pipe.execute()
            offers = {k: json.loads(v)["agent"] for k, v in rows[-1].items()}
            for position, cid in enumerate(ids, 1):
                record, desk = rows[2 * (position - 1)], rows[2 * (position - 1) + 1]
                if not record:
                    continue
                conv = Conversation.from_redis({**record, **desk})
                handoff = conv.handoff
                items.append(
                    {
                        "conversation_id": cid,
                        "group": group.value,
                        "position": position,
                        "state": conv.state.value,
                        "ticket_id": conv.ticket_id,
                        "severity": handoff.severity.value if handoff else conv.severity.value,
                        "reason": handoff.reason if handoff else None,
                        "intent": handoff.intent if handoff else None,
                        "sla": handoff.sla.to_dict() if handoff else None,
                        "queued_at": conv.queued_at,
                        "channel": conv.channel,
                        "vip_tier": conv.customer.vip_tier,
                        "escalated": conv.escalated,
                        "offered_to": offers.get(cid),
                    }
                )
        return items
