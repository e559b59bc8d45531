"""Handoff gateway benchmarks: handoff → offer latency, message relay latency between a user and an agent
on two app processes, and a race of 50 agents accepting the same conversation over 1,000 rounds."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

import httpx
import redis.asyncio as aredis
import websockets

from benchmarks.common import percentiles, write_result
from benchmarks.servers import app_servers
from bot.ownership import Owner
from bot.store.conversations import ConversationStore, now_ms
from bot.store.handoffs import HandoffStore, Move, queue_score
from handoff_gateway.agents import AgentStore
from handoff_gateway.audit import Audit
from handoff_gateway.desk import Desk, Taken
from tests.live import frames_until

ROUNDS_OFFER = 100
ROUNDS_RELAY = 200
RACE_AGENTS = 50
RACE_ROUNDS = 1000


async def _agent(redis_url: str, prefix: str, name: str, capacity: int = 1000) -> None:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await AgentStore(client, prefix).add(name, "password-123", "agent", ("zh", "en"), capacity)
    finally:
        await client.aclose()


async def _login(http: httpx.AsyncClient, url: str, name: str) -> str:
    response = await http.post(f"{url}/api/v1/agents/login", json={"name": name, "password": "password-123"})
    response.raise_for_status()
    return str(response.json()["token"])


async def offer_latency(url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    await _agent(redis_url, prefix, "offer-agent")
    samples = []
    async with httpx.AsyncClient(timeout=30) as http:
        token = await _login(http, url, "offer-agent")
        async with websockets.connect(url.replace("http", "ws") + "/ws/agent") as agent:
            await agent.send(json.dumps({"type": "hello", "token": token}))
            await frames_until(agent, lambda f: f["type"] == "hello")
            for _ in range(ROUNDS_OFFER):
                conv = (await http.post(f"{url}/api/v1/conversations", json={})).json()
                started = time.perf_counter()
                await http.post(
                    f"{url}/api/v1/conversations/{conv['conversation_id']}/messages",
                    headers={"Authorization": f"Bearer {conv['token']}"},
                    json={"text": "我要转人工客服", "client_msg_id": uuid.uuid4().hex},
                )
                await frames_until(
                    agent,
                    lambda f, c=conv: f["type"] == "offer" and f["conversation_id"] == c["conversation_id"],
                )
                samples.append((time.perf_counter() - started) * 1000)
                await agent.send(json.dumps({"type": "accept", "conversation_id": conv["conversation_id"]}))
                await frames_until(agent, lambda f: f["type"] == "accept")
                await agent.send(json.dumps({"type": "resolve", "conversation_id": conv["conversation_id"]}))
                await frames_until(agent, lambda f: f["type"] == "resolve")
            await agent.send(json.dumps({"type": "presence", "status": "offline"}))  # signing off
            await frames_until(agent, lambda f: f["type"] == "presence")
    return {
        "rounds": len(samples),
        "handoff_to_offer_ms": percentiles(samples),
        "note": "from the user's POST (parse, decide, queue) to the offer frame on the agent's websocket",
    }


async def relay_latency(user_url: str, agent_url: str, redis_url: str, prefix: str) -> dict[str, Any]:
    await _agent(redis_url, prefix, "relay-agent")
    to_agent, to_user = [], []
    async with httpx.AsyncClient(timeout=30) as http:
        token = await _login(http, agent_url, "relay-agent")
        conv = (await http.post(f"{user_url}/api/v1/conversations", json={})).json()
        cid = conv["conversation_id"]
        async with (
            websockets.connect(agent_url.replace("http", "ws") + "/ws/agent") as agent,
            websockets.connect(user_url.replace("http", "ws") + "/ws/chat") as user,
        ):
            await agent.send(json.dumps({"type": "hello", "token": token}))
            await frames_until(agent, lambda f: f["type"] == "hello")
            await user.send(json.dumps({"type": "hello", "conversation_id": cid, "token": conv["token"]}))
            await user.send(
                json.dumps({"type": "message", "text": "我要转人工客服", "client_msg_id": "start"})
            )
            await frames_until(agent, lambda f: f["type"] == "offer")
            await agent.send(json.dumps({"type": "accept", "conversation_id": cid}))
            await frames_until(user, lambda f: f["type"] == "assigned")
            for i in range(ROUNDS_RELAY):
                msg_id = f"g{i}"
                started = time.perf_counter()
                await agent.send(
                    json.dumps(
                        {
                            "type": "message",
                            "conversation_id": cid,
                            "text": f"客服消息 {i}",
                            "client_msg_id": msg_id,
                        }
                    )
                )
                await frames_until(
                    user, lambda f, m=msg_id: f.get("role") == "agent" and f.get("client_msg_id") == m
                )
                to_user.append((time.perf_counter() - started) * 1000)
                msg_id = f"u{i}"
                started = time.perf_counter()
                await user.send(
                    json.dumps({"type": "message", "text": f"用户消息 {i}", "client_msg_id": msg_id})
                )
                await frames_until(agent, lambda f, m=msg_id: f.get("client_msg_id") == m)
                to_agent.append((time.perf_counter() - started) * 1000)
    return {
        "messages_each_way": ROUNDS_RELAY,
        "user_to_agent_ms": percentiles(to_agent),
        "agent_to_user_ms": percentiles(to_user),
        "note": "user's socket on one uvicorn process, agent's on another; Redis streams carry the messages",
    }


async def accept_race(redis_url: str) -> dict[str, Any]:
    prefix = f"race-{uuid.uuid4().hex[:6]}:"
    clients = [aredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(RACE_AGENTS)]
    desks = [
        Desk(ConversationStore(c, prefix), HandoffStore(c, prefix), AgentStore(c, prefix), Audit(c, prefix))
        for c in clients
    ]
    agents = [
        (await desks[0].agents.add(f"racer{i}", "password-123", "agent", ("zh",), 10_000))[0]
        for i in range(RACE_AGENTS)
    ]
    winners_per_round: dict[int, int] = {}
    started = time.perf_counter()
    for _ in range(RACE_ROUNDS):
        conv = await desks[0].store.create("web")
        cid = conv["conversation_id"]
        # Queued by the bot, as the engine does it: one transition puts it in the zh queue.
        await desks[0].handoffs.transition(
            cid,
            Owner.QUEUED,
            Move(
                "bot",
                "queued",
                group="zh",
                score=queue_score("normal", now_ms()),
                fields={"group": "zh", "queued_at": str(now_ms())},
            ),
        )

        async def take(i: int, cid: str = cid) -> bool:
            try:
                await desks[i].accept(agents[i], cid)
                return True
            except Taken:
                return False

        results = await asyncio.gather(*(take(i) for i in range(RACE_AGENTS)))
        winners = sum(results)
        winners_per_round[winners] = winners_per_round.get(winners, 0) + 1
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    return {
        "agents": RACE_AGENTS,
        "rounds": RACE_ROUNDS,
        "winners_per_round": winners_per_round,
        "exactly_one_winner_every_round": winners_per_round == {1: RACE_ROUNDS},
        "seconds": round(elapsed, 2),
        "note": "50 clients, each on its own Redis connection, accept the same queued conversation at once",
    }


def main() -> None:
    with app_servers(2, {"TRIAGE_HEARTBEAT_SECONDS": "5"}) as cluster:
        print(f"  two app processes: {cluster.urls}", file=sys.stderr, flush=True)
        offer = asyncio.run(offer_latency(cluster.urls[0], cluster.redis_url, cluster.prefix))
        relay = asyncio.run(
            relay_latency(cluster.urls[0], cluster.urls[1], cluster.redis_url, cluster.prefix)
        )
        race = asyncio.run(accept_race(cluster.redis_url))
    write_result("gateway", {"offer": offer, "relay": relay, "race": race})


if __name__ == "__main__":
    main()
