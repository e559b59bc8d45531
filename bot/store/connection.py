"""Connecting to Redis: a configured server (``TRIAGE_REDIS_URL``), or the embedded one under
``var/redis`` (bot/store/embedded.py) so that ``make run`` needs nothing installed."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.store.embedded import EmbeddedRedis

logger = logging.getLogger(__name__)


POOL_WAIT_SECONDS = 15.0  # under overload a request waits for a connection rather than failing at once


@dataclass
class RedisHandle:
    """``client``: the pool for short commands. ``subscriber``: the event hub's own connection — no retries
    inside redis-py, so that a dropped subscription surfaces to the hub, which re-syncs what it missed."""

    client: aredis.Redis
    subscriber: aredis.Redis
    embedded: EmbeddedRedis | None = None  # this process's use of the embedded server
    description: str = ""
    _closed: bool = field(default=False, init=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for client in (self.subscriber, self.client):
            await client.aclose()
            # The pools were built here, so the clients do not own them: close their connections explicitly.
            await client.connection_pool.disconnect()
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
) -> RedisHandle:
    """A pooled client; with ``sentinels`` (``host:port,…``), the primary of ``service`` they name; else with
    no URL, start (or reuse) the embedded server in ``var_dir/redis``.

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
    themselves. Sentinel's pool does not wait for a free connection: a burst beyond it fails (503)."""
    addresses = []
    for address in sentinels.split(","):
        host, _, port = address.strip().rpartition(":")
        addresses.append((host, int(port)))
    extra = {"socket_connect_timeout": 3, "health_check_interval": 30, **options}
    manager = Sentinel(addresses, sentinel_kwargs={"socket_timeout": 1, "socket_connect_timeout": 1})
    client = manager.master_for(service, max_connections=max_connections, client_name=name, **retry, **extra)
    subscriber = manager.master_for(service, max_connections=2, client_name=f"{name}-hub", **extra)
    return RedisHandle(client, subscriber, None, f"Redis primary {service!r} through Sentinel {sentinels}")
