"""The desk's one state machine against a real Redis: each transition moves the queue membership, the offer,
the agents' open conversations, the ticket and the audit entry with the state — atomically."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aredis

from bot.ownership import Owner, TransitionError
from bot.store.handoffs import AtCapacity, HandoffStore, Move, queue_score


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def handoffs(redis_client: aredis.Redis, redis_prefix: str) -> HandoffStore:
    return HandoffStore(redis_client, redis_prefix, retention_seconds=600)


def queued(group: str = "zh", severity: str = "normal", at: int = 1000, vip: int = 0) -> Move:
    return Move("bot", "queued", group=group, score=queue_score(severity, at, vip))


def ticket(ticket_id: str, cid: str, customer: str = "") -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "conversation_id": cid,
        "status": "open",
        "severity": "normal",
        "sla": {"first_response_due": "2026-11-30T09:30:00+08:00"},
        "due_ts": 1796002200,
        "customer_key": customer,
    }


async def members(h: HandoffStore, group: str = "zh") -> list[str]:
    return await h.queued(group)


async def test_state_and_queue_move_together(handoffs: HandoffStore) -> None:
    assert await handoffs.state("c1") is Owner.BOT  # never handed off: the bot's
    assert await handoffs.transition("c1", Owner.QUEUED, queued()) is Owner.BOT
    assert await members(handoffs) == ["c1"]
    await handoffs.transition("c1", Owner.ASSIGNED, Move("a1", "accepted", owner="a1", capacity=2))
    assert await members(handoffs) == []
    assert await handoffs.redis.smembers(handoffs.keys.agent_open("a1")) == {"c1"}
    await handoffs.transition("c1", Owner.QUEUED, Move("a1", "transferred", group="en", score=5))
    assert await members(handoffs, "en") == ["c1"]
    assert await handoffs.redis.smembers(handoffs.keys.agent_open("a1")) == set()
    await handoffs.transition("c1", Owner.BOT, Move("a1", "handed_back"))
    assert await members(handoffs, "en") == [] and await handoffs.state("c1") is Owner.BOT
    actions = [e["action"] for _, e in await handoffs.redis.xrange(handoffs.keys.audit)]
    assert actions == ["queued", "accepted", "transferred", "handed_back"]


async def test_a_refused_move_changes_nothing(handoffs: HandoffStore) -> None:
    with pytest.raises(TransitionError, match="cannot go from bot to assigned"):
        await handoffs.transition("c1", Owner.ASSIGNED, Move("a1", "accepted", owner="a1"))
    assert await handoffs.get("c1") == {} and await members(handoffs) == []
    assert await handoffs.redis.xlen(handoffs.keys.audit) == 0


async def test_resolving_a_queued_conversation_takes_it_out_of_the_queue_and_drops_its_offer(
    handoffs: HandoffStore,
) -> None:
    """Regression: a supervisor resolving a queued conversation left it in the queue, and the dispatcher
    kept offering it."""
    await handoffs.transition("c1", Owner.QUEUED, queued())
    await handoffs.redis.hset(handoffs.keys.offers, "c1", json.dumps({"agent": "a1", "expires": 0}))
    await handoffs.transition("c1", Owner.RESOLVED, Move("sup", "resolved"))
    assert await members(handoffs) == []
    assert await handoffs.redis.hget(handoffs.keys.offers, "c1") is None


async def test_exactly_one_of_many_racing_accepts_wins(handoffs: HandoffStore) -> None:
    await handoffs.transition("c1", Owner.QUEUED, queued())
    results = await asyncio.gather(
        *(
            handoffs.transition("c1", Owner.ASSIGNED, Move(f"a{i}", "accepted", owner=f"a{i}", capacity=3))
            for i in range(20)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, TransitionError) for r in results if isinstance(r, Exception))
    owner = (await handoffs.get("c1"))["owner"]
    assert await handoffs.redis.smembers(handoffs.keys.agent_open(owner)) == {"c1"}


async def test_capacity_is_checked_inside_the_move(handoffs: HandoffStore) -> None:
    for cid in ("c1", "c2"):
        await handoffs.transition(cid, Owner.QUEUED, queued())
    await handoffs.transition("c1", Owner.ASSIGNED, Move("a1", "accepted", owner="a1", capacity=1))
    with pytest.raises(AtCapacity):
        await handoffs.transition("c2", Owner.ASSIGNED, Move("a1", "accepted", owner="a1", capacity=1))
    assert await members(handoffs) == ["c2"] and await handoffs.state("c2") is Owner.QUEUED


async def test_a_ticket_opens_waits_in_the_queue_and_closes_with_its_conversation(
    handoffs: HandoffStore,
) -> None:
    tid = await handoffs.new_ticket_id()
    move = Move(
        "bot",
        "ticket_opened",
        group="zh",
        score=queue_score("normal", 1000),
        ticket=ticket(tid, "c1", "cust1"),
    )
    await handoffs.transition("c1", Owner.WAITING, Move(**{**move.__dict__, "fields": {"ticket_id": tid}}))
    assert await members(handoffs) == ["c1"]  # offered like a live handoff once somebody is on duty
    assert [t["ticket_id"] for t in await handoffs.tickets("open")] == [tid]
    assert await handoffs.redis.zrange(handoffs.keys.customer("cust1", "tickets"), 0, -1) == [tid]
    await handoffs.transition("c1", Owner.ASSIGNED, Move("a1", "accepted", owner="a1", capacity=3))
    assert (await handoffs.ticket(tid) or {})["status"] == "assigned"
    assert (await handoffs.ticket(tid) or {})["assigned_to"] == "a1"
    await handoffs.transition("c1", Owner.RESOLVED, Move("a1", "resolved"))
    closed = await handoffs.ticket(tid) or {}
    assert closed["status"] == "resolved" and closed["sla"]["first_response_due"].endswith("+08:00")
    assert await handoffs.tickets("open") == []
    assert [t["ticket_id"] for t in await handoffs.tickets("resolved")] == [tid]
    # The user writes again: back to the bot; the closed ticket stays resolved.
    await handoffs.transition("c1", Owner.BOT, Move("user", "reopened"))
    assert (await handoffs.ticket(tid) or {})["status"] == "resolved"


async def test_cancelling_a_waiting_ticket(handoffs: HandoffStore) -> None:
    tid = await handoffs.new_ticket_id()
    await handoffs.transition(
        "c1",
        Owner.WAITING,
        Move(
            "bot", "ticket_opened", group="zh", score=1, ticket=ticket(tid, "c1"), fields={"ticket_id": tid}
        ),
    )
    await handoffs.transition("c1", Owner.BOT, Move("user", "cancelled"))
    assert (await handoffs.ticket(tid) or {})["status"] == "cancelled"
    assert await members(handoffs) == [] and await handoffs.tickets("open") == []


async def test_waiting_to_queued_keeps_the_place_in_the_queue(handoffs: HandoffStore) -> None:
    await handoffs.transition("early", Owner.WAITING, queued(at=1000))
    await handoffs.transition("late", Owner.QUEUED, queued(at=2000))
    await handoffs.transition("early", Owner.QUEUED, Move("user", "queued", group="zh", score=9_999_999))
    assert await members(handoffs) == ["early", "late"]


async def test_queue_orders_by_severity_then_vip_then_time(handoffs: HandoffStore) -> None:
    for cid, severity, at, vip in [
        ("normal-early", "normal", 1000, 0),
        ("normal-vip", "normal", 5000, 3),
        ("important", "important", 3000, 0),
        ("urgent-late", "urgent", 9000, 0),
    ]:
        await handoffs.transition(cid, Owner.QUEUED, queued(severity=severity, at=at, vip=vip))
    assert await members(handoffs) == ["urgent-late", "important", "normal-vip", "normal-early"]


async def test_escalation_moves_ahead_once(handoffs: HandoffStore) -> None:
    await handoffs.transition("urgent", Owner.QUEUED, queued(severity="urgent", at=5000))
    await handoffs.transition("normal", Owner.QUEUED, queued(severity="normal", at=1000))
    assert await handoffs.escalate("normal", "zh", {"remaining_seconds": 10})
    assert not await handoffs.escalate("normal", "zh", {})  # once
    assert await members(handoffs) == ["normal", "urgent"]
    assert "escalated" in [e["action"] for _, e in await handoffs.redis.xrange(handoffs.keys.audit)]


async def test_ticket_ids_are_numbered_per_day(handoffs: HandoffStore) -> None:
    first, second = await handoffs.new_ticket_id(), await handoffs.new_ticket_id()
    assert first[:11] == second[:11] and int(second[-4:]) == int(first[-4:]) + 1
    assert await handoffs.ticket("T-19990101-0001") is None


async def test_ownership_records_expire(handoffs: HandoffStore) -> None:
    await handoffs.transition("c1", Owner.QUEUED, queued())
    assert 0 < await handoffs.redis.pttl(handoffs.keys.handoff("c1")) <= 600_000


async def test_trim_drops_queue_members_and_open_tickets_whose_records_expired(
    handoffs: HandoffStore,
) -> None:
    tid = await handoffs.new_ticket_id()
    await handoffs.transition(
        "gone",
        Owner.WAITING,
        Move(
            "bot", "ticket_opened", group="zh", score=1, ticket=ticket(tid, "gone"), fields={"ticket_id": tid}
        ),
    )
    await handoffs.transition("kept", Owner.QUEUED, queued())
    await handoffs.redis.delete(handoffs.keys.handoff("gone"), handoffs.keys.ticket(tid))  # as if expired
    await handoffs.trim()
    assert await members(handoffs) == ["kept"]
    assert await handoffs.redis.zrange(handoffs.keys.tickets("open"), 0, -1) == []


async def test_a_transferred_escalated_conversation_keeps_its_priority(handoffs: HandoffStore) -> None:
    """Regression: a transfer re-queued an escalated conversation at the back of its tier, and its escalated
    flag kept it from ever being escalated again."""
    await handoffs.transition("normal", Owner.QUEUED, queued(severity="normal", at=1000))
    assert await handoffs.escalate("normal", "zh", {})
    raised = await handoffs.redis.zscore(handoffs.keys.queue("zh"), "normal")
    assert raised == queue_score("normal", 1000, escalated=True)  # the script and the formula agree
    await handoffs.transition("normal", Owner.ASSIGNED, Move("a1", "accepted", owner="a1", capacity=3))
    await handoffs.transition("urgent", Owner.QUEUED, queued(severity="urgent", at=5000))
    score = queue_score("normal", 1000, escalated=True)
    await handoffs.transition("normal", Owner.QUEUED, Move("a1", "transferred", group="zh", score=score))
    assert await members(handoffs) == ["normal", "urgent"]
