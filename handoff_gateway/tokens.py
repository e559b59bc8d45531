"""Agents' API tokens (``agt_…``): issued with an expiry, listed, revoked — stored only as sha256 digests.

Keys (after the deployment prefix): ``apitoken:{sha256(token)}`` → agent id, expiring after
``TRIAGE_AGENT_TOKEN_DAYS``; ``agent:{id}:tokens`` hash, token id → digest, created and expiry times (what
``triage agents tokens list`` and ``GET /api/v1/agents/{id}/tokens`` show). A token id is ``tok_`` and the
first 12 hex digits of the digest: enough to name a token, useless to sign in with.

Tokens issued before tokens expired have no TTL: the first time one is used its clock starts (and it is
listed from then on).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from bot.store.keys import Keys

PREFIX = "agt_"
LISTED_FIRST_S = 60  # a token is listed before it works (two Redis slots): not pruned while that young


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_id_of(digest: str) -> str:
    return "tok_" + digest[:12]


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    agent_id: str
    digest: str
    created_at: int
    expires_at: int

    def public(self) -> dict[str, Any]:
        """What may be shown: never the digest, never the token."""
        return {
            "token_id": self.token_id,
            "agent_id": self.agent_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


class ApiTokens:
    def __init__(self, redis: Any, keys: Keys, days: int = 90) -> None:
        self.redis, self.keys, self.seconds = redis, keys, days * 86400

    async def issue(self, agent_id: str) -> tuple[TokenInfo, str]:
        """A fresh token for ``agent_id``; the token itself is returned once and never stored."""
        token = PREFIX + secrets.token_urlsafe(24)
        return await self._index(agent_id, token_hash(token), set_key=True), token

    async def _index(self, agent_id: str, digest: str, *, set_key: bool) -> TokenInfo:
        now = int(time.time())
        info = TokenInfo(token_id_of(digest), agent_id, digest, now, now + self.seconds)
        record = {"digest": digest, "created_at": info.created_at, "expires_at": info.expires_at}
        # Two slots: listed first, then made to work — a crash in between leaves a listed token that opens
        # nothing (and can be revoked), never a working token nobody can see.
        await self.redis.hset(self.keys.agent_tokens(agent_id), info.token_id, json.dumps(record))
        if set_key:
            await self.redis.set(self.keys.api_token(digest), agent_id, ex=self.seconds)
        else:
            await self.redis.expire(self.keys.api_token(digest), self.seconds)
        return info

    async def agent_of(self, digest: str) -> str | None:
        """The agent a token digest belongs to; None for an unknown, expired or revoked one."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.api_token(digest))
            pipe.ttl(self.keys.api_token(digest))
            agent_id, ttl = await pipe.execute()
        if agent_id and ttl == -1:  # issued before tokens expired: start its clock now
            await self._index(agent_id, digest, set_key=False)
        return str(agent_id) if agent_id else None

    async def list(self, agent_id: str) -> list[TokenInfo]:
        """The agent's live tokens, oldest first; expired and revoked ones are dropped from the index."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.agent_tokens(agent_id))
        infos = [self._info(agent_id, token_id, record) for token_id, record in raw.items()]
        async with self.redis.pipeline(transaction=False) as pipe:
            for info in infos:
                pipe.exists(self.keys.api_token(info.digest))
            alive = await pipe.execute() if infos else []
        settled = time.time() - LISTED_FIRST_S  # a token listed this recently may be about to start working
        gone = [
            info.token_id
            for info, exists in zip(infos, alive, strict=True)
            if not exists and info.created_at < settled
        ]
        if gone:
            await self.redis.hdel(self.keys.agent_tokens(agent_id), *gone)
        live = (i for i, exists in zip(infos, alive, strict=True) if exists)
        return sorted(live, key=lambda i: (i.created_at, i.token_id))

    async def find(self, token_id: str) -> TokenInfo | None:
        """A token by its id, whoever's it is (agents are few: one HGET each)."""
        agent_ids = sorted(await self.redis.smembers(self.keys.agents))
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.hget(self.keys.agent_tokens(agent_id), token_id)
            records = await pipe.execute() if agent_ids else []
        for agent_id, record in zip(agent_ids, records, strict=True):
            if record:
                info = self._info(agent_id, token_id, record)
                if await self.redis.exists(self.keys.api_token(info.digest)):
                    return info
        return None

    async def revoke(self, info: TokenInfo) -> None:
        # Stops working first, then leaves the list (two slots; see _index).
        await self.redis.delete(self.keys.api_token(info.digest))
        await self.redis.hdel(self.keys.agent_tokens(info.agent_id), info.token_id)

    @staticmethod
    def _info(agent_id: str, token_id: str, record: str) -> TokenInfo:
        data = json.loads(record)
        return TokenInfo(token_id, agent_id, data["digest"], int(data["created_at"]), int(data["expires_at"]))
