"""The context card an agent sees: transcript, what the bot understood, why it handed off, what it showed,
who the customer is (verified by the host's identity token, or anonymous) and their earlier tickets and
conversations. Sensitive entities are masked."""

from __future__ import annotations

import json
from typing import Any

from bot.privacy import mask_entity, mask_sensitive
from bot.store.conversations import ConversationStore
from bot.store.keys import Keys

HISTORY_SHOWN = 20  # earlier tickets / conversations listed on the card


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


async def context_card(store: ConversationStore, cid: str) -> dict[str, Any]:
    conv = await store.require(cid)
    events = await store.events_after(cid, 0, limit=1000)
    handoff = json.loads(conv.get("handoff") or "{}")
    user_events = [e for e in events if e.get("type") == "message" and e.get("role") == "user"]
    last_parse: dict[str, Any] = next((e for e in reversed(user_events) if e.get("intent")), {})
    articles = [e["article_id"] for e in events if e.get("article_id")]
    customer = await _customer(store, cid, conv)
    return {
        "conversation_id": cid,
        "state": conv["state"],
        "owner": conv.get("owner") or None,
        "channel": conv.get("channel"),
        "platform": _platform(conv),
        "language": conv.get("language"),
        "customer": customer,
        "intent": {"name": last_parse.get("intent"), "confidence": last_parse.get("confidence")},
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
        "kb_articles_shown": list(dict.fromkeys(articles)),
        "earlier_tickets": customer["earlier_tickets"],  # the console's list (same as the customer's)
        "ticket_id": conv.get("ticket_id") or None,
        "transcript": [{**e, "text": mask_sensitive(e["text"])} if "text" in e else e for e in events],
    }
