"""kill -9 one of two app processes: mid-conversation with a backlog being delivered, and in the middle of an
agent's accept. Clients reopen their sockets on the other process, resume from their last seq, and nothing
is lost, duplicated or reordered; the accept happened or it did not, never half."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aredis

from bot.store.conversations import ConversationStore
from bot.store.keys import Keys
from tests.faults.clients import Console, User, settled_audit, transcript
from tests.faults.conftest import Apps, agent_token, new_conversations
from tests.live import AppProcess

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(240)]

USERS = 8
MESSAGES = 12  # per user
BACKLOG = 150  # events appended to each conversation right before the kill


async def append_backlog(
    redis_url: str, prefix: str, cids: list[str], count: int, text: str = "积压"
) -> None:
    """Agent messages appended by this process (another writer): the app processes fan them out."""
    pool = aredis.BlockingConnectionPool.from_url(redis_url, max_connections=16, decode_responses=True)
    store = ConversationStore(aredis.Redis(connection_pool=pool), prefix)
    try:
        await asyncio.gather(
            *(
                store.append(cid, {"type": "message", "role": "agent", "text": f"{text} {i}"})
                for cid in cids
                for i in range(count)
            )
        )
    finally:
        await pool.disconnect()


async def test_kill_one_process_mid_conversation_and_mid_backlog(apps: Apps) -> None:
    a, b = apps.start(2)
    convs = await new_conversations(a.url, USERS)
    users = [User(conv, [a.ws_url, b.ws_url]) for conv in convs]
    await asyncio.gather(*(user.connect() for user in users))
    talking = asyncio.gather(*(user.talk(MESSAGES) for user in users))
    for user in users:
        assert await user.until(lambda user=user: len(user.acked) >= 3, timeout=30)

    first = users[0]
    before = first.last_seq
    backlog = asyncio.create_task(
        append_backlog(apps.redis.url, apps.prefix, [u.cid for u in users], BACKLOG, text="积压" * 500)
    )
    assert await first.until(lambda: first.last_seq >= before + 20, 30)  # the backlog is flowing
    a.kill()
    received = first.last_seq  # read before anything else runs: nothing from the survivor yet
    await backlog
    assert received < before + BACKLOG, "the kill came after the backlog was delivered"

    await talking
    ledger = await settled_audit(users, apps.redis.url, apps.prefix)
    await asyncio.gather(*(user.close() for user in users))

    assert ledger.sent == ledger.acknowledged == USERS * MESSAGES
    assert ledger.clean, ledger
    assert all(user.reconnects >= 1 and user.current == 1 for user in users)  # all moved to the survivor


def kill_on_change(app: AppProcess, redis_url: str, key: str, ready: threading.Event) -> None:
    """SIGKILL ``app`` the moment ``key`` is written (keyspace notification): between the accept's state
    change and whatever the process meant to do next."""
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    client.config_set("notify-keyspace-events", "Kh")
    pubsub = client.pubsub()
    pubsub.subscribe(f"__keyspace@0__:{key}")
    ready.set()
    try:
        for message in pubsub.listen():
            if message["type"] == "message":
                app.kill()
                return
    finally:
        pubsub.close()
        client.close()


async def desk_state(redis_url: str, prefix: str, cid: str, agent_id: str) -> dict[str, Any]:
    """Everything the accept script moves, read at once."""
    keys = Keys(prefix)
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        handoff = await client.hgetall(keys.handoff(cid))
        ticket = await client.hgetall(keys.ticket(handoff["ticket_id"])) if handoff.get("ticket_id") else {}
        return {
            "state": handoff.get("state"),
            "owner": handoff.get("owner", ""),
            "queued": any([await client.zscore(keys.queue(g), cid) is not None for g in ("zh", "en")]),
            "offered": await client.hexists(keys.offers, cid),
            "open": await client.sismember(keys.agent_open(agent_id), cid),
            "ticket": ticket.get("status"),
        }
    finally:
        await client.aclose()


async def test_an_accept_cut_by_kill_9_happened_or_did_not(apps: Apps) -> None:
    a, b = apps.start(2, TRIAGE_ON_DUTY="true")
    agent_id, token = await agent_token(a.url, apps.redis.url, apps.prefix, "kill9")
    [conv] = await new_conversations(b.url, 1)
    cid = conv["conversation_id"]
    console = Console(token, [a.ws_url, b.ws_url])
    user = User(conv, [b.ws_url])  # the user is on the survivor: it must hear how the accept ended
    await console.connect()
    await user.connect()
    await user.say("我要转人工客服", "u1")
    assert await console.until(
        lambda: any(f["type"] == "offer" and f["conversation_id"] == cid for f in console.frames), 15
    )

    ready = threading.Event()
    killer = threading.Thread(
        target=kill_on_change, args=(a, apps.redis.url, Keys(apps.prefix).handoff(cid), ready)
    )
    killer.start()
    await asyncio.to_thread(ready.wait, 10)
    await console.send({"type": "accept", "conversation_id": cid})
    await asyncio.to_thread(killer.join, 15)
    assert a.process is not None and a.process.poll() is not None, "the accept never reached the desk"

    # The console reopens on the survivor; the agent retries the accept it got no answer to.
    replies = len(console.frames)
    await console.send({"type": "accept", "conversation_id": cid})
    assert await console.until(
        lambda: any(f["type"] in ("accept", "error") for f in console.frames[replies:]), 15
    )
    answer = next(f for f in console.frames[replies:] if f["type"] in ("accept", "error"))
    assert answer["type"] == "accept", answer  # done once, or redone now: never "already taken" by itself

    state = await desk_state(apps.redis.url, apps.prefix, cid, agent_id)
    assert state == {
        "state": "assigned",
        "owner": agent_id,
        "queued": False,
        "offered": False,
        "open": True,
        "ticket": state["ticket"],
    }
    assert state["ticket"] in (None, "assigned")
    # The user hears of it exactly once, whichever process announced it.
    assert await user.until(lambda: any(f["type"] == "assigned" for f in user.frames), 15)
    events = await transcript(apps.redis.url, apps.prefix, cid)
    assert [e["type"] for e in events].count("assigned") == 1, json.dumps(events, ensure_ascii=False)
    await console.close()
    await user.close()
