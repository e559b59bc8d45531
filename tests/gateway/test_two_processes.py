"""A user on one app process and an agent on another talk in real time through the shared Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aredis
import websockets

from handoff_gateway.agents import AgentStore
from tests.browser.conftest import LiveServer, start_server
from tests.live import frames_until


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[list[LiveServer]]:
    first = start_server(tmp_path_factory, redis_url, model_dir, {})
    a = next(first)
    second = start_server(tmp_path_factory, redis_url, model_dir, {"TRIAGE_REDIS_PREFIX": a.prefix})
    b = next(second)
    yield [a, b]
    for gen in (second, first):
        with pytest.raises(StopIteration):
            next(gen)


async def test_user_on_one_process_agent_on_another(servers: list[LiveServer]) -> None:
    a, b = servers
    client = aredis.Redis.from_url(a.redis_url, decode_responses=True)
    try:
        await AgentStore(client, a.prefix).add("liu", "password-123", "agent", ("zh",), 3, "客服小刘")
    finally:
        await client.aclose()
    async with httpx.AsyncClient() as http:
        conv = (await http.post(f"{a.url}/api/v1/conversations", json={})).json()
        login = (
            await http.post(f"{b.url}/api/v1/agents/login", json={"name": "liu", "password": "password-123"})
        ).json()
    async with (
        websockets.connect(b.url.replace("http", "ws") + "/ws/agent") as agent,
        websockets.connect(a.url.replace("http", "ws") + "/ws/chat") as user,
    ):
        await agent.send(json.dumps({"type": "hello", "token": login["token"]}))
        assert (await frames_until(agent, lambda f: f["type"] == "hello"))["agent"]["name"] == "liu"
        await user.send(
            json.dumps({"type": "hello", "conversation_id": conv["conversation_id"], "token": conv["token"]})
        )
        await user.send(json.dumps({"type": "message", "text": "我要转人工客服", "client_msg_id": "u1"}))
        handoff = await frames_until(user, lambda f: f["type"] == "handoff")
        assert handoff["position"] == 1

        offer = await frames_until(agent, lambda f: f["type"] == "offer")
        assert offer["conversation_id"] == conv["conversation_id"] and offer["reason"] == "user_request"
        await agent.send(json.dumps({"type": "accept", "conversation_id": conv["conversation_id"]}))
        await frames_until(agent, lambda f: f["type"] == "accept")
        assigned = await frames_until(user, lambda f: f["type"] == "assigned")
        assert assigned["agent_name"] == "客服小刘"

        await agent.send(
            json.dumps(
                {
                    "type": "message",
                    "conversation_id": conv["conversation_id"],
                    "text": "您好，我是小刘",
                    "client_msg_id": "g1",
                }
            )
        )
        reply = await frames_until(user, lambda f: f.get("role") == "agent")
        assert reply["text"] == "您好，我是小刘"
        await user.send(
            json.dumps(
                {"type": "message", "text": "发票号码24442000000123456789查验失败", "client_msg_id": "u2"}
            )
        )
        relayed = await frames_until(
            agent, lambda f: f["type"] == "message" and f.get("client_msg_id") == "u2"
        )
        assert "24442000000123456789" in relayed["text"]

        await agent.send(
            json.dumps({"type": "note", "conversation_id": conv["conversation_id"], "text": "内部"})
        )
        await frames_until(agent, lambda f: f["type"] == "note")
        await agent.send(json.dumps({"type": "resolve", "conversation_id": conv["conversation_id"]}))
        await frames_until(user, lambda f: f["type"] == "csat_request")
        await user.send(json.dumps({"type": "csat", "score": 5}))
        await frames_until(agent, lambda f: f["type"] == "resolve")
        # The note never reached the user's socket.
        async with httpx.AsyncClient() as http:
            events = (
                await http.get(
                    f"{a.url}/api/v1/conversations/{conv['conversation_id']}/events",
                    headers={"Authorization": f"Bearer {conv['token']}"},
                )
            ).json()["events"]
        assert not [e for e in events if e["type"] == "note"]


async def test_agent_socket_refuses_bad_tokens(servers: list[LiveServer]) -> None:
    async with websockets.connect(servers[0].url.replace("http", "ws") + "/ws/agent") as ws:
        await ws.send(json.dumps({"type": "hello", "token": "wrong"}))
        assert json.loads(await ws.recv())["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401
