"""The analytics rollup: every conversation's event stream, read past a cursor, folded into daily counters,
handling times, fallback counts and the knowledge-gap log.

Each conversation has one cursor (``{analytics}:conv``): the last seq read and the little the fold must
remember between batches (whether the conversation was counted, answered or handed off, the handoff being
timed, the last answered question). One script compares the cursor with what this process read, then moves
it and applies everything the batch adds — so two processes rolling up the same conversation count it once,
and a restart carries on where the cursor stands. All keys share the ``{analytics}`` slot.

What counts (docs/analytics.md): a conversation is counted on the day of its first user message; it is
*answered* when the bot gave a KB answer and *deflected* when it was answered and never handed off. Handoffs
count by reason and severity on their day; first-response and resolution times are measured from the
handoff's SLA start, against its SLA due times, on the day the handoff started.

The gap log takes every fallback, every "not helpful" (with the question that was answered), every handoff
whose agent replies did not come from the KB (at resolve or hand-back, with those replies), and every agent
reply marked "make this an article". Its texts are the transcript's, already masked; agents' replies are
masked here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.privacy import mask_sensitive
from bot.store.conversations import ConversationStore
from bot.store.keys import DAY, Keys
from bot.tasks import cancel_and_wait
from bot.vocabulary import group_for

logger = logging.getLogger(__name__)

GAPS_MAX = 100_000
BATCH = 500  # events per script call, and conversations per index read
TEXT_MAX = 200
REPLY_MAX = 1000
TRIM_EVERY_S = 3600.0
FULL_EVERY_S = 3600.0  # every conversation of the index; in between, only those created in RECENT_MS
RECENT_MS = 2 * DAY * 1000

FALLBACK_RULES = frozenset({"rule:unclear", "rule:no_kb_answer"})
NOT_HELPFUL_RULES = frozenset({"rule:button", "rule:yes_no", "rule:not_resolved"})

# KEYS: 1 cursors, 2 the gap log, 3.. the keys the ops name by index.
# ARGV: 1 conversation id, 2 the cursor this process read ("" for none), 3 the new cursor, 4 retention ms,
#       5 gap-log max length, 6 ops (json: [op, key index, field or member or entry, amount])
_APPLY = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
for _, op in ipairs(cjson.decode(ARGV[6])) do
  local key = KEYS[op[2]]
  if op[1] == 'gap' then
    redis.call('XADD', key, 'MAXLEN', '~', ARGV[5], '*', unpack(op[3]))
  else
    if op[1] == 'count' then redis.call('HINCRBY', key, op[3], op[4])
    elseif op[1] == 'time' then redis.call('RPUSH', key, op[3])
    elseif op[1] == 'fallback' then redis.call('ZINCRBY', key, op[4], op[3]) end
    redis.call('PEXPIRE', key, ARGV[4])
  end
end
return 1
"""


# KEYS: 1 the lease. ARGV: 1 this process's token. Deletes the lease only if it is still this process's.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
LEASE_MS = 300_000  # a pass that dies without releasing holds the others off for at most this long


def day_of(ts_ms: float, timezone: str) -> str:
    """The calendar day of ``ts_ms`` in the deployment's time zone, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(timezone)).date().isoformat()


def language_of(record: dict[str, str]) -> str:
    """The conversation's language group (zh covers Simplified and Traditional)."""
    if record.get("script"):
        return group_for(record["script"]).value
    return "en" if record.get("language") == "en" else "zh"


class Ops:
    """What one batch of events adds, as the script's ops; keys are passed by index."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.names: list[str] = [keys.analytics_cursors, keys.gaps]
        self.ops: list[list[Any]] = []

    def _index(self, key: str) -> int:
        if key not in self.names:
            self.names.append(key)
        return self.names.index(key) + 1

    def count(self, day: str, *field: str) -> None:
        self.ops.append(["count", self._index(self.keys.analytics_day(day)), "|".join(field), 1])

    def time(self, day: str, sample: dict[str, Any]) -> None:
        self.ops.append(["time", self._index(self.keys.analytics_times(day)), json.dumps(sample)])

    def fallback(self, day: str, channel: str, language: str, text: str) -> None:
        member = f"{channel}|{language}|{' '.join(text.split())[:80]}"
        self.ops.append(["fallback", self._index(self.keys.analytics_fallbacks(day)), member, 1])

    def gap(self, **fields: Any) -> None:
        entry = [str(x) for k, v in fields.items() if v not in (None, "") for x in (k, v)]
        self.ops.append(["gap", 2, entry])


def _rule(event: dict[str, Any]) -> str:
    return next((r for r in event.get("reasons") or () if str(r).startswith("rule:")), "")


def _seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def fold(
    state: dict[str, Any], events: list[dict[str, Any]], record: dict[str, str], ops: Ops, timezone: str
) -> dict[str, Any]:
    """``state`` after ``events`` (a conversation's, in order), adding what they count to ``ops``."""
    st = dict(state)
    st.setdefault("ch", record.get("channel") or "web")
    st.setdefault("lang", language_of(record))
    ch, lang, cid = st["ch"], st["lang"], record.get("conversation_id", "")
    for e in events:
        kind, role, ts = e.get("type"), e.get("role"), int(e.get("ts") or time.time() * 1000)
        day = day_of(ts, timezone)
        text = str(e.get("text") or "")
        common = {"cid": cid, "seq": e["seq"], "at": ts, "channel": ch, "language": lang}
        if kind == "message" and role == "user":
            if not st.get("day"):
                st["day"] = day
                ops.count(day, "conversations", ch, lang)
            typed = not text.startswith("/")
            if typed and e.get("intent"):
                ops.count(day, "intent", ch, lang, str(e["intent"]))
            decision, rule = e.get("decision"), _rule(e)
            if decision == "answer":
                if not st.get("answered"):
                    st["answered"] = True
                    ops.count(st["day"], "answered", ch, lang)
                st["asked"] = text[:TEXT_MAX]
            elif decision == "offer_human" and rule in NOT_HELPFUL_RULES and st.get("asked"):
                ops.count(day, "not_helpful", ch, lang)
                ops.gap(kind="not_helpful", text=st["asked"], feedback=text[:TEXT_MAX], **common)
            elif typed and (rule in FALLBACK_RULES or decision == "rephrase"):
                ops.count(day, "fallback", ch, lang)
                ops.fallback(day, ch, lang, text)
                ops.gap(kind="fallback", text=text[:TEXT_MAX], intent=e.get("intent"), **common)
            if typed:
                st["last"] = text[:TEXT_MAX]
        elif kind == "handoff":
            severity, reason = str(e.get("severity") or "normal"), str(e.get("reason") or "user_request")
            ops.count(day, "handoff", ch, lang, reason, severity)
            if not st.get("handed_off"):
                st["handed_off"] = True
                ops.count(st.get("day") or day, "handed_off", ch, lang)
                if st.get("answered"):
                    ops.count(st.get("day") or day, "answered_handed_off", ch, lang)
            sla = e.get("sla") or {}
            try:
                start = _seconds(sla["started_at"])
                first, resolution = _seconds(sla["first_response_due"]) - start, sla["resolution_seconds"]
            except (KeyError, TypeError, ValueError):
                start, first, resolution = ts / 1000, 0, 0
            st["ho"] = {
                "start": start,
                "day": day_of(start * 1000, timezone),
                "severity": severity,
                "first": first,
                "resolution": resolution,
                "question": st.get("last", ""),
                "replies": [],
                "kb": False,
            }
        elif kind == "message" and role == "agent" and st.get("ho"):
            ho = st["ho"]
            if not ho.get("responded"):
                ho["responded"] = True
                _time(ops, ho, "first_response", ts / 1000 - ho["start"], ho["first"], ch, lang)
            ho["kb"] = ho["kb"] or bool(e.get("article_id")) or "/kb/" in text
            if len(ho["replies"]) < 3:
                ho["replies"].append(mask_sensitive(text)[: REPLY_MAX // 3])
        elif kind in ("resolved", "handback", "handoff_cancelled") and st.get("ho"):
            ho = st.pop("ho")
            if kind == "resolved":
                _time(ops, ho, "resolution", ts / 1000 - ho["start"], ho["resolution"], ch, lang)
            if ho["replies"] and not ho["kb"]:
                reply = "\n".join(ho["replies"])
                ops.gap(kind="handoff", text=ho["question"], reply=reply, agent=e.get("agent"), **common)
        elif kind == "csat":
            ops.count(day, "csat", ch, lang, str(e.get("score")))
        elif kind == "article_suggestion":
            ops.gap(
                kind="article",
                text=e.get("question"),
                reply=mask_sensitive(text)[:REPLY_MAX],
                agent=e.get("agent"),
                reply_seq=e.get("reply_seq"),
                **common,
            )
    return st


def _time(ops: Ops, ho: dict[str, Any], kind: str, seconds: float, target: float, ch: str, lang: str) -> None:
    sample = {"k": kind, "ch": ch, "lang": lang, "sev": ho["severity"], "s": round(seconds, 1), "t": target}
    ops.time(ho["day"], sample)


class Touched(Protocol):
    """What the rollup needs of the event hub (bot/realtime/hub.py)."""

    def track_touched(self) -> None: ...

    def take_touched(self) -> set[str] | None: ...

    def retouch(self, cid: str) -> None: ...


class Rollup:
    """Rolls every conversation's new events up, every ``interval`` seconds, in each app process."""

    def __init__(
        self,
        store: ConversationStore,
        timezone: str,
        retention_days: int,
        interval: float = 15.0,
        touched: Touched | None = None,
    ) -> None:
        """``touched``: the process's event hub, which says which conversations were appended to since the
        last pass; without it every pass scans the conversations of the last days."""
        self.store = store
        self.redis: Any = store.redis
        self.keys: Keys = store.keys
        self.timezone = timezone
        self.retention_ms = retention_days * DAY * 1000
        self.interval = interval
        self._apply = store.redis.register_script(_APPLY)
        self._release = store.redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._trimmed = 0.0
        self.touched = touched
        if touched is not None:
            touched.track_touched()

    async def run_once(self, created_since_ms: int | None = None) -> int:
        """Roll up what is new in the conversations of the index (those created since ``created_since_ms``;
        all by default); returns how many events were counted."""
        rolled, start = 0, 0
        low = "-inf" if created_since_ms is None else created_since_ms
        while ids := await self.redis.zrangebyscore(
            self.keys.conversations, low, "+inf", start=start, num=BATCH
        ):
            start += len(ids)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self.keys.analytics_cursors, ids)
                for cid in ids:
                    pipe.hget(self.keys.conversation(cid), "seq")
                cursors, *seqs = await pipe.execute()
            for cid, cursor, seq in zip(ids, cursors, seqs, strict=True):
                if seq and int(seq) > (json.loads(cursor)["seq"] if cursor else 0):
                    rolled += await self.roll(cid)
        if time.monotonic() - self._trimmed > TRIM_EVERY_S:
            await self.trim()
        return rolled

    async def run_touched(self, cids: set[str]) -> int:
        """Roll up the conversations appended to since the last pass (one at a time, as :meth:`run_once`
        does for the ones whose seq moved); when one fails, it and those not reached are kept for the next
        pass."""
        rolled, order = 0, sorted(cids)
        for done, cid in enumerate(order):
            try:
                rolled += await self.roll(cid)
            except Exception:
                if self.touched is not None:  # this one and the rest: the next pass
                    for left in order[done:]:
                        self.touched.retouch(left)
                raise
        if time.monotonic() - self._trimmed > TRIM_EVERY_S:
            await self.trim()
        return rolled

    async def roll(self, cid: str) -> int:
        """Roll up one conversation's events past its cursor; 0 when another process got there first."""
        rolled = 0
        while True:
            raw = await self.redis.hget(self.keys.analytics_cursors, cid) or ""
            state: dict[str, Any] = json.loads(raw) if raw else {"seq": 0}
            events = await self.store.events_after(cid, int(state["seq"]), BATCH)
            if not events:
                return rolled
            record = await self.redis.hgetall(self.keys.conversation(cid))
            ops = Ops(self.keys)
            new = fold(state, events, {"conversation_id": cid, **record}, ops, self.timezone)
            new["seq"] = events[-1]["seq"]
            applied = await self._apply(
                keys=ops.names,
                args=[
                    cid,
                    raw,
                    json.dumps(new, ensure_ascii=False, sort_keys=True),
                    self.retention_ms,
                    GAPS_MAX,
                    json.dumps(ops.ops, ensure_ascii=False),
                ],
            )
            if not applied:
                return rolled
            rolled += len(events)
            if len(events) < BATCH:
                return rolled

    async def trim(self) -> None:
        """Drop the cursors of conversations whose transcript expired (the cursor hash stays bounded)."""
        self._trimmed = time.monotonic()
        cursor = 0
        while True:
            cursor, batch = await self.redis.hscan(self.keys.analytics_cursors, cursor, count=BATCH)
            cids = list(batch)
            if cids:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for cid in cids:
                        pipe.exists(self.keys.conversation(cid))
                    alive = await pipe.execute()
                gone = [cid for cid, live in zip(cids, alive, strict=True) if not live]
                if gone:
                    await self.redis.hdel(self.keys.analytics_cursors, *gone)
            if not cursor:
                return

    async def run(self) -> None:
        """Roll up forever: the conversations appended to since the last pass (as the event hub heard it; or,
        when the hub may have missed some, those of the last days), all of them every hour (an agent may
        answer a ticket long after it was opened). Scanning the last days' conversations every pass — an
        HGET each — was a sixth of an idle process's CPU with 5,000 sockets open.

        One process at a time rolls up (a lease): two would do the same reads and folds and all but one of
        their writes would be refused — under a burst of new conversations that doubled work took the time
        the processes needed to answer them. A failed pass is logged and the next one tries again."""
        last_full = -FULL_EVERY_S
        token = secrets.token_hex(8)
        while True:
            try:
                if await self.redis.set(self.keys.analytics_lease, token, nx=True, px=LEASE_MS):
                    try:
                        touched = self.touched.take_touched() if self.touched is not None else None
                        if time.monotonic() - last_full >= FULL_EVERY_S:
                            await self.run_once()
                            last_full = time.monotonic()
                        elif touched is not None:
                            await self.run_touched(touched)
                        else:
                            await self.run_once(int(time.time() * 1000) - RECENT_MS)
                    finally:
                        await self._release(keys=[self.keys.analytics_lease], args=[token])
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("analytics rollup pass failed; retrying in %.0f s", self.interval)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="analytics-rollup")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
