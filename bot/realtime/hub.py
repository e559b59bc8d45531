"""One event reader per process: every websocket, long-poll and agent console of this process hears Redis
through one :class:`EventHub` instead of a connection of its own.

The hub holds ONE pub/sub connection, subscribed to the events channel (the append script publishes
``{"c": cid, "s": seq}`` after each XADD), the typing channel, the desk channel and every agent's channel.
Local subscribers *follow* a conversation from a sequence number; on a notification for a conversation with
local followers the hub reads the transcript once (one pooled XRANGE from the lowest local seq) and hands
each follower the events after its own last delivered seq — in order, never twice, never with a gap. Agent
consoles also *listen to the desk*: desk-wide events and their own agent channel.

What arrives for a connection goes into its :class:`Inbox` (never blocking the hub); the connection's own
task drains it to the socket, so a slow client delays nobody else.

When the subscription drops (a Redis restart, a failover) the hub logs it, reconnects with exponential
backoff, re-reads every followed conversation that moved meanwhile, and tells every desk listener
:class:`Resynced` (consoles re-assert presence and re-send the queue). A sweep — one pipelined HGET of the
stored ``seq`` of a quarter of the followed conversations each heartbeat interval, so each within four —
catches up whatever a lost notification left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from bot.realtime import failures
from bot.store.client import RedisClient
from bot.store.connection import forget_slots, pubsub_of
from bot.store.conversations import ConversationStore
from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

PAGE = 500  # events per XRANGE
REDIS_DOWN = (*failures.REDIS_DOWN, OSError)  # away or failing over: resume once it is back
FIRST_SUBSCRIPTION_WAIT_S = 5.0
RESYNC_WAIT_S = 5.0
SUBSCRIBE_AGAIN_S = 1.0
SWEEP_PARTS = 4
TOUCHED_MAX = 100_000  # for the followed conversations' catch-up before consoles are told


# ----------------------------------------------------------------------- what a connection receives
@dataclass(frozen=True)
class Events:
    """New events of one conversation for one follower, in seq order, each after the previous delivery."""

    follow: Follow
    events: tuple[dict[str, Any], ...]

    @property
    def cid(self) -> str:
        return self.follow.cid


@dataclass(frozen=True)
class Typing:
    """Someone is typing in a followed conversation (ephemeral: not stored, no seq)."""

    cid: str
    role: str


@dataclass(frozen=True)
class DeskEvent:
    """A desk-wide event (queue changed, presence, alert) or one on the listener's own agent channel."""

    event: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    """Reading a followed conversation failed for a reason other than Redis being unreachable."""

    cid: str
    error: BaseException


@dataclass(frozen=True)
class Resynced:
    """The hub's subscription came back after a drop: re-assert what Redis may have lost."""


Notice = Events | Typing | DeskEvent | Failed | Resynced


class Inbox:
    """What the hub hands one connection, in order; the connection's own task drains it."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Notice] = asyncio.Queue()

    def put(self, notice: Notice) -> None:
        self._queue.put_nowait(notice)

    async def get(self, timeout: float | None = None) -> Notice | None:
        """The next notice; None when ``timeout`` seconds pass first."""
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._queue.get_nowait()
        if timeout is not None and timeout <= 0:
            return None
        try:
            async with asyncio.timeout(timeout):  # no task per wait, as wait_for makes on 3.11
                return await self._queue.get()
        except TimeoutError:
            return None


@dataclass(eq=False)
class Follow:
    """One local follower of one conversation; ``delivered`` is the last seq handed to its inbox."""

    cid: str
    inbox: Inbox
    delivered: int

    def offer(self, events: list[dict[str, Any]]) -> None:
        fresh = tuple(e for e in events if e["seq"] > self.delivered)
        if fresh:
            self.delivered = fresh[-1]["seq"]
            self.inbox.put(Events(self, fresh))


@dataclass(eq=False)
class _Topic:
    """The local followers of one conversation and its single reader task."""

    follows: set[Follow] = field(default_factory=set)
    dirty: bool = False
    reader: asyncio.Task[None] | None = None

    def behind(self, seq: int) -> bool:
        return any(f.delivered < seq for f in self.follows)


# --------------------------------------------------------------------------------------- the hub
class EventHub:
    def __init__(
        self, store: ConversationStore, subscriber: RedisClient | None = None, sweep_s: float = 15.0
    ) -> None:
        """``subscriber``: a client whose connections do not retry inside redis-py (see
        ``bot.store.connection``), so that every drop reaches the hub and is followed by a re-sync."""
        self.store, self.keys, self.sweep_s = store, store.keys, sweep_s
        self._subscriber: Any = subscriber or store.redis
        self._topics: dict[str, _Topic] = {}
        self._desk: dict[Inbox, str] = {}  # inbox -> agent id
        self._agent_prefix = self.keys.agent_channel("")
        # Reconnect forever: 50 ms, 100 ms, … capped at 1 s between attempts.
        self._retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), -1, REDIS_DOWN)  # type: ignore[arg-type]
        self._subscribed = asyncio.Event()
        self._touched: set[str] | None = None  # conversations notified since take_touched(), when tracked
        self._touched_since = 0  # self.reconnects when the set was last taken
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0  # subscriptions re-established after a drop (for tests and metrics)
        self.drops = 0  # subscriptions lost (counted at once, before the reconnect)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="event-hub"),
            asyncio.create_task(self._sweep_forever(), name="event-hub-sweep"),
        ]
        for task in self._tasks:
            task.add_done_callback(_log_death)
        # Usually immediate; with Redis down the app still starts and the hub keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), FIRST_SUBSCRIPTION_WAIT_S)

    async def stop(self) -> None:
        readers = [t.reader for t in self._topics.values() if t.reader]
        tasks = [*self._tasks, *readers]
        await cancel_and_wait(tasks)
        self._tasks = []

    # --------------------------------------------------------------- subscribers
    def follow(self, cid: str, after: int, inbox: Inbox) -> Follow:
        """Deliver every event of ``cid`` after seq ``after`` to ``inbox``, then each new one."""
        follow = Follow(cid, inbox, after)
        self._topics.setdefault(cid, _Topic()).follows.add(follow)
        self._kick(cid)
        return follow

    def unfollow(self, follow: Follow) -> None:
        topic = self._topics.get(follow.cid)
        if topic is None:
            return
        topic.follows.discard(follow)
        if not topic.follows:
            del self._topics[follow.cid]

    def listen_desk(self, agent_id: str, inbox: Inbox) -> None:
        """Desk-wide events, this agent's own channel, and :class:`Resynced` after a reconnect."""
        self._desk[inbox] = agent_id

    def unlisten_desk(self, inbox: Inbox) -> None:
        self._desk.pop(inbox, None)

    async def wait(self, cid: str, after: int, timeout: float) -> list[dict[str, Any]]:
        """Events after ``after``: at once when there are some, else the first to arrive within ``timeout``
        seconds (the long-poll), with no Redis connection held while waiting."""
        inbox = Inbox()
        follow = self.follow(cid, after, inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while (notice := await inbox.get(deadline - loop.time())) is not None:
                if isinstance(notice, Events):
                    return list(notice.events)
                if isinstance(notice, Failed):
                    raise notice.error
            return []
        finally:
            self.unfollow(follow)

    def track_touched(self) -> None:
        """Remember every conversation an append is notified for, whoever appended it (every process hears
        every notification): the analytics rollup reads those instead of scanning every conversation."""
        if self._touched is None:
            self._touched = set()
            self._touched_since = self.drops

    def take_touched(self) -> set[str] | None:
        """The conversations notified since the last call; None when notifications may have been missed
        meanwhile (the subscription dropped, or more than TOUCHED_MAX piled up) — scan instead."""
        if self._touched is None:
            return None
        touched, self._touched = self._touched, set()
        missed = (
            self.drops != self._touched_since or len(touched) > TOUCHED_MAX or not self._subscribed.is_set()
        )
        self._touched_since = self.drops
        return None if missed else touched

    def retouch(self, cid: str) -> None:
        """Put ``cid`` back for the next take (its rollup failed)."""
        if self._touched is not None:
            self._touched.add(cid)

    @property
    def followed(self) -> int:
        return len(self._topics)

    # ------------------------------------------------------------ reading transcripts
    def _kick(self, cid: str) -> None:
        """Make ``cid``'s reader catch its followers up; one reader per conversation at a time."""
        topic = self._topics.get(cid)
        if topic is None:
            return
        topic.dirty = True
        if topic.reader is None or topic.reader.done():
            topic.reader = asyncio.create_task(self._read(cid, topic), name=f"event-hub:{cid}")

    async def _read(self, cid: str, topic: _Topic) -> None:
        while topic.dirty and topic.follows:
            topic.dirty = False
            try:
                await self._catch_up(cid, topic)
            except REDIS_DOWN as exc:
                # The followers keep their place: the re-sync after the reconnect or the next sweep resumes.
                logger.info("reading conversation %s failed (%r); resuming after Redis is back", cid, exc)
                return
            except Exception as exc:
                for follow in topic.follows:
                    follow.inbox.put(Failed(cid, exc))
                return

    async def _catch_up(self, cid: str, topic: _Topic) -> None:
        while topic.follows:
            follows = list(topic.follows)
            events = await self.store.events_after(cid, min(f.delivered for f in follows), PAGE)
            for follow in follows:
                follow.offer(events)
            if len(events) < PAGE:
                return

    async def sweep(self) -> int:
        """Compare every followed conversation's stored seq with what was delivered (one pipelined HGET)
        and catch up those behind; returns how many were behind."""
        return len(await self._sweep())

    async def _sweep(self, part: int | None = None) -> list[str]:
        """The sweep over every followed conversation, or over ``part`` of SWEEP_PARTS of them."""
        cids = list(self._topics)
        if part is not None:
            cids = [cid for cid in cids if hash(cid) % SWEEP_PARTS == part]
        if not cids:
            return []
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for cid in cids:
                pipe.hget(self.store.key(cid), "seq")
            stored = await pipe.execute()
        behind = [
            cid
            for cid, seq in zip(cids, stored, strict=True)
            if seq is not None and cid in self._topics and self._topics[cid].behind(int(seq))
        ]
        for cid in behind:
            self._kick(cid)
        return behind

    async def _sweep_forever(self) -> None:
        """A backstop, not the delivery path: a quarter of the followed conversations each interval, so each
        is checked every SWEEP_PARTS intervals. Sweeping them all every interval was most of an idle
        process's CPU with 5,000 sockets open (docs/benchmarks.md)."""
        part = 0
        while True:
            await asyncio.sleep(self.sweep_s)
            part = (part + 1) % SWEEP_PARTS
            try:
                if behind := len(await self._sweep(part)):
                    logger.info("event hub sweep: %d conversation(s) were behind; caught up", behind)
            except REDIS_DOWN as exc:
                logger.debug("event hub sweep skipped: %r", exc)
            except Exception:
                logger.exception("event hub sweep failed")

    # -------------------------------------------------------------------- pub/sub
    async def _run(self) -> None:
        while True:
            try:
                pubsub = await self._retry.call_with_retry(self._subscribe, self._subscribe_failed)
            except Exception:
                # Not Redis being away (retried above) but something unforeseen: this task is every socket's
                # delivery, so it logs, waits and subscribes again rather than die.
                logger.exception("event hub: subscribing failed; trying again in %.0f s", SUBSCRIBE_AGAIN_S)
                await asyncio.sleep(SUBSCRIBE_AGAIN_S)
                continue
            if self._subscribed.is_set():
                self.reconnects += 1
                await self._resync()
            self._subscribed.set()
            try:
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    try:
                        self._dispatch(message)
                    except Exception:
                        logger.exception("event hub: could not dispatch %r", message)
            except REDIS_DOWN as exc:
                self.drops += 1
                await forget_slots(self._subscriber)
                logger.warning(
                    "event hub lost its Redis subscription (%r); reconnecting, then re-syncing %d "
                    "conversation(s) and %d console(s)",
                    exc,
                    len(self._topics),
                    len(self._desk),
                )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _subscribe(self) -> Any:
        pubsub = await pubsub_of(self._subscriber)
        try:
            await pubsub.subscribe(self.keys.events_channel, self.keys.typing_channel, self.keys.desk_channel)
            await pubsub.psubscribe(self.keys.agent_channel("*"))
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        return pubsub

    async def _subscribe_failed(self, error: Exception, failures: int = 0) -> None:
        logger.debug("event hub: subscribing failed (%r); retrying", error)
        await forget_slots(self._subscriber)

    async def _resync(self) -> None:
        """Catch up the followed conversations first (their events reach the sockets before anything
        else), then tell the consoles."""
        try:
            behind = await self._sweep()
        except REDIS_DOWN as exc:
            behind = []
            logger.info("event hub re-sync deferred to the next sweep: %r", exc)
        readers = [t.reader for cid in behind if (t := self._topics.get(cid)) and t.reader]
        if readers:
            await asyncio.wait(readers, timeout=RESYNC_WAIT_S)
        logger.warning(
            "event hub resubscribed; %d of %d followed conversation(s) caught up, %d console(s) told",
            len(behind),
            len(self._topics),
            len(self._desk),
        )
        for inbox in list(self._desk):
            inbox.put(Resynced())

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            data = None
        if not isinstance(data, dict):
            logger.warning("event hub: ignoring a malformed message on %s: %r", channel, message["data"])
            return
        if channel == self.keys.events_channel:
            if self._touched is not None and len(self._touched) <= TOUCHED_MAX:
                self._touched.add(str(data.get("c")))
            topic = self._topics.get(str(data.get("c")))
            if topic is not None and topic.behind(int(data.get("s", 0))):
                self._kick(str(data["c"]))
        elif channel == self.keys.typing_channel:
            topic = self._topics.get(str(data.get("c")))
            for follow in topic.follows if topic else ():
                follow.inbox.put(Typing(follow.cid, str(data.get("role", ""))))
        elif channel == self.keys.desk_channel:
            for inbox in list(self._desk):
                inbox.put(DeskEvent(data))
        elif channel.startswith(self._agent_prefix):
            agent_id = channel.removeprefix(self._agent_prefix)
            for inbox, owner in list(self._desk.items()):
                if owner == agent_id:
                    inbox.put(DeskEvent(data))


def _log_death(task: asyncio.Task[None]) -> None:
    """The hub's own tasks run for the process's life: one that ends other than by cancellation is a bug."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("event hub task %s died", task.get_name(), exc_info=task.exception())
