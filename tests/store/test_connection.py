"""Connecting: a configured server with a pool sized for many open websockets, or the embedded Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store.connection import connect
from bot.store.conversations import ConversationStore


async def test_pool_serves_more_blocked_readers_than_redis_py_default(
    redis_url: str, redis_prefix: str
) -> None:
    handle = connect(redis_url, Path("unused"), max_connections=500)
    try:
        # Each open websocket waits in XREAD BLOCK on a connection of its own; redis-py's default pool has 100.
        results = await asyncio.gather(
            *(handle.client.xread({f"{redis_prefix}s{i}": "0-0"}, block=300) for i in range(150)),
            return_exceptions=True,
        )
        assert not [r for r in results if isinstance(r, Exception)]
    finally:
        await handle.close()


async def test_embedded_redis_persists_under_var(tmp_path: Path) -> None:
    handle = connect(None, tmp_path)
    try:
        store = ConversationStore(handle.client, "t:")
        conversation = await store.create("web", "u1")
        await store.append(conversation["conversation_id"], {"type": "message", "text": "你好"})
        assert "embedded" in handle.description
    finally:
        await handle.close()
    again = connect(None, tmp_path)
    try:
        events = await ConversationStore(again.client, "t:").events_after(conversation["conversation_id"])
        assert [e["text"] for e in events] == ["你好"]
    finally:
        await again.close()
    assert (tmp_path / "redis" / "triage.rdb").exists()
