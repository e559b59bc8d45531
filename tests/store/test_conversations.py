"""The conversation store against a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from bot.store.conversations import CLAIM_MS, RESPONSE_MS, ConversationNotFound, ConversationStore


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


async def test_a_dead_process_claim_lapses_and_a_retry_takes_over(store: ConversationStore) -> None:
    """A process killed between claiming a message and completing it leaves a claim that lapses in
    CLAIM_MS (6 s), not the retention period: the retry then processes the message instead of failing."""
    cid = (await store.create("web"))["conversation_id"]
    assert await store.claim(cid, "m1") is None  # ... and the process dies here
    key = store.keys.idempotency(cid, "m1")
    assert 0 < await store.redis.pttl(key) <= CLAIM_MS
    await store.redis.pexpire(key, 200)  # 6 s later, fast-forwarded
    started = time.monotonic()
    assert await store.claim(cid, "m1", wait_s=5) is None  # the retry takes the message over
    assert time.monotonic() - started < 2


async def test_idempotency_records_are_keyed_by_a_digest_and_kept_briefly(store: ConversationStore) -> None:
    """The client's id never becomes a key as sent (a 10 MB Rasa message_id would), and a finished
    message's response is kept for retries for a day, not for the transcript's retention."""
    cid = (await store.create("web"))["conversation_id"]
    huge = "13800138000-" + "x" * 10_000
    assert await store.claim(cid, huge) is None
    await store.complete(cid, huge, {"replies": []})
    [key] = [k async for k in store.redis.scan_iter(f"{store.prefix}conv:{{{cid}}}:idem:*")]
    assert len(key) < len(store.prefix) + len(cid) + 100 and "13800138000" not in key
    assert 0 < await store.redis.pttl(key) <= RESPONSE_MS <= 86_400_000
    assert await store.claim(cid, huge) == {"replies": []}


async def test_an_append_under_a_claim_happens_once_however_often_it_runs(store: ConversationStore) -> None:
    """A Redis crash after the append but before its reply: redis-py runs the command again on the
    restarted server, and the caller, seeing a failure, releases its claim and the client resends. Found by
    tests/faults/test_redis_aof.py as an agent reply stored twice."""
    cid = (await store.create("web"))["conversation_id"]
    assert await store.claim(cid, "agent:r1") is None
    first = await store.append(cid, {"type": "message", "text": "稍等"}, once="agent:r1")
    rerun = await store.append(cid, {"type": "message", "text": "稍等"}, once="agent:r1")
    assert rerun["seq"] == first["seq"]
    await store.release(cid, "agent:r1")  # the caller never saw the reply
    assert await store.claim(cid, "agent:r1", wait_s=0.1) == {"seq": first["seq"]}
    assert [e["text"] for e in await store.events_after(cid)] == ["稍等"]


async def test_a_claim_is_held_while_its_message_is_processed_and_lapses_soon_after_a_death(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry waits for a message in flight up to 10 s. The claim of a process killed mid-message used to
    last 30 s, so the retries of that message failed "still being processed" for half a minute; now it lapses
    in CLAIM_MS and is renewed only while its process is alive and working on it."""
    from bot.store import conversations

    monkeypatch.setattr(conversations, "RENEW_S", 0.1)
    monkeypatch.setattr(conversations, "CLAIM_MS", 400)
    cid = (await store.create("web"))["conversation_id"]
    key = store.keys.idempotency(cid, "slow")
    assert await store.claim(cid, "slow") is None
    with store.hold(cid, "slow"):
        await asyncio.sleep(1.0)  # a slow parse: two and a half claim lives
        assert await store.redis.get(key) == ""  # still ours
    assert CLAIM_MS <= 10_000  # a killed process's claim lapses within a retry's wait
    await asyncio.sleep(0.6)  # no more renewals: the claim lapses
    assert await store.claim(cid, "slow", wait_s=1) is None
