"""The conversation record: what the store keeps about one conversation, decoded once, read everywhere.

It is the merge of two Redis hashes (bot/store/keys.py): the conversation's own record in its ``{cid}``
slot (channel, customer, language, the bot's memory) and its ownership record in the ``{desk}`` slot
(state, owner, handoff, ticket).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.contracts.handoff import Handoff
from bot.identity import Identity
from bot.ownership import Owner
from bot.vocabulary import Group, Severity

# Fields that live in the {desk} ownership hash; everything else lives in the conversation's own hash.
DESK_FIELDS = frozenset(
    {
        "state",
        "owner",
        "group",
        "handoff",
        "ticket_id",
        "queued_at",
        "assigned_at",
        "resolved_at",
        "first_response_at",
        "escalated",
        "position",
        "breached_first_response",
        "breached_resolution",
    }
)


@dataclass(frozen=True)
class Conversation:
    conversation_id: str
    channel: str
    state: Owner
    owner: str
    customer: Identity  # verified by the host's identity token, or anonymous
    language: str = ""
    script: str = ""
    severity: Severity = Severity.NORMAL
    seq: int = 0
    fallback_count: int = 0
    last_intents: tuple[str, ...] = ()
    last_answer_intent: str = ""
    pending: dict[str, Any] | None = None
    handoff: Handoff | None = None
    ticket_id: str | None = None
    queued_at: int = 0
    assigned_at: int = 0
    first_response_at: int = 0
    escalated: bool = False
    created_at: int = 0
    raw: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def group(self) -> Group:
        return self.handoff.group if self.handoff else Group.ZH

    @classmethod
    def from_redis(cls, record: Mapping[str, str]) -> Conversation:
        """Decode the merged hashes (``ConversationStore.get``); absent fields take the new-conversation value."""

        def num(name: str) -> int:
            try:
                return int(float(record.get(name) or 0))
            except ValueError:
                return 0

        return cls(
            conversation_id=record["conversation_id"],
            channel=record.get("channel", "web"),
            state=Owner(record.get("state") or Owner.BOT),
            owner=record.get("owner", ""),
            customer=Identity(
                verified=record.get("verified") == "1",
                user=record.get("user", ""),
                tenant=record.get("tenant", ""),
                name=record.get("name", ""),
                email=record.get("email", ""),
                phone=record.get("phone", ""),
                vip_tier=num("vip"),
                locale=record.get("locale", ""),
            ),
            language=record.get("language", ""),
            script=record.get("script", ""),
            severity=Severity.parse(record.get("severity")),
            seq=num("seq"),
            fallback_count=num("fallback_count"),
            last_intents=tuple(json.loads(record.get("last_intents") or "[]")),
            last_answer_intent=record.get("last_answer_intent", ""),
            pending=json.loads(record["pending"]) if record.get("pending") else None,
            handoff=Handoff.from_json(record.get("handoff")),
            ticket_id=record.get("ticket_id") or None,
            queued_at=num("queued_at"),
            assigned_at=num("assigned_at"),
            first_response_at=num("first_response_at"),
            escalated=bool(record.get("escalated")),
            created_at=num("created_at"),
            raw=dict(record),
        )
