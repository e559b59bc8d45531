"""Conversations on Redis: a hash per conversation, its transcript as a Stream whose entry ids are the
event sequence numbers (``{seq}-0``), idempotency records per client message id, and an index.

Appending an event is one Lua script (increment the sequence, XADD with that id, refresh the expiry), so
sequence order is stream order on every process, and XREAD BLOCK on ``{seq}-0`` is the fan-out between
processes: a websocket on one app process sees what another process appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Iterable, Iterator
from typing import Any

from bot.contracts.conversation import DESK_FIELDS, Conversation
from bot.errors import AlreadyExists, NotFound, StillProcessing
from bot.store.client import RedisClient
from bot.store.keys import Keys

logger = logging.getLogger(__name__)

# KEYS: the conversation's record and stream, and optionally the message's idempotency record (KEYS[3]).
# ARGV: 1 retention ms, 2 now ms, 3 events channel, 4 conversation id, 5 the bot's memory (json object of
# record fields), 6 the response kept under KEYS[3] (json, replies numbered from 0), 7 how long it is kept
# (ms), 8.. the events (json).
# Returns the events' sequence numbers; one notification carries the last. With KEYS[3] the turn is written
# once: the record becomes ``applied:<first seq>:<response>`` in the same script, and a run that finds it so
# (the first delivery's process died before answering) writes nothing and returns ``{-1, <that record>}``.
_APPEND_MANY = """
if KEYS[3] then
  local applied = redis.call('GET', KEYS[3])
  if applied and string.sub(applied, 1, 8) == 'applied:' then return {-1, applied} end
end
local seqs = {}
for i = 8, #ARGV do
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], seq .. '-0', 'e', ARGV[i])
  seqs[#seqs + 1] = seq
end
local fields = {'updated_at', ARGV[2]}
for k, v in pairs(cjson.decode(ARGV[5])) do fields[#fields + 1] = k; fields[#fields + 1] = v end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if KEYS[3] and #seqs > 0 then redis.call('SET', KEYS[3], 'applied:' .. seqs[1] .. ':' .. ARGV[6], 'PX', ARGV[7]) end
if #seqs > 0 then redis.call('PUBLISH', ARGV[3], cjson.encode({c = ARGV[4], s = seqs[#seqs]})) end
return seqs
"""

# KEYS: the conversation's record and stream, and optionally a claimed idempotency record (KEYS[3]).
# ARGV: 1 the event (json), 2 retention ms, 3 now ms, 4 events channel, 5 conversation id, 6 how long the
# record is kept (ms).
# With KEYS[3] the append happens once: the record is marked ``applied:<seq>`` in the same script, and a
# second run (redis-py retrying a command whose reply a Redis restart lost) returns that seq instead.
_APPEND = """
if KEYS[3] then
  local applied = redis.call('GET', KEYS[3])
  if applied and string.sub(applied, 1, 8) == 'applied:' then return tonumber(string.sub(applied, 9)) end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'e', ARGV[1])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if KEYS[3] then redis.call('SET', KEYS[3], 'applied:' .. seq, 'PX', ARGV[6]) end
redis.call('PUBLISH', ARGV[4], cjson.encode({c = ARGV[5], s = seq}))
return seq
"""

# A claim in flight (still ``""``) gets CLAIM_MS more; a finished one is left alone. KEYS: the record.
_RENEW = """
if redis.call('GET', KEYS[1]) == '' then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
"""

# A claim is released only while nothing was applied under it (an ``applied:`` record stays: a retry must
# find it). KEYS: the idempotency record.
_RELEASE = """
if redis.call('GET', KEYS[1]) == '' then return redis.call('DEL', KEYS[1]) end
return 0
"""
APPLIED = "applied:"

# An in-flight claim outlives a killed process by at most CLAIM_MS: a retry of its message waits that long at
# most (it waits up to 10 s). While the message is processed the claim is renewed (ConversationStore.hold), so
# a slow parse does not lose it; and should it lapse anyway, the turn's write is once-only by itself.
CLAIM_MS = 6_000
RENEW_S = 2.0
RESPONSE_MS = 86_400_000  # a finished message's response, for retries: clients retry within minutes


def _forget(pending: set[asyncio.Task[Any]]) -> Any:
    """A done-callback dropping a renewal from ``pending``; a renewal that failed (Redis away) is not an
    error: the next one tries again, and a lapsed claim is safe (the turn's write is once-only)."""

    def done(task: asyncio.Task[Any]) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("renewing a claim failed: %r", task.exception())

    return done


def stored_response(stored: str) -> dict[str, Any]:
    """A finished idempotency record's response. Written by :meth:`ConversationStore.complete`: the response
    itself. Written by an append: ``applied:<seq>`` (one event) gives ``{"seq": seq}``;
    ``applied:<first seq>:<response>`` (a turn) gives the response with its reply and handoff seqs, which
    were counted from 0, moved to the real ones."""
    if not stored.startswith(APPLIED):
        complete: dict[str, Any] = json.loads(stored)
        return complete
    first, _, kept = stored.removeprefix(APPLIED).partition(":")
    if not kept:
        return {"seq": int(first)}
    response: dict[str, Any] = json.loads(kept)
    offset = int(first)
    response["replies"] = [{**r, "seq": r["seq"] + offset} for r in response.get("replies") or ()]
    if response.get("handoff") and response["handoff"].get("seq") is not None:
        response["handoff"] = {**response["handoff"], "seq": response["handoff"]["seq"] + offset}
    return response


class AlreadyApplied(Exception):
    """A turn written once already under this message id (its first delivery's process died before
    answering, or its claim lapsed): ``response`` is the one kept then."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__("this message's turn was written already")
        self.response = response


class ConversationNotFound(NotFound):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation {conversation_id!r}")
        self.conversation_id = conversation_id


def now_ms() -> int:
    return int(time.time() * 1000)


class ConversationStore:
    def __init__(
        self, redis: RedisClient, prefix: str = "triage:", retention_seconds: int = 90 * 86400
    ) -> None:
        # redis-py's annotations cover bytes and str replies; with decode_responses=True they are str.
        self.redis: Any = redis
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.retention_ms = retention_seconds * 1000
        self._append = redis.register_script(_APPEND)
        self._append_many = redis.register_script(_APPEND_MANY)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    # ------------------------------------------------------------------ keys
    def key(self, conversation_id: str) -> str:
        return self.keys.conversation(conversation_id)

    def events_key(self, conversation_id: str) -> str:
        return self.keys.events(conversation_id)

    def _idem_key(self, conversation_id: str, client_msg_id: str) -> str:
        return self.keys.idempotency(conversation_id, client_msg_id)

    # --------------------------------------------------------- conversations
    async def create(
        self, channel: str, user: str = "", conversation_id: str | None = None, **fields: str
    ) -> dict[str, str]:
        conversation_id = conversation_id or secrets.token_hex(12)
        record = {
            "conversation_id": conversation_id,
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
        async with self.redis.pipeline(transaction=True) as pipe:  # the conversation's slot only
            pipe.hsetnx(key, "conversation_id", conversation_id)
            pipe.hset(key, mapping={k: v for k, v in record.items() if k != "conversation_id"})
            pipe.pexpire(key, self.retention_ms)
            created, *_ = await pipe.execute()
        if not created:
            raise AlreadyExists(f"conversation {conversation_id!r} already exists")
        # The index is another slot: written after the record, so every id it lists has one.
        await self._index(conversation_id, int(record["created_at"]))
        return record

    async def _index(self, conversation_id: str, created_ms: int) -> None:
        """Enter the conversation in the index (by creation time) and trim the index to the retention."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.conversations, {conversation_id: created_ms})
            pipe.zremrangebyscore(self.keys.conversations, "-inf", now_ms() - self.retention_ms)
            await pipe.execute()

    async def get_or_create(
        self, conversation_id: str, channel: str, user: str = "", **fields: str
    ) -> dict[str, str]:
        """For channels that name the conversation themselves (Rasa REST sender, WeCom user); ``fields``
        are set only when it is created."""
        existing = await self.get(conversation_id)
        if existing:
            # Its creation may have been cut between the record and the index (another slot): NX, harmless.
            created = int(existing.get("created_at") or now_ms())
            await self.redis.zadd(self.keys.conversations, {conversation_id: created}, nx=True)
            return existing
        try:
            return await self.create(channel, user, conversation_id, **fields)
        except AlreadyExists:  # created by a concurrent request
            return await self.require(conversation_id)

    async def get(self, conversation_id: str) -> dict[str, str] | None:
        """The conversation's record merged with its ownership record (state "bot" when it has none)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(conversation_id))
            pipe.hgetall(self.keys.handoff(conversation_id))
            record, desk = await pipe.execute()
        if not record:
            return None
        return {**record, "state": "bot", "owner": "", **desk}

    async def require(self, conversation_id: str) -> dict[str, str]:
        record = await self.get(conversation_id)
        if record is None:
            raise ConversationNotFound(conversation_id)
        return record

    async def load(self, conversation_id: str) -> Conversation:
        """The typed record; raises :class:`ConversationNotFound`."""
        return Conversation.from_redis(await self.require(conversation_id))

    async def update(self, conversation_id: str, **fields: Any) -> None:
        """Set fields of the conversation's record. Ownership fields (``DESK_FIELDS``) other than the
        state and owner — which only :class:`bot.store.handoffs.HandoffStore` transitions change — go to the
        ownership record."""
        if {"state", "owner"} & fields.keys():
            raise ValueError("state and owner change only through HandoffStore.transition")
        values = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in fields.items()
        }
        own = {k: v for k, v in values.items() if k not in DESK_FIELDS}
        desk = {k: v for k, v in values.items() if k in DESK_FIELDS}
        async with self.redis.pipeline(transaction=False) as pipe:
            if own:
                pipe.hset(self.key(conversation_id), mapping=own)
            if desk:
                pipe.hset(self.keys.handoff(conversation_id), mapping=desk)
                pipe.pexpire(self.keys.handoff(conversation_id), self.retention_ms)
            await pipe.execute()

    # ------------------------------------------------------------- transcript
    async def append(
        self, conversation_id: str, event: dict[str, Any], once: str | None = None
    ) -> dict[str, Any]:
        """Add an event to the transcript; returns it with its ``seq``. ``once``: an idempotency id (a client
        message id, claimed or not) — the event is appended at most once under it, however often this runs."""
        payload = {"ts": now_ms(), **event}
        keys = [self.key(conversation_id), self.events_key(conversation_id)]
        if once is not None:
            keys.append(self._idem_key(conversation_id, once))
        seq = await self._append(
            keys=keys,
            args=[
                json.dumps(payload, ensure_ascii=False),
                self.retention_ms,
                payload["ts"],
                self.keys.events_channel,
                conversation_id,
                min(self.retention_ms, RESPONSE_MS),
            ],
        )
        return {"seq": int(seq), **payload}

    async def append_many(
        self,
        conversation_id: str,
        events: list[dict[str, Any]],
        memory: dict[str, Any] | None = None,
        once: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> list[int]:
        """Append ``events`` in order and save ``memory`` (record fields), atomically in one round trip;
        returns their sequence numbers. ``once``: the client message id whose turn this is — written at most
        once, and ``response`` (its reply and handoff seqs counted from 0 within ``events``) kept for the
        message's retries in the same script (:meth:`claim` gives it back with the real seqs). A turn written
        already under ``once`` raises :class:`AlreadyApplied` with the response kept then."""
        ts = now_ms()
        values = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for k, v in (memory or {}).items()
        }
        if DESK_FIELDS & values.keys():
            raise ValueError(
                f"ownership fields go through HandoffStore: {sorted(DESK_FIELDS & values.keys())}"
            )
        keys = [self.key(conversation_id), self.events_key(conversation_id)]
        if once is not None:
            keys.append(self._idem_key(conversation_id, once))
        seqs = await self._append_many(
            keys=keys,
            args=[
                self.retention_ms,
                ts,
                self.keys.events_channel,
                conversation_id,
                json.dumps(values, ensure_ascii=False) if values else "{}",
                json.dumps(response or {}, ensure_ascii=False),
                min(self.retention_ms, RESPONSE_MS),
                *(json.dumps({"ts": ts, **event}, ensure_ascii=False) for event in events),
            ],
        )
        if seqs and int(seqs[0]) == -1:
            raise AlreadyApplied(stored_response(str(seqs[1])))
        return [int(seq) for seq in seqs]

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
        of the first delivery, waiting for it while that delivery is still being processed. A first delivery
        that appended under the claim (``append(once=...)``) but never completed gives ``{"seq": <its seq>}``."""
        key = self._idem_key(conversation_id, client_msg_id)
        if await self.redis.set(key, "", nx=True, px=CLAIM_MS):
            return None
        deadline = time.monotonic() + wait_s
        while True:
            stored = await self.redis.get(key)
            if stored:
                return stored_response(stored)
            # None: the first delivery failed and released its claim, so this one takes over.
            # An expired claim (its process died mid-message) is None too: this delivery takes over.
            if stored is None and await self.redis.set(key, "", nx=True, px=CLAIM_MS):
                return None
            if time.monotonic() > deadline:
                raise StillProcessing(f"message {client_msg_id!r} is still being processed; retry shortly")
            await asyncio.sleep(0.05)

    @contextlib.contextmanager
    def hold(self, conversation_id: str, client_msg_id: str) -> Iterator[None]:
        """Keep this process's claim on ``client_msg_id`` alive while the block runs: renewed every RENEW_S
        (a timer, no task, unless processing takes that long)."""
        loop = asyncio.get_running_loop()
        key = self._idem_key(conversation_id, client_msg_id)
        pending: set[asyncio.Task[Any]] = set()
        timers: list[asyncio.TimerHandle] = []

        def renew() -> None:
            task = loop.create_task(self._renew(keys=[key], args=[CLAIM_MS]))
            pending.add(task)
            task.add_done_callback(_forget(pending))
            timers[0] = loop.call_later(RENEW_S, renew)

        timers.append(loop.call_later(RENEW_S, renew))
        try:
            yield
        finally:
            timers[0].cancel()

    async def complete(self, conversation_id: str, client_msg_id: str, response: dict[str, Any]) -> None:
        await self.redis.set(
            self._idem_key(conversation_id, client_msg_id),
            json.dumps(response, ensure_ascii=False),
            px=min(self.retention_ms, RESPONSE_MS),
        )

    async def release(self, conversation_id: str, client_msg_id: str) -> None:
        """Processing failed: let a retry of the same message id process it again — unless something was
        appended under the claim already (the failure was a lost reply), which a retry must find."""
        await self._release(keys=[self._idem_key(conversation_id, client_msg_id)])
