"""The triage decision: a pure function of the parse, the conversation and the knowledge-base answer.

Rules, first match wins (docs/conversation.md has the table):
ticket lookup · button payloads and yes/no to the bot's last question · asks for a human · urgent ·
complaint or negative sentiment · fallback (hand off after N in a row) · ambiguity (clarify) ·
greetings and thanks · the same problem again after an answer (hand off) · answer from the KB, or offer
a human when the KB has no confident answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.contracts.parse import Parse
from bot.kb.answer import Answer, NoAnswer
from bot.store.tickets import TICKET_ID
from bot.vocabulary import Severity

DIALOGUE_INTENTS = frozenset({"greet", "goodbye", "thanks", "affirm", "deny"})
NON_SUPPORT = DIALOGUE_INTENTS | {"nlu_fallback", "out_of_scope", "request_human", "complaint"}
_TICKET_WORDS = re.compile(
    r"查询|查一下|查下|状态|进度|进展|工单|ticket|status|progress|update", re.IGNORECASE
)

# Button payloads (Rasa's "/intent" convention).
HELPFUL, NOT_HELPFUL, HUMAN, NO_HUMAN = "/helpful", "/not_helpful", "/request_human", "/no_human"


@dataclass(frozen=True)
class ConversationView:
    fallback_count: int = 0
    last_answer_intent: str | None = None
    pending: dict[str, Any] | None = None  # what a yes/no or a button answers next


@dataclass(frozen=True)
class Decision:
    action: str  # answer | clarify | rephrase | reply | handoff | offer_human | ticket_status
    reason: str | None = None  # why a handoff happens
    text_key: str | None = None  # for "reply"
    answer: Answer | None = None
    options: tuple[str, ...] = ()  # intents offered by "clarify"
    ticket_id: str | None = None
    fallback_count: int = 0  # the conversation's count after this message
    pending: dict[str, Any] | None = None  # what the next yes/no answers
    answered_intent: str | None = None  # remembered to detect "the same problem again"
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


def _clarify_options(parse: Parse) -> tuple[str, ...]:
    return tuple(r.name for r in parse.intent_ranking if r.name not in NON_SUPPORT)[:3]


def decide(
    parse: Parse,
    conv: ConversationView,
    kb: Answer | NoAnswer | None,
    fallbacks_before_handoff: int = 2,
) -> Decision:
    intent = parse.intent.name
    text = parse.text
    pending = conv.pending or {}

    if ticket := ticket_query(text):
        return Decision("ticket_status", ticket_id=ticket)

    # Buttons and yes/no answer the bot's last question.
    if text.strip() == HELPFUL or (intent == "affirm" and pending.get("type") == "helpful"):
        return Decision("reply", text_key="glad")
    if text.strip() == NOT_HELPFUL or (intent == "deny" and pending.get("type") == "helpful"):
        return Decision(
            "offer_human",
            reason="not_helpful",
            answered_intent=conv.last_answer_intent,
            pending={"type": "offer_human", "reason": "not_helpful"},
        )
    if intent == "affirm" and pending.get("type") == "offer_human":
        return Decision("handoff", reason=pending.get("reason", "user_request"))
    if text.strip() == NO_HUMAN or (intent == "deny" and pending.get("type") == "offer_human"):
        return Decision("reply", text_key="ok_not_now")

    if intent == "request_human":
        return Decision("handoff", reason="user_request")
    if parse.severity.level is Severity.URGENT:
        return Decision("handoff", reason="urgent")
    if intent == "complaint":
        return Decision("handoff", reason="complaint")
    if parse.sentiment.label == "negative":
        return Decision("handoff", reason="negative_sentiment")

    if intent == "nlu_fallback":
        count = conv.fallback_count + 1
        if count >= fallbacks_before_handoff:
            return Decision("handoff", reason="repeated_fallback", fallback_count=count)
        return Decision("rephrase", fallback_count=count)

    if parse.ambiguous and intent not in DIALOGUE_INTENTS and not payload_intent(text):
        options = _clarify_options(parse)
        if len(options) >= 2:
            return Decision("clarify", options=options, pending={"type": "clarify", "text": text})

    if intent in ("greet", "thanks", "goodbye"):
        return Decision("reply", text_key=intent)
    if intent == "affirm":
        return Decision("reply", text_key="affirm_nothing_pending")
    if intent == "deny":
        return Decision("reply", text_key="deny_nothing_pending")

    if conv.last_answer_intent and intent == conv.last_answer_intent:
        return Decision("handoff", reason="repeat_after_answer")
    if isinstance(kb, Answer):
        return Decision("answer", answer=kb, answered_intent=intent, pending={"type": "helpful"})
    return Decision(
        "offer_human",
        reason="no_kb_answer",
        pending={"type": "offer_human", "reason": "no_kb_answer"},
        details={"kb": kb.to_dict() if kb else None},
    )
