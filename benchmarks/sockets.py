"""Websockets against Redis connections: how many connections one app process holds with 100 / 1,000 / 5,000
open chat sockets (one event hub per process; sockets hold none), and how long an open agent socket and user
socket take to receive events again after a Redis restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis as sync_redis
import redis.asyncio as aredis
import websockets

from benchmarks.common import ROOT, percentiles, write_result
from bot.store.conversations import ConversationStore
from handoff_gateway.agents import AgentStore
from tests.live import RedisServer, frames_until, free_port, serve_command, wait_until_ready

STEPS = (100, 1_000, 5_000)
RESTARTS = 7
PREFIX = "bench:"


@dataclass
class App:
    url: str
    redis: RedisServer


@contextlib.contextmanager
def app_on_own_redis(env: dict[str, str]) -> Iterator[App]:
    folder = Path(tempfile.mkdtemp(prefix="triage-sockets-"))
    redis = RedisServer(folder / "redis").start()
    port = free_port()
    process = subprocess.Popen(
        serve_command("127.0.0.1", port),
        cwd=ROOT,
        env={
            **os.environ,
            "TRIAGE_REDIS_URL": redis.url,
            "TRIAGE_REDIS_PREFIX": PREFIX,
            "TRIAGE_VAR_DIR": str(folder / "var"),
            "TRIAGE_LOG_LEVEL": "warning",
            **env,
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, timeout=120)
        yield App(url, redis)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        redis.stop()


def raise_open_files() -> int:
    """As many descriptors as allowed (the uvicorn child inherits the limit); returns the new soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def connections(redis_url: str) -> dict[str, int]:
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        names = [c.get("name", "") for c in client.client_list()]
    finally:
        client.close()
    app = [n for n in names if n.startswith("triage-")]
    return {
        "app_process": len(app),
        "hub": sum(n.endswith("-hub") for n in app),
        "server_total": len(names) - 1,  # less this counting connection
    }


async def create(http: httpx.AsyncClient, url: str, n: int) -> list[dict[str, str]]:
    gate = asyncio.Semaphore(32)

    async def one() -> dict[str, str]:
        async with gate:
            response = await http.post(f"{url}/api/v1/conversations", json={})
            response.raise_for_status()
            created: dict[str, str] = response.json()
            return created

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def open_chat(url: str, conv: dict[str, str]) -> Any:
    ws = await websockets.connect(url.replace("http", "ws") + "/ws/chat", open_timeout=60, max_queue=None)
    await ws.send(
        json.dumps({"type": "hello", "conversation_id": conv["conversation_id"], "token": conv["token"]})
    )
    await frames_until(ws, lambda f: f["type"] == "hello", timeout=60)
    return ws


async def socket_counts(app: App, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sockets: list[Any] = []
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            for target in STEPS:
                if target > limit:
                    rows.append({"sockets": target, "skipped": f"open-file limit {limit}"})
                    continue
                convs = await create(http, app.url, target - len(sockets))
                started = time.perf_counter()
                for i in range(0, len(convs), 200):
                    sockets += await asyncio.gather(*(open_chat(app.url, c) for c in convs[i : i + 200]))
                opened = time.perf_counter() - started
                probe = convs[-1]
                sent = time.perf_counter()
                response = await http.post(
                    f"{app.url}/api/v1/conversations/{probe['conversation_id']}/messages",
                    headers={"Authorization": f"Bearer {probe['token']}"},
                    json={"text": "你好", "client_msg_id": f"probe-{target}"},
                )
                response.raise_for_status()
                await frames_until(sockets[-1], lambda f, t=target: f.get("client_msg_id") == f"probe-{t}")
                rows.append(
                    {
                        "sockets": len(sockets),
                        "redis_connections": connections(app.redis.url),
                        "open_seconds": round(opened, 1),
                        "probe_message_ms": round((time.perf_counter() - sent) * 1000, 1),
                    }
                )
                print(f"{len(sockets)} sockets: {rows[-1]}", file=sys.stderr, flush=True)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return rows


async def arrival(ws: Any, text: str) -> float:
    await frames_until(ws, lambda f: f.get("text") == text, timeout=60)
    return time.perf_counter()


async def restart_recovery(app: App) -> dict[str, Any]:
    """A user and an agent in a live conversation; Redis restarted; time from Redis accepting connections
    again to each socket receiving an event appended right then (by another process)."""
    client = aredis.Redis.from_url(app.redis.url, decode_responses=True)
    await AgentStore(client, PREFIX).add("bench-restart", "password-123", "agent", ("zh", "en"), 5)
    await client.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        token = (
            await http.post(
                f"{app.url}/api/v1/agents/login", json={"name": "bench-restart", "password": "password-123"}
            )
        ).json()["token"]
        [conv] = await create(http, app.url, 1)
    cid = conv["conversation_id"]
    user = await open_chat(app.url, conv)
    agent = await websockets.connect(app.url.replace("http", "ws") + "/ws/agent", max_queue=None)
    await agent.send(json.dumps({"type": "hello", "token": token}))
    await frames_until(agent, lambda f: f["type"] == "hello")
    await user.send(json.dumps({"type": "message", "text": "我要转人工客服", "client_msg_id": "u0"}))
    await frames_until(agent, lambda f: f["type"] == "offer", timeout=30)
    await agent.send(json.dumps({"type": "accept", "conversation_id": cid}))
    await frames_until(user, lambda f: f["type"] == "assigned", timeout=30)
    user_ms, agent_ms = [], []
    try:
        for i in range(RESTARTS):
            app.redis.stop()
            app.redis.start()
            back = time.perf_counter()
            writer = aredis.Redis.from_url(app.redis.url, decode_responses=True)
            try:
                await ConversationStore(writer, PREFIX).append(
                    cid, {"type": "message", "role": "system", "text": f"after restart {i}"}
                )
            finally:
                await writer.aclose()
            text = f"after restart {i}"
            at_user, at_agent = await asyncio.gather(arrival(user, text), arrival(agent, text))
            user_ms.append((at_user - back) * 1000)
            agent_ms.append((at_agent - back) * 1000)
            print(
                f"restart {i + 1}: user {user_ms[-1]:.0f} ms, agent {agent_ms[-1]:.0f} ms",
                file=sys.stderr,
                flush=True,
            )
    finally:
        await user.close()
        await agent.close()
    return {
        "restarts": RESTARTS,
        "user_ms": percentiles(user_ms),
        "agent_ms": percentiles(agent_ms),
        "what": "Redis accepting connections again → the event appended then, received on both the user's and "
        "the agent's open socket (no reconnect)",
    }


async def main() -> None:
    limit = raise_open_files()
    # A long heartbeat: the idle sockets' heartbeat frames are not what is measured.
    with app_on_own_redis({"TRIAGE_HEARTBEAT_SECONDS": "30"}) as app:
        counts = await socket_counts(app, limit - 200)  # one descriptor per socket on each side
    with app_on_own_redis({"TRIAGE_HEARTBEAT_SECONDS": "2"}) as app:
        recovery = await restart_recovery(app)
    write_result(
        "sockets",
        {
            "server": "one uvicorn process, TRIAGE_REDIS_MAX_CONNECTIONS 64 (default)",
            "open_file_limit": limit,
            "counts": counts,
            "restart": recovery,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
