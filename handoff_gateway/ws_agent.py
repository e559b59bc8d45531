"""``/ws/agent``: an agent's console connection.

First frame ``{"type": "hello", "token": ...}``. The server then sends ``hello``, a ``queue`` snapshot, and
from then on: queue updates, ``offer`` frames for this agent, ``alert`` frames (SLA escalations), and every
event of the conversations the agent owns (``message``, ``note``, ``typing``, ``resolved`` … with their
``conversation_id`` and ``seq``) — from whichever process wrote them. Client frames: ``accept``, ``decline``,
``message``, ``typing``, ``note``, ``transfer``, ``resolve``, ``handback``, ``presence``.

All of it comes through the process's event hub (``bot.realtime.hub``): the connection follows the conversations
the agent owns and listens to the desk, holding no Redis connection of its own. After a Redis restart the
hub re-syncs the followed conversations and says ``Resynced``: the connection re-asserts its presence (an
agent who was online is online again, even if Redis lost it) and re-sends the queue snapshot. A failing
background task closes the socket with 1011.

On connect the console asserts the presence the agent chose last (handoff_gateway/presence.py) and says
which in its ``hello``; it is not forced to online.

A console lives no longer than the credential it said hello with: signing out (``POST /api/v1/agents/logout``)
or revoking the API token publishes ``signed_out`` on the agent's channel, and the console closes with 4401
(error ``signed_out``) in whichever process it is; the credential is also checked on every frame and every
heartbeat, so a session that expired closes its console with 4401 (error ``session_expired``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import AuthError, InputError
from bot.realtime.failures import REDIS_DOWN, classify, describe
from bot.realtime.frames import (
    GONE,
    HELLO_CHARS,
    BinaryFrame,
    FrameTooLarge,
    frame_limit,
    gone,
    receive_text,
    refusal,
    refuse,
)
from bot.realtime.hub import DeskEvent, EventHub, Events, Failed, Follow, Inbox, Notice, Resynced, Typing
from bot.realtime.supervise import supervise
from handoff_gateway import presence
from handoff_gateway.agents import Agent, token_hash
from handoff_gateway.gateway import Gateway

logger = logging.getLogger(__name__)
router = APIRouter()
HELLO_TIMEOUT_S = 10.0
HELLO_SHAPE = 'first frame must be {"type": "hello", "token": "..."}'
INVALID_PAYLOAD = 1007  # RFC 6455: the frame's data is not what the protocol expects (not a hello)
SIGNED_OUT = 4401


class SessionEnded(Exception):
    """The console's credential ended (signed out, revoked, expired): the socket is closed already."""


class AgentHello(BaseModel):
    """Parsed by pydantic: nesting a few hundred levels deep is refused, not recursed into."""

    model_config = ConfigDict(extra="ignore")
    type: str = Field(pattern="^hello$")
    token: str | None = Field(None, max_length=1024)


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
    def __init__(
        self, ws: WebSocket, gw: Gateway, hub: EventHub, agent: Agent, heartbeat_s: float, credential: str
    ) -> None:
        self.ws, self.gw, self.hub, self.agent, self.heartbeat_s = ws, gw, hub, agent, heartbeat_s
        self.credential = credential  # the sha256 digest of the token it said hello with
        self.inbox = Inbox()
        self.follows: dict[str, Follow] = {}  # the conversations this agent owns
        self.status = "offline"  # the presence this console asserts (re-asserted after a Redis restart)
        self._send_lock = asyncio.Lock()

    async def send(self, kind: str, /, **fields: Any) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps({"type": kind, **fields}, ensure_ascii=False))

    async def end(self, code: str, reason: str) -> None:
        """Say why, close with 4401, and stop this connection's task (raises :class:`SessionEnded`)."""
        logger.info("agent %s: console closed, %s", self.agent.id, reason)
        with contextlib.suppress(Exception):
            await self.send("error", code=code, message=f"{reason}; sign in again", retryable=False)
            await self.ws.close(SIGNED_OUT, reason)
        raise SessionEnded(reason)

    async def check_credential(self) -> None:
        """Close the console when the credential it opened with has expired or been revoked."""
        if await self.gw.agents.agent_id_for(self.credential) != self.agent.id:
            await self.end("session_expired", "session expired or revoked")

    async def send_queue(self) -> None:
        await self.send("queue", items=await self.gw.desk.queue_snapshot())

    async def start(self) -> None:
        """Listen to the desk, follow the owned conversations, and say hello with the queue."""
        self.hub.listen_desk(self.agent.id, self.inbox)
        self.status = await presence.on_connect(self.gw, self.agent)
        await self.send("hello", agent=self.agent.public(), presence=self.status)
        await self.send_queue()
        await self.refresh_owned()

    def stop(self) -> None:
        self.hub.unlisten_desk(self.inbox)
        for follow in self.follows.values():
            self.hub.unfollow(follow)
        self.follows.clear()

    async def refresh_owned(self) -> None:
        """Follow conversations newly owned (their whole transcript first), drop those no longer owned."""
        owned = await self.gw.agents.open_conversations(self.agent.id)
        for cid in owned - self.follows.keys():
            self.follows[cid] = self.hub.follow(cid, 0, self.inbox)
        for cid in self.follows.keys() - owned:
            self.hub.unfollow(self.follows.pop(cid))

    async def deliver(self) -> None:
        """What the hub hands this console, in order. Redis being away skips a step (the hub's re-sync
        redoes it) instead of ending the connection; any other failure ends it (supervised: 1011)."""
        while True:
            notice = await self.inbox.get()
            try:
                await self._on(notice)
            except SessionEnded:
                return
            except REDIS_DOWN as exc:
                logger.info("agent %s: %s skipped while Redis is away (%r)", self.agent.id, notice, exc)

    async def _on(self, notice: Notice | None) -> None:
        if isinstance(notice, Events):
            if self.follows.get(notice.cid) is notice.follow:  # not from an earlier, dropped follow
                for event in notice.events:
                    fields = {k: v for k, v in event.items() if k != "type"}
                    await self.send(event["type"], conversation_id=notice.cid, **fields)
        elif isinstance(notice, Typing):
            if notice.role == "user" and notice.cid in self.follows:
                await self.send("typing", conversation_id=notice.cid, role="user", ephemeral=True)
        elif isinstance(notice, DeskEvent):
            await self._desk_event(notice.event)
        elif isinstance(notice, Resynced):
            await self.gw.set_presence(self.agent, self.status)
            await self.refresh_owned()
            await self.send_queue()
        elif isinstance(notice, Failed):
            raise notice.error

    async def _desk_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "signed_out" and event.get("session") == self.credential:
            await self.end("signed_out", str(event.get("reason") or "signed out"))
        if kind == "presence" and event.get("agent") == self.agent.id:
            self.status = str(event.get("status", self.status))  # set here, over REST or from another tab
        if kind in ("queue_changed", "presence"):
            await self.refresh_owned()
            await self.send_queue()
        elif kind == "offer":
            card = await self._summary(event["conversation_id"])
            await self.send("offer", **event, **card)
        elif kind == "alert":
            await self.send("alert", **{k: v for k, v in event.items() if k != "type"})

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

    async def heartbeats(self) -> None:
        """Keep presence alive and re-check the credential and ownership every interval; Redis away: just
        the frame."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.check_credential()
                await self.gw.agents.heartbeat(self.agent.id)
                await self.refresh_owned()
            except SessionEnded:
                return
            except REDIS_DOWN as exc:
                logger.debug("agent %s heartbeat not stored: %r", self.agent.id, exc)
            await self.send("heartbeat")

    async def handle(self, frame: AgentFrame) -> None:
        desk, agent, cid = self.gw.desk, self.agent, frame.conversation_id or ""
        if frame.type == "presence" and frame.status:
            self.status = frame.status
            await presence.choose(self.gw, agent, frame.status)
            await self.send("presence", status=frame.status)
            return
        if frame.type in ("heartbeat", "pong"):
            await self.gw.agents.heartbeat(agent.id)
            return
        if not cid:
            raise InputError(f"{frame.type!r} needs a conversation_id")
        if frame.type == "accept":
            conv = await desk.accept(agent, cid)
            await self.refresh_owned()
            await self.send("accept", conversation_id=cid, state=str(conv.state))
        elif frame.type == "decline":
            await desk.decline(agent, cid)
            self.gw.dispatcher.wake()
            await self.send("decline", conversation_id=cid)
        elif frame.type == "message":
            await desk.say(agent, cid, frame.text or "", frame.client_msg_id)
        elif frame.type == "note":
            await desk.note(agent, cid, frame.text or "")
        elif frame.type == "typing":
            await desk.typing(agent, cid)
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
        limit = frame_limit(self.ws.app.state.settings.max_message_chars)
        while True:
            try:
                frame = AgentFrame.model_validate_json(await receive_text(self.ws, limit))
            except (BinaryFrame, FrameTooLarge) as exc:
                await self.send("error", code=exc.code, message=str(exc))
                continue
            except ValidationError as exc:
                await self.send("error", code="bad_frame", message=str(exc.errors()[0]["msg"]))
                continue
            try:
                await self.check_credential()
                await self.handle(frame)
            except SessionEnded:
                return
            except GONE:
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
        raw = await asyncio.wait_for(receive_text(ws, HELLO_CHARS), HELLO_TIMEOUT_S)
        token = AgentHello.model_validate_json(raw).token
        if not token:
            raise AuthError(HELLO_SHAPE)
        agent = await gw.agents.authenticate(token)
    except (BinaryFrame, FrameTooLarge) as exc:
        code, close = refusal(exc)
        await refuse(ws, code, f"{HELLO_SHAPE}: {exc}", close)
        return
    except ValidationError as exc:
        await refuse(ws, "bad_hello", f"{HELLO_SHAPE}: {exc.errors()[0]['msg']}", INVALID_PAYLOAD)
        return
    except (TimeoutError, ValueError, AuthError) as exc:
        await refuse(ws, "unauthorized", str(exc) or HELLO_SHAPE, 4401)
        return
    except GONE as exc:
        gone("agent hello", exc)
        return
    hub: EventHub = ws.app.state.hub
    connection = AgentConnection(
        ws, gw, hub, agent, ws.app.state.settings.heartbeat_seconds, token_hash(token)
    )
    try:
        await connection.start()
    except GONE as exc:
        connection.stop()
        gone(f"agent {agent.id} console start", exc)
        return
    except Exception as exc:  # Redis down while saying hello
        connection.stop()
        logger.warning("agent %s: console start failed: %r", agent.id, exc)
        _, close, retryable = classify(exc)
        with contextlib.suppress(Exception):
            await connection.send("error", code="unavailable", message=describe(exc), retryable=retryable)
            await ws.close(close)
        return
    try:
        await supervise(
            ws,
            connection.read(),
            {"deliver": connection.deliver(), "heartbeats": connection.heartbeats()},
            agent_id=agent.id,
        )
    finally:
        connection.stop()
