"""The inbox between a platform callback's answer and the engine: each message taken once, handled once,
in order per conversation, and never lost when the process that took it dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from bot.inbox import Inbox, InboxFull
from bot.message import Message
from bot.store.keys import Keys


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def message(n: int, cid: str = "wecom-abc") -> Message:
    return Message("wecom", "zhangsan", cid, f"第 {n} 条", f"msg-{n}", {"app": "default"})


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_message_id_is_taken_once(redis_client: aredis.Redis, redis_prefix: str) -> None:
    inbox = Inbox(redis_client, Keys(redis_prefix), handle=lambda m: asyncio.sleep(0))
    assert await inbox.submit(message(1), "default") is True
    assert await inbox.submit(message(1), "default") is False  # WeCom's retry of the same MsgId
    assert await inbox.submit(message(1), "other-app") is True  # ids are per app
    assert await redis_client.xlen(Keys(redis_prefix).inbox) == 2
    assert 0 < await redis_client.ttl(Keys(redis_prefix).seen("wecom", "default", "msg-1")) <= 2 * 86400


async def test_messages_are_handled_in_order_per_conversation(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    handled: list[str] = []

    async def handle(m: Message) -> None:
        await asyncio.sleep(0.05 if m.text.endswith("1 条") else 0)  # the first is the slowest
        handled.append(m.text)

    inbox = Inbox(redis_client, Keys(redis_prefix), handle)
    await inbox.start()
    try:
        for n in range(1, 6):
            await inbox.submit(message(n), "default")
        await wait_until(lambda: len(handled) == 5)
        assert handled == [f"第 {n} 条" for n in range(1, 6)]
        await wait_until(lambda: inbox.handled == 5)
        assert await redis_client.xlen(Keys(redis_prefix).inbox) == 0  # acknowledged and deleted
    finally:
        await inbox.stop()


async def test_a_dead_consumers_messages_are_claimed_and_handled(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """The first process takes the message and dies mid-handling; the second claims it after the lease."""
    taken = asyncio.Event()

    async def dies(m: Message) -> None:
        taken.set()
        await asyncio.sleep(3600)

    handled: list[Message] = []

    async def works(m: Message) -> None:
        handled.append(m)

    keys = Keys(redis_prefix)
    first = Inbox(redis_client, keys, dies, lease_ms=300)
    await first.start()
    await first.submit(message(7), "default")
    await asyncio.wait_for(taken.wait(), 10)
    await first.stop()  # as good as dead: the entry stays pending under its consumer
    second = Inbox(redis_client, keys, works, lease_ms=300)
    await second.start()
    try:
        await wait_until(lambda: len(handled) == 1)
        assert handled[0].message_id == "msg-7"
        await wait_until(lambda: second.handled == 1)
        pending = await redis_client.xpending(keys.inbox, "inbox")
        assert pending["pending"] == 0
    finally:
        await second.stop()


async def test_a_redis_failure_while_handling_leaves_the_message_for_a_retry(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    attempts: list[int] = []

    async def flaky(m: Message) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise aredis.ConnectionError("Redis went away")

    inbox = Inbox(redis_client, Keys(redis_prefix), flaky, lease_ms=300)
    await inbox.start()
    try:
        await inbox.submit(message(9), "default")
        await wait_until(lambda: inbox.handled == 1)
        assert len(attempts) == 2
    finally:
        await inbox.stop()


async def test_an_unreadable_entry_is_dropped_not_retried_forever(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    inbox = Inbox(redis_client, keys, handle=lambda m: asyncio.sleep(0))
    await inbox.start()
    try:
        await redis_client.xadd(keys.inbox, {"m": "not json"})
        await wait_until(lambda: inbox.handled == 1)
        assert await redis_client.xlen(keys.inbox) == 0
    finally:
        await inbox.stop()


async def test_a_slow_message_is_not_claimed_by_another_process_while_handled(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """Regression: nothing kept an in-flight entry fresh, so a handling longer than the lease was claimed
    and run a second time by another process (an attachment saved twice, a CSAT recorded twice)."""
    keys, runs = Keys(redis_prefix), []

    async def slow(m: Message) -> None:
        runs.append(m.message_id)
        await asyncio.sleep(1.2)  # four leases

    first = Inbox(redis_client, keys, slow, lease_ms=300)
    second = Inbox(redis_client, keys, slow, lease_ms=300)
    await first.start()
    await first.submit(message(1), "default")
    await wait_until(lambda: runs)
    await second.start()
    try:
        await wait_until(lambda: first.handled == 1)
        await asyncio.sleep(0.5)
        assert runs == ["msg-1"] and second.handled == 0
    finally:
        await first.stop()
        await second.stop()


async def test_a_transient_failure_is_retried_in_place_keeping_the_order(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """Regression: a message left for a later claim let the conversation's next message run first."""
    handled: list[str] = []
    failed: list[str] = []

    async def flaky(m: Message) -> None:
        if m.message_id == "msg-1" and not failed:
            failed.append(m.message_id)
            raise aredis.ConnectionError("Redis blinked")
        handled.append(m.message_id)

    inbox = Inbox(redis_client, Keys(redis_prefix), flaky, lease_ms=5000)
    await inbox.start()
    try:
        await inbox.submit(message(1), "default")
        await inbox.submit(message(2), "default")
        await wait_until(lambda: len(handled) == 2)
        assert handled == ["msg-1", "msg-2"]
    finally:
        await inbox.stop()


async def test_a_message_that_cannot_be_handled_is_given_up_for_the_agent(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    given_up: list[tuple[str, str]] = []

    async def broken(m: Message) -> None:
        raise ValueError("a bug")

    async def give_up(m: Message, reason: str) -> None:
        given_up.append((m.message_id, reason))

    inbox = Inbox(redis_client, Keys(redis_prefix), broken, give_up=give_up)
    await inbox.start()
    try:
        await inbox.submit(message(3), "default")
        await wait_until(lambda: inbox.handled == 1)
        assert given_up == [("msg-3", "ValueError: a bug")]
        assert await redis_client.xlen(Keys(redis_prefix).inbox) == 0
    finally:
        await inbox.stop()


async def test_a_message_failing_on_every_claim_is_given_up_after_the_last(
    redis_client: aredis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.inbox.ATTEMPTS", 1)
    monkeypatch.setattr("bot.inbox.MAX_DELIVERIES", 2)
    given_up: list[str] = []

    async def down(m: Message) -> None:
        raise aredis.ConnectionError("still down")

    async def give_up(m: Message, reason: str) -> None:
        given_up.append(reason)

    inbox = Inbox(redis_client, Keys(redis_prefix), down, lease_ms=200, give_up=give_up)
    await inbox.start()
    try:
        await inbox.submit(message(4), "default")
        await wait_until(lambda: given_up)
        assert "not handled after 2 tries" in given_up[0]
        await wait_until(lambda: inbox.handled == 0 and not inbox._taken)
        assert (await redis_client.xpending(Keys(redis_prefix).inbox, "inbox"))["pending"] == 0
    finally:
        await inbox.stop()


async def test_a_full_backlog_answers_503_instead_of_dropping(
    redis_client: aredis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.inbox.MAX_BACKLOG", 2)
    inbox = Inbox(redis_client, Keys(redis_prefix), handle=lambda m: asyncio.sleep(0))
    await inbox.submit(message(1), "default")
    await inbox.submit(message(2), "default")
    with pytest.raises(InboxFull):
        await inbox.submit(message(3), "default")
    assert await redis_client.xlen(Keys(redis_prefix).inbox) == 2


async def test_two_processes_handle_one_conversation_in_order(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """Regression: a conversation's next message, taken by another process while the first was still being
    handled, was answered first."""
    keys, handled, started = Keys(redis_prefix), [], asyncio.Event()

    async def slow_first(m: Message) -> None:
        if m.message_id == "msg-1":
            started.set()
            await asyncio.sleep(0.6)
        handled.append(m.message_id)

    first = Inbox(redis_client, keys, slow_first, lease_ms=3000)
    second = Inbox(redis_client, keys, slow_first, lease_ms=3000)
    await first.start()
    try:
        await first.submit(message(1), "default")
        await asyncio.wait_for(started.wait(), 10)
        first._tasks[0].cancel()  # the first process reads nothing more: the next message goes to the second
        await second.start()
        await second.submit(message(2), "default")
        await wait_until(lambda: len(handled) == 2)
        assert handled == ["msg-1", "msg-2"]
        await wait_until(lambda: second.handled == 1)  # counted once acknowledged, just after handling
    finally:
        await first.stop()
        await second.stop()
