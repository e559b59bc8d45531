"""Connecting: a configured server with a pool sized for many open websockets, or the embedded Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.store.connection import ClusterConnection, connect
from bot.store.conversations import ConversationStore
from tests.live import RedisServer, Sentinel


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


def test_pooled_connections_carry_the_retry_policy(redis_url: str) -> None:
    """redis-py ignores a client's retry when the client is given a pool: it must be on the pool's
    connections, or every connection a Redis restart closed fails its next command."""
    handle = connect(redis_url, Path("unused"))
    try:
        pooled = handle.client.connection_pool.make_connection()
        assert pooled.retry.get_retries() >= 1
        assert RedisConnectionError in pooled.retry._supported_errors
        hub = handle.subscriber.connection_pool.make_connection()
        assert hub.retry.get_retries() == 0  # the hub re-syncs itself after a dropped subscription
    finally:
        asyncio.run(handle.close())


async def test_every_pooled_connection_survives_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    handle = connect(server.url, tmp_path, max_connections=64)
    try:
        # 40 connections in the pool, each in use once (a blocking read holds each one).
        await asyncio.gather(*(handle.client.blpop([f"k{i}"], timeout=0.2) for i in range(40)))
        assert len(handle.client.connection_pool._available_connections) >= 40
        server.stop()
        server.start()  # same port: every pooled connection is now a dead socket
        results = await asyncio.gather(
            *(handle.client.set(f"after:{i}", "1") for i in range(40)), return_exceptions=True
        )
        assert [r for r in results if r is not True] == []
    finally:
        await handle.close()
        server.stop()


async def test_a_burst_beyond_the_sentinel_pool_waits_for_a_connection(tmp_path: Path) -> None:
    """Regression: through Sentinel, redis-py's pool raised "Too many connections" at once for a burst
    beyond ``max_connections`` (a 503 per request), where the URL's pool waits for a free connection."""
    primary = RedisServer(tmp_path / "primary").start()
    sentinel = Sentinel(tmp_path / "sentinel", "triage", primary.port, quorum=1).start()
    handle = connect(None, tmp_path, max_connections=4, sentinels=f"127.0.0.1:{sentinel.port}")
    try:
        # Twelve blocking reads, each holding a connection for 0.2 s, through a pool of four.
        results = await asyncio.gather(
            *(handle.client.blpop([f"burst:{i}"], timeout=0.2) for i in range(12)), return_exceptions=True
        )
        assert [r for r in results if r is not None] == []
        assert "Sentinel" in handle.description
    finally:
        await handle.close()
        sentinel.stop()
        primary.stop()


async def test_a_cluster_connection_closed_under_its_write_is_a_dropped_connection(
    redis_url: str, tmp_path: Path
) -> None:
    """A failover's clean-up in redis-py's cluster client disconnects a node's free connections from a
    snapshot of its free list; one that another task took meanwhile is closed while it connects, and its write
    met a writer of None — AttributeError, and the user's message was refused for good (CI, the cluster
    failover fault test). It is a dropped connection: ConnectionError, which the client retries; the
    connection then works again. A standalone Redis stands in for the node: the race is the connection's."""
    address = urlsplit(redis_url)
    handle = connect(None, tmp_path, cluster_nodes=f"{address.hostname}:{address.port}")  # connects lazily
    try:
        for client in (handle.client, handle.subscriber):
            node = next(iter(client.nodes_manager.startup_nodes.values()))
            discovered = ClusterNode("127.0.0.1", 1, **client.nodes_manager.connection_kwargs)
            assert node.connection_class is discovered.connection_class is ClusterConnection
        connection = node.acquire_connection()
        write = connection._send_packed_command

        async def closed_under(command: Any) -> None:
            await connection.disconnect()  # the other task's clean-up, between connecting and writing
            await write(command)

        connection._send_packed_command = closed_under  # type: ignore[method-assign]
        with pytest.raises(RedisConnectionError, match="closed under the command"):
            await connection.send_command("PING")
        del connection._send_packed_command
        await connection.send_command("PING")
        assert await connection.read_response() == "PONG"
        await connection.disconnect()
    finally:
        await handle.close()
