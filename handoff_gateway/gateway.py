"""The gateway: agents, the desk, the dispatcher and the rota, wired to the app's Redis and settings."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from bot.contracts.conversation import Conversation
from bot.cpu import CpuPool
from bot.engine import DeskHooks
from bot.metrics import Metrics
from bot.ownership import Owner
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from bot.store.handoffs import HandoffStore
from bot.tasks import cancel_and_wait
from bot.vocabulary import GROUPS, Severity
from handoff_gateway.agents import Agent, AgentStore
from handoff_gateway.alerts import Alerts, new_ticket, urgent_handoff
from handoff_gateway.audit import Audit
from handoff_gateway.desk import Desk
from handoff_gateway.dispatcher import DispatchConfig, Dispatcher
from handoff_gateway.rota import Rota


class Gateway:
    def __init__(
        self,
        settings: Settings,
        store: ConversationStore,
        handoffs: HandoffStore,
        cpu: CpuPool | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        redis = store.redis
        self.settings = settings
        self.alerts = Alerts.from_settings(settings, redis, metrics.registry if metrics else None)
        self.agents = AgentStore(
            redis,
            settings.redis_prefix,
            settings.agent_session_hours,
            cpu=cpu,
            token_days=settings.agent_token_days,
        )
        self.desk = Desk(store, handoffs, self.agents, Audit(redis, settings.redis_prefix))
        self.handoffs = handoffs
        self.rota = Rota.from_file(settings.rota_file, settings.timezone)
        self.dispatcher = Dispatcher(
            self.desk,
            self.rota,
            DispatchConfig(
                offer_timeout_s=settings.offer_timeout_seconds,
                presence_grace_s=settings.presence_grace_seconds,
                average_handle_seconds=settings.average_handle_seconds,
            ),
            self.alerts,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def hooks(self) -> DeskHooks:
        """What the conversation engine needs from the desk."""
        return DeskHooks(self.dispatcher.anyone_on_duty, self.next_on_duty, self.on_queued, self.on_ticket)

    async def next_on_duty(self, group: str) -> dt.datetime | None:
        """When the next shift of an agent who reads ``group`` starts — None when the rota does not say
        (no rota, or a shift runs now and its agent is only away for a moment)."""
        now = dt.datetime.now(dt.UTC)
        starts = []
        for agent in await self.agents.all():
            if agent.supervisor or group not in agent.skills:
                continue
            if self.rota.on_duty(agent.name, now):
                return None
            start = self.rota.next_start(agent.name, now)
            if start is not None:
                starts.append(start)
        return min(starts, default=None)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.dispatcher.run(), name="dispatcher"),
            asyncio.create_task(self.dispatcher.listen(), name="dispatcher-wake"),
        ]

    async def stop(self) -> None:
        self.dispatcher.stop()
        await cancel_and_wait(self._tasks)
        await self.alerts.aclose()

    async def on_queued(self, conversation_id: str) -> None:
        """The engine queued a conversation: wake this process's dispatcher and every console; a new urgent
        handoff pages on-call (a ticket turned live wait was paged when it was opened)."""
        self.dispatcher.wake()
        await self.desk.notify({"type": "queue_changed"})
        if self.alerts.enabled:
            record = await self.desk.store.get(conversation_id)
            conv = Conversation.from_redis(record) if record else None
            if (
                conv is not None
                and conv.state is Owner.QUEUED
                and conv.handoff is not None
                and conv.handoff.severity is Severity.URGENT
                and not conv.ticket_id
            ):
                self.alerts.send(urgent_handoff(conv))

    async def on_ticket(self, ticket: dict[str, Any]) -> None:
        """Nobody was on duty: the ticket waits in the queue for the next agent, and on-call is paged."""
        await self.desk.notify({"type": "queue_changed"})
        self.alerts.send(new_ticket(ticket))

    async def set_presence(self, agent: Agent, status: str) -> None:
        await self.agents.set_presence(agent.id, status)
        if status == "online":
            await self.desk.redis.hsetnx(self.desk.keys.presence(agent.id), "idle_since", time.time())
        await self.desk.audit.record("presence", "", agent.id, status=status)
        await self.desk.notify({"type": "presence", "agent": agent.id, "status": status})
        self.dispatcher.wake()

    async def overview(self) -> dict[str, Any]:
        agents = []
        for agent in await self.agents.all():
            presence = await self.agents.presence(agent.id)
            agents.append(
                {
                    **agent.public(),
                    "presence": presence["status"],
                    "on_duty": self.rota.on_duty(agent.name),
                    "open": sorted(await self.agents.open_conversations(agent.id)),
                }
            )
        breaches = await self.desk.redis.zrange(self.desk.keys.breaches, -100, -1, withscores=True)
        return {
            "queues": {g.value: await self.desk.queue_snapshot((g,)) for g in GROUPS},
            "tickets": await self.handoffs.tickets("open"),
            "agents": agents,
            "breaches": [
                {"conversation_id": k.rsplit(":", 1)[0], "kind": k.rsplit(":", 1)[1], "at": at}
                for k, at in breaches
            ],
            "audit": await self.desk.audit.entries(count=50),
        }
