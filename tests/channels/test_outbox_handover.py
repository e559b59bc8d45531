"""A process stopped gracefully hands its push deliveries over at once.

Regression: ``make test`` failed in CI when an app stopped while its outbox was delivering (or had read but
not yet acknowledged) a conversation's event. The interrupted drain's entries stayed pending to the stopped
consumer, and its lease could be left behind when the second cancellation of shutdown hit the drain's
cleanup; the next process then waited the whole lease (30 s) before it pushed the agent's reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from bot.channels.rasa import RasaCallbackChannel
from bot.outbox import GROUP, Outbox
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from bot.vocabulary import Channel as ChannelName
from tests.channels.conftest import CallbackServer


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[ConversationStore]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield ConversationStore(client, redis_prefix, retention_seconds=600)
    await client.aclose()


def outbox(store: ConversationStore, settings: Settings, url: str) -> Outbox:
    """An app process's outbox pushing Rasa callback conversations to ``url``, with a 30 s lease."""
    lease = settings.model_copy(update={"outbox_lease_seconds": 30.0})
    return Outbox(store, {ChannelName.CALLBACK: RasaCallbackChannel(url)}, lease)


async def test_a_stopped_outbox_leaves_nothing_for_the_next_process_to_wait_for(
    store: ConversationStore, settings: Settings, callback_server: CallbackServer
) -> None:
    callback_server.stall_first = True  # the first POST is held open: the first process is mid-delivery
    first = outbox(store, settings, callback_server.url)
    first.start()
    cid = (await store.create(ChannelName.CALLBACK, "u1"))["conversation_id"]
    await first.follow(cid, 0)
    await store.append(cid, {"type": "message", "role": "bot", "text": "ticket T-1 opened"})
    await asyncio.to_thread(callback_server.wait_for, lambda s: s.received, 10)
    await first.stop()  # mid-delivery, as an app being shut down
    callback_server.release.set()

    pending = await store.redis.xpending(store.keys.events(cid), GROUP)
    assert int(pending["pending"]) == 1  # not acknowledged: the next process must deliver it

    second = outbox(store, settings, callback_server.url)
    second.start()
    try:
        await store.append(cid, {"type": "message", "role": "agent", "text": "good morning"})
        # Well inside the 30 s lease: nothing of the stopped process's is waited for.
        await asyncio.to_thread(callback_server.wait_for, lambda s: len(s.delivered) == 2, 8)
        assert callback_server.texts() == ["ticket T-1 opened", "good morning"]
    finally:
        await second.stop()
