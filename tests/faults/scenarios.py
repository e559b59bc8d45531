"""Fault scenarios shared by the tests (which assert on their figures) and ``benchmarks/faults.py`` (which
records them): each drives real clients against real app and redis-server processes and returns what
happened, counted."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.faults.clients import Console, User, settled_audit, transcript
from tests.faults.conftest import agent_token, new_conversations
from tests.live import AppProcess, RedisServer

WARM_UP = 3  # messages acknowledged per client before the fault


async def redis_restart(
    app: AppProcess, redis: RedisServer, prefix: str, crash: bool, users: int = 4, messages: int = 20
) -> dict[str, Any]:
    """Users talk to the bot, and an agent and a user talk to each other, while Redis is restarted on the
    same port: stopped (SIGTERM: Redis writes and fsyncs the append-only file on the way out) or, with
    ``crash``, killed (SIGKILL: only what the append-only file already held comes back). Every message is
    resent until acknowledged; nothing reconnects by hand."""
    _, token = await agent_token(app.url, redis.url, prefix, f"aof{uuid.uuid4().hex[:6]}")
    console = Console(token, [app.ws_url])
    people = [User(conv, [app.ws_url]) for conv in await new_conversations(app.url, users)]
    await console.connect()
    await asyncio.gather(*(user.connect() for user in people))
    handed = people[0]
    await handed.say("我要转人工客服", "handoff")
    assert await console.until(
        lambda: any(f["type"] == "offer" and f["conversation_id"] == handed.cid for f in console.frames), 15
    )
    await console.send({"type": "accept", "conversation_id": handed.cid})
    assert await handed.until(lambda: any(f["type"] == "assigned" for f in handed.frames), 15)

    replies = [f"agent-{i}" for i in range(messages)]

    async def reply() -> None:
        for cmid in replies:
            await console.say(handed.cid, "稍等，我查一下", cmid)
            await asyncio.sleep(0.05)

    traffic = asyncio.gather(*(user.talk(messages) for user in people), reply())
    for user in people:
        assert await user.until(lambda user=user: len(user.acked) >= WARM_UP, 30)
    before = {user.cid: set(user.acked) for user in people}
    killed = time.monotonic()
    if crash:
        redis.kill()
    else:
        redis.stop()
    redis.start()  # same port and folder
    restarted = time.monotonic()
    await traffic

    ledger = await settled_audit(people, redis.url, prefix)
    stored = await transcript(redis.url, prefix, handed.cid)
    agent_ids = [e.get("client_msg_id") for e in stored if e.get("role") == "agent"]
    lost_before = 0
    for user in people:
        ids = {e.get("client_msg_id") for e in await transcript(redis.url, prefix, user.cid)}
        lost_before += len(before[user.cid] - ids)
    recovered = [min((t for t in user.acked.values() if t > restarted), default=restarted) for user in people]
    await console.close()
    await asyncio.gather(*(user.close() for user in people))
    return {
        "appendfsync": redis.appendfsync,
        "restart": "SIGKILL" if crash else "SIGTERM",
        "messages_acknowledged": ledger.acknowledged + len(replies),
        "acknowledged_before_restart": sum(len(ids) for ids in before.values()),
        "lost_acknowledged_before_restart": lost_before,
        "lost": ledger.lost + len(set(replies) - set(agent_ids)),
        "duplicated": ledger.duplicated + len(agent_ids) - len(set(agent_ids)),
        "out_of_order": ledger.out_of_order,
        "missing_on_sockets": ledger.missing,
        "redis_down_s": round(restarted - killed, 3),
        "recovery_s": round(max(recovered) - killed, 3),
        "socket_reconnects": sum(user.reconnects for user in people) + console.reconnects,
        "problems": list(ledger.problems)
        + [f"agent reply {r} stored twice" for r in set(agent_ids) if agent_ids.count(r) > 1],
    }
