"""The context card an agent sees: transcript, what the bot understood, why it handed off, what it showed,
who the customer is and their earlier tickets. Sensitive entities are masked."""

from __future__ import annotations

import json
from typing import Any

from bot.privacy import mask_sensitive
from bot.store.conversations import ConversationStore
from bot.store.tickets import TicketStore

SENSITIVE = {"phone", "tax_id", "email"}


def _mask_entity(entity: dict[str, Any]) -> dict[str, Any]:
    if entity.get("entity") not in SENSITIVE:
        return entity
    value = str(entity.get("value", ""))
    return {**entity, "value": "*" * max(0, len(value) - 4) + value[-4:]}


async def context_card(store: ConversationStore, tickets: TicketStore, cid: str) -> dict[str, Any]:
    conv = await store.require(cid)
    events = await store.events_after(cid, 0, limit=1000)
    handoff = json.loads(conv.get("handoff") or "{}")
    user_events = [e for e in events if e.get("type") == "message" and e.get("role") == "user"]
    last_parse: dict[str, Any] = next((e for e in reversed(user_events) if e.get("intent")), {})
    articles = [e["article_id"] for e in events if e.get("article_id")]
    earlier = [
        t
        for t in await tickets.for_user(conv.get("channel", ""), conv.get("user", ""))
        if t != conv.get("ticket_id")
    ]
    return {
        "conversation_id": cid,
        "state": conv["state"],
        "owner": conv.get("owner") or None,
        "channel": conv.get("channel"),
        "language": conv.get("language"),
        "customer": {
            "user": conv.get("user"),
            "tenant": conv.get("tenant") or None,
            "vip_tier": conv.get("vip") or None,
        },
        "intent": {"name": last_parse.get("intent"), "confidence": last_parse.get("confidence")},
        "entities": [_mask_entity(e) for e in json.loads(conv.get("entities") or "[]")],
        "severity": conv.get("severity"),
        "handoff": {
            "reason": handoff.get("reason"),
            "severity": handoff.get("severity"),
            "sla": handoff.get("sla"),
            "intent": handoff.get("intent"),
            "escalated": bool(conv.get("escalated")),
        },
        "kb_articles_shown": list(dict.fromkeys(articles)),
        "earlier_tickets": earlier,
        "ticket_id": conv.get("ticket_id") or None,
        "transcript": [{**e, "text": mask_sensitive(e["text"])} if "text" in e else e for e in events],
    }
