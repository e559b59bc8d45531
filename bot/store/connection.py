"""Connecting to Redis: a configured server (``TRIAGE_REDIS_URL``), or the embedded one under
``var/redis`` (bot/store/embedded.py) so that ``make run`` needs nothing installed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.settings import Settings
from bot.store.embedded import EmbeddedRedis

logger = logging.getLogger(__name__)


POOL_WAIT_SECONDS = 15.0  # under overload a request waits for a connection rather than failing at once


class WaitingSentinelPool(SentinelConnectionPool, aredis.BlockingConnectionPool):
    """Sentinel's pool (connections to whichever server the sentinels name primary) that, like the URL's
    pool, waits up to ``timeout`` seconds for a free connection instead of failing a burst beyond
    ``max_connections`` at once (redis-py's ``SentinelConnectionPool`` raises "Too many connections")."""


class ClusterConnection(Connection):
    """A cluster node's connection whose writes to a socket closed under them fail as a dropped connection.

    After a command meets a dead node (a failover), redis-py's cluster client disconnects that node's free
    connections from a snapshot of its free list (``ClusterNode.disconnect_free_connections``); a connection
    another task takes from the list meanwhile is closed while it connects or writes, and the write meets a
    writer of None: ``AttributeError: 'NoneType' object has no attribute 'writelines'``, which no caller takes
    for Redis being away — a user's message was refused for good in a failover (tests/faults/test_cluster.py).
    The read side already raises ConnectionError for a closed stream; this is the write side's twin, and the
    cluster client retries a ConnectionError on a fresh connection, as every caller of ours does."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            await super().send_packed_command(command, check_health)
        except AttributeError as exc:
            if exc.obj is not None or exc.name not in ("writelines", "write", "drain"):
                raise
            raise RedisConnectionError("the connection was closed under the command; retry") from exc


def _cluster_connections(client: RedisCluster) -> RedisCluster:
    """``client`` with :class:`ClusterConnection` for every node: the startup nodes it made, and through the
    keyword arguments its node manager builds each node from, those it discovers later. RedisCluster fixes
    the class itself (Connection, or SSLConnection with ``ssl``) and takes no argument for it."""
    if client.connection_kwargs.get("connection_class") is Connection:
        client.connection_kwargs["connection_class"] = ClusterConnection  # the node manager's dict too
        for node in client.nodes_manager.startup_nodes.values():
            node.connection_class = ClusterConnection
    return client


@dataclass
class RedisHandle:
    """``client``: the pool for short commands. ``subscriber``: the event hub's own connection — no retries
    inside redis-py, so that a dropped subscription surfaces to the hub, which re-syncs what it missed."""

    client: aredis.Redis | RedisCluster
    subscriber: aredis.Redis | RedisCluster
    embedded: EmbeddedRedis | None = None  # this process's use of the embedded server
    description: str = ""
    sentinels: Sentinel | None = None  # the clients that ask the sentinels where the primary is
    _closed: bool = field(default=False, init=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in (self.subscriber, self.client):
            await client.aclose()
            if isinstance(client, aredis.Redis):
                # The pools were built here, so the clients do not own them: close their connections.
                await client.connection_pool.disconnect()
        if self.sentinels is not None:
            await self.sentinels.aclose()
        if self.embedded is not None:
            # After our own connections are closed: the last user saves and stops the server.
            await asyncio.to_thread(self.embedded.close)


def connect(
    url: str | None,
    var_dir: Path,
    max_connections: int = 64,
    client_name: str = "",
    timeout: float = 5.0,
    sentinels: str = "",
    service: str = "triage",
    cluster_nodes: str = "",
) -> RedisHandle:
    """A pooled client; with ``cluster_nodes`` (``host:port,…``), the Redis Cluster they belong to; with
    ``sentinels`` (``host:port,…``), the primary of ``service`` they name; else with no URL, start (or
    reuse) the embedded server in ``var_dir/redis``.

    Websockets hold no connection of their own: one event hub per process subscribes once
    (``subscriber``) and reads transcripts through the pool, so the pool
    (``TRIAGE_REDIS_MAX_CONNECTIONS``) only serves short commands; a burst beyond it waits for a free
    connection instead of failing. Every connection is named (``CLIENT LIST``): ``triage-<pid>`` for the
    pool, ``triage-<pid>-hub`` for the hub's."""
    # The retry belongs on the pool's connections (redis-py ignores a client's retry when given a pool). One
    # retry after reconnecting: every pooled connection a Redis restart closed would otherwise fail its next
    # command, while a Redis that is down still fails fast (503). A command that timed out is not retried:
    # the Redis is there but not answering (frozen, overloaded), and a retry would double the wait.
    retry: dict[str, Any] = {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 1, (RedisConnectionError,)),
        "retry_on_error": [RedisConnectionError, ConnectionError],
    }
    name = client_name or f"triage-{os.getpid()}"
    options: dict[str, Any] = {"decode_responses": True, "socket_timeout": timeout}
    if cluster_nodes:
        return _cluster(cluster_nodes, max_connections, name, retry, options)
    if sentinels:
        return _through_sentinels(sentinels, service, max_connections, name, retry, options)
    if url:
        extra = {"socket_connect_timeout": 3, "health_check_interval": 30, **options}
        pool = aredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=POOL_WAIT_SECONDS,
            client_name=name,
            **retry,
            **extra,
        )
        own = aredis.ConnectionPool.from_url(url, max_connections=2, client_name=f"{name}-hub", **extra)
        client = aredis.Redis(connection_pool=pool)
        return RedisHandle(client, aredis.Redis(connection_pool=own), None, url.split("@")[-1])
    folder = var_dir / "redis"
    server = EmbeddedRedis.open(folder)
    unix: dict[str, Any] = {
        "connection_class": aredis.UnixDomainSocketConnection,
        "path": str(server.socket),
        **options,
    }
    pool = aredis.BlockingConnectionPool(
        max_connections=max_connections, timeout=POOL_WAIT_SECONDS, client_name=name, **retry, **unix
    )
    own = aredis.ConnectionPool(max_connections=2, client_name=f"{name}-hub", **unix)
    client = aredis.Redis(connection_pool=pool)
    logger.info("using the embedded Redis in %s", server.folder)
    return RedisHandle(
        client, aredis.Redis(connection_pool=own), server, f"embedded Redis in {server.folder}"
    )


async def pubsub_of(client: Any) -> Any:
    """A pub/sub on ``client``. A cluster client learns its slot map first: its pub/sub picks a node by it,
    and a client that has run no command yet has none."""
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client.pubsub()


async def forget_slots(client: Any) -> None:
    """A cluster client whose connections failed forgets its slot map, so the next command or subscription
    learns the cluster anew from the startup nodes (after a failover the old map names a dead primary, and
    a client that only subscribes never refreshes it otherwise). Only for a client of its own: closing
    drops every connection it holds."""
    if isinstance(client, RedisCluster):
        with contextlib.suppress(Exception):
            await client.aclose()


def connect_to(s: Settings, max_connections: int | None = None, client_name: str = "") -> RedisHandle:
    """:func:`connect` to the Redis the settings name (a cluster, Sentinels, a URL or the embedded one)."""
    return connect(
        s.redis_url,
        s.var_dir,
        max_connections or s.redis_max_connections,
        client_name,
        timeout=s.redis_timeout_seconds,
        sentinels=s.redis_sentinels,
        service=s.redis_sentinel_service,
        cluster_nodes=s.redis_cluster_nodes,
    )


def _addresses(listed: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` → [(host, port), …]; a clear error for anything else."""
    addresses = []
    for address in filter(None, (a.strip() for a in listed.split(","))):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{address!r} is not host:port (expected a comma-separated list of host:port)")
        addresses.append((host, int(port)))
    return addresses


def _cluster(
    nodes: str, max_connections: int, name: str, retry: dict[str, Any], options: dict[str, Any]
) -> RedisHandle:
    """A Redis Cluster: the client learns the slot map from any of ``nodes`` and follows it as slots move
    or a replica is promoted. Every multi-key script and transaction stays inside one hash-tag slot
    (bot/store/keys.py). The hub's subscription is classic pub/sub on one node: the cluster bus forwards
    every PUBLISH to every node, and after a drop the hub subscribes again, on a node that answers."""
    startup = [ClusterNode(host, port) for host, port in _addresses(nodes)]
    common = {"socket_connect_timeout": 3, **options}
    client = RedisCluster(
        startup_nodes=startup,
        max_connections=max_connections,
        client_name=name,
        retry=retry["retry"],
        **common,
    )
    subscriber = RedisCluster(startup_nodes=startup, max_connections=2, client_name=f"{name}-hub", **common)
    client, subscriber = _cluster_connections(client), _cluster_connections(subscriber)
    return RedisHandle(client, subscriber, None, f"Redis Cluster through {nodes}")


def _through_sentinels(
    sentinels: str,
    service: str,
    max_connections: int,
    name: str,
    retry: dict[str, Any],
    options: dict[str, Any],
) -> RedisHandle:
    """Every connection asks the sentinels where the primary is when it (re)connects: after a failover the
    pool's connections (retried once, as above) and the hub's subscription find the new primary by
    themselves. A burst beyond the pool waits for a free connection, as with a URL."""
    addresses = _addresses(sentinels)
    extra = {"socket_connect_timeout": 3, "health_check_interval": 30, **options}
    manager = Sentinel(addresses, sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1})
    client = manager.master_for(
        service,
        connection_pool_class=WaitingSentinelPool,
        max_connections=max_connections,
        timeout=POOL_WAIT_SECONDS,
        client_name=name,
        **retry,
        **extra,
    )
    subscriber = manager.master_for(service, max_connections=2, client_name=f"{name}-hub", **extra)
    return RedisHandle(
        client, subscriber, None, f"Redis primary {service!r} through Sentinel {sentinels}", manager
    )
