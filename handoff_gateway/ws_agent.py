"""``/ws/agent``: an agent's console connection.

First frame ``{"type": "hello", "token": ...}``. The server then sends ``hello``, a ``queue`` snapshot, and
from then on: queue updates, ``offer`` frames for this agent, ``alert`` frames (SLA escalations), and every
event of the conversations the agent owns (``message``, ``note``, ``typing``, ``resolved`` … with their
``conversation_id`` and ``seq``) — from whichever process wrote them. Client frames: ``accept``, ``decline``,
``message``, ``typing``, ``note``, ``transfer``, ``resolve``, ``handback``, ``presence``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.app.background import cancel_all
from bot.app.errors import classify, describe
from bot.errors import AuthError, InputError
from handoff_gateway.agents import Agent
from handoff_gateway.gateway import Gateway

logger = logging.getLogger(__name__)
router = APIRouter()
HELLO_TIMEOUT_S = 10.0


class AgentFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    conversation_id: str | None = Field(None, max_length=64)
    text: str | None = Field(None, max_length=4000)
    client_msg_id: str | None = Field(None, max_length=128)
    note: str | None = Field(None, max_length=2000)
    to_agent: str | None = None
    to_group: str | None = Field(None, pattern="^(zh|en)$")
    status: str | None = Field(None, pattern="^(online|away|offline)$")


class AgentConnection:
    def __init__(self, ws: WebSocket, gw: Gateway, agent: Agent, heartbeat_s: float) -> None:
        self.ws, self.gw, self.agent, self.heartbeat_s = ws, gw, agent, heartbeat_s
        self.seen: dict[str, int] = {}  # conversation id -> last seq sent
        self._send_lock = asyncio.Lock()

    async def send(self, kind: str, **fields: Any) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps({"type": kind, **fields}, ensure_ascii=False))

    async def send_queue(self) -> None:
        await self.send("queue", items=await self.gw.desk.queue_snapshot())

    async def desk_events(self) -> None:
        """Queue changes, offers and alerts from any process, through Redis pub/sub."""
        prefix = self.gw.desk.prefix
        pubsub = self.gw.desk.redis.pubsub()
        await pubsub.subscribe(f"{prefix}desk", f"{prefix}desk:agent:{self.agent.id}")
        await pubsub.psubscribe(f"{prefix}conv:*:typing")
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                event = json.loads(message["data"])
                if message["type"] == "pmessage":  # the user is typing in one of this agent's conversations
                    cid = message["channel"].removeprefix(f"{prefix}conv:").removesuffix(":typing")
                    if event.get("role") == "user" and cid in self.seen:
                        await self.send("typing", conversation_id=cid, role="user", ephemeral=True)
                    continue
                if event["type"] in ("queue_changed", "presence"):
                    await self.send_queue()
                elif event["type"] == "offer":
                    card = await self._summary(event["conversation_id"])
                    await self.send("offer", **event, **card)
                elif event["type"] == "alert":
                    await self.send("alert", **{k: v for k, v in event.items() if k != "type"})
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _summary(self, cid: str) -> dict[str, Any]:
        conv = await self.gw.desk.store.get(cid) or {}
        handoff = json.loads(conv.get("handoff") or "{}")
        return {
            "severity": handoff.get("severity"),
            "reason": handoff.get("reason"),
            "intent": handoff.get("intent"),
            "sla": handoff.get("sla"),
            "language": conv.get("language"),
            "channel": conv.get("channel"),
        }

    async def conversation_events(self) -> None:
        """Every event of the conversations this agent owns, in order, once (XREAD over their streams)."""
        store = self.gw.desk.store
        while True:
            owned = await self.gw.agents.open_conversations(self.agent.id)
            for cid in owned - self.seen.keys():
                self.seen[cid] = 0
            for cid in set(self.seen) - owned:
                self.seen.pop(cid)
            if not self.seen:
                await asyncio.sleep(0.3)
                await self.gw.agents.heartbeat(self.agent.id)
                continue
            streams = {store.events_key(cid): f"{seq}-0" for cid, seq in self.seen.items()}
            result = await store.redis.xread(streams, block=1000, count=200)
            await self.gw.agents.heartbeat(self.agent.id)
            for key, entries in result or []:
                cid = key.removeprefix(f"{store.prefix}conv:").removesuffix(":events")
                for event in store._decode(entries):
                    if cid in self.seen and event["seq"] > self.seen[cid]:
                        await self.send(event.pop("type"), conversation_id=cid, **event)
                        self.seen[cid] = event["seq"]

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.gw.agents.heartbeat(self.agent.id)
            await self.send("heartbeat")

    async def handle(self, frame: AgentFrame) -> None:
        desk, agent, cid = self.gw.desk, self.agent, frame.conversation_id or ""
        if frame.type == "presence" and frame.status:
            await self.gw.set_presence(agent, frame.status)
            await self.send("presence", status=frame.status)
            return
        if frame.type in ("heartbeat", "pong"):
            await self.gw.agents.heartbeat(agent.id)
            return
        if not cid:
            raise InputError(f"{frame.type!r} needs a conversation_id")
        if frame.type == "accept":
            conv = await desk.accept(agent, cid)
            await self.send("accept", conversation_id=cid, state=conv["state"])
        elif frame.type == "decline":
            await desk.decline(agent, cid)
            self.gw.dispatcher.wake()
            await self.send("decline", conversation_id=cid)
        elif frame.type == "message":
            await desk.say(agent, cid, frame.text or "", frame.client_msg_id)
        elif frame.type == "note":
            await desk.note(agent, cid, frame.text or "")
        elif frame.type == "typing":
            await desk.redis.publish(f"{desk.prefix}conv:{cid}:typing", json.dumps({"role": "agent"}))
        elif frame.type == "transfer":
            await self.send(
                "transfer",
                **await desk.transfer(agent, cid, frame.note or "", frame.to_agent, frame.to_group),
            )
            self.gw.dispatcher.wake()
        elif frame.type == "resolve":
            await self.send("resolve", **await desk.resolve(agent, cid))
        elif frame.type == "handback":
            await self.send("handback", **await desk.handback(agent, cid))
        else:
            raise InputError(
                f"unknown frame type {frame.type!r}; use accept, decline, message, typing, note, transfer, "
                "resolve, handback or presence"
            )

    async def read(self) -> None:
        while True:
            raw = await self.ws.receive_text()
            try:
                frame = AgentFrame.model_validate_json(raw)
            except ValidationError as exc:
                await self.send("error", code="bad_frame", message=str(exc.errors()[0]["msg"]))
                continue
            try:
                await self.handle(frame)
            except WebSocketDisconnect:
                raise
            except Exception as exc:
                status, _, retryable = classify(exc)
                await self.send(
                    "error",
                    code=str(status),
                    message=describe(exc),
                    request=frame.type,
                    conversation_id=frame.conversation_id,
                    retryable=retryable,
                )


@router.websocket("/ws/agent")
async def agent_socket(ws: WebSocket) -> None:
    gw: Gateway = ws.app.state.gateway
    await ws.accept()
    try:
        raw = await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT_S)
        token = json.loads(raw).get("token") if raw.startswith("{") else None
        if not token:
            raise AuthError('first frame must be {"type": "hello", "token": "..."}')
        agent = await gw.agents.authenticate(str(token))
    except (TimeoutError, ValueError, AuthError) as exc:
        with contextlib.suppress(Exception):
            await ws.send_text(json.dumps({"type": "error", "code": "unauthorized", "message": str(exc)}))
            await ws.close(4401)
        return
    except WebSocketDisconnect:
        return
    connection = AgentConnection(ws, gw, agent, ws.app.state.settings.heartbeat_seconds)
    await gw.set_presence(agent, "online")
    await connection.send("hello", agent=agent.public())
    await connection.send_queue()
    tasks = [
        asyncio.create_task(coro)
        for coro in (connection.desk_events(), connection.conversation_events(), connection.heartbeats())
    ]
    try:
        await connection.read()
    except WebSocketDisconnect:
        pass
    finally:
        await cancel_all(tasks)
