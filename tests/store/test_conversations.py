"""The conversation store against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from bot.ownership import Owner, TransitionError
from bot.settings import SLATargets
from bot.sla import sla_clock
from bot.store.conversations import ConversationNotFound, ConversationStore
from bot.store.queue import HandoffQueue
from bot.store.tickets import TicketStore


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def store(redis_client: aredis.Redis, redis_prefix: str) -> ConversationStore:
    return ConversationStore(redis_client, redis_prefix, retention_seconds=60)


async def test_append_numbers_events_in_order_across_concurrent_writers(store: ConversationStore) -> None:
    conv = await store.create("web", "u1")
    cid = conv["conversation_id"]
    await asyncio.gather(*(store.append(cid, {"type": "message", "text": str(i)}) for i in range(50)))
    events = await store.events_after(cid)
    assert [e["seq"] for e in events] == list(range(1, 51))
    assert [e["seq"] for e in await store.events_after(cid, 45)] == [46, 47, 48, 49, 50]
    assert await store.redis.pttl(store.events_key(cid)) > 0  # retention applies


async def test_wait_events_blocks_until_an_append(store: ConversationStore) -> None:
    cid = (await store.create("web"))["conversation_id"]

    async def later() -> None:
        await asyncio.sleep(0.2)
        await store.append(cid, {"type": "message", "text": "later"})

    task = asyncio.create_task(later())
    events = await store.wait_events(cid, 0, 3000)
    await task
    assert [e["text"] for e in events] == ["later"]
    assert await store.wait_events(cid, 1, 100) == []


async def test_transitions_are_checked_atomically(store: ConversationStore) -> None:
    cid = (await store.create("web"))["conversation_id"]
    with pytest.raises(TransitionError):
        await store.transition(cid, Owner.ASSIGNED)
    results = await asyncio.gather(
        *(store.transition(cid, Owner.QUEUED) for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1  # exactly one bot -> queued
    assert (await store.require(cid))["state"] == "queued"
    with pytest.raises(ConversationNotFound):
        await store.transition("missing", Owner.QUEUED)


async def test_idempotency_claim_complete_release(store: ConversationStore) -> None:
    cid = (await store.create("web"))["conversation_id"]
    assert await store.claim(cid, "m1") is None
    await store.complete(cid, "m1", {"ok": 1})
    assert await store.claim(cid, "m1") == {"ok": 1}
    assert await store.claim(cid, "m2") is None
    await store.release(cid, "m2")
    assert await store.claim(cid, "m2") is None  # a failed first delivery can be retried


async def test_duplicate_ids_and_missing_conversations(store: ConversationStore) -> None:
    await store.create("web", conversation_id="fixed")
    with pytest.raises(Exception, match="already exists"):
        await store.create("web", conversation_id="fixed")
    assert (await store.get_or_create("fixed", "rest"))["channel"] == "web"
    with pytest.raises(ConversationNotFound):
        await store.require("missing")


async def test_queue_orders_by_severity_then_time(redis_client: aredis.Redis, redis_prefix: str) -> None:
    queue = HandoffQueue(redis_client, redis_prefix)
    assert await queue.enqueue("normal-early", "zh", "normal", 1000) == 1
    assert await queue.enqueue("important", "zh", "important", 3000) == 1
    assert await queue.enqueue("urgent-late", "zh", "urgent", 9000) == 1
    assert await queue.enqueue("normal-early", "zh", "normal", 99999) == 3  # re-enqueue keeps its place
    assert await queue.position("important", "zh") == 2
    await queue.remove("urgent-late", "zh")
    assert await queue.position("important", "zh") == 1 and await queue.length("zh") == 2


async def test_tickets_are_numbered_per_day(redis_client: aredis.Redis, redis_prefix: str) -> None:
    tickets = TicketStore(redis_client, redis_prefix, "Asia/Shanghai")
    sla = sla_clock("urgent", SLATargets(), 1795400000000, "Asia/Shanghai")
    first = await tickets.open("c1", "u1", "web", "urgent", "urgent", sla, "系统打不开")
    second = await tickets.open("c2", "u1", "web", "normal", "user_request", sla, "转人工")
    assert first["ticket_id"].endswith("-0001") and second["ticket_id"].endswith("-0002")
    assert (await tickets.get(first["ticket_id"].lower()))["summary"] == "系统打不开"
    assert await tickets.for_user("web", "u1") == [first["ticket_id"], second["ticket_id"]]
    assert await tickets.get("T-19990101-0001") is None
