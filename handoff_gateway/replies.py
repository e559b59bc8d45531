"""The team's own saved replies ("您好，我是…", "已为您提交技术排查…"), beside the knowledge base's canned
answers: supervisors write them, every agent finds and pastes them. One Redis hash, id → JSON; bounded."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from bot.errors import Conflict, NotFound
from bot.store.keys import Keys

MAX_REPLIES = 500  # the hash's bound (docs/redis.md); a 501st is refused with 409


@dataclass(frozen=True)
class SavedReply:
    id: str
    title: str
    text: str
    language: str  # "zh" or "en": the console lists the agent's language first
    created_by: str
    updated_at: int

    def matches(self, query: str) -> bool:
        q = query.casefold()
        return q in self.title.casefold() or q in self.text.casefold()


class SavedReplies:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis, self.key = redis, keys.saved_replies

    async def all(self, query: str = "", language: str | None = None) -> list[SavedReply]:
        """Matching ``query`` (title or text), the ``language`` ones first, then by title."""
        raw: dict[str, str] = await self.redis.hgetall(self.key)
        replies = [SavedReply(**json.loads(v)) for v in raw.values()]
        found = [r for r in replies if not query or r.matches(query)]
        return sorted(found, key=lambda r: (r.language != language, r.title))

    async def create(self, title: str, text: str, language: str, created_by: str) -> SavedReply:
        if await self.redis.hlen(self.key) >= MAX_REPLIES:
            raise Conflict(f"the team has {MAX_REPLIES} saved replies already; delete one first")
        reply = SavedReply(secrets.token_hex(6), title, text, language, created_by, int(time.time() * 1000))
        await self.redis.hset(self.key, reply.id, json.dumps(asdict(reply), ensure_ascii=False))
        return reply

    async def update(self, reply_id: str, title: str, text: str, language: str, by: str) -> SavedReply:
        if not await self.redis.hexists(self.key, reply_id):
            raise NotFound(f"no saved reply {reply_id[:64]!r}")
        reply = SavedReply(reply_id, title, text, language, by, int(time.time() * 1000))
        await self.redis.hset(self.key, reply.id, json.dumps(asdict(reply), ensure_ascii=False))
        return reply

    async def delete(self, reply_id: str) -> None:
        if not await self.redis.hdel(self.key, reply_id):
            raise NotFound(f"no saved reply {reply_id[:64]!r}")
