"""Agents and supervisors: accounts (scrypt-hashed passwords, API tokens), sessions with expiry, presence.

Keys (after the deployment prefix): ``agent:{id}`` hash, ``agents`` set, ``agents:by_name`` hash,
``session:{sha256(token)}`` → agent id (expires); API tokens are handoff_gateway/tokens.py's. The set of
conversations an agent owns is the desk's (bot/store/keys.py ``agent_open``), changed only by the state machine.

Signing out (or revoking a token) deletes it and publishes ``signed_out`` with its digest on the agent's
channel: every process's consoles opened with it close with 4401. Consoles also re-check their credential
on every frame and heartbeat, so one that expired closes too.

Failed sign-ins are counted per name and per client address (the address uvicorn reports: proxy headers are
trusted only from ``TRIAGE_TRUSTED_PROXIES``). A locked name or address is refused with 429 whatever the
password — the right one too — until the window has passed.

Sign-in cost: one scrypt computation (~50 ms of CPU) per attempt, whether or not the name exists, run in the
CPU pool so other connections keep being served meanwhile. See docs/gateway.md, "Sign-in cost and timing".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.cpu import CpuPool, run_cpu
from bot.errors import AlreadyExists, AuthError, RateLimited, TriageError
from bot.store.client import RedisClient
from bot.store.keys import Keys
from handoff_gateway.tokens import ApiTokens, TokenInfo
from handoff_gateway.tokens import token_hash as token_hash  # sessions are hashed alike

logger = logging.getLogger(__name__)

Role = Literal["agent", "supervisor"]
Presence = Literal["online", "away", "offline"]
ROLES = ("agent", "supervisor")
PRESENCE = ("online", "away", "offline")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
# What an unknown name is verified against: the same scrypt parameters as a real hash, a random salt and a
# random "digest" that no password produces. Verifying against it costs exactly what verifying a real
# hash costs (one scrypt), and making it costs nothing: no hash_password, neither per request nor per process.
_DUMMY_HASH = (
    f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}$"
    f"{secrets.token_hex(16)}${secrets.token_hex(_SCRYPT['dklen'])}"
)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt (hashlib), stored as ``scrypt$n$r$p$salt$hash`` in hex."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """One scrypt computation, compared in constant time; False for a malformed ``stored``."""
    try:
        _, n, r, p, salt, expected = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected) // 2
    )
    return hmac.compare_digest(digest.hex(), expected)


ADDRESS_FAILURES_FACTOR = 4  # an address may be shared (an office): it gets this many names' worth


class AgentExists(AlreadyExists):
    """An agent with this name exists already."""


class TooManyAttempts(RateLimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-in attempts; try again in {retry_after} s", retry_after)


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str = "agent"
    skills: tuple[str, ...] = ("zh", "en")
    capacity: int = 3
    display_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name or self.name,
            "role": self.role,
            "skills": list(self.skills),
            "capacity": self.capacity,
        }


class AgentStore:
    def __init__(
        self,
        redis: RedisClient,
        prefix: str = "triage:",
        session_hours: float = 12.0,
        max_failures: int = 5,
        lockout_seconds: int = 300,
        *,
        cpu: CpuPool | None = None,
        token_days: int = 90,
    ) -> None:
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.cpu = cpu  # scrypt runs here (asyncio.to_thread without one), never on the event loop
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.session_seconds = int(session_hours * 3600)
        self.tokens = ApiTokens(self.redis, self.keys, token_days)
        self.max_failures, self.lockout_seconds = max_failures, lockout_seconds

    # ------------------------------------------------------------- accounts
    async def add(
        self,
        name: str,
        password: str,
        role: str = "agent",
        skills: tuple[str, ...] = ("zh", "en"),
        capacity: int = 3,
        display_name: str = "",
    ) -> tuple[Agent, str]:
        """Create an agent; returns it and a fresh API token (shown once)."""
        if role not in ROLES:
            raise TriageError(f"role must be one of {ROLES}, got {role!r}")
        if not name.strip() or len(password) < 8:
            raise TriageError("an agent needs a name and a password of at least 8 characters")
        if capacity < 1:
            raise TriageError("capacity must be at least 1")
        password_hash = await run_cpu(self.cpu, hash_password, password)
        agent_id = "a-" + secrets.token_hex(6)
        if not await self.redis.hsetnx(self.keys.agents_by_name, name, agent_id):
            raise AgentExists(f"an agent named {name!r} already exists")
        agent = Agent(agent_id, name, role, tuple(skills), capacity, display_name or name)
        await self.redis.hset(
            self.keys.agent(agent_id),
            mapping={
                "id": agent_id,
                "name": name,
                "role": role,
                "skills": json.dumps(list(skills)),
                "capacity": capacity,
                "display_name": agent.display_name,
                "password": password_hash,
                "created_at": int(time.time()),
            },
        )
        await self.redis.sadd(self.keys.agents, agent_id)
        _, api_token = await self.tokens.issue(agent_id)
        return agent, api_token

    async def get(self, agent_id: str) -> Agent | None:
        raw = await self.redis.hgetall(self.keys.agent(agent_id))
        return _agent(raw) if raw else None

    async def all(self) -> list[Agent]:
        ids = sorted(await self.redis.smembers(self.keys.agents))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(self.keys.agent(agent_id))
            records = await pipe.execute()
        return [_agent(raw) for raw in records if raw]

    async def roster(self) -> list[Seat]:
        """Every agent with presence and open conversations, read in two round trips (the dispatcher's view
        for one pass)."""
        agents = await self.all()
        if not agents:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hgetall(self.keys.presence(agent.id))
                pipe.scard(self.keys.agent_open(agent.id))
            read = await pipe.execute()
        return [
            Seat(agent, _presence(raw), int(count), float(raw.get("idle_since") or 0))
            for agent, raw, count in zip(agents, read[::2], read[1::2], strict=True)
        ]

    async def by_name(self, name: str) -> Agent | None:
        agent_id = await self.redis.hget(self.keys.agents_by_name, name)
        return await self.get(agent_id) if agent_id else None

    # ------------------------------------------------------------- sessions
    async def login(self, name: str, password: str, client: str = "") -> tuple[Agent, str, int]:
        """A session token for a correct password; failures are counted per name and per client address.

        A known and an unknown name cost the same: two Redis reads and one scrypt verification (against
        ``_DUMMY_HASH`` for an unknown name), so neither the time taken nor the answer tells which names exist.
        """
        by_name = self.keys.login_failures(
            "name:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        )
        by_address = self.keys.login_failures("addr:" + client)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in (by_name, by_address):
                pipe.get(key)
                pipe.ttl(key)
            name_failures, name_ttl, address_failures, address_ttl = await pipe.execute()
        if int(name_failures or 0) >= self.max_failures:
            raise TooManyAttempts(max(1, int(name_ttl)))
        if int(address_failures or 0) >= self.max_failures * ADDRESS_FAILURES_FACTOR:
            raise TooManyAttempts(max(1, int(address_ttl)))
        agent_id = await self.redis.hget(self.keys.agents_by_name, name)
        # The same second read for an unknown name (of a key that never exists), to keep the timing alike.
        stored = await self.redis.hget(self.keys.agent(agent_id or "-"), "password")
        matched = await run_cpu(self.cpu, verify_password, password, stored or _DUMMY_HASH)
        ok = matched and stored is not None
        if not ok:
            for key in (by_name, by_address):  # one transaction per key: they are in different slots
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, self.lockout_seconds)  # never a counter without its expiry
                    await pipe.execute()
            raise AuthError("wrong name or password")
        await self.redis.delete(by_name)
        token = "ses_" + secrets.token_urlsafe(24)
        await self.redis.set(self.keys.session(token_hash(token)), agent_id, ex=self.session_seconds)
        agent = await self.get(agent_id)
        assert agent is not None
        return agent, token, self.session_seconds

    async def agent_id_for(self, digest: str) -> str | None:
        """Whose live session or API token has this digest; None when it expired, was revoked or never was."""
        session: str | None = await self.redis.get(self.keys.session(digest))
        return session or await self.tokens.agent_of(digest)

    async def authenticate(self, token: str) -> Agent:
        """The agent a session or API token belongs to; raises AuthError for a wrong or expired one."""
        agent_id = await self.agent_id_for(token_hash(token))
        agent = await self.get(agent_id) if agent_id else None
        if agent is None:
            raise AuthError("unknown or expired agent token; sign in again")
        return agent

    async def logout(self, token: str) -> None:
        """End the session ``token`` is (an API token: revoke it) and close the consoles it opened."""
        digest = token_hash(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(self.keys.session(digest))
            pipe.delete(self.keys.session(digest))
            agent_id, _ = await pipe.execute()
        if agent_id:
            await self.signed_out(agent_id, digest, "signed out")
            return
        agent_id = await self.tokens.agent_of(digest)
        if agent_id is None:
            raise AuthError("unknown or expired agent token; sign in again")
        info = next((t for t in await self.tokens.list(agent_id) if t.digest == digest), None)
        if info is not None:
            await self.revoke_token(info)

    async def revoke_token(self, info: TokenInfo) -> None:
        await self.tokens.revoke(info)
        await self.signed_out(info.agent_id, info.digest, "API token revoked")

    async def signed_out(self, agent_id: str, digest: str, reason: str) -> None:
        """Tell every process: the consoles opened with this credential close (``ws_agent``)."""
        event = {"type": "signed_out", "session": digest, "reason": reason}
        await self.redis.publish(self.keys.agent_channel(agent_id), json.dumps(event))
        logger.info("agent %s: %s", agent_id, reason)

    # ------------------------------------------------------------- presence
    async def set_presence(self, agent_id: str, status: str) -> None:
        if status not in PRESENCE:
            raise TriageError(f"presence must be one of {PRESENCE}")
        now = time.time()
        await self.redis.hset(
            self.keys.presence(agent_id), mapping={"status": status, "since": now, "seen": now}
        )

    async def heartbeat(self, agent_id: str) -> None:
        await self.redis.hset(self.keys.presence(agent_id), "seen", time.time())

    async def presence(self, agent_id: str) -> dict[str, Any]:
        return _presence(await self.redis.hgetall(self.keys.presence(agent_id)))

    async def open_conversations(self, agent_id: str) -> set[str]:
        members: set[str] = await self.redis.smembers(self.keys.agent_open(agent_id))
        return members


@dataclass
class Seat:
    """An agent as one dispatcher pass sees it: presence, how many conversations it has open, idle since."""

    agent: Agent
    presence: dict[str, Any]
    open_count: int
    idle_since: float


def _agent(raw: dict[str, str]) -> Agent:
    return Agent(
        raw["id"],
        raw["name"],
        raw["role"],
        tuple(json.loads(raw["skills"])),
        int(raw["capacity"]),
        raw.get("display_name", ""),
    )


def _presence(raw: dict[str, str]) -> dict[str, Any]:
    return {
        "status": raw.get("status", "offline"),
        "since": float(raw.get("since", 0)),
        "seen": float(raw.get("seen", 0)),
    }
