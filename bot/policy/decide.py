"""The triage decision: a pure function of the parse, the conversation and the knowledge-base answer.

Rules, first match wins (docs/conversation.md has the table):

====================  =====================================================================================
rule                  when
====================  =====================================================================================
ticket_lookup         a ticket id with "查询/status" words
button                a button payload (/helpful, /not_helpful, /no_human)
human_request         the words ask for a person (also beside a support topic, which goes on the card)
not_resolved          "依然不行", "still doesn't work" without a support topic: offer a human after an answer
yes_no                affirm / deny answering the bot's pending yes/no question
chit_chat             out of scope (weather, jokes, cooking): a polite reply, never a ticket
urgent                severity urgent
complaint             the complaint intent
negative_sentiment    negative sentiment
unclear               a fallback, or a dialogue act below its confidence: rephrase, then offer a human
clarify               the top intents are too close, or a bare topic ("发票"): topic buttons
dialogue_act          greet / thanks / goodbye, and affirm / deny with nothing pending, at high confidence
repeat_after_answer   the same problem again after an answer
answer / no_kb_answer answer from the KB, or offer a human when it has no confident answer
====================  =====================================================================================

Every decision carries its ``reasons``: the rule that fired first, then the severity's reasons, for the
agent's context card.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from bot.contracts.parse import Parse
from bot.kb.answer import Answer, NoAnswer
from bot.policy.cues import asks_for_human, not_resolved
from bot.store.tickets import TICKET_ID
from bot.vocabulary import Severity

DIALOGUE_INTENTS = frozenset({"greet", "goodbye", "thanks", "affirm", "deny"})
SOCIAL_INTENTS = frozenset({"greet", "goodbye", "thanks"})
OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "nlu_fallback"
NON_SUPPORT = DIALOGUE_INTENTS | {FALLBACK, OUT_OF_SCOPE, "request_human", "complaint"}
YES_NO_QUESTIONS = frozenset({"helpful", "offer_human"})  # pending types a yes or a no answers
_TICKET_WORDS = re.compile(
    r"查询|查一下|查下|状态|进度|进展|工单|ticket|status|progress|update", re.IGNORECASE
)

# Button payloads (Rasa's "/intent" convention).
HELPFUL, NOT_HELPFUL, HUMAN, NO_HUMAN = "/helpful", "/not_helpful", "/request_human", "/no_human"


@dataclass(frozen=True)
class Thresholds:
    """How sure the classifier must be before a dialogue act is taken at its word."""

    yes_no_in_context: float = 0.5  # affirm / deny answering the bot's yes/no question
    dialogue_act: float = 0.93  # greet / thanks / goodbye, or affirm / deny with nothing pending (calibrated)
    support_for_card: float = 0.1  # a support intent in the ranking worth naming on the context card
    topic: float = 0.75  # below this a support intent does not outweigh "依然不行" beside it
    chit_chat: float = 0.35  # out_of_scope at least this sure is chit-chat; below, an unclear message
    bare_topic: float = 0.7  # a bare topic word ("发票", "invoice") below this asks which problem


@dataclass(frozen=True)
class ConversationView:
    fallback_count: int = 0
    last_answer_intent: str | None = None
    pending: dict[str, Any] | None = None  # what a yes/no or a button answers next


@dataclass(frozen=True)
class Decision:
    action: str  # answer | clarify | rephrase | reply | handoff | offer_human | ticket_status
    reason: str | None = None  # why a handoff happens (or is offered)
    text_key: str | None = None  # for "reply"
    answer: Answer | None = None
    options: tuple[str, ...] = ()  # intents offered by "clarify"
    ticket_id: str | None = None
    fallback_count: int = 0  # the conversation's count of unclear support messages after this one
    pending: dict[str, Any] | None = None  # what the next yes/no answers
    answered_intent: str | None = None  # remembered to detect "the same problem again"
    intent: str | None = None  # the support topic, for the agent's context card
    reasons: tuple[str, ...] = ()  # "rule:human_request", then the severity's reasons
    details: dict[str, Any] = field(default_factory=dict)


def payload_intent(text: str) -> str | None:
    """``/intent_name`` buttons (and typed payloads) name an intent directly."""
    stripped = text.strip()
    if re.fullmatch(r"/[a-z_]+", stripped):
        return stripped[1:]
    return None


def ticket_query(text: str) -> str | None:
    match = TICKET_ID.search(text)
    if match and (_TICKET_WORDS.search(text) or len(text.strip()) <= len(match.group(0)) + 6):
        return match.group(0).upper()
    return None


def is_chit_chat(parse: Parse, thresholds: Thresholds = Thresholds()) -> bool:
    """Out of scope: the classifier's out_of_scope class, whether or not the fallback renamed it, when it
    is sure enough; a vague "那个东西弄一下" that only leans out of scope is an unclear support message."""
    if parse.intent.name == OUT_OF_SCOPE:
        return True
    top = parse.intent_ranking[0] if parse.intent_ranking else None
    return (
        parse.intent.name == FALLBACK
        and top is not None
        and top.name == OUT_OF_SCOPE
        and top.confidence >= thresholds.chit_chat
    )


def support_intent(parse: Parse, thresholds: Thresholds = Thresholds()) -> str | None:
    """The support topic of the message: its intent, or the best support intent in the ranking."""
    if parse.intent.name not in NON_SUPPORT:
        return parse.intent.name
    for ranked in parse.intent_ranking:
        if ranked.name not in NON_SUPPORT and ranked.confidence >= thresholds.support_for_card:
            return ranked.name
    return None


def _bare(text: str) -> bool:
    """A topic word and little else: up to four Chinese characters, or up to two English words."""
    if re.search(r"[\u4e00-\u9fff]", text):
        return len(re.sub(r"[\s\W_]", "", text)) <= 4
    return len(text.split()) <= 2


def _clarify_options(parse: Parse) -> tuple[str, ...]:
    return tuple(r.name for r in parse.intent_ranking if r.name not in NON_SUPPORT)[:3]


def decide(
    parse: Parse,
    conv: ConversationView,
    kb: Answer | NoAnswer | None,
    fallbacks_before_handoff: int = 2,
    thresholds: Thresholds = Thresholds(),
) -> Decision:
    """The first rule that matches, with its name and the severity's reasons in ``reasons``."""
    rule, decision = _first_match(parse, conv, kb, fallbacks_before_handoff, thresholds)
    return dataclasses.replace(decision, reasons=(f"rule:{rule}", *parse.severity.reasons))


def _first_match(
    parse: Parse,
    conv: ConversationView,
    kb: Answer | NoAnswer | None,
    fallbacks_before_handoff: int,
    t: Thresholds,
) -> tuple[str, Decision]:
    intent, confidence = parse.intent.name, parse.intent.confidence
    text = parse.text.strip()
    pending = conv.pending or {}
    asked = pending.get("type")
    topic = support_intent(parse, t)

    if ticket := ticket_query(text):
        return "ticket_lookup", Decision("ticket_status", ticket_id=ticket)

    # Buttons answer the bot's last question.
    if text == HELPFUL:
        return "button", Decision("reply", text_key="glad")
    if text == NOT_HELPFUL:
        return "button", _offer_human("not_helpful", conv.last_answer_intent)
    if text == NO_HUMAN:
        return "button", Decision("reply", text_key="ok_not_now")

    # A person asked for wins over the topic beside it; the topic goes on the agent's card.
    if intent == "request_human" or (not payload_intent(text) and asks_for_human(text)):
        reason = pending.get("reason", "user_request") if asked == "offer_human" else "user_request"
        card = topic or pending.get("intent") or conv.last_answer_intent
        return "human_request", Decision("handoff", reason=reason, intent=card)

    # "依然不行" is not a yes or a no: after an answer, the answer did not help.
    vague = intent in DIALOGUE_INTENTS or intent in (FALLBACK, OUT_OF_SCOPE)
    # "試過了，依然不行" read as the answered topic again is the same verdict on the answer.
    same_topic = bool(conv.last_answer_intent) and intent == conv.last_answer_intent
    # Nor does an intent the classifier is unsure of outweigh it: a support topic, or the complaint "I still
    # have the problem" leans to (0.58). (request_human has been handed off above; the rest are vague.)
    unsure = confidence < t.topic
    if (vague or unsure or same_topic) and not_resolved(text):
        if asked in YES_NO_QUESTIONS or conv.last_answer_intent:
            return "not_resolved", _offer_human("not_helpful", conv.last_answer_intent)
        return "not_resolved", _unclear(conv, fallbacks_before_handoff)

    # Yes and no count only as answers to the bot's own yes/no question.
    if intent in ("affirm", "deny") and asked in YES_NO_QUESTIONS and confidence >= t.yes_no_in_context:
        if asked == "helpful":
            if intent == "affirm":
                return "yes_no", Decision("reply", text_key="glad")
            return "yes_no", _offer_human("not_helpful", conv.last_answer_intent)
        if intent == "affirm":
            reason = pending.get("reason", "user_request")
            card = pending.get("intent") or conv.last_answer_intent
            return "yes_no", Decision("handoff", reason=reason, intent=card)
        return "yes_no", Decision("reply", text_key="ok_not_now")

    # Chit-chat gets a polite reply however often it comes; it never pages anybody.
    if is_chit_chat(parse, t):
        return "chit_chat", Decision("reply", text_key="chit_chat")

    if parse.severity.level is Severity.URGENT:
        return "urgent", Decision("handoff", reason="urgent", intent=topic)
    if intent == "complaint":
        return "complaint", Decision("handoff", reason="complaint", intent=topic)
    if parse.sentiment.label == "negative":
        return "negative_sentiment", Decision("handoff", reason="negative_sentiment", intent=topic)

    weak_act = intent in DIALOGUE_INTENTS and confidence < t.dialogue_act
    if intent == FALLBACK or weak_act:
        return "unclear", _unclear(conv, fallbacks_before_handoff)

    vague_topic = parse.ambiguous or (_bare(text) and confidence < t.bare_topic)
    if vague_topic and intent not in DIALOGUE_INTENTS and not payload_intent(text):
        options = _clarify_options(parse)
        if len(options) >= 2:
            return "clarify", Decision("clarify", options=options, pending={"type": "clarify", "text": text})

    if intent in SOCIAL_INTENTS:
        return "dialogue_act", Decision("reply", text_key=intent)
    if intent in ("affirm", "deny"):
        # A yes or a no with no question pending answers nothing ("something went wrong" reads as a no): it
        # gets a short reply but counts as unclear, so two in a row offer a human like two fallbacks do.
        unclear = _unclear(conv, fallbacks_before_handoff)
        if unclear.action != "rephrase":
            return "unclear", unclear
        return "dialogue_act", Decision(
            "reply", text_key=f"{intent}_nothing_pending", fallback_count=unclear.fallback_count
        )

    if conv.last_answer_intent and intent == conv.last_answer_intent:
        return "repeat_after_answer", Decision("handoff", reason="repeat_after_answer", intent=intent)
    if isinstance(kb, Answer):
        return "answer", Decision("answer", answer=kb, answered_intent=intent, pending={"type": "helpful"})
    return "no_kb_answer", dataclasses.replace(
        _offer_human("no_kb_answer", intent), details={"kb": kb.to_dict() if kb else None}
    )


def _offer_human(reason: str, intent: str | None) -> Decision:
    """Ask first (buttons 转人工客服 / 先不用); a yes hands off with this reason."""
    return Decision(
        "offer_human",
        reason=reason,
        answered_intent=intent if reason == "not_helpful" else None,
        intent=intent,
        pending={"type": "offer_human", "reason": reason, **({"intent": intent} if intent else {})},
    )


def _unclear(conv: ConversationView, fallbacks_before_handoff: int) -> Decision:
    """An unclear support message: ask to rephrase; after ``fallbacks_before_handoff`` in a row, offer a
    human with buttons instead of opening a ticket unasked."""
    count = conv.fallback_count + 1
    if count >= fallbacks_before_handoff:
        return dataclasses.replace(_offer_human("repeated_fallback", None), fallback_count=count)
    return Decision("rephrase", fallback_count=count)
