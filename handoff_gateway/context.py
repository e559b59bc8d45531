"""The context card an agent sees: transcript, what the bot understood, why it handed off, what it showed,
who the customer is (verified by the host's identity token, or anonymous) and their earlier tickets and
conversations, the handoff summarised (what the user asked, what the bot answered, why it handed off), the
rating the user gave and the conversation's tags. Sensitive entities are masked."""

from __future__ import annotations

import json
from typing import Any

from bot.privacy import mask_entity, mask_sensitive
from bot.store.conversations import ConversationStore
from bot.store.keys import Keys
from handoff_gateway.labels import trigger_words
from handoff_gateway.tags import tags_of

HISTORY_SHOWN = 20  # earlier tickets / conversations listed on the card
ASKED_SHOWN, ANSWERS_SHOWN, ANSWER_CHARS = 3, 2, 300  # the handoff summary's extent


def mask_email(email: str) -> str | None:
    """``alice@acme.com`` → ``a***@acme.com``: enough to recognise, not enough to copy."""
    if not email:
        return None
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else f"{email[:1]}***"


def mask_phone(phone: str) -> str | None:
    """Only the last four digits stay readable."""
    if not phone:
        return None
    digits = sum(ch.isdigit() for ch in phone)
    return "*" * max(0, digits - 4) + "".join(ch for ch in phone if ch.isdigit())[-4:]


async def _earlier(store: ConversationStore, customer_key: str, kind: str, current: str) -> list[str]:
    """A verified customer's earlier tickets or conversations, newest first, without the current one."""
    key = Keys(store.prefix).customer(customer_key, kind)
    members: list[str] = await store.redis.zrevrange(key, 0, HISTORY_SHOWN)
    return [m for m in members if m != current][:HISTORY_SHOWN]


def display_name(conv: dict[str, str]) -> str | None:
    """What the console calls the conversation (its tab, its row): the customer's name, a verified or platform
    user's id — never the hex id of an anonymous user (None: the console says 访客 and what it is about)."""
    verified = conv.get("verified") == "1" and bool(conv.get("customer_key"))
    return conv.get("name") or (conv.get("user") if verified or _platform(conv) else "") or None


async def _history(store: ConversationStore, ids: list[str]) -> list[dict[str, Any]]:
    """The customer's earlier conversations as the panel lists them: when, about what, how it ended."""
    async with store.redis.pipeline(transaction=False) as pipe:
        for cid in ids:
            pipe.hmget(store.key(cid), "created_at")
            pipe.hmget(store.keys.handoff(cid), "state", "handoff", "ticket_id")
        rows = await pipe.execute()
    history = []
    for cid, (created,), (state, handoff, ticket) in zip(ids, rows[0::2], rows[1::2], strict=True):
        if created is None:
            continue  # expired with its retention
        history.append(
            {
                "conversation_id": cid,
                "created_at": int(created),
                "state": state or "bot",
                "intent": json.loads(handoff or "{}").get("intent"),
                "ticket_id": ticket or None,
            }
        )
    return history


async def _customer(store: ConversationStore, cid: str, conv: dict[str, str]) -> dict[str, Any]:
    """Who the customer is. Only a verified customer has a history, and only their own (``customer_key``);
    anonymous users share nothing with each other."""
    key = conv.get("customer_key", "")
    verified = conv.get("verified") == "1" and bool(key)
    return {
        "verified": verified,
        "user": conv.get("user") or None,
        "name": conv.get("name") or None,
        "email": mask_email(conv.get("email", "")),
        "phone": mask_phone(conv.get("phone", "")),
        "tenant": conv.get("tenant") or None,
        "vip_tier": int(conv.get("vip") or 0) if verified else 0,
        "earlier_tickets": await _earlier(store, key, "tickets", conv.get("ticket_id", ""))
        if verified
        else [],
        "earlier_conversations": await _earlier(store, key, "conversations", cid) if verified else [],
    }


def _platform(conv: dict[str, str]) -> dict[str, Any] | None:
    """Where a WeCom/DingTalk user is: the app, the corp (organisation) and the platform's user id."""
    if conv.get("channel") not in ("wecom", "dingtalk"):
        return None
    return {
        "app": conv.get("app") or None,
        "corp_id": conv.get("corp_id") or None,
        "user_id": conv.get("user"),
    }


def _said(event: dict[str, Any], role: str) -> bool:
    return event.get("type") == "message" and event.get("role") == role


def _before_handoff(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript up to the last handoff (all of it when the bot never handed off)."""
    last = max((i for i, e in enumerate(events) if e.get("type") == "handoff"), default=len(events))
    return events[:last]


def _intent(events: list[dict[str, Any]], handoff: dict[str, Any]) -> dict[str, Any]:
    """The intent the handoff was about, with the confidence of the message that triggered it — not the
    intent of whatever the user said last (a "你好" after the handoff is not what the agent is there for)."""
    said = [e for e in _before_handoff(events) if _said(e, "user")] if handoff else []
    trigger = said[-1] if said else {}
    if handoff:
        name = handoff.get("intent")
        confidence = trigger.get("confidence") if trigger.get("intent") == name else None
        return {"name": name, "confidence": confidence}
    last: dict[str, Any] = next((e for e in reversed(events) if _said(e, "user") and e.get("intent")), {})
    return {"name": last.get("intent"), "confidence": last.get("confidence")}


def _summary(events: list[dict[str, Any]], handoff: dict[str, Any]) -> dict[str, Any]:
    """The handoff in words: what the user asked, what the bot answered, why it handed off."""
    before = _before_handoff(events)
    asked = [mask_sensitive(e["text"]) for e in before if _said(e, "user") and e.get("text")]
    answered = [
        {"text": mask_sensitive(e["text"])[:ANSWER_CHARS], "article_id": e.get("article_id")}
        for e in before
        if _said(e, "bot") and e.get("text")
    ]
    return {
        "asked": asked[-ASKED_SHOWN:],
        "answered": answered[-ANSWERS_SHOWN:],
        "reason": handoff.get("reason"),
        "trigger": handoff.get("trigger") or None,
        "trigger_words": trigger_words(handoff.get("reasons") or []),
    }


def _rating(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The user's rating (one per conversation: bot/store/ratings.py), or None."""
    csat = next((e for e in reversed(events) if e.get("type") == "csat"), None)
    if csat is None:
        return None
    return {
        "score": csat.get("score"),
        "comment": mask_sensitive(csat.get("comment") or ""),
        "ts": csat.get("ts"),
    }


async def context_card(store: ConversationStore, cid: str) -> dict[str, Any]:
    conv = await store.require(cid)
    events = await store.events_after(cid, 0, limit=1000)
    handoff = json.loads(conv.get("handoff") or "{}")
    articles = [e["article_id"] for e in events if e.get("article_id")]
    customer = await _customer(store, cid, conv)
    return {
        "conversation_id": cid,
        "display_name": display_name(conv),
        "state": conv["state"],
        "owner": conv.get("owner") or None,
        "channel": conv.get("channel"),
        "platform": _platform(conv),
        "language": conv.get("language"),
        "customer": customer,
        "intent": _intent(events, handoff),
        # Stored masked; masked again for records written before entity texts were (idempotent).
        "entities": [mask_entity(e) for e in json.loads(conv.get("entities") or "[]")],
        "severity": conv.get("severity"),
        "handoff": {
            "reason": handoff.get("reason"),
            "severity": handoff.get("severity"),
            "sla": handoff.get("sla"),
            "intent": handoff.get("intent"),
            "trigger": handoff.get("trigger"),
            "reasons": handoff.get("reasons") or [],
            "ticket_id": handoff.get("ticket_id"),
            "escalated": bool(conv.get("escalated")),
        },
        "summary": _summary(events, handoff),
        "rating": _rating(events),
        "tags": tags_of(conv),
        "kb_articles_shown": list(dict.fromkeys(articles)),
        "earlier_tickets": customer["earlier_tickets"],  # the console's list (same as the customer's)
        "history": await _history(store, customer["earlier_conversations"]),
        "ticket_id": conv.get("ticket_id") or None,
        "transcript": [{**e, "text": mask_sensitive(e["text"])} if "text" in e else e for e in events],
    }
