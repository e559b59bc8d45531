"""The conversation engine: one path for every channel — parse, decide, then answer / clarify / hand off /
open a ticket — with every event written to the conversation's transcript on Redis."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot import replies
from bot.kb.answer import Answer, NoAnswer, compose_answer
from bot.kb.search import KnowledgeBase
from bot.message import Button, Message, Reply
from bot.metrics import Metrics
from bot.nlu.pipeline import NLUPipeline
from bot.ownership import Owner, human_owns
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
from bot.sla import sla_clock
from bot.store.conversations import ConversationStore, now_ms
from bot.store.queue import HandoffQueue
from bot.store.tickets import TicketStore

logger = logging.getLogger(__name__)
SEVERITY_ORDER = ("normal", "important", "urgent")


@dataclass
class Services:
    settings: Settings
    nlu: NLUPipeline
    kb: KnowledgeBase
    store: ConversationStore
    tickets: TicketStore
    queue: HandoffQueue
    metrics: Metrics
    # From the handoff gateway: is an agent of this group on duty now, and a hook to wake the dispatcher.
    duty: Callable[[str], Awaitable[bool]] | None = None
    on_queued: Callable[[str], Awaitable[None]] | None = None
    on_ticket: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # nobody on duty: page on-call


class Engine:
    def __init__(self, services: Services) -> None:
        self.s = services

    # ------------------------------------------------------------------ entry
    async def handle(self, message: Message) -> dict[str, Any]:
        """Process one inbound message exactly once (a retry with the same id gets the first response)."""
        store = self.s.store
        await store.require(message.conversation_id)
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
        conv = await store.require(cid)
        parse = self._parse(message.text)
        metrics.messages.labels(message.channel).inc()
        metrics.intents.labels(parse["intent"]["name"]).inc()
        script = _reply_script(message.text, parse["script"], conv.get("script") or "")
        await store.append(
            cid,
            {
                "type": "message",
                "role": "user",
                "text": mask_sensitive(message.text),
                "channel": message.channel,
                "client_msg_id": message.message_id,
                "intent": parse["intent"]["name"],
                "confidence": parse["intent"]["confidence"],
                "severity": parse["severity"]["level"],
            },
        )
        state = Owner(conv["state"])
        updates: dict[str, Any] = {
            "language": parse["language"],
            "script": script,
            "entities": json.dumps(
                [
                    {
                        "entity": e["entity"],
                        "value": mask_sensitive(e["value"]) if isinstance(e["value"], str) else e["value"],
                        "text": mask_sensitive(e["text"]),
                    }
                    for e in parse["entities"]
                ],
                ensure_ascii=False,
            ),
            "last_intents": json.dumps(
                ([parse["intent"]["name"], *json.loads(conv.get("last_intents") or "[]")])[:5]
            ),
        }
        result: dict[str, Any] = {
            "conversation_id": cid,
            "replies": [],
            "handoff": None,
            "ticket_id": conv.get("ticket_id") or None,
            "parse": _parse_summary(parse),
        }
        if state is Owner.RESOLVED:
            await store.transition(
                cid, Owner.BOT, owner="", pending="", last_answer_intent="", fallback_count="0"
            )
            conv = await store.require(cid)
            state = Owner.BOT
        if human_owns(state):
            # A human owns the conversation: the bot stays silent; the agent sees the message in the stream.
            decision = decide(parse, ConversationView(), None)
            if state is Owner.QUEUED and decision.action == "ticket_status":
                result["replies"] += await self._ticket_status(cid, decision.ticket_id or "", script)
            elif state is Owner.QUEUED:
                result["replies"].append(await self._queue_status(cid, conv, script))
            await store.update(cid, **updates)
            result["state"] = state.value
            return result

        view = ConversationView(
            int(conv.get("fallback_count") or 0),
            conv.get("last_answer_intent") or None,
            json.loads(conv["pending"]) if conv.get("pending") else None,
        )
        kb_answer = self._kb_answer(parse, view)
        decision = decide(parse, view, kb_answer, self.s.settings.fallbacks_before_handoff)
        updates["fallback_count"] = str(decision.fallback_count)
        updates["pending"] = json.dumps(decision.pending, ensure_ascii=False) if decision.pending else ""
        # Remembered to spot "the same problem again"; "helpful" or any other turn clears it.
        updates["last_answer_intent"] = decision.answered_intent or ""
        severity = max(parse["severity"]["level"], conv.get("severity") or "normal", key=SEVERITY_ORDER.index)
        updates["severity"] = severity
        await store.update(cid, **updates)

        for reply in self._replies(decision, parse, script):
            result["replies"].append(await self._say(cid, reply))
        if decision.action == "ticket_status":
            result["replies"] += await self._ticket_status(cid, decision.ticket_id or "", script)
        if decision.action == "answer":
            metrics.answers.labels("answered").inc()
        elif decision.reason == "no_kb_answer":
            metrics.answers.labels("no_answer").inc()
        if decision.action == "rephrase":
            metrics.fallbacks.inc()
        if decision.action == "handoff":
            handoff, ticket, said = await self.handoff(
                cid, decision.reason or "user_request", severity, script, parse, message
            )
            result["replies"] += said
            result["handoff"], result["ticket_id"] = handoff, ticket or result["ticket_id"]
        result["state"] = (await store.require(cid))["state"]
        return result

    def _parse(self, text: str) -> dict[str, Any]:
        started = time.perf_counter()
        parse = self.s.nlu.parse(text)
        self.s.metrics.parse_latency.observe(time.perf_counter() - started)
        forced = payload_intent(text)
        if forced in {*self.s.nlu.intents, "helpful", "not_helpful", "no_human"}:
            parse["intent"] = {"name": forced, "confidence": 1.0}
            parse["ambiguous"] = False
        return parse

    def _kb_answer(self, parse: dict[str, Any], view: ConversationView) -> Answer | NoAnswer | None:
        intent = parse["intent"]["name"]
        if intent in NON_SUPPORT:
            return None
        query = parse["text"]
        if payload_intent(query):
            # A clarification button: search with what the user wrote before, steered by the chosen intent.
            pending = view.pending or {}
            query = pending.get("text") or replies.label(replies.INTENT_LABELS, intent, parse["script"])
        lang = "en" if parse["script"] == "Latn" else "zh"
        result = self.s.kb.search(query, lang=lang, top=3, intent=intent)
        return compose_answer(parse, result, self.s.kb.index.config.answer)

    def _replies(self, d: Decision, parse: dict[str, Any], script: str) -> list[Reply]:
        say = replies.say
        if d.action == "reply" and d.text_key:
            return [Reply(say(d.text_key, script))]
        if d.action == "rephrase":
            lang = replies.base_language(script)
            return [
                Reply(
                    say(
                        "rephrase", script, examples=replies.localize(replies.FALLBACK_EXAMPLES[lang], script)
                    )
                )
            ]
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

    async def _say(self, cid: str, reply: Reply, role: str = "bot") -> dict[str, Any]:
        event = await self.s.store.append(
            cid,
            {
                "type": "message",
                "role": role,
                "text": reply.text,
                "buttons": [b.to_dict() for b in reply.buttons],
                "link": reply.link,
                "article_id": reply.article_id,
            },
        )
        return {"seq": event["seq"], "text": reply.text, "buttons": [b.to_dict() for b in reply.buttons]}

    async def _ticket_status(self, cid: str, ticket_id: str, script: str) -> list[dict[str, Any]]:
        ticket = await self.s.tickets.get(ticket_id)
        if ticket is None:
            return [await self._say(cid, Reply(replies.say("ticket_unknown", script, ticket=ticket_id)))]
        text = replies.say(
            "ticket_status",
            script,
            ticket=ticket_id,
            status=ticket["status"],
            tier=replies.label(replies.TIERS, ticket["severity"], script),
            due=ticket["sla"]["first_response_due"].replace("T", " ")[:16],
        )
        return [await self._say(cid, Reply(text))]

    async def _queue_status(self, cid: str, conv: dict[str, str], script: str) -> dict[str, Any]:
        handoff = json.loads(conv.get("handoff") or "{}")
        if conv.get("ticket_id"):
            return (await self._ticket_status(cid, conv["ticket_id"], script))[0]
        position = await self.s.queue.position(cid, handoff.get("group", "zh")) or 1
        eta = position * self.s.settings.average_handle_seconds
        text = replies.say("still_queued", script, ahead=position - 1, wait=replies.duration(eta, script))
        return await self._say(cid, Reply(text), role="system")

    # ---------------------------------------------------------------- handoff
    async def handoff(
        self,
        cid: str,
        reason: str,
        severity: str,
        script: str,
        parse: dict[str, Any] | None,
        message: Message | None,
    ) -> tuple[dict[str, Any], str | None, list[dict[str, Any]]]:
        """Queue the conversation for a human — or, with nobody on duty, open a ticket. Idempotent."""
        s = self.s
        conv = await s.store.require(cid)
        started = now_ms()
        sla = sla_clock(severity, s.settings.sla, started, s.settings.timezone)
        group = "en" if script == "Latn" else "zh"
        handoff: dict[str, Any] = {
            "reason": reason,
            "severity": severity,
            "sla": sla,
            "group": group,
            "position": None,
            "eta_seconds": None,
            "intent": parse["intent"]["name"] if parse else None,
        }
        ticket_id = None
        if Owner(conv["state"]) is Owner.BOT:
            await s.store.transition(
                cid,
                Owner.QUEUED,
                handoff=json.dumps(handoff, ensure_ascii=False),
                queued_at=str(started),
                pending="",
            )
        s.metrics.handoffs.labels(reason, severity).inc()
        reason_text = replies.label(replies.REASONS, reason, script)
        if s.settings.on_duty is not None:
            on_duty = s.settings.on_duty
        else:
            on_duty = await s.duty(group) if s.duty else False
        if on_duty:
            position = await s.queue.enqueue(cid, group, severity, started, int(conv.get("vip") or 0))
            await s.store.update(cid, position=str(position))
            if s.on_queued:
                await s.on_queued(cid)
            eta = position * s.settings.average_handle_seconds
            handoff.update(position=position, eta_seconds=eta)
            text = replies.say(
                "handoff_queued",
                script,
                reason=reason_text,
                ahead=position - 1,
                wait=replies.duration(eta, script),
            )
        else:
            summary = mask_sensitive(message.text)[:200] if message else ""
            ticket = await s.tickets.open(
                cid, conv.get("user", ""), conv.get("channel", ""), severity, reason, sla, summary
            )
            ticket_id = ticket["ticket_id"]
            handoff["ticket_id"] = ticket_id
            if s.on_ticket:
                await s.on_ticket(ticket)
            text = replies.say(
                "handoff_ticket",
                script,
                ticket=ticket_id,
                reason=reason_text,
                due=sla["first_response_due"].replace("T", " ")[:16],
                tier=replies.label(replies.TIERS, severity, script),
                first=replies.duration(sla["first_response_seconds"], script),
            )
            await s.store.update(cid, ticket_id=ticket_id)
        await s.store.update(cid, handoff=json.dumps(handoff, ensure_ascii=False))
        event = await s.store.append(cid, {"type": "handoff", **handoff})
        said = await self._say(cid, Reply(text), role="system")
        handoff["seq"] = event["seq"]
        return handoff, ticket_id, [said]


def _plain(markdown: str) -> str:
    return re.sub(r"\*\*|__|`", "", markdown)


def _reply_script(text: str, detected: str, previous: str) -> str:
    """The script to answer in: a button payload, or a message too short to tell (a few Latin letters,
    digits, emoji), keeps the conversation's language."""
    if previous and (
        payload_intent(text) or (detected == "Latn" and len(re.findall(r"[A-Za-z]+", text)) <= 2)
    ):
        return previous
    return detected


def _parse_summary(parse: dict[str, Any]) -> dict[str, Any]:
    return {
        "intent": parse["intent"]["name"],
        "confidence": parse["intent"]["confidence"],
        "severity": parse["severity"],
        "sentiment": parse["sentiment"],
        "language": parse["language"],
        "ambiguous": parse["ambiguous"],
        "entities": [{k: e[k] for k in ("entity", "start", "end", "value")} for e in parse["entities"]],
    }
