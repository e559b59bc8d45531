"""The event hub (``bot.realtime.hub``): one reader per process, catching up what a lost notification or a dropped
subscription left behind, and supervised connections that close with 1011 when their task fails."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bot.realtime.hub import EventHub, Events, Inbox, Resynced
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent


@pytest.fixture
def raw(settings: Settings) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    yield client
    client.close()


def hub_of(client: TestClient) -> EventHub:
    hub: EventHub = client.app.state.hub  # type: ignore[attr-defined]
    return hub


def store_of(client: TestClient) -> ConversationStore:
    store: ConversationStore = client.app.state.services.store  # type: ignore[attr-defined]
    return store


def seqs_until(client: TestClient, inbox: Inbox, last: int) -> list[int]:
    """Every seq the inbox receives until ``last`` (polling with a deadline)."""

    async def collect() -> list[int]:
        seen: list[int] = []
        deadline = time.monotonic() + 10
        while (not seen or seen[-1] < last) and time.monotonic() < deadline:
            notice = await inbox.get(0.2)
            if isinstance(notice, Events):
                seen += [e["seq"] for e in notice.events]
        return seen

    result: list[int] = client.portal.call(collect)  # type: ignore[union-attr]
    return result


def kill_hub_connection(raw: sync_redis.Redis) -> None:
    """Drop this process's hub subscription from the Redis side (as a restart or failover would)."""
    mine = f"triage-{os.getpid()}-hub"
    ids = [c["id"] for c in raw.client_list() if c.get("name") == mine]
    assert ids, "the hub's connection is named in CLIENT LIST"
    for client_id in ids:
        raw.execute_command("CLIENT", "KILL", "ID", client_id)


def test_followers_of_one_conversation_get_each_event_once_in_order(client: TestClient, chat: Chat) -> None:
    hub, store = hub_of(client), store_of(client)
    first, second = Inbox(), Inbox()
    client.portal.call(store.append, chat.id, {"type": "message", "role": "agent", "text": "0"})  # type: ignore[union-attr]
    client.portal.call(hub.follow, chat.id, 0, first)  # type: ignore[union-attr]
    client.portal.call(hub.follow, chat.id, 1, second)  # type: ignore[union-attr]  # has seq 1 already
    for i in range(1, 30):
        client.portal.call(store.append, chat.id, {"type": "message", "role": "agent", "text": str(i)})  # type: ignore[union-attr]
    assert seqs_until(client, first, 30) == list(range(1, 31))
    assert seqs_until(client, second, 30) == list(range(2, 31))


def test_a_lost_notification_is_caught_up_by_the_sweep(
    client: TestClient, chat: Chat, raw: sync_redis.Redis
) -> None:
    hub, store = hub_of(client), store_of(client)
    inbox = Inbox()
    client.portal.call(hub.follow, chat.id, 0, inbox)  # type: ignore[union-attr]
    client.portal.call(store.append, chat.id, {"type": "message", "text": "heard"})  # type: ignore[union-attr]
    assert seqs_until(client, inbox, 1) == [1]
    # An append whose notification never arrived: the record's seq and the stream move, nothing is published.
    raw.hincrby(store.key(chat.id), "seq", 1)
    raw.xadd(store.events_key(chat.id), {"e": json.dumps({"type": "message", "text": "lost"})}, id="2-0")
    assert client.portal.call(hub.sweep) == 1  # type: ignore[union-attr]
    assert seqs_until(client, inbox, 2) == [2]
    assert client.portal.call(hub.sweep) == 0  # type: ignore[union-attr]


def test_dropped_subscription_resyncs_and_the_console_reasserts_presence(
    client: TestClient, raw: sync_redis.Redis
) -> None:
    agent = Agent(client, "resync")
    hub = hub_of(client)
    presence_key = store_of(client).keys.presence(agent.id)
    with client.websocket_connect("/ws/agent") as ws:
        ws.send_text(json.dumps({"type": "hello", "token": agent.token}))
        assert ws.receive_json()["type"] == "hello"
        deadline = time.monotonic() + 10
        while raw.hget(presence_key, "status") != "online":
            assert time.monotonic() < deadline, "the console set its agent online"
            time.sleep(0.05)
        raw.delete(presence_key)  # Redis lost it (a restart without persistence)
        before = hub.reconnects
        kill_hub_connection(raw)
        deadline = time.monotonic() + 10
        while raw.hget(presence_key, "status") != "online":
            assert time.monotonic() < deadline, "presence was not re-asserted after the re-sync"
            time.sleep(0.05)
        assert hub.reconnects == before + 1
        # And the console still hears the desk: the queue snapshot is sent again after the re-sync.
        for _ in range(50):
            if ws.receive_json()["type"] == "queue":
                break
        else:
            pytest.fail("no queue snapshot after the re-sync")


def test_resync_tells_desk_listeners(client: TestClient, raw: sync_redis.Redis) -> None:
    hub, inbox = hub_of(client), Inbox()
    hub.listen_desk("someone", inbox)
    kill_hub_connection(raw)

    async def resynced() -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if isinstance(await inbox.get(0.2), Resynced):
                return True
        return False

    assert client.portal.call(resynced)  # type: ignore[union-attr]


def test_a_failing_connection_task_is_logged_and_closes_with_1011(
    client: TestClient, chat: Chat, raw: sync_redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = store_of(client)
    with client.websocket_connect("/ws/chat") as ws:
        ws.send_text(json.dumps({"type": "hello", "conversation_id": chat.id, "token": chat.token}))
        assert ws.receive_json()["type"] == "hello"
        assert ws.receive_json()["type"] == "heartbeat"  # following
        # A real fault: the transcript key holds the wrong type, so reading it raises WRONGTYPE.
        raw.delete(store.events_key(chat.id))
        raw.set(store.events_key(chat.id), "not a stream")
        raw.publish(store.keys.events_channel, json.dumps({"c": chat.id, "s": 1}))
        with (
            caplog.at_level(logging.ERROR, logger="bot.realtime.supervise"),
            pytest.raises(WebSocketDisconnect) as info,
        ):
            for _ in range(50):
                ws.receive_json()
    assert info.value.code == 1011
    failures = [
        r for r in caplog.records if r.name == "bot.realtime.supervise" and r.levelno == logging.ERROR
    ]
    assert failures and f"conversation_id={chat.id}" in failures[0].getMessage()
    assert "WRONGTYPE" in str(failures[0].exc_info[1] if failures[0].exc_info else "")


def test_long_poll_waits_on_the_hub(client: TestClient, chat: Chat) -> None:
    """No follower is left behind by a long-poll, whatever it returned."""
    hub, store = hub_of(client), store_of(client)
    empty = client.get(
        f"/api/v1/conversations/{chat.id}/events", params={"wait": 0.3}, headers=chat.headers
    ).json()
    assert empty["events"] == [] and hub.followed == 0
    client.portal.call(store.append, chat.id, {"type": "message", "role": "agent", "text": "hi"})  # type: ignore[union-attr]
    got = client.get(f"/api/v1/conversations/{chat.id}/events", params={"wait": 5}, headers=chat.headers)
    assert [e["seq"] for e in got.json()["events"]] == [1] and hub.followed == 0
