"""The audit stream: every ownership change with who and when (queued, offered, accepted, declined,
transferred, resolved, handed back, escalated, breached). Transitions write theirs inside the state
machine's script (bot/store/handoffs.py); this writes the rest (offers, declines, presence, breaches)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aredis

from bot.store.handoffs import AUDIT_MAX
from bot.store.keys import Keys


class Audit:
    def __init__(self, redis: aredis.Redis, prefix: str = "triage:") -> None:
        self.redis: Any = redis
        self.key = Keys(prefix).audit

    async def record(self, action: str, conversation_id: str, actor: str, **detail: Any) -> None:
        await self.redis.xadd(
            self.key,
            {
                "action": action,
                "conversation_id": conversation_id,
                "actor": actor,
                "at": f"{time.time():.3f}",
                "detail": json.dumps(detail, ensure_ascii=False),
            },
            maxlen=AUDIT_MAX,
            approximate=True,
        )

    async def entries(self, conversation_id: str | None = None, count: int = 500) -> list[dict[str, Any]]:
        rows = await self.redis.xrevrange(self.key, count=count)
        entries = [
            {**fields, "detail": json.loads(fields.get("detail") or "{}"), "id": entry_id}
            for entry_id, fields in rows
        ]
        if conversation_id:
            entries = [e for e in entries if e["conversation_id"] == conversation_id]
        return list(reversed(entries))
