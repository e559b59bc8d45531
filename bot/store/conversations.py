"""Conversations on Redis: a hash per conversation, its transcript as a Stream whose entry ids are the
event sequence numbers (``{seq}-0``), idempotency records per client message id, and an index.

Appending an event is one Lua script (increment the sequence, XADD with that id, refresh the expiry), so
sequence order is stream order on every process, and XREAD BLOCK on ``{seq}-0`` is the fan-out between
processes: a websocket on one app process sees what another process appended.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aredis

from bot.errors import NotFound, TriageError
from bot.ownership import ALLOWED, Owner, TransitionError

_APPEND = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'e', ARGV[1])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return seq
"""

_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {'missing', ''} end
for i = 2, #ARGV do
  if ARGV[i] == current then
    redis.call('HSET', KEYS[1], 'state', ARGV[1])
    return {'ok', current}
  end
end
return {'refused', current}
"""


class ConversationNotFound(NotFound):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation {conversation_id!r}")
        self.conversation_id = conversation_id


def now_ms() -> int:
    return int(time.time() * 1000)


class ConversationStore:
    def __init__(
        self, redis: aredis.Redis, prefix: str = "triage:", retention_seconds: int = 90 * 86400
    ) -> None:
        # redis-py's annotations cover bytes and str replies; with decode_responses=True they are str.
        self.redis: Any = redis
        self.prefix = prefix
        self.retention_ms = retention_seconds * 1000
        self._append = redis.register_script(_APPEND)
        self._transition = redis.register_script(_TRANSITION)

    # ------------------------------------------------------------------ keys
    def key(self, conversation_id: str) -> str:
        return f"{self.prefix}conv:{conversation_id}"

    def events_key(self, conversation_id: str) -> str:
        return f"{self.prefix}conv:{conversation_id}:events"

    def _idem_key(self, conversation_id: str, client_msg_id: str) -> str:
        return f"{self.prefix}conv:{conversation_id}:idem:{client_msg_id}"

    # --------------------------------------------------------- conversations
    async def create(
        self, channel: str, user: str = "", conversation_id: str | None = None, **fields: str
    ) -> dict[str, str]:
        conversation_id = conversation_id or secrets.token_hex(12)
        record = {
            "conversation_id": conversation_id,
            "state": Owner.BOT.value,
            "owner": "",
            "channel": channel,
            "user": user,
            "language": "",
            "script": "",
            "severity": "normal",
            "last_intents": "[]",
            "fallback_count": "0",
            "seq": "0",
            "created_at": str(now_ms()),
            "updated_at": str(now_ms()),
            **fields,
        }
        key = self.key(conversation_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "conversation_id", conversation_id)
            pipe.hset(key, mapping={k: v for k, v in record.items() if k != "conversation_id"})
            pipe.pexpire(key, self.retention_ms)
            pipe.zadd(f"{self.prefix}conversations", {conversation_id: now_ms()})
            created, *_ = await pipe.execute()
        if not created:
            raise TriageError(f"conversation {conversation_id!r} already exists")
        return record

    async def get_or_create(self, conversation_id: str, channel: str, user: str = "") -> dict[str, str]:
        """For channels that name the conversation themselves (Rasa REST sender, WeCom user)."""
        existing = await self.get(conversation_id)
        if existing:
            return existing
        try:
            return await self.create(channel, user, conversation_id)
        except TriageError:  # created by a concurrent request
            return await self.require(conversation_id)

    async def get(self, conversation_id: str) -> dict[str, str] | None:
        record: dict[str, str] = await self.redis.hgetall(self.key(conversation_id))
        return record or None

    async def require(self, conversation_id: str) -> dict[str, str]:
        record = await self.get(conversation_id)
        if record is None:
            raise ConversationNotFound(conversation_id)
        return record

    async def update(self, conversation_id: str, **fields: Any) -> None:
        values = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in fields.items()
        }
        if values:
            await self.redis.hset(self.key(conversation_id), mapping=values)

    async def transition(self, conversation_id: str, target: Owner, **fields: Any) -> Owner:
        """Move ownership atomically; raises :class:`TransitionError` when ``target`` is not allowed now."""
        sources = [state.value for state, targets in ALLOWED.items() if target in targets]
        status, current = await self._transition(
            keys=[self.key(conversation_id)], args=[target.value, *sources]
        )
        if status == "missing":
            raise ConversationNotFound(conversation_id)
        if status == "refused":
            raise TransitionError(conversation_id, Owner(current), target)
        await self.update(conversation_id, **fields)
        return Owner(current)

    # ------------------------------------------------------------- transcript
    async def append(self, conversation_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Add an event to the transcript; returns it with its ``seq``."""
        payload = {"ts": now_ms(), **event}
        seq = await self._append(
            keys=[self.key(conversation_id), self.events_key(conversation_id)],
            args=[json.dumps(payload, ensure_ascii=False), self.retention_ms, payload["ts"]],
        )
        return {"seq": int(seq), **payload}

    @staticmethod
    def _decode(entries: Iterable[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
        # The stream entry id is the sequence number: "{seq}-0".
        return [
            {"seq": int(entry_id.split("-")[0]), **json.loads(fields["e"])} for entry_id, fields in entries
        ]

    async def events_after(
        self, conversation_id: str, after: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        entries = await self.redis.xrange(
            self.events_key(conversation_id), min=f"{after + 1}-0", max="+", count=limit
        )
        return self._decode(entries)

    async def wait_events(self, conversation_id: str, after: int, timeout_ms: int) -> list[dict[str, Any]]:
        """Events after ``after``, waiting up to ``timeout_ms`` for the first one (XREAD BLOCK)."""
        ready = await self.events_after(conversation_id, after)
        if ready or timeout_ms <= 0:
            return ready
        result = await self.redis.xread(
            {self.events_key(conversation_id): f"{after}-0"}, block=timeout_ms, count=500
        )
        return self._decode(result[0][1]) if result else []

    # ------------------------------------------------------------ idempotency
    async def claim(
        self, conversation_id: str, client_msg_id: str, wait_s: float = 10.0
    ) -> dict[str, Any] | None:
        """None when this client message id is new (the caller processes it); otherwise the stored response
        of the first delivery, waiting for it while that delivery is still being processed."""
        key = self._idem_key(conversation_id, client_msg_id)
        if await self.redis.set(key, "", nx=True, px=self.retention_ms):
            return None
        deadline = time.monotonic() + wait_s
        while True:
            stored = await self.redis.get(key)
            if stored:
                response: dict[str, Any] = json.loads(stored)
                return response
            # None: the first delivery failed and released its claim, so this one takes over.
            if stored is None and await self.redis.set(key, "", nx=True, px=self.retention_ms):
                return None
            if time.monotonic() > deadline:
                raise TriageError(f"message {client_msg_id!r} is still being processed; retry shortly")
            await asyncio.sleep(0.05)

    async def complete(self, conversation_id: str, client_msg_id: str, response: dict[str, Any]) -> None:
        await self.redis.set(
            self._idem_key(conversation_id, client_msg_id),
            json.dumps(response, ensure_ascii=False),
            px=self.retention_ms,
        )

    async def release(self, conversation_id: str, client_msg_id: str) -> None:
        """Processing failed: let a retry of the same message id process it again."""
        await self.redis.delete(self._idem_key(conversation_id, client_msg_id))
