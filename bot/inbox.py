"""The inbox: chat-platform messages between the callback's answer and the engine's.

WeCom retries a callback not answered within 5 s, and DingTalk likewise expects a quick answer, so a
callback is answered as soon as its message is stored here, and handled after:

* :meth:`Inbox.submit` takes a message once: one script sets ``Keys.seen`` (the platform's message id, kept
  two days) and appends the message to the ``Keys.inbox`` stream. A retried callback or a replayed message
  finds its id seen and is answered without being stored again.
* Every app process reads the stream through one consumer group (``XREADGROUP``), handles each message
  (the engine's own idempotency record makes a second handling of the same message a no-op) and
  acknowledges and deletes it afterwards. One conversation's messages are handled in arrival order.
* A process that dies between taking a message and handling it leaves the entry pending; any process claims
  entries idle longer than the lease (``XAUTOCLAIM``) and handles them. Nothing acknowledged to the platform
  is lost, and nothing is handled twice.
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
from collections.abc import Awaitable, Callable
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
MAXLEN = 100_000
BATCH = 32

_SUBMIT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[3])
return 1
"""

Handler = Callable[[Message], Awaitable[None]]


def encode(message: Message) -> str:
    return json.dumps(asdict(message), ensure_ascii=False, separators=(",", ":"))


def decode(raw: str) -> Message:
    return Message(**json.loads(raw))


class Inbox:
    def __init__(
        self, redis: Any, keys: Keys, handle: Handler, lease_ms: int = 30_000, concurrency: int = 32
    ) -> None:
        self.redis, self.keys, self.handle = redis, keys, handle
        self.lease_ms = lease_ms
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._submit = redis.register_script(_SUBMIT)
        self._slots = asyncio.Semaphore(concurrency)
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._taken: set[str] = set()
        self.handled = 0

    async def submit(self, message: Message, app: str) -> bool:
        """Store ``message`` for handling; False when its platform id was taken before (a retry)."""
        seen = self.keys.seen(message.channel, app, message.message_id)
        return bool(
            await self._submit(keys=[seen, self.keys.inbox], args=[SEEN_TTL_S, MAXLEN, encode(message)])
        )

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
                raise
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
        """Take over entries a dead (or stuck) consumer left pending longer than the lease."""
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
            taken += len(mine)
            self._take(mine)
            if start in ("0-0", b"0-0"):
                return taken

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
                if message is not None:
                    try:
                        await self.handle(message)
                    except (RedisError, OSError, Unavailable) as exc:
                        logger.warning("inbox: %s left for a retry: %r", entry_id, exc)
                        return  # pending: claimed again after the lease
                    except Exception:
                        logger.exception("inbox: handling %s failed; dropping it", entry_id)
                await self._ack(entry_id)
                self.handled += 1
        finally:
            self._taken.discard(entry_id)

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
