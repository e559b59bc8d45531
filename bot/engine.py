"""The conversation engine: one path for every channel — parse, decide, then answer / clarify / hand off /
open a ticket — with every event written to the conversation's transcript on Redis.

A plain answer costs four Redis round trips: the idempotency claim, reading the conversation (one
pipeline), one pipeline that appends the user's message and every reply and saves the bot's memory, and
storing the response for retries. The NLU parse and the KB search run in the CPU pool, off the loop.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot import replies
from bot.contracts.conversation import Conversation
from bot.contracts.handoff import Handoff
from bot.contracts.parse import Parse
from bot.cpu import CpuPool, run_cpu
from bot.kb.answer import Answer, NoAnswer, compose_answer
from bot.kb.search import KnowledgeBase
from bot.message import Button, Message, Reply
from bot.metrics import Metrics
from bot.nlu.pipeline import NLUPipeline
from bot.ownership import Owner, TransitionError, human_owns
from bot.policy.cancel import is_cancel
from bot.policy.decide import (
    HELPFUL,
    HUMAN,
    NO_HUMAN,
    NON_SUPPORT,
    NOT_HELPFUL,
    ConversationView,
    Decision,
    decide,
    payload_intent,
)
from bot.privacy import mask_sensitive
from bot.settings import Settings
from bot.sla import format_due, sla_clock
from bot.store.conversations import ConversationStore, now_ms
from bot.store.handoffs import HandoffStore, Move, queue_score
from bot.vocabulary import Group, Script, Severity, group_for

logger = logging.getLogger(__name__)


@dataclass
class DeskHooks:
    """What the engine needs from the human desk (the handoff gateway supplies it; the engine does not
    import the gateway)."""

    on_duty: Callable[[str], Awaitable[bool]]  # is an agent of this skill group on duty now?
    next_on_duty: Callable[[str], Awaitable[dt.datetime | None]]  # when does the next shift start?
    on_queued: Callable[[str], Awaitable[None]]  # wake the dispatcher, refresh consoles
    on_ticket: Callable[[dict[str, Any]], Awaitable[None]]  # nobody on duty: page on-call


async def _never_on_duty(group: str) -> bool:
    return False


async def _no_schedule(group: str) -> dt.datetime | None:
    return None


async def _nothing(*args: Any) -> None:
    return None


def no_desk() -> DeskHooks:
    """The bot alone: nobody is ever on duty, so handoffs open tickets."""
    return DeskHooks(_never_on_duty, _no_schedule, _nothing, _nothing)


@dataclass
class Services:
    settings: Settings
    nlu: NLUPipeline
    kb: KnowledgeBase
    store: ConversationStore
    handoffs: HandoffStore
    metrics: Metrics
    cpu: CpuPool | None = None
    desk: DeskHooks = field(default_factory=no_desk)


class Engine:
    def __init__(self, services: Services) -> None:
        self.s = services

    # ------------------------------------------------------------------ entry
    async def handle(self, message: Message) -> dict[str, Any]:
        """Process one inbound message exactly once (a retry with the same id gets the first response).
        The caller has checked that the conversation exists and that the sender may write to it."""
        store = self.s.store
        stored = await store.claim(message.conversation_id, message.message_id)
        if stored is not None:
            self.s.metrics.duplicates.inc()
            return stored
        started = time.perf_counter()
        try:
            response = await self._process(message)
        except BaseException:
            await store.release(message.conversation_id, message.message_id)
            raise
        await store.complete(message.conversation_id, message.message_id, response)
        self.s.metrics.reply_latency.observe(time.perf_counter() - started)
        return response

    # --------------------------------------------------------------- the path
    async def _process(self, message: Message) -> dict[str, Any]:
        store, metrics = self.s.store, self.s.metrics
        cid = message.conversation_id
        conv = await store.load(cid)
        parse = await self._parse(message.text)
        metrics.messages.labels(message.channel).inc()
        metrics.intents.labels(parse.intent.name).inc()
        script = _reply_script(message.text, parse.script, conv.script)
        user_event = {
            "type": "message",
            "role": "user",
            "text": mask_sensitive(message.text),
            "channel": message.channel,
            "client_msg_id": message.message_id,
            "intent": parse.intent.name,
            "confidence": parse.intent.confidence,
            "severity": parse.severity.level.value,
        }
        memory: dict[str, Any] = {
            "language": parse.language,
            "script": script,
            "entities": json.dumps(
                [
                    {
                        "entity": e.entity,
                        "value": mask_sensitive(e.value) if isinstance(e.value, str) else e.value,
                        "text": mask_sensitive(e.text),
                    }
                    for e in parse.entities
                ],
                ensure_ascii=False,
            ),
            "last_intents": json.dumps([parse.intent.name, *conv.last_intents][:5]),
        }
        turn = Turn(self, conv, parse, script, message, user_event, memory)
        state = conv.state
        if state is Owner.RESOLVED:
            await self.s.handoffs.transition(cid, Owner.BOT, Move("user", "reopened"))
            memory.update(pending="", last_answer_intent="", fallback_count="0")
            conv = await store.load(cid)
            turn.conv, turn.state, state = conv, Owner.BOT, Owner.BOT
            turn.ticket_id = None  # the closed ticket belongs to the last visit

        if state in (Owner.QUEUED, Owner.WAITING) and is_cancel(message.text):
            await turn.cancel_handoff()
        elif human_owns(state):
            # A human owns the conversation (or is about to): the bot stays silent, the agent sees the
            # message in the stream. Waiting in the queue, the user hears where they stand.
            if state is Owner.QUEUED:
                decision = decide(parse, ConversationView(), None)
                if decision.action == "ticket_status":
                    turn.say(await self._ticket_status_reply(decision.ticket_id or "", script))
                else:
                    turn.say(await self._queue_status_reply(conv, script), role="system")
        else:
            await self._bot_turn(turn)
        return await turn.commit()

    async def _bot_turn(self, turn: Turn) -> None:
        conv, parse, script = turn.conv, turn.parse, turn.script
        view = ConversationView(conv.fallback_count, conv.last_answer_intent or None, conv.pending)
        kb_answer = await self._kb_answer(parse, view)
        decision = decide(parse, view, kb_answer, self.s.settings.fallbacks_before_handoff)
        severity = Severity.highest(parse.severity.level, conv.severity)
        turn.memory.update(
            fallback_count=str(decision.fallback_count),
            pending=json.dumps(decision.pending, ensure_ascii=False) if decision.pending else "",
            # Remembered to spot "the same problem again"; "helpful" or any other turn clears it.
            last_answer_intent=decision.answered_intent or "",
            severity=severity.value,
        )
        for reply in self._replies(decision, script):
            turn.say(reply)
        metrics = self.s.metrics
        if decision.action == "ticket_status":
            turn.say(await self._ticket_status_reply(decision.ticket_id or "", script))
        elif decision.action == "answer":
            metrics.answers.labels("answered").inc()
        elif decision.reason == "no_kb_answer":
            metrics.answers.labels("no_answer").inc()
        if decision.action == "rephrase":
            metrics.fallbacks.inc()
        if decision.action == "handoff":
            try:
                await turn.handoff(decision.reason or "user_request", severity)
            except TransitionError:
                # Another message of this user handed off a moment earlier: say where they stand.
                turn.conv = await self.s.store.load(conv.conversation_id)
                turn.state = turn.conv.state
                if turn.state is Owner.QUEUED:
                    turn.say(await self._queue_status_reply(turn.conv, script), role="system")

    async def _parse(self, text: str) -> Parse:
        started = time.perf_counter()
        parse = await run_cpu(self.s.cpu, self.s.nlu.parse_typed, text)
        self.s.metrics.parse_latency.observe(time.perf_counter() - started)
        forced = payload_intent(text)
        if forced in {*self.s.nlu.intents, "helpful", "not_helpful", "no_human"}:
            parse = parse.with_intent(forced)
        return parse

    async def _kb_answer(self, parse: Parse, view: ConversationView) -> Answer | NoAnswer | None:
        intent = parse.intent.name
        if intent in NON_SUPPORT:
            return None
        query = parse.text
        if payload_intent(query):
            # A clarification button: search with what the user wrote before, steered by the chosen intent.
            pending = view.pending or {}
            query = pending.get("text") or replies.label(replies.INTENT_LABELS, intent, parse.script)
        lang = group_for(parse.script).value
        result = await run_cpu(self.s.cpu, self.s.kb.search, query, lang=lang, top=3, intent=intent)
        return compose_answer(parse.to_rasa(), result, self.s.kb.index.config.answer)

    def _replies(self, d: Decision, script: str) -> list[Reply]:
        say = replies.say
        if d.action == "reply" and d.text_key:
            return [Reply(say(d.text_key, script))]
        if d.action == "rephrase":
            lang = replies.base_language(script)
            examples = replies.localize(replies.FALLBACK_EXAMPLES[lang], script)
            return [Reply(say("rephrase", script, examples=examples))]
        if d.action == "clarify":
            buttons = tuple(
                Button(replies.label(replies.INTENT_LABELS, i, script), f"/{i}") for i in d.options
            )
            return [Reply(say("clarify", script), buttons)]
        if d.action == "offer_human":
            key = "offer_human" if d.reason == "not_helpful" else "no_kb_answer"
            return [
                Reply(
                    say(key, script),
                    (Button(say("yes_human", script), HUMAN), Button(say("no_thanks", script), NO_HUMAN)),
                )
            ]
        if d.action == "answer" and d.answer:
            return [self._answer_reply(d.answer, script)]
        return []

    def _answer_reply(self, answer: Answer, script: str) -> Reply:
        lines = [replies.say("answer_intro", script, title=replies.localize(answer.title, script))]
        if answer.other_language:
            lines.append(replies.say("answer_other_language", script))
        # Chat text is plain: the article's Markdown emphasis would show as stray asterisks.
        lines += [
            f"{i}. {replies.localize(_plain(step), script)}" for i, step in enumerate(answer.steps[:6], 1)
        ]
        lines.append(replies.say("answer_more", script, link=answer.link))
        lines.append(replies.say("was_it_helpful", script))
        buttons = (
            Button(replies.say("helpful", script), HELPFUL),
            Button(replies.say("not_helpful", script), NOT_HELPFUL),
        )
        return Reply("\n".join(lines), buttons, answer.link, answer.article_id)

    async def _ticket_status_reply(self, ticket_id: str, script: str) -> Reply:
        ticket = await self.s.handoffs.ticket(ticket_id)
        if ticket is None:
            return Reply(replies.say("ticket_unknown", script, ticket=ticket_id))
        text = replies.say(
            "ticket_status",
            script,
            ticket=ticket["ticket_id"],
            status=replies.label(replies.TICKET_STATUS, ticket["status"], script),
            tier=replies.label(replies.TIERS, ticket["severity"], script),
            due=format_due(ticket["sla"]["first_response_due"]),
        )
        return Reply(text)

    async def _queue_status_reply(self, conv: Conversation, script: str) -> Reply:
        group = conv.group.value
        position = await self.s.handoffs.position(conv.conversation_id, group) or 1
        eta = position * self.s.settings.average_handle_seconds
        return Reply(
            replies.say("still_queued", script, ahead=position - 1, wait=replies.duration(eta, script))
        )


class Turn:
    """One message's effects, gathered and then written in one pipeline (:meth:`commit`): the user's
    event, the replies, the bot's memory. Handoffs and cancellations are transitions of their own."""

    def __init__(
        self,
        engine: Engine,
        conv: Conversation,
        parse: Parse,
        script: str,
        message: Message,
        user_event: dict[str, Any],
        memory: dict[str, Any],
    ) -> None:
        self.engine, self.s = engine, engine.s
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
            }
        )

    async def commit(self) -> dict[str, Any]:
        """Write the turn; returns the API response (the replies with their sequence numbers)."""
        store = self.s.store
        seqs = await store.append_many(self.cid, self.events, memory=self.memory)
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
    async def handoff(self, reason: str, severity: Severity) -> None:
        """Queue the conversation for a human — or, with nobody on duty, open a ticket that waits in the
        same queue for the next agent on duty."""
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
            intent=self.parse.intent.name,
            trigger=mask_sensitive(self.message.text)[:200],
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
            "customer_key": customer.key,
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


def _plain(markdown: str) -> str:
    return re.sub(r"\*\*|__|`", "", markdown)


def _reply_script(text: str, detected: str, previous: str) -> str:
    """The script to answer in: a button payload, or a message too short to tell (a few Latin letters,
    digits, emoji), keeps the conversation's language."""
    if previous and (
        payload_intent(text) or (detected == Script.LATN and len(re.findall(r"[A-Za-z]+", text)) <= 2)
    ):
        return previous
    return detected
