"""The conversation engine: one path for every channel — parse, decide, then answer / clarify / hand off /
open a ticket — with every event written to the conversation's transcript on Redis.

A plain answer costs three Redis round trips: the idempotency claim, reading the conversation (one
pipeline), and one script that appends the user's message and every reply, saves the bot's memory and keeps
the response for retries. The NLU parse and the KB search run in the CPU pool, off the loop.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from bot import replies
from bot.contracts.conversation import Conversation
from bot.contracts.parse import Parse
from bot.cpu import run_cpu
from bot.kb.answer import Answer, NoAnswer, compose_answer
from bot.message import Button, Message, Reply
from bot.nlu.backend import ParseContext
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
from bot.privacy import mask_entity, redact
from bot.services import DeskHooks, Services, no_desk
from bot.sla import format_due
from bot.store.handoffs import Move
from bot.turn import Turn
from bot.vocabulary import Script, Severity, group_for

__all__ = ["DeskHooks", "Engine", "Services", "no_desk"]  # the seams the desk and the app build on
logger = logging.getLogger(__name__)


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
            # The turn's write keeps the response for retries in the same script (Turn.commit).
            with store.hold(message.conversation_id, message.message_id):
                response = await self._process(message)
        except BaseException:
            await store.release(message.conversation_id, message.message_id)
            raise
        self.s.metrics.reply_latency.observe(time.perf_counter() - started)
        return response

    # --------------------------------------------------------------- the path
    async def _process(self, message: Message) -> dict[str, Any]:
        store, metrics = self.s.store, self.s.metrics
        cid = message.conversation_id
        conv = await store.load(cid)
        # The NLU backend parses off the event loop; then, where the bot may answer, the knowledge-base
        # search runs in the CPU pool.
        started = time.perf_counter()
        parse = await self.s.nlu.parse(message.text, ParseContext(conv.script, conv.pending))
        metrics.parse_latency.observe(time.perf_counter() - started)
        parse, kb_answer = await run_cpu(
            self.s.cpu,
            self._understand,
            message.text,
            parse,
            conv.pending,
            not human_owns(conv.state),
            conv.script,
        )
        metrics.messages.labels(message.channel).inc()
        metrics.intents.labels(parse.intent.name).inc()
        script = _reply_script(message.text, parse.script, conv.script)
        user_event = {
            "type": "message",
            "role": "user",
            "text": redact(message.text, parse.entities),
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
                [mask_entity({"entity": e.entity, "value": e.value, "text": e.text}) for e in parse.entities],
                ensure_ascii=False,
            ),
            "last_intents": json.dumps([parse.intent.name, *conv.last_intents][:5]),
        }
        turn = Turn(self.s, conv, parse, script, message, user_event, memory)
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
                    turn.say(await self._ticket_status_reply(decision.ticket_id or "", script, turn.conv))
                else:
                    turn.say(await self._queue_status_reply(conv, script), role="system")
        else:
            await self._bot_turn(turn, kb_answer)
        return await turn.commit()

    async def _bot_turn(self, turn: Turn, kb_answer: Answer | NoAnswer | None) -> None:
        conv, parse, script = turn.conv, turn.parse, turn.script
        view = ConversationView(conv.fallback_count, conv.last_answer_intent or None, conv.pending)
        decision = decide(parse, view, kb_answer, self.s.settings.fallbacks_before_handoff)
        severity = Severity.highest(parse.severity.level, conv.severity)
        # The decision and why, beside the user's message: the agent's context card reads them.
        turn.events[0].update(decision=decision.action, reasons=list(decision.reasons))
        turn.memory.update(
            fallback_count=str(decision.fallback_count),
            pending=json.dumps(_pending_at_rest(decision.pending, parse), ensure_ascii=False)
            if decision.pending
            else "",
            # Remembered to spot "the same problem again"; "helpful" or any other turn clears it.
            last_answer_intent=decision.answered_intent or "",
            severity=severity.value,
        )
        for reply in self._replies(decision, script):
            turn.say(reply)
        metrics = self.s.metrics
        if decision.action == "ticket_status":
            turn.say(await self._ticket_status_reply(decision.ticket_id or "", script, turn.conv))
        elif decision.action == "answer":
            metrics.answers.labels("answered").inc()
        elif decision.reason == "no_kb_answer":
            metrics.answers.labels("no_answer").inc()
        if decision.action == "rephrase":
            metrics.fallbacks.inc()
        if decision.action == "handoff":
            try:
                await turn.handoff(
                    decision.reason or "user_request", severity, decision.intent, decision.reasons
                )
            except TransitionError:
                # Another message of this user handed off a moment earlier: say where they stand.
                turn.conv = await self.s.store.load(conv.conversation_id)
                turn.state = turn.conv.state
                if turn.state is Owner.QUEUED:
                    turn.say(await self._queue_status_reply(turn.conv, script), role="system")

    def _understand(
        self, text: str, parse: Parse, pending: dict[str, Any] | None, search: bool, previous_script: str = ""
    ) -> tuple[Parse, Answer | NoAnswer | None]:
        """CPU work, in a pool thread: a button payload forces its intent; the KB answer."""
        forced = payload_intent(text)
        if forced in {*self.s.nlu.intents, "helpful", "not_helpful", "no_human"}:
            parse = parse.with_intent(forced)
        script = _reply_script(text, parse.script, previous_script)
        return parse, (self._kb_answer(parse, pending, script) if search else None)

    def _kb_answer(
        self, parse: Parse, pending: dict[str, Any] | None, script: str
    ) -> Answer | NoAnswer | None:
        intent = parse.intent.name
        if intent in NON_SUPPORT:
            return None
        query = parse.text
        label = replies.label(replies.INTENT_LABELS, intent, script)
        button = bool(payload_intent(query))
        if button:
            # A clarification button: the chosen topic's own words in the user's script, with what they
            # wrote before ("发票"), so that each button finds its own article in the user's language.
            query = f"{label} {(pending or {}).get('text') or ''}".strip()
        # The conversation's language, not the payload's ("/invoice_archive" is Latin letters).
        lang = group_for(script).value
        config = self.s.kb.index.config.answer
        result = self.s.kb.search(query, lang=lang, top=3, intent=intent)
        answer = compose_answer(parse.to_rasa(), result, config)
        on_topic = isinstance(answer, Answer) and intent in result.hits[0].article.intents
        if on_topic or button or parse.intent.confidence < config.topic_confidence:
            return answer
        # The words found no article ("張發票上載唔到，點算", a pasted error body), or one about another topic,
        # but the NLU is sure of the topic: answer with the topic's own article, the one its name finds.
        topic = self.s.kb.search(label, lang=lang, top=3, intent=intent)
        if topic.hits and intent in topic.hits[0].article.intents:
            by_topic = compose_answer(parse.to_rasa(), topic, config)
            if isinstance(by_topic, Answer):
                return by_topic
        return answer

    def _replies(self, d: Decision, script: str) -> list[Reply]:
        say = replies.say
        examples = replies.localize(replies.FALLBACK_EXAMPLES[replies.base_language(script)], script)
        if d.action == "reply" and d.text_key:
            return [Reply(say(d.text_key, script, examples=examples))]
        if d.action == "rephrase":
            return [Reply(say("rephrase", script, examples=examples))]
        if d.action == "clarify":
            buttons = tuple(
                Button(replies.label(replies.INTENT_LABELS, i, script), f"/{i}") for i in d.options
            )
            return [Reply(say("clarify", script), buttons)]
        if d.action == "offer_human":
            key = {"not_helpful": "offer_human", "repeated_fallback": "unclear_offer_human"}.get(
                d.reason or "", "no_kb_answer"
            )
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

    async def _ticket_status_reply(self, ticket_id: str, script: str, conv: Conversation) -> Reply:
        """A ticket's status, told only in the conversation that opened it or to the verified customer it
        belongs to. Anyone else hears what an unknown number gets: ticket ids are sequential per day, so a
        guessed one must not reveal another user's ticket (nor that it exists)."""
        ticket = await self.s.handoffs.ticket(ticket_id)
        customer = conv.customer.customer_key
        if ticket is None or not (
            ticket.get("conversation_id") == conv.conversation_id
            or (customer is not None and ticket.get("customer_key") == customer)
        ):
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


def _pending_at_rest(pending: dict[str, Any], parse: Parse) -> dict[str, Any]:
    """The pending question as the conversation record keeps it: what the user wrote (a clarification's
    search words) masked — the KB search does not need the digits of a phone number."""
    if isinstance(pending.get("text"), str):
        return {**pending, "text": redact(pending["text"], parse.entities)}
    return pending


def _plain(markdown: str) -> str:
    return re.sub(r"\*\*|__|`", "", markdown)


def _reply_script(text: str, detected: str, previous: str) -> str:
    """The script to answer in: a button payload, or a message too short to tell (a few Latin letters,
    digits, emoji), keeps the conversation's language; so does Chinese written the same in both scripts
    ("依然不行") in a Traditional conversation. Traditional Chinese carries its region (``Hant-HK``/``Hant-TW``,
    see :func:`bot.replies.regional`), kept in the conversation with the script."""
    if previous and (
        payload_intent(text) or (detected == Script.LATN and len(re.findall(r"[A-Za-z]+", text)) <= 2)
    ):
        return previous
    if replies.is_traditional(previous) and detected == Script.HANS:
        han = "".join(re.findall(r"[\u4e00-\u9fff]", text))
        if replies.localize(han, Script.HANT) == han:
            return previous
    return replies.regional(detected, text, previous)
