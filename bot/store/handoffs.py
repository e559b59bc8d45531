"""The desk's one state machine on Redis: every ownership change of a conversation is one Lua script.

The script checks the transition table (bot/ownership.py), then, atomically with the new state, moves the
conversation in or out of its skill group's queue, drops its open offer, updates the agents' open
conversations (capacity), opens or moves the ticket (status and the open/resolved indexes) and writes the
audit entry. No other code touches the queues, the tickets' status or the open-conversation sets.

All keys are in the ``{desk}`` hash-tag slot (bot/store/keys.py), so the script runs on Redis Cluster too.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.errors import Conflict, TriageError
from bot.ownership import IN_QUEUE, Owner, TransitionError, sources
from bot.store.client import RedisClient
from bot.store.keys import DAY, Keys
from bot.vocabulary import GROUPS, MAX_VIP_TIER, Severity

TIME_SPAN = 10**13  # enqueue times in ms stay below this until the year 2286
SEVERITY_SPAN = TIME_SPAN * (MAX_VIP_TIER + 1)  # a severity tier always sorts before the next one
AUDIT_MAX = 100_000
CUSTOMER_HISTORY = 50

# KEYS: 1 ownership hash, 2 queue zh, 3 queue en, 4 offers, 5 current owner's open set, 6 new owner's open
#       set, 7 ticket hash, 8 open tickets, 9 resolved tickets, 10 audit, 11 customer's tickets
# ARGV: 1 target, 2 sources (json), 3 expected owner, 4 expected ticket id, 5 new owner, 6 capacity,
#       7 queue index (2|3, or 0), 8 queue score, 9 fields (json), 10 ticket (json, or ""), 11 conversation
#       id, 12 now ms, 13 retention ms, 14 audit action, 15 actor, 16 audit detail (json), 17 audit max,
#       18 customer history length
_TRANSITION = """
local h = KEYS[1]
local state = redis.call('HGET', h, 'state') or 'bot'
local allowed = false
for _, s in ipairs(cjson.decode(ARGV[2])) do if s == state then allowed = true end end
if not allowed then return {'refused', state} end
local owner = redis.call('HGET', h, 'owner') or ''
local ticket_id = redis.call('HGET', h, 'ticket_id') or ''
if owner ~= ARGV[3] or ticket_id ~= ARGV[4] then return {'stale', state} end
local target, cid, now = ARGV[1], ARGV[11], ARGV[12]
if target == 'assigned' and tonumber(ARGV[6]) > 0 and redis.call('SCARD', KEYS[6]) >= tonumber(ARGV[6]) then
  return {'full', state}
end
-- queue membership: a waiting/queued conversation keeps its place when it stays in a queue
local kept = nil
for i = 2, 3 do
  local score = redis.call('ZSCORE', KEYS[i], cid)
  if score then kept = score; redis.call('ZREM', KEYS[i], cid) end
end
local index = tonumber(ARGV[7])
if index > 0 then
  local in_queue = (state == 'queued' or state == 'waiting')
  redis.call('ZADD', KEYS[index], (in_queue and kept) or ARGV[8], cid)
else
  redis.call('HDEL', KEYS[4], cid)
end
-- open conversations per agent
if owner ~= '' then redis.call('SREM', KEYS[5], cid) end
if target == 'assigned' then redis.call('SADD', KEYS[6], cid) end
-- the ticket
if ARGV[10] ~= '' then
  local t = cjson.decode(ARGV[10])
  for k, v in pairs(t) do redis.call('HSET', KEYS[7], k, v) end
  redis.call('PEXPIRE', KEYS[7], ARGV[13])
  redis.call('ZADD', KEYS[8], t['due_ts'], t['ticket_id'])
  if KEYS[11] ~= KEYS[7] then
    redis.call('ZADD', KEYS[11], now, t['ticket_id'])
    redis.call('ZREMRANGEBYRANK', KEYS[11], 0, -(tonumber(ARGV[18]) + 1))
    redis.call('PEXPIRE', KEYS[11], ARGV[13])
  end
end
local tid = redis.call('HGET', KEYS[7], 'ticket_id')
if tid then
  local status = redis.call('HGET', KEYS[7], 'status')
  if status ~= 'resolved' and status ~= 'cancelled' then
    local next_status = ({queued = 'open', waiting = 'open', assigned = 'assigned', resolved = 'resolved', bot = 'cancelled'})[target]
    redis.call('HSET', KEYS[7], 'status', next_status, 'updated_at', now)
    -- who holds it now (a transferred ticket is re-assigned to whoever accepts it next)
    if next_status == 'assigned' then redis.call('HSET', KEYS[7], 'assigned_to', ARGV[5]) end
    if next_status == 'resolved' or next_status == 'cancelled' then
      redis.call('HSET', KEYS[7], 'closed_at', now)
      redis.call('ZREM', KEYS[8], tid)
      redis.call('ZADD', KEYS[9], now, tid)
    end
  end
end
-- the new state
redis.call('HSET', h, 'state', target, 'owner', ARGV[5], 'conversation_id', cid)
for k, v in pairs(cjson.decode(ARGV[9])) do
  if v == '' then redis.call('HDEL', h, k) else redis.call('HSET', h, k, v) end
end
redis.call('PEXPIRE', h, ARGV[13])
redis.call('XADD', KEYS[10], 'MAXLEN', '~', ARGV[17], '*', 'action', ARGV[14], 'conversation_id', cid,
  'actor', ARGV[15], 'at', string.format('%.3f', tonumber(now) / 1000), 'detail', ARGV[16],
  'from', state, 'to', target)
return {'ok', state}
"""

# Priority rises: ahead of everything not escalated, keeping the order among escalated ones.
# KEYS: 1 ownership hash, 2 the queue, 3 audit; ARGV: 1 conversation id, 2 now ms, 3 severity span,
#       4 detail (json), 5 audit max
_ESCALATE = """
if redis.call('HGET', KEYS[1], 'escalated') then return 0 end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score then return 0 end
local span = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', -span + (tonumber(score) % span), ARGV[1])
redis.call('HSET', KEYS[1], 'escalated', ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'action', 'escalated', 'conversation_id', ARGV[1],
  'actor', 'system', 'at', string.format('%.3f', tonumber(ARGV[2]) / 1000), 'detail', ARGV[4])
return 1
"""


# An offer is written only while the conversation is still in the queue and has no other open offer: a
# conversation resolved or cancelled while the dispatcher chose an agent is never offered.
# KEYS: 1 the queue, 2 offers; ARGV: 1 conversation id, 2 the offer (json)
_OFFER = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
return redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
"""


def queue_score(severity: str, enqueued_ms: int, vip: int = 0, escalated: bool = False) -> int:
    """Lower sorts first: severity band, then VIP band (the highest tier first), then the wait's start.
    An escalated conversation sorts ahead of every band (as the escalation script moves it)."""
    tier = max(0, min(MAX_VIP_TIER, vip))
    score = Severity.parse(severity).rank * SEVERITY_SPAN + (MAX_VIP_TIER - tier) * TIME_SPAN + enqueued_ms
    return -SEVERITY_SPAN + score % SEVERITY_SPAN if escalated else score


# KEYS: 1 ticket hash. ARGV: 1 kind, 2 masked, 3 sealed, 4 now (ms). Only an existing ticket gets one.
_CONTACT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'contact_kind', ARGV[1], 'contact_masked', ARGV[2], 'contact_sealed', ARGV[3],
           'contact_at', ARGV[4])
return 1
"""


class AtCapacity(Conflict):
    """The agent already has as many conversations as their capacity allows (HTTP 409)."""


class Busy(TriageError):
    """The conversation kept changing under us (many concurrent moves); retry shortly."""

    retryable = True


@dataclass(frozen=True)
class Move:
    """What a transition does besides changing the state."""

    actor: str  # "bot", "system" or an agent id
    action: str  # the audit action: queued, ticket_opened, accepted, transferred, resolved, ...
    owner: str = ""  # the new owner (the agent, for assigned)
    capacity: int = 0  # the new owner's capacity (0: unlimited, for supervisors)
    group: str | None = None  # the queue to join (queued/waiting)
    score: int = 0  # its place in that queue (queue_score), unless it already waits in one
    fields: Mapping[str, str] | None = None  # more fields of the ownership record ("" deletes one)
    ticket: Mapping[str, Any] | None = None  # a new ticket to open with this move
    detail: Mapping[str, Any] | None = None  # for the audit entry


class HandoffStore:
    def __init__(
        self,
        redis: RedisClient,
        prefix: str = "triage:",
        retention_seconds: int = 90 * DAY,
        timezone: str = "Asia/Shanghai",
    ) -> None:
        self.redis: Any = redis  # decode_responses=True: replies are str
        self.keys = Keys(prefix)
        self.retention_ms = retention_seconds * 1000
        self.timezone = timezone
        self._transition = redis.register_script(_TRANSITION)
        self._escalate = redis.register_script(_ESCALATE)
        self._offer = redis.register_script(_OFFER)
        self._contact = redis.register_script(_CONTACT)
        self._none = f"{self.keys.desk}:none"  # a declared placeholder key in the slot; never written

    # ----------------------------------------------------------------------------- reading
    async def get(self, cid: str) -> dict[str, str]:
        record: dict[str, str] = await self.redis.hgetall(self.keys.handoff(cid))
        return record

    async def state(self, cid: str) -> Owner:
        return Owner(await self.redis.hget(self.keys.handoff(cid), "state") or Owner.BOT)

    async def position(self, cid: str, group: str) -> int | None:
        rank = await self.redis.zrank(self.keys.queue(group), cid)
        return None if rank is None else int(rank) + 1

    async def queued(self, group: str, start: int = 0, end: int = -1) -> list[str]:
        members: list[str] = await self.redis.zrange(self.keys.queue(group), start, end)
        return members

    # ------------------------------------------------------------------------- transitions
    async def transition(self, cid: str, target: Owner, move: Move) -> Owner:
        """Move ``cid`` to ``target`` with everything that goes with it, atomically; returns the old state.

        Raises :class:`TransitionError` when the table does not allow it from the current state,
        :class:`AtCapacity` when the new owner is full."""
        for _ in range(5):
            current = await self.redis.hmget(self.keys.handoff(cid), "owner", "ticket_id")
            owner, ticket_id = current[0] or "", current[1] or ""
            ticket = dict(move.ticket) if move.ticket else None
            ticket_key = self.keys.ticket(ticket["ticket_id"] if ticket else ticket_id or "-")
            customer = str((ticket or {}).get("customer_key") or "")
            index = 0
            if target in IN_QUEUE:
                group = move.group or GROUPS[0]
                index = 2 + [g.value for g in GROUPS].index(group)
            status, previous = await self._transition(
                keys=[
                    self.keys.handoff(cid),
                    *(self.keys.queue(g) for g in GROUPS),
                    self.keys.offers,
                    self.keys.agent_open(owner) if owner else self._none,
                    self.keys.agent_open(move.owner) if move.owner else self._none,
                    ticket_key if (ticket or ticket_id) else self._none,
                    self.keys.tickets("open"),
                    self.keys.tickets("resolved"),
                    self.keys.audit,
                    self.keys.customer(customer, "tickets") if customer else ticket_key,
                ],
                args=[
                    target.value,
                    json.dumps(sources(target)),
                    owner,
                    ticket_id,
                    move.owner,
                    move.capacity,
                    index,
                    move.score,
                    json.dumps({k: str(v) for k, v in (move.fields or {}).items()}, ensure_ascii=False),
                    json.dumps(_flat(ticket), ensure_ascii=False) if ticket else "",
                    cid,
                    int(time.time() * 1000),
                    self.retention_ms,
                    move.action,
                    move.actor,
                    json.dumps(dict(move.detail or {}), ensure_ascii=False),
                    AUDIT_MAX,
                    CUSTOMER_HISTORY,
                ],
            )
            if status == "ok":
                return Owner(previous)
            if status == "refused":
                raise TransitionError(cid, Owner(previous), target)
            if status == "full":
                raise AtCapacity(f"you already have {move.capacity} open conversations (your capacity)")
            # stale: the owner or ticket changed between our read and the script; read again
        raise Busy(f"conversation {cid} is changing too fast; retry shortly")

    async def escalate(self, cid: str, group: str, detail: Mapping[str, Any]) -> bool:
        """Move a waiting conversation ahead of everything not escalated (once); False if it was already."""
        done = await self._escalate(
            keys=[self.keys.handoff(cid), self.keys.queue(group), self.keys.audit],
            args=[cid, int(time.time() * 1000), SEVERITY_SPAN, json.dumps(dict(detail)), AUDIT_MAX],
        )
        return bool(done)

    async def offer(self, cid: str, group: str, agent_id: str, expires: float) -> bool:
        """Offer ``cid`` to ``agent_id`` until ``expires`` (epoch s); False if it left the queue meanwhile or
        already has an offer."""
        offered = await self._offer(
            keys=[self.keys.queue(group), self.keys.offers],
            args=[cid, json.dumps({"agent": agent_id, "expires": expires})],
        )
        return bool(offered)

    # ----------------------------------------------------------------------------- tickets
    async def new_ticket_id(self) -> str:
        """The next T-YYYYMMDD-NNNN of the day in the deployment's time zone (gaps are possible)."""
        today = dt.datetime.now(ZoneInfo(self.timezone)).strftime("%Y%m%d")
        key = self.keys.ticket_seq(today)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * DAY)
            number, _ = await pipe.execute()
        return f"T-{today}-{int(number):04d}"

    async def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        raw: dict[str, str] = await self.redis.hgetall(self.keys.ticket(ticket_id))
        return _unflat(raw) if raw else None

    async def set_contact(self, ticket_id: str, kind: str, masked: str, sealed: str) -> bool:
        """Keep how to reach the user on their ticket (bot/contact.py: masked for show, sealed for the agent);
        False when the ticket is gone. Not a transition: the ticket's status and indexes stay as they are."""
        done = await self._contact(
            keys=[self.keys.ticket(ticket_id)],
            args=[kind, masked, sealed, str(int(time.time() * 1000))],
        )
        return bool(done)

    async def customer_tickets(self, customer_key: str, limit: int = 20) -> list[dict[str, Any]]:
        """A verified customer's tickets, newest first."""
        ids = await self.redis.zrevrange(self.keys.customer(customer_key, "tickets"), 0, limit - 1)
        return [ticket for ticket_id in ids if (ticket := await self.ticket(ticket_id)) is not None]

    async def tickets(self, status: str, limit: int = 200) -> list[dict[str, Any]]:
        """Open tickets by first-response due time (soonest first), or resolved ones (newest first)."""
        if status == "open":
            ids = await self.redis.zrange(self.keys.tickets("open"), 0, limit - 1)
        else:
            ids = await self.redis.zrevrange(self.keys.tickets("resolved"), 0, limit - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for ticket_id in ids:
                pipe.hgetall(self.keys.ticket(ticket_id))
            rows = await pipe.execute()
        return [_unflat(row) for row in rows if row]

    async def trim(self) -> None:
        """Bound the indexes that do not expire: resolved tickets and breaches older than the retention,
        and queue members and open tickets whose ownership record expired with the retention."""
        cutoff = time.time() * 1000 - self.retention_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.tickets("resolved"), "-inf", cutoff)
            pipe.zremrangebyscore(self.keys.breaches, "-inf", cutoff / 1000)
            await pipe.execute()
        for group in GROUPS:
            for cid in await self.queued(group):
                if not await self.redis.exists(self.keys.handoff(cid)):
                    await self.redis.zrem(self.keys.queue(group), cid)
        for ticket_id in await self.redis.zrange(self.keys.tickets("open"), 0, -1):
            if not await self.redis.exists(self.keys.ticket(ticket_id)):
                await self.redis.zrem(self.keys.tickets("open"), ticket_id)


def _flat(ticket: Mapping[str, Any]) -> dict[str, str]:
    return {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        for k, v in ticket.items()
        if v is not None
    }


def _unflat(raw: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(raw)
    for name in ("sla", "customer"):
        if name in out:
            out[name] = json.loads(out[name])
    out.pop("due_ts", None)
    return out
