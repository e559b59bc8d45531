"""The handoff queue: one sorted set per skill group, ordered by severity, then VIP tier, then waiting time.

Position and expected wait come from the rank and the configured average handling time; the handoff
gateway (next issue) adds offers, acceptance and presence on top of the same keys.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis

SEVERITY_RANK = {"urgent": 0, "important": 1, "normal": 2}
MAX_VIP = 9
TIME_SPAN = 10**13  # enqueue times in ms stay below this until the year 2286
SEVERITY_SPAN = TIME_SPAN * (MAX_VIP + 1)  # a severity tier always sorts before the next one


def queue_score(severity: str, enqueued_ms: int, vip: int = 0) -> float:
    """Lower sorts first: severity band, then VIP band (tier 9 first), then the time the wait started."""
    tier = max(0, min(MAX_VIP, vip))
    return SEVERITY_RANK.get(severity, 2) * SEVERITY_SPAN + (MAX_VIP - tier) * TIME_SPAN + enqueued_ms


class HandoffQueue:
    def __init__(self, redis: aredis.Redis, prefix: str = "triage:") -> None:
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.prefix = prefix

    def key(self, group: str) -> str:
        return f"{self.prefix}queue:{group}"

    async def enqueue(
        self, conversation_id: str, group: str, severity: str, enqueued_ms: int, vip: int = 0
    ) -> int:
        """Add (idempotently: the first enqueue time is kept); returns the 1-based position."""
        score = queue_score(severity, enqueued_ms, vip)
        await self.redis.zadd(self.key(group), {conversation_id: score}, nx=True)
        return await self.position(conversation_id, group) or 1

    async def position(self, conversation_id: str, group: str) -> int | None:
        rank = await self.redis.zrank(self.key(group), conversation_id)
        return None if rank is None else int(rank) + 1

    async def remove(self, conversation_id: str, group: str) -> None:
        await self.redis.zrem(self.key(group), conversation_id)

    async def length(self, group: str) -> int:
        return int(await self.redis.zcard(self.key(group)))
