"""What the bot did with one message, read from the engine's response as a user would see it: a handoff, a
question whether to fetch a person (转人工客服 / 先不用), topic buttons, a KB answer (它解决了吗?), or a plain
reply — told apart as ``rephrase`` ("please say it another way") or ``chitchat`` (any other polite reply:
out of scope, greeting, thanks, an acknowledgement) by the decision the engine wrote beside the user's
message in the transcript."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.policy.decide import HELPFUL, HUMAN, NO_HUMAN, NOT_HELPFUL

HANDED_OFF_STATES = frozenset({"queued", "waiting", "assigned"})
_ANSWER_BUTTONS = {HELPFUL, NOT_HELPFUL}
_HUMAN_BUTTONS = {HUMAN, NO_HUMAN}


@dataclass(frozen=True)
class Outcome:
    decision: str  # one of bot.dialogue.sets.DECISIONS
    intent: str  # the support topic the bot settled on: the handoff card's, else the parse's
    severity: str  # the handoff's (what its SLA follows), else the parse's
    engine_decision: str  # the engine's own action and rule, for the list of misses
    reply: str  # the bot's first reply, shortened


def classify(response: dict[str, Any], engine_decision: dict[str, Any] | None = None) -> Outcome:
    """``response`` is :meth:`bot.engine.Engine.handle`'s; ``engine_decision`` the user's event in the
    transcript (its ``decision`` and ``reasons``), where the engine wrote one."""
    parse = response.get("parse") or {}
    handoff = response.get("handoff")
    replies = response.get("replies") or []
    payloads = {b.get("payload", "") for r in replies for b in r.get("buttons") or []}
    action = str((engine_decision or {}).get("decision") or "")
    if handoff or response.get("state") in HANDED_OFF_STATES:
        decision = "handoff"
    elif payloads & _HUMAN_BUTTONS:
        decision = "offer_human"
    elif payloads & _ANSWER_BUTTONS or any(r.get("article_id") for r in replies):
        decision = "answer"
    elif any(p.startswith("/") for p in payloads):
        decision = "clarify"
    elif action == "rephrase":
        decision = "rephrase"
    elif action == "ticket_status":
        decision = "answer"  # the bot answers from the ticket itself
    else:
        decision = "chitchat"
    intent = (handoff or {}).get("intent") or _intent_name(parse)
    severity = (handoff or {}).get("severity") or _severity(parse)
    reasons = (engine_decision or {}).get("reasons") or []
    rule = next((r for r in reasons if isinstance(r, str) and r.startswith("rule:")), "")
    first = replies[0].get("text", "") if replies else ""
    return Outcome(
        decision,
        intent,
        severity,
        " ".join(x for x in (action, rule) if x),
        " ".join(str(first).split())[:120],
    )


def _intent_name(parse: dict[str, Any]) -> str:
    intent = parse.get("intent")
    if isinstance(intent, dict):  # Rasa's shape
        return str(intent.get("name") or "")
    return str(intent or "")


def _severity(parse: dict[str, Any]) -> str:
    severity = parse.get("severity")
    if isinstance(severity, dict):
        return str(severity.get("level") or "normal")
    return str(severity or "normal")
