"""The push outbox: delivers push conversations' transcript events through their channel, each event once
across any number of app processes, in sequence order, surviving a process that dies mid-delivery.

Built on the transcript itself (``{seq}-0`` stream entries), not beside it:

* ``follow`` registers a conversation (``Keys.push_conversations``, scored by last activity) and creates the
  ``outbox`` consumer group on its events stream at the current sequence, so only later events are pushed.
* Each process has one consumer name and one pub/sub connection on ``Keys.events_channel``; a notification
  for a followed conversation starts a *drain* of it. A sweep every few seconds does the same for followed
  conversations with unread or pending entries (a missed notification, a dead process's entries).
* A drain runs under the per-conversation lease (``SET Keys.outbox_lease(cid) <consumer> NX PX``, renewed
  while it runs): it claims entries pending longer than the lease from consumers that died (XAUTOCLAIM),
  reads its own pending entries then new ones (XREADGROUP), delivers them in order, and XACKs each. A
  process stopped mid-drain hands over at once: its unacknowledged entries are marked idle for a whole lease
  and its lease is released, so only a killed process's conversations wait out the lease.
* Delivery is retried with exponential backoff (redis-py's ``Retry``); after the last attempt the failure is
  recorded in the transcript as an internal ``delivery_failed`` event (agents see it, the user never does)
  and the entry is acknowledged. User messages and internal events are never delivered, so the outbox
  never feeds on itself.

Guarantee: at least once on the wire, exactly once per idempotency key (``<cid>:<seq>``): a process killed
after the platform received a POST but before XACK gets its entry redelivered by another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError, ResponseError

from bot.channels.base import Channel, DeliveryError
from bot.channels.outbound import render
from bot.settings import Settings
from bot.store.connection import pubsub_of
from bot.store.conversations import ConversationStore, now_ms, stored_response
from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

GROUP = "outbox"
BATCH = 100
SWEEP_WINDOW_MS = 86_400_000  # the periodic sweep looks at conversations active in the last day
NOT_PUSH_TTL_S = 60.0  # how long "this conversation is not followed" is remembered per process
NOT_PUSH_MAX = 10_000
MAX_DRAINS = 64  # conversations drained at once per process
HAND_OVER_MAX = 10 * BATCH  # a consumer holds at most about two batches of one conversation pending
BLOCKED: list[tuple[str, dict[str, str] | None]] = [("blocked", None)]  # a sentinel batch

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    """Another process took the conversation's lease over: stop without acknowledging more."""


class Outbox:
    def __init__(self, store: ConversationStore, channels: Mapping[str, Channel], settings: Settings) -> None:
        self.store = store
        self.redis: Any = store.redis
        self.keys = store.keys
        self.channels = channels
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease_ms = int(settings.outbox_lease_seconds * 1000)
        self.retention_ms = store.retention_ms
        self.sweep_seconds = max(0.2, min(5.0, settings.outbox_lease_seconds / 3))
        backoff = ExponentialWithJitterBackoff(cap=60.0, base=settings.outbox_backoff_seconds)
        # redis-py's Retry is typed for Redis errors; it retries whatever ``supported_errors`` names.
        self.retry = Retry(backoff, settings.outbox_max_attempts - 1, (DeliveryError,))  # type: ignore[arg-type]
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._tasks: list[asyncio.Task[None]] = []
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._unfinished: set[str] = set()  # drains interrupted here: leases and entries to hand over
        self._followed: set[str] = set()
        self._not_push: OrderedDict[str, float] = OrderedDict()
        self._slots = asyncio.Semaphore(MAX_DRAINS)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._sweep_loop())]

    async def stop(self) -> None:
        """Stop listening and drains, and hand what an interrupted drain held over to the next process."""
        await cancel_and_wait([*self._tasks, *self._drains.values()])
        self._tasks, self._drains = [], {}
        await self._hand_over()
        for adapter in self.channels.values():
            await adapter.aclose()

    # ---------------------------------------------------------------- following
    async def follow(self, conversation_id: str, after_seq: int) -> None:
        """Push this conversation's events after ``after_seq`` (call before the first event to push)."""
        await self.redis.zadd(self.keys.push_conversations, {conversation_id: now_ms()})
        try:
            await self.redis.xgroup_create(
                self.keys.events(conversation_id),
                GROUP,
                id=f"{after_seq}-0",
                mkstream=True,
                entries_read=after_seq,
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._followed.add(conversation_id)
        self._not_push.pop(conversation_id, None)

    async def _is_followed(self, cid: str) -> bool:
        if cid in self._followed:
            return True
        seen = self._not_push.get(cid)
        if seen is not None and time.monotonic() - seen < NOT_PUSH_TTL_S:
            return False
        if await self.redis.zscore(self.keys.push_conversations, cid) is not None:
            self._followed.add(cid)
            return True
        self._not_push[cid] = time.monotonic()
        self._not_push.move_to_end(cid)
        while len(self._not_push) > NOT_PUSH_MAX:
            self._not_push.popitem(last=False)
        return False

    def kick(self, cid: str) -> None:
        """Drain ``cid`` now, or once more after the drain already running here."""
        if cid in self._drains:
            self._again.add(cid)
            return
        task = asyncio.create_task(self._drain_loop(cid))
        self._drains[cid] = task
        task.add_done_callback(lambda _: self._drains.pop(cid, None))

    # --------------------------------------------------------------- wake-ups
    async def _listen(self) -> None:
        """One pub/sub connection per process: the append script's ``{"c": cid, "s": seq}`` notifications."""
        failures = 0
        backoff = ExponentialWithJitterBackoff(cap=5.0, base=0.1)
        while True:
            pubsub: Any = None
            try:
                pubsub = await pubsub_of(self.redis)
                await pubsub.subscribe(self.keys.events_channel)
                failures = 0
                while True:
                    # A bounded wait, not listen(): the pool's socket timeout would end a silent listen().
                    note = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if note is None or note.get("type") != "message":
                        continue
                    cid = json.loads(note["data"]).get("c")
                    if cid and await self._is_followed(cid):
                        self.kick(cid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away, or anything unforeseen: this task must not end
                failures += 1
                logger.warning("outbox: events subscription lost (%r); the sweep covers the gap", exc)
                await asyncio.sleep(backoff.compute(failures))
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    async def _sweep_loop(self) -> None:
        """The first sweep looks at every followed conversation (a restart after an outage), later ones at
        those active in the last day."""
        window: int | None = None
        while True:
            try:
                await self.sweep(window)
                window = SWEEP_WINDOW_MS
            except (RedisError, OSError) as exc:
                logger.warning("outbox: sweep failed: %r", exc)
            await asyncio.sleep(self.sweep_seconds)

    async def sweep(self, window_ms: int | None = SWEEP_WINDOW_MS) -> None:
        """Trim the followed set to the retention window; drain followed conversations with work left."""
        now = now_ms()
        key = self.keys.push_conversations
        await self.redis.zremrangebyscore(key, "-inf", now - self.retention_ms)
        low = "-inf" if window_ms is None else now - window_ms
        cids: list[str] = await self.redis.zrangebyscore(key, low, "+inf")
        for start in range(0, len(cids), 200):
            chunk = [cid for cid in cids[start : start + 200] if cid not in self._drains]
            for cid, busy in zip(chunk, await self._have_work(chunk), strict=True):
                if busy:
                    self.kick(cid)

    async def _have_work(self, cids: list[str]) -> list[bool]:
        """Per conversation: entries pending in the group, or appended after the last one it read."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.xinfo_groups(self.keys.events(cid))
                pipe.hget(self.keys.conversation(cid), "seq")
            replies = await pipe.execute(raise_on_error=False)
        result = []
        for groups, seq in zip(replies[::2], replies[1::2], strict=True):
            group = (
                next((g for g in groups if g.get("name") == GROUP), None)
                if isinstance(groups, list)
                else None
            )
            if group is None or isinstance(seq, Exception):
                result.append(False)
                continue
            read = int(str(group["last-delivered-id"]).split("-")[0])
            result.append(int(group["pending"]) > 0 or read < int(seq or 0))
        return result

    # ------------------------------------------------------------------ drains
    async def _drain_loop(self, cid: str) -> None:
        async with self._slots:
            while True:
                self._again.discard(cid)
                try:
                    await self.drain(cid)
                except (RedisError, OSError) as exc:
                    logger.warning("outbox: drain of %s interrupted: %r", cid, exc)
                    return
                except Exception:
                    logger.exception("outbox: drain of %s failed", cid)
                    return
                if cid not in self._again:
                    return

    async def drain(self, cid: str) -> None:
        """Deliver ``cid``'s undelivered events under its lease; without the lease, leave it to its holder
        (who checks for new entries after letting go)."""
        lease = self.keys.outbox_lease(cid)
        if not await self.redis.set(lease, self.consumer, nx=True, px=self.lease_ms):
            return
        self._unfinished.add(cid)  # until every entry read here is acknowledged
        lost = asyncio.Event()
        renewing = asyncio.create_task(self._keep(lease, lost))
        try:
            conversation = await self.store.get(cid)
            if conversation is None:  # expired with its transcript
                await self.redis.zrem(self.keys.push_conversations, cid)
                self._unfinished.discard(cid)
                return
            await self.redis.zadd(self.keys.push_conversations, {cid: now_ms()})
            adapter = self.channels.get(conversation.get("channel", ""))
            merges = adapter is not None and hasattr(adapter, "deliver_many")
            while entries := await self._next_batch(cid):
                if entries is BLOCKED:
                    return  # the sweep comes back once those entries can be claimed
                if merges and adapter is not None and adapter.push:
                    # One burst, as few platform messages as fit: a per-user rate limit counts messages.
                    events = [
                        {"seq": int(entry_id.split("-")[0]), **json.loads(fields["e"])}
                        for entry_id, fields in entries
                        if fields
                    ]
                    await self._deliver(adapter, conversation, events, lost)
                    await self.redis.xack(
                        self.keys.events(cid), GROUP, *(entry_id for entry_id, _ in entries)
                    )
                    continue
                for entry_id, fields in entries:
                    if lost.is_set():
                        raise LeaseLost(cid)
                    if fields and adapter is not None and adapter.push:
                        event = {"seq": int(entry_id.split("-")[0]), **json.loads(fields["e"])}
                        await self._deliver(adapter, conversation, [event], lost)
                    await self.redis.xack(self.keys.events(cid), GROUP, entry_id)
            self._unfinished.discard(cid)
        except LeaseLost:
            logger.warning("outbox: lost the lease of %s; its holder carries on", cid)
            return
        finally:
            await cancel_and_wait([renewing], timeout=1.0)
            await self._release(keys=[lease], args=[self.consumer])
        # An event appended while we held the lease was not drained by whoever was woken for it.
        if (await self._have_work([cid]))[0]:
            self._again.add(cid)

    async def _hand_over(self) -> None:
        """At shutdown, for each drain that did not finish: its read but unacknowledged entries stay pending to
        this consumer, which no longer runs, so mark them idle for a whole lease (XCLAIM … IDLE) and the next
        drain claims them at once; and let go of the lease if shutdown's cancellation cut the release off.
        Without this the next process waits out the lease before delivering anything of that conversation."""
        for cid in sorted(self._unfinished):
            key = self.keys.events(cid)
            try:
                pending = await self.redis.xpending_range(
                    key, GROUP, min="-", max="+", count=HAND_OVER_MAX, consumername=self.consumer
                )
                ids = [entry["message_id"] for entry in pending]
                if ids:
                    await self.redis.xclaim(
                        key, GROUP, self.consumer, 0, ids, idle=self.lease_ms, justid=True
                    )
                await self._release(keys=[self.keys.outbox_lease(cid)], args=[self.consumer])
            except (RedisError, OSError) as exc:  # the lease and the entries' idle time run out by themselves
                logger.warning("outbox: handing %s over failed: %r", cid, exc)
        self._unfinished.clear()

    async def _keep(self, lease: str, lost: asyncio.Event) -> None:
        """Renew the lease while the drain runs; a failed renewal is tried again at the next tick."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                renewed = await self._renew(keys=[lease], args=[self.consumer, self.lease_ms])
            except (RedisError, OSError) as exc:
                logger.warning("outbox: renewing %s failed: %r", lease, exc)
                continue
            if not renewed:
                lost.set()
                return

    async def _next_batch(self, cid: str) -> list[tuple[str, dict[str, str] | None]]:
        """Orphaned entries first (claimed from consumers whose lease is gone), then this consumer's pending
        ones, then new ones — in sequence order. ``BLOCKED`` while another consumer's entries are too fresh
        to claim: delivering later ones first would break the order."""
        key = self.keys.events(cid)
        await self.redis.xautoclaim(
            key, GROUP, self.consumer, min_idle_time=self.lease_ms, start_id="0-0", count=BATCH, justid=True
        )
        summary = await self.redis.xpending(key, GROUP)
        mine = sum(int(c["pending"]) for c in summary.get("consumers") or () if c["name"] == self.consumer)
        if int(summary.get("pending") or 0) > mine:
            return BLOCKED
        reply = await self.redis.xreadgroup(GROUP, self.consumer, {key: "0" if mine else ">"}, count=BATCH)
        return list(reply[0][1]) if reply else []

    # --------------------------------------------------------------- delivery
    async def _deliver(
        self,
        adapter: Channel,
        conversation: Mapping[str, str],
        events: list[dict[str, Any]],
        lost: asyncio.Event,
    ) -> None:
        script = conversation.get("script", "")
        events = [e for e in events if render(e, script) is not None]
        if adapter.inline:
            events = [e for e in events if not await self._answered_inline(adapter, conversation, e)]
        if not events:
            return

        async def attempt() -> None:
            if lost.is_set():
                raise LeaseLost(conversation["conversation_id"])
            if len(events) == 1 and not hasattr(adapter, "deliver_many"):
                await adapter.deliver(conversation, events[0])
            else:
                await adapter.deliver_many(conversation, events)  # type: ignore[attr-defined]

        seqs = ", ".join(str(e["seq"]) for e in events)

        async def failed(exc: Exception) -> None:
            logger.warning("outbox: delivery of %s:%s failed: %s", adapter.name, seqs, exc)

        try:
            await self.retry.call_with_retry(
                attempt, failed, is_retryable=lambda exc: bool(getattr(exc, "retryable", False))
            )
        except LeaseLost:
            raise
        except Exception as exc:
            logger.error("outbox: giving up on events %s of %s: %s", seqs, adapter.name, exc)
            for event in events:
                await self.store.append(
                    conversation["conversation_id"],
                    {
                        "type": "delivery_failed",
                        "role": "system",
                        "visibility": "internal",
                        "failed_seq": event["seq"],
                        "channel": adapter.name,
                        "error": str(exc)[:500],
                    },
                )

    async def _answered_inline(
        self, adapter: Channel, conversation: Mapping[str, str], event: Mapping[str, Any]
    ) -> bool:
        """Whether ``event`` was already in the HTTP response to the user's message before it: the bot's
        and system's replies to a message are in the engine's stored response (its idempotency record).
        While that request is still being processed, wait for it; a request that failed or never finished
        returned nothing, so its replies are pushed."""
        if event.get("type") != "message" or event.get("role") not in ("bot", "system"):
            return False
        cid, seq = conversation["conversation_id"], int(event["seq"])
        before = await self.redis.xrevrange(self.keys.events(cid), max=f"{seq - 1}-0", min="-", count=50)
        asked = next(
            (
                e
                for e in (json.loads(fields["e"]) for _, fields in before if fields)
                if e.get("type") == "message" and e.get("role") == "user"
            ),
            None,
        )
        if not asked or asked.get("channel") != adapter.name or not asked.get("client_msg_id"):
            return False
        record_key = self.keys.idempotency(cid, str(asked["client_msg_id"]))
        give_up = int(asked.get("ts") or 0) + self.lease_ms
        while True:
            stored = await self.redis.get(record_key)
            if stored is None:
                return False
            if stored:
                answered = stored_response(stored).get("replies") or ()
                return seq in {r.get("seq") for r in answered if isinstance(r, dict)}
            if now_ms() > give_up:
                return False
            await asyncio.sleep(0.05)
