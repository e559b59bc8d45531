"""Per-client rate limits, shared by every process: a token bucket per Redis key.

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute`` a minute; each accepted request
takes one. A full bucket is the same as no key at all, so a key expires a minute after its last use. A
refusal is :class:`~bot.errors.RateLimited` with the seconds until the next token (429 + ``Retry-After``, or
an error frame on a websocket); nothing refused was stored, so the client sends it again later.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bot.errors import RateLimited
from bot.store.client import RedisClient
from bot.store.keys import Keys

# KEYS[1] the bucket; ARGV: capacity, tokens per ms, now (ms), ttl (ms). Returns 0 (taken) or the ms to wait.
_TAKE = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(bucket[1]) or capacity
local ts = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
if tokens < 1 then
  return math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens - 1), 'ts', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
"""
MINUTE_MS = 60_000


class RateLimits:
    """New conversations per client address and messages per conversation, each ``0`` for no limit."""

    def __init__(
        self, redis: RedisClient, keys: Keys, conversations_per_minute: int, messages_per_minute: int
    ) -> None:
        self.keys = keys
        self.conversations_per_minute = conversations_per_minute
        self.messages_per_minute = messages_per_minute
        self._take: Any = redis.register_script(_TAKE)

    async def new_conversation(self, address: str) -> None:
        """Raises RateLimited when ``address`` has started too many conversations lately."""
        await self._spend(
            self.keys.creation_rate(address), self.conversations_per_minute, "new conversations"
        )

    async def message(self, conversation_id: str) -> None:
        """Raises RateLimited when the conversation has sent too many messages lately."""
        await self._spend(self.keys.message_rate(conversation_id), self.messages_per_minute, "messages")

    async def _spend(self, key: str, per_minute: int, what: str) -> None:
        if per_minute <= 0:
            return
        wait_ms = int(
            await self._take(
                keys=[key], args=[per_minute, per_minute / MINUTE_MS, int(time.time() * 1000), MINUTE_MS]
            )
        )
        if wait_ms > 0:
            retry_after = max(1, math.ceil(wait_ms / 1000))
            raise RateLimited(
                f"too many {what}: {per_minute} a minute are accepted; retry in {retry_after} s", retry_after
            )
