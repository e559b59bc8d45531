"""Tickets: opened when nobody is on duty, numbered T-YYYYMMDD-NNNN, with their SLA clock."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

import redis.asyncio as aredis

TICKET_ID = re.compile(r"\bT-\d{8}-\d{4}\b", re.IGNORECASE)


class TicketStore:
    def __init__(self, redis: aredis.Redis, prefix: str = "triage:", timezone: str = "Asia/Shanghai") -> None:
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.prefix, self.timezone = prefix, timezone

    def key(self, ticket_id: str) -> str:
        return f"{self.prefix}ticket:{ticket_id.upper()}"

    async def open(
        self,
        conversation_id: str,
        user: str,
        channel: str,
        severity: str,
        reason: str,
        sla: dict[str, Any],
        summary: str,
    ) -> dict[str, Any]:
        today = dt.datetime.now(ZoneInfo(self.timezone)).strftime("%Y%m%d")
        number = await self.redis.incr(f"{self.prefix}tickets:seq:{today}")
        ticket_id = f"T-{today}-{number:04d}"
        ticket = {
            "ticket_id": ticket_id,
            "conversation_id": conversation_id,
            "user": user,
            "channel": channel,
            "severity": severity,
            "reason": reason,
            "status": "open",
            "summary": summary,
            "sla": sla,
            "created_at": sla["started_at"],
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key(ticket_id), json.dumps(ticket, ensure_ascii=False))
            pipe.zadd(
                f"{self.prefix}tickets:open",
                {ticket_id: dt.datetime.fromisoformat(sla["first_response_due"]).timestamp()},
            )
            pipe.rpush(f"{self.prefix}user:{channel}:{user}:tickets", ticket_id)
            await pipe.execute()
        return ticket

    async def get(self, ticket_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.key(ticket_id))
        return json.loads(raw) if raw else None

    async def for_user(self, channel: str, user: str) -> list[str]:
        ids: list[str] = await self.redis.lrange(f"{self.prefix}user:{channel}:{user}:tickets", 0, -1)
        return ids
