"""The dispatcher: offers queued conversations to the best available agent, expires offers, marks agents
whose console went away, escalates conversations whose first-response clock is about to run out, records
breaches, and keeps waiting users' queue positions current.

Every app process runs one; a Redis lock (SET NX PX) lets one of them work at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from bot.contracts.conversation import Conversation
from bot.ownership import IN_QUEUE, Owner
from bot.store.connection import pubsub_of
from bot.vocabulary import GROUPS, INTENT_AREA
from handoff_gateway.agents import Seat
from handoff_gateway.alerts import Alerts, escalation
from handoff_gateway.desk import Desk
from handoff_gateway.rota import Rota

logger = logging.getLogger(__name__)


@dataclass
class DispatchConfig:
    offer_timeout_s: float = 30.0
    presence_grace_s: float = 30.0
    escalate_at: float = 0.8  # share of the first-response target after which a conversation is escalated
    interval_s: float = 0.5
    average_handle_seconds: int = 300


class Dispatcher:
    def __init__(self, desk: Desk, rota: Rota, config: DispatchConfig, alerts: Alerts | None = None) -> None:
        self.desk, self.rota, self.config, self.alerts = desk, rota, config, alerts
        self.redis: Any = desk.redis
        self.keys = desk.keys
        self._lock_key = self.keys.dispatch_lock
        self._last_trim = 0.0
        self._me = secrets.token_hex(4)
        self._wake = asyncio.Event()
        self._stopped = False

    def wake(self) -> None:
        self._wake.set()

    async def listen(self) -> None:
        """Wake on desk changes published by any process: the process holding the lock may not be the one
        that queued the conversation. Redis trouble: wait and subscribe again (the interval still runs)."""
        while not self._stopped:
            pubsub: Any = None
            try:
                pubsub = await pubsub_of(self.redis)
                await pubsub.subscribe(self.keys.desk_channel)
                while not self._stopped:
                    if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0) is not None:
                        self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopped:
                    break
                logger.warning("dispatcher wake-up subscription lost (%r); retrying", exc)
                await asyncio.sleep(1.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    async def run(self) -> None:
        """Until stopped: one pass, then wait for the interval or a wake-up. The stop flag matters because a
        cancellation that lands inside a Redis command can come back as a connection error."""
        while not self._stopped:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopped:
                    break
                logger.exception("dispatcher pass failed; trying again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.interval_s)

    async def tick(self) -> None:
        ttl = int(max(self.config.interval_s * 4, 2) * 1000)
        got = await self.redis.set(self._lock_key, self._me, nx=True, px=ttl)
        if not got and await self.redis.get(self._lock_key) != self._me:
            return
        await self.redis.pexpire(self._lock_key, ttl)
        # One read of every agent, presence and open count for the whole pass (two round trips): it used to
        # be three per agent, again for every queued conversation.
        roster = await self.desk.agents.roster()
        await self.mark_away(roster)
        await self.expire_offers()
        await self.escalate()
        for group in GROUPS:
            await self.offer(group, roster)
            await self.update_positions(group)
        if time.time() - self._last_trim > 60:
            await self.desk.handoffs.trim()
            self._last_trim = time.time()

    # ------------------------------------------------------------- agents
    def _eligible(self, seat: Seat, group: str) -> bool:
        """Online, on duty, skilled for ``group``, not a supervisor."""
        agent = seat.agent
        return (
            not agent.supervisor
            and group in agent.skills
            and seat.presence["status"] == "online"
            and self.rota.on_duty(agent.name)
        )

    async def available(self, group: str, cid: str, roster: list[Seat] | None = None) -> list[Seat]:
        """Agents who could take ``cid``: online, on duty, skilled, under capacity, not skipped, no other offer."""
        skipped = await self.redis.smembers(self.keys.skipped(cid))
        offers = {json.loads(v)["agent"] for v in (await self.redis.hgetall(self.keys.offers)).values()}
        seats = roster if roster is not None else await self.desk.agents.roster()
        return [
            seat
            for seat in seats
            if self._eligible(seat, group)
            and seat.agent.id not in skipped
            and seat.agent.id not in offers
            and seat.open_count < seat.agent.capacity
        ]

    async def anyone_on_duty(self, group: str) -> bool:
        return any(self._eligible(seat, group) for seat in await self.desk.agents.roster())

    async def mark_away(self, roster: list[Seat] | None = None) -> None:
        now = time.time()
        for seat in roster if roster is not None else await self.desk.agents.roster():
            presence = seat.presence
            if presence["status"] == "online" and now - presence["seen"] > self.config.presence_grace_s:
                await self.desk.agents.set_presence(seat.agent.id, "away")
                presence["status"] = "away"  # the rest of this pass sees it too
                await self.desk.audit.record("presence_away", "", seat.agent.id, reason="no heartbeat")

    # ------------------------------------------------------------- offers
    async def offer(self, group: str, roster: list[Seat] | None = None) -> None:
        for cid in await self.desk.handoffs.queued(group, 0, 49):
            if await self.redis.hexists(self.keys.offers, cid):
                continue
            candidates = await self.available(group, cid, roster)
            if not candidates:
                continue
            preferred = await self.redis.get(self.keys.prefer(cid))
            record = await self.desk.store.get(cid)
            handoff = Conversation.from_redis(record).handoff if record else None
            area = INTENT_AREA.get(handoff.intent or "") if handoff else None
            # A transfer's named agent first; then product-area skill, fewest open chats, longest idle.
            candidates.sort(
                key=lambda seat: (
                    seat.agent.name != preferred and seat.agent.id != preferred,
                    area is not None and area not in seat.agent.skills,
                    seat.open_count,
                    seat.idle_since,
                )
            )
            agent = candidates[0].agent
            expires = time.time() + self.config.offer_timeout_s
            if not await self.desk.handoffs.offer(cid, group, agent.id, expires):
                continue  # resolved, cancelled or taken while we chose: nobody is offered a gone conversation
            await self.desk.audit.record("offered", cid, "system", agent=agent.id)
            await self.desk.notify(
                {
                    "type": "offer",
                    "conversation_id": cid,
                    "group": group,
                    "expires_in": self.config.offer_timeout_s,
                },
                agent.id,
            )

    async def expire_offers(self) -> None:
        now = time.time()
        for cid, raw in (await self.redis.hgetall(self.keys.offers)).items():
            offer = json.loads(raw)
            state = await self.desk.handoffs.state(cid)
            if state not in IN_QUEUE:
                await self.redis.hdel(self.keys.offers, cid)
                continue
            if now >= offer["expires"]:
                agent = await self.desk.agents.get(offer["agent"])
                if agent:
                    await self.desk.decline(agent, cid, reason="offer_expired")
                await self.redis.hdel(self.keys.offers, cid)

    # ---------------------------------------------------------------- SLA
    async def escalate(self) -> None:
        """Live handoffs and tickets alike: breach records past the first-response due time, and one
        escalation (priority rises, consoles alerted, on-call paged) at ``escalate_at`` of the target."""
        now = time.time()
        for group in GROUPS:
            for cid in await self.desk.handoffs.queued(group):
                record = await self.desk.store.get(cid)
                conv = Conversation.from_redis(record) if record else None
                if conv is None or conv.handoff is None:
                    continue
                sla = conv.handoff.sla
                started, due = sla.started_ts(), sla.first_due_ts()
                if sla.scheduled_from:  # a ticket promised from the next shift: its clock starts then
                    started = dt.datetime.fromisoformat(sla.scheduled_from).timestamp()
                if now >= due:
                    await self.desk.record_breach(cid, "first_response", "system")
                if not conv.escalated and now >= started + (due - started) * self.config.escalate_at:
                    await self._escalate(conv, group, due - now)

    async def _escalate(self, conv: Conversation, group: str, remaining: float) -> None:
        cid = conv.conversation_id
        escalated = await self.desk.handoffs.escalate(
            cid, group, {"remaining_seconds": round(remaining), "ticket_id": conv.ticket_id}
        )
        if not escalated:
            return
        severity = conv.handoff.severity.value if conv.handoff else None
        alert = {
            "type": "alert",
            "conversation_id": cid,
            "ticket_id": conv.ticket_id,
            "group": group,
            "remaining_seconds": round(remaining),
            "severity": severity,
        }
        await self.desk.notify(alert)
        if self.alerts is not None:
            self.alerts.send(escalation(conv, group, remaining))  # posts in the background

    # ------------------------------------------------------------ positions
    async def eta_per_position(self) -> float:
        recent = [float(x) for x in await self.redis.lrange(self.keys.handle_times, 0, 49)]
        return sum(recent) / len(recent) if recent else float(self.config.average_handle_seconds)

    async def update_positions(self, group: str) -> None:
        """Waiting users see their position and expected wait, updated as it changes."""
        per = await self.eta_per_position()
        for position, cid in enumerate(await self.desk.handoffs.queued(group, 0, 199), 1):
            state, previous = await self.redis.hmget(self.keys.handoff(cid), "state", "position")
            if state != Owner.QUEUED:  # a ticket's user is not waiting on the line
                continue
            if previous != str(position):
                await self.desk.store.update(cid, position=str(position))
                if previous is not None:
                    await self.desk.store.append(
                        cid,
                        {
                            "type": "queue",
                            "role": "system",
                            "position": position,
                            "eta_seconds": int(position * per),
                        },
                    )
