"""The inbox: chat-platform messages between the callback's answer and the engine's.

WeCom retries a callback not answered within 5 s, and DingTalk likewise expects a quick answer, so a
callback is answered as soon as its message is stored here, and handled after:

* :meth:`Inbox.submit` takes a message once: one script sets ``Keys.seen`` (the platform's message id, kept
  two days) and appends the message to the ``Keys.inbox`` stream. A retried callback or a replayed message
  finds its id seen and is answered without being stored again.
* Every app process reads the stream through one consumer group (``XREADGROUP``), handles each message
  and acknowledges and deletes it afterwards. Within a process one conversation's messages are handled in
  arrival order, a transient failure retried in place so the later ones wait. Across processes a
  per-conversation lease (``Keys.inbox_lease``) lets one process at a time handle a conversation: a message
  taken by a second process while the first handles the one before waits for it. (Two messages taken by two
  processes in the same instant can still race for the lease; the handling of each is idempotent by its
  message id, see ``bot/app/platforms.py``.)
* A process that dies between taking a message and handling it leaves the entry pending; any process claims
  entries idle longer than the lease (``XAUTOCLAIM``) and handles them. Entries a live process holds are
  kept fresh (``XCLAIM … JUSTID``), so they are not claimed while it works. An entry claimed
  ``MAX_DELIVERIES`` times, or whose handling fails for a reason a retry cannot fix, is given up and
  recorded in the transcript for the agent (``give_up``): never dropped silently.
* The stream is never trimmed: past ``MAX_BACKLOG`` unhandled messages a callback is answered 503 and the
  platform retries it later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any

from redis.exceptions import RedisError, ResponseError

from bot.errors import Unavailable
from bot.message import Message
from bot.store.keys import DAY, Keys
from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

GROUP = "inbox"
SEEN_TTL_S = 2 * DAY
MAX_BACKLOG = 100_000  # unhandled messages; past it callbacks get 503 (the platform retries) — never trimmed
BATCH = 32
ATTEMPTS = 4  # transient failures retried in place (the conversation's next messages wait) ...
MAX_DELIVERIES = 8  # ... and an entry claimed this many times is given up: recorded for the agent

_SUBMIT = """
if redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[2]) then return -1 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[3])
return 1
"""

_RENEW = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) end
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Handler = Callable[[Message], Awaitable[None]]
GiveUp = Callable[[Message, str], Awaitable[None]]


class InboxFull(Unavailable):
    def __init__(self, backlog: int) -> None:
        super().__init__(f"{backlog:,} platform messages are waiting to be handled; the platform will retry")


def encode(message: Message) -> str:
    return json.dumps(asdict(message), ensure_ascii=False, separators=(",", ":"))


def decode(raw: str) -> Message:
    return Message(**json.loads(raw))


class Inbox:
    def __init__(
        self,
        redis: Any,
        keys: Keys,
        handle: Handler,
        lease_ms: int = 30_000,
        concurrency: int = 32,
        give_up: GiveUp | None = None,
    ) -> None:
        self.redis, self.keys, self.handle, self.give_up = redis, keys, handle, give_up
        self.lease_ms = lease_ms
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._submit = redis.register_script(_SUBMIT)
        self._slots = asyncio.Semaphore(concurrency)
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._taken: set[str] = set()
        self._leases: set[str] = set()  # conversations this process is handling a message of
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.handled = 0

    async def submit(self, message: Message, app: str) -> bool:
        """Store ``message`` for handling; False when its platform id was taken before (a retry).
        Raises :class:`InboxFull` (503) past ``MAX_BACKLOG`` unhandled messages."""
        seen = self.keys.seen(message.channel, app, message.message_id)
        stored = int(
            await self._submit(keys=[seen, self.keys.inbox], args=[SEEN_TTL_S, MAX_BACKLOG, encode(message)])
        )
        if stored < 0:
            raise InboxFull(MAX_BACKLOG)
        return stored == 1

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.inbox, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._tasks = [
            asyncio.create_task(self._read_forever(), name="inbox-read"),
            asyncio.create_task(self._reclaim_forever(), name="inbox-reclaim"),
            asyncio.create_task(self._keep_fresh_forever(), name="inbox-keep"),
        ]

    async def stop(self) -> None:
        """Stop reading; messages being handled are left pending for the next process to claim."""
        await cancel_and_wait([*self._tasks, *self._chains.values()])
        self._tasks, self._chains = [], {}

    # ---------------------------------------------------------------------- reading
    async def _read_forever(self) -> None:
        failures = 0
        while True:
            try:
                reply = await self.redis.xreadgroup(
                    GROUP, self.consumer, {self.keys.inbox: ">"}, count=BATCH, block=1000
                )
                failures = 0
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis lost its data: recreate the group
                    await self.start_group()
                    continue
                failures += 1  # READONLY during a failover, OOM …: the reader must not die
                logger.warning("inbox: reading refused (%s); retrying", exc)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            except (RedisError, OSError) as exc:
                failures += 1
                logger.warning("inbox: reading failed (%r); retrying", exc)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            for _, entries in reply or ():
                self._take(entries)

    async def start_group(self) -> None:
        with contextlib.suppress(ResponseError):
            await self.redis.xgroup_create(self.keys.inbox, GROUP, id="0", mkstream=True)

    async def _reclaim_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self.reclaim()
            except (RedisError, OSError) as exc:
                logger.warning("inbox: reclaiming failed: %r", exc)

    async def reclaim(self) -> int:
        """Take over entries a dead (or stuck) consumer left pending longer than the lease; an entry
        claimed ``MAX_DELIVERIES`` times is given up."""
        start, taken = "0-0", 0
        while True:
            reply = await self.redis.xautoclaim(
                self.keys.inbox,
                GROUP,
                self.consumer,
                min_idle_time=self.lease_ms,
                start_id=start,
                count=BATCH,
            )
            start, entries = reply[0], [e for e in reply[1] if e[1]]
            mine = [e for e in entries if e[0] not in self._taken]
            if mine:
                tries = await self._deliveries([e[0] for e in mine])
                for entry_id, fields in [e for e in mine if tries.get(e[0], 0) > MAX_DELIVERIES]:
                    mine.remove((entry_id, fields))
                    await self._abandon(entry_id, fields)
            taken += len(mine)
            self._take(mine)
            if start in ("0-0", b"0-0"):
                return taken

    async def _deliveries(self, ids: list[str]) -> dict[str, int]:
        pending = await self.redis.xpending_range(
            self.keys.inbox, GROUP, min=min(ids), max=max(ids), count=len(ids) * 4, consumername=self.consumer
        )
        return {str(p["message_id"]): int(p["times_delivered"]) for p in pending}

    async def _abandon(self, entry_id: str, fields: dict[str, str]) -> None:
        logger.error("inbox: giving up on %s after %d tries", entry_id, MAX_DELIVERIES)
        try:
            message = decode(fields["m"])
        except (KeyError, TypeError, ValueError):
            message = None
        if message is not None and self.give_up is not None:
            await self.give_up(message, f"not handled after {MAX_DELIVERIES} tries")
        await self._ack(entry_id)

    async def _keep_fresh_forever(self) -> None:
        """Entries this process is handling (or holding behind a conversation's earlier message) stay
        fresh, so no other process claims them while this one is alive."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            ids, leases = list(self._taken), [self.keys.inbox_lease(cid) for cid in self._leases]
            try:
                if ids:
                    await self.redis.xclaim(
                        self.keys.inbox, GROUP, self.consumer, min_idle_time=0, message_ids=ids, justid=True
                    )
                for key in leases:  # one key per call: each conversation has its own cluster slot
                    await self._renew(keys=[key], args=[self.consumer, self.lease_ms])
            except (RedisError, OSError) as exc:
                logger.warning("inbox: refreshing taken entries failed: %r", exc)

    # --------------------------------------------------------------------- handling
    def _take(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Handle each entry after the ones of the same conversation taken before it."""
        for entry_id, fields in entries:
            try:
                message = decode(fields["m"])
            except (KeyError, TypeError, ValueError):
                logger.error("inbox: dropping unreadable entry %s", entry_id)
                message = None
            cid = message.conversation_id if message else f"unreadable:{entry_id}"
            before = self._chains.get(cid)
            self._taken.add(entry_id)
            task = asyncio.create_task(self._run(entry_id, message, before), name=f"inbox:{cid}")
            self._chains[cid] = task
            task.add_done_callback(functools.partial(self._forget, cid))

    def _forget(self, cid: str, task: asyncio.Task[None]) -> None:
        if self._chains.get(cid) is task:
            del self._chains[cid]

    async def _run(self, entry_id: str, message: Message | None, before: asyncio.Task[None] | None) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])
            async with self._slots:
                if message is not None and not await self._handle(entry_id, message):
                    return  # pending: claimed again after the lease
                await self._ack(entry_id)
                self.handled += 1
        finally:
            self._taken.discard(entry_id)

    async def _handle(self, entry_id: str, message: Message) -> bool:
        """Handle ``message``, retrying a transient failure in place (the conversation's later messages
        wait, so they stay in order). False: still failing; leave it for a later claim."""
        for attempt in range(ATTEMPTS):
            try:
                async with self._conversation_lease(message.conversation_id):
                    await self.handle(message)
                return True
            except (RedisError, OSError, Unavailable) as exc:
                if attempt == ATTEMPTS - 1:
                    logger.warning("inbox: %s still failing (%r); left for a later try", entry_id, exc)
                    return False
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
            except Exception as exc:
                logger.exception("inbox: handling %s failed", entry_id)
                if self.give_up is not None:
                    with contextlib.suppress(RedisError, OSError):
                        await self.give_up(message, f"{type(exc).__name__}: {str(exc)[:300]}")
                return True
        return False

    @contextlib.asynccontextmanager
    async def _conversation_lease(self, cid: str) -> AsyncIterator[None]:
        """One process at a time handles a conversation's messages: one taken by another process while this
        conversation's earlier message is being handled waits for it, which keeps the two in order."""
        key = self.keys.inbox_lease(cid)
        while not await self.redis.set(key, self.consumer, nx=True, px=self.lease_ms):
            await asyncio.sleep(0.05)
        self._leases.add(cid)
        try:
            yield
        finally:
            self._leases.discard(cid)
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[key], args=[self.consumer])

    async def _ack(self, entry_id: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.keys.inbox, GROUP, entry_id)
                pipe.xdel(self.keys.inbox, entry_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning(
                "inbox: acknowledging %s failed (%r); it will be handled again, idempotently", entry_id, exc
            )
