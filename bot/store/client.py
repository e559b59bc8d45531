"""The client type the stores take: one Redis server (by URL, through Sentinel, or the embedded one) or a Redis
Cluster (bot/store/connection.py builds either)."""

from __future__ import annotations

from typing import TypeAlias

import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster

RedisClient: TypeAlias = aredis.Redis | RedisCluster
