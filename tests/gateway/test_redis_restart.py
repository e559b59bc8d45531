"""One event hub per process, against a real uvicorn process on a redis-server of this module's own: a
thousand sockets on a bounded number of Redis connections, a burst delivered exactly once in order to every
socket, and user and agent sockets that keep working through a Redis restart without reconnecting."""

from __future__ import annotations

import asyncio
import json
import resource
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
import redis.asyncio as aredis
import websockets

from bot.store.conversations import ConversationStore
from bot.store.keys import Keys
from handoff_gateway.agents import AgentStore
from tests.browser.conftest import LiveServer, start_server
from tests.live import RedisServer, frames_until

SOCKETS = 1000
POOL = 16  # TRIAGE_REDIS_MAX_CONNECTIONS for this module's server
BOUND = 20  # the pool, the hub's own connection, and a little slack


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Append-only persistence: a restart keeps the data."""
    server = RedisServer(tmp_path_factory.mktemp("redis-restart")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, own_redis: RedisServer, model_dir: Path
) -> Iterator[LiveServer]:
    env = {
        "TRIAGE_REDIS_MAX_CONNECTIONS": str(POOL),
        "TRIAGE_CONVERSATIONS_PER_MINUTE": "0",  # a thousand conversations from this one address
        "TRIAGE_HEARTBEAT_SECONDS": "2",
        "TRIAGE_PRESENCE_GRACE_SECONDS": "6",
    }
    yield from start_server(tmp_path_factory, own_redis.url, model_dir, env)


def ws_url(server: LiveServer, path: str) -> str:
    return server.url.replace("http", "ws") + path


def app_connections(redis_url: str) -> list[dict[str, Any]]:
    """The app process's connections to Redis, by the names it gives them (``triage-<pid>[-hub]``)."""
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [c for c in client.client_list() if c.get("name", "").startswith("triage-")]
    finally:
        client.close()


async def create_conversations(http: httpx.AsyncClient, url: str, n: int) -> list[dict[str, str]]:
    gate = asyncio.Semaphore(32)

    async def one() -> dict[str, str]:
        async with gate:
            response = await http.post(f"{url}/api/v1/conversations", json={})
            response.raise_for_status()
            created: dict[str, str] = response.json()
            return created

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def open_chat(server: LiveServer, conv: dict[str, str]) -> Any:
    ws = await websockets.connect(ws_url(server, "/ws/chat"), open_timeout=30)
    await ws.send(
        json.dumps({"type": "hello", "conversation_id": conv["conversation_id"], "token": conv["token"]})
    )
    await frames_until(ws, lambda f: f["type"] == "hello", timeout=30)
    return ws


@pytest.mark.timeout(180)
async def test_a_thousand_sockets_use_a_bounded_number_of_redis_connections(app: LiveServer) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    sockets: list[Any] = []
    async with httpx.AsyncClient(timeout=30) as http:
        convs = await create_conversations(http, app.url, SOCKETS)
        try:
            for start in range(0, SOCKETS, 100):  # concurrently, in batches
                sockets += await asyncio.gather(*(open_chat(app, c) for c in convs[start : start + 100]))
            named = app_connections(app.redis_url)
            assert len(named) <= BOUND, [c["name"] for c in named]
            assert sum(c["name"].endswith("-hub") for c in named) == 1  # one subscription for all sockets

            target, ws = convs[SOCKETS // 2], sockets[SOCKETS // 2]
            posted = await http.post(
                f"{app.url}/api/v1/conversations/{target['conversation_id']}/messages",
                headers={"Authorization": f"Bearer {target['token']}"},
                json={"text": "你好", "client_msg_id": "still-alive"},
            )
            assert posted.status_code == 200, posted.text
            echo = await frames_until(ws, lambda f: f.get("client_msg_id") == "still-alive", timeout=20)
            assert echo["role"] == "user"
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def collect_seqs(ws: Any, last: int) -> list[int]:
    seqs: list[int] = []

    def upto(frame: dict[str, Any]) -> bool:
        if frame["type"] == "message":
            seqs.append(frame["seq"])
        return bool(frame.get("seq") == last and frame["type"] == "message")

    await frames_until(ws, upto, timeout=30)
    return seqs


async def test_a_burst_reaches_two_sockets_exactly_once_in_order(app: LiveServer) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        [conv] = await create_conversations(http, app.url, 1)
    first, second = await open_chat(app, conv), await open_chat(app, conv)
    pool = aredis.BlockingConnectionPool.from_url(app.redis_url, max_connections=20, decode_responses=True)
    client = aredis.Redis(connection_pool=pool)
    try:
        store = ConversationStore(client, app.prefix)  # this test process appends: another process
        await asyncio.gather(
            *(
                store.append(conv["conversation_id"], {"type": "message", "role": "agent", "text": str(i)})
                for i in range(200)
            )
        )
        expected = list(range(1, 201))
        assert await collect_seqs(first, 200) == expected
        assert await collect_seqs(second, 200) == expected
    finally:
        await client.aclose()
        await pool.disconnect()
        await first.close()
        await second.close()


async def test_user_and_agent_sockets_resume_after_a_redis_restart(
    app: LiveServer, own_redis: RedisServer
) -> None:
    keys = Keys(app.prefix)
    name = "restart-" + uuid.uuid4().hex[:6]
    client = aredis.Redis.from_url(app.redis_url, decode_responses=True)
    try:
        agent_record, _ = await AgentStore(client, app.prefix).add(
            name, "password-123", "agent", ("zh", "en"), 5, "客服小周"
        )
    finally:
        await client.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        login = await http.post(
            f"{app.url}/api/v1/agents/login", json={"name": name, "password": "password-123"}
        )
        [conv, later] = await create_conversations(http, app.url, 2)
    cid = conv["conversation_id"]
    async with (
        websockets.connect(ws_url(app, "/ws/agent")) as agent,
        websockets.connect(ws_url(app, "/ws/chat")) as user,
    ):
        await agent.send(json.dumps({"type": "hello", "token": login.json()["token"]}))
        await frames_until(agent, lambda f: f["type"] == "hello")
        await user.send(json.dumps({"type": "hello", "conversation_id": cid, "token": conv["token"]}))
        await user.send(json.dumps({"type": "message", "text": "我要转人工客服", "client_msg_id": "u1"}))
        await frames_until(agent, lambda f: f["type"] == "offer" and f["conversation_id"] == cid)
        await agent.send(json.dumps({"type": "accept", "conversation_id": cid}))
        await frames_until(user, lambda f: f["type"] == "assigned")

        restarted_at = time.time()
        own_redis.stop()
        own_redis.start()  # same port and folder: the append-only file brings the data back

        await agent.send(
            json.dumps({"type": "message", "conversation_id": cid, "text": "还在吗", "client_msg_id": "a1"})
        )
        assert (await frames_until(user, lambda f: f.get("role") == "agent", timeout=30))["text"] == "还在吗"
        await user.send(json.dumps({"type": "message", "text": "在的", "client_msg_id": "u2"}))
        relayed = await frames_until(agent, lambda f: f.get("client_msg_id") == "u2", timeout=30)
        assert relayed["conversation_id"] == cid

        # Offers reach the console again too.
        second = await open_chat(app, later)
        try:
            await second.send(
                json.dumps({"type": "message", "text": "我要转人工客服", "client_msg_id": "u3"})
            )
            offer = await frames_until(
                agent,
                lambda f: f["type"] == "offer" and f["conversation_id"] == later["conversation_id"],
                timeout=30,
            )
            assert offer["conversation_id"] == later["conversation_id"]
        finally:
            await second.close()
        # Online, with heartbeats stored after the restart (a console whose tasks died goes quiet).
        await until_online_since(app.redis_url, keys.presence(agent_record.id), restarted_at)


async def until_online_since(redis_url: str, key: str, since: float, timeout: float = 20) -> None:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            presence = await client.hgetall(key)
            if presence.get("status") == "online" and float(presence.get("seen", 0)) > since:
                return
            assert time.monotonic() < deadline, f"presence after the restart: {presence}"
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
