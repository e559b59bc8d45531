"""A process stopped gracefully hands its push deliveries over at once.

Regression: ``make test`` failed in CI when an app stopped while its outbox was delivering (or had read but
not yet acknowledged) a conversation's event. The interrupted drain's entries stayed pending to the stopped
consumer, and its lease could be left behind when the second cancellation of shutdown hit the drain's
cleanup; the next process then waited the whole lease (30 s) before it pushed the agent's reply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import redis.asyncio as aredis

from bot.message import Message
from bot.outbox import GROUP, Outbox
from bot.settings import Settings
from bot.store.conversations import ConversationStore


class Push:
    """A push channel that records what it delivers; ``hang`` makes every delivery wait forever."""

    name = "pushfake"
    push = True
    inline = False

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.started = asyncio.Event()
        self.delivered: list[str] = []

    def receive(self, payload: Mapping[str, Any]) -> Message:
        raise NotImplementedError

    async def deliver(self, conversation: Mapping[str, str], event: Mapping[str, Any]) -> None:
        self.started.set()
        if self.hang:
            await asyncio.Event().wait()
        self.delivered.append(str(event["text"]))

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[ConversationStore]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield ConversationStore(client, redis_prefix, retention_seconds=600)
    await client.aclose()


async def wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s")
        await asyncio.sleep(0.05)


async def test_a_stopped_outbox_leaves_nothing_for_the_next_process_to_wait_for(
    store: ConversationStore, settings: Settings
) -> None:
    lease = settings.model_copy(update={"outbox_lease_seconds": 30.0})
    stuck = Push(hang=True)
    first = Outbox(store, {"pushfake": stuck}, lease)
    first.start()
    cid = (await store.create("pushfake", "u1"))["conversation_id"]
    await first.follow(cid, 0)
    await store.append(cid, {"type": "message", "role": "bot", "text": "ticket T-1 opened"})
    await asyncio.wait_for(stuck.started.wait(), 10)
    await first.stop()  # mid-delivery, as an app being shut down

    pending = await store.redis.xpending(store.keys.events(cid), GROUP)
    assert int(pending["pending"]) == 1  # not acknowledged: the next process must deliver it

    working = Push()
    second = Outbox(store, {"pushfake": working}, lease)
    second.start()
    try:
        await store.append(cid, {"type": "message", "role": "agent", "text": "good morning"})
        # Well inside the 30 s lease: nothing of the stopped process's is waited for.
        await wait_for(lambda: len(working.delivered) == 2, timeout=8)
        assert working.delivered == ["ticket T-1 opened", "good morning"]
    finally:
        await second.stop()
