"""One message's effects: the user's event, the replies and the bot's memory, written in one pipeline; and
the handoff, the ticket and the cancellation, each a move of the desk's state machine."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot import replies
from bot.contracts.conversation import Conversation
from bot.contracts.handoff import Handoff
from bot.contracts.parse import Parse
from bot.message import Message, Reply
from bot.ownership import Owner
from bot.privacy import mask_entity, mask_sensitive, redact
from bot.services import Services
from bot.sla import format_due, sla_clock
from bot.store.conversations import AlreadyApplied, now_ms
from bot.store.handoffs import Move, queue_score
from bot.vocabulary import Group, Script, Severity, group_for


class Turn:
    """One message's effects, gathered and then written in one pipeline (:meth:`commit`): the user's
    event, the replies, the bot's memory. Handoffs and cancellations are transitions of their own."""

    def __init__(
        self,
        services: Services,
        conv: Conversation,
        parse: Parse,
        script: str,
        message: Message,
        user_event: dict[str, Any],
        memory: dict[str, Any],
    ) -> None:
        self.s = services
        self.conv, self.parse, self.script, self.message = conv, parse, script, message
        self.events: list[dict[str, Any]] = [user_event]
        self.memory = memory
        self.handed_off: Handoff | None = None
        self.ticket_id = conv.ticket_id
        self.state = conv.state

    @property
    def cid(self) -> str:
        return self.conv.conversation_id

    def say(self, reply: Reply, role: str = "bot") -> None:
        self.events.append(
            {
                "type": "message",
                "role": role,
                "text": reply.text,
                "buttons": [b.to_dict() for b in reply.buttons],
                "link": reply.link,
                "article_id": reply.article_id,
                "script": self.script,  # the widget's labels and article links follow it
            }
        )

    async def commit(self) -> dict[str, Any]:
        """Write the turn; returns the API response (the replies with their sequence numbers).

        The same script keeps the response for retries of the message (masked, :func:`at_rest`) under its
        idempotency record: a process that dies after writing the turn leaves the retry its answer, never
        a second copy of the turn (the events' seqs follow each other, so the kept copy numbers its replies
        by their place in the turn and the store adds the first seq back)."""
        kept = at_rest(self._response(list(range(len(self.events)))))
        try:
            seqs = await self.s.store.append_many(
                self.cid, self.events, memory=self.memory, once=self.message.message_id, response=kept
            )
        except AlreadyApplied as written:  # another run of this message wrote its turn first: that one stands
            return written.response
        return self._response(seqs)

    def _response(self, seqs: list[int]) -> dict[str, Any]:
        said = [
            {"seq": seq, "text": e["text"], "buttons": e.get("buttons") or []}
            for seq, e in zip(seqs, self.events, strict=True)
            if e.get("role") in ("bot", "system") and e.get("type") == "message"
        ]
        handoff = None
        if self.handed_off is not None:
            handoff_seq = next(
                (n for n, e in zip(seqs, self.events, strict=True) if e["type"] == "handoff"), None
            )
            handoff = {**_public(self.handed_off), "seq": handoff_seq}
        return {
            "conversation_id": self.cid,
            "replies": said,
            "handoff": handoff,
            "ticket_id": self.ticket_id,
            "parse": self.parse.summary(),
            "state": self.state.value,
        }

    # ------------------------------------------------------------------ handoff
    async def handoff(
        self,
        reason: str,
        severity: Severity,
        intent: str | None = None,
        reasons: tuple[str, ...] = (),
    ) -> None:
        """Queue the conversation for a human — or, with nobody on duty, open a ticket that waits in the
        same queue for the next agent on duty. ``intent`` is the support topic for the agent's card (by
        default what the classifier said), ``reasons`` why the bot decided so."""
        s, conv, script = self.s, self.conv, self.script
        group = group_for(script)
        if conv.state is Owner.WAITING:
            await self._again_while_waiting(group)
            return
        started = now_ms()
        on_duty = s.settings.on_duty if s.settings.on_duty is not None else await s.desk.on_duty(group)
        next_shift = None if on_duty else await s.desk.next_on_duty(group)
        sla = sla_clock(severity, s.settings.sla, started, s.settings.timezone, next_shift)
        handoff = Handoff(
            reason=reason,
            severity=severity,
            sla=sla,
            group=group,
            intent=intent or self.parse.intent.name,
            trigger=redact(self.message.text, self.parse.entities)[:200],
            reasons=reasons,
        )
        score = queue_score(severity, started, conv.customer.vip_tier)
        fields = {
            "queued_at": str(started),
            "group": group.value,
            "escalated": "",
            "first_response_at": "",
            "breached_first_response": "",
            "breached_resolution": "",
            "position": "",
        }
        reason_text = replies.label(replies.REASONS, reason, script)
        s.metrics.handoffs.labels(reason, severity.value).inc()
        detail = {"reason": reason, "severity": severity.value, "group": group.value}
        if on_duty:
            await s.handoffs.transition(
                self.cid,
                Owner.QUEUED,
                Move(
                    "bot",
                    "queued",
                    group=group,
                    score=score,
                    detail=detail,
                    fields={**fields, "ticket_id": "", "handoff": handoff.to_json()},
                ),
            )
            position = await s.handoffs.position(self.cid, group) or 1
            eta = position * s.settings.average_handle_seconds
            handoff = handoff.with_queue(position, eta)
            self.events.append({"type": "handoff", **_public(handoff)})
            text = replies.say(
                "handoff_queued",
                script,
                reason=reason_text,
                ahead=position - 1,
                wait=replies.duration(eta, script),
            )
            self.say(Reply(text), role="system")
            self.handed_off, self.ticket_id, self.state = handoff, None, Owner.QUEUED
            await s.desk.on_queued(self.cid)
            return
        ticket_id = await s.handoffs.new_ticket_id()
        handoff = replace(handoff, ticket_id=ticket_id)
        ticket = self._ticket(ticket_id, handoff, started)
        await s.handoffs.transition(
            self.cid,
            Owner.WAITING,
            Move(
                "bot",
                "ticket_opened",
                group=group,
                score=score,
                ticket=ticket,
                detail={**detail, "ticket_id": ticket_id},
                fields={**fields, "ticket_id": ticket_id, "handoff": handoff.to_json()},
            ),
        )
        self.events.append({"type": "handoff", **_public(handoff)})
        params = {
            "ticket": ticket_id,
            "reason": reason_text,
            "due": format_due(sla.first_response_due),
            "tier": replies.label(replies.TIERS, severity, script),
            "first": replies.duration(sla.first_response_seconds, script),
        }
        if sla.scheduled_from:
            self.say(
                Reply(
                    replies.say(
                        "handoff_ticket_scheduled", script, shift=format_due(sla.scheduled_from), **params
                    )
                ),
                role="system",
            )
        else:
            self.say(Reply(replies.say("handoff_ticket", script, **params)), role="system")
        self.handed_off, self.ticket_id, self.state = handoff, ticket_id, Owner.WAITING
        await s.desk.on_ticket({**ticket, "sla": sla.to_dict()})

    def _ticket(self, ticket_id: str, handoff: Handoff, started: int) -> dict[str, Any]:
        customer = self.conv.customer
        return {
            "ticket_id": ticket_id,
            "conversation_id": self.cid,
            "status": "open",
            "severity": handoff.severity.value,
            "reason": handoff.reason,
            "intent": handoff.intent or "",
            "group": handoff.group.value,
            "channel": self.conv.channel,
            "summary": handoff.trigger,
            "sla": handoff.sla.to_dict(),
            "due_ts": handoff.sla.first_due_ts(),
            "created_at": handoff.sla.started_at,
            "created_ms": started,
            "customer": {
                "verified": customer.verified,
                "user": customer.user,
                "name": customer.name,
                "tenant": customer.tenant,
                "vip_tier": customer.vip_tier,
            },
            "customer_key": customer.customer_key or "",
        }

    async def _again_while_waiting(self, group: Group) -> None:
        """The user asks for a human again while their ticket waits: if somebody is on duty now, the ticket
        becomes a live wait (keeping its place in the queue); otherwise, remind them of the ticket."""
        s, script = self.s, self.script
        on_duty = s.settings.on_duty if s.settings.on_duty is not None else await s.desk.on_duty(group)
        handoff = self.conv.handoff
        if on_duty and handoff is not None:
            await s.handoffs.transition(self.cid, Owner.QUEUED, Move("user", "queued", group=handoff.group))
            position = await s.handoffs.position(self.cid, handoff.group) or 1
            eta = position * s.settings.average_handle_seconds
            reason = replies.label(replies.REASONS, handoff.reason, script)
            text = replies.say(
                "handoff_queued",
                script,
                reason=reason,
                ahead=position - 1,
                wait=replies.duration(eta, script),
            )
            self.say(Reply(text), role="system")
            self.handed_off, self.state = handoff.with_queue(position, eta), Owner.QUEUED
            await s.desk.on_queued(self.cid)
            return
        due = format_due(handoff.sla.first_response_due) if handoff else ""
        self.say(
            Reply(replies.say("ticket_pending", script, ticket=self.ticket_id or "", due=due)), role="system"
        )

    async def cancel_handoff(self) -> None:
        """ "取消转人工": back to the bot; a ticket is cancelled with it."""
        await self.s.handoffs.transition(self.cid, Owner.BOT, Move("user", "cancelled"))
        self.state = Owner.BOT
        note = ""
        if self.ticket_id:
            note = (
                f"（工单 {self.ticket_id} 已撤销）"
                if self.script != Script.LATN
                else f" (ticket {self.ticket_id} withdrawn)"
            )
        self.events.append({"type": "handoff_cancelled", "role": "user", "ticket_id": self.ticket_id})
        self.say(
            Reply(
                replies.say("handoff_cancelled", self.script, ticket_note=replies.localize(note, self.script))
            ),
            role="system",
        )
        self.memory.update(pending="", last_answer_intent="", fallback_count="0")
        await self.s.desk.on_queued(self.cid)  # consoles refresh their queue


def _public(handoff: Handoff) -> dict[str, Any]:
    """The handoff as the transcript and the API show it (the trigger is in the user's own event)."""
    out = handoff.to_dict()
    out.pop("trigger", None)
    return out


def at_rest(response: dict[str, Any]) -> dict[str, Any]:
    """A message's response as kept for retries (a day): the parse's entities and the replies masked. A
    retry gets this copy; the first delivery got the unmasked one."""
    parse = response.get("parse") or {}
    return {
        **response,
        "replies": [{**r, "text": mask_sensitive(r["text"])} for r in response.get("replies") or ()],
        "parse": {**parse, "entities": [mask_entity(e) for e in parse.get("entities") or ()]},
    }
