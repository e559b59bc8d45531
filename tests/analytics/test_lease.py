"""One process rolls up at a time: while another holds the lease a process skips its pass (two doing the same
reads and folds, all but one of their writes refused, took the time a burst of new conversations needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aredis

from bot.analytics.rollup import Rollup
from bot.settings import Settings
from bot.store.conversations import ConversationStore


async def test_a_pass_waits_for_the_lease_and_releases_it(settings: Settings, redis_prefix: str) -> None:
    client: Any = aredis.Redis.from_url(settings.redis_url, decode_responses=True)
    store = ConversationStore(client, redis_prefix)
    conv = await store.create("web")
    await store.append(conv["conversation_id"], {"type": "message", "role": "user", "text": "发票查验失败"})
    rollup = Rollup(store, "Asia/Shanghai", 30, interval=0.05)
    lease = store.keys.analytics_lease
    await client.set(lease, "another-process", px=60_000)
    try:
        rollup.start()
        await asyncio.sleep(0.5)
        assert await client.hget(store.keys.analytics_cursors, conv["conversation_id"]) is None

        await client.delete(lease)  # the other process's pass ended
        for _ in range(100):
            if await client.hget(store.keys.analytics_cursors, conv["conversation_id"]):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the rollup never ran once the lease was free")
    finally:
        await rollup.stop()
    try:
        assert await client.get(lease) is None  # released after each pass, not left to expire
    finally:
        await client.aclose()
